/** `rose logits` end to end, in process: its file equals transformers' logits; its errors are one line. */
import { copyFileSync, existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { captureOutput, rose } from '../helpers/cli.ts';
import { widenToF32 } from '../../src/kernels/cpu/dtype.ts';
import { SafetensorsFile, writeSafetensors } from '../../src/model/safetensors.ts';
import { fixturesDir, loadFixture, maxAbsDiff } from '../helpers/fixtures.ts';
import { webGpuUnderTest } from '../kernels/backends.ts';

const io = captureOutput();

// The oracle must say the same on every backend; WebGPU runs where an adapter is (llvmpipe in CI).
const gpu = await webGpuUnderTest();
gpu?.destroy();
const backendNames = gpu ? ['cpu', 'webgpu'] : ['cpu'];

describe('rose logits', () => {
  it.each(backendNames)(
    '--backend %s writes logits.<row> [T_row, vocab] for every row, equal to transformers within 1e-4',
    async (backend) => {
      const fx = loadFixture('tiny-gqa-bf16-tied');
      const out = join(mkdtempSync(join(tmpdir(), 'rose-cli-')), 'logits.safetensors');
      const ids = fx.ref.rows.flatMap((r) => ['--ids', r.tokens.join(',')]);
      expect(await rose('logits', '--model', fx.dir, ...ids, '--backend', backend, '--out', out)).toBe(0);
      expect(io.stdout).toMatch(/^rose logits: 2 row\(s\) of 17, 11 tokens × vocab 1000 → /);
      const file = SafetensorsFile.open(out);
      expect(file.names().sort()).toEqual(['logits.0', 'logits.1']);
      for (const r of [0, 1] as const) {
        const got = file.read(`logits.${r}`);
        expect(got.dtype).toBe('f32');
        expect(got.shape).toEqual([fx.ref.rows[r].length, 1000]);
        const want = fx.tensor(fx.ref.prefill.tensors[r === 0 ? 'batched_row0' : 'batched_row1']).data;
        // Same bar as the fixture tests (test/model/fixtures.test.ts): 5× the worst correct f32 ordering.
        expect(maxAbsDiff(widenToF32(got.dtype, got.bytes), want)).toBeLessThanOrEqual(1e-4);
      }
      file.close();
    },
  );

  it.each([
    [['--model', join(fixturesDir, 'no-such-model'), '--ids', '1,2'], /^rose: error\[CONFIG\]: .*config\.json does not exist/, 1],
    [['--model', join(fixturesDir, 'tiny-mha-f32'), '--ids', '1,2,9999'], /^rose: error\[INPUT\]: token id 9999 is out of range/, 1],
    [['--model', join(fixturesDir, 'tiny-mha-f32'), '--ids', '1,x'], /"x" is not a token id/, 2],
    [['--model', join(fixturesDir, 'tiny-mha-f32'), '--ids', '1,2', '--backend', 'tpu'], /Allowed choices are cpu, webgpu, auto/, 2],
    [
      ['--model', join(fixturesDir, 'tiny-mha-f32'), '--ids', '1,2', '--kernel', 'softmax=1'],
      /^rose: error\[USAGE\]: .*--kernel: there is no op "softmax" \(ops: embedding, rmsnorm, matmul, /,
      2,
    ],
    [
      ['--model', join(fixturesDir, 'tiny-mha-f32'), '--ids', '1,2', '--kernel', 'matmul=9'],
      /^rose: error\[INPUT\]: matmul has no variant 9 on the cpu backend \(its variants: v1 /,
      1,
    ],
  ])('bad input %j gets one clear line on stderr and a non-zero exit', async (args, message, code) => {
    const out = join(mkdtempSync(join(tmpdir(), 'rose-cli-')), 'x.safetensors');
    expect(await rose('logits', ...args, '--out', out)).toBe(code);
    expect(io.stderr).toMatch(message);
    expect(io.stderr.trim().split('\n')).toHaveLength(1);
    expect(io.stderr).not.toMatch(/\n\s+at /); // no stack trace without --debug
    expect(io.stdout).toBe('');
  });

  it('--kernel forces a variant: matmul=1 (the reference) writes the same bits as the automatic choice, and says so', async () => {
    const fx = loadFixture('tiny-f16-bias');
    const dir = mkdtempSync(join(tmpdir(), 'rose-cli-'));
    const ids = fx.ref.rows.flatMap((r) => ['--ids', r.tokens.join(',')]);
    const files = ['auto', 'v1'].map((name) => join(dir, `${name}.safetensors`));
    expect(await rose('logits', '--model', fx.dir, ...ids, '--backend', 'cpu', '--out', files[0])).toBe(0);
    expect(io.stdout).toMatch(/ on cpu \(1 thread\); /);
    expect(await rose('logits', '--model', fx.dir, ...ids, '--backend', 'cpu', '--kernel', 'matmul=1', '--out', files[1])).toBe(0);
    expect(io.stdout).toMatch(/ on cpu \(1 thread; kernels matmul v1\); /);
    const [auto, v1] = files.map((f) => SafetensorsFile.open(f));
    // The file says which kernels made it: the backend's full description, in its metadata.
    expect(auto.metadata.backend).toMatch(/, matmul auto \(v2 for M ≤ 8, else v3\), /);
    expect(v1.metadata.backend).toMatch(/, matmul v1, /);
    for (const name of auto.names()) expect(Buffer.from(v1.read(name).bytes).equals(Buffer.from(auto.read(name).bytes)), name).toBe(true);
    auto.close();
    v1.close();
  });

  it('keeps the TypeScript tier by default (says so in --help); --cpu-tier wasm is within 1e-4 of it; not with --backend webgpu', async () => {
    const fx = loadFixture('tiny-gqa-bf16-tied');
    const dir = mkdtempSync(join(tmpdir(), 'rose-cli-'));
    const ids = fx.ref.rows.flatMap((r) => ['--ids', r.tokens.join(',')]);
    const files = ['default', 'wasm'].map((name) => join(dir, `${name}.safetensors`));
    expect(await rose('logits', '--model', fx.dir, ...ids, '--out', files[0])).toBe(0);
    expect(await rose('logits', '--model', fx.dir, ...ids, '--cpu-tier', 'wasm', '--out', files[1])).toBe(0);
    const [ts, wasm] = files.map((f) => SafetensorsFile.open(f));
    expect(ts.metadata.backend).toMatch(/^cpu \(TypeScript, 1 thread, matmul auto \(v2 for M ≤ 8, else v3\), /);
    expect(wasm.metadata.backend).toMatch(/^cpu \(WebAssembly SIMD, 1 thread, matmul auto \(v4 for M ≤ 8, else v5\), /);
    // 1e-4: the fixtures' bar against transformers (every correct f32 order lands within 2.1e-5 of it).
    for (const name of ts.names())
      expect(maxAbsDiff(widenToF32('f32', wasm.read(name).bytes), widenToF32('f32', ts.read(name).bytes)), name).toBeLessThanOrEqual(1e-4);
    ts.close();
    wasm.close();

    expect(await rose('logits', '--help')).toBe(0);
    expect(io.stdout.replace(/\s+/g, ' ')).toMatch(/--cpu-tier <tier> .*default ts here: the oracle keeps the TypeScript tier/);
    expect(await rose('logits', '--model', fx.dir, '--ids', '1,2', '--backend', 'webgpu', '--cpu-tier', 'wasm', '--out', files[0])).toBe(2);
    expect(io.stderr).toMatch(/^rose: error\[USAGE\]: --cpu-tier chooses the CPU backend's kernels; --backend webgpu would ignore it/);
  });
});

/** tiny-mha-f32 with one embedding row set to NaN: every position that reads that token gets NaN logits. */
function poisonedCheckpoint(token: number): string {
  const src = join(fixturesDir, 'tiny-mha-f32');
  const dir = mkdtempSync(join(tmpdir(), 'rose-nan-'));
  copyFileSync(join(src, 'config.json'), join(dir, 'config.json'));
  const file = SafetensorsFile.open(join(src, 'model.safetensors'));
  const tensors = file.names().map((name) => {
    const w = file.read(name);
    const bytes = w.bytes.slice();
    if (name === 'model.embed_tokens.weight') {
      const hidden = w.shape[1];
      new Float32Array(bytes.buffer).fill(Number.NaN, token * hidden, (token + 1) * hidden); // (V, D) row `token`
    }
    return { name, dtype: 'F32' as const, shape: [...w.shape], data: bytes };
  });
  file.close();
  writeSafetensors(join(dir, 'model.safetensors'), tensors);
  return dir;
}

describe('rose logits on non-finite logits', () => {
  const model = poisonedCheckpoint(7);
  const args = ['logits', '--model', model, '--ids', '1,2,3', '--ids', '4,5,7,8', '--backend', 'cpu'];

  it('fails with a NUMERIC error naming the row and the first position, and writes nothing', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'rose-cli-')), 'x.safetensors');
    expect(await rose(...args, '--out', out)).toBe(1);
    // Row 1 reads token 7 at position 2: its logits are NaN from there on (causal attention carries it).
    expect(io.stderr).toMatch(
      /^rose: error\[NUMERIC\]: logits row 1 holds \d+ non-finite value\(s\) \(NaN or Inf\), the first at position 2 \(vocab id 0\); nothing was written/,
    );
    expect(io.stderr).toContain('--allow-nonfinite');
    expect(io.stdout).toBe('');
    expect(existsSync(out)).toBe(false);
  });

  it('--allow-nonfinite writes them, with a warning', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'rose-cli-')), 'x.safetensors');
    expect(await rose(...args, '--out', out, '--allow-nonfinite')).toBe(0);
    expect(io.stderr).toMatch(/WARNING: logits row 1 holds \d+ non-finite value\(s\).*at position 2/);
    const file = SafetensorsFile.open(out);
    const row1 = new Float32Array(file.read('logits.1').bytes.slice().buffer); // (4, V)
    file.close();
    expect(row1.subarray(0, 2 * 512).every(Number.isFinite)).toBe(true); // positions 0, 1 never see token 7
    expect(row1.subarray(2 * 512).some(Number.isNaN)).toBe(true);
  });
});

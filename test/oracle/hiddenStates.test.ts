/**
 * `rose logits --hidden-states` on CPU and WebGPU against the float64 reference's layer outputs
 * (test/fixtures/<fixture>/hidden-states.safetensors, copied verbatim from ../shared/fixtures). The
 * reference runs each row alone; here the rows run as one left-padded batch of two, so this also
 * proves that every real position of every row is captured and the pads are dropped.
 *
 * The bound, per tensor, and why:
 * - hidden.<row>.0 (the embeddings) must be bit-exact: it is a row of the stored table, which widens
 *   to f32 exactly, and the reference stores that same value (f64 → f32 of an f32 is exact).
 * - every later stage: max |Δ| ≤ REL · max |h_ref| with REL = 1e-4 / 15. That is the logits bar of
 *   test/model/fixtures.test.ts (1e-4, 5× the 2.1e-5 every correct f32 ordering reaches on logits of
 *   magnitude ≤ 15) expressed relative to the scale it was set at: f32 rounding error grows with the
 *   magnitude of the values, and the hidden states (|h| ≤ 10.3 here) are computed by the same kind of
 *   f32 dot products, one lm_head fewer than the logits. Measured: CPU ≤ 1.9e-7·max|h|, WebGPU
 *   (llvmpipe) ≤ 8.5e-7·max|h|, so about 8× headroom; and a real bug lands above it: dropping layer
 *   1's RMSNorm eps costs 11×–280× the bound at hidden.<row>.1 (checked below on every fixture).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterAll, describe, expect, it } from 'vitest';
import type { Backend } from '../../src/kernels/backend.ts';
import { loadLlama } from '../../src/model/load.ts';
import { SafetensorsFile } from '../../src/model/safetensors.ts';
import { HiddenStateCapture } from '../../src/oracle/hiddenStates.ts';
import { widenToF32 } from '../../src/kernels/cpu/dtype.ts';
import { PlantedBugBackend } from '../../examples/planted-bug.ts';
import { backendsUnderTest } from '../kernels/backends.ts';
import { fixturesDir, listFixtures } from '../helpers/fixtures.ts';
import { captureOutput, rose } from '../helpers/cli.ts';
import { join } from 'node:path';

const REL = 1e-4 / 15;
const io = captureOutput();

const backends = await backendsUnderTest();
afterAll(() => {
  for (const b of backends) b.destroy();
});

/** The reference's tensors, and the token rows it ran (its metadata "rows"). */
function reference(fixture: string) {
  const file = SafetensorsFile.open(join(fixturesDir, fixture, 'hidden-states.safetensors'));
  const rows: number[][] = JSON.parse(file.metadata.rows);
  const tensors = new Map(
    file.names().map((n) => {
      const w = file.read(n);
      return [n, { shape: [...w.shape], data: widenToF32(w.dtype, w.bytes) }] as const;
    }),
  );
  file.close();
  return { rows, tensors };
}

/** Runs the rows as one left-padded batch with a capture, and returns the captured tensors by name. */
async function capture(backend: Backend, fixture: string, rows: number[][], layers?: { from: number; to: number }) {
  const model = loadLlama(join(fixturesDir, fixture), backend);
  const cap = new HiddenStateCapture(backend, model.config.numHiddenLayers, layers);
  const cache = model.newKvCache(rows.length, Math.max(...rows.map((r) => r.length)));
  const { T } = model.prefill(cache, rows, true, cap.observe);
  const out = await cap.tensors(rows, T);
  return new Map(out.map((t) => [t.name, { shape: [...t.shape], data: new Float32Array(t.data.buffer) }] as const));
}

/** max |a − b| and max |a|. */
function compare(want: Float32Array, got: Float32Array) {
  let maxAbs = 0;
  let maxRef = 0;
  for (let i = 0; i < want.length; i++) {
    maxAbs = Math.max(maxAbs, Math.abs(want[i] - got[i]));
    maxRef = Math.max(maxRef, Math.abs(want[i]));
  }
  return { maxAbs, maxRef };
}

describe.each(backends.map((b) => [b.name, b] as const))('hidden states on %s', (_name, backend) => {
  it.each(listFixtures())('%s: every stage of both rows matches the float64 reference within its bound', async (fixture) => {
    const ref = reference(fixture);
    const got = await capture(backend, fixture, ref.rows);
    expect([...got.keys()].sort()).toEqual([...ref.tensors.keys()].sort());
    for (const [name, want] of ref.tensors) {
      const g = got.get(name)!;
      expect(g.shape, name).toEqual(want.shape);
      const { maxAbs, maxRef } = compare(want.data, g.data);
      const bound = /^hidden\.\d+\.0$/.test(name) ? 0 : REL * maxRef;
      expect(maxAbs, `${name}: max |Δ| vs the float64 reference (bound ${bound.toExponential(2)})`).toBeLessThanOrEqual(bound);
    }
  });
});

// Which stages are kept is the capture's own logic, the same on every backend: the CPU is enough.
describe('--layers', () => {
  const cpu = backends[0];
  it('a..b keeps hidden.<row>.a..b, and normed.<row> only when b is the last layer', async () => {
    const { rows } = reference('tiny-gqa-bf16-tied'); // L = 3
    expect([...(await capture(cpu, 'tiny-gqa-bf16-tied', rows, { from: 1, to: 2 })).keys()]).toEqual([
      'hidden.0.1',
      'hidden.0.2',
      'hidden.1.1',
      'hidden.1.2',
    ]);
    expect([...(await capture(cpu, 'tiny-gqa-bf16-tied', rows, { from: 3, to: Number.POSITIVE_INFINITY })).keys()]).toEqual([
      'hidden.0.3',
      'normed.0',
      'hidden.1.3',
      'normed.1',
    ]);
  });
});

describe('the bound catches a real bug', () => {
  it.each(listFixtures())('%s: layer 1 without its RMSNorm eps fails the bound at hidden.<row>.1', async (fixture) => {
    const ref = reference(fixture);
    const buggy = new PlantedBugBackend('eps', 1);
    const got = await capture(buggy, fixture, ref.rows);
    buggy.destroy();
    for (const row of [0, 1]) {
      const name = `hidden.${row}.1`;
      const { maxAbs, maxRef } = compare(ref.tensors.get(name)!.data, got.get(name)!.data);
      expect(maxAbs, name).toBeGreaterThan(5 * REL * maxRef);
      expect(compare(ref.tensors.get(`hidden.${row}.0`)!.data, got.get(`hidden.${row}.0`)!.data).maxAbs).toBe(0);
    }
  });
});

describe('rose logits --hidden-states, end to end', () => {
  const fixture = 'tiny-mha-f32'; // L = 2
  const ids = () => reference(fixture).rows.flatMap((r) => ['--ids', r.join(',')]);

  it('writes logits, hidden.<row>.<k> and normed.<row> with the rows in its metadata, and rose diff finds it equal to the reference', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'rose-hidden-')), 'dump.safetensors');
    expect(await rose('logits', '--model', join(fixturesDir, fixture), ...ids(), '--hidden-states', '--out', out)).toBe(0);
    expect(io.stdout).toMatch(/; hidden states hidden\.<row>\.0\.\.2 and normed\.<row> \(L = 2\)$/m);
    const file = SafetensorsFile.open(out);
    expect(file.names()).toEqual([
      'logits.0',
      'logits.1',
      'hidden.0.0',
      'hidden.0.1',
      'hidden.0.2',
      'normed.0',
      'hidden.1.0',
      'hidden.1.1',
      'hidden.1.2',
      'normed.1',
    ]);
    expect(JSON.parse(file.metadata.rows)).toEqual(reference(fixture).rows);
    file.close();
    io.stdout = '';
    // The reference has no logits: those are listed, not compared. 1e-4 is the f32 bar.
    expect(await rose('diff', join(fixturesDir, fixture, 'hidden-states.safetensors'), out)).toBe(0);
    expect(io.stdout).toMatch(/^not in REF, not compared: logits\.0, logits\.1$/m);
    expect(io.stdout).toMatch(/^all within tolerance: max \|Δ\| \S+ ≤ 1\.0e-4 over 8 tensor\(s\)/m);
  });

  it.each([
    [['--layers', '1..5'], 1, /^rose: error\[INPUT\]: --layers 1\.\.5 is outside this model's stages 0\.\.2 \(/],
    [['--layers', '2..1'], 2, /layer range "2\.\.1" ends before it starts/],
    [['--layers', 'top'], 2, /"top" is not a layer range/],
  ])('%j: one line, exit %i', async (args, code, message) => {
    const out = join(mkdtempSync(join(tmpdir(), 'rose-hidden-')), 'dump.safetensors');
    expect(await rose('logits', '--model', join(fixturesDir, fixture), ...ids(), ...args, '--out', out)).toBe(code);
    expect(io.stderr).toMatch(message);
    expect(io.stderr.trim().split('\n')).toHaveLength(1);
  });
});

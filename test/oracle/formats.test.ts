/**
 * `rose diff` reads what other backends dump: safetensors (F32, F16, BF16), .npy written by numpy
 * itself (test/fixtures/npy/make.py: f2, f4, f8, big-endian, Fortran order, format 2.0, a batch
 * dimension of 1), raw little-endian f32, and folders of them. Every file holds (i·5 + j)/8 − 1 for
 * the (3, 5) array, exact in every float width, so each must read back bit-exactly.
 */
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openDump } from '../../src/oracle/dumps.ts';
import { writeSafetensors } from '../../src/model/safetensors.ts';
import { captureOutput, rose } from '../helpers/cli.ts';
import { fixturesDir } from '../helpers/fixtures.ts';

const io = captureOutput();
const npyDir = join(fixturesDir, 'npy');
const expected = Float64Array.from({ length: 15 }, (_, k) => k / 8 - 1); // (3, 5), row-major

/** The same values as a safetensors tensor, F32 or F16/BF16 (both exact for these values). */
function safetensorsOf(dir: string, name: string, dtype: 'F32' | 'F16' | 'BF16'): string {
  let data: Uint8Array;
  if (dtype === 'F32') data = new Uint8Array(Float32Array.from(expected).buffer);
  else {
    // Hand-encoded halves: k/8 − 1 has at most 4 significant bits, so both encodings are exact.
    const halves = Uint16Array.from(expected, (v) =>
      dtype === 'BF16' ? new Uint32Array(Float32Array.of(v).buffer)[0] >>> 16 : f16Bits(v),
    );
    data = new Uint8Array(halves.buffer);
  }
  const path = join(dir, `${name}.safetensors`);
  writeSafetensors(path, [{ name, dtype, shape: [3, 5], data }]);
  return path;
}

/** IEEE half bits of a value that is exactly representable (normal or zero), written out longhand. */
function f16Bits(v: number): number {
  if (v === 0) return 0;
  const sign = v < 0 ? 0x8000 : 0;
  const e = Math.floor(Math.log2(Math.abs(v)));
  const mantissa = Math.round((Math.abs(v) / 2 ** e - 1) * 1024);
  return sign | ((e + 15) << 10) | mantissa;
}

const tmp = () => mkdtempSync(join(tmpdir(), 'rose-diff-formats-'));

describe('rose diff inputs read back exactly', () => {
  it.each(['f4.npy', 'f8.npy', 'f2.npy', 'f4-big-endian.npy', 'f4-fortran.npy', 'f4-v2.npy'])(
    'numpy %s: shape [3, 5], every value exact',
    (file) => {
      const dump = openDump(join(npyDir, file), 'OTHER');
      const t = [...dump.tensors.values()][0];
      expect(dump.single).toBe(true);
      expect(t.name).toBe(file.replace(/\.npy$/, ''));
      expect(t.shape).toEqual([3, 5]);
      expect(Array.from(t.read())).toEqual(Array.from(expected));
      dump.close();
    },
  );

  it('raw little-endian f32 (numpy tofile) takes --shape, or the shape of the tensor it is compared with', () => {
    const withShape = openDump(join(npyDir, 'f4.bin'), 'OTHER', [3, 5]);
    expect(Array.from([...withShape.tensors.values()][0].read())).toEqual(Array.from(expected));
    withShape.close();
    const without = openDump(join(npyDir, 'f4.bin'), 'OTHER');
    const t = [...without.tensors.values()][0];
    expect(t.shape).toBeUndefined();
    expect(t.elements).toBe(15);
    expect(Array.from(t.read([3, 5]))).toEqual(Array.from(expected));
    without.close();
  });

  it.each(['F32', 'F16', 'BF16'] as const)('safetensors %s', (dtype) => {
    const path = safetensorsOf(tmp(), 'logits.0', dtype);
    const dump = openDump(path, 'REF');
    expect(dump.single).toBe(false);
    expect(Array.from(dump.tensors.get('logits.0')!.read())).toEqual(Array.from(expected));
    dump.close();
  });

  // End to end: each format against an F32 safetensors REF of the same values is equal (exit 0).
  it.each([
    ['f4.npy', []],
    ['f8.npy', []],
    ['f2.npy', []],
    ['f4-big-endian.npy', []],
    ['f4-fortran.npy', []],
    ['f4-v2.npy', []],
    ['f4-batch1.npy', []], // (1, 3, 5): a batch of one compares with (3, 5)
    ['f4.bin', []], // raw: the shape comes from REF's tensor
    ['f4.bin', ['--shape', '3,5']],
  ])('rose diff REF.safetensors %s %j: equal, exit 0', async (file, extra) => {
    const ref = safetensorsOf(tmp(), 'logits.0', 'F32');
    expect(await rose('diff', ref, join(npyDir, file), ...extra)).toBe(0);
    expect(io.stdout).toMatch(/^all within tolerance: max \|Δ\| 0 ≤ 1\.0e-4 over 1 tensor\(s\) \(the files are equal\)$/m);
    expect(io.stderr).toBe('');
  });

  it('a folder of per-tensor files pairs with REF by file name, and what is missing is listed, not compared', async () => {
    const dir = tmp();
    const ref = join(dir, 'ref.safetensors');
    const f32 = new Uint8Array(Float32Array.from(expected).buffer);
    writeSafetensors(ref, [
      { name: 'logits.0', dtype: 'F32', shape: [3, 5], data: f32 },
      { name: 'hidden.0.1', dtype: 'F32', shape: [3, 5], data: f32 },
      { name: 'hidden.0.2', dtype: 'F32', shape: [3, 5], data: f32 },
    ]);
    const other = join(dir, 'dump');
    mkdirSync(other);
    copyFileSync(join(npyDir, 'f4.npy'), join(other, 'logits.0.npy'));
    copyFileSync(join(npyDir, 'f4.bin'), join(other, 'hidden.0.1.bin'));
    writeFileSync(join(other, 'README.txt'), 'not a tensor: skipped');
    expect(await rose('diff', ref, other)).toBe(0);
    expect(io.stdout).toMatch(/^hidden\.0\.1 +\[3, 5\] .* ok$/m);
    expect(io.stdout).toMatch(/^logits\.0 +\[3, 5\] .* 3\/3 +5\/5 +0 +ok$/m);
    expect(io.stdout).toMatch(/^not in OTHER, not compared: hidden\.0\.2$/m);
    expect(io.stdout).toMatch(/over 2 tensor\(s\)/);
  });

  it('a single file compares with the REF tensor it is named after, or the one --tensor names', async () => {
    const dir = tmp();
    const ref = join(dir, 'ref.safetensors');
    const f32 = new Uint8Array(Float32Array.from(expected).buffer);
    const shifted = new Uint8Array(Float32Array.from(expected, (v) => v + 1).buffer);
    writeSafetensors(ref, [
      { name: 'logits.0', dtype: 'F32', shape: [3, 5], data: shifted },
      { name: 'logits.1', dtype: 'F32', shape: [3, 5], data: f32 },
    ]);
    copyFileSync(join(npyDir, 'f4.npy'), join(dir, 'logits.1.npy'));
    expect(await rose('diff', ref, join(dir, 'logits.1.npy'))).toBe(0);
    expect(await rose('diff', ref, join(npyDir, 'f4.npy'), '--tensor', 'logits.1')).toBe(0);
    expect(await rose('diff', ref, join(npyDir, 'f4.npy'), '--tensor', 'logits.0')).toBe(1);
    expect(io.stdout).toMatch(/^first divergence: row 0, logits, position 0: max \|Δ\| 1\.0e\+0 > 1\.0e-4$/m);
  });
});

/**
 * normQkv: q, k, v = rmsnorm(x) · [wq; wk; wv]ᵀ (+ [bq; bk; bv]), the weights stacked by
 * uploadStacked; on every backend and variant (v1 the composition rmsnorm + three matmuls on the
 * stack's parts, WebGPU v2 the fused decode kernel), against a float64 reference.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { Backend, DType, HostWeight } from '../../src/kernels/backend.ts';
import { widenToF32 } from '../../src/kernels/cpu/dtype.ts';
import type { GpuWeight } from '../../src/kernels/webgpu/context.ts';
import { roseError } from '../helpers/errors.ts';
import {
  accepts,
  arbDtype,
  arbSeed,
  backends,
  cached,
  describeOnSplit,
  describeOp,
  expectClose,
  makeWeight,
  normedProjectionF64,
  rmsnormF64,
  rng,
  runs,
  splitRows,
  TIMEOUT,
  uniform,
  type VariantUnderTest,
  weightData,
  withScope,
} from './harness.ts';

/** q, k, v as float32 and their bounds, from the float64 projection of the normalised rows (harness). */
function reference(x: Float32Array, norm: Float32Array, w: Float32Array, b: Float32Array | undefined, M: number, parts: number[]) {
  const K = norm.length;
  const N = parts.reduce((a, n) => a + n, 0);
  const { value, bound } = normedProjectionF64(rmsnormF64(x, norm, M, K, 1e-6), w, b, M, N, K);
  let col = 0;
  return parts.map((n) => {
    const pick = (a: Float64Array) => Float64Array.from({ length: M * n }, (_, i) => a[Math.floor(i / n) * N + col + (i % n)]);
    const part = { want: Float32Array.from(pick(value)), bound: pick(bound) };
    col += n;
    return part;
  });
}

/** The case's weights in `dtype`: [wq; wk; wv] and [bq; bk; bv] as host parts, and their stacked f32 values. */
function qkvCase(seed: number, dtype: DType, M: number, Nq: number, Nkv: number, K: number, bias: boolean) {
  const r = rng(seed);
  const x = uniform(r, M * K, -3, 3);
  const norm = makeWeight(dtype, [K], uniform(r, K, 0.5, 1.5));
  const parts = [Nq, Nkv, Nkv];
  const ws = parts.map((n, i) => ({ ...makeWeight(dtype, [n, K], weightData(r, n * K)).host, name: `w${'qkv'[i]}` }));
  const bs = bias ? parts.map((n, i) => ({ ...makeWeight(dtype, [n], uniform(r, n)).host, name: `b${'qkv'[i]}` })) : undefined;
  return { x, norm, ws, bs, parts, outs: reference(x, norm.ref, stackedValues(ws), bs && stackedValues(bs), M, parts) };
}

/** The f32 values of host weights (one dtype), their rows stacked. */
function stackedValues(hs: readonly HostWeight[]): Float32Array {
  const bytes = new Uint8Array(hs.reduce((n, h) => n + h.bytes.byteLength, 0));
  let at = 0;
  for (const h of hs) {
    bytes.set(h.bytes, at);
    at += h.bytes.byteLength;
  }
  return widenToF32(hs[0].dtype, bytes);
}

/** Runs normQkv on `be` for the case; true when the variant took it, having checked q, k and v. */
async function check(t: VariantUnderTest, be: Backend, c: ReturnType<typeof qkvCase>, M: number, label: string) {
  return withScope(be, async (s) => {
    const [q, k, v] = c.parts.map((n) => s.tensor([M, n]));
    const xt = s.tensor([M, c.norm.host.shape[0]], c.x);
    const norm = be.uploadWeight(c.norm.host);
    const wqkv = be.uploadStacked('wqkv', c.ws);
    const bqkv = c.bs && be.uploadStacked('bqkv', c.bs);
    if (!accepts(t, () => be.normQkv(q, k, v, xt, norm, 1e-6, wqkv, bqkv))) return false;
    for (const [i, out] of [q, k, v].entries()) {
      const { want, bound } = c.outs[i];
      expectClose(label, `normQkv ${'qkv'[i]}`, await be.read(out), want, (j) => bound[j]);
    }
    return true;
  });
}

describeOp('normQkv', (t) => {
  const { be } = t;
  it(
    'decode and prefill rows, GQA widths, bias or not: |Δ| ≤ (2K + 20)·u·(Σ|xn·w| + |b|) in q, k and v',
    async () => {
      const arb = fc.record({
        M: fc.integer({ min: 1, max: 7 }), // past the fused kernel's 4 rows: v2 refuses, auto composes
        Nq: fc.integer({ min: 1, max: 40 }),
        Nkv: fc.integer({ min: 1, max: 20 }), // q/k/v boundaries fall inside a workgroup's 4 rows
        K: fc.integer({ min: 1, max: 200 }),
        bias: fc.boolean(),
        dtype: arbDtype,
        seed: arbSeed,
      });
      await fc.assert(
        fc.asyncProperty(arb, async ({ M, Nq, Nkv, K, bias, dtype, seed }) => {
          const c = cached(JSON.stringify([M, Nq, Nkv, K, bias, dtype, seed]), () => qkvCase(seed, dtype, M, Nq, Nkv, K, bias));
          await check(t, be, c, M, t.label);
        }),
        runs(25),
      );
    },
    TIMEOUT,
  );
});

describe.each(backends.map((be) => [be.name, be] as const))('normQkv on %s', (_name, be) => {
  it.each([1, 2])('v%i refuses a weight that was not stacked, saying how to stack it', async (id) => {
    if (!be.variants.normQkv.variants.some((v) => v.id === id)) return;
    be.forceKernels({ normQkv: id });
    await withScope(be, async (s) => {
      const w = be.uploadWeight(makeWeight('f32', [3, 2], new Float32Array(6)).host);
      const n = be.uploadWeight(makeWeight('f32', [2], Float32Array.of(1, 1)).host);
      const [q, k, v, x] = [s.tensor([1, 1]), s.tensor([1, 1]), s.tensor([1, 1]), s.tensor([1, 2])];
      const e = roseError(() => be.normQkv(q, k, v, x, n, 1e-6, w));
      expect(e.code).toBe('INPUT');
      expect(e.message).toBe('normQkv: weight w3x2 is not a stack of 3 weights');
      expect(e.hint).toMatch(/uploadStacked/);
      // A stacked weight with a bias that is not stacked: the bias is named.
      const parts = ['wq', 'wk', 'wv'].map((name) => ({ ...makeWeight('f32', [1, 2], new Float32Array(2)).host, name }));
      const stacked = be.uploadStacked('wqkv', parts);
      const b = be.uploadWeight(makeWeight('f32', [3], new Float32Array(3)).host);
      const eb = roseError(() => be.normQkv(q, k, v, x, n, 1e-6, stacked, b));
      expect([eb.code, eb.message]).toEqual(['INPUT', 'normQkv: weight w3 is not a stack of 3 weights']);
    });
    be.forceKernels({});
  });
});

// q, k and v of a model whose stacked weight is over the binding limit: chunks that cut through a part.
await describeOnSplit('normQkv', 'a stack split across buffers, cut inside its parts, every dtype, with bias', async (t, be) => {
  for (const dtype of ['f32', 'f16', 'bf16'] as const) {
    const [Nq, Nkv, K] = [13, 5, 9];
    const c = qkvCase(dtype.length, dtype, 2, Nq, Nkv, K, true);
    const chunks = (be.uploadStacked('probe', c.ws) as GpuWeight).chunks;
    expect(chunks.length).toBe(Math.ceil((Nq + 2 * Nkv) / splitRows(dtype, K)));
    expect(chunks.some((ch) => ch.row0 < Nq && ch.row0 + ch.rows > Nq)).toBe(true); // a chunk holds rows of q and k
    for (const M of [2, 6]) await check(t, be, M === 2 ? c : qkvCase(7, dtype, M, Nq, Nkv, K, true), M, `${t.label} (split)`);
  }
});

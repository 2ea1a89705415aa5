/**
 * normMatmul: out (M, N) = rmsnorm(x) · wᵀ (+ bias), the head; on every backend and variant (v1 the
 * composition rmsnorm + matmul, WebGPU v2 the fused decode kernel), against a float64 reference.
 */
import { it } from 'vitest';
import fc from 'fast-check';
import type { DType } from '../../src/kernels/backend.ts';
import {
  accepts,
  arbDtype,
  arbSeed,
  cached,
  describeOp,
  describeSplit,
  expectClose,
  makeWeight,
  normedProjectionF64,
  rmsnormF64,
  rng,
  runs,
  TIMEOUT,
  uniform,
  weightData,
  withScope,
} from './harness.ts';

/** The reference, in float64: the rows normalised, then projected; and each output's bound (harness). */
function reference(
  x: Float32Array,
  norm: Float32Array,
  eps: number,
  w: Float32Array,
  bias: Float32Array | undefined,
  M: number,
  N: number,
) {
  const K = norm.length;
  const { value, bound } = normedProjectionF64(rmsnormF64(x, norm, M, K, eps), w, bias, M, N, K);
  return { want: Float32Array.from(value), tol: (i: number) => bound[i] };
}

function normMatmulCase(seed: number, dtype: DType, M: number, N: number, K: number, bias: boolean) {
  const r = rng(seed);
  const x = uniform(r, M * K, -3, 3);
  const norm = makeWeight(dtype, [K], uniform(r, K, 0.5, 1.5));
  const w = makeWeight(dtype, [N, K], weightData(r, N * K));
  const b = bias ? makeWeight(dtype, [N], uniform(r, N)) : undefined;
  return { x, norm, w, b, ...reference(x, norm.ref, 1e-5, w.ref, b?.ref, M, N) };
}

describeOp('normMatmul', (t) => {
  const { be } = t;
  it(
    'decode and prefill rows, bias or not: |Δ| ≤ (2K + 20)·u·(Σ|xn·w| + |b|)',
    async () => {
      const arb = fc.record({
        M: fc.integer({ min: 1, max: 7 }), // past the fused kernel's 4 rows: v2 refuses, auto composes
        N: fc.integer({ min: 1, max: 70 }), // not a multiple of the 4 rows per workgroup
        K: fc.integer({ min: 1, max: 300 }), // past the 64 threads
        bias: fc.boolean(),
        dtype: arbDtype,
        seed: arbSeed,
      });
      await fc.assert(
        fc.asyncProperty(arb, ({ M, N, K, bias, dtype, seed }) =>
          withScope(be, async (s) => {
            const c = cached(JSON.stringify([M, N, K, bias, dtype, seed]), () => normMatmulCase(seed, dtype, M, N, K, bias));
            const out = s.tensor([M, N]);
            const xt = s.tensor([M, K], c.x);
            const [norm, w, b] = [c.norm, c.w, c.b].map((h) => h && be.uploadWeight(h.host));
            if (!accepts(t, () => be.normMatmul(out, xt, norm!, 1e-5, w!, b))) return;
            expectClose(t.label, 'normMatmul', await be.read(out), c.want, c.tol);
          }),
        ),
        runs(40),
      );
    },
    TIMEOUT,
  );
});

// The tied lm_head of a vocabulary over the binding limit: the (V, D) table as the (N, K) weight.
await describeSplit('normMatmul', 'a weight split by rows across buffers gives the same outputs, every dtype', async (t, c) => {
  const norm = makeWeight(c.dtype, [c.D], uniform(c.r, c.D, 0.5, 1.5));
  const nw = c.be.uploadWeight(norm.host);
  for (const M of [2, 7]) {
    const x = uniform(c.r, M * c.D, -2, 2);
    const out = c.s.tensor([M, c.V]);
    const xt = c.s.tensor([M, c.D], x);
    if (!accepts(t, () => c.be.normMatmul(out, xt, nw, 1e-6, c.w))) continue;
    const { want, tol } = reference(x, norm.ref, 1e-6, c.ref, undefined, M, c.V);
    expectClose(`${t.label} (split)`, 'normMatmul', await c.be.read(out), want, tol);
  }
});

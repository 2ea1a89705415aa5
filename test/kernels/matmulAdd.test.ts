/**
 * matmulAdd: x (M, N) += y (M, K) · wᵀ (+ bias), a projection and its residual add; on every backend
 * and variant (v1 the composition matmul + addInPlace, WebGPU v2 the matvec and v3 the tiled matmul
 * with the add in their epilogue), against a float64 reference.
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
  rng,
  runs,
  TIMEOUT,
  u,
  uniform,
  weightData,
  withScope,
} from './harness.ts';

/**
 * The reference in float64, x + Σ_k y·w + b, and each output's bound:
 *   (K + 2)·u·(Σ|y·w| + |b|) + 2u·|x + Σ y·w + b|.
 * Why: the product and bias within matmul's bound (a sum of K + 1 rounded terms in any order), then
 * one rounded addition to x, off by u of its result (2u covers the product's own error in it).
 */
function reference(x: Float32Array, y: Float32Array, w: Float32Array, bias: Float32Array | undefined, M: number, N: number, K: number) {
  const want = new Float32Array(M * N);
  const bound = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = bias ? bias[n] : 0;
      let abs = bias ? Math.abs(bias[n]) : 0;
      for (let k = 0; k < K; k++) {
        s += y[m * K + k] * w[n * K + k];
        abs += Math.abs(y[m * K + k] * w[n * K + k]);
      }
      const i = m * N + n;
      want[i] = x[i] + s;
      bound[i] = (K + 2) * u * abs + 2 * u * Math.abs(x[i] + s) + 1e-37;
    }
  }
  return { want, tol: (i: number) => bound[i] };
}

function matmulAddCase(seed: number, dtype: DType, M: number, N: number, K: number, bias: boolean) {
  const r = rng(seed);
  const x = uniform(r, M * N, -4, 4); // the residual stream
  const y = uniform(r, M * K, -2, 2);
  const w = makeWeight(dtype, [N, K], weightData(r, N * K));
  const b = bias ? makeWeight(dtype, [N], uniform(r, N)) : undefined;
  return { x, y, w, b, ...reference(x, y, w.ref, b?.ref, M, N, K) };
}

describeOp('matmulAdd', (t) => {
  const { be } = t;
  it(
    'decode and prefill shapes, bias or not: |Δ| ≤ (K + 2)·u·(Σ|y·w| + |b|) + 2u·|result|',
    async () => {
      const arb = fc.record({
        M: fc.oneof(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 5, max: 70 })), // the matvec's rows, then tiles
        N: fc.integer({ min: 1, max: 100 }),
        K: fc.integer({ min: 1, max: 200 }),
        bias: fc.boolean(),
        dtype: arbDtype,
        seed: arbSeed,
      });
      await fc.assert(
        fc.asyncProperty(arb, ({ M, N, K, bias, dtype, seed }) =>
          withScope(be, async (s) => {
            const c = cached(JSON.stringify([M, N, K, bias, dtype, seed]), () => matmulAddCase(seed, dtype, M, N, K, bias));
            const xt = s.tensor([M, N], c.x);
            const yt = s.tensor([M, K], c.y);
            if (!accepts(t, () => be.matmulAdd(xt, yt, be.uploadWeight(c.w.host), c.b && be.uploadWeight(c.b.host)))) return;
            expectClose(t.label, 'matmulAdd', await be.read(xt), c.want, c.tol);
          }),
        ),
        runs(30),
      );
    },
    TIMEOUT,
  );
});

// A projection whose weight is over the binding limit: every chunk adds its rows of the product.
await describeSplit('matmulAdd', 'a weight split by rows across buffers gives the same sums, every dtype, with bias', async (t, c) => {
  const bias = makeWeight(c.dtype, [c.V], uniform(c.r, c.V));
  const bw = c.be.uploadWeight(bias.host);
  for (const M of [2, 7]) {
    const x = uniform(c.r, M * c.V, -4, 4);
    const y = uniform(c.r, M * c.D, -2, 2);
    const xt = c.s.tensor([M, c.V], x);
    if (!accepts(t, () => c.be.matmulAdd(xt, c.s.tensor([M, c.D], y), c.w, bw))) continue;
    const { want, tol } = reference(x, y, c.ref, bias.ref, M, c.V, c.D);
    expectClose(`${t.label} (split)`, 'matmulAdd', await c.be.read(xt), want, tol);
  }
});

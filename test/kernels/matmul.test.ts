/**
 * matmul: out (M, N) = x (M, K) · wᵀ (+ bias), on every backend and registered variant (CPU v1–v3,
 * WebGPU's reference, matvec and tiled kernels), against the reference. The CPU variants are also
 * checked bit for bit against v1, on 1–3 threads, in cpuFast.test.ts.
 */
import { it } from 'vitest';
import fc from 'fast-check';
import type { DType } from '../../src/kernels/backend.ts';
import { matmulCpu } from '../../src/kernels/matmul.ts';
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

/** The reference: the CPU twin, v1 (f64 sums, k in order). */
function reference(x: Float32Array, w: Float32Array, bias: Float32Array | undefined, M: number, N: number, K: number): Float32Array {
  const want = new Float32Array(M * N);
  matmulCpu(want, x, w, bias, M, N, K);
  return want;
}

/**
 * Bound for out[m, n]: a sum of K rounded products in ANY order (k in order, strided + tree in the
 * matvec, 16-wide tiles in the tiled kernel) is within γ_{K+1}·Σ|x_k·w_k| of the exact one; + 1 for the bias.
 */
function matmulTol(
  x: Float32Array,
  w: Float32Array,
  bias: Float32Array | undefined,
  M: number,
  N: number,
  K: number,
): (i: number) => number {
  const tol = new Float64Array(M * N);
  for (let i = 0; i < M * N; i++) {
    const m = Math.floor(i / N);
    const n = i % N;
    let abs = bias ? Math.abs(bias[n]) : 0;
    for (let k = 0; k < K; k++) abs += Math.abs(x[m * K + k] * w[n * K + k]);
    tol[i] = (K + 2) * u * abs + 1e-37;
  }
  return (i) => tol[i];
}

/** A case's inputs, reference and bound, built once for all variants (`cached`). */
function matmulCase(r: () => number, dtype: DType, M: number, N: number, K: number, bias: boolean, xRange: number) {
  const x = uniform(r, M * K, -xRange, xRange);
  const w = makeWeight(dtype, [N, K], weightData(r, N * K));
  const b = bias ? makeWeight(dtype, [N], uniform(r, N)) : undefined;
  return { x, w, b, want: reference(x, w.ref, b?.ref, M, N, K), tol: matmulTol(x, w.ref, b?.ref, M, N, K) };
}

describeOp('matmul', (t) => {
  const { be } = t;
  it(
    'decode and prefill shapes, bias or not, |Δ| ≤ (K + 2)·u·(Σ|x·w| + |b|)',
    async () => {
      const arb = fc.record({
        M: fc.oneof(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 5, max: 40 }), fc.integer({ min: 60, max: 140 })), // several 64-row tiles
        N: fc.integer({ min: 1, max: 150 }),
        K: fc.integer({ min: 1, max: 300 }),
        bias: fc.boolean(),
        dtype: arbDtype,
        seed: arbSeed,
      });
      await fc.assert(
        fc.asyncProperty(arb, ({ M, N, K, bias, dtype, seed }) =>
          withScope(be, async (s) => {
            const c = cached(JSON.stringify([M, N, K, bias, dtype, seed]), () => matmulCase(rng(seed), dtype, M, N, K, bias, 2));
            const out = s.tensor([M, N]);
            const xt = s.tensor([M, K], c.x);
            if (!accepts(t, () => be.matmul(out, xt, be.uploadWeight(c.w.host), c.b && be.uploadWeight(c.b.host)))) return;
            expectClose(t.label, 'matmul', await be.read(out), c.want, c.tol);
          }),
        ),
        runs(80),
      );
    },
    TIMEOUT,
  );

  it(
    'a 70 001-row weight (a big vocab): grids past 65 535 workgroups fold into x·y',
    async () => {
      await withScope(be, async (s) => {
        const [M, N, K] = [2, 70_001, 5];
        const c = cached('grid', () => matmulCase(rng(11), 'f16', M, N, K, false, 1));
        const out = s.tensor([M, N]);
        const xt = s.tensor([M, K], c.x);
        if (!accepts(t, () => be.matmul(out, xt, be.uploadWeight(c.w.host)))) return;
        expectClose(`${t.label} (2-D grid)`, 'matmul', await be.read(out), c.want, c.tol);
      });
    },
    TIMEOUT,
  );
});

// The tied lm_head of a vocabulary over the binding limit: the (V, D) table as the (N, K) weight.
await describeSplit('matmul', 'a weight split by rows across buffers gives the same outputs, every dtype, with bias', async (t, c) => {
  const bias = makeWeight(c.dtype, [c.V], uniform(c.r, c.V));
  const bw = c.be.uploadWeight(bias.host);
  for (const M of [2, 7]) {
    const x = uniform(c.r, M * c.D, -2, 2);
    const out = c.s.tensor([M, c.V]);
    const xt = c.s.tensor([M, c.D], x);
    if (!accepts(t, () => c.be.matmul(out, xt, c.w, bw))) continue;
    const want = reference(x, c.ref, bias.ref, M, c.V, c.D);
    expectClose(`${t.label} (split)`, 'matmul', await c.be.read(out), want, matmulTol(x, c.ref, bias.ref, M, c.V, c.D));
  }
});

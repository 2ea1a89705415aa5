/**
 * normGateUpSwiglu: out (M, F) = silu(xn · wGateᵀ + bGate) ⊙ (xn · wUpᵀ + bUp), xn = rmsnorm(x); on
 * every backend and variant (v1 the composition rmsnorm, matmul, matmul, swiglu; WebGPU v2 the fused
 * decode kernel), against a float64 reference.
 */
import { expect, it } from 'vitest';
import fc from 'fast-check';
import type { DType } from '../../src/kernels/backend.ts';
import type { GpuWeight } from '../../src/kernels/webgpu/context.ts';
import {
  accepts,
  arbDtype,
  arbSeed,
  cached,
  describeOnSplit,
  describeOp,
  expectClose,
  makeWeight,
  normedProjectionF64,
  rmsnormF64,
  rng,
  runs,
  TIMEOUT,
  u,
  uniform,
  weightData,
  withScope,
} from './harness.ts';

/** silu'(g) = σ(g)·(1 + g·(1 − σ(g))) never exceeds this (its maximum, ≈ 1.0998 at g ≈ 2.4). */
const SILU_SLOPE = 1.1;

/**
 * The reference in float64: g and u from the normalised rows (harness: each within Eg, Eu of its
 * bound), then silu(g)·u; and each output's bound:
 *   1.1·Eg·|u| + |silu(g)|·Eu + 1.1·Eg·Eu + (8 + 2|g|)·u·(|silu(g)| + 1.1·Eg)·(|u| + Eu).
 * Why: g and u arrive off by at most Eg and Eu; silu moves by at most 1.1·Eg (its slope); then the
 * f32 evaluation of silu(g)·u = (g / (1 + exp(−g)))·u rounds: exp within (3 + 2|g|) ulp (WGSL), the
 * sum 1 ulp, the division 2.5 ulp, the product 1 ulp (an error of exp's result moves silu by at most
 * as much, relatively).
 */
function reference(
  x: Float32Array,
  norm: Float32Array,
  wg: Float32Array,
  wu: Float32Array,
  bg: Float32Array | undefined,
  bu: Float32Array | undefined,
  M: number,
  F: number,
) {
  const K = norm.length;
  const xn = rmsnormF64(x, norm, M, K, 1e-5);
  const gate = normedProjectionF64(xn, wg, bg, M, F, K);
  const up = normedProjectionF64(xn, wu, bu, M, F, K);
  const want = new Float32Array(M * F);
  const bound = new Float64Array(M * F);
  for (let i = 0; i < M * F; i++) {
    const [g, v, Eg, Eu] = [gate.value[i], up.value[i], gate.bound[i], up.bound[i]];
    const silu = g / (1 + Math.exp(-g));
    want[i] = silu * v;
    const rounding = (8 + 2 * Math.abs(g)) * u * (Math.abs(silu) + SILU_SLOPE * Eg) * (Math.abs(v) + Eu);
    bound[i] = SILU_SLOPE * Eg * Math.abs(v) + Math.abs(silu) * Eu + SILU_SLOPE * Eg * Eu + rounding + 1e-37;
  }
  return { want, tol: (i: number) => bound[i] };
}

function gateUpCase(seed: number, dtype: DType, M: number, F: number, K: number, bias: boolean) {
  const r = rng(seed);
  const x = uniform(r, M * K, -3, 3);
  const norm = makeWeight(dtype, [K], uniform(r, K, 0.5, 1.5));
  const [wg, wu] = [0, 1].map(() => makeWeight(dtype, [F, K], weightData(r, F * K)));
  const [bg, bu] = bias ? [0, 1].map(() => makeWeight(dtype, [F], uniform(r, F))) : [];
  return { x, norm, wg, wu, bg, bu, ...reference(x, norm.ref, wg.ref, wu.ref, bg?.ref, bu?.ref, M, F) };
}

describeOp('normGateUpSwiglu', (t) => {
  const { be } = t;
  it(
    'decode and prefill rows, bias or not: within the propagated bound of g and u (see reference)',
    async () => {
      const arb = fc.record({
        M: fc.integer({ min: 1, max: 7 }), // past the fused kernel's 4 rows: v2 refuses, auto composes
        F: fc.integer({ min: 1, max: 70 }), // odd F: the last workgroup's second column is past the end
        K: fc.integer({ min: 1, max: 200 }),
        bias: fc.boolean(),
        dtype: arbDtype,
        seed: arbSeed,
      });
      await fc.assert(
        fc.asyncProperty(arb, ({ M, F, K, bias, dtype, seed }) =>
          withScope(be, async (s) => {
            const c = cached(JSON.stringify([M, F, K, bias, dtype, seed]), () => gateUpCase(seed, dtype, M, F, K, bias));
            const out = s.tensor([M, F]);
            const xt = s.tensor([M, K], c.x);
            const [norm, wg, wu, bg, bu] = [c.norm, c.wg, c.wu, c.bg, c.bu].map((h) => h && be.uploadWeight(h.host));
            if (!accepts(t, () => be.normGateUpSwiglu(out, xt, norm!, 1e-5, wg!, wu!, bg, bu))) return;
            expectClose(t.label, 'normGateUpSwiglu', await be.read(out), c.want, c.tol);
          }),
        ),
        runs(25),
      );
    },
    TIMEOUT,
  );
});

// Gate and up over the binding limit, split at different rows: up is the second part of a stack behind
// 3 rows of padding, so its chunks start 3 rows off gate's, and each range of rows binds a chunk of each.
await describeOnSplit('normGateUpSwiglu', 'gate and up split across buffers at different rows, every dtype, with bias', async (t, be) => {
  for (const dtype of ['f32', 'f16', 'bf16'] as const) {
    const [F, K] = [17, 9];
    for (const M of [2, 6]) {
      const c = gateUpCase(dtype.length + M, dtype, M, F, K, true);
      const pad = makeWeight(dtype, [3, K], new Float32Array(3 * K)).host;
      const wu = be.uploadStacked('pad+up', [pad, c.wu.host]).parts![1] as GpuWeight;
      const [norm, wg, bg, bu] = [c.norm, c.wg, c.bg!, c.bu!].map((h) => be.uploadWeight(h.host));
      const cuts = (w: GpuWeight) => w.chunks.map((ch) => ch.row0);
      expect(cuts(wg as GpuWeight).length).toBeGreaterThan(1);
      expect(cuts(wu)).not.toEqual(cuts(wg as GpuWeight));
      await withScope(be, async (s) => {
        const out = s.tensor([M, F]);
        if (!accepts(t, () => be.normGateUpSwiglu(out, s.tensor([M, K], c.x), norm, 1e-5, wg, wu, bg, bu))) return;
        expectClose(`${t.label} (split)`, 'normGateUpSwiglu', await be.read(out), c.want, c.tol);
      });
    }
  }
});

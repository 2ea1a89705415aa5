/** rmsnorm: out (M, D) = w ⊙ x / sqrt(mean(x²) + eps), on every backend and variant, against the reference. */
import { it } from 'vitest';
import fc from 'fast-check';
import { rmsnormCpu } from '../../src/kernels/rmsnorm.ts';
import { arbDtype, arbSeed, describeOp, expectClose, makeWeight, rng, run, runs, TIMEOUT, u, uniform, withScope } from './harness.ts';

/** The reference: the CPU twin (f64 sum of squares per row). */
function reference(x: Float32Array, w: Float32Array, D: number, eps: number): Float32Array {
  const want = new Float32Array(x.length);
  rmsnormCpu(want, x, w, D, eps);
  return want;
}

describeOp('rmsnorm', (t) => {
  const { be } = t;
  it(
    'rtol (D + 16)·u',
    async () => {
      // The sum of D positive squares in any order is within γ_D ≈ D·u relatively (halved by the sqrt);
      // sqrt, the division and the two multiplies add ~12 ulp (WGSL: sqrt/÷ are 2.5 ulp).
      const arb = fc.record({
        M: fc.integer({ min: 1, max: 6 }),
        D: fc.integer({ min: 1, max: 600 }),
        eps: fc.constantFrom(1e-6, 1e-5),
        dtype: arbDtype,
        seed: arbSeed,
      });
      await fc.assert(
        fc.asyncProperty(arb, ({ M, D, eps, dtype, seed }) =>
          withScope(be, async (s) => {
            const r = rng(seed);
            const x = uniform(r, M * D, -3, 3);
            const { host, ref } = makeWeight(dtype, [D], uniform(r, D, 0.5, 1.5));
            const out = s.tensor([M, D]);
            const xt = s.tensor([M, D], x);
            run(t, () => be.rmsnorm(out, xt, be.uploadWeight(host), eps));
            const want = reference(x, ref, D, eps);
            expectClose(t.label, 'rmsnorm', await be.read(out), want, (i) => (D + 16) * u * Math.abs(want[i]) + 1e-37);
          }),
        ),
        runs(40),
      );
    },
    TIMEOUT,
  );

  it(
    'a grid past 65 535 workgroups folds into x·y: 66 000 rows',
    async () => {
      await withScope(be, async (s) => {
        const r = rng(12);
        const rows = 66_000;
        const xs = uniform(r, rows * 3, -3, 3);
        const nw = makeWeight('bf16', [3], Float32Array.of(1, -0.5, 2));
        const normed = s.tensor([rows, 3]);
        const xt = s.tensor([rows, 3], xs);
        run(t, () => be.rmsnorm(normed, xt, be.uploadWeight(nw.host), 1e-6));
        const want = reference(xs, nw.ref, 3, 1e-6);
        expectClose(`${t.label} (2-D grid)`, 'rmsnorm', await be.read(normed), want, (i) => 19 * u * Math.abs(want[i]) + 1e-37);
      });
    },
    TIMEOUT,
  );
});

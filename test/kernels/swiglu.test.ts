/** swiglu: out (M, F) = silu(gate) ⊙ up, on every backend and variant, against the reference. */
import { it } from 'vitest';
import fc from 'fast-check';
import { swigluCpu } from '../../src/kernels/swiglu.ts';
import { arbSeed, describeOp, expectClose, rng, run, runs, TIMEOUT, u, uniform, withScope } from './harness.ts';

/** The reference: the CPU twin (f64 exp). */
function reference(gate: Float32Array, up: Float32Array): Float32Array {
  const want = new Float32Array(gate.length);
  swigluCpu(want, gate, up);
  return want;
}

describeOp('swiglu', (t) => {
  const { be } = t;
  it(
    'rtol (9 + 2|g|)·u, atol 1e-30 (exp clamp), finite at |g| = 100',
    async () => {
      // exp(−g) is (3 + 2|g|) ulp in WGSL; 1 + e, the division and the product add ~5 ulp, the twin's
      // final rounding 1. Past g < −80 the kernel clamps exp: its result and the twin's are both < 1e-32.
      const arb = fc.record({ n: fc.integer({ min: 1, max: 700 }), seed: arbSeed });
      await fc.assert(
        fc.asyncProperty(arb, ({ n, seed }) =>
          withScope(be, async (s) => {
            const r = rng(seed);
            const gate = uniform(r, n, -12, 12);
            for (let i = 0; i < n; i++) if (r() < 0.03) gate[i] = r() < 0.5 ? 100 : -100;
            const up = uniform(r, n, -3, 3);
            const out = s.tensor([n]);
            const gt = s.tensor([n], gate);
            const ut = s.tensor([n], up);
            run(t, () => be.swiglu(out, gt, ut));
            const want = reference(gate, up);
            expectClose(t.label, 'swiglu', await be.read(out), want, (i) => (9 + 2 * Math.abs(gate[i])) * u * Math.abs(want[i]) + 1e-30);
          }),
        ),
        runs(30),
      );
    },
    TIMEOUT,
  );
});

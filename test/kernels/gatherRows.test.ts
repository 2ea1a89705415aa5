/** gatherRows: out (R, D) = x (M, D)[rows], on every backend and variant, against the reference. */
import { it } from 'vitest';
import fc from 'fast-check';
import { gatherRowsCpu } from '../../src/kernels/gatherRows.ts';
import { arbSeed, describeOp, exact, expectClose, rng, run, runs, TIMEOUT, uniform, withScope } from './harness.ts';

/** The reference: the CPU twin (row copies). */
function reference(x: Float32Array, rows: Int32Array, D: number): Float32Array {
  const want = new Float32Array(rows.length * D);
  gatherRowsCpu(want, x, rows, D);
  return want;
}

describeOp('gatherRows', (t) => {
  const { be } = t;
  it(
    'bit-exact',
    async () => {
      const arb = fc.record({
        M: fc.integer({ min: 1, max: 10 }),
        D: fc.integer({ min: 1, max: 300 }),
        R: fc.integer({ min: 1, max: 6 }),
        seed: arbSeed,
      });
      await fc.assert(
        fc.asyncProperty(arb, ({ M, D, R, seed }) =>
          withScope(be, async (s) => {
            const r = rng(seed);
            const x = uniform(r, M * D);
            const rows = Int32Array.from({ length: R }, () => Math.floor(r() * M));
            const out = s.tensor([R, D]);
            const xt = s.tensor([M, D], x);
            run(t, () => be.gatherRows(out, xt, rows));
            expectClose(t.label, 'gatherRows', await be.read(out), reference(x, rows, D), exact);
          }),
        ),
        runs(30),
      );
    },
    TIMEOUT,
  );
});

/** addInPlace: x (M, D) += y, the residual stream, on every backend and variant, against the reference. */
import { it } from 'vitest';
import fc from 'fast-check';
import { addInPlaceCpu } from '../../src/kernels/addInPlace.ts';
import { arbSeed, describeOp, exact, expectClose, rng, run, runs, TIMEOUT, uniform, withScope } from './harness.ts';

/** The reference: the CPU twin, on a copy of x. */
function reference(x: Float32Array, y: Float32Array): Float32Array {
  const want = x.slice();
  addInPlaceCpu(want, y);
  return want;
}

describeOp('addInPlace', (t) => {
  const { be } = t;
  it(
    'bit-exact (one correctly rounded f32 add on both sides)',
    async () => {
      const arb = fc.record({ n: fc.integer({ min: 1, max: 1000 }), seed: arbSeed });
      await fc.assert(
        fc.asyncProperty(arb, ({ n, seed }) =>
          withScope(be, async (s) => {
            const r = rng(seed);
            const x = uniform(r, n, -10, 10);
            const y = uniform(r, n, -10, 10);
            const xt = s.tensor([n], x);
            const yt = s.tensor([n], y);
            run(t, () => be.addInPlace(xt, yt));
            expectClose(t.label, 'addInPlace', await be.read(xt), reference(x, y), exact);
          }),
        ),
        runs(30),
      );
    },
    TIMEOUT,
  );

  it(
    'a grid past 65 535 workgroups folds into x·y: a 16.8 M-element add',
    async () => {
      await withScope(be, async (s) => {
        const n = 65_535 * 256 + 1000; // one more than 65 535 workgroups of 256 can cover
        const a = new Float32Array(n);
        const b = new Float32Array(n);
        for (let i = 0; i < n; i++) [a[i], b[i]] = [(i % 1013) * 0.37, (i % 997) * -0.61]; // cheap to make
        const at = s.tensor([n], a);
        const bt = s.tensor([n], b);
        run(t, () => be.addInPlace(at, bt));
        expectClose(`${t.label} (2-D grid)`, 'addInPlace', await be.read(at), reference(a, b), exact);
      });
    },
    TIMEOUT,
  );
});

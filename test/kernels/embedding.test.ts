/** embedding: out (M, D) = table (V, D)[ids], on every backend and variant, against the reference. */
import { it } from 'vitest';
import fc from 'fast-check';
import { embeddingCpu } from '../../src/kernels/embedding.ts';
import {
  arbDtype,
  arbSeed,
  describeOp,
  describeSplit,
  exact,
  expectClose,
  makeWeight,
  rng,
  run,
  runs,
  TIMEOUT,
  weightData,
  withScope,
} from './harness.ts';

/** The reference: the CPU twin (row copies of the widened table). */
function reference(table: Float32Array, ids: Int32Array, D: number): Float32Array {
  const want = new Float32Array(ids.length * D);
  embeddingCpu(want, table, ids, D);
  return want;
}

describeOp('embedding', (t) => {
  const { be } = t;
  it(
    'bit-exact rows of the table, every dtype (f16 subnormals included)',
    async () => {
      const arb = fc.record({
        V: fc.integer({ min: 1, max: 300 }),
        D: fc.integer({ min: 1, max: 70 }),
        M: fc.integer({ min: 1, max: 9 }),
        dtype: arbDtype,
        seed: arbSeed,
      });
      await fc.assert(
        fc.asyncProperty(arb, ({ V, D, M, dtype, seed }) =>
          withScope(be, async (s) => {
            const r = rng(seed);
            const { host, ref } = makeWeight(dtype, [V, D], weightData(r, V * D));
            const ids = Int32Array.from({ length: M }, () => Math.floor(r() * V));
            const out = s.tensor([M, D]);
            run(t, () => be.embedding(out, be.uploadWeight(host), ids));
            expectClose(t.label, 'embedding', await be.read(out), reference(ref, ids, D), exact);
          }),
        ),
        runs(40),
      );
    },
    TIMEOUT,
  );
});

await describeSplit('embedding', 'a table split by rows across buffers gathers the same rows, every dtype', async (t, c) => {
  const ids = Int32Array.from([0, 36, 5, 20, 36, 13]);
  const emb = c.s.tensor([ids.length, c.D]);
  run(t, () => c.be.embedding(emb, c.w, ids));
  expectClose(`${t.label} (split)`, 'embedding', await c.be.read(emb), reference(c.ref, ids, c.D), exact);
});

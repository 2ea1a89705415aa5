/** kvWrite: cache (B, S, Hkv, hd)[b, slot0 + t] = src[b·T + t], on every backend and variant, against the reference. */
import { it } from 'vitest';
import fc from 'fast-check';
import { kvWriteCpu } from '../../src/kernels/kvWrite.ts';
import { arbSeed, describeOp, exact, expectClose, rng, run, runs, TIMEOUT, uniform, withScope } from './harness.ts';

/** The reference: the CPU twin, on a copy of the cache. */
function reference(cache: Float32Array, src: Float32Array, B: number, S: number, rowWidth: number, slot0: number): Float32Array {
  const want = cache.slice();
  kvWriteCpu(want, src, B, S, rowWidth, slot0);
  return want;
}

describeOp('kvWrite', (t) => {
  const { be } = t;
  it(
    'bit-exact, other slots untouched',
    async () => {
      const arb = fc
        .record({
          B: fc.integer({ min: 1, max: 3 }),
          S: fc.integer({ min: 1, max: 12 }),
          Hkv: fc.integer({ min: 1, max: 3 }),
          hd: fc.integer({ min: 1, max: 9 }),
          seed: arbSeed,
        })
        .chain((c) =>
          fc.integer({ min: 1, max: c.S }).chain((T) => fc.integer({ min: 0, max: c.S - T }).map((slot0) => ({ ...c, T, slot0 }))),
        );
      await fc.assert(
        fc.asyncProperty(arb, ({ B, S, Hkv, hd, T, slot0, seed }) =>
          withScope(be, async (s) => {
            const r = rng(seed);
            const cache0 = uniform(r, B * S * Hkv * hd);
            const src = uniform(r, B * T * Hkv * hd);
            const cache = s.tensor([B, S, Hkv, hd], cache0);
            const st = s.tensor([B * T, Hkv * hd], src);
            run(t, () => be.kvWrite(cache, st, slot0));
            expectClose(t.label, 'kvWrite', await be.read(cache), reference(cache0, src, B, S, Hkv * hd, slot0), exact);
          }),
        ),
        runs(40),
      );
    },
    TIMEOUT,
  );
});

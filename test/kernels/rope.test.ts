/** rope: x (M, heads, hd) rotated in place, rotate_half pairing, on every backend and variant, against the reference. */
import { it } from 'vitest';
import fc from 'fast-check';
import { ropeCpu } from '../../src/kernels/rope.ts';
import { arbSeed, describeOp, expectClose, rng, run, runs, TIMEOUT, u, uniform, withScope } from './harness.ts';

/** The reference: the CPU twin, on a copy of x. */
function reference(x: Float32Array, table: Float32Array, positions: Int32Array, heads: number, hd: number): Float32Array {
  const want = x.slice();
  ropeCpu(want, table, positions, heads, hd);
  return want;
}

describeOp('rope', (t) => {
  const { be } = t;
  it(
    '|Δ| ≤ 3u·(|a·cos| + |b·sin|) per rotated element (|b·cos| + |a·sin| for the second half)',
    async () => {
      // a·c − b·s in f32: two rounded products (or one FMA) and a rounded difference, vs the twin's one
      // final rounding: ≤ 3u·(|a·c| + |b·s|).
      const arb = fc.record({
        M: fc.integer({ min: 1, max: 7 }),
        heads: fc.integer({ min: 1, max: 5 }),
        half: fc.integer({ min: 1, max: 20 }),
        P: fc.integer({ min: 1, max: 20 }),
        seed: arbSeed,
      });
      await fc.assert(
        fc.asyncProperty(arb, ({ M, heads, half, P, seed }) =>
          withScope(be, async (s) => {
            const r = rng(seed);
            const hd = 2 * half;
            const angles = uniform(r, P * half, -1000, 1000);
            const table = new Float32Array(P * hd);
            for (let p = 0; p < P; p++) {
              for (let i = 0; i < half; i++) {
                table[p * hd + i] = Math.cos(angles[p * half + i]);
                table[p * hd + half + i] = Math.sin(angles[p * half + i]);
              }
            }
            const x = uniform(r, M * heads * hd, -4, 4);
            const positions = Int32Array.from({ length: M }, () => Math.floor(r() * P));
            const xt = s.tensor([M, heads * hd], x);
            const tt = s.tensor([P, hd], table);
            run(t, () => be.rope(xt, tt, positions, heads));
            expectClose(t.label, 'rope', await be.read(xt), reference(x, table, positions, heads, hd), (i) => {
              const j = i % hd;
              const m = Math.floor(i / (heads * hd));
              const k = j % half;
              const base = i - j;
              const c = table[positions[m] * hd + k];
              const sn = table[positions[m] * hd + half + k];
              const a = x[base + k];
              const b = x[base + half + k];
              // first half: a·c − b·s; second half: b·c + a·s
              return 3 * u * (j < half ? Math.abs(a * c) + Math.abs(b * sn) : Math.abs(b * c) + Math.abs(a * sn)) + 1e-37;
            });
          }),
        ),
        runs(40),
      );
    },
    TIMEOUT,
  );
});

/** rope: x (M, heads, hd) rotated in place, rotate_half pairing, on every backend and variant, against the reference. */
import { it } from 'vitest';
import fc from 'fast-check';
import { arbSeed, describeOp, expectClose, rng, roundedOnce, run, runs, TIMEOUT, u, uniform, withScope } from './harness.ts';

/**
 * The reference, from the formula, with cos and sin of the angles in f64 (not the f32 table the kernel
 * reads): head element i pairs with i + hd/2, θ = angles[pos, i],
 *   x'[i] = x[i]·cos θ − x[i + hd/2]·sin θ,   x'[i + hd/2] = x[i + hd/2]·cos θ + x[i]·sin θ.
 */
function reference(x: Float32Array, angles: Float32Array, positions: Int32Array, heads: number, half: number): Float32Array {
  const want = x.slice();
  for (let m = 0; m < positions.length; m++) {
    for (let h = 0; h < heads; h++) {
      const head = (m * heads + h) * 2 * half;
      for (let i = 0; i < half; i++) {
        const theta = angles[positions[m] * half + i];
        const [a, b] = [x[head + i], x[head + half + i]];
        want[head + i] = a * Math.cos(theta) - b * Math.sin(theta);
        want[head + half + i] = b * Math.cos(theta) + a * Math.sin(theta);
      }
    }
  }
  return want;
}

describeOp('rope', (t) => {
  const { be } = t;
  it(
    'f64 products: rounded once; f32: |Δ| ≤ 4u·(|a·cos| + |b·sin|) per element (|b·cos| + |a·sin| second half)',
    async () => {
      // The table holds cos and sin rounded to f32: ≤ u·(|a·cos| + |b·sin|) off the f64 angles' values.
      // On top, a·c − b·s in f32 is two rounded products (or one FMA) and a rounded difference (≤ 3u·
      // the same sum); in f64 (the CPU) the products of f32 values are exact, and only the final
      // roundings remain (roundedOnce of 3 terms).
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
            const want = reference(x, angles, positions, heads, half);
            expectClose(t.label, 'rope', await be.read(xt), want, (i) => {
              const j = i % hd;
              const m = Math.floor(i / (heads * hd));
              const k = j % half;
              const base = i - j;
              const c = table[positions[m] * hd + k];
              const sn = table[positions[m] * hd + half + k];
              const a = x[base + k];
              const b = x[base + half + k];
              // first half: a·c − b·s; second half: b·c + a·s
              const mag = j < half ? Math.abs(a * c) + Math.abs(b * sn) : Math.abs(b * c) + Math.abs(a * sn);
              return t.f64Sums ? u * mag + roundedOnce(want[i], 3, mag) : 4 * u * mag + 1e-37;
            });
          }),
        ),
        runs(40),
      );
    },
    TIMEOUT,
  );
});

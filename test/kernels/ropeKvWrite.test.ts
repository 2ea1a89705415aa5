/**
 * ropeKvWrite: RoPE on q and k in place, then k and v into the KV cache; on every backend and variant
 * (v1 the composition rope, rope, kvWrite, kvWrite; WebGPU v2 one dispatch), against a float64
 * reference: rotations within rope's bound, the cache holding exactly the rotated k and v in the call's
 * slots, and every other slot of both caches untouched.
 */
import { it } from 'vitest';
import fc from 'fast-check';
import { arbSeed, describeOp, expectClose, exact, rng, run, runs, TIMEOUT, u, uniform, withScope } from './harness.ts';

/** Rotates (M, heads, hd) rows in float64 (rotate_half pairs), and each element's bound: rope's 3u·(|a·c| + |b·s|). */
function rotated(x: Float32Array, table: Float32Array, positions: Int32Array, heads: number, hd: number) {
  const half = hd / 2;
  const want = new Float32Array(x.length);
  const bound = new Float64Array(x.length);
  for (let m = 0; m < positions.length; m++) {
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < half; i++) {
        const at = (m * heads + h) * hd + i;
        const [a, b] = [x[at], x[at + half]];
        const [c, s] = [table[positions[m] * hd + i], table[positions[m] * hd + half + i]];
        want[at] = a * c - b * s;
        want[at + half] = b * c + a * s;
        bound[at] = 3 * u * (Math.abs(a * c) + Math.abs(b * s)) + 1e-37;
        bound[at + half] = 3 * u * (Math.abs(b * c) + Math.abs(a * s)) + 1e-37;
      }
    }
  }
  return { want, bound };
}

describeOp('ropeKvWrite', (t) => {
  const { be } = t;
  it(
    'q and k rotated (|Δ| ≤ 3u·(|a·c| + |b·s|)), the cache slots hold exactly those k and v, nothing else moves',
    async () => {
      const arb = fc
        .record({
          B: fc.integer({ min: 1, max: 3 }),
          Hkv: fc.integer({ min: 1, max: 3 }),
          ratio: fc.constantFrom(1, 2, 3),
          half: fc.integer({ min: 1, max: 12 }),
          S: fc.integer({ min: 1, max: 12 }),
          seed: arbSeed,
        })
        .chain((c) =>
          fc
            .integer({ min: 1, max: Math.min(4, c.S) })
            .chain((T) => fc.integer({ min: 0, max: c.S - T }).map((slot0) => ({ ...c, T, slot0 }))),
        );
      await fc.assert(
        fc.asyncProperty(arb, ({ B, Hkv, ratio, half, S, T, slot0, seed }) =>
          withScope(be, async (s) => {
            const r = rng(seed);
            const [H, hd, M, P] = [Hkv * ratio, 2 * half, B * T, S];
            const angles = uniform(r, P * half, -1000, 1000);
            const table = new Float32Array(P * hd);
            for (let p = 0; p < P; p++) {
              for (let i = 0; i < half; i++) {
                table[p * hd + i] = Math.cos(angles[p * half + i]);
                table[p * hd + half + i] = Math.sin(angles[p * half + i]);
              }
            }
            const q = uniform(r, M * H * hd, -4, 4);
            const k = uniform(r, M * Hkv * hd, -4, 4);
            const v = uniform(r, M * Hkv * hd, -4, 4);
            const before = [uniform(r, B * S * Hkv * hd, 5, 6), uniform(r, B * S * Hkv * hd, 7, 8)]; // never a written value
            const positions = Int32Array.from({ length: M }, () => Math.floor(r() * P));
            const [qt, kt, vt] = [s.tensor([M, H * hd], q), s.tensor([M, Hkv * hd], k), s.tensor([M, Hkv * hd], v)];
            const [kc, vc] = before.map((c) => s.tensor([B, S, Hkv, hd], c));
            run(t, () => be.ropeKvWrite(qt, kt, vt, kc, vc, s.tensor([P, hd], table), positions, slot0));

            const wantQ = rotated(q, table, positions, H, hd);
            const wantK = rotated(k, table, positions, Hkv, hd);
            const gotK = await be.read(kt);
            expectClose(t.label, 'ropeKvWrite q', await be.read(qt), wantQ.want, (i) => wantQ.bound[i]);
            expectClose(t.label, 'ropeKvWrite k', gotK, wantK.want, (i) => wantK.bound[i]);
            expectClose(t.label, 'ropeKvWrite v (unchanged)', await be.read(vt), v, exact);
            // The caches: row b·T + t of k (as returned) and of v at slot slot0 + t of row b; the rest as before.
            const row = Hkv * hd;
            for (const [c, src, name] of [
              [kc, gotK, 'k cache'],
              [vc, v, 'v cache'],
            ] as const) {
              const want = (c === kc ? before[0] : before[1]).slice();
              for (let m = 0; m < M; m++) {
                const [b, tt] = [Math.floor(m / T), m % T];
                want.set(src.subarray(m * row, (m + 1) * row), (b * S + slot0 + tt) * row);
              }
              expectClose(t.label, `ropeKvWrite ${name}`, await be.read(c), want, exact);
            }
          }),
        ),
        runs(30),
      );
    },
    TIMEOUT,
  );
});

/** attention: causal GQA over the KV cache, pads skipped, on every backend and variant, against the reference. */
import { expect, it } from 'vitest';
import fc from 'fast-check';
import { accepts, arbSeed, describeOp, expectClose, rng, runs, TIMEOUT, u, uniform, withScope } from './harness.ts';

type Dims = { B: number; T: number; S: number; H: number; Hkv: number; hd: number };

/**
 * The reference, from the formula, in f64: query t of row b (slot s = slot0 + t), head h, kv head
 * ⌊h·Hkv / H⌋, scores q·k_j / √hd over ALL S slots, masked to −∞ outside padLen[b] ≤ j ≤ s, then
 * softmax and Σ p_j·v_j. A query with every key masked (a pad query) is 0 by rose-ts's convention.
 */
function reference(q: Float32Array, k: Float32Array, v: Float32Array, padLen: Int32Array, slot0: number, d: Dims): Float32Array {
  const { B, T, S, H, Hkv, hd } = d;
  const want = new Float32Array(B * T * H * hd);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      for (let h = 0; h < H; h++) {
        const kvh = Math.floor((h * Hkv) / H);
        const row = ((b * T + t) * H + h) * hd;
        const at = (j: number, c: number) => ((b * S + j) * Hkv + kvh) * hd + c;
        const masked = (j: number) => j < padLen[b] || j > slot0 + t;
        const scores = Array.from({ length: S }, (_, j) => {
          if (masked(j)) return -Infinity;
          let dot = 0;
          for (let c = 0; c < hd; c++) dot += q[row + c] * k[at(j, c)];
          return dot / Math.sqrt(hd);
        });
        const top = Math.max(...scores);
        if (top === -Infinity) continue; // every key masked: a pad query, 0
        const e = scores.map((x) => Math.exp(x - top)); // exp(−∞) = 0 for the masked keys
        const total = e.reduce((a, x) => a + x, 0);
        for (let c = 0; c < hd; c++) {
          let o = 0;
          for (let j = 0; j < S; j++) o += (e[j] / total) * v[at(j, c)];
          want[row + c] = o;
        }
      }
    }
  }
  return want;
}

describeOp('attention', (t) => {
  const { be } = t;
  it(
    'causal GQA (ratios 1, 2, 3, H), pads skipped, pad queries exactly 0',
    async () => {
      const arb = fc
        .record({
          B: fc.integer({ min: 1, max: 3 }),
          Hkv: fc.integer({ min: 1, max: 3 }),
          ratio: fc.constantFrom(1, 2, 3, 4), // Hkv = 1 with ratio H is MQA
          hd: fc.oneof(fc.integer({ min: 1, max: 24 }), fc.integer({ min: 60, max: 80 })), // past the 64 threads
          S: fc.integer({ min: 1, max: 140 }), // past one 64-key block
          seed: arbSeed,
        })
        .chain((c) =>
          fc
            .integer({ min: 1, max: Math.min(4, c.S) })
            .chain((T) => fc.integer({ min: 0, max: c.S - T }).map((slot0) => ({ ...c, T, slot0 }))),
        )
        .chain((c) =>
          fc.array(fc.integer({ min: 0, max: c.slot0 + c.T }), { minLength: c.B, maxLength: c.B }).map((pads) => ({ ...c, pads })),
        );
      await fc.assert(
        fc.asyncProperty(arb, ({ B, Hkv, ratio, hd, S, T, slot0, pads, seed }) =>
          withScope(be, async (s) => {
            const r = rng(seed);
            const H = Hkv * ratio;
            const q = uniform(r, B * T * H * hd, -2, 2);
            const k = uniform(r, B * S * Hkv * hd, -2, 2);
            const v = uniform(r, B * S * Hkv * hd, -2, 2);
            const padLen = Int32Array.from(pads);
            const out = s.tensor([B * T, H * hd], uniform(r, B * T * H * hd, 5, 9)); // a reused scratch: stale values must go
            const kc = s.tensor([B, S, Hkv, hd], k);
            const vc = s.tensor([B, S, Hkv, hd], v);
            const qt = s.tensor([B * T, H * hd], q);
            if (!accepts(t, () => be.attention(out, qt, kc, vc, padLen, slot0))) return;
            const want = reference(q, k, v, padLen, slot0, { B, T, S, H, Hkv, hd });
            // Per query row: a score is off by E ≤ (hd + 2)·u·scale·Σ|q·k|; a softmax weight then by ≤ 4E
            // relatively (its own score, the max, the normaliser), plus exp's (3 + 2|x|) ulp (Σ p|x| ≤
            // ln n + 1) and the f32 sums of n terms; the output is a p-weighted mean of v.
            const scale = 1 / Math.sqrt(hd);
            const tolOf = new Map<number, number>();
            const tol = (i: number): number => {
              const row = Math.floor(i / hd); // (b·T + t)·H + h
              const d = i % hd;
              const b = Math.floor(row / (T * H));
              const sl = slot0 + (Math.floor(row / H) % T);
              if (padLen[b] > sl) return 0; // a pad query: exactly 0
              const kvh = Math.floor((row % H) / ratio);
              let E = tolOf.get(row);
              if (E === undefined) {
                E = 0;
                for (let j = padLen[b]; j <= sl; j++) {
                  let a = 0;
                  for (let c = 0; c < hd; c++) a += Math.abs(q[row * hd + c] * k[((b * S + j) * Hkv + kvh) * hd + c]);
                  E = Math.max(E, (hd + 2) * u * scale * a);
                }
                tolOf.set(row, E);
              }
              const n = sl - padLen[b] + 1;
              let vmax = 0;
              for (let j = padLen[b]; j <= sl; j++) vmax = Math.max(vmax, Math.abs(v[((b * S + j) * Hkv + kvh) * hd + d]));
              // The CPU twin: f64 scores and weights, but it adds each p·v into the f32 output, one
              // rounding of a partial sum ≤ vmax per key, + the reference's rounding (f64 error: far below).
              if (t.f64Sums) return (n + 2) * u * vmax + 2 ** -149;
              return (4 * E + (2 * n + 3 * Math.log(n + 1) + 40) * u) * vmax + 1e-30;
            };
            expectClose(t.label, 'attention', await be.read(out), want, tol);
          }),
        ),
        runs(60),
      );
    },
    TIMEOUT,
  );

  it(
    'scores 1600 apart do not overflow: the softmax subtracts the largest score, not any other',
    async () => {
      // hd = 1, q = 40, keys 20, −20, −20: scores 800, −800, −800. exp(800 − 800) = 1 and exp(−1600) = 0;
      // measured from any score but the largest, exp(1600) overflows and the output is NaN.
      await withScope(be, async (s) => {
        const out = s.tensor([1, 1]);
        const kc = s.tensor([1, 3, 1, 1], Float32Array.of(20, -20, -20));
        const vc = s.tensor([1, 3, 1, 1], Float32Array.of(1, 2, 3));
        const qt = s.tensor([1, 1], Float32Array.of(40));
        if (!accepts(t, () => be.attention(out, qt, kc, vc, Int32Array.of(0), 2))) return;
        const want = reference(Float32Array.of(40), Float32Array.of(20, -20, -20), Float32Array.of(1, 2, 3), Int32Array.of(0), 2, {
          B: 1,
          T: 1,
          S: 3,
          H: 1,
          Hkv: 1,
          hd: 1,
        });
        expect(want[0]).toBe(1);
        // p = (1, 0, 0) up to exp(0)'s error: a few ulp in WGSL, none in f64.
        expectClose(t.label, 'attention (far-apart scores)', await be.read(out), want, () => 8 * u);
      });
    },
    TIMEOUT,
  );
});

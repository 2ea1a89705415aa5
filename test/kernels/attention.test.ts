/** attention: causal GQA over the KV cache, pads skipped, on every backend and variant, against the reference. */
import { it } from 'vitest';
import fc from 'fast-check';
import { attentionCpu } from '../../src/kernels/attention.ts';
import { accepts, arbSeed, describeOp, expectClose, rng, runs, TIMEOUT, u, uniform, withScope } from './harness.ts';

type Dims = { B: number; T: number; S: number; H: number; Hkv: number; hd: number };

/** The reference: the CPU twin (f64 scores, two passes per query). */
function reference(q: Float32Array, k: Float32Array, v: Float32Array, padLen: Int32Array, slot0: number, d: Dims): Float32Array {
  const want = new Float32Array(d.B * d.T * d.H * d.hd);
  attentionCpu(want, q, k, v, padLen, slot0, d);
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
            const out = s.tensor([B * T, H * hd]);
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
});

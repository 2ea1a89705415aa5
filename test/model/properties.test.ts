/**
 * Properties of the forward pass on small random configs (fast-check, fixed seed): causality, batch
 * independence, KV-cache equivalence, GQA ≡ MHA with repeated kv heads, and no padding leaks.
 *
 * Tolerance: on the CPU backend each of these pairs of runs performs the very same arithmetic on the
 * positions compared (every op works row by row, attention reads the same slots in the same order,
 * and the pads are skipped, not masked), so the results must be bit-identical: EXACT = 0.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CpuBackend } from '../../src/kernels/cpu/backend.ts';
import { Llama } from '../../src/model/llama.ts';
import { loadWeights } from '../../src/model/weights.ts';
import { maxAbsDiff } from '../helpers/fixtures.ts';
import { mapSource, randomConfig, randomLlama, randomWeights, type RandomConfig } from '../helpers/randomModel.ts';

const EXACT = 0;
const SEED = 20240211;
const RUNS = 12;

const arbConfig: fc.Arbitrary<RandomConfig> = fc
  .record({
    kvHeads: fc.integer({ min: 1, max: 3 }),
    group: fc.integer({ min: 1, max: 3 }), // GQA ratio H / Hkv: 1 (MHA), 2, 3
    halfHeadDim: fc.integer({ min: 1, max: 6 }), // head_dim 2..12, odd halves included
    hidden: fc.integer({ min: 5, max: 40 }),
    intermediate: fc.integer({ min: 3, max: 50 }),
    layers: fc.integer({ min: 1, max: 3 }),
    vocab: fc.integer({ min: 7, max: 97 }),
    tied: fc.boolean(),
    attentionBias: fc.boolean(),
    mlpBias: fc.boolean(),
  })
  .map((r) => ({ ...r, heads: r.kvHeads * r.group, headDim: 2 * r.halfHeadDim }));

const _arbTokens = (vocab: number, min: number, max: number) =>
  fc.array(fc.integer({ min: 0, max: vocab - 1 }), { minLength: min, maxLength: max });

/** Logits of every real position of every row, run as one left-padded batch. */
async function logitsOf(model: Llama, rows: number[][]): Promise<Float32Array[]> {
  const V = model.config.vocabSize;
  const cache = model.newKvCache(rows.length, Math.max(...rows.map((r) => r.length)));
  const { T, logits } = model.prefill(cache, rows, true);
  const all = await model.backend.read(logits);
  for (const v of all) if (!Number.isFinite(v)) throw new Error('non-finite logit');
  return rows.map((r, b) => all.slice((b * T + T - r.length) * V, (b + 1) * T * V));
}

const withModel = (cfg: RandomConfig, seed: number) => randomLlama(new CpuBackend(), cfg, seed).model;

describe('forward pass properties (cpu)', () => {
  it('causality: changing a future token never changes earlier logits', async () => {
    await fc.assert(
      fc.asyncProperty(arbConfig, fc.nat(), fc.nat(), fc.context(), async (cfg, seed, pick, ctx) => {
        const model = withModel(cfg, seed);
        const V = cfg.vocab;
        const tokens = Array.from({ length: 6 }, (_, i) => (seed + i * 7) % V);
        const cut = 1 + (pick % 5); // positions < cut must not change
        const changed = tokens.map((t, i) => (i >= cut ? (t + 1) % V : t));
        const [a] = await logitsOf(model, [tokens]);
        const [b] = await logitsOf(model, [changed]);
        const d = maxAbsDiff(a.subarray(0, cut * V), b.subarray(0, cut * V));
        ctx.log(`cut ${cut}, max |Δ| ${d}`);
        expect(d).toBeLessThanOrEqual(EXACT);
      }),
      { seed: SEED, numRuns: RUNS },
    );
  });

  it("batch independence: a row's logits do not depend on the other row", async () => {
    await fc.assert(
      fc.asyncProperty(arbConfig, fc.nat(), fc.nat(), async (cfg, seed, k) => {
        const model = withModel(cfg, seed);
        const row = Array.from({ length: 5 }, (_, i) => (k + 3 * i) % cfg.vocab);
        const other1 = Array.from({ length: 1 + (k % 8) }, (_, i) => (k + i) % cfg.vocab);
        const other2 = Array.from({ length: 1 + ((k >> 3) % 8) }, (_, i) => (k * 5 + i) % cfg.vocab);
        const [alone] = await logitsOf(model, [row]);
        const [withA] = await logitsOf(model, [row, other1]);
        const [, withB] = await logitsOf(model, [other2, row]);
        expect(maxAbsDiff(alone, withA)).toBeLessThanOrEqual(EXACT);
        expect(maxAbsDiff(alone, withB)).toBeLessThanOrEqual(EXACT);
      }),
      { seed: SEED + 1, numRuns: RUNS },
    );
  });

  it('KV-cache equivalence: prefill + N single-token steps equal one prefill of the whole', async () => {
    await fc.assert(
      fc.asyncProperty(
        arbConfig,
        fc.nat(),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 5 }),
        async (cfg, seed, lenA, steps) => {
          const model = withModel(cfg, seed);
          const V = cfg.vocab;
          const rowA = Array.from({ length: lenA }, (_, i) => (seed + i) % V);
          const rowB = Array.from({ length: lenA + 2 }, (_, i) => (seed * 3 + i) % V);
          const next = Array.from({ length: steps }, (_, i) => [(i * 5 + 1) % V, (i * 11 + 2) % V]);
          const full = await logitsOf(model, [
            [...rowA, ...next.map((n) => n[0])],
            [...rowB, ...next.map((n) => n[1])],
          ]);
          const cache = model.newKvCache(2, rowB.length + steps);
          model.prefill(cache, [rowA, rowB]);
          for (let s = 0; s < steps; s++) {
            const logits = await model.backend.read(model.forward(cache, Int32Array.from(next[s])));
            const lastA = full[0].subarray((lenA + s) * V, (lenA + s + 1) * V);
            const lastB = full[1].subarray((lenA + 2 + s) * V, (lenA + 3 + s) * V);
            expect(maxAbsDiff(logits.subarray(0, V), lastA)).toBeLessThanOrEqual(EXACT);
            expect(maxAbsDiff(logits.subarray(V), lastB)).toBeLessThanOrEqual(EXACT);
          }
        },
      ),
      { seed: SEED + 2, numRuns: RUNS },
    );
  });

  it('GQA equals MHA on a checkpoint whose kv heads are repeated (repeat_kv) to a full set', async () => {
    await fc.assert(
      fc.asyncProperty(
        arbConfig.filter((c) => c.heads > c.kvHeads),
        fc.nat(),
        async (cfg, seed) => {
          const be = new CpuBackend();
          const gqaConfig = randomConfig(cfg);
          const tensors = randomWeights(gqaConfig, seed);
          const gqa = new Llama(gqaConfig, loadWeights(gqaConfig, mapSource(gqaConfig, tensors), be), be);
          // repeat_kv: query head h reads kv head ⌊h / group⌋, so kv head g becomes heads g·group..g·group+group−1
          const mhaCfg = { ...cfg, kvHeads: cfg.heads };
          const mhaConfig = randomConfig(mhaCfg);
          const group = cfg.heads / cfg.kvHeads;
          const repeated = new Map(tensors);
          const rowLen = cfg.headDim * cfg.hidden;
          for (const [name, t] of tensors) {
            if (!/\.(k|v)_proj\./.test(name)) continue;
            const perHead = name.endsWith('bias') ? cfg.headDim : rowLen;
            const out = new Float32Array(t.length * group);
            for (let h = 0; h < cfg.heads; h++)
              out.set(t.subarray(Math.floor(h / group) * perHead, (Math.floor(h / group) + 1) * perHead), h * perHead);
            repeated.set(name, out);
          }
          const mha = new Llama(mhaConfig, loadWeights(mhaConfig, mapSource(mhaConfig, repeated), be), be);
          const rows = [[1, 2, 3, 4].map((t) => t % cfg.vocab), [5, 6].map((t) => t % cfg.vocab)];
          const a = await logitsOf(gqa, rows);
          const b = await logitsOf(mha, rows);
          expect(maxAbsDiff(a[0], b[0])).toBeLessThanOrEqual(EXACT);
          expect(maxAbsDiff(a[1], b[1])).toBeLessThanOrEqual(EXACT);
        },
      ),
      { seed: SEED + 3, numRuns: RUNS },
    );
  });

  it('padding never leaks: pad id and pad count change no real logit, and nothing is NaN', async () => {
    await fc.assert(
      fc.asyncProperty(
        arbConfig,
        fc.nat(),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 0, max: 6 }),
        async (cfg, seed, len, extra) => {
          const model = withModel(cfg, seed);
          const V = cfg.vocab;
          const row = Array.from({ length: len }, (_, i) => (seed + 7 * i) % V);
          const longer = Array.from({ length: len + extra }, (_, i) => (i * 3) % V);
          const [alone] = await logitsOf(model, [row]);
          // The short row is left-padded by `extra` slots behind the longer one.
          const [padded] = await logitsOf(model, [row, longer]);
          expect(maxAbsDiff(alone, padded)).toBeLessThanOrEqual(EXACT);
          // A different pad token id: fill the pad slots with V−1 instead of 0 by driving forward() directly.
          const T = len + extra;
          const cache = model.newKvCache(2, T);
          cache.padLen.set([extra, 0]);
          const tokens = new Int32Array(2 * T).fill(V - 1);
          tokens.set(row, extra);
          tokens.set(longer, T);
          const all = await model.backend.read(model.forward(cache, tokens, true));
          for (const v of all) expect(Number.isFinite(v)).toBe(true);
          expect(maxAbsDiff(alone, all.subarray(extra * V, T * V))).toBeLessThanOrEqual(EXACT);
        },
      ),
      { seed: SEED + 4, numRuns: RUNS },
    );
  });
});

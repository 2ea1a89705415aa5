/**
 * Decoding beyond the paper's greedy α run, against independent references: several weighted reverse
 * prompts, the β plausibility mask (and the probability vector it leaves under a temperature),
 * first-m, sampling with recorded uniforms, with and without top-k/top-p, and linear RoPE scaling.
 *
 * The references (test/fixtures/decode-features/*.json and tiny-linear-rope/decode-reference.json,
 * copied verbatim from ../shared/fixtures) come from a float64 numpy forward pass, checked against
 * transformers to ≤ 2.1e-5 on the transformers fixtures, and a numpy statement of the decision rule
 * (each file's `semantics`). Every row there is run alone (positions 0..n−1); here the rows run as
 * one left-padded batch, which changes a row's logits only by f32 reordering (test/model/fixtures.test.ts).
 *
 * The files' rule and src/ agree on every point; where they could have differed, the test says why
 * the code's reading is the right one (see "the rule, point by point" below).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Backend } from '../../src/kernels/backend.ts';
import { loadLlama } from '../../src/model/load.ts';
import { roseGenerate, type RoseOptions } from '../../src/decode/rose.ts';
import { argmax, fixturesDir, maxAbsDiff } from '../helpers/fixtures.ts';
import { backendsUnderTest } from '../kernels/backends.ts';

interface StepDetail {
  step: number;
  token: number;
  /** [id, probability] of the five most likely tokens of the final distribution (before top-k/top-p). */
  probs_top5: [number, number][];
  top1_minus_top2?: number;
  uniform?: number;
  kept?: number;
}

interface FeatureCase {
  name: string;
  positive_ids: number[];
  reverse_ids: number[][];
  alphas: number[];
  beta?: number;
  temperature?: number;
  first_m?: number;
  top_k?: number;
  top_p?: number;
  sample?: boolean;
  steps?: number;
  tokens: number[];
  steps_detail: StepDetail[];
  probs_step0?: number[];
}

interface FeatureFile {
  checkpoint: string;
  semantics: string;
  /** Every greedy top1 − top2 gap and every uniform's distance to a CDF breakpoint is at least this. */
  margin: number;
  eos_token_ids: number[];
  cases: FeatureCase[];
  prefill?: { ids: number[]; logits: number[][]; max_abs_change_if_scaling_ignored: number };
}

const referenceFiles: [checkpoint: string, file: string][] = [
  ['tiny-mha-f32', 'decode-features/tiny-mha-f32.json'],
  ['tiny-gqa-bf16-tied', 'decode-features/tiny-gqa-bf16-tied.json'],
  ['tiny-linear-rope', 'tiny-linear-rope/decode-reference.json'],
];
const load = (file: string): FeatureFile => JSON.parse(readFileSync(join(fixturesDir, file), 'utf8'));

/**
 * Logits: 1e-4 max |Δ| against the float64 reference, the bar of test/model/fixtures.test.ts. Every
 * correct f32 evaluation order lands within 2.1e-5 of the f64 forward pass on these fixtures
 * (test/fixtures/README.md), and ignoring the linear scaling moves these logits by 3.1.
 */
const LOGIT_TOL = 1e-4;

/**
 * Probabilities. With p = softmax(z/T), a perturbation δz moves p_v by p_v·(δz_v − Σ_u p_u δz_u)/T to
 * first order, so |δp_v| ≤ p_v(1 − p_v)·range(δz)/T ≤ ¼·range(δz)/T (the second-order term is
 * ~range(δz)², below 1e-8 here). z = logsoftmax(l_pos) − Σᵢ αᵢ·logsoftmax(l_revᵢ): the log-sum-exps
 * are one constant per step and cancel in the range, so with every logit within ε of the f64
 * reference, range(δz) ≤ 2ε·(1 + Σαᵢ), hence |δp| ≤ ε·(1 + Σαᵢ)/(2T). ε is the f32 engine's distance
 * to the f64 forward pass: ≤ 2.1e-5 for every correct f32 order the generator tried
 * (test/fixtures/README.md), and this file's linear-RoPE prefill measures it directly; take ε = 3e-5.
 * Plus 1e-7 for storing probabilities ≤ 1 in f32 on both sides (2 × 2⁻²⁴). Real bugs move these
 * probabilities by ≥ 1e-3: the temperature ignored (T = 0.8 here), the β mask ignored, every reverse
 * prompt weighted with the first α.
 */
const EPS_LOGIT = 3e-5;
const probsTol = (c: FeatureCase): number => (EPS_LOGIT * (1 + c.alphas.reduce((a, b) => a + b, 0))) / (2 * (c.temperature ?? 1)) + 1e-7;

const backends = await backendsUnderTest();
afterAll(() => {
  for (const b of backends) b.destroy();
});

/** The largest probability error seen per backend and case, printed at the end (for the README). */
const measured: Record<string, number> = {};
const record = (key: string, v: number) => (measured[key] = Math.max(measured[key] ?? 0, v));
afterAll(() => {
  const rows = Object.entries(measured).map(([k, v]) => `${k} ${v.toExponential(1)}`);
  process.stdout.write(`decode features, max |Δ| vs the f64 reference: ${rows.join('; ')}\n`);
});

/** The roseDecode options a case describes; sampled cases replay the reference's uniforms. */
function optionsFor(c: FeatureCase, eos: number[]): RoseOptions {
  const uniforms = c.steps_detail.map((d) => d.uniform);
  let next = 0;
  return {
    alphas: c.alphas,
    beta: c.beta,
    firstM: c.first_m,
    maxNewTokens: c.steps_detail.length,
    stopIds: eos,
    trace: { topK: 5 },
    sampling: c.sample
      ? { temperature: c.temperature, topK: c.top_k, topP: c.top_p, uniform: () => uniforms[next++] ?? Number.NaN }
      : undefined,
  };
}

/**
 * The files' sampling rule (their `semantics`), restated in f64 from the text, not from src/: z from
 * the log-softmaxes, softmax(z/T), top-k then top-p on the probabilities (descending, ties by lowest
 * id; top-p keeps the smallest prefix whose mass reaches p), renormalised, then the first id in id
 * order whose running sum exceeds u. `margin`: how far u is from the nearest breakpoint of that sum.
 */
function ruleInF64(logits: Float32Array, V: number, alphas: number[], T: number, topK: number, topP: number, u: number) {
  const logSoftmax = (r: number) => {
    const row = Array.from(logits.subarray(r * V, (r + 1) * V));
    const m = Math.max(...row);
    const lse = m + Math.log(row.reduce((a, x) => a + Math.exp(x - m), 0));
    return row.map((x) => x - lse);
  };
  const pos = logSoftmax(0);
  const revs = alphas.map((_, i) => logSoftmax(i + 1));
  const z = pos.map((x, v) => (x - alphas.reduce((a, al, i) => a + al * revs[i][v], 0)) / T);
  const zMax = Math.max(...z);
  const e = z.map((x) => Math.exp(x - zMax));
  const sum = e.reduce((a, b) => a + b, 0);
  const p = e.map((x) => x / sum);
  const order = p.map((_, v) => v).sort((a, b) => p[b] - p[a] || a - b);
  let kept = topK > 0 ? order.slice(0, topK) : order;
  if (topP < 1) {
    let mass = 0;
    const n = kept.findIndex((v) => (mass += p[v]) >= topP);
    kept = kept.slice(0, n + 1);
  }
  const total = kept.reduce((a, v) => a + p[v], 0);
  const keptSet = new Set(kept);
  let cdf = 0;
  let token = -1;
  let margin = Infinity;
  for (let v = 0; v < V; v++) {
    if (!keptSet.has(v)) continue;
    cdf += p[v] / total;
    margin = Math.min(margin, Math.abs(cdf - u));
    if (token < 0 && cdf > u) token = v;
  }
  return { token, kept: kept.length, margin };
}

describe.each(backends.flatMap((b) => referenceFiles.map(([ckpt, file]) => [ckpt, b.name, b, file] as const)))(
  'decode features on %s (%s)',
  (checkpoint, _kind, backend: Backend, file) => {
    const ref = load(file);
    const model = loadLlama(join(fixturesDir, checkpoint), backend);
    const V = model.config.vocabSize;

    it('the reference is what this test expects', () => {
      expect(ref.checkpoint).toBe(checkpoint);
      expect(ref.eos_token_ids).toEqual(model.config.eosTokenIds); // the stop ids passed below are the config's
      // The rule, point by point, as the files state it and as src/ implements it:
      for (const clause of [
        'z = logsoftmax(l_0) - sum_i alpha_i * logsoftmax(l_i)', // kernels/contrastSoftmax.ts: the same, in the same (log-space) form
        'keep v where l_0[v] - max(l_0) >= log(beta)', // ⇔ p_pos ≥ β·max p_pos, the README's β; a kept token is never one the positive prompt finds implausible
        'probs = softmax(z / temperature) over the kept tokens',
        'greedy: argmax z (lowest id on ties)', // the argmax is of z, not z/T: temperature never changes a greedy choice
        'first_m: alphas are 0 from step m on', // steps 0..m−1 are contrasted: m steps, as --first-m says
        'optional top-k then top-p on probs', // after the temperature, as transformers orders its warpers
        'the token is the first id, in\n      increasing id order, where the running sum of the kept probabilities exceeds u',
        'Generation stops when the chosen token is an eos id\n(not appended)',
      ])
        expect(ref.semantics).toContain(clause);
    });

    it.each(ref.cases.filter((c) => c.probs_step0 === undefined).map((c) => [c.name, c] as const))(
      '%s: the token stream is exact, each step’s top-5 probabilities within the derived bound',
      async (_name, c) => {
        const result = await roseGenerate(model, c.positive_ids, c.reverse_ids, optionsFor(c, ref.eos_token_ids));
        expect(result.tokens).toEqual(c.tokens);
        expect(result.stopToken).toBeNull(); // the references stop on no eos: every step is compared
        const tol = probsTol(c);
        result.trace.forEach((t, s) => {
          const want = c.steps_detail[s];
          expect(t.token, `step ${s}`).toBe(want.token);
          const got = new Map(t.contrast.map((e) => [e.id, e.p]));
          for (const [id, p] of want.probs_top5) {
            const d = Math.abs((got.get(id) ?? Number.NaN) - p);
            record(`${backend.name} ${checkpoint} ${c.name}`, d);
            expect(d, `step ${s}: p[${id}] (bar ${tol.toExponential(2)})`).toBeLessThanOrEqual(tol);
          }
        });
      },
    );

    // The files sample with top-k and top-p together, and top-p never cuts inside their top-8; so the
    // two filters are also run one at a time here, against the files' rule restated in f64 below and
    // applied to the model's own logits (the forward pass is checked above and in fixtures.test.ts).
    // One checkpoint is enough for what these add (the filters' selection, on either backend's probabilities).
    const sampledCase = ref.cases.find((c) => c.name === 'sampled_topk_topp')!;
    if (checkpoint === 'tiny-mha-f32')
      it.each([
        ['top-k alone', { topK: 3, topP: 1 }],
        ['top-p alone', { topK: 0, topP: 0.6 }],
      ] as const)('%s: the sampled stream equals the rule applied to the same logits', async (_what, filter) => {
        const c = sampledCase;
        const uniforms = c.steps_detail.map((d) => d.uniform!);
        const temperature = 1.3;
        let next = 0;
        const result = await roseGenerate(model, c.positive_ids, c.reverse_ids, {
          alphas: c.alphas,
          maxNewTokens: uniforms.length,
          sampling: { temperature, ...filter, uniform: () => uniforms[next++] },
        });
        // The replay: the loop's own batch shapes (so the same logits), one step at a time.
        const rows = [c.positive_ids, ...c.reverse_ids];
        const cache = model.newKvCache(rows.length, Math.max(...rows.map((r) => r.length)) + uniforms.length);
        let logits = model.prefill(cache, rows).logits;
        let cut = 0; // steps where the filter removed tokens: the test must exercise it
        for (let s = 0; s < uniforms.length; s++) {
          const l = await backend.read(logits);
          const want = ruleInF64(l, V, c.alphas, temperature, filter.topK, filter.topP, uniforms[s]);
          expect(want.margin, `step ${s}: u is clear of every CDF breakpoint`).toBeGreaterThan(1e-5);
          expect(result.tokens[s], `step ${s}`).toBe(want.token);
          if (want.kept < V) cut++;
          logits = model.forward(cache, new Int32Array(rows.length).fill(want.token));
        }
        expect(cut).toBe(uniforms.length);
      });

    const probsCase = ref.cases.find((c) => c.probs_step0 !== undefined);
    it('β mask + temperature: the whole step-0 probability vector, zeros exactly where the mask drops', async () => {
      const c = probsCase!; // every reference file has this case
      const rows = [c.positive_ids, ...c.reverse_ids];
      const cache = model.newKvCache(rows.length, Math.max(...rows.map((r) => r.length)));
      const logits = model.prefill(cache, rows).logits; // (1 + k, V): each row's last position
      const probs = backend.alloc([V]);
      const decision = await backend.contrastSoftmax(probs, logits, {
        alphas: c.alphas,
        temperature: c.temperature!,
        beta: c.beta!,
        uniform: 0,
      });
      const got = await backend.read(probs);
      backend.free(probs);
      const want = c.probs_step0!;
      expect(decision.argmax).toBe(c.tokens[0]);
      // The mask: a token is dropped (probability exactly 0) where the reference drops it, nowhere else.
      expect(Array.from(got, (p) => p > 0)).toEqual(want.map((p) => p > 0));
      const kept = want.filter((p) => p > 0).length;
      expect(kept > 1 && kept < V).toBe(true); // the mask drops some tokens and keeps several: this checks both
      const d = maxAbsDiff(got, want);
      record(`${backend.name} ${checkpoint} ${c.name}`, d);
      expect(d).toBeLessThanOrEqual(probsTol(c));
    });

    if (ref.prefill)
      it('linear RoPE scaling: prefill logits at every position match the f64 reference', async () => {
        const { ids, logits: want } = ref.prefill!;
        expect(model.config.ropeScaling).toEqual({ type: 'linear', factor: 4 });
        const cache = model.newKvCache(1, ids.length);
        const got = await backend.read(model.prefill(cache, [ids], true).logits); // (T, V)
        const flat = Float64Array.from(want.flat());
        const d = maxAbsDiff(got, flat);
        record(`${backend.name} ${checkpoint} prefill logits`, d);
        expect(d).toBeLessThanOrEqual(LOGIT_TOL);
        expect(d * 1e4).toBeLessThan(ref.prefill!.max_abs_change_if_scaling_ignored); // the bar is far below what the scaling moves
        for (let t = 0; t < ids.length; t++)
          expect(argmax(got, t * V, (t + 1) * V), `argmax at ${t}`).toBe(argmax(flat, t * V, (t + 1) * V));
      });
  },
);

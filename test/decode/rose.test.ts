/**
 * The ROSE loop against transformers' recorded ROSE runs, plus the invariants that define ROSE:
 * α = 0 is plain greedy decoding, the same token goes to both rows, batching changes nothing.
 * f32 compute makes token streams exact: the fixtures' smallest decision margin is 0.023, ~1000× the
 * f32 error (docs/llama-semantics.md, §9), so any token mismatch is a bug, not noise.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { CpuBackend } from '../../src/kernels/cpu/backend.ts';
import { contrastSoftmaxCpu } from '../../src/kernels/contrastSoftmax.ts';
import { loadLlama } from '../../src/model/load.ts';
import type { Llama } from '../../src/model/llama.ts';
import { alphaFromGuidanceScale, guidanceScaleFromAlpha, roseDecode, roseGenerate } from '../../src/decode/rose.ts';
import { seededGaussian, seededUniform } from '../../src/decode/random.ts';
import { filterTopKTopP, sampleFromProbs } from '../../src/decode/sampling.ts';
import { argmax, listFixtures, loadFixture } from '../helpers/fixtures.ts';
import { backendLabel, backendsUnderTest } from '../kernels/backends.ts';

// Every fixture test below runs on each backend: the CPU reference and WebGPU (llvmpipe in CI).
const backends = await backendsUnderTest();
afterAll(() => {
  for (const b of backends) b.destroy();
});
const cases = backends.flatMap((backend) => listFixtures().map((name) => [name, backend.name, backend] as const));

/** ROSE computed the slow, obviously-right way: two separate batch-1 runs fed the same tokens. */
async function unbatchedRose(
  model: Llama,
  pos: number[],
  rev: number[],
  alpha: number,
  steps: number,
): Promise<{ tokens: number[]; revLogits: Float32Array[] }> {
  const V = model.config.vocabSize;
  const cp = model.newKvCache(1, pos.length + steps);
  const cr = model.newKvCache(1, rev.length + steps);
  let lp = await model.backend.read(model.prefill(cp, [pos]).logits);
  let lr = await model.backend.read(model.prefill(cr, [rev]).logits);
  const tokens: number[] = [];
  const revLogits: Float32Array[] = [];
  for (let s = 0; s < steps; s++) {
    revLogits.push(lr);
    const both = new Float32Array(2 * V);
    both.set(lp);
    both.set(lr, V);
    const { argmax: tok } = contrastSoftmaxCpu(new Float32Array(V), both, V, { alphas: [alpha], temperature: 1, beta: 0, uniform: 0 });
    tokens.push(tok);
    lp = await model.backend.read(model.forward(cp, Int32Array.of(tok)));
    lr = await model.backend.read(model.forward(cr, Int32Array.of(tok)));
  }
  return { tokens, revLogits };
}

describe.each(cases)('ROSE on fixture %s (%s)', (name, _kind, backend) => {
  const fx = loadFixture(name);
  const model = loadLlama(fx.dir, backend);
  const pos = fx.ref.rows[fx.ref.pos_row].tokens;
  const rev = fx.ref.rows[fx.ref.rev_row].tokens;

  it.each(fx.ref.rose.runs.map((r) => [r.alpha, r] as const))(
    "greedy token stream for alpha %s equals transformers' rose_greedy",
    async (alpha, run) => {
      const result = await roseGenerate(model, pos, [rev], { alphas: [alpha], maxNewTokens: run.steps });
      expect(result.tokens).toEqual(run.tokens);
    },
  );

  // The decode loop's bookkeeping below (batch of one vs two, the token fed to both rows, stop ids) is
  // rose.ts's, above the backend: every checkpoint on the CPU's TypeScript tier, and the smallest on the
  // others, whose kernels are checked on every checkpoint, both rows, through the KV cache, by the
  // streams above and by fixtures.test.ts.
  const everyCheckpoint = backendLabel(backend) === 'cpu' || name === 'tiny-mha-f32';
  const loopIt = (title: string, body: () => Promise<void>) => {
    if (everyCheckpoint) it(title, body);
  };

  loopIt('alpha = 0 equals plain greedy decoding of the positive prompt alone (batch of one)', async () => {
    const plain = await roseGenerate(model, pos, [], { alphas: [], maxNewTokens: 12 });
    const rose0 = await roseGenerate(model, pos, [rev], { alphas: [0], maxNewTokens: 12 });
    expect(rose0.tokens).toEqual(plain.tokens);
    expect(plain.tokens).toEqual(fx.ref.rose.runs.find((r) => r.alpha === 0)!.tokens);
  });

  loopIt('the batched run equals two unbatched runs, and the reverse row sees the chosen tokens', async () => {
    const steps = 12;
    const slow = await unbatchedRose(model, pos, rev, 0.5, steps);
    const fast = await roseGenerate(model, pos, [rev], { maxNewTokens: steps, trace: { topK: 8 } });
    expect(fast.tokens).toEqual(slow.tokens);
    // The reverse row's distribution at each step is that of the reverse prompt followed by the
    // CONTRASTED tokens: the bug of appending each row's own greedy token would break this.
    fast.trace.forEach((t, s) => {
      const revTop = slow.revLogits[s];
      expect(t.pRev[0][0].id).toBe(argmax(revTop));
    });
  });

  it('trace records each step: the chosen token, the plain greedy token, and whether ROSE changed it', async () => {
    const run = fx.ref.rose.runs.find((r) => r.alpha === 0.5)!;
    const result = await roseGenerate(model, pos, [rev], { maxNewTokens: run.steps, trace: true });
    const lp = fx.tensor(run.tensors.logits_pos).data;
    const V = model.config.vocabSize;
    expect(result.trace).toHaveLength(run.steps);
    result.trace.forEach((t, s) => {
      expect(t.token).toBe(run.tokens[s]);
      expect(t.plainToken).toBe(argmax(lp, s * V, (s + 1) * V));
      expect(t.changed).toBe(t.plainToken !== t.token);
      expect(t.contrast[0].id).toBe(t.token);
      expect(t.pPos).toHaveLength(5);
    });
    expect(result.trace.some((t) => t.changed)).toBe(true); // the fixtures were picked so that ROSE matters
    expect(JSON.parse(JSON.stringify(result.trace))).toEqual(result.trace); // exportable as JSON
  });

  // The trace's bookkeeping does not depend on the checkpoint: one fixture (the smallest) per backend.
  if (name === 'tiny-mha-f32')
    it("trace probabilities are the f64 softmax of each row's logits, and the fused kernel's for the contrast", async () => {
      const run = fx.ref.rose.runs.find((r) => r.alpha === 0.5)!;
      const K = 8;
      // Decoded event by event, timed from outside: the prefill (and the first decision) ends before the
      // first event arrives, and the decoding after it spans at least the first to the last event.
      const events = roseDecode(model, pos, [rev], { maxNewTokens: run.steps, trace: { topK: K } });
      const tCall = performance.now();
      let [tFirst, tLast] = [0, 0];
      let next = await events.next();
      for (; !next.done; next = await events.next()) [tFirst, tLast] = [tFirst || performance.now(), performance.now()];
      const tDone = performance.now();
      const result = next.value;
      expect(result.steps).toBe(run.steps);
      expect(result.prefillSeconds).toBeGreaterThan(0);
      expect(result.prefillSeconds).toBeLessThanOrEqual((tFirst - tCall) / 1000);
      expect(result.decodeSeconds).toBeGreaterThanOrEqual((tLast - tFirst) / 1000);
      expect(result.prefillSeconds + result.decodeSeconds).toBeLessThanOrEqual((tDone - tCall) / 1000);
      // The same steps replayed with the loop's own shapes (so the same logits, bit for bit), read back,
      // and turned into probabilities here: softmax in f64, top-K by probability, ties by lowest id.
      const V = model.config.vocabSize;
      const softmax64 = (l: Float32Array) => {
        const m = Math.max(...l);
        const e = Array.from(l, (x) => Math.exp(x - m));
        const z = e.reduce((a, b) => a + b, 0);
        return e.map((x) => x / z);
      };
      const topK = (p: ArrayLike<number>) =>
        Array.from(p, (q, id) => ({ id, p: q }))
          .sort((a, b) => b.p - a.p || a.id - b.id)
          .slice(0, K);
      const cache = model.newKvCache(2, Math.max(pos.length, rev.length) + run.steps);
      let logits = model.prefill(cache, [pos, rev]).logits;
      const probs = backend.alloc([V]);
      for (let s = 0; s < run.steps; s++) {
        const both = await backend.read(logits);
        const t = result.trace[s];
        expect(t.pRev).toHaveLength(1); // one entry per reverse prompt
        for (const [got, want] of [
          [t.pPos, topK(softmax64(both.subarray(0, V)))],
          [t.pRev[0], topK(softmax64(both.subarray(V)))],
        ] as const) {
          expect(
            got.map((e) => e.id),
            `step ${s}`,
          ).toEqual(want.map((e) => e.id));
          // Two f64 evaluations of one formula on the same f32 inputs: they differ by summation order only.
          for (let i = 0; i < K; i++) expect(Math.abs(got[i].p - want[i].p)).toBeLessThan(1e-12);
        }
        await backend.contrastSoftmax(probs, logits, { alphas: [0.5], temperature: 1, beta: 0, uniform: 0 });
        expect(t.contrast, `step ${s}`).toEqual(topK(await backend.read(probs)));
        logits = model.forward(cache, Int32Array.of(t.token, t.token));
      }
      backend.free(probs);
    });

  it('trace lists tokens the β mask drops with probability 0, by lowest id, after the kept ones', async () => {
    // β = 1 keeps only the positive row's argmax: the contrast is one token with probability 1.
    const result = await roseGenerate(model, pos, [rev], { maxNewTokens: 1, beta: 1, trace: { topK: 4 } });
    const [t] = result.trace;
    expect(t.token).toBe(t.plainToken);
    const zeros = [0, 1, 2, 3].filter((id) => id !== t.token).slice(0, 3);
    expect(t.contrast).toEqual([{ id: t.token, p: 1 }, ...zeros.map((id) => ({ id, p: 0 }))]);
  });

  loopIt('every stop id ends generation on the contrasted token', async () => {
    const run = fx.ref.rose.runs.find((r) => r.alpha === 0.5)!;
    for (const k of [0, 3, 7]) {
      const stopId = run.tokens[k];
      const first = run.tokens.indexOf(stopId);
      const result = await roseGenerate(model, pos, [rev], { maxNewTokens: run.steps, stopIds: [999_999, stopId] });
      expect(result.stopToken).toBe(stopId);
      expect(result.tokens).toEqual(run.tokens.slice(0, first));
      expect(result.steps).toBe(first + 1); // the stop token's step counts, though the token is not kept
    }
  });

  it('guidance_scale interop: ROSE(α) greedy equals CFG with γ = 1/(1−α) greedy, step by step', () => {
    for (const run of fx.ref.rose.runs.filter((r) => r.alpha > 0 && r.alpha < 1)) {
      const gamma = guidanceScaleFromAlpha(run.alpha);
      expect(alphaFromGuidanceScale(gamma)).toBeCloseTo(run.alpha, 12);
      const V = model.config.vocabSize;
      const lp = fx.tensor(run.tensors.logits_pos).data;
      const lr = fx.tensor(run.tensors.logits_rev).data;
      const lse = (a: Float32Array) => Math.log(a.reduce((s, v) => s + Math.exp(v), 0));
      for (let s = 0; s < run.steps; s++) {
        const p = lp.subarray(s * V, (s + 1) * V),
          r = lr.subarray(s * V, (s + 1) * V);
        const [lseP, lseR] = [lse(p), lse(r)];
        // HF's UnbatchedClassifierFreeGuidanceLogitsProcessor: γ·(logp_cond − logp_uncond) + logp_uncond
        const cfg = Array.from(p, (v, i) => gamma * (v - lseP - (r[i] - lseR)) + (r[i] - lseR));
        expect(argmax(cfg)).toBe(run.tokens[s]);
      }
    }
  });
});

describe('sampling', () => {
  const fx = loadFixture('tiny-mha-f32');
  const model = loadLlama(fx.dir, new CpuBackend());
  const pos = fx.ref.rows[0].tokens;
  const rev = fx.ref.rows[1].tokens;

  it('is reproducible with a seed, and differs across seeds', async () => {
    const opts = { maxNewTokens: 16, sampling: { temperature: 1.5, seed: 7 } };
    const a = await roseGenerate(model, pos, [rev], opts);
    const b = await roseGenerate(model, pos, [rev], opts);
    const c = await roseGenerate(model, pos, [rev], { ...opts, sampling: { temperature: 1.5, seed: 8 } });
    expect(a.tokens).toEqual(b.tokens);
    expect(c.tokens).not.toEqual(a.tokens);
  });

  it("draws follow the contrast's probabilities (chi-square test, false-alarm rate 1e-3)", () => {
    const V = 512;
    const logits = new Float32Array(2 * V);
    const gaussian = seededGaussian(1);
    for (let i = 0; i < 2 * V; i++) logits[i] = 3 * gaussian();
    const probs = new Float32Array(V);
    const params = { alphas: [0.5], temperature: 1, beta: 0.02, uniform: 0 };
    contrastSoftmaxCpu(probs, logits, V, params);
    const N = 20000;
    const counts = new Float64Array(V);
    const draw = seededUniform(42);
    for (let n = 0; n < N; n++) counts[contrastSoftmaxCpu(probs, logits, V, { ...params, uniform: draw() }).sampled]++;
    // Pool tokens into bins of expected count ≥ 5 (chi-square's validity rule); a short tail joins the last bin.
    const binsExp: number[] = [],
      binsObs: number[] = [];
    let expBin = 0,
      obsBin = 0;
    for (let v = 0; v < V; v++) {
      expBin += N * probs[v];
      obsBin += counts[v];
      if (probs[v] === 0) expect(counts[v]).toBe(0); // masked tokens are never drawn
      if (expBin >= 5) {
        binsExp.push(expBin);
        binsObs.push(obsBin);
        expBin = obsBin = 0;
      }
    }
    binsExp[binsExp.length - 1] += expBin;
    binsObs[binsObs.length - 1] += obsBin;
    const bins = binsExp.length;
    const chi2 = binsExp.reduce((s, e, i) => s + (binsObs[i] - e) ** 2 / e, 0);
    // P(χ²_k > k + 3.09·√(2k)) ≈ 1e-3 for the k ≈ tens of bins here (normal approximation of χ²_k).
    const dof = bins - 1;
    expect(bins).toBeGreaterThan(10);
    expect(chi2).toBeLessThan(dof + 3.09 * Math.sqrt(2 * dof));
  });

  it('top-k keeps k tokens and top-p the smallest prefix reaching p; both renormalise', () => {
    const probs = Float32Array.from([0.1, 0.4, 0.05, 0.3, 0.15]);
    const k2 = filterTopKTopP(probs, 2, 1);
    expect(Array.from(k2).map((p) => +p.toFixed(6))).toEqual([0, 0.571429, 0, 0.428571, 0]);
    const p8 = filterTopKTopP(probs, 0, 0.8);
    expect(Array.from(p8, (p) => p > 0)).toEqual([false, true, false, true, true]);
    expect(sampleFromProbs(p8, 0)).toBe(1);
    expect(sampleFromProbs(p8, 0.999999)).toBe(4);
    // Neither filter: the probabilities come back as they are (already normalised), the tiniest included:
    // top-p = 1 is off, even where rounding makes the running mass reach 1 early.
    expect(Array.from(filterTopKTopP(probs, 0, 1))).toEqual(Array.from(probs));
    expect(Array.from(filterTopKTopP(Float32Array.of(0.75, 0.25, 1e-9), 0, 1), (p) => p > 0)).toEqual([true, true, true]);
  });

  it('the filters at their edges: ties, k beyond the kept tokens, mass exactly p, zeros', () => {
    // Exact binary fractions, so every sum below is exact and "reaches" means ≥, not ≈.
    const tied = Float32Array.from([0.25, 0.125, 0.25, 0.125, 0.25]);
    expect(Array.from(filterTopKTopP(tied, 2, 1))).toEqual([0.5, 0, 0.5, 0, 0]); // ties go to the lowest ids
    expect(Array.from(filterTopKTopP(tied, 4, 1))).toEqual([2 / 7, 1 / 7, 2 / 7, 0, 2 / 7].map(Math.fround));
    expect(Array.from(filterTopKTopP(tied, 0, 0.5))).toEqual([0.5, 0, 0.5, 0, 0]); // 0.25 + 0.25 reaches 0.5: stop there
    expect(Array.from(filterTopKTopP(tied, 0, 0.5000001))).toEqual([1 / 3, 0, 1 / 3, 0, 1 / 3].map(Math.fround));
    // top-k first, then top-p within the k kept (renormalised only once, at the end); top-p never
    // brings back a token top-k dropped, even when the k kept fall short of p.
    expect(Array.from(filterTopKTopP(tied, 2, 0.25))).toEqual([1, 0, 0, 0, 0]);
    expect(Array.from(filterTopKTopP(tied, 2, 0.75))).toEqual([0.5, 0, 0.5, 0, 0]);
    // Zeros (masked tokens) are never kept, whatever k asks for.
    const masked = Float32Array.from([0, 0.75, 0, 0.25]);
    expect(Array.from(filterTopKTopP(masked, 10, 1))).toEqual([0, 0.75, 0, 0.25]);
    expect(Array.from(filterTopKTopP(masked, 0, 1))).toEqual([0, 0.75, 0, 0.25]);
  });

  it('sampling picks the first id whose running sum EXCEEDS u, else the last kept token', () => {
    const probs = Float32Array.from([0, 0.5, 0, 0.25, 0.25, 0]);
    expect(sampleFromProbs(probs, 0)).toBe(1);
    expect(sampleFromProbs(probs, 0.4999)).toBe(1);
    expect(sampleFromProbs(probs, 0.5)).toBe(3); // 0.5 does not exceed 0.5
    expect(sampleFromProbs(probs, 0.75)).toBe(4);
    // Rounding can leave the total a hair below u: the last token with p > 0, never a masked one.
    expect(sampleFromProbs(Float32Array.from([0.25, 0.25, 0]), 0.9)).toBe(1);
    expect(sampleFromProbs(Float32Array.from([0, 0, 0]), 0.5)).toBe(-1); // nothing kept: no token (the kernel never gives this)
  });
});

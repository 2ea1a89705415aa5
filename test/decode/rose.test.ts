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
import { alphaFromGuidanceScale, guidanceScaleFromAlpha, roseGenerate } from '../../src/decode/rose.ts';
import { seededGaussian, seededUniform } from '../../src/decode/random.ts';
import { filterTopKTopP, sampleFromProbs } from '../../src/decode/sampling.ts';
import { argmax, listFixtures, loadFixture } from '../helpers/fixtures.ts';
import { backendsUnderTest } from '../kernels/backends.ts';

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

  it('alpha = 0 equals plain greedy decoding of the positive prompt alone (batch of one)', async () => {
    const plain = await roseGenerate(model, pos, [], { alphas: [], maxNewTokens: 12 });
    const rose0 = await roseGenerate(model, pos, [rev], { alphas: [0], maxNewTokens: 12 });
    expect(rose0.tokens).toEqual(plain.tokens);
    expect(plain.tokens).toEqual(fx.ref.rose.runs.find((r) => r.alpha === 0)!.tokens);
  });

  it('the batched run equals two unbatched runs, and the reverse row sees the chosen tokens', async () => {
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

  it('every stop id ends generation on the contrasted token', async () => {
    const run = fx.ref.rose.runs.find((r) => r.alpha === 0.5)!;
    for (const k of [0, 3, 7]) {
      const stopId = run.tokens[k];
      const first = run.tokens.indexOf(stopId);
      const result = await roseGenerate(model, pos, [rev], { maxNewTokens: run.steps, stopIds: [999_999, stopId] });
      expect(result.stopToken).toBe(stopId);
      expect(result.tokens).toEqual(run.tokens.slice(0, first));
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
  });
});

/**
 * Whole-model figures: prefill tokens/s, and the decode step of plain decoding (a batch of one)
 * against ROSE (a batch of two: positive + reverse prompt), exactly as roseDecode runs a step:
 * model.forward on the new token of every row, then the fused contrastSoftmax decision.
 *
 * The plain and the ROSE step are timed INTERLEAVED (plain, ROSE, plain, ROSE, …) after a warm-up
 * round, so both see the same machine noise; the ratio is median(ROSE) / median(plain) from the
 * same run (the ratio of the best steps is reported too).
 *
 * Also per step: peak RSS while decoding (process.memoryUsage().rss sampled after each step, and
 * resourceUsage().maxRSS), and on WebGPU the backend's counters (dispatches, submits, bytes read
 * back) and the CPU time spent encoding, i.e. inside model.forward, which only records commands
 * there; the GPU work happens in the contrastSoftmax read-back that follows. Where the adapter has
 * timestamp queries, also the GPU time of a ROSE step (one compute pass: its timestamps bracket the
 * step's GPU work) and, from one more step with each dispatch in a pass of its own, the GPU time per
 * kernel. Timing is off while the steps above are timed.
 */
import type { Backend, ContrastParams, Tensor } from '../../src/kernels/backend.ts';
import { CpuBackend } from '../../src/kernels/cpu/backend.ts';
import { WebGpuBackend } from '../../src/kernels/webgpu/backend.ts';
import { OPS } from '../../src/kernels/registry.ts';
import type { KvCache } from '../../src/model/llama.ts';
import type { BenchModel } from './model.ts';
import { gc, interleaved, median, round } from './timing.ts';

interface GpuStatsLike {
  dispatches: number;
  submits: number;
  bytesRead: number;
}
const gpuStats = (be: Backend): GpuStatsLike | undefined => (be as unknown as { stats?: GpuStatsLike }).stats;
const resetGpuStats = (be: Backend): void => (be as unknown as { resetStats?: () => void }).resetStats?.();

export interface DecodeOptions {
  /** Tokens of the prefill measured for tokens/s (batch of one). */
  prefillTokens: number;
  prefillRuns: number;
  /** Prompt length of the decode caches (positive; the reverse prompt is a few tokens shorter). */
  promptTokens: number;
  /** Interleaved rounds (one plain + one ROSE step each), after `warmupRounds`. */
  rounds: number;
  warmupRounds: number;
  /** CPU: extra steps of each kind with every backend op timed (0 = none). */
  profileSteps: number;
  log: (line: string) => void;
}

export interface OpProfile {
  op: string;
  plainMs: number;
  roseMs: number;
}

/** Runs `step` `steps` times with every op of `be` wrapped in a timer; returns ms per step per op. */
async function profileOps(be: Backend, steps: number, step: () => Promise<void>): Promise<Map<string, number>> {
  const total = new Map<string, number>();
  const target = be as unknown as Record<string, (...a: unknown[]) => unknown>;
  for (const op of OPS) {
    const orig = target[op];
    target[op] = function (this: unknown, ...args: unknown[]) {
      const t0 = performance.now();
      const r = orig.apply(be, args);
      if (r instanceof Promise) {
        return r.then((v) => {
          total.set(op, (total.get(op) ?? 0) + performance.now() - t0);
          return v;
        });
      }
      total.set(op, (total.get(op) ?? 0) + performance.now() - t0);
      return r;
    };
  }
  const t0 = performance.now();
  try {
    for (let i = 0; i < steps; i++) await step();
  } finally {
    for (const op of OPS) delete target[op]; // the wrappers were own properties over the class's methods
  }
  const all = performance.now() - t0;
  const out = new Map<string, number>();
  let inOps = 0;
  for (const [op, ms] of total) {
    out.set(op, ms / steps);
    inOps += ms;
  }
  out.set('(outside ops)', (all - inOps) / steps);
  out.set('(step)', all / steps);
  return out;
}

export interface StepFigures {
  medianMs: number;
  bestMs: number;
  samples: number;
  /** Weight bytes per step ÷ median step time. */
  weightGBps: number;
}

export interface DecodeResult {
  prefill: { tokens: number; runs: number; medianMs: number; bestMs: number; tokensPerSecond: number } | null;
  plain: StepFigures;
  rose: StepFigures;
  roseOverPlainStepRatio: number;
  roseOverPlainBestStepRatio: number;
  /** Matmul dispatches to the CPU worker pool, or WebGPU compute dispatches, per ROSE step. */
  dispatchesPerStep: number | null;
  submitsPerStep: number | null;
  readbackBytesPerStep: number;
  /** WebGPU: CPU ms inside model.forward (recording commands), median over ROSE steps. */
  encodeMsPerStep: number | null;
  /** CPU: ms per step in each backend op, plain vs ROSE (extra profiled steps). */
  opProfile?: OpProfile[];
  /** WebGPU with timestamp queries: GPU time of a ROSE step and per kernel; null elsewhere (see gpuTimeNote). */
  gpuTime: GpuTime | null;
  gpuTimeNote: string;
  peakRssMb: number;
  maxRssMb: number;
  contextAtEnd: number;
}

export interface GpuTime {
  /** GPU ms of a ROSE step (forward + decision), median over the steps timed; and how many. */
  stepMs: number;
  steps: number;
  /** One ROSE step with every dispatch timed alone: per kernel, its dispatches and their total GPU ms. */
  kernels: { kernel: string; dispatches: number; ms: number }[];
  /** Σ kernels' ms: above stepMs by the passes' own overhead (each dispatch in a pass of its own). */
  kernelsSumMs: number;
}

/** GPU steps timed per pass-level measurement, plus one with every dispatch timed alone. */
const GPU_TIMED_STEPS = 3;

const tokensFor = (n: number, salt: number, V: number): number[] =>
  Array.from({ length: n }, (_, i) => 1 + ((i * 7919 + salt * 104729) % (V - 1)));

export async function runDecode(bm: BenchModel, opts: DecodeOptions): Promise<DecodeResult> {
  const { model } = bm;
  const be = model.backend;
  const V = model.config.vocabSize;
  const probs = be.alloc([V]);
  const params = (alphas: number[]): ContrastParams => ({ alphas, temperature: 1, beta: 0, uniform: 0 });
  // The host copies made while uploading are garbage now; large buffers are freed asynchronously
  // after a GC, so collect, give the sweeper a moment, collect again: RSS below is the model's.
  gc();
  await new Promise((r) => setTimeout(r, 500));
  gc();
  let peakRss = process.memoryUsage().rss;
  const sampleRss = () => {
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  };

  // --- prefill tokens/s (batch of one, then the first decision, as roseDecode counts it) ---
  const prefillMs: number[] = [];
  for (let r = 0; r < opts.prefillRuns; r++) {
    const cache = model.newKvCache(1, opts.prefillTokens + 1);
    const t0 = performance.now();
    const { logits } = model.prefill(cache, [tokensFor(opts.prefillTokens, r, V)]);
    await be.contrastSoftmax(probs, logits, params([]));
    prefillMs.push(performance.now() - t0);
    freeCache(be, cache);
    opts.log(`  prefill ${opts.prefillTokens} tokens: ${prefillMs[r].toFixed(0)} ms`);
  }
  sampleRss();

  // --- decode: plain (B = 1) and ROSE (B = 2), interleaved ---
  const canTime = be instanceof WebGpuBackend && be.canTime;
  const steps = opts.rounds + opts.warmupRounds + (be.name === 'cpu' ? opts.profileSteps : 0) + (canTime ? GPU_TIMED_STEPS + 1 : 0);
  const pos = tokensFor(opts.promptTokens, 11, V);
  const rev = tokensFor(Math.max(1, opts.promptTokens - 3), 13, V);
  const plain = model.newKvCache(1, opts.promptTokens + steps + 1);
  const rose = model.newKvCache(2, opts.promptTokens + steps + 1);
  let plainLogits: Tensor = model.prefill(plain, [pos]).logits;
  let roseLogits: Tensor = model.prefill(rose, [pos, rev]).logits;
  let plainToken = (await be.contrastSoftmax(probs, plainLogits, params([]))).argmax;
  let roseToken = (await be.contrastSoftmax(probs, roseLogits, params([0.5]))).argmax;
  sampleRss();

  const pool = be instanceof CpuBackend ? be.pool : undefined;
  const dispatches: number[] = [];
  const submits: number[] = [];
  const readback: number[] = [];
  const encode: number[] = [];
  const plainStep = async () => {
    plainLogits = model.forward(plain, new Int32Array([plainToken]));
    plainToken = (await be.contrastSoftmax(probs, plainLogits, params([]))).argmax;
    sampleRss();
  };
  const roseStep = async () => {
    const d0 = pool?.stats.dispatches ?? 0;
    resetGpuStats(be);
    const t0 = performance.now();
    roseLogits = model.forward(rose, new Int32Array([roseToken, roseToken])); // the SAME token to both rows
    const t1 = performance.now();
    roseToken = (await be.contrastSoftmax(probs, roseLogits, params([0.5]))).argmax;
    const s = gpuStats(be);
    if (s) {
      dispatches.push(s.dispatches);
      submits.push(s.submits);
      readback.push(s.bytesRead);
      encode.push(t1 - t0);
    } else {
      dispatches.push((pool?.stats.dispatches ?? 0) - d0);
      readback.push(0);
    }
    sampleRss();
  };
  const [plainMs, roseMs] = await interleaved([plainStep, roseStep], opts.rounds, opts.warmupRounds);
  // Where the time goes (CPU: ops run synchronously, so timing each call is exact): a few more
  // steps of each with every op timed, after the timed rounds so that it cannot perturb them.
  let opProfile: OpProfile[] | undefined;
  if (be.name === 'cpu' && opts.profileSteps > 0) {
    const plainOps = await profileOps(be, opts.profileSteps, plainStep);
    const roseOps = await profileOps(be, opts.profileSteps, roseStep);
    opProfile = [...new Set([...plainOps.keys(), ...roseOps.keys()])].map((op) => ({
      op,
      plainMs: round(plainOps.get(op) ?? 0),
      roseMs: round(roseOps.get(op) ?? 0),
    }));
  }
  // GPU time, after the timed rounds (timestamp writes would perturb them).
  let gpuTime: GpuTime | null = null;
  if (canTime) {
    be.startTiming('passes');
    const stepMs: number[] = [];
    for (let i = 0; i < GPU_TIMED_STEPS; i++) {
      await roseStep();
      stepMs.push((await be.stopTiming()).reduce((a, r) => a + r.ms, 0)); // a step is one submit, one pass
      if (i + 1 < GPU_TIMED_STEPS) be.startTiming('passes');
    }
    be.startTiming('dispatches');
    await roseStep();
    const byKernel = new Map<string, { kernel: string; dispatches: number; ms: number }>();
    for (const r of await be.stopTiming()) {
      const k = byKernel.get(r.label) ?? { kernel: r.label, dispatches: 0, ms: 0 };
      k.dispatches++;
      k.ms += r.ms;
      byKernel.set(r.label, k);
    }
    const kernels = [...byKernel.values()].map((k) => ({ ...k, ms: round(k.ms, 4) })).sort((a, b) => b.ms - a.ms);
    gpuTime = {
      stepMs: round(median(stepMs), 4),
      steps: stepMs.length,
      kernels,
      kernelsSumMs: round(
        kernels.reduce((a, k) => a + k.ms, 0),
        4,
      ),
    };
    // these steps' counters are not the timed rounds'
    for (const xs of [dispatches, submits, readback, encode]) xs.splice(xs.length - GPU_TIMED_STEPS - 1);
  }
  // the warm-up round's counters are in the arrays too: keep the timed rounds only
  const keep = <T>(xs: T[]) => xs.slice(opts.warmupRounds);
  freeCache(be, plain);
  freeCache(be, rose);
  be.free(probs);

  const fig = (ms: number[]): StepFigures => ({
    medianMs: round(median(ms)),
    bestMs: round(Math.min(...ms)),
    samples: ms.length,
    weightGBps: round(bm.weightBytesPerStep / median(ms) / 1e6),
  });
  const gpu = gpuStats(be) !== undefined;
  return {
    prefill:
      opts.prefillRuns === 0
        ? null
        : {
            tokens: opts.prefillTokens,
            runs: opts.prefillRuns,
            medianMs: round(median(prefillMs)),
            bestMs: round(Math.min(...prefillMs)),
            tokensPerSecond: round((opts.prefillTokens / Math.min(...prefillMs)) * 1000),
          },
    plain: fig(plainMs),
    rose: fig(roseMs),
    roseOverPlainStepRatio: round(median(roseMs) / median(plainMs), 4),
    roseOverPlainBestStepRatio: round(Math.min(...roseMs) / Math.min(...plainMs), 4),
    dispatchesPerStep: gpu || pool ? median(keep(dispatches)) : null,
    submitsPerStep: gpu ? median(keep(submits)) : null,
    readbackBytesPerStep: median(keep(readback)),
    encodeMsPerStep: gpu ? round(median(keep(encode))) : null,
    opProfile,
    gpuTime,
    gpuTimeNote: !(be instanceof WebGpuBackend)
      ? 'not WebGPU'
      : canTime
        ? 'timestamp queries: stepMs from one pass per ROSE step, kernels from one step with each dispatch in its own pass'
        : `no GPU time: the adapter has no 'timestamp-query' feature (${be.description.split(';')[0]})`,
    peakRssMb: round(peakRss / 2 ** 20, 4),
    maxRssMb: round((process.resourceUsage().maxRSS * 1024) / 2 ** 20, 4),
    contextAtEnd: opts.promptTokens + steps,
  };
}

function freeCache(be: Backend, c: KvCache): void {
  for (const t of [...c.k, ...c.v, c.rope]) be.free(t);
}

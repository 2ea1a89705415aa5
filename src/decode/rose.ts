/**
 * The ROSE decoding loop.
 *
 * The positive prompt and every reverse prompt run as ONE batch (row 0 positive, rows 1..k reverse),
 * so each step reads the weights once for all of them. At each step the fused contrast+softmax turns
 * the rows' last logits into one token, z = logsoftmax(l_pos) − Σᵢ αᵢ·logsoftmax(l_revᵢ), and that
 * SAME token is appended to EVERY row: the rows differ only in their system prompt, never in what
 * the assistant has said. (A known port appends each row's own greedy token instead, and so never
 * computes ROSE at all; test/decode/rose.test.ts guards against that.)
 *
 * Plain decoding is the same loop with no reverse rows (a batch of one), so the baseline and ROSE
 * share every line of code but the contrast.
 */
import { RoseError } from '../errors.ts';
import type { ContrastParams } from '../kernels/backend.ts';
import type { Llama } from '../model/llama.ts';
import { seededUniform } from './random.ts';
import { filterTopKTopP, sampleFromProbs } from './sampling.ts';

export interface SamplingOptions {
  temperature?: number; // > 0, default 1
  topK?: number; // 0 = off
  topP?: number; // (0, 1], 1 = off
  seed?: number; // default 0
  /**
   * Where the sampler's uniforms come from: called once per step, it must return a number in [0, 1).
   * Default: seededUniform(seed). Pass recorded draws to replay another implementation's sampled run
   * exactly (the decode-feature references list theirs), or any generator of your own. Not with `seed`.
   */
  uniform?: () => number;
}

export interface RoseOptions {
  /** Weight of each reverse row: one per reverse prompt. Default 0.5 each (the paper). */
  alphas?: readonly number[];
  /** New tokens at most (the stop token, if any, is not counted). Default 64 (the official README). */
  maxNewTokens?: number;
  /** Any of these ends generation when chosen (checked on the contrasted token). */
  stopIds?: readonly number[];
  /** Sampling after the contrast; omitted = greedy, as in the paper. */
  sampling?: SamplingOptions;
  /** Plausibility mask: drop tokens with p_pos < β·max p_pos. 0 = off (the paper). */
  beta?: number;
  /** Contrast only the first m tokens, then decode plainly (SafeDecoding's schedule). Default: always. */
  firstM?: number;
  /** Record, per step, the top entries of p_pos, p_rev and the contrast. Reads the logits back each step. */
  trace?: boolean | { topK: number };
}

export interface TopEntry {
  id: number;
  p: number;
}

export interface TraceStep {
  step: number;
  token: number;
  /** The token plain greedy decoding (argmax of l_pos) would have picked at this step. */
  plainToken: number;
  /** Whether the contrast changed the greedy choice. */
  changed: boolean;
  pPos: TopEntry[];
  pRev: TopEntry[][];
  contrast: TopEntry[];
}

export interface StepEvent {
  step: number;
  token: number;
  /** Whether this token is a stop id: it ends generation and is not fed back. */
  stop: boolean;
  trace?: TraceStep;
}

export interface RoseResult {
  tokens: number[]; // chosen ids, stop token excluded
  stopToken: number | null;
  steps: number;
  trace: TraceStep[];
  prefillSeconds: number;
  decodeSeconds: number;
}

/** ROSE with α equals classifier-free guidance with γ = 1/(1−α) under greedy decoding (rose-spec §1.3). */
export const alphaFromGuidanceScale = (gamma: number): number => {
  if (!(gamma >= 1) || !Number.isFinite(gamma))
    throw new RoseError('INPUT', `guidance_scale must be a finite number ≥ 1, got ${gamma}`, 'γ = 1/(1−α): α = 0.5 is γ = 2');
  return 1 - 1 / gamma;
};
export const guidanceScaleFromAlpha = (alpha: number): number => 1 / (1 - alpha);

function checkOptions(o: RoseOptions, reverseRows: number): void {
  const bad = (what: string, hint?: string) => {
    throw new RoseError('INPUT', what, hint);
  };
  const alphas = o.alphas ?? Array(reverseRows).fill(0.5);
  if (alphas.length !== reverseRows) bad(`${reverseRows} reverse prompt(s) need ${reverseRows} alpha(s), got ${alphas.length}`);
  for (const a of alphas) if (!Number.isFinite(a) || a < 0) bad(`alpha must be a finite number ≥ 0, got ${a}`, 'the paper uses 0.5');
  const t = o.sampling?.temperature ?? 1;
  if (!(t > 0) || !Number.isFinite(t)) bad(`temperature must be > 0, got ${t}`);
  const topP = o.sampling?.topP ?? 1;
  if (!(topP > 0 && topP <= 1)) bad(`top-p must be in (0, 1], got ${topP}`);
  const topK = o.sampling?.topK ?? 0;
  if (!Number.isInteger(topK) || topK < 0) bad(`top-k must be an integer ≥ 0, got ${topK}`);
  if (o.sampling?.uniform !== undefined && o.sampling.seed !== undefined)
    bad('sampling got both a seed and a uniform source', 'the seed only seeds the default source: give one of them');
  const beta = o.beta ?? 0;
  if (!(beta >= 0 && beta <= 1)) bad(`beta must be in [0, 1], got ${beta}`);
  const n = o.maxNewTokens ?? 64;
  if (!Number.isInteger(n) || n < 1) bad(`max new tokens must be a positive integer, got ${n}`);
  if (o.firstM !== undefined && (!Number.isInteger(o.firstM) || o.firstM < 0)) bad(`first-m must be an integer ≥ 0, got ${o.firstM}`);
}

/** The prompt and the new tokens must fit the context; the error says how many new tokens would. */
export function checkContext(longestRow: number, maxNew: number, context: number): void {
  if (longestRow + maxNew <= context) return;
  if (longestRow >= context) {
    throw new RoseError(
      'LIMIT',
      `the prompt is ${longestRow} tokens (its longest row, template included), and this model's context (max_position_embeddings) is ${context}: no room for even one new token`,
      'shorten the question or the system / reverse prompt',
    );
  }
  throw new RoseError(
    'LIMIT',
    `${maxNew} new tokens do not fit: the longest prompt row is ${longestRow} tokens and this model's context ` +
      `(max_position_embeddings) is ${context}, so at most ${context - longestRow} new tokens fit this prompt`,
    `use --max-new-tokens ${context - longestRow} or less`,
  );
}

/**
 * α ≥ 1 without a plausibility mask: z = (1 − Σα)·log p_pos + Σα·(log p_pos − log p_rev) no longer
 * keeps a positive weight on log p_pos, so a token that both prompts find unlikely, but the reverse one
 * more so, can win: decoding degenerates into junk (weights/rose-micro/EVAL.md: every question at α = 1).
 * A β mask (e.g. 0.1) restores it. Returns the warning to show, or null.
 */
export function degenerateContrastWarning(alphas: readonly number[], beta = 0): string | null {
  const sum = alphas.reduce((a, b) => a + b, 0);
  if (sum < 1 || beta > 0) return null;
  const what = alphas.length === 1 ? `α = ${alphas[0]}` : `Σα = ${+sum.toFixed(6)}`;
  return (
    `${what} ≥ 1 without a plausibility mask: the contrast no longer favours what the positive prompt finds likely, ` +
    'and the answer degenerates into junk (rose-micro answers junk to every question at α = 1.0); add --beta 0.1, or use α < 1'
  );
}

function softmax(row: Float32Array): Float64Array {
  let max = -Infinity;
  for (const v of row) if (v > max) max = v;
  const out = new Float64Array(row.length);
  let sum = 0;
  for (let i = 0; i < row.length; i++) sum += out[i] = Math.exp(row[i] - max);
  for (let i = 0; i < row.length; i++) out[i] /= sum;
  return out;
}

function topEntries(p: ArrayLike<number>, k: number): TopEntry[] {
  const ids = Array.from({ length: p.length }, (_, i) => i).sort((a, b) => p[b] - p[a] || a - b);
  return ids.slice(0, k).map((id) => ({ id, p: p[id] }));
}

/**
 * Decodes from a positive prompt and zero or more reverse prompts (token ids), yielding each chosen
 * token as it is made. The generator's return value is the whole result.
 */
export async function* roseDecode(
  model: Llama,
  positive: readonly number[],
  reverse: readonly (readonly number[])[],
  options: RoseOptions = {},
): AsyncGenerator<StepEvent, RoseResult> {
  checkOptions(options, reverse.length);
  const be = model.backend;
  const V = model.config.vocabSize;
  const alphas = options.alphas ?? reverse.map(() => 0.5);
  const maxNew = options.maxNewTokens ?? 64;
  const stopIds = new Set(options.stopIds ?? []);
  const sampling = options.sampling;
  const hostFilter = sampling !== undefined && ((sampling.topK ?? 0) > 0 || (sampling.topP ?? 1) < 1);
  const drawUniform = sampling?.uniform ?? seededUniform(sampling?.seed ?? 0);
  const uniform = (step: number): number => {
    const u = drawUniform();
    if (!(u >= 0 && u < 1))
      throw new RoseError('INPUT', `the uniform source returned ${u} at step ${step}`, 'it must return a number in [0, 1) at every call');
    return u;
  };
  const traceTopK = options.trace ? (typeof options.trace === 'object' ? options.trace.topK : 5) : 0;

  const rows = [positive, ...reverse];
  const B = rows.length;
  const longest = Math.max(...rows.map((r) => r.length));
  checkContext(longest, maxNew, model.config.maxPositionEmbeddings);
  const cache = model.newKvCache(B, longest + maxNew);
  const probs = be.alloc([V]);
  const next = new Int32Array(B); // (B) the chosen token, once per row
  const tokens: number[] = [];
  const trace: TraceStep[] = [];

  const t0 = performance.now();
  let logits = model.prefill(cache, rows).logits; // (B, V): each row's last position
  let prefillSeconds = 0;
  let stopToken: number | null = null;

  for (let step = 0; step < maxNew; step++) {
    const contrasting = options.firstM === undefined || step < options.firstM;
    const params: ContrastParams = {
      alphas: contrasting ? alphas : alphas.map(() => 0),
      temperature: sampling?.temperature ?? 1,
      beta: options.beta ?? 0,
      uniform: sampling ? uniform(step) : 0,
    };
    let stepTrace: TraceStep | undefined;
    const traceLogits = traceTopK ? await be.read(logits) : undefined; // before the decision reuses buffers

    const decision = await be.contrastSoftmax(probs, logits, params);
    if (decision.nonFiniteRow >= 0) {
      const row = decision.nonFiniteRow === 0 ? 'the positive row (0)' : `reverse row ${decision.nonFiniteRow}`;
      throw new RoseError(
        'NUMERIC',
        `the logits of ${row} hold Inf or NaN at step ${step}`,
        'the checkpoint may be corrupt, or its values overflow f32; check it with rose logits',
      );
    }
    if (step === 0) prefillSeconds = (performance.now() - t0) / 1000; // includes the first decision
    let token = sampling ? decision.sampled : decision.argmax;
    if (hostFilter) token = sampleFromProbs(filterTopKTopP(await be.read(probs), sampling!.topK ?? 0, sampling!.topP ?? 1), params.uniform);

    if (traceLogits) {
      const p = softmax(traceLogits.subarray(0, V));
      let plainToken = 0;
      for (let v = 1; v < V; v++) if (traceLogits[v] > traceLogits[plainToken]) plainToken = v;
      stepTrace = {
        step,
        token,
        plainToken,
        changed: plainToken !== token,
        pPos: topEntries(p, traceTopK),
        pRev: rows.slice(1).map((_, r) => topEntries(softmax(traceLogits.subarray((r + 1) * V, (r + 2) * V)), traceTopK)),
        contrast: topEntries(await be.read(probs), traceTopK),
      };
      trace.push(stepTrace);
    }

    const stop = stopIds.has(token);
    yield { step, token, stop, trace: stepTrace };
    if (stop) {
      stopToken = token;
      break;
    }
    tokens.push(token);
    if (step + 1 < maxNew) logits = model.forward(cache, next.fill(token)); // SAME token to every row
  }
  const decodeSeconds = (performance.now() - t0) / 1000 - prefillSeconds;
  be.free(probs);
  return { tokens, stopToken, steps: tokens.length + (stopToken === null ? 0 : 1), trace, prefillSeconds, decodeSeconds };
}

/** Runs roseDecode to the end and returns its result (for callers that do not stream). */
export async function roseGenerate(
  model: Llama,
  positive: readonly number[],
  reverse: readonly (readonly number[])[],
  options: RoseOptions = {},
): Promise<RoseResult> {
  const it = roseDecode(model, positive, reverse, options);
  for (;;) {
    const r = await it.next();
    if (r.done) return r.value;
  }
}

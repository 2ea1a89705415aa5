/**
 * The trace of a ROSE answer as JSON: what `rose generate --trace FILE` writes, and what the teaching
 * page reads. ONE function makes it (traceToJson), so both always show the same thing.
 *
 * Each step says which token was chosen, which one plain greedy decoding would have chosen, whether
 * ROSE changed the choice, and the top entries of p_pos, of each p_rev and of the contrast; every id
 * comes with its text (the token decoded on its own, special tokens shown), or null when there is no
 * tokenizer.
 */
import type { RoseResult, TopEntry, TraceStep } from './rose.ts';

/** Bumped when a field changes meaning or goes away (adding a field does not bump it). */
export const TRACE_FORMAT = 'rose-trace/1';

export interface TracedEntry extends TopEntry {
  text: string | null;
}

export interface TracedStep {
  step: number;
  token: number;
  text: string | null;
  plainToken: number;
  plainText: string | null;
  changed: boolean;
  pPos: TracedEntry[];
  /** One list per reverse prompt. */
  pRev: TracedEntry[][];
  contrast: TracedEntry[];
}

export interface TraceJson {
  format: typeof TRACE_FORMAT;
  /** α of each reverse prompt. */
  alphas: number[];
  beta: number;
  /** What each reverse prompt is ("Manual-Reverse (paper-verbatim)", …). */
  reverse: string[];
  /** The positive row's prompt ids (template applied). */
  promptTokens: number[];
  /** The answer: chosen ids (stop token excluded), and its text ('' without a tokenizer). */
  tokens: number[];
  text: string;
  stopToken: number | null;
  trace: TracedStep[];
}

export interface TraceContext {
  alphas: readonly number[];
  beta?: number;
  reverse: readonly string[];
  promptTokens: readonly number[];
  text: string;
  /** The text of one token id, or null when there is no tokenizer. */
  tokenText: (id: number) => string | null;
}

/** One step of a trace as JSON: the unit the teaching page shows while an answer streams. */
export function traceStepToJson(s: TraceStep, tokenText: (id: number) => string | null): TracedStep {
  const entries = (list: readonly TopEntry[]): TracedEntry[] => list.map((e) => ({ id: e.id, p: e.p, text: tokenText(e.id) }));
  return {
    step: s.step,
    token: s.token,
    text: tokenText(s.token),
    plainToken: s.plainToken,
    plainText: tokenText(s.plainToken),
    changed: s.changed,
    pPos: entries(s.pPos),
    pRev: s.pRev.map(entries),
    contrast: entries(s.contrast),
  };
}

/** A decoded answer with its per-step trace, as the JSON object of TRACE_FORMAT. */
export function traceToJson(result: Pick<RoseResult, 'tokens' | 'stopToken' | 'trace'>, ctx: TraceContext): TraceJson {
  return {
    format: TRACE_FORMAT,
    alphas: [...ctx.alphas],
    beta: ctx.beta ?? 0,
    reverse: [...ctx.reverse],
    promptTokens: [...ctx.promptTokens],
    tokens: [...result.tokens],
    text: ctx.text,
    stopToken: result.stopToken,
    trace: result.trace.map((s) => traceStepToJson(s, ctx.tokenText)),
  };
}

/**
 * The crash-safe evaluation runner behind `rose eval`: a JSONL file of prompts in, a JSONL file of
 * plain-vs-ROSE results out, one line per prompt, a keyword refusal metric (refusal.ts) and a summary.
 *
 * Independent of models: the work per prompt is an injected `run(prompt, row, signal)` that returns
 * both decodings (the CLI passes one that calls roseGenerate twice; the tests pass a fake).
 *
 * Crash safety, in three parts: 1 and 2 are the writer's and reader's (jsonl.ts);
 *   3. Prompts whose id is already in the output are skipped; the rest run in input order. So the same
 *      command, re-run after any number of crashes, ends with every id exactly once, and (when `run`
 *      is deterministic) with the very bytes an uninterrupted run writes.
 * Not covered: two runners appending to the same output at once (each would run the missing ids).
 *
 * Output line: {id, prompt, plain: {text, tokens, seconds, refused}, rose: {…}, ...extra, input}
 * where `extra` are run-wide fields the caller chooses (alpha, model, max new tokens, …) and `input`
 * holds the prompt line's other fields, carried through untouched.
 */
import { RoseError } from '../errors.ts';
import { isObject } from '../json.ts';
import {
  defaultLog,
  EvalWriter,
  idKey,
  readEvalOutput,
  readPrompts,
  RESERVED_FIELDS,
  type DecodingRecord,
  type EvalLine,
  type PromptRow,
} from './jsonl.ts';
import { DEFAULT_REFUSAL_PHRASES, isRefusal } from './refusal.ts';

// ───────────────────────────────────────── summary ─────────────────────────────────────────

export interface DecodingSummary {
  refusals: number;
  /** refusals / count; NaN when count is 0. */
  refusalRate: number;
  meanTokens: number;
  meanSeconds: number;
}

export interface EvalSummary {
  count: number;
  plain: DecodingSummary;
  rose: DecodingSummary;
}

/**
 * Per decoding: refusal rate, mean tokens, mean seconds over the given lines. Refusals are re-scored
 * from each line's text with `phrases`, so a file resumed with another phrase list, or an old file
 * scored with a new one, is scored by one list throughout (the stored `refused` is the verdict at
 * write time).
 */
export function summarize(lines: readonly EvalLine[], phrases: readonly string[] = DEFAULT_REFUSAL_PHRASES): EvalSummary {
  const one = (pick: (l: EvalLine) => DecodingRecord): DecodingSummary => {
    let refusals = 0;
    let tokens = 0;
    let seconds = 0;
    for (const l of lines) {
      const r = pick(l);
      if (isRefusal(r.text, phrases)) refusals++;
      tokens += r.tokens;
      seconds += r.seconds;
    }
    const n = lines.length;
    return { refusals, refusalRate: refusals / n, meanTokens: tokens / n, meanSeconds: seconds / n };
  };
  return { count: lines.length, plain: one((l) => l.plain), rose: one((l) => l.rose) };
}

/** A summary per value of one input field (the paper's table is per class), and over all lines. */
export interface GroupedSummary {
  /** The input field the lines are grouped by, or null for one group of everything. */
  groupBy: string | null;
  groups: { value: string; summary: EvalSummary }[];
  total: EvalSummary;
}

/** The group of a line with no such field. */
export const NO_VALUE = '(none)';

const groupValue = (l: EvalLine, field: string): string => {
  const v = l.input[field];
  return v === undefined || v === null ? NO_VALUE : typeof v === 'string' ? v : JSON.stringify(v);
};

/** Summaries per value of `input[field]` (groups sorted by value), and the total. */
export function summarizeBy(
  lines: readonly EvalLine[],
  field: string | null,
  phrases: readonly string[] = DEFAULT_REFUSAL_PHRASES,
): GroupedSummary {
  const total = summarize(lines, phrases);
  if (field === null) return { groupBy: null, groups: [], total };
  const byValue = new Map<string, EvalLine[]>();
  for (const l of lines) {
    const v = groupValue(l, field);
    byValue.set(v, [...(byValue.get(v) ?? []), l]);
  }
  const values = [...byValue.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return { groupBy: field, groups: values.map((value) => ({ value, summary: summarize(byValue.get(value)!, phrases) })), total };
}

/**
 * The summary as a text table: a row per group, then the total, e.g.
 *
 *   class    prompts   plain refused    ROSE refused     plain tokens   ROSE tokens   plain s   ROSE s
 *   benign       100   4.0% (4/100)     13.0% (13/100)           24.1          20.3     0.191    0.275
 *   …
 *   total        300   35.0% (105/300)  71.0% (213/300)          22.0          16.9     0.180    0.260
 *
 * Tokens and seconds are means per answer.
 */
export function formatSummary(s: EvalSummary | GroupedSummary): string {
  const g: GroupedSummary = 'total' in s ? s : { groupBy: null, groups: [], total: s };
  const pct = (n: number, d: DecodingSummary) => (n === 0 ? '—' : `${(100 * d.refusalRate).toFixed(1)}% (${d.refusals}/${n})`);
  const num = (x: number, digits: number) => (Number.isFinite(x) ? x.toFixed(digits) : '—');
  const row = (name: string, e: EvalSummary) => [
    name,
    String(e.count),
    pct(e.count, e.plain),
    pct(e.count, e.rose),
    num(e.plain.meanTokens, 1),
    num(e.rose.meanTokens, 1),
    num(e.plain.meanSeconds, 3),
    num(e.rose.meanSeconds, 3),
  ];
  const rows = [
    [g.groupBy ?? '', 'prompts', 'plain refused', 'ROSE refused', 'plain tokens', 'ROSE tokens', 'plain s', 'ROSE s'],
    ...g.groups.map((x) => row(x.value, x.summary)),
    row('total', g.total),
  ];
  const left = new Set([0, 2, 3]); // text columns; the numbers are right-aligned
  const width = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((cell, c) => (left.has(c) ? cell.padEnd(width[c]) : cell.padStart(width[c]))).join('   ')).join('\n');
}

/** The JSON written beside the results (`<out>.summary.json`); NaN (no lines) becomes null. */
export const SUMMARY_FORMAT = 'rose-eval-summary/1';

export function summaryToJson(s: GroupedSummary, about: Record<string, unknown>): Record<string, unknown> {
  const finite = (x: number) => (Number.isFinite(x) ? x : null);
  const decoding = (d: DecodingSummary) => ({
    refusals: d.refusals,
    refusalRate: finite(d.refusalRate),
    meanTokens: finite(d.meanTokens),
    meanSeconds: finite(d.meanSeconds),
  });
  const one = (e: EvalSummary) => ({ count: e.count, plain: decoding(e.plain), rose: decoding(e.rose) });
  return {
    format: SUMMARY_FORMAT,
    ...about,
    groupBy: s.groupBy,
    groups: s.groups.map((x) => ({ value: x.value, ...one(x.summary) })),
    total: one(s.total),
  };
}

// ───────────────────────────────────────── shards ─────────────────────────────────────────

export interface Shard {
  /** 1-based: shard `index` of `count`. */
  index: number;
  count: number;
}

/**
 * The shard (1..count) an id belongs to: FNV-1a (32-bit) of the id's UTF-8 bytes, modulo count. It
 * depends on the id alone, not on the order or the other lines of the input, so n jobs given the same
 * input and --shard 1/n … n/n run every prompt exactly once between them.
 */
export function shardOf(id: string | number, count: number): number {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(idKey(id), 'utf8')) h = Math.imul(h ^ byte, 0x01000193) >>> 0;
  return (h % count) + 1;
}

// ───────────────────────────────────────── the runner ─────────────────────────────────────────

export interface DecodingOutput {
  text: string;
  tokenCount: number;
  seconds: number;
}

export interface RunOutput {
  plain: DecodingOutput;
  rose: DecodingOutput;
}

/** The work for one prompt. It should stop early when `signal` aborts (its result is dropped anyway). */
export type EvalRunFn = (prompt: string, row: PromptRow, signal: AbortSignal) => Promise<RunOutput>;

export interface EvalOptions {
  /** Prompts JSONL. */
  input: string;
  /** Results JSONL: created, or resumed when it exists. */
  output: string;
  run: EvalRunFn;
  /** Run-wide fields written on every line (alpha, model, …). Resuming checks old lines agree. */
  extra?: Record<string, unknown>;
  /** Refusal phrases; default DEFAULT_REFUSAL_PHRASES (see loadRefusalPhrases for a file). */
  refusalPhrases?: readonly string[];
  /** Abort (e.g. on SIGINT) to stop: the current prompt is abandoned, no partial line is written. */
  signal?: AbortSignal;
  /** After start-up and after each prompt: prompts done (resumed ones included), of total, and an ETA (null until one prompt ran). */
  onProgress?: (done: number, total: number, etaSeconds: number | null) => void;
  /** Where notes go (a repaired torn line, resuming, …); default stderr. */
  log?: (message: string) => void;
  /** Run only the prompts of this shard (see shardOf); the others are left to the other shards. */
  shard?: Shard;
}

export interface EvalOutcome {
  /** True when the signal stopped the run before every prompt was done (a CLI exits 130, as after SIGINT). */
  interrupted: boolean;
  /** Prompts in the input file. */
  total: number;
  /** Input prompts whose result is in the output now. */
  done: number;
  /** Input prompts skipped because the output already had them. */
  resumed: number;
  /** Lines this call wrote. */
  written: number;
  /** Over ALL lines of the output file, earlier runs' included. */
  summary: EvalSummary;
  /** Every line of the output file, in file order. */
  lines: EvalLine[];
}

function checkRunOutput(out: unknown, id: string | number): RunOutput {
  const ok = (d: unknown): d is DecodingOutput =>
    isObject(d) &&
    typeof d.text === 'string' &&
    Number.isInteger(d.tokenCount) &&
    (d.tokenCount as number) >= 0 &&
    Number.isFinite(d.seconds) &&
    (d.seconds as number) >= 0;
  if (!isObject(out) || !ok(out.plain) || !ok(out.rose)) {
    throw new Error(
      `eval run() for id ${JSON.stringify(id)} returned ${JSON.stringify(out)?.slice(0, 200)}, not {plain, rose} of {text, tokenCount ≥ 0, seconds ≥ 0}`,
    );
  }
  return out as unknown as RunOutput;
}

type Raced<T> = { ok: true; value: T } | { ok: false };

/** Resolves with the promise's value, or with {ok: false} as soon as the signal aborts (whichever is first). */
function raceAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<Raced<T>> {
  return new Promise((resolve, reject) => {
    const onAbort = () => resolve({ ok: false });
    if (signal.aborted) {
      p.catch(() => {}); // abandoned: its outcome no longer matters
      return onAbort();
    }
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve({ ok: true, value });
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        if (signal.aborted) resolve({ ok: false });
        else reject(e);
      },
    );
  });
}

/**
 * Runs every prompt of `input` whose id is not yet in `output`, appending one line per prompt. Safe to
 * kill at any moment and to re-run with the same options until it returns {interrupted: false}.
 */
export async function runEval(o: EvalOptions): Promise<EvalOutcome> {
  const log = o.log ?? defaultLog;
  const phrases = o.refusalPhrases ?? DEFAULT_REFUSAL_PHRASES;
  if (phrases.length === 0)
    throw new RoseError('INPUT', 'the refusal phrase list is empty', 'pass at least one phrase, or none to use the default list');
  const extra = o.extra ?? {};
  for (const k of Object.keys(extra)) {
    if (RESERVED_FIELDS.includes(k))
      throw new RoseError('INPUT', `extra field "${k}" would overwrite the output's own "${k}"`, `reserved: ${RESERVED_FIELDS.join(', ')}`);
  }
  const signal = o.signal ?? new AbortController().signal;

  const shard = o.shard;
  if (
    shard &&
    !(Number.isInteger(shard.count) && shard.count >= 1 && Number.isInteger(shard.index) && shard.index >= 1 && shard.index <= shard.count)
  )
    throw new RoseError('INPUT', `shard ${shard.index}/${shard.count} does not exist`, 'give i/n with 1 ≤ i ≤ n');
  const allRows = readPrompts(o.input);
  const rows = shard ? allRows.filter((r) => shardOf(r.id, shard.count) === shard.index) : allRows;
  const existing = readEvalOutput(o.output, log);
  const lines = [...existing.lines];

  // The output must come from the same experiment: same prompt per id, same run-wide fields.
  const rowById = new Map(rows.map((r) => [idKey(r.id), r]));
  const hint = 'resume with the same prompts and options, or write to a new output file';
  let foreign = 0;
  existing.lines.forEach((l, i) => {
    const at = `${o.output}:${existing.lineNumbers[i]}`;
    for (const [k, v] of Object.entries(extra)) {
      if (JSON.stringify(l[k]) !== JSON.stringify(v)) {
        throw new RoseError(
          'INPUT',
          `${at}: this output was made with ${k}=${JSON.stringify(l[k]) ?? 'nothing'}, this run has ${k}=${JSON.stringify(v)}`,
          hint,
        );
      }
    }
    const row = rowById.get(idKey(l.id));
    if (row === undefined) foreign++;
    else if (row.prompt !== l.prompt)
      throw new RoseError(
        'INPUT',
        `${at}: id ${JSON.stringify(l.id)} was run with a different prompt than ${o.input}:${row.line} has now`,
        hint,
      );
  });
  if (foreign > 0)
    log(`rose eval: ${o.output} has ${foreign} line(s) whose id is not in ${o.input}; they are kept and counted in the summary`);

  const doneIds = new Set(existing.lines.map((l) => idKey(l.id)));
  const todo = rows.filter((r) => !doneIds.has(idKey(r.id)));
  const total = rows.length;
  const resumed = total - todo.length;
  if (resumed > 0) log(`rose eval: resuming ${o.output}: ${resumed} of ${total} prompt(s) already done`);

  let done = resumed;
  let written = 0;
  let interrupted = false;
  o.onProgress?.(done, total, todo.length === 0 ? 0 : null);

  const writer = new EvalWriter(o.output);
  const t0 = performance.now();
  try {
    for (const row of todo) {
      if (signal.aborted) {
        interrupted = true;
        break;
      }
      const raced = await raceAbort(
        Promise.resolve().then(() => o.run(row.prompt, row, signal)),
        signal,
      );
      if (!raced.ok) {
        interrupted = true; // abandoned: nothing of this prompt is written, now or when run() settles
        break;
      }
      const out = checkRunOutput(raced.value, row.id);
      const record = (d: DecodingOutput): DecodingRecord => ({
        text: d.text,
        tokens: d.tokenCount,
        seconds: d.seconds,
        refused: isRefusal(d.text, phrases),
      });
      const line: EvalLine = {
        id: row.id,
        prompt: row.prompt,
        plain: record(out.plain),
        rose: record(out.rose),
        ...extra,
        input: row.input,
      };
      writer.append(line);
      lines.push(line);
      written++;
      done++;
      const perPrompt = (performance.now() - t0) / 1000 / written;
      o.onProgress?.(done, total, perPrompt * (total - done));
    }
  } finally {
    writer.close();
  }
  return { interrupted, total, done, resumed, written, summary: summarize(lines, phrases), lines };
}

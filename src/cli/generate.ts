/**
 * `rose generate`: answer a question under ROSE, optionally beside plain decoding (--compare).
 * Text goes to stdout as it is generated; everything else (the one banner line, notes, warnings) to
 * stderr, so `--json` output stays machine-readable.
 */
import { basename, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { SingleBar } from 'cli-progress';
import { Rose, tokenize, type Answer, type AskOptions, type StreamPiece } from '../api.ts';
import type { KernelChoice } from '../kernels/registry.ts';
import type { BackendKind, CpuTierChoice } from '../kernels/select.ts';
import { alphaFromGuidanceScale, checkContext, degenerateContrastWarning } from '../decode/rose.ts';
import { loadLlamaConfig } from '../model/config.ts';
import type { TemplateMode } from '../decode/template.ts';
import { writeOutputFile } from '../outputFile.ts';
import { SideBySide } from './columns.ts';
import { checkThreadsUsable, refuseTogether, usageError, type Given } from './usage.ts';

export interface GenerateCliOptions {
  model: string;
  prompt?: string;
  ids?: number[][];
  reverseIds?: number[][];
  system?: string;
  reverse: string[];
  alpha?: number[];
  guidanceScale?: number;
  template: TemplateMode;
  backend: BackendKind;
  maxNewTokens: number;
  sample?: boolean;
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
  beta?: number;
  firstM?: number;
  trace?: string;
  compare?: boolean;
  json?: boolean;
  threads?: number;
  cpuTier?: CpuTierChoice;
  kernel?: KernelChoice;
  verbose?: boolean;
}

const out = (s: string) => process.stdout.write(s);
const err = (s: string) => process.stderr.write(s);

/** Options that conflict, or that would be silently ignored, are usage errors (exit 2). */
function checkUsage(o: GenerateCliOptions, given: Given): void {
  if (!o.prompt && !o.ids)
    throw usageError('nothing to answer: give --prompt "<question>" or --ids <positive ids> --reverse-ids <reverse ids>');
  refuseTogether(given, ['prompt', '--prompt'], [['ids', '--ids']], 'they are two ways to give the input; use one');
  refuseTogether(
    given,
    ['prompt', '--prompt'],
    [['reverseIds', '--reverse-ids']],
    'with --prompt the reverse prompts come from --reverse (text); --reverse-ids goes with --ids',
  );
  refuseTogether(
    given,
    ['ids', '--ids'],
    [
      ['system', '--system'],
      ['reverse', '--reverse'],
      ['template', '--template'],
    ],
    'token ids are the model input as is, with no prompt text or template to apply (see rose tokenize for the ids of a prompt)',
  );
  refuseTogether(given, ['alpha', '--alpha'], [['guidanceScale', '--guidance-scale']], 'they say the same thing; give one of them');
  if (o.ids && o.ids.length > 1) throw usageError('give one --ids row (the positive prompt); reverse prompts go in --reverse-ids');
  if (o.ids && !o.reverseIds?.length) throw usageError('--ids needs at least one --reverse-ids row for ROSE');
  checkThreadsUsable(o.backend, given);
}

const sampling = (o: GenerateCliOptions): boolean =>
  !!o.sample || o.temperature !== undefined || o.topK !== undefined || o.topP !== undefined;

function askOptions(o: GenerateCliOptions): AskOptions {
  const alpha =
    o.guidanceScale !== undefined ? alphaFromGuidanceScale(o.guidanceScale) : o.alpha && o.alpha.length === 1 ? o.alpha[0] : o.alpha;
  return {
    alpha,
    positive: o.system ?? 'default',
    reverse: o.reverse.length ? o.reverse : 'manual',
    template: o.template,
    maxNewTokens: o.maxNewTokens,
    sampling: sampling(o) ? { temperature: o.temperature, topK: o.topK, topP: o.topP, seed: o.seed ?? 0 } : undefined,
    beta: o.beta,
    firstM: o.firstM,
    trace: o.trace ? { topK: 5 } : false,
  };
}

/** A progress bar for loading weights, on a terminal, shown only when loading takes a while. */
function loadingBar(enabled: boolean): { onProgress: (done: number, total: number) => void; stop: () => void } {
  const bar = enabled
    ? new SingleBar({ format: 'loading weights [{bar}] {value}/{total} tensors', hideCursor: true, clearOnComplete: true })
    : null;
  const t0 = performance.now();
  let started = false;
  return {
    onProgress(done, total) {
      if (!bar || done === total) return;
      if (!started && performance.now() - t0 < 300) return; // a small model loads before a bar could help
      if (!started) bar.start(total, done);
      started = true;
      bar.update(done);
    },
    stop: () => {
      if (started) bar?.stop();
    },
  };
}

/** Streams one answer, handing each piece to `onPiece`; returns it with the seconds spent inside it. */
async function run(rose: Rose, o: GenerateCliOptions, opts: AskOptions, onPiece: (p: StreamPiece) => void): Promise<Timed> {
  const it = o.ids ? rose.streamIds(o.ids[0], o.reverseIds ?? [], opts) : rose.stream(o.prompt!, opts);
  let seconds = 0;
  for (;;) {
    const t = performance.now();
    const r = await it.next();
    seconds += (performance.now() - t) / 1000;
    if (r.done) return { answer: r.value, seconds };
    onPiece(r.value);
  }
}

interface Timed {
  answer: Answer;
  /** Time spent computing this answer alone (prefill and steps), for its tokens/s. */
  seconds: number;
}

const pieceText = (rose: Rose, p: StreamPiece): string => (p.stop ? '' : rose.tokenizer ? p.text : `${p.token} `);
const speed = (t: Timed): string => `${t.answer.steps} tokens, ${(t.answer.steps / Math.max(t.seconds, 1e-9)).toFixed(1)} tok/s`;

/**
 * --compare on a terminal: plain and ROSE decode in lock step (one token of each in turn; their KV
 * caches and buffers are separate), and the rows print as they become final. The tokens/s of each
 * counts only the time spent on it.
 */
async function compareLive(rose: Rose, o: GenerateCliOptions, opts: AskOptions, roseLabel: string): Promise<[Timed, Timed]> {
  const table = new SideBySide(Math.max(40, process.stdout.columns ?? 80), out);
  table.rows('plain greedy', roseLabel);
  table.rule();
  const sides = [
    { opts: { ...opts, plain: true, trace: false }, side: 0 as const },
    { opts, side: 1 as const },
  ].map(({ opts: a, side }) => {
    const it = o.ids ? rose.streamIds(o.ids[0], o.reverseIds ?? [], a) : rose.stream(o.prompt!, a);
    return { it, side, seconds: 0, result: undefined as Answer | undefined };
  });
  while (sides.some((s) => !s.result)) {
    for (const s of sides) {
      if (s.result) continue;
      const t = performance.now();
      const r = await s.it.next();
      s.seconds += (performance.now() - t) / 1000;
      if (r.done) {
        s.result = r.value;
        table.finish(s.side);
      } else table.push(s.side, pieceText(rose, r.value));
    }
  }
  const [plain, contrasted] = sides.map((s) => ({ answer: s.result!, seconds: s.seconds }));
  table.rule();
  table.rows(speed(plain), speed(contrasted));
  return [plain, contrasted];
}

/** --compare into a pipe or a file: one labelled answer after the other, each streamed. */
async function compareLines(rose: Rose, o: GenerateCliOptions, opts: AskOptions, roseLabel: string): Promise<[Timed, Timed]> {
  out('plain greedy: ');
  const plain = await run(rose, o, { ...opts, plain: true, trace: false }, (p) => out(pieceText(rose, p)));
  out(`\n${roseLabel}: `);
  const contrasted = await run(rose, o, opts, (p) => out(pieceText(rose, p)));
  out('\n');
  err(`rose: plain ${speed(plain)}; ROSE ${speed(contrasted)}\n`);
  return [plain, contrasted];
}

export async function generateCommand(o: GenerateCliOptions, given: Given = () => false): Promise<void> {
  checkUsage(o, given);
  if (given('seed') && !sampling(o))
    err('rose: warning: --seed does nothing without sampling (--sample, --temperature, --top-k or --top-p): decoding is greedy\n');
  const opts = askOptions(o);
  const alphas = typeof opts.alpha === 'number' ? [opts.alpha] : (opts.alpha ?? [0.5]);
  const degenerate = degenerateContrastWarning(alphas, o.beta);
  if (degenerate) err(`rose: warning: ${degenerate}\n`);
  // The cheap checks before a backend starts: the folder, the prompt files (and typos in prompt
  // names), and whether the prompt and --max-new-tokens fit the context.
  const context = loadLlamaConfig(o.model).maxPositionEmbeddings;
  const rows = o.prompt ? (await tokenize(o.model, o.prompt, opts)).rows : [...(o.ids ?? []), ...(o.reverseIds ?? [])];
  checkContext(Math.max(...rows.map((r) => r.length)), o.maxNewTokens, context);

  const bar = loadingBar(!!process.stderr.isTTY && !o.json);
  const rose = await Rose.open(o.model, {
    backend: o.backend,
    threads: o.threads,
    cpuTier: o.cpuTier,
    kernels: o.kernel,
    onProgress: bar.onProgress,
    note: o.verbose ? (l) => err(`${l}\n`) : undefined,
  }).finally(bar.stop);
  try {
    const summary = rose.backendSummary;
    err(`rose: ${basename(resolve(o.model))} on ${summary.label}\n`);
    if (o.verbose) err(`rose: ${rose.backend.description}\n`);
    if (o.ids && !rose.tokenizer && !o.json) err('rose: no tokenizer.json: printing token ids\n');

    let plain: Timed | undefined;
    let contrasted: Timed;
    const label = `ROSE α=${alphas.join('+')}, ${reverseLabels(rose, o, opts)}`;
    if (o.compare && !o.json) {
      [plain, contrasted] = process.stdout.isTTY ? await compareLive(rose, o, opts, label) : await compareLines(rose, o, opts, label);
    } else {
      if (o.compare) plain = await run(rose, o, { ...opts, plain: true, trace: false }, () => {});
      contrasted = await run(rose, o, opts, o.json ? () => {} : (p) => out(pieceText(rose, p)));
      if (!o.json) {
        out('\n');
        const stop = contrasted.answer.stopToken;
        err(`rose: ${speed(contrasted)}${stop !== null ? `, stopped on id ${stop}` : ''}\n`);
      }
    }
    for (const n of contrasted.answer.prompts.notes) err(`rose: note: ${n}\n`);

    if (o.trace) {
      const json = rose.traceJson(contrasted.answer, { alpha: opts.alpha, beta: opts.beta });
      const kind = writeOutputFile(o.trace, [`${JSON.stringify(json, null, 2)}\n`], 'trace');
      err(`rose: trace of ${json.trace.length} steps (${label}) → ${kind === 'stdout' ? 'stdout' : resolve(o.trace)}\n`);
    }
    if (o.json) {
      const view = (t: Timed) => ({
        tokens: t.answer.tokens,
        ...(rose.tokenizer ? { text: t.answer.text } : {}),
        stopToken: t.answer.stopToken,
        tokensPerSecond: t.answer.steps / Math.max(t.seconds, 1e-9),
      });
      out(
        `${JSON.stringify({
          model: o.model,
          backend: summary.name,
          ...(summary.name === 'cpu' ? { threads: o.threads ?? 1 } : {}),
          ...(summary.adapter ? { adapter: summary.adapter } : {}),
          alpha: opts.alpha ?? 0.5,
          ...view(contrasted),
          ...(plain ? { plain: view(plain) } : {}),
        })}\n`,
      );
    }
  } finally {
    rose.close();
  }
}

/** The reverse prompts' labels, known before decoding (the compare header). */
function reverseLabels(rose: Rose, o: GenerateCliOptions, opts: AskOptions): string {
  if (o.ids) return `${o.reverseIds?.length ?? 0} reverse row(s) of token ids`;
  return rose
    .prepare(o.prompt!, opts)
    .reverse.map((r) => r.label)
    .join(' + ');
}

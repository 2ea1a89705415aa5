/**
 * `rose eval`: plain decoding and ROSE on every prompt of a JSONL file, one fsynced output line per
 * prompt. Stop it at any moment (Ctrl-C, kill -9, power loss) and run the same command again: it
 * resumes where it stopped, never duplicating or tearing a line (src/eval/). The summary is a table
 * per class (--group-by), printed and written to <out>.summary.json; --shard i/n splits a long run into
 * independent jobs, and --merge combines their outputs.
 */
import { statSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { SingleBar } from 'cli-progress';
import { Rose, type AskOptions } from '../api.ts';
import type { KernelChoice } from '../kernels/registry.ts';
import { resolveReversePrompt } from '../decode/prompts.ts';
import { degenerateContrastWarning } from '../decode/rose.ts';
import type { TemplateMode } from '../decode/template.ts';
import { readPrompts, type EvalLine } from '../eval/jsonl.ts';
import { mergeEvalOutputs } from '../eval/merge.ts';
import { DEFAULT_REFUSAL_PHRASES, loadRefusalPhrases } from '../eval/refusal.ts';
import { formatSummary, runEval, summarizeBy, summaryToJson, type Shard } from '../eval/runner.ts';
import type { BackendKind, CpuTierChoice } from '../kernels/select.ts';
import { writeOutputFile } from '../outputFile.ts';
import { checkThreadsUsable, usageError, type Given } from './usage.ts';

export interface EvalCliOptions {
  model: string;
  input?: string;
  out: string;
  alpha: number;
  beta?: number;
  reverse: string;
  template: TemplateMode;
  backend: BackendKind;
  maxNewTokens: number;
  refusals?: string;
  groupBy?: string;
  shard?: Shard;
  merge?: string[];
  threads?: number;
  cpuTier?: CpuTierChoice;
  kernel?: KernelChoice;
  verbose?: boolean;
}

const err = (s: string) => process.stderr.write(s);

/** The field to summarise by: the one asked for (it must exist in the input), else "class" when the input has it. */
export function chooseGroupBy(asked: string | undefined, inputs: readonly Record<string, unknown>[], where: string): string | null {
  const has = (f: string) => inputs.some((i) => i[f] !== undefined);
  if (asked === undefined) return has('class') ? 'class' : null;
  if (!has(asked)) {
    const fields = [...new Set(inputs.flatMap((i) => Object.keys(i)))];
    throw usageError(
      `--group-by ${asked}: no line of ${where} has a "${asked}" field`,
      fields.length ? `its fields besides id and prompt: ${fields.join(', ')}` : 'its lines have no fields besides id and prompt',
    );
  }
  return asked;
}

/**
 * The progress bar of `rose eval` on a terminal. It starts on the first report, whatever the count
 * (a resumed run starts at the prompts already done: its bar must show too).
 */
export function evalProgressBar(stream: NodeJS.WritableStream & { isTTY?: boolean }): {
  onProgress: (done: number, total: number) => void;
  stop: () => void;
} {
  const bar = stream.isTTY
    ? new SingleBar({ format: 'rose eval [{bar}] {value}/{total} prompts | ETA {eta_formatted}', hideCursor: true, stream })
    : null;
  let started = false;
  return {
    onProgress(done, total) {
      if (!bar) return;
      if (!started) bar.start(total, done);
      else bar.update(done);
      started = true;
    },
    stop: () => {
      if (started) bar?.stop();
      started = false;
    },
  };
}

/** Prints the table and writes it beside a regular output file as <out>.summary.json. */
function report(o: EvalCliOptions, lines: readonly EvalLine[], groupBy: string | null, phrases: readonly string[]): void {
  const grouped = summarizeBy(lines, groupBy, phrases);
  process.stdout.write(`${formatSummary(grouped)}\n`);
  let regular = false;
  try {
    regular = statSync(o.out).isFile();
  } catch {
    // no output file (nothing was run): no summary file either
  }
  if (!regular) return; // never write "/dev/null.summary.json" beside a device
  const path = `${o.out}.summary.json`;
  const about = {
    output: resolve(o.out),
    ...(o.merge ? { merged: o.merge.map((f) => resolve(f)) } : {}),
    ...(o.input ? { input: resolve(o.input) } : {}),
    ...(o.shard ? { shard: `${o.shard.index}/${o.shard.count}` } : {}),
    refusalPhrases: o.refusals ? resolve(o.refusals) : 'default',
  };
  writeOutputFile(path, [`${JSON.stringify(summaryToJson(grouped, about), null, 2)}\n`], 'eval summary');
  err(`rose eval: summary → ${path}\n`);
}

const DECODING_OPTIONS: [name: string, flag: string][] = [
  ['model', '--model'],
  ['alpha', '--alpha'],
  ['beta', '--beta'],
  ['reverse', '--reverse'],
  ['template', '--template'],
  ['backend', '--backend'],
  ['maxNewTokens', '--max-new-tokens'],
  ['threads', '--threads'],
  ['cpuTier', '--cpu-tier'],
  ['shard', '--shard'],
];

/** `rose eval --merge FILES… --out FILE [--input prompts.jsonl]`. */
function mergeCommand(o: EvalCliOptions, given: Given, phrases: readonly string[]): number {
  for (const [name, flag] of DECODING_OPTIONS)
    if (given(name)) throw usageError(`${flag} does not apply to --merge, which combines finished outputs without decoding anything`);
  const lines = mergeEvalOutputs({ files: o.merge!, output: o.out, input: o.input });
  err(`rose eval: merged ${lines.length} result(s) from ${o.merge!.length} file(s) → ${o.out}\n`);
  const groupBy = chooseGroupBy(
    o.groupBy,
    lines.map((l) => l.input),
    o.out,
  );
  report(o, lines, groupBy, phrases);
  return 0;
}

/** Returns the process exit code: 0 when complete, 130 when interrupted (the shell's SIGINT convention). */
export async function evalCommand(o: EvalCliOptions, given: Given = () => false): Promise<number> {
  const phrases = o.refusals ? loadRefusalPhrases(o.refusals) : DEFAULT_REFUSAL_PHRASES;
  if (o.merge) return mergeCommand(o, given, phrases);
  if (!o.input) throw usageError('--input <prompts.jsonl> is required (or --merge <outputs…> to combine finished runs)');
  checkThreadsUsable(o.backend, given);
  const degenerate = degenerateContrastWarning([o.alpha], o.beta);
  if (degenerate) err(`rose eval: warning: ${degenerate}\n`);
  // The cheap checks before a GPU is started: the prompts, the group field, the reverse prompt.
  const input = o.input;
  const groupBy = chooseGroupBy(
    o.groupBy,
    readPrompts(input).map((r) => r.input),
    input,
  );
  resolveReversePrompt(o.reverse);

  const rose = await Rose.open(o.model, {
    backend: o.backend,
    threads: o.threads,
    cpuTier: o.cpuTier,
    kernels: o.kernel,
    note: o.verbose ? (l) => err(`${l}\n`) : undefined,
  });
  const ac = new AbortController();
  const onSigint = () => {
    err('\nrose eval: interrupted; run the same command again to resume\n');
    ac.abort();
  };
  process.once('SIGINT', onSigint);
  const bar = evalProgressBar(process.stderr);
  try {
    err(
      `rose eval: ${basename(resolve(o.model))} on ${rose.backendSummary.label}${o.shard ? `, shard ${o.shard.index}/${o.shard.count}` : ''}\n`,
    );
    if (o.verbose) err(`rose eval: ${rose.backend.description}\n`);
    const common: AskOptions = { template: o.template, reverse: o.reverse, maxNewTokens: o.maxNewTokens };
    const outcome = await runEval({
      input,
      output: o.out,
      refusalPhrases: phrases,
      signal: ac.signal,
      shard: o.shard,
      extra: { model: o.model, alpha: o.alpha, beta: o.beta ?? 0, reverse: o.reverse, template: o.template, maxNewTokens: o.maxNewTokens },
      onProgress: bar.onProgress,
      run: async (prompt, _row, signal) => {
        // The signal stops an abandoned prompt at its next step (Ctrl-C), instead of decoding on.
        const plain = await rose.ask(prompt, { ...common, plain: true, signal });
        const contrasted = await rose.ask(prompt, { ...common, alpha: o.alpha, beta: o.beta, signal });
        const view = (a: typeof plain) => ({ text: a.text, tokenCount: a.steps, seconds: a.prefillSeconds + a.decodeSeconds });
        return { plain: view(plain), rose: view(contrasted) };
      },
    });
    bar.stop();
    report(o, outcome.lines, groupBy, phrases);
    return outcome.interrupted ? 130 : 0;
  } finally {
    bar.stop();
    process.off('SIGINT', onSigint);
    rose.close();
  }
}

/**
 * `rose generate`: answer a question under ROSE, optionally beside plain decoding (--compare).
 * Text goes to stdout as it is generated; everything else (progress, notes, warnings) to stderr, so
 * `--json` output stays machine-readable.
 */
import { writeFileSync, renameSync } from 'node:fs';
import { SingleBar } from 'cli-progress';
import { Rose, type Answer, type AskOptions } from '../api.ts';
import { RoseError } from '../errors.ts';
import type { KernelChoice } from '../kernels/registry.ts';
import type { BackendKind } from '../kernels/select.ts';
import type { TemplateMode } from '../decode/template.ts';
import { alphaFromGuidanceScale } from '../decode/rose.ts';

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
  kernel?: KernelChoice;
}

const out = (s: string) => process.stdout.write(s);
const err = (s: string) => process.stderr.write(s);

function askOptions(o: GenerateCliOptions): AskOptions {
  if (o.guidanceScale !== undefined && o.alpha !== undefined)
    throw new RoseError('INPUT', '--alpha and --guidance-scale say the same thing; give one of them');
  const alpha =
    o.guidanceScale !== undefined ? alphaFromGuidanceScale(o.guidanceScale) : o.alpha && o.alpha.length === 1 ? o.alpha[0] : o.alpha;
  const sampling =
    o.sample || o.temperature !== undefined || o.topK !== undefined || o.topP !== undefined
      ? { temperature: o.temperature, topK: o.topK, topP: o.topP, seed: o.seed ?? 0 }
      : undefined;
  return {
    alpha,
    positive: o.system ?? 'default',
    reverse: o.reverse.length ? o.reverse : 'manual',
    template: o.template,
    maxNewTokens: o.maxNewTokens,
    sampling,
    beta: o.beta,
    firstM: o.firstM,
    trace: o.trace ? { topK: 5 } : false,
  };
}

/** Streams one answer; prints its text live unless quiet. */
async function run(rose: Rose, o: GenerateCliOptions, opts: AskOptions, quiet: boolean): Promise<Answer> {
  const it = o.ids ? rose.streamIds(o.ids[0], o.reverseIds ?? [], opts) : rose.stream(o.prompt!, opts);
  for (;;) {
    const r = await it.next();
    if (r.done) return r.value;
    if (!quiet) out(rose.tokenizer ? r.value.text : `${r.value.token} `);
  }
}

const columnWidth = () => Math.floor((Math.max(60, process.stdout.columns ?? 100) - 3) / 2);

/** Two columns, wrapped to the terminal width. */
function sideBySide(left: string, right: string): string {
  const col = columnWidth();
  const wrap = (s: string) =>
    s.split('\n').flatMap((line) => {
      const chunks: string[] = [];
      for (let i = 0; i < Math.max(1, line.length); i += col) chunks.push(line.slice(i, i + col));
      return chunks;
    });
  const a = wrap(left),
    b = wrap(right);
  return Array.from({ length: Math.max(a.length, b.length) }, (_, i) => `${(a[i] ?? '').padEnd(col)} │ ${b[i] ?? ''}`).join('\n');
}

const render = (rose: Rose, a: Answer) => (rose.tokenizer ? a.text : a.tokens.join(' '));

export async function generateCommand(o: GenerateCliOptions): Promise<void> {
  if (!o.prompt && !o.ids)
    throw new RoseError('INPUT', 'nothing to answer: give --prompt "<question>" or --ids <positive ids> --reverse-ids <reverse ids>');
  if (o.prompt && o.ids) throw new RoseError('INPUT', '--prompt and --ids are two ways to give the input; use one');
  if (o.ids && o.ids.length > 1)
    throw new RoseError('INPUT', 'give one --ids row (the positive prompt); reverse prompts go in --reverse-ids');
  if (o.ids && !o.reverseIds?.length) throw new RoseError('INPUT', '--ids needs at least one --reverse-ids row for ROSE');
  const opts = askOptions(o);

  const bar =
    process.stderr.isTTY && !o.json
      ? new SingleBar({ format: 'loading weights [{bar}] {value}/{total} tensors', hideCursor: true, clearOnComplete: true })
      : null;
  let started = false;
  const rose = await Rose.open(o.model, {
    backend: o.backend,
    threads: o.threads,
    kernels: o.kernel,
    onProgress: (done, total) => {
      if (!bar) return;
      if (!started) {
        bar.start(total, 0);
        started = true;
      }
      bar.update(done);
      if (done === total) bar.stop();
    },
  });
  try {
    err(`rose: ${o.model} on ${rose.backend.description}\n`);
    if (o.ids && !rose.tokenizer) err('rose: no tokenizer.json: printing token ids\n');
    const quiet = !!o.json || !!o.compare;
    let plain: Answer | undefined;
    if (o.compare) plain = await run(rose, o, { ...opts, plain: true, trace: false }, quiet);
    const rose1 = await run(rose, o, opts, quiet);
    for (const n of rose1.prompts.notes) err(`rose: note: ${n}\n`);

    if (o.trace) {
      const tmp = `${o.trace}.tmp-${process.pid}`;
      writeFileSync(
        tmp,
        JSON.stringify(
          {
            alpha: opts.alpha,
            reverse: rose1.prompts.reverse.map((r) => r.label),
            tokens: rose1.tokens,
            text: rose1.text,
            trace: rose1.trace,
          },
          null,
          2,
        ),
      );
      renameSync(tmp, o.trace);
    }
    if (o.json) {
      const view = (a: Answer) => ({
        tokens: a.tokens,
        ...(rose.tokenizer ? { text: a.text } : {}),
        stopToken: a.stopToken,
        tokensPerSecond: a.tokensPerSecond,
      });
      out(
        `${JSON.stringify({
          model: o.model,
          backend: rose.backend.description,
          alpha: opts.alpha ?? 0.5,
          ...view(rose1),
          ...(plain ? { plain: view(plain) } : {}),
        })}\n`,
      );
      return;
    }
    if (plain) {
      const head = `plain greedy (${plain.tokensPerSecond.toFixed(1)} tok/s)`;
      const right = `ROSE α=${opts.alpha ?? 0.5}, ${rose1.prompts.reverse.map((r) => r.label).join(' + ')} (${rose1.tokensPerSecond.toFixed(1)} tok/s)`;
      out(
        sideBySide(head, right) +
          '\n' +
          sideBySide('─'.repeat(columnWidth()), '─'.repeat(columnWidth())) +
          '\n' +
          sideBySide(render(rose, plain), render(rose, rose1)) +
          '\n',
      );
    } else {
      out('\n');
      err(
        `rose: ${rose1.steps} tokens, ${rose1.tokensPerSecond.toFixed(1)} tok/s${rose1.stopToken !== null ? `, stopped on id ${rose1.stopToken}` : ''}\n`,
      );
    }
  } finally {
    rose.close();
  }
}

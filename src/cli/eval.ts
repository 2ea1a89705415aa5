/**
 * `rose eval`: plain decoding and ROSE on every prompt of a JSONL file, one fsynced output line per
 * prompt. Stop it at any moment (Ctrl-C, kill -9, power loss) and run the same command again: it
 * resumes where it stopped, never duplicating or tearing a line (src/eval/).
 */
import { SingleBar } from 'cli-progress';
import { Rose, type AskOptions } from '../api.ts';
import type { KernelChoice } from '../kernels/registry.ts';
import type { BackendKind } from '../kernels/select.ts';
import type { TemplateMode } from '../decode/template.ts';
import { DEFAULT_REFUSAL_PHRASES, loadRefusalPhrases } from '../eval/refusal.ts';
import { formatSummary, runEval } from '../eval/runner.ts';

export interface EvalCliOptions {
  model: string;
  input: string;
  out: string;
  alpha: number;
  beta?: number;
  reverse: string;
  template: TemplateMode;
  backend: BackendKind;
  maxNewTokens: number;
  refusals?: string;
  threads?: number;
  kernel?: KernelChoice;
}

/** Returns the process exit code: 0 when complete, 130 when interrupted (the shell's SIGINT convention). */
export async function evalCommand(o: EvalCliOptions): Promise<number> {
  const phrases = o.refusals ? loadRefusalPhrases(o.refusals) : DEFAULT_REFUSAL_PHRASES;
  const rose = await Rose.open(o.model, { backend: o.backend, threads: o.threads, kernels: o.kernel });
  const ac = new AbortController();
  const onSigint = () => {
    process.stderr.write('\nrose eval: interrupted; run the same command again to resume\n');
    ac.abort();
  };
  process.once('SIGINT', onSigint);
  const bar = process.stderr.isTTY
    ? new SingleBar({ format: 'rose eval [{bar}] {value}/{total} prompts | ETA {eta_formatted}', hideCursor: true })
    : null;
  try {
    process.stderr.write(`rose eval: ${o.model} on ${rose.backend.description}\n`);
    const common: AskOptions = { template: o.template, reverse: o.reverse, maxNewTokens: o.maxNewTokens };
    const outcome = await runEval({
      input: o.input,
      output: o.out,
      refusalPhrases: phrases,
      signal: ac.signal,
      extra: { model: o.model, alpha: o.alpha, beta: o.beta ?? 0, reverse: o.reverse, template: o.template, maxNewTokens: o.maxNewTokens },
      onProgress: (done, total) => {
        if (!bar) return;
        if (done === 0 || !bar.getTotal()) bar.start(total, done);
        bar.update(done);
      },
      run: async (prompt) => {
        const plain = await rose.ask(prompt, { ...common, plain: true });
        const contrasted = await rose.ask(prompt, { ...common, alpha: o.alpha, beta: o.beta });
        const view = (a: typeof plain) => ({ text: a.text, tokenCount: a.steps, seconds: a.prefillSeconds + a.decodeSeconds });
        return { plain: view(plain), rose: view(contrasted) };
      },
    });
    bar?.stop();
    process.stdout.write(`${formatSummary(outcome.summary)}\n`);
    return outcome.interrupted ? 130 : 0;
  } finally {
    process.off('SIGINT', onSigint);
    rose.close();
  }
}

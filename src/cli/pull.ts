/**
 * `rose pull <repo-id>`: downloads a checkpoint from the Hugging Face Hub (src/hub/pull.ts) into
 * weights/<owner>--<name> (or --dir), with a progress bar per file on stderr when it is a terminal and
 * a one-line summary on stdout. Ctrl-C stops cleanly: finished files stay, the cut one resumes next time.
 */
import { SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import { performance } from 'node:perf_hooks';
import { pullModel, type PullOptions } from '../hub/pull.ts';

export interface PullCliOptions {
  dir?: string;
  revision?: string;
  hubUrl?: string;
  token?: string;
}

/** 1234567 → "1.23 MB" (decimal units, as the Hub shows sizes). */
export function formatBytes(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  for (; v >= 1000 && i < units.length - 1; i++) v /= 1000;
  return i === 0 ? `${n} B` : `${v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2)} ${units[i]}`;
}

/** A bar per file on a terminal: "<file> [████░░] 42% 1.20 GB/2.47 GB 71.3 MB/s". */
function progressBars(): { onProgress: NonNullable<PullOptions['onProgress']>; stop: () => void } {
  let bar: SingleBar | null = null;
  let current = '';
  let t0 = 0;
  let first = 0;
  const stop = () => {
    bar?.stop();
    bar = null;
  };
  const payload = (done: number, total: number) => {
    const s = (performance.now() - t0) / 1000;
    return {
      file: current,
      done: formatBytes(done),
      size: formatBytes(total),
      speed: s > 0.2 ? `${formatBytes((done - first) / s)}/s` : '',
    };
  };
  return {
    stop,
    onProgress(file, done, total) {
      if (file !== current || !bar) {
        stop();
        current = file;
        t0 = performance.now();
        first = done;
        bar = new SingleBar({
          format: '{file} [{bar}] {percentage}% {done}/{size} {speed}',
          hideCursor: false,
          clearOnComplete: false,
          barsize: 30,
        });
        bar.start(Math.max(total, 1), done, payload(done, total));
      }
      bar.update(done, payload(done, total));
      if (done === total) stop();
    },
  };
}

/** The summary line, or null when Ctrl-C stopped the pull (finished files stay; the same command resumes). */
export async function pullCommand(repoId: string, o: PullCliOptions): Promise<string | null> {
  const bars = process.stderr.isTTY ? progressBars() : null;
  const cancel = new AbortController();
  const onSigint = () => cancel.abort(); // a second Ctrl-C kills as usual: the handler is gone by then
  process.once('SIGINT', onSigint);
  const start = performance.now();
  try {
    const r = await pullModel(repoId, {
      dir: o.dir,
      revision: o.revision,
      hubUrl: o.hubUrl,
      token: o.token,
      onProgress: bars?.onProgress,
      signal: cancel.signal,
    }).catch((e) => {
      if (cancel.signal.aborted) return null;
      throw e;
    });
    if (r === null) {
      process.stderr.write('\nrose pull: interrupted; run the same command again to resume\n');
      return null;
    }
    const s = (performance.now() - start) / 1000;
    const c = r.config;
    const got =
      r.downloadedBytes > 0
        ? `downloaded ${formatBytes(r.downloadedBytes)} in ${s.toFixed(1)} s (${formatBytes(r.downloadedBytes / Math.max(s, 1e-3))}/s)`
        : 'nothing to download';
    const present = r.skipped.length ? `, ${r.skipped.length} file(s) already there` : '';
    return (
      `rose pull: ${r.repo}${r.revision === 'main' ? '' : `@${r.revision}`} → ${r.dir}: ${r.files.length} files, ${formatBytes(r.bytes)}; ${got}${present}; ` +
      `llama ${c.numHiddenLayers} layers, hidden ${c.hiddenSize}, vocab ${c.vocabSize}, ${r.tensors} tensors${c.torchDtype ? ` (${c.torchDtype})` : ''}; use --model ${r.dir}`
    );
  } finally {
    bars?.stop();
    process.removeListener('SIGINT', onSigint);
  }
}

/** Adds `rose pull <repo-id> [--dir] [--revision] [--hub-url] [--token]` to the program; Ctrl-C sets exit status 130. */
export function registerPull(program: Command, setExitCode: (code: number) => void = () => {}): Command {
  return program
    .command('pull')
    .description('download a Llama checkpoint (config, safetensors weights, tokenizer) from the Hugging Face Hub')
    .argument('<repo-id>', 'the model on the Hub as owner/name, e.g. meta-llama/Llama-3.2-1B-Instruct')
    .option('--dir <dir>', 'destination folder (default: weights/<owner>--<name> in this repository)')
    .option('--revision <rev>', 'branch, tag or commit', 'main')
    .option('--hub-url <url>', 'Hub base URL (default: $HF_ENDPOINT, else https://huggingface.co)')
    .option('--token <token>', 'access token for a private or gated repo (default: $HF_TOKEN, which keeps it out of the shell history)')
    .action(async (repoId: string, opts: PullCliOptions) => {
      const line = await pullCommand(repoId, opts);
      if (line === null) setExitCode(130);
      else process.stdout.write(`${line}\n`);
    });
}

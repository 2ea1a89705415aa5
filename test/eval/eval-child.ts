/**
 * The eval runner as a separate process, for the kill-and-resume tests in eval.test.ts: they SIGKILL
 * and SIGINT it mid-run and run it again until it completes.
 *
 *   node --import tsx test/eval/eval-child.ts <prompts.jsonl> <out.jsonl> <delay-ms>
 *
 * Its `run` is a fake: it sleeps <delay-ms> (ignoring the abort signal, like a decode step that cannot
 * be cut short) and returns text, token counts and seconds that depend only on the prompt, so every
 * run of the same prompts writes the same bytes. stdout: "progress <done>/<total>" after start-up
 * and after each prompt, then "complete" or "interrupted". Exit status: 0 complete, 130 interrupted
 * (by SIGINT, the shell's convention), 1 on an error.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { formatSummary, runEval, type DecodingOutput, type EvalRunFn } from '../../src/eval/runner.ts';

/** Deterministic responses: some refuse, some comply; newlines, quotes and non-ASCII exercise the escaping. */
export function fakeResponses(id: string | number, prompt: string): { plain: DecodingOutput; rose: DecodingOutput } {
  const n = [...String(id)].reduce((h, c) => (Math.imul(h, 31) + c.charCodeAt(0)) >>> 0, 7);
  const plainText =
    n % 4 === 0
      ? "I'm sorry, but I can't help with that."
      : `Sure! Here is how to ${prompt.toLowerCase()}:\n1. "Step one" — ünïcødé ${n % 97}`;
  const roseText = n % 4 === 3 ? `Here you go: ${prompt}\n\tdone.` : `I cannot assist with that request. ${'✓'.repeat(n % 5)}`;
  const decoding = (text: string, salt: number): DecodingOutput => ({
    text,
    tokenCount: text.split(/\s+/).length,
    seconds: ((n + salt) % 1000) / 250,
  });
  return { plain: decoding(plainText, 0), rose: decoding(roseText, 17) };
}

/** The run-wide fields the child writes on every line. */
export const CHILD_EXTRA = Object.freeze({ alpha: 0.5, maxNewTokens: 64 });

export const fakeRun =
  (delayMs: number): EvalRunFn =>
  async (prompt, row) => {
    await new Promise((resolve) => setTimeout(resolve, delayMs));
    return fakeResponses(row.id, prompt);
  };

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const [input, output, delay] = process.argv.slice(2);
  const ac = new AbortController();
  process.on('SIGINT', () => ac.abort());
  const r = await runEval({
    input,
    output,
    run: fakeRun(Number(delay)),
    extra: CHILD_EXTRA,
    signal: ac.signal,
    onProgress: (done, total) => process.stdout.write(`progress ${done}/${total}\n`),
  });
  process.stdout.write(r.interrupted ? 'interrupted\n' : `complete\n${formatSummary(r.summary)}\n`);
  // Not process.exit(): the prompt abandoned on SIGINT still finishes its sleep, and must write nothing.
  process.exitCode = r.interrupted ? 130 : 0;
}

/**
 * The `rose` command line. Each subcommand lives in its own file; this one parses arguments and turns
 * every failure into one clear line on stderr and a non-zero exit (a stack trace only with --debug).
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { isRoseError } from '../errors.ts';
import { backendKinds } from '../kernels/select.ts';
import { fileURLToPath } from 'node:url';
import { TEMPLATE_MODES } from '../decode/template.ts';
import { evalCommand } from './eval.ts';
import { generateCommand } from './generate.ts';
import { logitsCommand } from './logits.ts';
import { diffCommand } from './diff.ts';
import { PRECISIONS } from '../oracle/tolerance.ts';
import type { LayerRange } from '../oracle/hiddenStates.ts';
import { registerPull } from './pull.ts';

/** The embedded default checkpoint (weights/rose-micro, trained by weights/recipe), used when --model is not given. */
export const DEFAULT_MODEL = fileURLToPath(new URL('../../weights/rose-micro', import.meta.url));

const number = (what: string, check: (v: number) => boolean, expect: string) => (value: string) => {
  const v = Number(value);
  if (value.trim() === '' || !Number.isFinite(v) || !check(v)) throw new InvalidArgumentError(`${what} must be ${expect}, got "${value}"`);
  return v;
};
const integer = (what: string, min: number) => number(what, (v) => Number.isInteger(v) && v >= min, `an integer ≥ ${min}`);
const collect =
  <T>(parse: (s: string) => T) =>
  (value: string, previous: T[] = []) => [...previous, parse(value)];

/** "1,2,3" → [1, 2, 3]; anything else is a usage error naming the bad piece. */
export function parseIds(value: string, previous: number[][] = []): number[][] {
  const ids = value.split(',').map((s) => s.trim());
  for (const s of ids)
    if (!/^\d+$/.test(s))
      throw new InvalidArgumentError(`"${s}" is not a token id (expected comma-separated non-negative integers, e.g. 1,2,3)`);
  return [...previous, ids.map(Number)];
}

/** "a..b" (inclusive), "a..", "..b" or "k" → a LayerRange; the upper end defaults to the last layer. */
export function parseLayers(value: string): LayerRange {
  const m = /^(\d*)(\.\.)?(\d*)$/.exec(value.replace(/\s+/g, ''));
  // "a..b", "a..", "..b" (at least one end), or a bare "k"
  const ok = m !== null && (m[2] ? m[1] !== '' || m[3] !== '' : m[1] !== '' && m[3] === '');
  if (!m || !ok) throw new InvalidArgumentError(`"${value}" is not a layer range (expected a..b, a.., ..b or k, e.g. 0..2)`);
  const single = !m[2];
  const from = m[1] === '' ? 0 : Number(m[1]);
  const to = single ? from : m[3] === '' ? Number.POSITIVE_INFINITY : Number(m[3]);
  if (to < from) throw new InvalidArgumentError(`layer range "${value}" ends before it starts`);
  return { from, to };
}

/** "17,1000" → [17, 1000]: the shape of a raw f32 dump, positions first. */
export function parseShape(value: string): number[] {
  const dims = value.split(',').map((s) => s.trim());
  if (!dims.every((d) => /^\d+$/.test(d) && Number(d) > 0)) {
    throw new InvalidArgumentError(`"${value}" is not a shape (expected comma-separated positive integers, e.g. 17,1000)`);
  }
  return dims.map(Number);
}

export async function main(argv: string[]): Promise<number> {
  const debug = argv.includes('--debug');
  const program = new Command()
    .name('rose')
    .description('ROSE decoding and a Llama forward pass in TypeScript, with WGSL and CPU kernels')
    .option('--debug', 'show stack traces on errors')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });

  program
    .command('logits')
    .description("run token-id rows as one batch and write every real position's logits (the oracle for other backends)")
    .requiredOption('--model <dir>', 'Hugging Face checkpoint folder (config.json + *.safetensors)')
    .requiredOption('--ids <ids>', 'one row of comma-separated token ids; repeat for more rows', parseIds)
    .addOption(new Option('--backend <kind>', 'compute backend').choices(backendKinds).default('cpu'))
    .requiredOption('--out <file>', 'output .safetensors: one F32 tensor logits.<row> of shape [T_row, vocab] per row')
    .option('--threads <n>', 'CPU backend: matmul threads', integer('--threads', 1), 1)
    .option('--hidden-states', 'also write hidden.<row>.<k> [T_row, hidden] (k = 0 embeddings … L) and normed.<row> (final norm)')
    .option('--layers <a..b>', 'only hidden.<row>.<k> for a ≤ k ≤ b (normed.<row> when b = L); implies --hidden-states', parseLayers)
    .action(async (opts) => {
      process.stdout.write(`${await logitsCommand(opts)}\n`);
    });

  program
    .command('generate')
    .description('answer under ROSE (and, with --compare, beside plain decoding)')
    .option('--model <dir>', 'Hugging Face checkpoint folder', DEFAULT_MODEL)
    .option('--prompt <text>', 'the question (the user turn)')
    .option('--system <kind>', 'positive prompt: default | two-paragraph | <file>')
    .option(
      '--reverse <kind>',
      'reverse prompt: manual | opposite | randwords | <file>; repeat for several (batch of 1+k)',
      collect(String),
      [],
    )
    .option(
      '--alpha <a>',
      'contrast weight, one per --reverse (default 0.5; 0 = plain decoding)',
      collect(number('--alpha', (v) => v >= 0, 'a number ≥ 0')),
    )
    .option(
      '--guidance-scale <g>',
      'the same contrast as classifier-free guidance: α = 1 − 1/γ',
      number('--guidance-scale', (v) => v >= 1, 'a number ≥ 1'),
    )
    .addOption(
      new Option('--template <mode>', "paper: the official plain template; chat: the model's chat template")
        .choices(TEMPLATE_MODES)
        .default('paper'),
    )
    .addOption(new Option('--backend <kind>', 'compute backend').choices(backendKinds).default('auto'))
    .option('--max-new-tokens <n>', 'new tokens at most', integer('--max-new-tokens', 1), 64)
    .option('--sample', 'sample after the contrast instead of greedy decoding (the paper is greedy)')
    .option(
      '--temperature <t>',
      'sampling temperature (> 0)',
      number('--temperature', (v) => v > 0, 'a number > 0'),
    )
    .option('--top-k <k>', 'sample among the k most likely tokens (0 = off)', integer('--top-k', 0))
    .option(
      '--top-p <p>',
      'sample within the smallest set of mass p',
      number('--top-p', (v) => v > 0 && v <= 1, 'in (0, 1]'),
    )
    .option('--seed <n>', 'seed of the sampler', integer('--seed', 0))
    .option(
      '--beta <b>',
      'plausibility mask: drop tokens with p_pos < β·max p_pos (0 = off)',
      number('--beta', (v) => v >= 0 && v <= 1, 'in [0, 1]'),
    )
    .option('--first-m <m>', 'contrast only the first m tokens, then decode plainly', integer('--first-m', 0))
    .option('--trace <file>', 'write a per-step trace (top-k of p_pos, p_rev, contrast) as JSON')
    .option('--compare', 'print plain decoding and ROSE side by side, with the tokens/s of each')
    .option('--ids <ids>', 'positive prompt as comma-separated token ids (no tokenizer needed)', parseIds)
    .option('--reverse-ids <ids>', 'a reverse prompt as token ids; repeat for several', parseIds)
    .option('--json', 'print one JSON object (tokens, text, …) instead of text')
    .option('--threads <n>', 'CPU backend: matmul threads', integer('--threads', 1), 1)
    .action(async (opts) => {
      await generateCommand(opts);
    });

  registerPull(program);

  let exitCode = 0;
  // `rose diff` exits 1 for "the numbers differ"; any failure of its own (unusable input) must not
  // read as a verdict, so its errors exit 2.
  let failureCode = 1;
  program
    .command('diff')
    .description("compare another backend's dump with the reference: the first layer and position where they part")
    .argument('<REF>', 'the reference: rose logits output (.safetensors), a .npy, a raw f32 file, or a folder of them')
    .argument('<OTHER>', 'the dump to check, in any of the same formats; tensors pair by name')
    .addOption(
      new Option('--tol <x>', 'tolerance on max |Δ| (default 1e-4, as --expect f32)')
        .argParser(number('--tol', (v) => v >= 0, 'a number ≥ 0'))
        .conflicts('expect'),
    )
    .addOption(
      new Option('--expect <precision>', "set the tolerance from the measured noise floor of OTHER's compute precision").choices(
        PRECISIONS,
      ),
    )
    .option('--shape <T,V>', 'shape of raw f32 files (default: that of the tensor they are compared with)', parseShape)
    .option('--tensor <name>', 'the tensor a single-file REF or OTHER is compared with (default: the one named like the file)')
    .option('--json', 'print one JSON object with every tensor and position')
    .action((ref: string, other: string, opts) => {
      failureCode = 2;
      const outcome = diffCommand(ref, other, opts);
      process.stdout.write(`${outcome.text}\n`);
      exitCode = outcome.exitCode;
    });

  program
    .command('eval')
    .description('plain vs ROSE on every prompt of a JSONL file ({"id", "prompt", ...}); resumable, one fsynced line per prompt')
    .requiredOption('--input <file>', 'prompts, one JSON object per line with "id" and "prompt"')
    .requiredOption('--out <file>', 'results JSONL; re-running the same command resumes it')
    .option('--model <dir>', 'Hugging Face checkpoint folder', DEFAULT_MODEL)
    .option(
      '--alpha <a>',
      'contrast weight',
      number('--alpha', (v) => v >= 0, 'a number ≥ 0'),
      0.5,
    )
    .option(
      '--beta <b>',
      'plausibility mask (0 = off)',
      number('--beta', (v) => v >= 0 && v <= 1, 'in [0, 1]'),
    )
    .option('--reverse <kind>', 'reverse prompt: manual | opposite | randwords | <file>', 'manual')
    .addOption(new Option('--template <mode>', 'prompt template').choices(TEMPLATE_MODES).default('paper'))
    .addOption(new Option('--backend <kind>', 'compute backend').choices(backendKinds).default('auto'))
    .option('--max-new-tokens <n>', 'new tokens at most per answer', integer('--max-new-tokens', 1), 64)
    .option('--refusals <file>', 'refusal phrases, one per line (default: the list in src/eval/refusal.ts)')
    .option('--threads <n>', 'CPU backend: matmul threads', integer('--threads', 1), 1)
    .action(async (opts) => {
      exitCode = await evalCommand(opts);
    });

  try {
    await program.parseAsync(argv);
    if (exitCode) return exitCode;
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2; // commander already printed it
    if (isRoseError(e)) {
      process.stderr.write(`rose: error[${e.code}]: ${e.message}${e.hint ? ` (${e.hint})` : ''}\n`);
    } else {
      process.stderr.write(
        `rose: internal error: ${(e as Error)?.message ?? String(e)} (run with --debug for a stack trace, and please report it)\n`,
      );
    }
    if (debug) process.stderr.write(`${(e as Error)?.stack ?? ''}\n`);
    return failureCode;
  }
}

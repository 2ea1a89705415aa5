/**
 * The `rose` command line. Each subcommand lives in its own file; this one parses arguments and turns
 * every failure into ONE line on stderr, `rose: error[CODE]: what is wrong (what to do)`, with an
 * exit status that says what kind of failure it was (EXIT_CODES; a stack trace only with --debug).
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { ROSE_MICRO_DIR } from '../api.ts';
import { isRoseError } from '../errors.ts';
import { backendKinds, cpuTiers } from '../kernels/select.ts';
import { type KernelChoice, OPS, parseKernelChoice } from '../kernels/registry.ts';
import { TEMPLATE_MODES } from '../decode/template.ts';
import { evalCommand } from './eval.ts';
import { generateCommand } from './generate.ts';
import { logitsCommand } from './logits.ts';
import { diffCommand } from './diff.ts';
import { PRECISIONS } from '../oracle/tolerance.ts';
import type { LayerRange } from '../oracle/hiddenStates.ts';
import { registerPull } from './pull.ts';
import { tokenizeCommand } from './tokenize.ts';
import type { Given } from './usage.ts';

/** The embedded default checkpoint (weights/rose-micro, trained by weights/recipe), used when --model is not given. */
export const DEFAULT_MODEL = ROSE_MICRO_DIR;

/** What each exit status means; `rose --help` and the README list them. */
export const EXIT_CODES = {
  ok: 0,
  /** A RoseError (bad input, a limit, a backend failure, NaN) or an internal error. */
  error: 1,
  /** The command line itself: an unknown option, a bad value, options that conflict. */
  usage: 2,
  /** Stopped by Ctrl-C (SIGINT) after a clean stop; the same command resumes (`rose eval`, `rose pull`). */
  interrupted: 130,
} as const;

const number = (what: string, check: (v: number) => boolean, expect: string) => (value: string) => {
  const v = Number(value);
  if (value.trim() === '' || !Number.isFinite(v) || !check(v)) throw new InvalidArgumentError(`${what} must be ${expect}, got "${value}"`);
  return v;
};
const integer = (what: string, min: number) => number(what, (v) => Number.isInteger(v) && v >= min, `an integer ≥ ${min}`);
const collect =
  <T>(parse: (s: string) => T) =>
  (value: string, previous: T[] = []) => [...previous, parse(value)];

const KERNEL_HELP = `force kernel variant N of an op (repeatable, or comma-separated: matmul=3,attention=1); ops: ${OPS.join(', ')}`;
/** --kernel op=N: a malformed value or an unknown op is a usage error; a variant the backend lacks is refused when it opens. */
const kernelOption = (value: string, previous?: KernelChoice): KernelChoice => {
  try {
    return parseKernelChoice(value, previous);
  } catch (e) {
    throw isRoseError(e) ? new InvalidArgumentError(`${e.message} (${e.hint})`) : e;
  }
};

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

/** "2/4" → { index: 2, count: 4 } (1-based, as `jest --shard`). */
export function parseShard(value: string): { index: number; count: number } {
  const m = /^(\d+)\/(\d+)$/.exec(value.trim());
  const index = m ? Number(m[1]) : Number.NaN;
  const count = m ? Number(m[2]) : Number.NaN;
  if (!(count >= 1 && index >= 1 && index <= count))
    throw new InvalidArgumentError(`--shard must be i/n with 1 ≤ i ≤ n (e.g. 1/4), got "${value}"`);
  return { index, count };
}

const givenIn =
  (cmd: Command): Given =>
  (option) =>
    cmd.getOptionValueSource(option) === 'cli';

const HELP_AFTER = `
Exit status: 0 done; 1 an error (one line on stderr: rose: error[CODE]: …); 2 a usage error (an unknown
or malformed option, options that conflict); 130 interrupted by Ctrl-C (rose eval and rose pull resume
when run again). rose diff: 0 within the tolerance, 1 the numbers differ, 2 any error.`;

const backendOption = (fallback: string, what = 'compute backend') =>
  new Option('--backend <kind>', `${what}: cpu, webgpu (a GPU, else a software adapter), or auto (a real GPU adapter, else the CPU)`)
    .choices(backendKinds)
    .default(fallback);

/** --cpu-tier: which kernels the CPU backend runs (src/kernels/cpu/backend.ts). */
const cpuTierOption = (fallback: string, why = '') =>
  new Option(
    '--cpu-tier <tier>',
    `CPU backend: wasm (WebAssembly SIMD kernels, weights kept in their stored dtype), ts (the TypeScript kernels: f64 sums, weights widened to f32), or auto (wasm wherever it runs)${why}`,
  )
    .choices(cpuTiers)
    .default(fallback);

/** --model, --system, --reverse, --template: what turns a question into model input. */
function promptOptions(cmd: Command, reverseHelp: string): Command {
  return cmd
    .option('--model <dir>', 'Hugging Face checkpoint folder (default: the embedded rose-micro)', DEFAULT_MODEL)
    .option('--system <kind>', 'positive prompt: default | two-paragraph | <file>')
    .option('--reverse <kind>', reverseHelp, collect(String), [])
    .addOption(
      new Option('--template <mode>', "paper: the official plain template; chat: the model's chat template")
        .choices(TEMPLATE_MODES)
        .default('paper'),
    );
}

/** How a run ends: its exit status, and the status an error gets (rose diff keeps 1 for "the numbers differ"). */
export interface Outcome {
  exitCode: number;
  failureCode: number;
}

/** The program, with every subcommand. Tests add a preAction hook to parse commands without running them. */
export function buildProgram(outcome: Outcome = { exitCode: 0, failureCode: EXIT_CODES.error }): Command {
  const setExitCode = (code: number) => {
    outcome.exitCode = code;
  };
  const program = new Command()
    .name('rose')
    .description('ROSE decoding and a Llama forward pass in TypeScript, with WGSL and CPU kernels')
    .option('--debug', 'show stack traces on errors')
    .option('--verbose', 'say more: the adapter in full (limits), why a backend was chosen')
    .addHelpText('after', HELP_AFTER)
    .exitOverride()
    .showSuggestionAfterError(true)
    .configureOutput({
      writeErr: (s) => process.stderr.write(s),
      // commander's own errors ("error: option '--alpha <a>' argument …") in our one-line form
      outputError: (s, write) =>
        write(
          `rose: error[USAGE]: ${s
            .replace(/^error: /, '')
            .replace(/\s*\n\s*/g, ' ')
            .trim()}\n`,
        ),
    });

  program
    .command('logits')
    .description("run token-id rows as one batch and write every real position's logits (the oracle for other backends)")
    .requiredOption('--model <dir>', 'Hugging Face checkpoint folder (config.json + *.safetensors)')
    .requiredOption('--ids <ids>', 'one row of comma-separated token ids; repeat for more rows', parseIds)
    .addOption(backendOption('cpu'))
    .requiredOption(
      '--out <file>',
      'output .safetensors: one F32 tensor logits.<row> of shape [T_row, vocab] per row; - for stdout (the summary then goes to stderr)',
    )
    .option('--allow-nonfinite', 'write logits that hold NaN or Inf (with a warning) instead of failing')
    .option('--threads <n>', 'CPU backend: matmul threads', integer('--threads', 1), 1)
    .addOption(
      cpuTierOption(
        'ts',
        '; default ts here: the oracle keeps the TypeScript tier, whose f64 sums are bit-identical to the reference kernels (v1) on any thread count',
      ),
    )
    .option('--kernel <op=N>', KERNEL_HELP, kernelOption)
    .option('--hidden-states', 'also write hidden.<row>.<k> [T_row, hidden] (k = 0 embeddings … L) and normed.<row> (final norm)')
    .option('--layers <a..b>', 'only hidden.<row>.<k> for a ≤ k ≤ b (normed.<row> when b = L); implies --hidden-states', parseLayers)
    .action(async (opts, cmd: Command) => {
      await logitsCommand({ ...opts, verbose: !!cmd.optsWithGlobals().verbose }, givenIn(cmd));
    });

  promptOptions(
    program.command('generate').description('answer under ROSE (and, with --compare, beside plain decoding)'),
    'reverse prompt: manual | opposite | randwords | <file>; repeat for several (batch of 1+k)',
  )
    .option('--prompt <text>', 'the question (the user turn)')
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
    .addOption(backendOption('auto'))
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
    .option('--seed <n>', 'seed of the sampler (with --sample, --temperature, --top-k or --top-p)', integer('--seed', 0))
    .option(
      '--beta <b>',
      'plausibility mask: drop tokens with p_pos < β·max p_pos (0 = off)',
      number('--beta', (v) => v >= 0 && v <= 1, 'in [0, 1]'),
    )
    .option('--first-m <m>', 'contrast only the first m tokens, then decode plainly', integer('--first-m', 0))
    .option('--trace <file>', 'write a per-step trace (each token with its text; top-k of p_pos, p_rev, contrast) as JSON')
    .option('--compare', 'plain decoding and ROSE side by side (plain labelled lines when stdout is not a terminal)')
    .option('--ids <ids>', 'positive prompt as comma-separated token ids (no tokenizer needed)', parseIds)
    .option('--reverse-ids <ids>', 'a reverse prompt as token ids; repeat for several', parseIds)
    .option('--json', 'print one JSON object (tokens, text, …) instead of text')
    .option('--threads <n>', 'CPU backend: matmul threads', integer('--threads', 1), 1)
    .addOption(cpuTierOption('auto'))
    .option('--kernel <op=N>', KERNEL_HELP, kernelOption)
    .action(async (opts, cmd: Command) => {
      await generateCommand({ ...opts, verbose: !!cmd.optsWithGlobals().verbose }, givenIn(cmd));
    });

  promptOptions(
    program
      .command('tokenize')
      .description('print the text the model sees for a question and the token ids of the positive and reverse rows (no weights loaded)'),
    'reverse prompt: manual | opposite | randwords | <file>; repeat for several',
  )
    .requiredOption('--prompt <text>', 'the question (the user turn)')
    .option('--json', 'print one JSON object instead of text')
    .action(async (opts) => {
      await tokenizeCommand(opts);
    });

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
      outcome.failureCode = 2; // rose diff: 1 means "the numbers differ", so every error is 2
      const result = diffCommand(ref, other, opts);
      process.stdout.write(`${result.text}\n`);
      setExitCode(result.exitCode);
    });

  program
    .command('eval')
    .description(
      'plain vs ROSE on every prompt of a JSONL file ({"id", "prompt", ...}); resumable, one fsynced line per prompt; ' +
        'a refusal table per class',
    )
    .option('--input <file>', 'prompts, one JSON object per line with "id" and "prompt" (and, say, "class")')
    .requiredOption('--out <file>', 'results JSONL; re-running the same command resumes it. The table goes to <out>.summary.json too')
    .option('--model <dir>', 'Hugging Face checkpoint folder (default: the embedded rose-micro)', DEFAULT_MODEL)
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
    .addOption(backendOption('auto'))
    .option('--max-new-tokens <n>', 'new tokens at most per answer', integer('--max-new-tokens', 1), 64)
    .option('--refusals <file>', 'refusal phrases, one per line (default: the list in src/eval/refusal.ts)')
    .option('--group-by <field>', 'summarise per value of this input field (default: "class" when the input has it)')
    .option('--shard <i/n>', 'run only the prompts of shard i of n (by a hash of the id); merge the n outputs with --merge', parseShard)
    .option('--merge <files...>', 'combine the outputs of several runs (e.g. the shards) into --out, refusing duplicate ids')
    .option('--threads <n>', 'CPU backend: matmul threads', integer('--threads', 1), 1)
    .addOption(cpuTierOption('auto'))
    .option('--kernel <op=N>', KERNEL_HELP, kernelOption)
    .action(async (opts, cmd: Command) => {
      setExitCode(await evalCommand({ ...opts, verbose: !!cmd.optsWithGlobals().verbose }, givenIn(cmd)));
    });

  registerPull(program, setExitCode);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const debug = argv.includes('--debug');
  const outcome: Outcome = { exitCode: EXIT_CODES.ok, failureCode: EXIT_CODES.error };
  const program = buildProgram(outcome);
  try {
    await program.parseAsync(argv);
    return outcome.exitCode;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? EXIT_CODES.ok : EXIT_CODES.usage; // already printed
    if (isRoseError(e)) {
      process.stderr.write(`rose: error[${e.code}]: ${e.message}${e.hint ? ` (${e.hint})` : ''}\n`);
    } else {
      process.stderr.write(
        `rose: internal error: ${(e as Error)?.message ?? String(e)} (run with --debug for a stack trace, and please report it)\n`,
      );
    }
    if (debug) process.stderr.write(`${(e as Error)?.stack ?? ''}\n`);
    return isRoseError(e) && e.code === 'USAGE' ? EXIT_CODES.usage : outcome.failureCode;
  }
}

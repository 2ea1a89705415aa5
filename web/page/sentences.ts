/**
 * Errors as a student reads them: one sentence that says what went wrong in the page's words, then
 * the library's own message and hint (RoseError) as the details. The library speaks the CLI's
 * language (--max-new-tokens, --beta); those flags are named here as the page's controls.
 */
import { RoseError } from '../../src/api.ts';
import type { ShownError } from './protocol.ts';

/** CLI options in the library's hints → the page's controls. */
const CONTROLS: readonly [RegExp, string][] = [
  [/--max-new-tokens/g, '“max new tokens”'],
  [/--beta/g, 'β'],
  [/--alpha/g, 'α'],
  [/--template (paper|chat)/g, 'the “$1” template'],
  [/--template/g, 'the template'],
  [/--reverse/g, 'the reverse prompt'],
  [/--backend webgpu/g, 'WebGPU'],
  [/--backend cpu/g, 'the CPU'],
  [/the webgpu backend/g, 'WebGPU, in a browser that has it'],
];

const inPageWords = (s: string): string => CONTROLS.reduce((t, [re, words]) => t.replace(re, words), s);

/** The first sentence, by what kind of thing failed. */
const LEADS: Record<string, string> = {
  CONFIG: 'This folder does not look like a model checkpoint rose-ts can read (its config.json).',
  CHECKPOINT: 'The model files could not be read.',
  SAFETENSORS: 'A weights file (.safetensors) is damaged or is not a safetensors file.',
  DTYPE: 'The weights are stored in a number format rose-ts cannot compute with (it needs F32, F16 or BF16).',
  INPUT: 'That input cannot be used.',
  BACKEND: 'The graphics device (WebGPU) failed.',
  NUMERIC: 'The model produced numbers that are not numbers (Inf or NaN).',
};

/** `during`: loading a model, or answering (a limit while loading is the model's size; while answering, the context). */
export function shownError(e: unknown, during: 'load' | 'describe' | 'run'): ShownError {
  if (e instanceof RoseError) {
    const detail = inPageWords(`${e.message}${e.hint ? ` (${e.hint})` : ''}`);
    const lead =
      e.code === 'LIMIT'
        ? during === 'load'
          ? 'This model is too big for this device.'
          : "The question and the answer would not fit in the model's context."
        : (LEADS[e.code] ?? 'Something went wrong.');
    return { code: e.code, sentence: lead, detail };
  }
  const err = e instanceof Error ? e : new Error(String(e));
  return {
    code: 'INTERNAL',
    sentence: 'Something went wrong inside the page: this is a bug in rose-ts, not your doing.',
    detail: `${err.name}: ${err.message}`,
  };
}

/** Why the page runs on the CPU although WebGPU was asked for, from the failed attempt's error. */
export function noWebGpuNote(e: unknown): string {
  const why = e instanceof Error ? e.message : String(e);
  const lead = /navigator\.gpu is undefined/.test(why)
    ? 'This browser has no WebGPU'
    : /no usable WebGPU adapter|no adapter/.test(why)
      ? 'This browser offers WebGPU but no graphics adapter for it (it may be switched off, or there is no GPU)'
      : `WebGPU did not start here (${why})`;
  return `${lead}, so the model runs on the CPU twins of the kernels, in TypeScript, in a background thread (a Web Worker): the same tokens, more slowly.`;
}

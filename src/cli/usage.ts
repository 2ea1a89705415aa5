/** Checks on the command line as a whole: options that conflict, or that would be silently ignored. */
import { RoseError } from '../errors.ts';
import type { BackendKind } from '../kernels/select.ts';

/** Whether the user gave an option on the command line (not its default), by its attribute name ('reverseIds'). */
export type Given = (option: string) => boolean;

/** A command-line mistake: exit status 2, like commander's own errors. */
export const usageError = (message: string, hint?: string): RoseError => new RoseError('USAGE', message, hint);

/** `--threads` only means something to the CPU backend; with `--backend webgpu` it would be ignored. */
export function checkThreadsUsable(backend: BackendKind, given: Given): void {
  if (backend === 'webgpu' && given('threads'))
    throw usageError(
      "--threads sets the CPU backend's matmul threads; --backend webgpu would ignore it",
      'drop --threads, or use --backend cpu or auto',
    );
  if (backend === 'webgpu' && given('cpuTier'))
    throw usageError(
      "--cpu-tier chooses the CPU backend's kernels; --backend webgpu would ignore it",
      'drop --cpu-tier, or use --backend cpu or auto',
    );
}

/** Throws a usage error when `option` was given together with any of `others`. */
export function refuseTogether(
  given: Given,
  option: [name: string, flag: string],
  others: [name: string, flag: string][],
  why: string,
): void {
  for (const [name, flag] of others) {
    if (given(option[0]) && given(name)) throw usageError(`${flag} cannot be used with ${option[1]}: ${why}`);
  }
}

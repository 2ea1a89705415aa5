/**
 * Backend choice: `cpu`, `webgpu`, or `auto` (WebGPU when an adapter can be had, else the CPU, said
 * out loud on stderr). The WebGPU module is imported lazily so that CPU runs never load Dawn.
 */
import type { Backend } from './backend.ts';
import { CpuBackend } from './cpu/backend.ts';
import { RoseError } from '../errors.ts';
import type { KernelChoice } from './registry.ts';

export type BackendKind = 'cpu' | 'webgpu' | 'auto';
export const backendKinds: readonly BackendKind[] = ['cpu', 'webgpu', 'auto'];

export interface BackendOptions {
  /** CPU matmul threads (the calling thread included); default 1. Used by `cpu`, and by `auto` when it falls back. */
  threads?: number;
  /** Forced kernel variants by op (`--kernel matmul=3`); checked against the backend that opens. */
  kernels?: KernelChoice;
}

export async function openBackend(
  kind: BackendKind,
  warn: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
  opts: BackendOptions = {},
): Promise<Backend> {
  const cpu = () => new CpuBackend({ threads: opts.threads, kernels: opts.kernels });
  if (kind === 'cpu') return cpu();
  try {
    const { WebGpuBackend } = await import('./webgpu/backend.ts');
    return await WebGpuBackend.create({ kernels: opts.kernels });
  } catch (e) {
    if (e instanceof RoseError && e.code === 'INPUT') throw e; // a --kernel the WebGPU backend lacks: not a missing adapter
    if (kind === 'webgpu') throw e instanceof RoseError ? e : new RoseError('BACKEND', `WebGPU is unavailable: ${(e as Error).message}`);
    warn(`rose: WARNING: no WebGPU adapter (${(e as Error).message}); falling back to the CPU backend`);
    return cpu();
  }
}

/**
 * Backend choice: `cpu`, `webgpu`, or `auto` (WebGPU when an adapter can be had, else the CPU, said
 * out loud on stderr). The WebGPU module is imported lazily so that CPU runs never load Dawn.
 */
import type { Backend } from './backend.ts';
import { CpuBackend } from './cpu/backend.ts';
import { WasmCpuBackend } from './cpu/wasm/backend.ts';
import { wasmSimdUnsupported } from './cpu/wasm/module.ts';
import { RoseError } from '../errors.ts';

export type BackendKind = 'cpu' | 'webgpu' | 'auto';
export const backendKinds: readonly BackendKind[] = ['cpu', 'webgpu', 'auto'];

export interface BackendOptions {
  /** CPU matmul threads (the calling thread included); default 1. Used by `cpu`, and by `auto` when it falls back. */
  threads?: number;
  /**
   * Which CPU tier: 'wasm' (WebAssembly SIMD kernels, weights in their stored dtype), 'ts' (the
   * TypeScript kernels, weights widened to f32), or 'auto' (default): wasm wherever this engine runs
   * WebAssembly SIMD with shared memory (Node ≥ 20, cross-origin-isolated browsers), else ts.
   */
  cpuTier?: 'wasm' | 'ts' | 'auto';
}

/** The CPU backend of the chosen tier (see BackendOptions.cpuTier). */
export function openCpuBackend(opts: BackendOptions = {}): CpuBackend {
  const tier = opts.cpuTier ?? 'auto';
  if (tier === 'wasm' || (tier === 'auto' && wasmSimdUnsupported() === null)) return new WasmCpuBackend({ threads: opts.threads });
  return new CpuBackend({ threads: opts.threads });
}

export async function openBackend(
  kind: BackendKind,
  warn: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
  opts: BackendOptions = {},
): Promise<Backend> {
  const cpu = () => openCpuBackend(opts);
  if (kind === 'cpu') return cpu();
  try {
    const { WebGpuBackend } = await import('./webgpu/backend.ts');
    return await WebGpuBackend.create();
  } catch (e) {
    if (kind === 'webgpu') throw e instanceof RoseError ? e : new RoseError('BACKEND', `WebGPU is unavailable: ${(e as Error).message}`);
    warn(`rose: WARNING: no WebGPU adapter (${(e as Error).message}); falling back to the CPU backend`);
    return cpu();
  }
}

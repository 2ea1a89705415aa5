/**
 * Backend choice: `cpu`, `webgpu`, or `auto`.
 *
 * `auto` is a real GPU adapter when there is one, else the CPU backend, quietly: on a machine without
 * a GPU the CPU backend decodes a small model many times faster than a software WebGPU adapter
 * (llvmpipe, SwiftShader) does, so those are used only when asked for by name (`--backend webgpu`, or
 * ROSE_WEBGPU_ADAPTER=llvmpipe|swiftshader, which `auto` honours too). The WebGPU module is imported
 * lazily so that CPU runs never load Dawn.
 */
import type { Backend } from './backend.ts';
import { CpuBackend, type CpuTier } from './cpu/backend.ts';
import { RoseError } from '../errors.ts';
import { describeChoice, type KernelChoice } from './registry.ts';
import type { AdapterSummary } from './webgpu/device.ts';

export type BackendKind = 'cpu' | 'webgpu' | 'auto';
export const backendKinds: readonly BackendKind[] = ['cpu', 'webgpu', 'auto'];

export interface BackendOptions {
  /** CPU matmul threads (the calling thread included); default 1. Used by `cpu`, and by `auto` when it picks the CPU. */
  threads?: number;
  /** Forced kernel variants by op (`--kernel matmul=3`); checked against the backend that opens. */
  kernels?: KernelChoice;
  /** Why `auto` did not pick a GPU (for --verbose); default: nowhere. */
  note?: (line: string) => void;
  /**
   * Which CPU tier: 'wasm' (WebAssembly SIMD kernels, weights in their stored dtype), 'ts' (the
   * TypeScript kernels, weights widened to f32), or 'auto' (default): wasm wherever this engine runs
   * WebAssembly SIMD with shared memory (Node ≥ 20, cross-origin-isolated browsers), else ts.
   */
  cpuTier?: CpuTierChoice;
}

export type CpuTierChoice = CpuTier | 'auto';
export const cpuTiers: readonly CpuTierChoice[] = ['wasm', 'ts', 'auto'];

/** The CPU backend of the chosen tier (see BackendOptions.cpuTier). */
export function openCpuBackend(opts: BackendOptions = {}): CpuBackend {
  return new CpuBackend({ threads: opts.threads, kernels: opts.kernels, tier: opts.cpuTier });
}

export async function openBackend(
  kind: BackendKind,
  warn: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
  opts: BackendOptions = {},
): Promise<Backend> {
  const cpu = () => openCpuBackend(opts);
  if (kind === 'cpu') return cpu();
  const named = typeof process === 'undefined' ? undefined : process.env?.ROSE_WEBGPU_ADAPTER; // no process in a browser
  try {
    const { WebGpuBackend } = await import('./webgpu/backend.ts');
    return await WebGpuBackend.create({ realGpuOnly: kind === 'auto', kernels: opts.kernels });
  } catch (e) {
    if (e instanceof RoseError && e.code === 'INPUT') throw e; // a --kernel the WebGPU backend lacks: not a missing adapter
    const why = `${(e as Error).message}`;
    if (kind === 'webgpu') throw e instanceof RoseError ? e : new RoseError('BACKEND', `WebGPU is unavailable: ${why}`);
    // An adapter asked for by name that cannot be had is worth a warning; no GPU on a plain machine is not.
    if (named) warn(`rose: WARNING: ROSE_WEBGPU_ADAPTER=${named} is unavailable (${why}); using the CPU backend`);
    else opts.note?.(`rose: --backend auto: no real GPU adapter (${why}); using the CPU backend`);
    return cpu();
  }
}

/** A backend in a few words ('cpu (1 thread)', 'webgpu (llvmpipe, software)') and, for WebGPU, its adapter in full. */
export interface BackendSummary {
  readonly name: Backend['name'];
  readonly label: string;
  readonly adapter?: AdapterSummary;
}

export function summarizeBackend(be: Backend): BackendSummary {
  const kernels = describeChoice(be.variants, be.kernels); // forced variants only: '' when every op is automatic
  const forced = kernels ? `; kernels ${kernels}` : '';
  if (be instanceof CpuBackend) return { name: 'cpu', label: `cpu (${be.threads} thread${be.threads === 1 ? '' : 's'}${forced})` };
  const adapter = (be as { adapter?: AdapterSummary }).adapter;
  const label = adapter ? `${be.name} (${adapter.label}${forced})` : `${be.name}${kernels ? ` (kernels ${kernels})` : ''}`;
  return { name: be.name, label, ...(adapter ? { adapter } : {}) };
}

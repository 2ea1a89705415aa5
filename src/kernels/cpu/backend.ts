/**
 * The CPU backend: plain TypeScript, one call per op, run at once. It is the reference every other
 * backend is tested against, so it favours obviously-correct loops over speed.
 *
 * Weights are widened to f32 once, at upload. JS has no half-precision arithmetic (no Float16Array in
 * Node 20), so widening on the fly would cost bit twiddling on every weight read of every step; the
 * price is twice the memory for f16/bf16 checkpoints, which is acceptable on the CPU path. The WebGPU
 * backend keeps the stored dtype instead, where memory bandwidth is what decides speed.
 *
 * Ops run the variants of cpu/variants.ts: v1, each op's plain twin, unless a faster one is chosen.
 * Fast path: matmul — more than 95% of the work — runs one of the numbered variants of
 * matmulFast.ts (v1 = matmulCpu, the reference; v2 the decode matvec; v3 the blocked prefill
 * matmul; auto = v2 for M ≤ 8, else v3), on `threads` threads through a worker pool over
 * SharedArrayBuffers (cpu/pool.ts). Every variant and thread count gives bit-identical results (see
 * matmulFast.ts). Defaults: auto and ONE thread, so tests stay simple and deterministic; the
 * CLI and the benchmarks pass `threads`. With threads > 1 every weight and tensor lives in shared
 * memory, and destroy() must be called to stop the workers (they never keep Node alive, though).
 */
import { totalmem } from 'node:os';
import { RoseError } from '../../errors.ts';
import type { Backend, DType, HostWeight, Tensor, Weight } from '../backend.ts';
import { gib, numel } from '../backend.ts';
import { describeChoice, type KernelChoice } from '../registry.ts';
import { VariantBackend } from '../variantBackend.ts';
import { widenToF32 } from './dtype.ts';
import { CpuPool, sharedF32, toShared } from './pool.ts';
import { type CpuRowsMatmul, cpuVariants } from './variants.ts';

export class CpuTensor implements Tensor {
  readonly size: number;
  constructor(
    readonly shape: readonly number[],
    readonly data: Float32Array,
  ) {
    this.size = numel(shape);
  }
}

export class CpuWeight implements Weight {
  constructor(
    readonly name: string,
    readonly shape: readonly number[],
    readonly dtype: Weight['dtype'],
    readonly data: Float32Array,
  ) {}
}

const inNode = typeof process !== 'undefined' && !!process.versions?.node;

/**
 * The memory the CPU backend may fill, and how to name it. Node: the machine's RAM. A browser (the
 * teaching page runs this backend in a Web Worker) has no node:os: Chrome's navigator.deviceMemory
 * gives the RAM in GiB, rounded down and capped at 8; other browsers say nothing, and 4 GiB is assumed.
 */
function hostMemory(): { bytes: number; what: string } {
  if (inNode) return { bytes: totalmem(), what: `this machine's ${gib(totalmem())} GiB` };
  const reported = (globalThis.navigator as { deviceMemory?: number } | undefined)?.deviceMemory;
  if (reported)
    return { bytes: reported * 2 ** 30, what: `the ${gib(reported * 2 ** 30)} GiB this browser reports (navigator.deviceMemory)` };
  return { bytes: 4 * 2 ** 30, what: 'the 4.0 GiB assumed for a browser tab (this browser does not say how much memory it has)' };
}
const t = (x: Tensor): Float32Array => (x as CpuTensor).data;
const w = (x: Weight): Float32Array => (x as CpuWeight).data;

export interface CpuBackendOptions {
  /** Threads for matmul (the calling thread included). Default 1. */
  readonly threads?: number;
  /** Forced variants by op (cpu/variants.ts), e.g. { matmul: 1 } for the reference; default: auto. */
  readonly kernels?: KernelChoice;
  /** Matmuls with fewer multiply-adds stay on the calling thread (see CpuPoolOptions). */
  readonly minParallelWork?: number;
  /** How long pool threads poll before sleeping (see CpuPoolOptions). */
  readonly spinMicros?: number | 'auto';
}

export class CpuBackend extends VariantBackend<CpuBackend> implements Backend {
  readonly name = 'cpu' as const;
  readonly variants = cpuVariants;
  readonly threads: number;
  /** The matmul worker pool, when threads > 1. */
  readonly pool: CpuPool | undefined;

  constructor(opts: CpuBackendOptions = {}) {
    super();
    this.threads = opts.threads ?? 1;
    this.forceKernels(opts.kernels ?? {});
    this.pool =
      this.threads === 1
        ? undefined
        : new CpuPool({ threads: this.threads, minParallelWork: opts.minParallelWork, spinMicros: opts.spinMicros });
  }

  get description(): string {
    const kernels = describeChoice(cpuVariants, this.kernels, ['matmul']);
    const host = inNode ? `Node ${process.versions.node}` : 'in a browser';
    return `cpu (TypeScript, ${this.threads} thread${this.threads === 1 ? '' : 's'}, ${kernels}, ${host})`;
  }

  /** Weights are widened to f32 here, so each element costs 4 bytes whatever its stored dtype. */
  checkCapacity(weights: readonly { dtype: DType; elements: number }[]): void {
    const bytes = weights.reduce((sum, w) => sum + 4 * w.elements, 0);
    // Leave a quarter of the machine for activations, the KV cache, the OS and Node itself.
    const host = hostMemory();
    if (bytes > 0.75 * host.bytes) {
      throw new RoseError(
        'LIMIT',
        `this checkpoint needs ${gib(bytes)} GiB once widened to f32 on the CPU backend, more than 3/4 of ${host.what}`,
        'use a smaller checkpoint, or the webgpu backend, which keeps f16/bf16 weights in their stored size',
      );
    }
  }

  uploadWeight(hw: HostWeight): Weight {
    const data = widenToF32(hw.dtype, hw.bytes);
    return new CpuWeight(hw.name, hw.shape, hw.dtype, this.pool ? toShared(data) : data);
  }
  alloc(shape: readonly number[]): Tensor {
    const n = numel(shape);
    return new CpuTensor(shape, this.pool ? sharedF32(n) : new Float32Array(n));
  }
  write(x: Tensor, data: Float32Array): void {
    t(x).set(data);
  }
  async read(x: Tensor): Promise<Float32Array> {
    return t(x).slice();
  }
  /** The garbage collector owns CPU tensors; the pool only forgets its workers' view of it. */
  free(x: Tensor): void {
    this.pool?.release(t(x));
  }
  flush(): void {}
  destroy(): void {
    this.pool?.destroy();
  }

  // --- ops: VariantBackend runs each op's chosen variant (cpu/variants.ts) in this backend -------

  protected variantContext(): CpuBackend {
    return this;
  }

  /** A row-split matmul variant: on this thread, or split by output rows across the worker pool. */
  matmulByRows(variant: CpuRowsMatmul, out: Tensor, x: Tensor, weight: Weight, bias?: Weight): void {
    const [N, K] = weight.shape;
    const M = x.size / K;
    if (this.pool) this.pool.matmul(variant, t(out), t(x), w(weight), bias && w(bias), M, N, K);
    else variant.rows(t(out), t(x), w(weight), bias && w(bias), M, N, K, 0, N);
  }
}

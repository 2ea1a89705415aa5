/**
 * The CPU backend, in two tiers that share one table of kernel variants (cpu/variants.ts):
 *
 *   'ts'    plain TypeScript. v1 of every op is the reference every other backend and variant is
 *           tested against; the matmul runs v2 (decode) or v3 (prefill), bit-identical to v1 (f64
 *           sums). Weights are widened to f32 once, at upload (JS has no half arithmetic).
 *   'wasm'  WebAssembly SIMD (cpu/wasm/): the matmul runs v4 (decode) or v5 (prefill) on weights kept
 *           in their stored dtype (bf16/f16 stay 2 bytes, widened in registers), and every tensor lives
 *           in shared WebAssembly memory, where the WebAssembly kernels of the other ops run too. Not
 *           bit-identical to v1 (f32 lanes): each kernel is within a bound derived from its summation
 *           order (its host file, cpu/wasm/<op>.ts).
 *
 * `tier: 'auto'` (the default) takes 'wasm' wherever this engine runs WebAssembly SIMD with shared
 * memory (Node ≥ 20; a browser page only when cross-origin isolated), else 'ts'. The tier decides the
 * automatic choice of each op's variant, where tensors live, and how matrices are kept; any variant
 * can still be forced on either tier (`kernels`, `--kernel`): a matrix is then also kept in the layout
 * the forced variant reads (f32 for v1–v3, the stored dtype for v4–v5), and operands that live outside
 * the arena a WebAssembly kernel runs in are copied in and out (wasm/memory.ts). The layouts are built
 * at upload, so force variants before loading a model; a variant forced later that finds a weight
 * without its layout is a RoseError.
 *
 * Threads: the matmul (> 90% of the work) runs on `threads` threads through a worker pool over shared
 * memory (cpu/pool.ts), split by output rows; every output is one thread's sum in its variant's one
 * order, so the thread count changes no bit. Defaults: ONE thread, so tests stay simple; the CLI and
 * the benchmarks pass `threads`. With threads > 1 destroy() must be called to stop the workers (they
 * never keep Node alive, though).
 */
import { totalmem } from 'node:os';
import { RoseError } from '../../errors.ts';
import type { Backend, DType, HostWeight, Tensor, Weight } from '../backend.ts';
import { bytesPerElement, gib, numel, stackRows } from '../backend.ts';
import { describeChoice, type KernelChoice, type OpName } from '../registry.ts';
import { VariantBackend } from '../variantBackend.ts';
import { widenToF32 } from './dtype.ts';
import { CpuPool, sharedF32, toShared } from './pool.ts';
import { type CpuRowsMatmul, cpuTierVariants, layoutOf, type CpuVariantTable, type WeightLayout } from './variants.ts';
import { WASM32_MAX_BYTES } from './wasm/arena.ts';
import { type Operand, type Place, WasmMemory, type WeightChunk } from './wasm/memory.ts';
import { kernelModule, wasmSimdUnsupported } from './wasm/module.ts';

export type CpuTier = 'wasm' | 'ts';

export class CpuTensor implements Tensor {
  readonly size: number;
  constructor(
    readonly shape: readonly number[],
    readonly data: Float32Array,
    /** Where `data` lives in WebAssembly memory (the WebAssembly tier), else undefined. */
    readonly at?: Place,
  ) {
    this.size = numel(shape);
  }
}

/**
 * A weight. A vector (norm weight, bias) is always f32 (`data`; in WebAssembly memory on the
 * WebAssembly tier, `at`). A matrix has the layouts its variants read: f32 (`data`, for v1–v3) and/or
 * its stored dtype in WebAssembly memory (`chunks`, by rows, for v4–v5).
 */
export class CpuWeight implements Weight {
  constructor(
    readonly name: string,
    readonly shape: readonly number[],
    readonly dtype: DType,
    private readonly f32: Float32Array | undefined,
    readonly chunks?: readonly WeightChunk[],
    readonly at?: Place,
    /** A stacked weight's parts: views of its rows in each of its layouts (Weight.parts). */
    readonly parts?: readonly CpuWeight[],
  ) {}
  /** Whether the f32 layout is kept. */
  get hasF32(): boolean {
    return this.f32 !== undefined;
  }
  /** The f32 values (vectors; matrices kept in that layout). */
  get data(): Float32Array {
    if (this.f32) return this.f32;
    throw new RoseError(
      'INPUT',
      `weight ${this.name} is kept only in its stored dtype (${this.dtype}) in WebAssembly memory, and this kernel reads it widened to f32`,
      'force the kernel variants before the model loads (--kernel op=N, or the backend option kernels): its weights are then kept in that layout too',
    );
  }
  /** The stored-dtype row chunks (matrices kept in that layout). */
  get stored(): readonly WeightChunk[] {
    if (this.chunks) return this.chunks;
    throw new RoseError(
      'INPUT',
      `weight ${this.name} is kept only widened to f32, and this kernel reads it in its stored dtype from WebAssembly memory`,
      'force the kernel variants before the model loads (--kernel op=N, or the backend option kernels): its weights are then kept in that layout too',
    );
  }
  /** The vector as a kernel operand. */
  get operand(): Operand {
    return { data: this.data, at: this.at };
  }
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

/** The ops whose variants read matrices: their forced variants decide which layouts a matrix is kept in. */
const MATRIX_OPS: readonly OpName[] = ['embedding', 'matmul'];

export interface CpuBackendOptions {
  /** 'wasm', 'ts', or 'auto' (default): wasm wherever WebAssembly SIMD with shared memory runs. */
  readonly tier?: CpuTier | 'auto';
  /** Threads for matmul (the calling thread included). Default 1. */
  readonly threads?: number;
  /** Forced variants by op (cpu/variants.ts), e.g. { matmul: 1 } for the reference; default: auto. */
  readonly kernels?: KernelChoice;
  /** Matmuls with fewer multiply-adds stay on the calling thread (see CpuPoolOptions). */
  readonly minParallelWork?: number;
  /** How long pool threads poll before sleeping (see CpuPoolOptions). */
  readonly spinMicros?: number | 'auto';
  /** The most bytes one WebAssembly memory may hold: default (and ceiling) 4 GiB; tests force less. */
  readonly arenaBytes?: number;
  /** The machine's memory for checkCapacity, in bytes; default the host's (tests force a size). */
  readonly machineBytes?: number;
}

export class CpuBackend extends VariantBackend<CpuBackend> implements Backend {
  readonly name = 'cpu' as const;
  readonly tier: CpuTier;
  /** Every op's variants (the same on both tiers) and the tier's automatic choice. */
  readonly variants: CpuVariantTable;
  readonly threads: number;
  /** The matmul worker pool, when threads > 1. */
  readonly pool: CpuPool | undefined;
  private readonly arenaBytes: number;
  private readonly machineBytes: number | undefined;
  private wasmMemory: WasmMemory | undefined;

  constructor(opts: CpuBackendOptions = {}) {
    super();
    const unsupported = wasmSimdUnsupported();
    const tier = opts.tier ?? 'auto';
    if (!['wasm', 'ts', 'auto'].includes(tier)) throw new RoseError('INPUT', `the CPU tier must be wasm, ts or auto, got ${String(tier)}`);
    if (tier === 'wasm' && unsupported)
      throw new RoseError('BACKEND', `the WebAssembly SIMD tier cannot run: ${unsupported}`, 'use the TypeScript tier (--cpu-tier ts)');
    this.tier = tier === 'auto' ? (unsupported ? 'ts' : 'wasm') : tier;
    this.variants = cpuTierVariants[this.tier];
    const arenaBytes = opts.arenaBytes ?? WASM32_MAX_BYTES;
    if (!(arenaBytes >= 2 ** 16 && arenaBytes <= WASM32_MAX_BYTES))
      throw new RoseError('INPUT', `arenaBytes must be within 64 KiB .. 4 GiB, got ${arenaBytes}`);
    this.arenaBytes = arenaBytes;
    this.machineBytes = opts.machineBytes;
    this.threads = opts.threads ?? 1;
    this.pool =
      this.threads === 1
        ? undefined
        : new CpuPool({ threads: this.threads, minParallelWork: opts.minParallelWork, spinMicros: opts.spinMicros });
    this.forceKernels(opts.kernels ?? {});
  }

  get description(): string {
    const kernels = describeChoice(this.variants, this.kernels, ['matmul']);
    const host = inNode ? `Node ${process.versions.node}` : 'in a browser';
    const threads = `${this.threads} thread${this.threads === 1 ? '' : 's'}`;
    return this.tier === 'wasm'
      ? `cpu (WebAssembly SIMD, ${threads}, ${kernels}, weights in their stored dtype, ${host})`
      : `cpu (TypeScript, ${threads}, ${kernels}, ${host})`;
  }

  /** A forced WebAssembly variant needs an engine that runs the module: refused here, not at its first call. */
  override forceKernels(choice: KernelChoice): void {
    super.forceKernels(choice);
    const unsupported = wasmSimdUnsupported();
    for (const [op, id] of Object.entries(this.kernels) as [OpName, number][]) {
      if (unsupported && this.variants[op].variants[id - 1]?.wasm)
        throw new RoseError('BACKEND', `${op} v${id} is a WebAssembly SIMD kernel, which this engine cannot run: ${unsupported}`);
    }
  }

  /** The WebAssembly arenas (made at the first need: at once on the WebAssembly tier). */
  get wasm(): WasmMemory {
    this.wasmMemory ??= new WasmMemory(kernelModule(), this.arenaBytes, (arena) =>
      this.pool?.registerArena(arena.id, arena.memory, arena.module),
    );
    return this.wasmMemory;
  }

  /** The layouts a matrix uploaded now is kept in: the tier's, and those of the variants forced on the ops that read matrices. */
  private matrixLayouts(): Set<WeightLayout> {
    const layouts = new Set<WeightLayout>();
    for (const op of MATRIX_OPS) {
      const id = this.kernels[op];
      layouts.add(id === undefined ? (this.tier === 'wasm' ? 'stored' : 'f32') : layoutOf(this.variants[op].variants[id - 1]));
    }
    return layouts;
  }

  /** Every weight counts at the size of the layouts it is kept in (vectors, under 0.1% of a model, as matrices). */
  checkCapacity(weights: readonly { dtype: DType; elements: number }[]): void {
    const layouts = this.matrixLayouts();
    const bytesOf = (dtype: DType) => (layouts.has('f32') ? 4 : 0) + (layouts.has('stored') ? bytesPerElement[dtype] : 0);
    const bytes = weights.reduce((sum, w) => sum + w.elements * bytesOf(w.dtype), 0);
    const host = this.machineBytes === undefined ? hostMemory() : { bytes: this.machineBytes, what: `${gib(this.machineBytes)} GiB` };
    const kept =
      layouts.has('f32') && layouts.has('stored')
        ? 'widened to f32 and in its stored dtypes'
        : layouts.has('f32')
          ? 'once widened to f32'
          : 'in its stored dtypes';
    // Leave a quarter of the machine for activations, the KV cache, the OS and Node itself.
    if (bytes > 0.75 * host.bytes) {
      throw new RoseError(
        'LIMIT',
        `this checkpoint needs ${gib(bytes)} GiB ${kept} on the CPU backend, more than 3/4 of ${host.what}`,
        layouts.has('f32')
          ? 'use a smaller checkpoint, the WebAssembly CPU tier (keeps f16/bf16 weights at 2 bytes), or the webgpu backend'
          : 'use a smaller checkpoint (or a bf16/f16 one: the WebAssembly tier keeps 2-byte weights at 2 bytes)',
      );
    }
  }

  uploadWeight(hw: HostWeight): Weight {
    if (hw.shape.length !== 2) {
      const data = widenToF32(hw.dtype, hw.bytes);
      if (this.tier !== 'wasm') return new CpuWeight(hw.name, hw.shape, hw.dtype, this.pool ? toShared(data) : data);
      const at = this.wasm.place(data.byteLength, `weight ${hw.name}`);
      const view = at.arena.f32(at.ptr, data.length);
      view.set(data);
      return new CpuWeight(hw.name, hw.shape, hw.dtype, view, undefined, at);
    }
    const layouts = this.matrixLayouts();
    const [N, K] = hw.shape;
    const chunks = layouts.has('stored') ? this.wasm.placeMatrix(hw.name, hw.bytes, N, K * bytesPerElement[hw.dtype]) : undefined;
    let f32: Float32Array | undefined;
    if (layouts.has('f32')) {
      // An f32 matrix in one arena already is its own f32 layout.
      const c = chunks?.[0];
      if (c && hw.dtype === 'f32' && chunks.length === 1) f32 = c.arena.f32(c.ptr, N * K);
      else {
        const data = widenToF32(hw.dtype, hw.bytes);
        f32 = this.pool ? toShared(data) : data;
      }
    }
    return new CpuWeight(hw.name, hw.shape, hw.dtype, f32, chunks);
  }
  /**
   * The stack uploaded as one weight, in every layout uploadWeight keeps; each part is a view of its
   * rows in each of them (a subarray of the f32 values, sub-ranges of the stored row chunks, an offset
   * into the vector's block), so the pool's workers and the WebAssembly kernels see the same memory.
   */
  uploadStacked(name: string, hosts: readonly HostWeight[]): Weight {
    const stacked = stackRows(name, hosts);
    const whole = this.uploadWeight({ name, ...stacked }) as CpuWeight;
    const rowLength = numel(stacked.shape.slice(1));
    const f32 = whole.hasF32 ? whole.data : undefined;
    const parts = hosts.map((h, i) => {
      const start = stacked.starts[i];
      const rows = h.shape.length ? h.shape[0] : 1;
      const data = f32?.subarray(start * rowLength, (start + rows) * rowLength);
      const at = whole.at && { arena: whole.at.arena, ptr: whole.at.ptr + 4 * start * rowLength };
      const chunks = whole.chunks && rowsOfChunks(whole.chunks, start, rows, rowLength * bytesPerElement[stacked.dtype]);
      return new CpuWeight(h.name, h.shape, stacked.dtype, data, chunks, at);
    });
    return new CpuWeight(name, stacked.shape, stacked.dtype, f32, whole.chunks, whole.at, parts);
  }
  alloc(shape: readonly number[]): Tensor {
    const n = numel(shape);
    if (this.tier === 'wasm') {
      const at = this.wasm.place(4 * n, `a tensor of shape [${shape.join(', ')}]`);
      return new CpuTensor(shape, at.arena.f32(at.ptr, n), at);
    }
    return new CpuTensor(shape, this.pool ? sharedF32(n) : new Float32Array(n));
  }
  write(x: Tensor, data: Float32Array): void {
    t(x).set(data);
  }
  async read(x: Tensor): Promise<Float32Array> {
    return t(x).slice();
  }
  /** JavaScript arrays belong to the garbage collector (the pool forgets its workers' view); arena blocks go back to their arena. */
  free(x: Tensor): void {
    const ct = x as CpuTensor;
    this.pool?.release(ct.data);
    if (ct.at) this.wasm.release(ct.at);
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

/** Rows [start, start + rows) of a matrix kept in row chunks, as chunks of their own (row0 relative to start). */
function rowsOfChunks(chunks: readonly WeightChunk[], start: number, rows: number, rowBytes: number): WeightChunk[] {
  const out: WeightChunk[] = [];
  for (const c of chunks) {
    const lo = Math.max(start, c.row0);
    const hi = Math.min(start + rows, c.row0 + c.rows);
    if (lo < hi) out.push({ arena: c.arena, ptr: c.ptr + (lo - c.row0) * rowBytes, row0: lo - start, rows: hi - lo });
  }
  return out;
}

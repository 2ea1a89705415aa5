/**
 * The CPU backend's WebAssembly SIMD tier: the same ops as CpuBackend (it IS one, by inheritance),
 * with every tensor and weight living in shared WebAssembly memory and the matmuls run by the
 * kernels of assembly/ (v4: the decode matvec, v5: the tiled prefill matmul; 'auto' = v4 for M ≤ 8,
 * else v5).
 *
 * Weights stay in their stored dtype: a bf16 or f16 matrix keeps 2 bytes per element and is widened
 * in registers by the kernels, which halves the memory and the bytes each decode step reads. Vectors
 * (norm weights, biases: under 0.1% of a model) are widened to f32 at upload so that the TypeScript
 * twins of the other ops can read them as they are.
 *
 * The other ops (RMSNorm, RoPE, attention, SwiGLU, the contrast…) run their TypeScript twins,
 * unchanged, on Float32Array views of the same memory: nothing is copied between the tiers. The
 * per-op profile of a decode step (bench/, "Where a decode step's time goes") is what decides which
 * of them deserve a WebAssembly kernel of their own.
 *
 * Memory. Arenas (arena.ts) are filled in order; a new one opens when a block fits in none. A matrix
 * larger than the room of a fresh arena is split by rows across arenas (each chunk a matrix of its
 * own); a matmul runs chunk by chunk in the chunk's arena, and copies x in and the outputs back when
 * they live in another arena (M·(K + N) floats against N·K weights: nothing at decode). With
 * threads > 1 the worker pool (../pool.ts) instantiates the same module on every arena's memory.
 */
import { totalmem } from 'node:os';
import { RoseError } from '../../../errors.ts';
import type { DType, HostWeight, Tensor, Weight } from '../../backend.ts';
import { numel } from '../../backend.ts';
import { CpuBackend, type CpuBackendOptions, CpuTensor } from '../backend.ts';
import { f16ToF32, widenToF32 } from '../dtype.ts';
import { Arena, WASM32_MAX_BYTES } from './arena.ts';
import { type KernelExports, kernelModule, MATMUL_EXPORTS, matmulExportIndex, wasmSimdUnsupported } from './module.ts';

export type WasmVariant = 4 | 5;
export type WasmVariantChoice = WasmVariant | 'auto';
/** 'auto' takes the decode matvec (v4) up to this many activation rows, the tiled matmul (v5) above. */
export const AUTO_V4_MAX_M = 8;
export const pickWasmVariant = (choice: WasmVariantChoice, M: number): WasmVariant =>
  choice === 'auto' ? (M <= AUTO_V4_MAX_M ? 4 : 5) : choice;
/** Thread shares are whole register blocks: 8 rows (v4, M = 1), 4 (v4), 3 (v5). */
const rowBlock = (v: WasmVariant, M: number): number => (v === 5 ? 3 : M === 1 ? 8 : 4);

/** An f32 activation tensor in an arena. `data` is a view of the arena's memory. */
export class WasmTensor extends CpuTensor {
  constructor(
    shape: readonly number[],
    readonly arena: Arena,
    readonly ptr: number,
  ) {
    super(shape, arena.f32(ptr, numel(shape)));
  }
}

/** Rows [row0, row0 + rows) of a weight matrix, stored contiguously in one arena. */
export interface WeightChunk {
  readonly arena: Arena;
  readonly ptr: number;
  readonly row0: number;
  readonly rows: number;
}

/**
 * A weight in arenas. A matrix (N, K) keeps its stored dtype, in one or more row chunks; a vector is
 * f32 (`vector`, a view of its arena), which is what the TypeScript twins read through `data`.
 */
export class WasmWeight implements Weight {
  constructor(
    readonly name: string,
    readonly shape: readonly number[],
    readonly dtype: DType,
    /** The dtype of the bytes in memory: the stored one for matrices, f32 for vectors. */
    readonly held: DType,
    readonly chunks: readonly WeightChunk[],
  ) {}
  /** The f32 view the TypeScript ops read (vectors only: a matrix has no f32 copy anywhere). */
  get data(): Float32Array {
    if (this.held !== 'f32' || this.chunks.length !== 1) {
      throw new RoseError('BACKEND', `weight ${this.name} is held as ${this.held} in WebAssembly memory: no f32 view of it exists`);
    }
    const c = this.chunks[0];
    return c.arena.f32(c.ptr, numel(this.shape));
  }
}

export interface WasmBackendOptions extends CpuBackendOptions {
  /** Which matmul: 4 (decode matvec), 5 (tiled), or 'auto' (default: 4 for M ≤ 8, else 5). */
  readonly variant?: WasmVariantChoice;
  /** The most bytes one WebAssembly memory may hold. Default (and ceiling) 4 GiB; tests force less. */
  readonly arenaBytes?: number;
  /** The machine's memory, for checkCapacity. Default os.totalmem(). */
  readonly machineBytes?: number;
}

const gib = (bytes: number) => (bytes / 2 ** 30).toFixed(1);
const bytesPer: Record<DType, number> = { f32: 4, f16: 2, bf16: 2 };

export class WasmCpuBackend extends CpuBackend {
  private readonly wasmDescription: string;
  readonly wasmVariant: WasmVariantChoice;
  readonly arenaBytes: number;
  readonly machineBytes: number;
  private readonly module: WebAssembly.Module;
  readonly arenas: Arena[] = [];

  /** Throws RoseError('BACKEND') when this engine cannot run WebAssembly SIMD with shared memory. */
  constructor(opts: WasmBackendOptions = {}) {
    const unsupported = wasmSimdUnsupported();
    if (unsupported) {
      throw new RoseError('BACKEND', `the WebAssembly SIMD tier cannot run: ${unsupported}`, 'use the TypeScript tier (--cpu-tier ts)');
    }
    super(opts);
    this.wasmVariant = opts.variant ?? 'auto';
    if (![4, 5, 'auto'].includes(this.wasmVariant))
      throw new RoseError('INPUT', `WebAssembly matmul variant must be 4, 5 or auto, got ${String(this.wasmVariant)}`);
    const arenaBytes = opts.arenaBytes ?? WASM32_MAX_BYTES;
    if (!(arenaBytes >= 2 ** 16 && arenaBytes <= WASM32_MAX_BYTES))
      throw new RoseError('INPUT', `arenaBytes must be within 64 KiB .. 4 GiB, got ${arenaBytes}`);
    this.arenaBytes = arenaBytes;
    this.machineBytes = opts.machineBytes ?? totalmem();
    this.module = kernelModule();
    const v = this.wasmVariant === 'auto' ? 'auto (v4 for M ≤ 8, else v5)' : `v${this.wasmVariant}`;
    this.wasmDescription = `cpu (WebAssembly SIMD, ${this.threads} thread${this.threads === 1 ? '' : 's'}, matmul ${v}, weights in their stored dtype, Node ${process.versions.node})`;
  }

  override get description(): string {
    return this.wasmDescription;
  }

  // --- memory -------------------------------------------------------------------------------------

  /**
   * Every weight counts at its stored size (the vectors, widened to f32, are under 0.1% of a model).
   * Leave a quarter of the machine for activations, the KV cache, the OS and Node itself, as the
   * TypeScript tier does: an 8B bf16 checkpoint (16.1 GB = 15.0 GiB) passes on a 24 GiB machine.
   */
  override checkCapacity(weights: readonly { dtype: DType; elements: number }[]): void {
    const bytes = weights.reduce((sum, w) => sum + w.elements * bytesPer[w.dtype], 0);
    const limit = 0.75 * this.machineBytes;
    if (bytes > limit) {
      throw new RoseError(
        'LIMIT',
        `this checkpoint needs ${gib(bytes)} GiB in its stored dtypes, more than 3/4 of this machine's ${gib(this.machineBytes)} GiB`,
        'use a smaller checkpoint (or a bf16/f16 one: the WebAssembly tier keeps 2-byte weights at 2 bytes)',
      );
    }
  }

  /** A zero-filled block of `bytes` in the first arena with room, opening a new arena when none has. */
  private place(bytes: number, what: string): { arena: Arena; ptr: number } {
    for (const arena of this.arenas) {
      const ptr = this.tryPlace(arena, bytes);
      if (ptr !== undefined) return { arena, ptr };
    }
    const arena = this.newArena();
    const ptr = this.tryPlace(arena, bytes);
    if (ptr === undefined) {
      throw new RoseError(
        'LIMIT',
        `${what} needs ${bytes} bytes in one block, more than a WebAssembly memory holds here (${this.arenaBytes} bytes)`,
        'use the TypeScript CPU tier (--cpu-tier ts) for this model',
      );
    }
    return { arena, ptr };
  }

  /**
   * Room kept free in every arena for staging matmul operands from other arenas (one activation row
   * at least: 4·(K + N) bytes; 16 MiB holds 30 rows of a 128K-vocab head at K = 8192).
   */
  private get stageReserve(): number {
    return Math.min(16 * 2 ** 20, Math.floor(this.arenaBytes / 8));
  }

  /** A block for a tensor or weight: only where the staging reserve stays free after it. */
  private tryPlace(arena: Arena, bytes: number): number | undefined {
    return arena.largestFree() >= bytes + this.stageReserve + 64 ? this.tryAlloc(arena, bytes) : undefined;
  }

  private tryAlloc(arena: Arena, bytes: number): number | undefined {
    try {
      return arena.alloc(bytes);
    } catch (e) {
      // memory.grow refused by the engine or the OS: the machine is out of memory, not the arena
      throw new RoseError('LIMIT', `could not grow WebAssembly memory ${arena.id} by ${bytes} bytes: ${(e as Error).message}`);
    }
  }

  private newArena(): Arena {
    const arena = new Arena(this.arenas.length, this.arenaBytes, this.module);
    this.arenas.push(arena);
    this.pool?.registerArena(arena.id, arena.memory, this.module);
    return arena;
  }

  override uploadWeight(hw: HostWeight): Weight {
    if (hw.shape.length !== 2) {
      const data = widenToF32(hw.dtype, hw.bytes);
      const { arena, ptr } = this.place(data.byteLength, `weight ${hw.name}`);
      arena.f32(ptr, data.length).set(data);
      return new WasmWeight(hw.name, hw.shape, hw.dtype, 'f32', [{ arena, ptr, row0: 0, rows: hw.shape[0] ?? 1 }]);
    }
    const [N, K] = hw.shape;
    const rowBytes = K * bytesPer[hw.dtype];
    const chunks: WeightChunk[] = [];
    let row0 = 0;
    while (row0 < N) {
      const want = (N - row0) * rowBytes;
      // the whole rest in an arena with room; else as many rows as a fresh arena takes
      let placed: { arena: Arena; ptr: number } | undefined;
      let rows = N - row0;
      for (const arena of this.arenas) {
        const ptr = this.tryPlace(arena, want);
        if (ptr !== undefined) {
          placed = { arena, ptr };
          break;
        }
      }
      if (!placed) {
        const arena = this.newArena();
        rows = Math.min(rows, Math.floor((arena.largestFree() - this.stageReserve - 64) / rowBytes));
        if (rows < 1) {
          throw new RoseError(
            'LIMIT',
            `one row of weight ${hw.name} (${rowBytes} bytes) does not fit in a WebAssembly memory here (${this.arenaBytes} bytes)`,
            'use the TypeScript CPU tier (--cpu-tier ts) for this model',
          );
        }
        placed = { arena, ptr: this.tryPlace(arena, rows * rowBytes)! };
      }
      placed.arena.u8(placed.ptr, rows * rowBytes).set(hw.bytes.subarray(row0 * rowBytes, (row0 + rows) * rowBytes));
      chunks.push({ ...placed, row0, rows });
      row0 += rows;
    }
    return new WasmWeight(hw.name, hw.shape, hw.dtype, hw.dtype, chunks);
  }

  override alloc(shape: readonly number[]): Tensor {
    const { arena, ptr } = this.place(4 * numel(shape), `a tensor of shape [${shape.join(', ')}]`);
    return new WasmTensor(shape, arena, ptr);
  }

  override free(x: Tensor): void {
    const t = x as WasmTensor;
    t.arena.release(t.ptr);
  }

  // --- ops on stored-dtype weights --------------------------------------------------------------

  /** out (M, D) = table[ids]: each row widened from the stored dtype, from whichever chunk holds it. */
  override embedding(out: Tensor, table: Weight, ids: Int32Array): void {
    const tw = table as WasmWeight;
    const D = tw.shape[1];
    const o = (out as WasmTensor).data;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      const c = tw.chunks.find((ch) => id >= ch.row0 && id < ch.row0 + ch.rows)!;
      const src = c.arena.u8(c.ptr + (id - c.row0) * D * bytesPer[tw.held], D * bytesPer[tw.held]);
      const dst = o.subarray(i * D, (i + 1) * D);
      if (tw.held === 'f32') dst.set(new Float32Array(src.buffer, src.byteOffset, D));
      else if (tw.held === 'bf16') {
        const h = new Uint16Array(src.buffer, src.byteOffset, D);
        const bits = new Uint32Array(dst.buffer, dst.byteOffset, D);
        for (let k = 0; k < D; k++) bits[k] = h[k] << 16;
      } else dst.set(f16ToF32(new Uint16Array(src.buffer, src.byteOffset, D)));
    }
  }

  /**
   * out (M, N) = x (M, K) · wᵀ (+ bias), chunk by chunk, each in its weight chunk's arena. Operands
   * from another arena are staged (copied) into the chunk's arena, in pieces of activation rows that
   * fit the room left there (the staging reserve guarantees at least one row).
   */
  override matmul(out: Tensor, x: Tensor, weight: Weight, bias?: Weight): void {
    const w = weight as WasmWeight;
    const [N, K] = w.shape;
    const xt = x as WasmTensor;
    const ot = out as WasmTensor;
    const M = xt.size / K;
    const variant = pickWasmVariant(this.wasmVariant, M);
    const fn = matmulExportIndex(variant, w.held as 'f32' | 'bf16' | 'f16');
    const b = bias as WasmWeight | undefined;
    for (const c of w.chunks) {
      const a = c.arena;
      const staged: number[] = []; // this call's blocks in arena a, released at the end
      const stage = (bytes: number): number => {
        const ptr = this.tryAlloc(a, bytes);
        if (ptr === undefined) throw new RoseError('LIMIT', `no room left in WebAssembly memory ${a.id} to stage a matmul operand`);
        staged.push(ptr);
        return ptr;
      };
      try {
        let biasPtr = 0;
        if (b) {
          const bc = b.chunks[0];
          if (bc.arena === a) biasPtr = bc.ptr + 4 * c.row0;
          else {
            biasPtr = stage(4 * c.rows);
            a.f32(biasPtr, c.rows).set(b.data.subarray(c.row0, c.row0 + c.rows));
          }
        }
        const xHere = xt.arena === a;
        const outHere = ot.arena === a; // then written in place: columns row0.. of each row, stride N
        const rowBytes = (xHere ? 0 : 4 * K) + (outHere ? 0 : 4 * c.rows);
        const piece = rowBytes === 0 ? M : Math.min(M, Math.floor((a.largestFree() - 64) / rowBytes));
        if (piece < 1) throw new RoseError('LIMIT', `no room left in WebAssembly memory ${a.id} to stage a matmul operand`);
        const xPtr = xHere ? xt.ptr : stage(4 * K * piece);
        const outPtr = outHere ? ot.ptr + 4 * c.row0 : stage(4 * c.rows * piece);
        for (let m0 = 0; m0 < M; m0 += piece) {
          const rowsM = Math.min(piece, M - m0);
          if (!xHere) a.f32(xPtr, rowsM * K).set(xt.data.subarray(m0 * K, (m0 + rowsM) * K));
          const args = {
            out: outHere ? outPtr + 4 * m0 * N : outPtr,
            ldo: outHere ? N : c.rows,
            x: xHere ? xPtr + 4 * m0 * K : xPtr,
            w: c.ptr,
            bias: biasPtr,
            M: rowsM,
            K,
          };
          this.runMatmul(a, fn, variant, args, c.rows);
          if (!outHere) {
            const tmp = a.f32(outPtr, rowsM * c.rows);
            for (let m = 0; m < rowsM; m++) ot.data.set(tmp.subarray(m * c.rows, (m + 1) * c.rows), (m0 + m) * N + c.row0);
          }
        }
      } finally {
        for (const p of staged) a.release(p);
      }
    }
  }

  private runMatmul(
    a: Arena,
    fn: number,
    variant: WasmVariant,
    args: { out: number; ldo: number; x: number; w: number; bias: number; M: number; K: number },
    rows: number,
  ): void {
    const kernel = a.kernels[MATMUL_EXPORTS[fn]];
    const own = (n0: number, n1: number) => kernel(args.out, args.ldo, args.x, args.w, args.bias, args.M, args.K, n0, n1);
    if (this.pool) this.pool.wasmMatmul(a.id, fn, args, rows, rowBlock(variant, args.M), own);
    else own(0, rows);
  }

  /** The kernels of arena 0 (the bench's SIMD stream read runs there). */
  kernelsOf(arena = 0): KernelExports {
    return (this.arenas[arena] ?? this.newArena()).kernels;
  }
}

/**
 * The host side of the WebAssembly matmuls (assembly/matmul.ts): v4, the decode matvec, and v5, the
 * tiled prefill matmul, over a weight in its stored dtype (f32, bf16 or f16), registered as CPU
 * matmul variants in ../variants.ts.
 *
 * A weight may lie in several arenas (row chunks, see memory.ts): the matmul runs chunk by chunk in
 * the chunk's arena, writing its columns [row0, row0 + rows) of each output row (stride N), and
 * stages x and the outputs when they live elsewhere, in pieces of activation rows that fit the room
 * left there (the staging reserve guarantees one row). With a worker pool each chunk's rows are split
 * across the threads in whole register blocks; every output is still one thread's sum in the one
 * order, so neither the split nor the chunking changes a bit.
 *
 * Error bound (against the exact result S, and against v1). The kernels sum every output in ONE order
 * per weight dtype (assembly/matmul.ts): lane j of four sums the rounded products fl(x_k·w_k) of two
 * columns per step of 8, k < K8 = K − K mod 8, in increasing k (f32, f16: k ≡ j mod 4; bf16:
 * k mod 8 ∈ {2j, 2j + 1}, which makes widening bf16 one instruction per 4 weights); then
 * (l0 + l1) + (l2 + l3); then + the tail k ≥ K8 (≤ 7 products summed in order); then + bias. Both
 * lane orders give every lane K8/4 products, so the bound below holds for both. A product goes through at most K8/4 − 1 lane additions,
 * 2 reduction additions, the tail addition and the bias addition, plus its own rounding: depth
 * d ≤ ⌈K/4⌉ + 4, or ≤ 9 for a tail product. With u = 2⁻²⁴ and γ_d = d·u / (1 − d·u), recursive
 * summation gives |wasm − S| ≤ γ_d·A, A = Σ_k |x_k·w_k| + |b|. v1 sums the exact f64 products in f64
 * (error ≤ γ⁶⁴_{K+1}·A) and rounds to f32 once (≤ u·|S|), so |wasm − v1| ≤ (γ_d + 2u)·A for any K
 * below 2²⁸, plus (K + 8)·2⁻¹⁴⁹ for products that underflow f32's normal range. Widening f16/bf16
 * to f32 is exact, so the bound holds for all three dtypes.
 */
import type { CpuPool } from '../pool.ts';
import type { Arena } from './arena.ts';
import type { Operand, WasmMemory, WeightChunk } from './memory.ts';
import { MATMUL_EXPORTS, matmulExportIndex } from './module.ts';

export type WasmMatmulVariant = 4 | 5;

/** The bound above for one output: (γ_d + 2u)·A + (K + 8)·2⁻¹⁴⁹, with A = Σ_k |x_k·w_k| + |b|. */
export function wasmMatmulBound(K: number, A: number): number {
  const u = 2 ** -24;
  const d = Math.max(Math.ceil(K / 4) + 4, 9);
  return ((d * u) / (1 - d * u) + 2 * u) * A + (K + 8) * 2 ** -149;
}

/** Thread shares are whole register blocks: 8 rows (v4, M = 1), 4 (v4), 3 (v5). */
const rowBlock = (v: WasmMatmulVariant, M: number): number => (v === 5 ? 3 : M === 1 ? 8 : 4);

/** What a WebAssembly matmul reads and writes, wherever each lives. */
export interface WasmMatmulCall {
  readonly memory: WasmMemory;
  readonly pool: CpuPool | undefined;
  readonly variant: WasmMatmulVariant;
  readonly out: Operand; // (M, N)
  readonly x: Operand; // (M, K)
  readonly chunks: readonly WeightChunk[]; // (N, K) in the stored dtype, by rows
  readonly dtype: 'f32' | 'bf16' | 'f16';
  readonly bias: Operand | undefined; // (N), f32
  readonly M: number;
  readonly N: number;
  readonly K: number;
}

/** out (M, N) = x (M, K) · wᵀ (+ bias), chunk by chunk in each chunk's arena. */
export function wasmMatmul(c: WasmMatmulCall): void {
  const { memory, variant, M, N, K } = c;
  const fn = matmulExportIndex(variant, c.dtype);
  for (const chunk of c.chunks) {
    const a = chunk.arena;
    memory.staging(a, (stage) => {
      let biasPtr = 0;
      if (c.bias) {
        if (c.bias.at?.arena === a) biasPtr = c.bias.at.ptr + 4 * chunk.row0;
        else {
          biasPtr = stage(4 * chunk.rows);
          a.f32(biasPtr, chunk.rows).set(c.bias.data.subarray(chunk.row0, chunk.row0 + chunk.rows));
        }
      }
      const xHere = c.x.at?.arena === a;
      const outHere = c.out.at?.arena === a; // then written in place: columns row0.. of each row, stride N
      const rowBytes = (xHere ? 0 : 4 * K) + (outHere ? 0 : 4 * chunk.rows);
      const piece = memory.rowsThatFit(a, rowBytes, M, 'a matmul operand');
      const xPtr = xHere ? c.x.at!.ptr : stage(4 * K * piece);
      const outPtr = outHere ? c.out.at!.ptr + 4 * chunk.row0 : stage(4 * chunk.rows * piece);
      for (let m0 = 0; m0 < M; m0 += piece) {
        const rowsM = Math.min(piece, M - m0);
        if (!xHere) a.f32(xPtr, rowsM * K).set(c.x.data.subarray(m0 * K, (m0 + rowsM) * K));
        const args = {
          out: outHere ? outPtr + 4 * m0 * N : outPtr,
          ldo: outHere ? N : chunk.rows,
          x: xHere ? xPtr + 4 * m0 * K : xPtr,
          w: chunk.ptr,
          bias: biasPtr,
          M: rowsM,
          K,
        };
        runSplit(a, c.pool, fn, variant, args, chunk.rows);
        if (!outHere) {
          const tmp = a.f32(outPtr, rowsM * chunk.rows);
          for (let m = 0; m < rowsM; m++) c.out.data.set(tmp.subarray(m * chunk.rows, (m + 1) * chunk.rows), (m0 + m) * N + chunk.row0);
        }
      }
    });
  }
}

/** One chunk's matmul: on this thread, or split by weight rows across the pool (same module, same memory). */
function runSplit(
  a: Arena,
  pool: CpuPool | undefined,
  fn: number,
  variant: WasmMatmulVariant,
  args: { out: number; ldo: number; x: number; w: number; bias: number; M: number; K: number },
  rows: number,
): void {
  const kernel = a.kernels[MATMUL_EXPORTS[fn]];
  const own = (n0: number, n1: number) => kernel(args.out, args.ldo, args.x, args.w, args.bias, args.M, args.K, n0, n1);
  if (pool) pool.wasmMatmul(a.id, fn, args, rows, rowBlock(variant, args.M), own);
  else own(0, rows);
}

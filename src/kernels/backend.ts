/**
 * The one interface between the model and the hardware.
 *
 * kernels/ knows nothing of Llama: only f32 activation tensors, weights in their stored dtype, and
 * the ops below. The model calls `backend.rmsnorm(...)` and never asks which backend it holds.
 *
 * Execution model. Ops are enqueued in call order and take effect in that order. The CPU backend runs
 * each op at once; the WebGPU backend records them into one command encoder and submits when a result
 * is read back (`read`, `contrastSoftmax`) or on `flush()`. Host-side integer inputs (token ids,
 * positions, pad counts) are copied when the op is called, so the caller may reuse its arrays.
 *
 * Conventions. Every tensor is row-major and dense. Shapes in comments name the dimensions:
 * M = rows of activations (B·T), D = model width, N/K = matmul out/in features, V = vocab,
 * B = batch rows (sequences), T = new tokens per row in this call, S = KV-cache capacity (slots),
 * H = query heads, Hkv = key/value heads, hd = head_dim.
 */

import { RoseError } from '../errors.ts';
import { widenToF32 } from './cpu/dtype.ts';
import type { KernelChoice, RegistryInfo } from './registry.ts';

/** Storage dtypes we compute with. Everything else is refused at load with a RoseError('DTYPE'). */
export type DType = 'f32' | 'f16' | 'bf16';

export const bytesPerElement: Record<DType, number> = { f32: 4, f16: 2, bf16: 2 };

/** A weight as read from a checkpoint: raw little-endian bytes in the stored dtype. */
export interface HostWeight {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly bytes: Uint8Array;
}

/** A device-resident f32 activation tensor. Opaque: only the backend that made it reads its storage. */
export interface Tensor {
  readonly shape: readonly number[];
  readonly size: number;
}

/** A device-resident weight. It keeps its stored dtype where the backend can compute on it directly. */
export interface Weight {
  readonly name: string;
  readonly shape: readonly number[];
  /** The dtype of the checkpoint; the backend may have widened it (see each backend's docs). */
  readonly dtype: DType;
  /** A weight made by uploadStacked: its parts, in order, each a view of its rows (no copy). */
  readonly parts?: readonly Weight[];
}

/** Parameters of the fused contrast + softmax (ROSE's decision rule, one dispatch per step). */
export interface ContrastParams {
  /**
   * One weight per row after the first: z = logsoftmax(l_0) − Σᵢ alphas[i−1]·logsoftmax(l_i).
   * ROSE with one reverse prompt passes [alpha]; plain decoding passes [] (or [0]).
   */
  readonly alphas: readonly number[];
  /** Divides z before the softmax. 1 = the paper. Must be > 0. */
  readonly temperature: number;
  /** Plausibility mask: drop tokens with p_0 < beta·max p_0. 0 = off (the paper). In [0, 1]. */
  readonly beta: number;
  /** A uniform number in [0, 1) for the sampled token; the argmax is returned regardless. */
  readonly uniform: number;
}

export interface ContrastResult {
  /** argmax of z over the tokens the mask keeps; ties go to the lowest id. */
  readonly argmax: number;
  /** The token at which the CDF of `probs` (in id order) first exceeds `uniform`. */
  readonly sampled: number;
  /**
   * The first row whose logits hold Inf or NaN, or −1. When it is not −1 the other fields are
   * meaningless: the caller must stop (a broken checkpoint or an overflow, never a valid decision).
   */
  readonly nonFiniteRow: number;
}

export interface Backend {
  readonly name: 'cpu' | 'webgpu';
  /** Human-readable: which device or adapter, and its limits. */
  readonly description: string;

  // --- kernel variants (registry.ts) ---------------------------------------------------------------
  /** Every op's variants on this backend (cpu/variants.ts, webgpu/variants.ts): what tests and bench iterate. */
  readonly variants: RegistryInfo;
  /** The variants forced on this backend, by op; {} = every op's automatic choice. */
  readonly kernels: KernelChoice;
  /**
   * Forces variants from now on, replacing the previous choice ({} restores the automatic ones).
   * RoseError('INPUT') for an op or a variant number this backend does not have.
   */
  forceKernels(choice: KernelChoice): void;

  // --- memory -------------------------------------------------------------------------------------
  /**
   * Says, before anything is uploaded, whether weights of these dtypes and sizes fit this backend's
   * memory; throws RoseError('LIMIT') naming the sizes and the limit when they do not.
   */
  checkCapacity(weights: readonly { dtype: DType; elements: number }[]): void;
  uploadWeight(w: HostWeight): Weight;
  /**
   * Uploads weights whose rows have the same length as ONE weight, their rows stacked in order: shape
   * (Σ rows, …), with `parts`, each input as a view of its rows, usable wherever a weight is. A fused
   * kernel reads the stack through one binding ([wq; wk; wv] for normQkv); the memory is paid once.
   * Parts of different dtypes are stacked in f32 (exact: f16 and bf16 widen losslessly).
   */
  uploadStacked(name: string, parts: readonly HostWeight[]): Weight;
  /** A zero-filled f32 tensor. */
  alloc(shape: readonly number[]): Tensor;
  write(t: Tensor, data: Float32Array): void;
  /** Submits pending work and returns a copy of the tensor's contents. */
  read(t: Tensor): Promise<Float32Array>;
  /** Releases a tensor's storage now rather than when the backend is destroyed. */
  free(t: Tensor): void;
  /** Submits pending work without reading anything back. */
  flush(): void;
  /** Frees every buffer and the device. The backend is unusable afterwards. */
  destroy(): void;

  // --- ops ----------------------------------------------------------------------------------------
  /** out (M, D) = table[ids[m]] for the table (V, D). Ids are checked against V by the model. */
  embedding(out: Tensor, table: Weight, ids: Int32Array): void;
  /** out (M, D) = w ⊙ x / sqrt(mean(x²) + eps), row by row, sum of squares in f32. */
  rmsnorm(out: Tensor, x: Tensor, w: Weight, eps: number): void;
  /** out (M, N) = x (M, K) · wᵀ (K, N) [+ bias (N)], for a weight stored as nn.Linear's (N, K). */
  matmul(out: Tensor, x: Tensor, w: Weight, bias?: Weight): void;
  /**
   * Rotates x (M, heads, hd) in place with the half-split `rotate_half` pairing (i, i + hd/2).
   * table (P, hd) holds [cos(θ_p,0..hd/2) | sin(θ_p,0..hd/2)] per position p; positions (M) index it.
   */
  rope(x: Tensor, table: Tensor, positions: Int32Array, heads: number): void;
  /** cache (B, S, Hkv, hd)[b, slot0 + t] = src (B·T, Hkv·hd)[b·T + t], for t < T. */
  kvWrite(cache: Tensor, src: Tensor, slot0: number): void;
  /**
   * Causal GQA attention over the cache. Query t of row b sits at slot s = slot0 + t and attends to
   * slots j with padLen[b] ≤ j ≤ s; query head h reads kv head ⌊h / (H / Hkv)⌋. A query with no key
   * to attend to (a pad position) gets zeros, never NaN.
   * out, q: (B·T, H·hd); kCache, vCache: (B, S, Hkv, hd); padLen: (B).
   */
  attention(out: Tensor, q: Tensor, kCache: Tensor, vCache: Tensor, padLen: Int32Array, slot0: number): void;
  /** out (M, F) = silu(gate) ⊙ up. */
  swiglu(out: Tensor, gate: Tensor, up: Tensor): void;
  /** x (M, D) += y (M, D): the residual stream. */
  addInPlace(x: Tensor, y: Tensor): void;
  /** out (R, D) = x (M, D)[rows[r]]: picks the positions whose logits we need. */
  gatherRows(out: Tensor, x: Tensor, rows: Int32Array): void;

  // --- fused ops: each is several of the ops above, in one call (one dispatch where it pays) ------
  // Every one means exactly the composition written beside it; v1 on every backend runs that
  // composition (src/kernels/<op>.ts), faster variants fuse it (docs/CONTRIBUTING.md).
  /**
   * The attention sublayer's input: rmsnorm, then the q, k and v projections of the normalised x.
   * wqkv (Nq + 2·Nkv, D) = [wq; wk; wv] and bqkv = [bq; bk; bv] are stacked by uploadStacked.
   * = rmsnorm(xn, x, norm, eps); matmul(q, xn, wq, bq); matmul(k, xn, wk, bk); matmul(v, xn, wv, bv).
   * q (M, Nq), k (M, Nkv), v (M, Nkv), x (M, D).
   */
  normQkv(q: Tensor, k: Tensor, v: Tensor, x: Tensor, norm: Weight, eps: number, wqkv: Weight, bqkv?: Weight): void;
  /**
   * RoPE on q (M, H·hd) and k (M, Hkv·hd), both in place, then k and v written into the caches.
   * = rope(q, table, positions, H); rope(k, table, positions, Hkv); kvWrite(kCache, k, slot0); kvWrite(vCache, v, slot0).
   */
  ropeKvWrite(q: Tensor, k: Tensor, v: Tensor, kCache: Tensor, vCache: Tensor, table: Tensor, positions: Int32Array, slot0: number): void;
  /** x (M, N) += y (M, K) · wᵀ [+ bias]: a projection and the residual add. = matmul(t, y, w, bias); addInPlace(x, t). */
  matmulAdd(x: Tensor, y: Tensor, w: Weight, bias?: Weight): void;
  /**
   * The MLP's input and activation: out (M, F) = silu(xn · wGateᵀ [+ bGate]) ⊙ (xn · wUpᵀ [+ bUp]), xn = rmsnorm(x).
   * = rmsnorm(xn, x, norm, eps); matmul(gate, xn, wGate, bGate); matmul(up, xn, wUp, bUp); swiglu(out, gate, up).
   */
  normGateUpSwiglu(out: Tensor, x: Tensor, norm: Weight, eps: number, wGate: Weight, wUp: Weight, bGate?: Weight, bUp?: Weight): void;
  /** out (M, N) = rmsnorm(x) · wᵀ [+ bias]: the final norm and lm_head. = rmsnorm(xn, x, norm, eps); matmul(out, xn, w, bias). */
  normMatmul(out: Tensor, x: Tensor, norm: Weight, eps: number, w: Weight, bias?: Weight): void;

  /**
   * The ROSE decision, fused: from logits (B, V) it writes probs (V) = softmax(z / temperature) over
   * the tokens the β mask keeps (0 elsewhere), and returns the argmax and the sampled token.
   */
  contrastSoftmax(probs: Tensor, logits: Tensor, params: ContrastParams): Promise<ContrastResult>;
}

/** Number of elements of a shape. */
export const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/**
 * The host side of Backend.uploadStacked: the parts' bytes concatenated (rows stacked), in their
 * common dtype, or all widened to f32 when they differ; `starts` is each part's first row.
 */
export function stackRows(
  name: string,
  parts: readonly HostWeight[],
): { dtype: DType; shape: number[]; bytes: Uint8Array; starts: number[] } {
  if (parts.length === 0) throw new RoseError('INPUT', `stacked weight ${name}: no parts`);
  const rest = parts[0].shape.slice(1);
  const rowsOf = (p: HostWeight) => (p.shape.length ? p.shape[0] : 1);
  for (const p of parts) {
    if (p.shape.length !== parts[0].shape.length || p.shape.slice(1).some((d, i) => d !== rest[i]))
      throw new RoseError('CHECKPOINT', `stacked weight ${name}: ${p.name} has shape [${p.shape}], rows unlike [${parts[0].shape}]`);
  }
  const dtype = parts.every((p) => p.dtype === parts[0].dtype) ? parts[0].dtype : 'f32';
  const chunks = parts.map((p) => (p.dtype === dtype ? p.bytes : new Uint8Array(widenToF32(p.dtype, p.bytes).buffer)));
  const bytes = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  const starts: number[] = [];
  let row = 0;
  let at = 0;
  for (const [i, c] of chunks.entries()) {
    starts.push(row);
    row += rowsOf(parts[i]);
    bytes.set(c, at);
    at += c.byteLength;
  }
  return { dtype, shape: parts[0].shape.length ? [row, ...rest] : [row], bytes, starts };
}

/** n rounded up to a multiple of m: buffer sizes, alignments, uniform offsets. */
export const roundUp = (n: number, m: number): number => Math.ceil(n / m) * m;

/** Bytes as GiB with one decimal, for the capacity errors. */
export const gib = (bytes: number): string => (bytes / 2 ** 30).toFixed(1);

/**
 * The WebGPU backend: the same ops as the CPU backend, as WGSL compute kernels (one file per kernel
 * in src/kernels/, next to its CPU twin), recorded into one command encoder per submit.
 *
 * Weights keep their stored dtype on the device (f16 / bf16 two per u32 word, unpacked in the shader)
 * and are split by rows across buffers when one exceeds the binding limit. Activations are f32 and
 * every sum accumulates in f32. Ops whose output is also one of their inputs (x = f(x)) are refused:
 * WebGPU forbids binding a buffer writable and read-only in one dispatch (rope and addInPlace are the
 * in-place ops, by design).
 *
 * Host-visible traffic per decode step: the integer inputs (a few bytes, through the arena) and the
 * 12-byte [argmax, sampled, non-finite row] of contrastSoftmax. `stats` counts dispatches, submits and bytes read back.
 */
import type { Backend, ContrastParams, ContrastResult, DType, HostWeight, Tensor, Weight } from '../backend.ts';
import { bytesPerElement } from '../backend.ts';
import { RoseError } from '../../errors.ts';
import { GpuContext, type GpuTensor, type GpuWeight, type GpuBuf, type GpuStats } from './context.ts';
import { openWebGpu, type AdapterSummary, type OpenedWebGpu, type OpenWebGpuOptions } from './device.ts';
import { encodeAddInPlace } from '../addInPlace.ts';
import { encodeAttention } from '../attention.ts';
import { encodeContrastSoftmax } from '../contrastSoftmax.ts';
import { encodeEmbedding } from '../embedding.ts';
import { encodeGatherRows } from '../gatherRows.ts';
import { encodeKvWrite } from '../kvWrite.ts';
import { encodeMatmul } from '../matmul.ts';
import { encodeRmsnorm } from '../rmsnorm.ts';
import { encodeRope } from '../rope.ts';
import { encodeSwiglu } from '../swiglu.ts';

export interface WebGpuBackendOptions extends OpenWebGpuOptions {
  /**
   * Split weights into buffers of at most this many bytes (default: the device's
   * maxStorageBufferBindingSize). Tests set it low to exercise the split on small weights.
   */
  readonly maxBindingBytesOverride?: number;
}

const STORAGE_COPY = 0x80 | 0x4 | 0x8; // STORAGE | COPY_SRC | COPY_DST

const gib = (bytes: number): string => (bytes / 2 ** 30).toFixed(1);
const t = (x: Tensor): GpuTensor => x as GpuTensor;
const w = (x: Weight): GpuWeight => x as GpuWeight;

export class WebGpuBackend implements Backend {
  readonly name = 'webgpu' as const;
  readonly description: string;
  /** The adapter in a few words and in full (the CLI's banner line and its --json). */
  readonly adapter: AdapterSummary;
  private readonly ctx: GpuContext;
  private opened: OpenedWebGpu | undefined;
  private readonly maxBindingBytes: number;
  /** Bound where a matmul has no bias (the binding must exist). */
  private readonly noBias: GpuBuf;
  /** contrastSoftmax's [argmax, sampled]. */
  private readonly result: GpuBuf;

  static async create(opts: WebGpuBackendOptions = {}): Promise<WebGpuBackend> {
    return new WebGpuBackend(await openWebGpu(opts), opts);
  }

  private constructor(opened: OpenedWebGpu, opts: WebGpuBackendOptions) {
    this.opened = opened;
    this.adapter = opened.summary;
    this.ctx = new GpuContext(opened.device, opened.describe.split(';')[0]);
    this.maxBindingBytes = opts.maxBindingBytesOverride ?? opened.device.limits.maxStorageBufferBindingSize;
    this.description = opened.describe + (opts.maxBindingBytesOverride ? `; weights split at ${opts.maxBindingBytesOverride} B` : '');
    this.noBias = this.ctx.createBuf(16, STORAGE_COPY);
    this.result = this.ctx.createBuf(16, STORAGE_COPY);
  }

  /** Test hook: simulate a lost device or a pipeline that fails to compile (see GpuContext.injectFault). */
  injectFault(kind: 'lost' | 'pipeline'): void {
    this.ctx.injectFault(kind);
  }

  /** Dispatches, submits and bytes read back since the last resetStats(). */
  get stats(): Readonly<GpuStats> {
    return { ...this.ctx.stats };
  }
  resetStats(): void {
    Object.assign(this.ctx.stats, { dispatches: 0, submits: 0, bytesRead: 0 });
  }

  // --- memory -------------------------------------------------------------------------------------

  /**
   * Weights stay in their stored dtype here, so each element costs its stored size. A software adapter's
   * memory is host RAM: we keep a quarter of it for activations, the KV cache, the OS and Node. WebGPU
   * does not expose a GPU's memory size, so on real GPUs only a failed allocation (RoseError 'LIMIT' at
   * upload) can tell.
   */
  checkCapacity(weights: readonly { dtype: DType; elements: number }[]): void {
    const bytes = weights.reduce((sum, x) => sum + bytesPerElement[x.dtype] * x.elements, 0);
    const host = this.opened?.software ? this.opened.hostMemoryBytes : undefined;
    if (host !== undefined && bytes > 0.75 * host) {
      throw new RoseError(
        'LIMIT',
        `this checkpoint needs ${gib(bytes)} GiB of weights, more than 3/4 of this machine's ${gib(host)} GiB (the software WebGPU adapter uses host memory)`,
        'use a smaller checkpoint or a machine with a GPU',
      );
    }
  }

  uploadWeight(hw: HostWeight): Weight {
    return this.ctx.uploadWeight(hw.name, hw.shape, hw.dtype, hw.bytes, this.maxBindingBytes);
  }
  alloc(shape: readonly number[]): Tensor {
    return this.ctx.allocTensor(shape);
  }
  write(x: Tensor, data: Float32Array): void {
    this.ctx.write(t(x), data);
  }
  async read(x: Tensor): Promise<Float32Array> {
    return new Float32Array(await this.ctx.readBack(t(x).buf, x.size * 4));
  }
  free(x: Tensor): void {
    this.ctx.free(t(x).buf);
  }
  flush(): void {
    this.ctx.submit();
  }
  /** Destroys the device and drops the GPU object, so that Node can exit. */
  destroy(): void {
    if (!this.opened) return;
    this.ctx.destroy();
    this.opened.gpu = undefined;
    this.opened = undefined;
  }

  // --- ops ----------------------------------------------------------------------------------------

  embedding(out: Tensor, table: Weight, ids: Int32Array): void {
    encodeEmbedding(this.ctx, t(out), w(table), ids);
  }
  rmsnorm(out: Tensor, x: Tensor, weight: Weight, eps: number): void {
    encodeRmsnorm(this.ctx, t(out), t(x), w(weight), eps);
  }
  matmul(out: Tensor, x: Tensor, weight: Weight, bias?: Weight): void {
    encodeMatmul(this.ctx, t(out), t(x), w(weight), bias && w(bias), this.noBias);
  }
  rope(x: Tensor, table: Tensor, positions: Int32Array, heads: number): void {
    encodeRope(this.ctx, t(x), t(table), positions, heads);
  }
  kvWrite(cache: Tensor, src: Tensor, slot0: number): void {
    encodeKvWrite(this.ctx, t(cache), t(src), slot0);
  }
  attention(out: Tensor, q: Tensor, kCache: Tensor, vCache: Tensor, padLen: Int32Array, slot0: number): void {
    encodeAttention(this.ctx, t(out), t(q), t(kCache), t(vCache), padLen, slot0);
  }
  swiglu(out: Tensor, gate: Tensor, up: Tensor): void {
    encodeSwiglu(this.ctx, t(out), t(gate), t(up));
  }
  addInPlace(x: Tensor, y: Tensor): void {
    encodeAddInPlace(this.ctx, t(x), t(y));
  }
  gatherRows(out: Tensor, x: Tensor, rows: Int32Array): void {
    encodeGatherRows(this.ctx, t(out), t(x), rows);
  }
  /** One dispatch; the host reads back only the 12-byte [argmax, sampled, non-finite row], never the logits. */
  async contrastSoftmax(probs: Tensor, logits: Tensor, params: ContrastParams): Promise<ContrastResult> {
    if (!(params.temperature > 0)) throw new RoseError('INPUT', `temperature must be > 0, got ${params.temperature}`);
    encodeContrastSoftmax(this.ctx, t(probs), t(logits), params, this.result);
    const [argmax, sampled, nonFinite] = new Uint32Array(await this.ctx.readBack(this.result, 12));
    return { argmax, sampled, nonFiniteRow: nonFinite === 0xffffffff ? -1 : nonFinite };
  }
}

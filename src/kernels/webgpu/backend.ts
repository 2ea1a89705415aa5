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
import type { Backend, DType, HostWeight, Tensor, Weight } from '../backend.ts';
import { bytesPerElement, gib } from '../backend.ts';
import { RoseError } from '../../errors.ts';
import { checkKernelChoice, describeChoice, type KernelChoice } from '../registry.ts';
import { VariantBackend } from '../variantBackend.ts';
import { GpuContext, type GpuStats, type GpuTensor, type GpuTimingMode, type GpuTimingRecord } from './context.ts';
import { openWebGpu, type AdapterSummary, type OpenedWebGpu, type OpenWebGpuOptions } from './device.ts';
import { type GpuEncoder, gpuVariants } from './variants.ts';

export interface WebGpuBackendOptions extends OpenWebGpuOptions {
  /**
   * Split weights into buffers of at most this many bytes (default: the device's
   * maxStorageBufferBindingSize). Tests set it low to exercise the split on small weights.
   */
  readonly maxBindingBytesOverride?: number;
  /** Forced variants by op (webgpu/variants.ts), e.g. { matmul: 3 }; default: auto. */
  readonly kernels?: KernelChoice;
}

const STORAGE_COPY = 0x80 | 0x4 | 0x8; // STORAGE | COPY_SRC | COPY_DST

const t = (x: Tensor): GpuTensor => x as GpuTensor;

export class WebGpuBackend extends VariantBackend<GpuEncoder> implements Backend {
  readonly name = 'webgpu' as const;
  readonly variants = gpuVariants;
  /** The adapter in a few words and in full (the CLI's banner line and its --json). */
  readonly adapter: AdapterSummary;
  private readonly ctx: GpuContext;
  private opened: OpenedWebGpu | undefined;
  private readonly maxBindingBytes: number;
  private readonly adapterDescription: string;
  /** What the variants encode into: the context, the no-bias binding, contrastSoftmax's result. */
  private readonly encoder: GpuEncoder;

  static async create(opts: WebGpuBackendOptions = {}): Promise<WebGpuBackend> {
    checkKernelChoice(gpuVariants, 'webgpu', opts.kernels ?? {}); // before a device exists: nothing to clean up
    return new WebGpuBackend(await openWebGpu(opts), opts);
  }

  private constructor(opened: OpenedWebGpu, opts: WebGpuBackendOptions) {
    super();
    this.opened = opened;
    this.adapter = opened.summary;
    this.ctx = new GpuContext(opened.device, opened.describe.split(';')[0]);
    this.maxBindingBytes = opts.maxBindingBytesOverride ?? opened.device.limits.maxStorageBufferBindingSize;
    this.adapterDescription =
      opened.describe + (opts.maxBindingBytesOverride ? `; weights split at ${opts.maxBindingBytesOverride} B` : '');
    this.forceKernels(opts.kernels ?? {});
    this.encoder = {
      backend: this,
      ctx: this.ctx,
      noBias: this.ctx.createBuf(16, STORAGE_COPY),
      result: this.ctx.createBuf(16, STORAGE_COPY),
    };
  }

  /** The adapter and its limits, then any forced kernel variants. */
  get description(): string {
    const kernels = describeChoice(gpuVariants, this.kernels);
    return this.adapterDescription + (kernels ? `; kernels ${kernels}` : '');
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

  /** Whether GPU time can be measured here: the adapter has timestamp queries ('timestamp-query'). */
  get canTime(): boolean {
    return this.ctx.canTime;
  }
  /** Times the GPU work of the ops called from now on (GpuTimingMode), until stopTiming. */
  startTiming(mode: GpuTimingMode): void {
    this.ctx.startTiming(mode);
  }
  /** The GPU time of every timed pass since startTiming, in order (after submitting what is recorded). */
  stopTiming(): Promise<GpuTimingRecord[]> {
    return this.ctx.stopTiming();
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
  uploadStacked(name: string, parts: readonly HostWeight[]): Weight {
    return this.ctx.uploadStacked(name, parts, this.maxBindingBytes);
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
  /** Destroys the device, so that Node can exit (device.ts holds the GPU object it came from). */
  destroy(): void {
    if (!this.opened) return;
    this.ctx.destroy();
    this.opened = undefined;
  }

  // --- ops: VariantBackend encodes each op's chosen variant (webgpu/variants.ts) -------------------

  protected variantContext(): GpuEncoder {
    return this.encoder;
  }
}

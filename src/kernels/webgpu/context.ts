/**
 * The recording context every WebGPU kernel wrapper dispatches through.
 *
 * - One command encoder, one open compute pass: ops are recorded in call order and submitted together
 *   on read / contrastSoftmax / flush. WebGPU orders dispatches inside a pass (each dispatch sees the
 *   storage writes of the previous ones), so no barriers are ours to place.
 * - One host arena per submit: every op's uniforms (a 64-byte slot, bound with a dynamic offset) and
 *   its host integers (ids, positions, pad counts) are appended to one ArrayBuffer, uploaded by a single
 *   queue.writeBuffer just before the submit. The same GPU buffer serves as the uniform binding and, read
 *   only, as the integer storage binding, so steady-state decoding creates no buffers.
 * - Pipelines are cached per (kernel, dtype, constants), bind groups per (layout, buffers): the dynamic
 *   uniform offset keeps per-op parameters out of the key.
 */
import type { DType, HostWeight, Tensor, Weight } from '../backend.ts';
import { bytesPerElement, numel, roundUp, stackRows } from '../backend.ts';
import { RoseError } from '../../errors.ts';
import { UNIFORM_SLOT_BYTES, type UniformFields, type UniformValues } from './uniforms.ts';
import type { KernelDtypes, WgslKernel } from './wgsl.ts';

/** WebGPU enum values, fixed by the spec; spelled out so Node needs no GPUBufferUsage global. */
const USAGE = { MAP_READ: 0x1, COPY_SRC: 0x4, COPY_DST: 0x8, UNIFORM: 0x40, STORAGE: 0x80, QUERY_RESOLVE: 0x200 } as const;
const MAP_MODE_READ = 0x1;
const STAGE_COMPUTE = 0x4;

/** Bytes of one op's uniform slot: uniforms() refuses a Params struct larger than this. */
const UNIFORM_BYTES = UNIFORM_SLOT_BYTES;
/** Host writes up to this size go through the arena (ordered in the encoder); larger ones flush first. */
const ARENA_WRITE_MAX = 64 * 1024;

export interface GpuBuf {
  readonly buffer: GPUBuffer;
  /** Stable id for bind-group cache keys. */
  readonly id: number;
  readonly bytes: number;
}

export class GpuTensor implements Tensor {
  readonly size: number;
  constructor(
    readonly shape: readonly number[],
    readonly buf: GpuBuf,
  ) {
    this.size = numel(shape);
  }
}

/**
 * Rows [row0, row0 + rows) of a weight, held in `buf` from its row `bufRow0` on (see
 * GpuContext.uploadWeight). bufRow0 is 0 except in a part of a stacked weight (uploadStacked), which
 * shares its buffers with the whole: kernels that read a chunk index rows from bufRow0.
 */
export interface WeightChunk {
  readonly buf: GpuBuf;
  readonly row0: number;
  readonly rows: number;
  readonly bufRow0: number;
}

export class GpuWeight implements Weight {
  constructor(
    readonly name: string,
    readonly shape: readonly number[],
    readonly dtype: DType,
    /** Split by rows (shape[0]) so that no binding exceeds the limit; usually a single chunk. */
    readonly chunks: readonly WeightChunk[],
    /** A stacked weight's parts, views of its rows (Weight.parts). */
    readonly parts?: readonly GpuWeight[],
  ) {}
  /** The whole weight as one binding, from its first element; for the norms, which never split nor stack. */
  single(op: string): GpuBuf {
    const c = this.singleChunk(op);
    if (c.bufRow0 !== 0) throw new Error(`${op}: weight ${this.name} is a part of a stacked weight; bind it with singleChunk()`);
    return c.buf;
  }
  /** The whole weight as one chunk (a bias, which may be a part of a stacked bias: mind bufRow0). */
  singleChunk(op: string): WeightChunk {
    if (this.chunks.length !== 1) {
      throw new RoseError('LIMIT', `${op}: weight ${this.name} is split across ${this.chunks.length} buffers`, 'raise the binding limit');
    }
    return this.chunks[0];
  }
  /** Rows [row0, row0 + rows) as a weight of their own, sharing this one's buffers (no copy). */
  view(name: string, row0: number, rows: number): GpuWeight {
    const chunks: WeightChunk[] = [];
    for (const c of this.chunks) {
      const from = Math.max(row0, c.row0);
      const to = Math.min(row0 + rows, c.row0 + c.rows);
      if (from < to) chunks.push({ buf: c.buf, row0: from - row0, rows: to - from, bufRow0: c.bufRow0 + from - c.row0 });
    }
    return new GpuWeight(name, [rows, ...this.shape.slice(1)], this.dtype, chunks);
  }
}

/**
 * Row ranges [row0, row0 + rows) over which each of several weights with the same rows lies within
 * one of its chunks: a kernel that reads row n of all of them (gate and up) binds one chunk of each
 * and dispatches once per range. Weights that never split give one range.
 */
export function alignedChunks(weights: readonly GpuWeight[]): { row0: number; rows: number; chunks: WeightChunk[] }[] {
  const rows = weights[0].shape[0];
  if (weights.some((w) => w.shape[0] !== rows)) throw new Error(`alignedChunks: ${weights.map((w) => w.name)} differ in rows`);
  const cuts = [...new Set(weights.flatMap((w) => w.chunks.map((c) => c.row0)).concat(rows))].sort((a, b) => a - b);
  return cuts.slice(0, -1).map((row0, i) => ({
    row0,
    rows: cuts[i + 1] - row0,
    chunks: weights.map((w) => w.chunks.find((c) => c.row0 <= row0 && row0 < c.row0 + c.rows)!),
  }));
}

export interface DispatchSpec<F extends UniformFields = UniformFields> {
  /** The kernel: its WGSL, uniform struct, storage bindings and workgroup size (webgpu/wgsl.ts). */
  readonly kernel: WgslKernel<F>;
  /** The dtypes that pick its weight / bias loaders; part of the pipeline key. */
  readonly dtypes?: KernelDtypes;
  /** The buffers of @binding(1..n), in order; 'ints' is the host-integer arena (with `ints`). */
  readonly buffers: readonly (GpuBuf | 'ints')[];
  readonly ints?: Int32Array;
  /** The uniform values by field name; given the element offset of `ints` in the arena when needed. */
  readonly params: UniformValues<F> | ((intBase: number) => UniformValues<F>);
  /** Workgroups: a linear count (folded into x·y past the per-dimension limit) or an explicit [x, y]. */
  readonly groups: number | readonly [number, number];
}

export interface GpuStats {
  dispatches: number;
  submits: number;
  bytesRead: number;
}

/**
 * What GPU timing measures (timestamp queries: the adapter's 'timestamp-query' feature).
 *   'passes':      each compute pass, as recorded (a decode step is one pass): the GPU time of the work itself.
 *   'dispatches':  each dispatch in a pass of its own, labelled by its kernel: time per kernel. Pass
 *                  boundaries add a little, so the sum is a bit above the 'passes' time of the same work.
 */
export type GpuTimingMode = 'passes' | 'dispatches';
export interface GpuTimingRecord {
  /** The kernel ('dispatches'), or 'pass'. */
  readonly label: string;
  readonly ms: number;
}
/** Timestamps per submit: two per pass, at most this many (WebGPU's largest query set). */
const QUERY_COUNT = 4096;

export interface GpuLimits {
  readonly maxStorageBufferBindingSize: number;
  readonly maxBufferSize: number;
  readonly maxComputeWorkgroupsPerDimension: number;
  readonly minUniformBufferOffsetAlignment: number;
  readonly maxStorageBuffersPerShaderStage: number;
}

export class GpuContext {
  readonly stats: GpuStats = { dispatches: 0, submits: 0, bytesRead: 0 };
  readonly limits: GpuLimits;
  private nextId = 1;
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  private readonly layouts = new Map<string, { group: GPUBindGroupLayout; pipeline: GPUPipelineLayout }>();
  private bindGroups = new Map<string, GPUBindGroup>();
  private encoder: GPUCommandEncoder | undefined;
  private pass: GPUComputePassEncoder | undefined;
  private arena!: GpuBuf;
  private arenaHost!: ArrayBuffer;
  private arenaUsed = 0;
  private readonly uniformAlign: number;
  private readonly staging = new Map<number, GPUBuffer[]>();
  /** Popped error scopes not yet looked at, tagged by what they guarded. */
  private readonly pendingErrors: Promise<{ error: GPUError | null; oom: boolean }>[] = [];
  private readonly toFree: GPUBuffer[] = [];
  private lostReason: string | undefined;
  private destroyed = false;
  private corruptNextPipeline = false;
  /** GPU timing: the mode, the query set, the labels of this recording's passes, the submits' records to come. */
  private timing: GpuTimingMode | undefined;
  private querySet: GPUQuerySet | undefined;
  private readonly timedPasses: string[] = [];
  private readonly timingsPending: Promise<GpuTimingRecord[]>[] = [];

  /** `adapter` names the adapter in every fault message, so a report says which device failed. */
  constructor(
    readonly device: GPUDevice,
    readonly adapter = 'WebGPU adapter',
  ) {
    const l = device.limits;
    this.limits = {
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxBufferSize: l.maxBufferSize,
      maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
      minUniformBufferOffsetAlignment: l.minUniformBufferOffsetAlignment,
      maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
    };
    this.uniformAlign = Math.max(16, l.minUniformBufferOffsetAlignment);
    this.growArena(256 * 1024);
    device.lost?.then((info) => {
      if (!this.destroyed) this.lostReason = `${info.reason}: ${info.message}`;
    });
  }

  // --- buffers --------------------------------------------------------------------------------------

  /**
   * A new buffer. Allocation failures become RoseError('LIMIT'): at once for mapped buffers (a
   * RangeError), else from an out-of-memory error scope, reported by the next read-back.
   */
  createBuf(bytes: number, usage: number, mapped = false): GpuBuf {
    const size = roundUp(Math.max(bytes, 16), 16);
    this.device.pushErrorScope('out-of-memory');
    let buffer: GPUBuffer;
    try {
      buffer = this.device.createBuffer({ size, usage, mappedAtCreation: mapped });
    } catch (e) {
      throw new RoseError(
        'LIMIT',
        `out of WebGPU memory allocating ${size} bytes: ${(e as Error).message}`,
        'use a smaller checkpoint, batch or context',
      );
    } finally {
      this.pendingErrors.push(this.device.popErrorScope().then((error) => ({ error, oom: true })));
    }
    return { buffer, id: this.nextId++, bytes: size };
  }

  /** A zero-filled f32 tensor (WebGPU zero-initialises new buffers). */
  allocTensor(shape: readonly number[]): GpuTensor {
    const bytes = numel(shape) * 4;
    const max = Math.min(this.limits.maxStorageBufferBindingSize, this.limits.maxBufferSize);
    if (bytes > max) {
      throw new RoseError(
        'LIMIT',
        `a tensor of shape [${shape}] needs ${bytes} bytes, over this device's ${max}-byte binding limit`,
        'use a shorter context or a smaller batch',
      );
    }
    return new GpuTensor(shape, this.createBuf(bytes, USAGE.STORAGE | USAGE.COPY_SRC | USAGE.COPY_DST));
  }

  /**
   * Uploads a weight in its stored dtype, split by rows (shape[0]) into buffers of at most
   * `maxBindingBytes` each: a large vocabulary's embedding / lm_head can exceed one binding. Each chunk
   * is its own buffer starting at element 0, so odd row lengths of half dtypes need no word alignment.
   */
  uploadWeight(name: string, shape: readonly number[], dtype: DType, bytes: Uint8Array, maxBindingBytes: number): GpuWeight {
    const eb = bytesPerElement[dtype];
    if (bytes.byteLength !== numel(shape) * eb) {
      throw new RoseError('CHECKPOINT', `weight ${name}: ${bytes.byteLength} bytes for shape [${shape}] in ${dtype}`);
    }
    const rows = shape.length ? shape[0] : 1;
    const rowBytes = (shape.length ? numel(shape.slice(1)) : 1) * eb;
    const limit = Math.floor(Math.min(maxBindingBytes, this.limits.maxStorageBufferBindingSize, this.limits.maxBufferSize) / 16) * 16;
    const rowsPer = rowBytes > 0 ? Math.floor(limit / rowBytes) : rows;
    if (rowsPer < 1) {
      throw new RoseError('LIMIT', `weight ${name}: one row is ${rowBytes} bytes, over the ${limit}-byte binding limit`);
    }
    const chunks: WeightChunk[] = [];
    for (let row0 = 0; row0 < rows || chunks.length === 0; row0 += rowsPer) {
      const n = Math.min(rowsPer, rows - row0);
      const part = bytes.subarray(row0 * rowBytes, (row0 + n) * rowBytes);
      const buf = this.createBuf(part.byteLength, USAGE.STORAGE | USAGE.COPY_DST, true);
      new Uint8Array(buf.buffer.getMappedRange()).set(part); // padded tail stays zero
      buf.buffer.unmap();
      chunks.push({ buf, row0, rows: n, bufRow0: 0 });
    }
    return new GpuWeight(name, shape, dtype, chunks);
  }

  /**
   * Uploads weights that share their row length as ONE weight, their rows stacked in order (e.g.
   * [wq; wk; wv]), split by rows like any weight, and returns it with each part as a view of its rows
   * (GpuWeight.parts): a fused kernel reads the whole through one binding, the other ops read each
   * part, and the memory is paid once. Parts of different dtypes are stacked in f32 (exact).
   */
  uploadStacked(name: string, parts: readonly HostWeight[], maxBindingBytes: number): GpuWeight {
    const { dtype, shape, bytes, starts } = stackRows(name, parts);
    const whole = this.uploadWeight(name, shape, dtype, bytes, maxBindingBytes);
    const views = parts.map((p, i) => whole.view(p.name, starts[i], p.shape.length ? p.shape[0] : 1));
    return new GpuWeight(name, shape, dtype, whole.chunks, views);
  }

  /**
   * Releases a buffer. Recorded-but-unsubmitted work may still use it, so while a recording is open it
   * is destroyed right after the next submit (destroying after submit is safe in WebGPU).
   */
  free(buf: GpuBuf): void {
    for (const key of [...this.bindGroups.keys()]) {
      if (key.split('|')[2].split(',').includes(String(buf.id))) this.bindGroups.delete(key);
    }
    if (this.encoder) this.toFree.push(buf.buffer);
    else buf.buffer.destroy();
  }

  /** Host f32 data into a tensor, in op order: small writes ride the arena, large ones flush first. */
  write(t: GpuTensor, data: Float32Array): void {
    if (data.length !== t.size) throw new RoseError('INPUT', `write: ${data.length} values for a tensor of ${t.size}`);
    const bytes = data.byteLength;
    if (bytes === 0) return;
    if (bytes <= ARENA_WRITE_MAX) {
      this.ensureArena(bytes + 16);
      const off = this.reserve(bytes, 16);
      new Float32Array(this.arenaHost, off, data.length).set(data);
      this.copy(this.arena, off, t.buf, 0, roundUp(bytes, 4));
    } else {
      this.submit();
      this.device.queue.writeBuffer(t.buf.buffer, 0, data.buffer, data.byteOffset, bytes);
    }
  }

  // --- recording ------------------------------------------------------------------------------------

  dispatch<F extends UniformFields>(spec: DispatchSpec<F>): void {
    const [gx, gy] = this.grid(spec.groups);
    if (gx === 0 || gy === 0) return;
    if (this.timing && 2 * this.timedPasses.length + 2 > QUERY_COUNT) this.submit(); // the query set is full
    const ints = spec.ints;
    this.ensureArena((ints ? roundUp(ints.byteLength, 16) + 16 : 0) + 2 * this.uniformAlign + UNIFORM_BYTES);
    let intBase = 0;
    if (ints?.length) {
      const off = this.reserve(ints.byteLength, 16);
      new Int32Array(this.arenaHost, off, ints.length).set(ints); // copied now: the caller may reuse its array
      intBase = off / 4;
    }
    const uOff = this.reserve(UNIFORM_BYTES, this.uniformAlign);
    const params = typeof spec.params === 'function' ? spec.params(intBase) : spec.params;
    spec.kernel.params.pack(new DataView(this.arenaHost, uOff, UNIFORM_BYTES), params);

    this.begin();
    const layout = this.layout(spec.kernel.access);
    const pipeline = this.pipeline(spec, layout.pipeline);
    const own = this.timing === 'dispatches'; // timed alone: a pass of its own, labelled by its kernel
    if (own) this.endPass();
    const pass = this.computePass(own ? spec.kernel.name : 'pass');
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, this.bindGroup(spec, layout.group), [uOff]);
    pass.dispatchWorkgroups(gx, gy);
    if (own) this.endPass();
    this.stats.dispatches++;
  }

  copy(src: GpuBuf, srcOff: number, dst: GpuBuf, dstOff: number, bytes: number): void {
    this.begin();
    this.endPass();
    this.encoder!.copyBufferToBuffer(src.buffer, srcOff, dst.buffer, dstOff, bytes);
  }

  /** Submits everything recorded so far (uploading the arena first). A no-op when nothing is pending. */
  submit(): void {
    if (!this.encoder) return;
    this.endPass();
    const readTimings = this.resolveTimings();
    const q = this.device.queue;
    if (this.arenaUsed > 0) q.writeBuffer(this.arena.buffer, 0, this.arenaHost, 0, roundUp(this.arenaUsed, 4));
    q.submit([this.encoder.finish()]);
    if (readTimings) this.timingsPending.push(readTimings());
    this.stats.submits++;
    this.pendingErrors.push(this.device.popErrorScope().then((error) => ({ error, oom: false })));
    this.encoder = undefined;
    this.arenaUsed = 0;
    for (const b of this.toFree.splice(0)) b.destroy();
  }

  /** Submits pending work and returns a copy of the first `bytes` of a buffer. */
  async readBack(src: GpuBuf, bytes: number): Promise<ArrayBuffer> {
    this.assertUsable();
    const size = roundUp(Math.max(bytes, 4), 4);
    const staging = this.takeStaging(size);
    this.copy(src, 0, staging.buf, 0, size);
    this.submit();
    try {
      await staging.buf.buffer.mapAsync(MAP_MODE_READ, 0, size);
      const out = staging.buf.buffer.getMappedRange(0, size).slice(0, bytes);
      staging.buf.buffer.unmap();
      this.stats.bytesRead += size;
      return out;
    } catch (e) {
      await this.checkErrors();
      this.assertUsable();
      throw new RoseError('BACKEND', `WebGPU read-back failed on ${this.adapter}: ${(e as Error).message}`);
    } finally {
      this.giveStaging(staging);
      await this.checkErrors();
    }
  }

  /** Throws the first validation error of the submits so far (shader compile errors included). */
  async checkErrors(): Promise<void> {
    const errs = await Promise.all(this.pendingErrors.splice(0));
    const e = errs.find((x) => x.error);
    if (e?.oom) throw new RoseError('LIMIT', `out of WebGPU memory: ${e.error!.message}`, 'use a smaller checkpoint, batch or context');
    // Dawn's messages span lines (WGSL diagnostics); the CLI prints errors as one line.
    if (e)
      throw new RoseError(
        'BACKEND',
        `WebGPU error on ${this.adapter}: ${e.error!.message.replace(/\s+/g, ' ').trim()}`,
        'this is a bug in a WebGPU kernel or the adapter: please report it; --backend cpu avoids it',
      );
  }

  // --- GPU timing -----------------------------------------------------------------------------------

  /** Whether this device can time work: the adapter offers 'timestamp-query' (device.ts requests it). */
  get canTime(): boolean {
    return this.device.features.has('timestamp-query');
  }

  /**
   * Times the work recorded from now on, until stopTiming (GpuTimingMode says what is timed).
   * RoseError('BACKEND') when the adapter has no timestamp queries.
   */
  startTiming(mode: GpuTimingMode): void {
    if (!this.canTime)
      throw new RoseError(
        'BACKEND',
        `${this.adapter} has no timestamp queries (the 'timestamp-query' feature)`,
        'GPU time needs an adapter with it',
      );
    this.submit(); // earlier work is not ours to time
    this.querySet ??= this.device.createQuerySet({ type: 'timestamp', count: QUERY_COUNT });
    this.timing = mode;
  }

  /** Submits what is recorded and returns the GPU time of every timed pass since startTiming, in order. */
  async stopTiming(): Promise<GpuTimingRecord[]> {
    this.submit();
    this.timing = undefined;
    const records = await Promise.all(this.timingsPending.splice(0));
    await this.checkErrors();
    return records.flat();
  }

  /** Resolves this recording's timestamps into a buffer; returns what reads them once submitted. */
  private resolveTimings(): (() => Promise<GpuTimingRecord[]>) | undefined {
    const labels = this.timedPasses.splice(0);
    if (labels.length === 0) return undefined;
    const bytes = 16 * labels.length; // two u64 timestamps per pass
    const resolved = this.createBuf(bytes, USAGE.QUERY_RESOLVE | USAGE.COPY_SRC);
    const read = this.createBuf(bytes, USAGE.MAP_READ | USAGE.COPY_DST);
    this.encoder!.resolveQuerySet(this.querySet!, 0, 2 * labels.length, resolved.buffer, 0);
    this.encoder!.copyBufferToBuffer(resolved.buffer, 0, read.buffer, 0, bytes);
    this.toFree.push(resolved.buffer);
    return async () => {
      await read.buffer.mapAsync(MAP_MODE_READ, 0, bytes);
      const ns = new BigUint64Array(read.buffer.getMappedRange(0, bytes).slice(0));
      read.buffer.unmap();
      read.buffer.destroy();
      // An end before its beginning (a counter reset, or an adapter's quirk) counts as 0, not as a huge number.
      return labels.map((label, i) => ({ label, ms: ns[2 * i + 1] > ns[2 * i] ? Number(ns[2 * i + 1] - ns[2 * i]) / 1e6 : 0 }));
    };
  }

  /**
   * Test hook for the fault paths: 'lost' destroys the device under the backend's feet (a real
   * device loss, as a driver reset would cause); 'pipeline' makes the next new pipeline fail to compile.
   */
  injectFault(kind: 'lost' | 'pipeline'): void {
    if (kind === 'lost') this.device.destroy();
    else {
      this.pipelines.clear();
      this.bindGroups.clear();
      this.corruptNextPipeline = true;
    }
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.encoder = undefined;
    this.pass = undefined;
    this.pipelines.clear();
    this.layouts.clear();
    this.bindGroups.clear();
    this.staging.clear();
    this.querySet?.destroy();
    this.device.destroy();
  }

  // --- internals ------------------------------------------------------------------------------------

  private assertUsable(): void {
    if (this.destroyed) throw new RoseError('BACKEND', 'the WebGPU backend was destroyed');
    if (this.lostReason)
      throw new RoseError(
        'BACKEND',
        `the WebGPU device on ${this.adapter} was lost (${this.lostReason})`,
        'run again, or use --backend cpu',
      );
  }

  private grid(groups: number | readonly [number, number]): [number, number] {
    if (typeof groups !== 'number') return [groups[0], groups[1]];
    const max = this.limits.maxComputeWorkgroupsPerDimension;
    if (groups <= max) return [groups, groups > 0 ? 1 : 0];
    const y = Math.ceil(groups / max);
    if (y > max) throw new RoseError('LIMIT', `${groups} workgroups exceed this device's ${max}² grid`);
    return [max, y]; // kernels fold (x, y) back into one index and skip the overshoot
  }

  private begin(): void {
    this.assertUsable();
    if (this.encoder) return;
    // One error scope per submit: validation errors (bad WGSL, bad bindings) surface at the next read.
    this.device.pushErrorScope('validation');
    this.encoder = this.device.createCommandEncoder();
  }

  /** The open compute pass, or a new one; timed (its two timestamps labelled `label`) while timing is on. */
  private computePass(label: string): GPUComputePassEncoder {
    if (this.pass) return this.pass;
    const i = this.timedPasses.length;
    if (this.timing) this.timedPasses.push(label);
    this.pass = this.encoder!.beginComputePass(
      this.timing
        ? { timestampWrites: { querySet: this.querySet!, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 } }
        : undefined,
    );
    return this.pass;
  }

  private endPass(): void {
    this.pass?.end();
    this.pass = undefined;
  }

  private growArena(bytes: number): void {
    this.arena?.buffer.destroy(); // safe after submit: WebGPU frees it once in-flight work is done
    this.arena = this.createBuf(bytes, USAGE.UNIFORM | USAGE.STORAGE | USAGE.COPY_DST | USAGE.COPY_SRC);
    this.arenaHost = new ArrayBuffer(this.arena.bytes);
    this.bindGroups.clear(); // they all reference the arena
  }

  /** Makes room for `bytes` more in the arena, submitting what is recorded if it is full. */
  private ensureArena(bytes: number): void {
    if (this.arenaUsed + bytes <= this.arena.bytes) return;
    this.submit();
    if (bytes > this.arena.bytes) this.growArena(roundUp(Math.max(bytes, 2 * this.arena.bytes), 4096));
  }

  private reserve(bytes: number, align: number): number {
    const off = roundUp(this.arenaUsed, align);
    this.arenaUsed = off + bytes;
    return off;
  }

  private layout(access: string): { group: GPUBindGroupLayout; pipeline: GPUPipelineLayout } {
    let l = this.layouts.get(access);
    if (!l) {
      // Compatibility mode may allow as few as 4 storage buffers per stage; attention binds 5.
      if (access.length > this.limits.maxStorageBuffersPerShaderStage) {
        throw new RoseError(
          'BACKEND',
          `a kernel needs ${access.length} storage buffers; this adapter allows ${this.limits.maxStorageBuffersPerShaderStage} per shader stage`,
          'use another adapter (ROSE_WEBGPU_ADAPTER) or the cpu backend',
        );
      }
      const entries: GPUBindGroupLayoutEntry[] = [
        { binding: 0, visibility: STAGE_COMPUTE, buffer: { type: 'uniform', hasDynamicOffset: true, minBindingSize: UNIFORM_BYTES } },
      ];
      for (const [i, a] of [...access].entries()) {
        entries.push({ binding: i + 1, visibility: STAGE_COMPUTE, buffer: { type: a === 'w' ? 'storage' : 'read-only-storage' } });
      }
      const group = this.device.createBindGroupLayout({ entries });
      l = { group, pipeline: this.device.createPipelineLayout({ bindGroupLayouts: [group] }) };
      this.layouts.set(access, l);
    }
    return l;
  }

  private pipeline<F extends UniformFields>(spec: DispatchSpec<F>, layout: GPUPipelineLayout): GPUComputePipeline {
    const { kernel, dtypes = {} } = spec;
    const key = `${kernel.name}|${dtypes.weight ?? ''}|${dtypes.bias ?? ''}|${dtypes.norm ?? ''}`;
    let p = this.pipelines.get(key);
    if (!p) {
      const code = this.corruptNextPipeline ? 'this is not WGSL' : kernel.code(dtypes);
      this.corruptNextPipeline = false;
      const module = this.device.createShaderModule({ label: key, code });
      p = this.device.createComputePipeline({ label: key, layout, compute: { module, entryPoint: 'main' } });
      this.pipelines.set(key, p);
    }
    return p;
  }

  private bindGroup<F extends UniformFields>(spec: DispatchSpec<F>, layout: GPUBindGroupLayout): GPUBindGroup {
    const { name, access } = spec.kernel;
    const bufs = spec.buffers.map((b) => (b === 'ints' ? this.arena : b));
    if (bufs.length !== access.length) throw new Error(`${name}: ${bufs.length} buffers for access '${access}'`);
    // WebGPU forbids a buffer bound writable and also bound elsewhere in the same dispatch.
    bufs.forEach((b, i) => {
      if (access[i] === 'w' && bufs.some((o, j) => j !== i && o.id === b.id)) {
        throw new RoseError('BACKEND', `${name}: an output tensor is also an input; the WebGPU backend needs distinct tensors`);
      }
    });
    const key = `${access}|${this.arena.id}|${bufs.map((b) => b.id).join(',')}`;
    let g = this.bindGroups.get(key);
    if (!g) {
      if (this.bindGroups.size > 4096) this.bindGroups = new Map(); // bounded; rebuilt on demand
      g = this.device.createBindGroup({
        layout,
        entries: [
          { binding: 0, resource: { buffer: this.arena.buffer, offset: 0, size: UNIFORM_BYTES } },
          ...bufs.map((b, i) => ({ binding: i + 1, resource: { buffer: b.buffer } })),
        ],
      });
      this.bindGroups.set(key, g);
    }
    return g;
  }

  private takeStaging(size: number): { buf: GpuBuf; size: number } {
    const pooled = roundUp(Math.max(size, 256), 256) <= 4096 ? 4096 : 2 ** Math.ceil(Math.log2(size));
    const buf = this.staging.get(pooled)?.pop();
    return { buf: buf ? { buffer: buf, id: 0, bytes: pooled } : this.createBuf(pooled, USAGE.MAP_READ | USAGE.COPY_DST), size: pooled };
  }

  private giveStaging(s: { buf: GpuBuf; size: number }): void {
    if (this.destroyed) return;
    const list = this.staging.get(s.size) ?? [];
    list.push(s.buf.buffer);
    this.staging.set(s.size, list);
  }
}

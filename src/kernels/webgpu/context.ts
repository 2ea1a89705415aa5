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
import type { DType, Tensor, Weight } from '../backend.ts';
import { bytesPerElement, numel, roundUp } from '../backend.ts';
import { RoseError } from '../../errors.ts';
import { UNIFORM_SLOT_BYTES, type UniformFields, type UniformValues } from './uniforms.ts';
import type { KernelDtypes, WgslKernel } from './wgsl.ts';

/** WebGPU enum values, fixed by the spec; spelled out so Node needs no GPUBufferUsage global. */
const USAGE = { MAP_READ: 0x1, COPY_SRC: 0x4, COPY_DST: 0x8, UNIFORM: 0x40, STORAGE: 0x80 } as const;
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

/** Rows [row0, row0 + rows) of a weight, in their own buffer (see GpuContext.uploadWeight). */
export interface WeightChunk {
  readonly buf: GpuBuf;
  readonly row0: number;
  readonly rows: number;
}

export class GpuWeight implements Weight {
  constructor(
    readonly name: string,
    readonly shape: readonly number[],
    readonly dtype: DType,
    /** Split by rows (shape[0]) so that no binding exceeds the limit; usually a single chunk. */
    readonly chunks: readonly WeightChunk[],
  ) {}
  /** The whole weight as one binding; for the small 1-D weights (norms, biases) that never split. */
  single(op: string): GpuBuf {
    if (this.chunks.length !== 1) {
      throw new RoseError('LIMIT', `${op}: weight ${this.name} is split across ${this.chunks.length} buffers`, 'raise the binding limit');
    }
    return this.chunks[0].buf;
  }
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
      chunks.push({ buf, row0, rows: n });
    }
    return new GpuWeight(name, shape, dtype, chunks);
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
    const pass = this.computePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, this.bindGroup(spec, layout.group), [uOff]);
    pass.dispatchWorkgroups(gx, gy);
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
    const q = this.device.queue;
    if (this.arenaUsed > 0) q.writeBuffer(this.arena.buffer, 0, this.arenaHost, 0, roundUp(this.arenaUsed, 4));
    q.submit([this.encoder.finish()]);
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

  private computePass(): GPUComputePassEncoder {
    this.pass ??= this.encoder!.beginComputePass();
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
    const key = `${kernel.name}|${dtypes.weight ?? ''}|${dtypes.bias ?? ''}`;
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

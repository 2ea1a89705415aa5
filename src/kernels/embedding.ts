/** Embedding gather: out (M, D) = table (V, D)[ids (M)]. Ids were range-checked by the model. */
import type { DType } from './backend.ts';
import { widenToF32 } from './cpu/dtype.ts';
import type { GpuContext, GpuTensor, GpuWeight } from './webgpu/context.ts';
import { uniforms } from './webgpu/uniforms.ts';
import { weightLoader, wgslKernel } from './webgpu/wgsl.ts';

export function embeddingCpu(out: Float32Array, table: Float32Array, ids: Int32Array, dim: number): void {
  // Stryker disable next-line EqualityOperator: m = ids.length copies table.subarray(NaN, NaN), empty, to offset out.length: allowed, and a no-op
  for (let m = 0; m < ids.length; m++) {
    out.set(table.subarray(ids[m] * dim, (ids[m] + 1) * dim), m * dim);
  }
}

/**
 * The same gather from a table kept in its stored dtype (the CPU's WebAssembly tier keeps f16/bf16 at
 * 2 bytes): `row(id)` gives the stored bytes of row id, widened here, exactly, to f32.
 */
export function embeddingStored(out: Float32Array, row: (id: number) => Uint8Array, dtype: DType, ids: Int32Array, dim: number): void {
  for (let m = 0; m < ids.length; m++) out.set(widenToF32(dtype, row(ids[m])), m * dim);
}

// --- WebGPU ---------------------------------------------------------------------------------------

/**
 * One thread per output element. A table split into row chunks (a big vocabulary over the binding
 * limit) is gathered by one dispatch per chunk; each writes only the rows whose id falls in it.
 */
const WG = 256; // threads per workgroup, one output element each
const params = uniforms({ n: 'u32', dim: 'u32', row0: 'u32', rows: 'u32', bufRow0: 'u32', idBase: 'u32' });

export const embeddingKernel = wgslKernel({
  name: 'embedding',
  params,
  access: 'wrr',
  workgroupSize: WG,
  code: ({ weight = 'f32' }) => /* wgsl */ `
${weightLoader(weight)}
${params.wgsl}
@group(0) @binding(1) var<storage, read_write> out: array<f32>; // (M, D)
@group(0) @binding(2) var<storage, read> w: array<W_T>;         // rows [row0, row0 + rows) of (V, D), from its row bufRow0
@group(0) @binding(3) var<storage, read> ints: array<i32>;      // ids (M) at idBase

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = (wid.x + wid.y * nwg.x) * ${WG}u + li;
  if (i >= p.n) { return; }
  let id = u32(ints[p.idBase + i / p.dim]) - p.row0; // wraps past rows for ids below row0
  if (id >= p.rows) { return; }                      // another chunk's dispatch has this row
  out[i] = loadW((p.bufRow0 + id) * p.dim + i % p.dim);
}`,
});

export function encodeEmbedding(ctx: GpuContext, out: GpuTensor, table: GpuWeight, ids: Int32Array): void {
  const dim = table.shape[table.shape.length - 1];
  const n = ids.length * dim;
  for (const c of table.chunks) {
    ctx.dispatch({
      kernel: embeddingKernel,
      dtypes: { weight: table.dtype },
      buffers: [out.buf, c.buf, 'ints'],
      ints: ids,
      params: (idBase) => ({ n, dim, row0: c.row0, rows: c.rows, bufRow0: c.bufRow0, idBase }),
      groups: Math.ceil(n / WG),
    });
  }
}

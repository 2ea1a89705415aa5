/** Row gather: out (R, D) = x (M, D)[rows (R)]. Picks the positions whose logits are needed. */
import type { GpuContext, GpuTensor } from './webgpu/context.ts';
import { uniforms } from './webgpu/uniforms.ts';
import { wgslKernel } from './webgpu/wgsl.ts';

export function gatherRowsCpu(out: Float32Array, x: Float32Array, rows: Int32Array, dim: number): void {
  // Stryker disable next-line EqualityOperator: r = rows.length copies x.subarray(NaN, NaN), empty, to offset out.length: allowed, and a no-op
  for (let r = 0; r < rows.length; r++) out.set(x.subarray(rows[r] * dim, (rows[r] + 1) * dim), r * dim);
}

// --- WebGPU ---------------------------------------------------------------------------------------

const WG = 256; // threads per workgroup, one output element each
const params = uniforms({ n: 'u32', dim: 'u32', rowBase: 'u32' });

export const gatherRowsKernel = wgslKernel({
  name: 'gatherRows',
  params,
  access: 'wrr',
  workgroupSize: WG,
  code: () => /* wgsl */ `
${params.wgsl}
@group(0) @binding(1) var<storage, read_write> out: array<f32>; // (R, D)
@group(0) @binding(2) var<storage, read> x: array<f32>;         // (M, D)
@group(0) @binding(3) var<storage, read> ints: array<i32>;      // rows (R) at rowBase

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = (wid.x + wid.y * nwg.x) * ${WG}u + li;
  if (i >= p.n) { return; }
  out[i] = x[u32(ints[p.rowBase + i / p.dim]) * p.dim + i % p.dim];
}`,
});

export function encodeGatherRows(ctx: GpuContext, out: GpuTensor, x: GpuTensor, rows: Int32Array): void {
  const dim = x.shape[x.shape.length - 1];
  const n = rows.length * dim;
  ctx.dispatch({
    kernel: gatherRowsKernel,
    buffers: [out.buf, x.buf, 'ints'],
    ints: rows,
    params: (rowBase) => ({ n, dim, rowBase }),
    groups: Math.ceil(n / WG),
  });
}

/** Residual add: x (M, D) += y (M, D). */
import type { GpuContext, GpuTensor } from './webgpu/context.ts';
import { uniforms } from './webgpu/uniforms.ts';
import { wgslKernel } from './webgpu/wgsl.ts';

export function addInPlaceCpu(x: Float32Array, y: Float32Array): void {
  // Stryker disable next-line EqualityOperator: i = x.length adds y[length] (undefined) into x[length], past the end: a typed array ignores it
  for (let i = 0; i < x.length; i++) x[i] += y[i];
}

// --- WebGPU ---------------------------------------------------------------------------------------

/** Threads per workgroup, one element each. */
const WG = 256;
const params = uniforms({ n: 'u32' });

export const addInPlaceKernel = wgslKernel({
  name: 'addInPlace',
  params,
  access: 'wr',
  workgroupSize: WG,
  code: () => /* wgsl */ `
${params.wgsl}
@group(0) @binding(1) var<storage, read_write> x: array<f32>; // (M, D)
@group(0) @binding(2) var<storage, read> y: array<f32>;       // (M, D)

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = (wid.x + wid.y * nwg.x) * ${WG}u + li;
  if (i < p.n) { x[i] += y[i]; }
}`,
});

export function encodeAddInPlace(ctx: GpuContext, x: GpuTensor, y: GpuTensor): void {
  ctx.dispatch({
    kernel: addInPlaceKernel,
    buffers: [x.buf, y.buf],
    params: { n: x.size },
    groups: Math.ceil(x.size / WG),
  });
}

/** SwiGLU gate of the Llama MLP: out (M, F) = silu(gate) ⊙ up, silu(g) = g / (1 + e^−g). */
import type { GpuContext, GpuTensor } from './webgpu/context.ts';
import { uniforms } from './webgpu/uniforms.ts';
import { wgslKernel } from './webgpu/wgsl.ts';

export function swigluCpu(out: Float32Array, gate: Float32Array, up: Float32Array): void {
  // Stryker disable next-line EqualityOperator: i = out.length writes out[length], past the end: a typed array ignores it
  for (let i = 0; i < out.length; i++) out[i] = (gate[i] / (1 + Math.exp(-gate[i]))) * up[i];
}

// --- WebGPU ---------------------------------------------------------------------------------------

/**
 * Elementwise. exp's argument is clamped: past 80 the sigmoid is 0 to f32 precision anyway, and WGSL
 * leaves exp's overflow undefined rather than +inf.
 */
const WG = 256; // threads per workgroup, one element each
const params = uniforms({ n: 'u32' });

export const swigluKernel = wgslKernel({
  name: 'swiglu',
  params,
  access: 'wrr',
  workgroupSize: WG,
  code: () => /* wgsl */ `
${params.wgsl}
@group(0) @binding(1) var<storage, read_write> out: array<f32>; // (M, F)
@group(0) @binding(2) var<storage, read> gate: array<f32>;      // (M, F)
@group(0) @binding(3) var<storage, read> up: array<f32>;        // (M, F)

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = (wid.x + wid.y * nwg.x) * ${WG}u + li;
  if (i >= p.n) { return; }
  let g = gate[i];
  out[i] = (g / (1.0 + exp(min(-g, 80.0)))) * up[i];
}`,
});

export function encodeSwiglu(ctx: GpuContext, out: GpuTensor, gate: GpuTensor, up: GpuTensor): void {
  ctx.dispatch({
    kernel: swigluKernel,
    buffers: [out.buf, gate.buf, up.buf],
    params: { n: out.size },
    groups: Math.ceil(out.size / WG),
  });
}

/**
 * RMSNorm, row by row: out (M, D) = w (D) ⊙ x / sqrt(mean(x²) + eps).
 * transformers computes the sum of squares in f32 even in half models; we accumulate in f64 on the
 * CPU (JS numbers), which is at least as accurate.
 */
import type { GpuContext, GpuTensor, GpuWeight } from './webgpu/context.ts';
import { uniforms } from './webgpu/uniforms.ts';
import { sum, weightLoader, wgslKernel, workgroupReduce } from './webgpu/wgsl.ts';

export function rmsnormCpu(out: Float32Array, x: Float32Array, w: Float32Array, dim: number, eps: number): void {
  // Stryker disable next-line EqualityOperator: row = M reads past x's end (NaN) and writes past out's end: a typed array ignores both
  for (let row = 0; row * dim < x.length; row++) {
    const off = row * dim;
    let sumSq = 0;
    for (let i = 0; i < dim; i++) sumSq += x[off + i] * x[off + i];
    const scale = 1 / Math.sqrt(sumSq / dim + eps);
    // Stryker disable next-line EqualityOperator: i = dim writes NaN (w[dim] is undefined) into the next row's first element, which that row overwrites; past the end on the last row
    for (let i = 0; i < dim; i++) out[off + i] = w[i] * (x[off + i] * scale);
  }
}

// --- WebGPU ---------------------------------------------------------------------------------------

/** Threads per row (one workgroup per row). */
const WG = 256;
const params = uniforms({ rows: 'u32', dim: 'u32', eps: 'f32' });

/**
 * One workgroup per row: each thread sums the squares of a strided slice in f32, a tree reduction in
 * workgroup memory adds the WG partial sums, then every thread scales its slice.
 */
export const rmsnormKernel = wgslKernel({
  name: 'rmsnorm',
  params,
  access: 'wrr',
  workgroupSize: WG,
  code: ({ weight = 'f32' }) => /* wgsl */ `
${weightLoader(weight)}
${params.wgsl}
@group(0) @binding(1) var<storage, read_write> out: array<f32>; // (M, D)
@group(0) @binding(2) var<storage, read> x: array<f32>;         // (M, D)
@group(0) @binding(3) var<storage, read> w: array<W_T>;         // (D)
${workgroupReduce('reduceSum', 'f32', WG, sum, { calledOnce: true })}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.rows) { return; } // uniform: the whole workgroup leaves together
  let off = row * p.dim;
  var s = 0.0;
  for (var i = li; i < p.dim; i += ${WG}u) { let v = x[off + i]; s += v * v; }
  let scale = 1.0 / sqrt(reduceSum(li, s) / f32(p.dim) + p.eps);
  for (var i = li; i < p.dim; i += ${WG}u) { out[off + i] = loadW(i) * (x[off + i] * scale); }
}`,
});

export function encodeRmsnorm(ctx: GpuContext, out: GpuTensor, x: GpuTensor, w: GpuWeight, eps: number): void {
  const dim = x.shape[x.shape.length - 1];
  const rows = x.size / dim;
  ctx.dispatch({
    kernel: rmsnormKernel,
    dtypes: { weight: w.dtype },
    buffers: [out.buf, x.buf, w.single('rmsnorm')],
    params: { rows, dim, eps },
    groups: rows,
  });
}

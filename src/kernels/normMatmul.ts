/**
 * RMSNorm then a linear layer: out (M, N) = rmsnorm(x; norm, eps) · wᵀ [+ bias]. The model's head
 * (the final norm and lm_head) is one.
 *
 * v1, on every backend, is the composition: rmsnorm into a temporary, then matmul. The fused decode
 * kernel (v2 on WebGPU) reads x through the norm instead: each workgroup recomputes the rows' RMS
 * (K·M multiply-adds, next to the ROWS·K weights it reads) and never writes the normalised rows.
 */
import type { Backend, Tensor, Weight } from './backend.ts';
import { scratchTensor } from './scratch.ts';
import type { GpuBuf, GpuContext, GpuTensor, GpuWeight } from './webgpu/context.ts';
import { uniforms } from './webgpu/uniforms.ts';
import { type KernelDtypes, normedRows, weightLoader, wgslKernel, workgroupLaneSums } from './webgpu/wgsl.ts';

/** v1: rmsnorm, then matmul, each the backend's own op (its chosen variant). */
export function normMatmulComposed(be: Backend, out: Tensor, x: Tensor, norm: Weight, eps: number, w: Weight, bias?: Weight): void {
  // Stryker disable next-line StringLiteral: a role only keys this op's temporary in kernels/scratch.ts; any other name the op does not use is the same
  const xn = scratchTensor(be, 'normed', x.shape); // (M, K)
  be.rmsnorm(xn, x, norm, eps);
  be.matmul(out, xn, w, bias);
}

// --- WebGPU ---------------------------------------------------------------------------------------

/** Threads per workgroup of the fused decode kernel (normMatvecSource). */
export const NORM_MATVEC_WG = 64;
/** Weight rows per workgroup: the norm is computed once for them, and each normalised x serves ROWS rows. */
export const NORM_MATVEC_ROWS = 4;
/** The fused kernel's uniforms: the matvec's shape and chunk, the bias's offset, the norm's eps. */
export const normMatvecFields = {
  M: 'u32',
  N: 'u32',
  K: 'u32',
  n0: 'u32',
  rows: 'u32',
  wRow0: 'u32',
  hasBias: 'u32',
  bias0: 'u32',
  eps: 'f32',
} as const;
const params = uniforms(normMatvecFields);

/**
 * The fused decode kernel's source, shared with normQkv (which only routes its outputs elsewhere):
 * one workgroup per ROWS weight rows of a chunk. Its threads first reduce the sum of squares of the
 * M rows of x, then stride over K, each normalising x[·, k] as rmsnorm would (normed) and applying it
 * to the ROWS weight elements w[n, k]: a mat4x4 of accumulators, column r for row first + r, lane m
 * for activation row m, tree-reduced at the end. `outputs` declares the output bindings 1..j, and
 * `store(m, n, value)` writes output row n (of the whole weight, chunk offset included) of x's row m.
 */
export function normMatvecSource(
  dtypes: KernelDtypes,
  outputs: string,
  store: (m: string, n: string, value: string) => string,
  uniformsWgsl: string,
): string {
  const { weight = 'f32', bias = 'f32', norm = 'f32' } = dtypes;
  const first = outputs.match(/@binding\((\d+)\)/g)!.length + 1; // bindings after the outputs
  return /* wgsl */ `
${weightLoader(weight)}${weightLoader(bias, 'loadBias', 'bias', 'B_T')}
${uniformsWgsl}
${outputs}
@group(0) @binding(${first}) var<storage, read> x: array<f32>;         // (M, K)
@group(0) @binding(${first + 1}) var<storage, read> normW: array<N_T>;     // (K)
@group(0) @binding(${first + 2}) var<storage, read> w: array<W_T>;         // rows [n0, n0 + rows) of (N, K), from its row wRow0
@group(0) @binding(${first + 3}) var<storage, read> bias: array<B_T>;      // (N), from its element bias0
${normedRows(norm, NORM_MATVEC_WG)}
${workgroupLaneSums('rowSums', NORM_MATVEC_WG)}
@compute @workgroup_size(${NORM_MATVEC_WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let first = (wid.x + wid.y * nwg.x) * ${NORM_MATVEC_ROWS}u; // this workgroup's first row, within the chunk
  if (first >= p.rows) { return; }
  let s = normScale(li);
  var acc: mat4x4f; // acc[r][m]
  var row: array<u32, ${NORM_MATVEC_ROWS}>; // element 0 of each row's weights; past the chunk, its last row again (dropped below)
  for (var r = 0u; r < ${NORM_MATVEC_ROWS}u; r++) { row[r] = (p.wRow0 + min(first + r, p.rows - 1u)) * p.K; }
  for (var k = li; k < p.K; k += ${NORM_MATVEC_WG}u) {
    let a = normed(k, s);
${Array.from({ length: NORM_MATVEC_ROWS }, (_, r) => `    acc[${r}] += loadW(row[${r}] + k) * a;`).join('\n')}
  }
  let total = rowSums(li, acc); // thread li: row first + li / 4 of x's row li % 4
  let r = li / 4u;
  let m = li % 4u;
  if (r < ${NORM_MATVEC_ROWS}u && m < p.M && first + r < p.rows) {
    let n = p.n0 + first + r;
    var b = 0.0;
    if (p.hasBias != 0u) { b = loadBias(p.bias0 + n); }
    ${store('m', 'n', 'total + b')}
  }
}`;
}

/** v2 for normMatmul: the fused kernel writing one output, out (M, N). */
export const normMatvecKernel = wgslKernel({
  name: 'normMatvec',
  params,
  access: 'wrrrr',
  workgroupSize: NORM_MATVEC_WG,
  code: (dtypes) =>
    normMatvecSource(
      dtypes,
      '@group(0) @binding(1) var<storage, read_write> out: array<f32>; // (M, N)',
      (m, n, value) => `out[${m} * p.N + ${n}] = ${value};`,
      params.wgsl,
    ),
});
if (NORM_MATVEC_ROWS > 4) throw new Error('normMatvec: a mat4x4 holds the accumulators of at most 4 rows');

export function encodeNormMatvec(
  ctx: GpuContext,
  out: GpuTensor,
  x: GpuTensor,
  norm: GpuWeight,
  eps: number,
  w: GpuWeight,
  bias: GpuWeight | undefined,
  noBias: GpuBuf,
): void {
  const [N, K] = w.shape;
  const M = x.size / K;
  const b = bias?.singleChunk('normMatmul bias');
  for (const c of w.chunks) {
    ctx.dispatch({
      kernel: normMatvecKernel,
      dtypes: { weight: w.dtype, bias: bias?.dtype ?? 'f32', norm: norm.dtype },
      buffers: [out.buf, x.buf, norm.single('normMatmul'), c.buf, b?.buf ?? noBias],
      params: { M, N, K, n0: c.row0, rows: c.rows, wRow0: c.bufRow0, hasBias: b !== undefined, bias0: b?.bufRow0 ?? 0, eps },
      groups: Math.ceil(c.rows / NORM_MATVEC_ROWS),
    });
  }
}

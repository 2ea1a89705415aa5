/**
 * Linear layer: out (M, N) = x (M, K) · wᵀ + bias, with w stored as nn.Linear's (N, K).
 *
 * The loop runs over weight rows outermost, so each weight row is read once for all M activation
 * rows: at decode time M is the batch (2 for ROSE), and reading the weights is the whole cost.
 */
import type { GpuBuf, GpuContext, GpuTensor, GpuWeight } from './webgpu/context.ts';
import { uniforms } from './webgpu/uniforms.ts';
import type { DType } from './backend.ts';
import { sum, weightLoader, wgslKernel, workgroupReduce } from './webgpu/wgsl.ts';

export function matmulCpu(
  out: Float32Array, // (M, N)
  x: Float32Array, // (M, K)
  w: Float32Array, // (N, K)
  bias: Float32Array | undefined, // (N)
  M: number,
  N: number,
  K: number,
  n0 = 0, // output rows [n0, n1) only: the worker pool splits N across threads
  n1 = N,
): void {
  for (let n = n0; n < n1; n++) {
    const wOff = n * K;
    // Stryker disable next-line EqualityOperator: m = M reads past x's end (NaN) and writes past out's end, which a typed array ignores
    for (let m = 0; m < M; m++) {
      const xOff = m * K;
      let acc = 0;
      for (let k = 0; k < K; k++) acc += x[xOff + k] * w[wOff + k];
      out[m * N + n] = bias ? acc + bias[n] : acc;
    }
  }
}

// --- WebGPU ---------------------------------------------------------------------------------------
//
// Three kernels, numbered like the CPU variants (webgpu/variants.ts): v1 the plain reference, v2 the
// decode matvec, v3 the tiled prefill matmul. Each dispatches once per weight chunk (a weight over the
// binding limit is split by output rows) and writes rows [n0, n0 + rows) of out.

// wRow0: the chunk's first row in its buffer (a part of a stacked weight starts mid-buffer); bias0 the
// same for the bias; accumulate: out += the product (matmulAdd's residual add, in the epilogue).
const params = uniforms({
  M: 'u32',
  N: 'u32',
  K: 'u32',
  n0: 'u32',
  rows: 'u32',
  hasBias: 'u32',
  wRow0: 'u32',
  bias0: 'u32',
  accumulate: 'u32',
});

/** The bindings every matmul kernel declares (binding 0 is `p`). */
const bindings = (w: DType, b: DType): string => /* wgsl */ `
${weightLoader(w)}${weightLoader(b, 'loadBias', 'bias', 'B_T')}
${params.wgsl}
@group(0) @binding(1) var<storage, read_write> out: array<f32>; // (M, N)
@group(0) @binding(2) var<storage, read> x: array<f32>;         // (M, K)
@group(0) @binding(3) var<storage, read> w: array<W_T>;         // rows [n0, n0 + rows) of (N, K), from its row wRow0
@group(0) @binding(4) var<storage, read> bias: array<B_T>;      // (N), from its element bias0

/** Writes one output, adding it to what out holds when accumulating (fl(out + fl(acc + b)), as matmul then addInPlace). */
fn store(o: u32, acc: f32, n: u32) {
  var r = acc;
  if (p.hasBias != 0u) { r += loadBias(p.bias0 + p.n0 + n); }
  if (p.accumulate != 0u) { r = out[o] + r; }
  out[o] = r;
}`;

/** v1: threads per workgroup, one output each. */
const REF_WG = 256;

/**
 * v1, the reference: one thread per output (m, n), summing over k in order, as matmulCpu does (in
 * f32). Every weight row is read once per activation row, from memory or cache: simple, not fast.
 */
export const matmulRefKernel = wgslKernel({
  name: 'matmulRef',
  params,
  access: 'wrrr',
  workgroupSize: REF_WG,
  code: ({ weight = 'f32', bias = 'f32' }) => /* wgsl */ `${bindings(weight, bias)}

@compute @workgroup_size(${REF_WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = (wid.x + wid.y * nwg.x) * ${REF_WG}u + li; // m · rows + n
  if (i >= p.M * p.rows) { return; }
  let m = i / p.rows;
  let n = i % p.rows; // row within this chunk
  var acc = 0.0;
  for (var k = 0u; k < p.K; k++) { acc += x[m * p.K + k] * loadW((p.wRow0 + n) * p.K + k); }
  store(m * p.N + p.n0 + n, acc, n);
}`,
});

/** v2: threads per weight row. */
const MATVEC_WG = 64;

/**
 * v2, the decode matvec: one workgroup per weight row n. Its threads stride over K, each reading every
 * weight element ONCE and applying it to all M ≤ 4 activation rows (a vec4 of accumulators), so the
 * weight (the whole cost at decode) is read once per step, not once per sequence.
 */
export const matvecKernel = wgslKernel({
  name: 'matvec',
  params,
  access: 'wrrr',
  workgroupSize: MATVEC_WG,
  code: ({ weight = 'f32', bias = 'f32' }) => /* wgsl */ `${bindings(weight, bias)}
${workgroupReduce('reduceSum4', 'vec4f', MATVEC_WG, sum, { calledOnce: true })}
@compute @workgroup_size(${MATVEC_WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let n = wid.x + wid.y * nwg.x; // row within this chunk
  if (n >= p.rows) { return; }
  let last = p.M - 1u;           // rows past M re-read row M-1 (in bounds) and are dropped at the end
  var acc = vec4f(0.0);
  for (var k = li; k < p.K; k += ${MATVEC_WG}u) {
    let xs = vec4f(x[k], x[min(1u, last) * p.K + k], x[min(2u, last) * p.K + k], x[min(3u, last) * p.K + k]);
    acc += loadW((p.wRow0 + n) * p.K + k) * xs;
  }
  let total = reduceSum4(li, acc);
  if (li < p.M) { store(li * p.N + p.n0 + n, total[li], n); }
}`,
});

/** v3: an output tile is TILE × TILE, computed by SIDE × SIDE threads (4 × 4 outputs each, a vec4 per row). */
const TILE = 64;
const SIDE = 16;
/** v3: columns of K staged per step. */
const TK = 16;

/**
 * v3, the prefill matmul: TILE×TILE output tiles, SIDE×SIDE threads, each thread owning a 4×4 block of
 * outputs (rows lid.y + SIDE·i, columns lid.x + SIDE·j). Per TK-wide step of K the workgroup stages a
 * TILE×TK slice of x and of w in workgroup memory: each global element is read once per tile rather
 * than once per output, and each barrier pays for 16 multiply-adds per thread per k instead of one.
 * Each output still sums over k in order, so the error bound is the matvec's.
 */
export const matmulTiledKernel = wgslKernel({
  name: 'matmulTiled',
  params,
  access: 'wrrr',
  workgroupSize: [SIDE, SIDE],
  code: ({ weight = 'f32', bias = 'f32' }) => /* wgsl */ `${bindings(weight, bias)}
var<workgroup> xs: array<array<f32, ${TK}>, ${TILE}>; // [m][k]
var<workgroup> ws: array<array<f32, ${TK}>, ${TILE}>; // [n][k]

@compute @workgroup_size(${SIDE}, ${SIDE})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(local_invocation_index) li: u32) {
  let tm = wid.y * ${TILE}u; // tile origin: activation row
  let tn = wid.x * ${TILE}u; // tile origin: weight row within this chunk
  var acc: array<vec4f, 4>; // acc[i][j]: row tm + lid.y + ${SIDE}i, column tn + lid.x + ${SIDE}j
  for (var k0 = 0u; k0 < p.K; k0 += ${TK}u) {
    for (var e = li; e < ${TILE * TK}u; e += ${SIDE * SIDE}u) {
      let r = e / ${TK}u;
      let k = k0 + e % ${TK}u;
      var xv = 0.0;
      var wv = 0.0;
      if (tm + r < p.M && k < p.K) { xv = x[(tm + r) * p.K + k]; }
      if (tn + r < p.rows && k < p.K) { wv = loadW((p.wRow0 + tn + r) * p.K + k); }
      xs[r][e % ${TK}u] = xv;
      ws[r][e % ${TK}u] = wv;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < ${TK}u; kk++) {
      let b = vec4f(ws[lid.x][kk], ws[lid.x + ${SIDE}u][kk], ws[lid.x + ${2 * SIDE}u][kk], ws[lid.x + ${3 * SIDE}u][kk]);
      for (var i = 0u; i < 4u; i++) { acc[i] += xs[lid.y + ${SIDE}u * i][kk] * b; }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    let m = tm + lid.y + ${SIDE}u * i;
    for (var j = 0u; j < 4u; j++) {
      let n = tn + lid.x + ${SIDE}u * j;
      if (m < p.M && n < p.rows) { store(m * p.N + p.n0 + n, acc[i][j], n); }
    }
  }
}`,
});
if (TILE !== 4 * SIDE) throw new Error('matmulTiled: a thread owns 4 × 4 outputs (vec4 accumulators), so TILE = 4·SIDE');

/**
 * The host side of a matmul kernel: one dispatch per weight chunk, over `grid(chunk rows, M)`
 * workgroups. `accumulate` adds the product to out instead of overwriting it (matmulAdd).
 */
function matmulEncoder(kernel: typeof matvecKernel, grid: (rows: number, M: number) => number | readonly [number, number]) {
  return (
    ctx: GpuContext,
    out: GpuTensor,
    x: GpuTensor,
    w: GpuWeight,
    bias: GpuWeight | undefined,
    noBias: GpuBuf,
    accumulate = false,
  ): void => {
    const [N, K] = w.shape;
    const M = x.size / K;
    if (M === 0) return;
    const b = bias?.singleChunk('matmul bias');
    for (const c of w.chunks) {
      ctx.dispatch({
        kernel,
        dtypes: { weight: w.dtype, bias: bias?.dtype ?? 'f32' },
        buffers: [out.buf, x.buf, c.buf, b?.buf ?? noBias],
        params: { M, N, K, n0: c.row0, rows: c.rows, hasBias: b !== undefined, wRow0: c.bufRow0, bias0: b?.bufRow0 ?? 0, accumulate },
        groups: grid(c.rows, M),
      });
    }
  };
}

export const encodeMatmulRef = matmulEncoder(matmulRefKernel, (rows, M) => Math.ceil((rows * M) / REF_WG));
export const encodeMatvec = matmulEncoder(matvecKernel, (rows) => rows);
export const encodeMatmulTiled = matmulEncoder(matmulTiledKernel, (rows, M) => [Math.ceil(rows / TILE), Math.ceil(M / TILE)]);

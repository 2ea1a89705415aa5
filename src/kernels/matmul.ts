/**
 * Linear layer: out (M, N) = x (M, K) · wᵀ + bias, with w stored as nn.Linear's (N, K).
 *
 * The loop runs over weight rows outermost, so each weight row is read once for all M activation
 * rows: at decode time M is the batch (2 for ROSE), and reading the weights is the whole cost.
 */
import type { GpuBuf, GpuContext, GpuTensor, GpuWeight } from './webgpu/context.ts';
import { weightLoader } from './webgpu/wgsl.ts';

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
    for (let m = 0; m < M; m++) {
      const xOff = m * K;
      let acc = 0;
      for (let k = 0; k < K; k++) acc += x[xOff + k] * w[wOff + k];
      out[m * N + n] = bias ? acc + bias[n] : acc;
    }
  }
}

// --- WebGPU ---------------------------------------------------------------------------------------

/** Up to this many activation rows take the matvec path (decode: ROSE's batch of two). */
export const MATVEC_MAX_M = 4;

/**
 * Decode matvec: one workgroup per weight row n. Its 64 threads stride over K, each reading every
 * weight element ONCE and applying it to all M ≤ 4 activation rows (a vec4 of accumulators), so the
 * weight (the whole cost at decode) is read once per step, not once per sequence.
 */
export const matvecWgsl = /* wgsl */ `
struct Params { M: u32, N: u32, K: u32, n0: u32, rows: u32, hasBias: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>; // (M, N)
@group(0) @binding(2) var<storage, read> x: array<f32>;         // (M, K)
@group(0) @binding(3) var<storage, read> w: array<W_T>;         // rows [n0, n0 + rows) of (N, K)
@group(0) @binding(4) var<storage, read> bias: array<B_T>;      // (N)
var<workgroup> red: array<vec4f, 64>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let n = wid.x + wid.y * nwg.x; // row within this chunk
  if (n >= p.rows) { return; }
  let last = p.M - 1u;           // rows past M re-read row M-1 (in bounds) and are dropped at the end
  var acc = vec4f(0.0);
  for (var k = li; k < p.K; k += 64u) {
    let xs = vec4f(x[k], x[min(1u, last) * p.K + k], x[min(2u, last) * p.K + k], x[min(3u, last) * p.K + k]);
    acc += loadW(n * p.K + k) * xs;
  }
  red[li] = acc;
  for (var s = 32u; s > 0u; s >>= 1u) {
    workgroupBarrier();
    if (li < s) { red[li] += red[li + s]; }
  }
  workgroupBarrier();
  if (li < p.M) {
    var b = 0.0;
    if (p.hasBias != 0u) { b = loadBias(p.n0 + n); }
    out[li * p.N + p.n0 + n] = red[0][li] + b;
  }
}`;

/**
 * Prefill matmul: 64×64 output tiles, 16×16 threads, each thread owning a 4×4 block of outputs
 * (rows lid.y + 16i, columns lid.x + 16j). Per 16-wide step of K the workgroup stages a 64×16 slice of x and
 * of w in workgroup memory: each global element is read once per tile rather than once per output,
 * and each barrier pays for 16 multiply-adds per thread per k instead of one. Each output still sums
 * over k in order, so the error bound is the matvec's.
 */
export const matmulTiledWgsl = /* wgsl */ `
struct Params { M: u32, N: u32, K: u32, n0: u32, rows: u32, hasBias: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>; // (M, N)
@group(0) @binding(2) var<storage, read> x: array<f32>;         // (M, K)
@group(0) @binding(3) var<storage, read> w: array<W_T>;         // rows [n0, n0 + rows) of (N, K)
@group(0) @binding(4) var<storage, read> bias: array<B_T>;      // (N)
var<workgroup> xs: array<array<f32, 16>, 64>; // [m][k]
var<workgroup> ws: array<array<f32, 16>, 64>; // [n][k]

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(local_invocation_index) li: u32) {
  let tm = wid.y * 64u; // tile origin: activation row
  let tn = wid.x * 64u; // tile origin: weight row within this chunk
  var acc: array<vec4f, 4>; // acc[i][j]: row tm + lid.y + 16i, column tn + lid.x + 16j
  for (var k0 = 0u; k0 < p.K; k0 += 16u) {
    for (var e = li; e < 1024u; e += 256u) {
      let r = e / 16u;
      let k = k0 + e % 16u;
      var xv = 0.0;
      var wv = 0.0;
      if (tm + r < p.M && k < p.K) { xv = x[(tm + r) * p.K + k]; }
      if (tn + r < p.rows && k < p.K) { wv = loadW((tn + r) * p.K + k); }
      xs[r][e % 16u] = xv;
      ws[r][e % 16u] = wv;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < 16u; kk++) {
      let b = vec4f(ws[lid.x][kk], ws[lid.x + 16u][kk], ws[lid.x + 32u][kk], ws[lid.x + 48u][kk]);
      for (var i = 0u; i < 4u; i++) { acc[i] += xs[lid.y + 16u * i][kk] * b; }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    let m = tm + lid.y + 16u * i;
    for (var j = 0u; j < 4u; j++) {
      let n = tn + lid.x + 16u * j;
      if (m < p.M && n < p.rows) {
        var b = 0.0;
        if (p.hasBias != 0u) { b = loadBias(p.n0 + n); }
        out[m * p.N + p.n0 + n] = acc[i][j] + b;
      }
    }
  }
}`;

/** One dispatch per weight chunk (a weight over the binding limit is split by output rows). */
export function encodeMatmul(
  ctx: GpuContext,
  out: GpuTensor,
  x: GpuTensor,
  w: GpuWeight,
  bias: GpuWeight | undefined,
  dummy: GpuBuf,
): void {
  const [N, K] = w.shape;
  const M = x.size / K;
  if (M === 0) return;
  const vec = M <= MATVEC_MAX_M;
  const biasDtype = bias?.dtype ?? 'f32';
  for (const c of w.chunks) {
    ctx.dispatch({
      key: `${vec ? 'matvec' : 'matmul'}|${w.dtype}|${biasDtype}`,
      code: () => weightLoader(w.dtype) + weightLoader(biasDtype, 'loadBias', 'bias', 'B_T') + (vec ? matvecWgsl : matmulTiledWgsl),
      access: 'wrrr',
      buffers: [out.buf, x.buf, c.buf, bias ? bias.single('matmul bias') : dummy],
      params: [M, N, K, c.row0, c.rows, bias ? 1 : 0],
      groups: vec ? c.rows : [Math.ceil(c.rows / 64), Math.ceil(M / 64)],
    });
  }
}

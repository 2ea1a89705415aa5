/**
 * The MLP's input and activation: rmsnorm, the gate and up projections, and SwiGLU.
 *
 *   xn = rmsnorm(x; norm, eps)     out (M, F) = silu(xn · wGateᵀ [+ bGate]) ⊙ (xn · wUpᵀ [+ bUp])
 *
 * v1, on every backend, is the composition of today's ops; the fused decode kernel (v2 on WebGPU)
 * reads x through the norm and computes a gate row and the matching up row in the same workgroup,
 * so it writes silu(gate)·up directly: one dispatch, and neither (M, F) intermediate is stored.
 */
import type { Backend, Tensor, Weight } from './backend.ts';
import { scratchTensor } from './scratch.ts';
import { alignedChunks, type GpuBuf, type GpuContext, type GpuTensor, type GpuWeight } from './webgpu/context.ts';
import { uniforms } from './webgpu/uniforms.ts';
import { normedRows, sum, weightLoader, wgslKernel, workgroupReduce } from './webgpu/wgsl.ts';

/** v1: rmsnorm, the two matmuls, swiglu, each the backend's own op (its chosen variant). */
export function normGateUpSwigluComposed(
  be: Backend,
  out: Tensor,
  x: Tensor,
  norm: Weight,
  eps: number,
  wGate: Weight,
  wUp: Weight,
  bGate?: Weight,
  bUp?: Weight,
): void {
  const F = wGate.shape[0];
  const M = x.size / wGate.shape[1];
  // Stryker disable next-line StringLiteral: a role only keys this op's temporary in kernels/scratch.ts; any other name the op does not use is the same
  const xn = scratchTensor(be, 'normed', x.shape); // (M, D)
  // Stryker disable next-line StringLiteral: a role only keys this op's temporary in kernels/scratch.ts; any other name the op does not use is the same
  const gate = scratchTensor(be, 'gate', [M, F]);
  // Stryker disable next-line StringLiteral: a role only keys this op's temporary in kernels/scratch.ts; any other name the op does not use is the same
  const up = scratchTensor(be, 'up', [M, F]);
  be.rmsnorm(xn, x, norm, eps);
  be.matmul(gate, xn, wGate, bGate); // (M, F)
  be.matmul(up, xn, wUp, bUp); // (M, F)
  be.swiglu(out, gate, up); // (M, F)
}

// --- WebGPU ---------------------------------------------------------------------------------------

/** Threads per workgroup. */
const WG = 64;
/** Output columns per workgroup: ROWS gate rows and the ROWS matching up rows fill the mat4x4 of accumulators. */
const ROWS = 2;
const params = uniforms({
  M: 'u32',
  F: 'u32',
  K: 'u32',
  n0: 'u32',
  rows: 'u32',
  gateRow0: 'u32',
  upRow0: 'u32',
  hasBias: 'u32',
  gateBias0: 'u32',
  upBias0: 'u32',
  eps: 'f32',
});

/**
 * v2, the fused decode kernel (M ≤ 4): one workgroup per ROWS output columns n. Its threads reduce
 * the rows' sum of squares, then stride over K applying normed(k) to the gate rows (accumulator
 * columns 0 … ROWS−1) and the up rows (ROWS … 2·ROWS−1) at once; after the tree reduction, thread
 * (r, m) writes silu(g)·u with swiglu's arithmetic (swiglu.ts: exp's argument clamped at 80).
 */
export const normGateUpSwigluKernel = wgslKernel({
  name: 'normGateUpSwiglu',
  params,
  access: 'wrrrrrr',
  workgroupSize: WG,
  code: ({ weight = 'f32', bias = 'f32', norm = 'f32' }) => /* wgsl */ `
${weightLoader(weight, 'loadGate', 'wg', 'W_T')}${weightLoader(weight, 'loadUp', 'wu', 'U_T')}
${weightLoader(bias, 'loadGateBias', 'bg', 'B_T')}${weightLoader(bias, 'loadUpBias', 'bu', 'C_T')}
${params.wgsl}
@group(0) @binding(1) var<storage, read_write> out: array<f32>; // (M, F)
@group(0) @binding(2) var<storage, read> x: array<f32>;         // (M, K)
@group(0) @binding(3) var<storage, read> normW: array<N_T>;     // (K)
@group(0) @binding(4) var<storage, read> wg: array<W_T>;        // gate rows [n0, n0 + rows) of (F, K), from its row gateRow0
@group(0) @binding(5) var<storage, read> wu: array<U_T>;        // up rows [n0, n0 + rows) of (F, K), from its row upRow0
@group(0) @binding(6) var<storage, read> bg: array<B_T>;        // (F), from its element gateBias0
@group(0) @binding(7) var<storage, read> bu: array<C_T>;        // (F), from its element upBias0
${normedRows(norm, WG)}
${workgroupReduce('reduceRows', 'mat4x4f', WG, sum, { calledOnce: true })}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let first = (wid.x + wid.y * nwg.x) * ${ROWS}u; // this workgroup's first column, within the range
  if (first >= p.rows) { return; }
  let s = normScale(li);
  var acc: mat4x4f; // acc[r][m]: gate row first + r, then (r ≥ ${ROWS}) up row first + r − ${ROWS}
  var gate: array<u32, ${ROWS}>; // element 0 of each gate row; past the range, its last row again (dropped below)
  var up: array<u32, ${ROWS}>;
  for (var r = 0u; r < ${ROWS}u; r++) {
    let n = min(first + r, p.rows - 1u);
    gate[r] = (p.gateRow0 + n) * p.K;
    up[r] = (p.upRow0 + n) * p.K;
  }
  for (var k = li; k < p.K; k += ${WG}u) {
    let a = normed(k, s);
${Array.from(
  { length: ROWS },
  (_, r) => `    acc[${r}] += loadGate(gate[${r}] + k) * a;
    acc[${r + ROWS}] += loadUp(up[${r}] + k) * a;`,
).join('\n')}
  }
  let total = reduceRows(li, acc);
  let r = li / 4u;
  let m = li % 4u;
  if (r < ${ROWS}u && m < p.M && first + r < p.rows) {
    let n = p.n0 + first + r;
    var g = total[r][m];
    var u = total[r + ${ROWS}u][m];
    if (p.hasBias != 0u) {
      g += loadGateBias(p.gateBias0 + n);
      u += loadUpBias(p.upBias0 + n);
    }
    out[m * p.F + n] = (g / (1.0 + exp(min(-g, 80.0)))) * u;
  }
}`,
});
if (2 * ROWS > 4) throw new Error('normGateUpSwiglu: a mat4x4 holds the accumulators of at most 2 gate and 2 up rows');

export function encodeNormGateUpSwiglu(
  ctx: GpuContext,
  out: GpuTensor,
  x: GpuTensor,
  norm: GpuWeight,
  eps: number,
  wGate: GpuWeight,
  wUp: GpuWeight,
  bGate: GpuWeight | undefined,
  bUp: GpuWeight | undefined,
  noBias: GpuBuf,
): void {
  const [F, K] = wGate.shape;
  const M = x.size / K;
  if ((bGate === undefined) !== (bUp === undefined)) throw new Error('normGateUpSwiglu: a bias on gate and up, or on neither');
  const bg = bGate?.singleChunk('normGateUpSwiglu gate bias');
  const bu = bUp?.singleChunk('normGateUpSwiglu up bias');
  for (const range of alignedChunks([wGate, wUp])) {
    const [cg, cu] = range.chunks;
    ctx.dispatch({
      kernel: normGateUpSwigluKernel,
      dtypes: { weight: wGate.dtype, bias: bGate?.dtype ?? 'f32', norm: norm.dtype },
      buffers: [out.buf, x.buf, norm.single('normGateUpSwiglu'), cg.buf, cu.buf, bg?.buf ?? noBias, bu?.buf ?? noBias],
      params: {
        M,
        F,
        K,
        n0: range.row0,
        rows: range.rows,
        gateRow0: cg.bufRow0 + range.row0 - cg.row0,
        upRow0: cu.bufRow0 + range.row0 - cu.row0,
        hasBias: bg !== undefined,
        gateBias0: bg?.bufRow0 ?? 0,
        upBias0: bu?.bufRow0 ?? 0,
        eps,
      },
      groups: Math.ceil(range.rows / ROWS),
    });
  }
}

/**
 * ROSE's decision rule, fused: one pass over the logits of the positive row and the reverse rows.
 *
 *   z = logsoftmax(l_pos) − Σᵢ αᵢ·logsoftmax(l_revᵢ)
 *
 * The paper (and the official code) contrasts raw logits, l_pos − α·l_rev. The two differ by a
 * constant per step, so softmax, argmax and sampling agree; the log-softmax form keeps z near 0 in
 * f32 whatever the logits' offset. Then, optionally:
 *   - the plausibility mask β drops tokens the positive prompt finds implausible, p_pos < β·max p_pos
 *     (the "adaptive plausibility constraint" of contrastive decoding; the paper has none, β = 0);
 *   - temperature divides z.
 * Outputs: probs = softmax(z / temperature) over the kept tokens (0 elsewhere), the argmax of z over
 * the kept tokens (lowest id on ties), and the token where the CDF of probs first exceeds `uniform`.
 */
import type { ContrastParams, ContrastResult } from './backend.ts';
import type { GpuBuf, GpuContext, GpuTensor } from './webgpu/context.ts';
import { uniforms } from './webgpu/uniforms.ts';
import { LOWEST_F32, maxOf, minOf, sum, wgslKernel, workgroupReduce } from './webgpu/wgsl.ts';

export function contrastSoftmaxCpu(
  probs: Float32Array, // (V)
  logits: Float32Array, // (B, V): row 0 positive, rows 1.. reverse
  V: number,
  params: ContrastParams,
): ContrastResult {
  const rows = Array.from({ length: logits.length / V }, (_, r) => logits.subarray(r * V, (r + 1) * V));
  const nonFiniteRow = rows.findIndex((row) => row.some((l) => !Number.isFinite(l)));
  const pos = rows[0];
  // β mask: p_pos[v] ≥ β·max p_pos  ⇔  l_pos[v] − max l_pos ≥ log β   (β = 0: log 0 = −∞ keeps everything)
  const posMax = pos.reduce((max, l) => Math.max(max, l), -Infinity);
  const logBeta = Math.log(params.beta);

  // z = l_pos − Σᵢ αᵢ·l_revᵢ: the header's log-softmax form less one constant per row (that row's
  // log-sum-exp, times its weight), which softmax, the argmax and the CDF ignore. In f64, z needs no
  // shift toward 0, so the twin leaves the log-sum-exps out.
  const z = new Float64Array(V).fill(-Infinity); // a masked token keeps −∞
  let argmax = -1;
  let lastKept = 0; // set below: the positive row's top token is always kept (β ≤ 1)
  // Stryker disable next-line EqualityOperator: v = V reads pos[V] (undefined: NaN < logBeta is false) and writes z[V], past the end: nothing changes
  for (let v = 0; v < V; v++) {
    if (pos[v] - posMax < logBeta) continue;
    let zv = pos[v];
    for (let r = 1; r < rows.length; r++) zv -= (params.alphas[r - 1] ?? 0) * rows[r][v];
    z[v] = zv;
    lastKept = v;
    if (argmax < 0 || zv > z[argmax]) argmax = v;
  }

  // probs = softmax(z / T) over the kept tokens (exp(−∞) = 0 for the others); sampled = the first
  // token whose CDF exceeds u. The CDF starts at 0 ≤ u and does not move at a masked token, so it
  // first exceeds u at a kept one.
  let sum = 0;
  for (let v = 0; v < V; v++) sum += Math.exp((z[v] - z[argmax]) / params.temperature);
  let cdf = 0;
  let sampled = -1;
  // Stryker disable next-line EqualityOperator: v = V writes probs[V], past the end, and adds NaN to the CDF after the last token
  for (let v = 0; v < V; v++) {
    const p = Math.exp((z[v] - z[argmax]) / params.temperature) / sum;
    probs[v] = p;
    cdf += p;
    if (sampled < 0 && cdf > params.uniform) sampled = v;
  }
  // Rounding can leave the CDF a hair below a uniform close to 1: then the last kept token.
  if (sampled < 0) sampled = lastKept;
  return { argmax, sampled, nonFiniteRow };
}

// --- WebGPU ---------------------------------------------------------------------------------------

/** Rows (positive + reverse prompts) the fused kernel takes: alphas live in two vec4 uniforms. */
export const CONTRAST_MAX_ROWS = 8;
/** Threads of the one workgroup. */
const WG = 256;
const params = uniforms({
  V: 'u32',
  R: 'u32',
  temperature: 'f32',
  logBeta: 'f32',
  hasBeta: 'u32',
  u: 'f32',
  alphas: `array<vec4f, ${CONTRAST_MAX_ROWS / 4}>`, // alphas[(r − 1) / 4][(r − 1) % 4] weighs row r
});

/**
 * The whole decision in ONE workgroup of WG threads looping over V (a few passes over B·V floats:
 * small next to the lm_head matvec that made them). Same steps as the CPU twin, in f32:
 *   1. lse of each row (max, then Σ exp(l − max));
 *   2. z on the kept tokens, stashed in probs; argmax reduced on (z, −id) so ties go to the lowest id;
 *   3. Σ exp((z − zmax)/T), 4. probs (exactly 0 where masked);
 *   5. the sampled token: each thread owns a contiguous chunk of ids, thread 0 scans the chunk sums in
 *      id order, each thread walks its chunk from its starting CDF; the lowest hit wins, else the last
 *      kept token (the twin's fallback).
 * result = [argmax, sampled, first row holding Inf/NaN or NONE] (u32), all the host reads back.
 */
export const contrastSoftmaxKernel = wgslKernel({
  name: 'contrastSoftmax',
  params,
  access: 'wrw',
  workgroupSize: WG,
  code: () => /* wgsl */ `
${params.wgsl}
@group(0) @binding(1) var<storage, read_write> probs: array<f32>; // (V)
@group(0) @binding(2) var<storage, read> logits: array<f32>;      // (R, V): row 0 positive
@group(0) @binding(3) var<storage, read_write> result: array<u32>; // [argmax, sampled, first non-finite row]
const NONE = 0xffffffffu;
// A candidate for the argmax: the better of two has the larger z, or the lower id on a tie.
struct Best { z: f32, id: u32 }
fn better(a: Best, b: Best) -> Best {
  if (b.id != NONE && (a.id == NONE || b.z > a.z || (b.z == a.z && b.id < a.id))) { return b; }
  return a;
}
${workgroupReduce('reduceSum', 'f32', WG, sum)}
${workgroupReduce('reduceMax', 'f32', WG, maxOf)}
${workgroupReduce('reduceMaxU', 'u32', WG, maxOf)}
${workgroupReduce('reduceMinU', 'u32', WG, minOf)}
${workgroupReduce('reduceBest', 'Best', WG, (a, b) => `better(${a}, ${b})`)}
var<workgroup> chunkCdf: array<f32, ${WG}>; // step 5: each thread's chunk sum, then its starting CDF
// β mask: p_0 ≥ β·max p_0  ⇔  l_0 − max l_0 ≥ log β
fn kept(v: u32, posMax: f32) -> bool { return p.hasBeta == 0u || logits[v] - posMax >= p.logBeta; }

@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) li: u32) {
  var lse: array<f32, ${CONTRAST_MAX_ROWS}>;
  var posMax = 0.0;
  var nonFinite = NONE;
  for (var r = 0u; r < p.R; r++) {
    var mx = ${LOWEST_F32};
    var bad = 0u;
    for (var v = li; v < p.V; v += ${WG}u) {
      let l = logits[r * p.V + v];
      mx = max(mx, l);
      // Inf or NaN: all exponent bits set. Tested on the bits: compilers may assume floats are never NaN.
      bad |= u32((bitcast<u32>(l) & 0x7f800000u) == 0x7f800000u);
    }
    if (reduceMaxU(li, bad) != 0u && nonFinite == NONE) { nonFinite = r; }
    mx = reduceMax(li, mx);
    var s = 0.0;
    for (var v = li; v < p.V; v += ${WG}u) { s += exp(logits[r * p.V + v] - mx); }
    lse[r] = mx + log(reduceSum(li, s));
    if (r == 0u) { posMax = mx; }
  }

  var best = ${LOWEST_F32};
  var bestId = NONE;
  for (var v = li; v < p.V; v += ${WG}u) {
    if (!kept(v, posMax)) { continue; }
    var z = logits[v] - lse[0];
    for (var r = 1u; r < p.R; r++) { z -= p.alphas[(r - 1u) / 4u][(r - 1u) % 4u] * (logits[r * p.V + v] - lse[r]); }
    probs[v] = z;
    if (bestId == NONE || z > best) { best = z; bestId = v; } // ids ascend per thread: ties keep the lowest
  }
  let top = reduceBest(li, Best(best, bestId));
  let zMax = top.z;
  let argmax = top.id;

  var s = 0.0;
  for (var v = li; v < p.V; v += ${WG}u) { if (kept(v, posMax)) { s += exp((probs[v] - zMax) / p.temperature); } }
  let total = reduceSum(li, s);
  for (var v = li; v < p.V; v += ${WG}u) {
    var pv = 0.0;
    if (kept(v, posMax)) { pv = exp((probs[v] - zMax) / p.temperature) / total; }
    probs[v] = pv;
  }
  storageBarrier(); // step 5 reads probs other threads wrote

  let chunk = (p.V + ${WG - 1}u) / ${WG}u;
  let v0 = min(li * chunk, p.V);
  let v1 = min(v0 + chunk, p.V);
  var cs = 0.0;
  for (var v = v0; v < v1; v++) { cs += probs[v]; }
  chunkCdf[li] = cs;
  workgroupBarrier();
  if (li == 0u) { // exclusive scan, in id order
    var run = 0.0;
    for (var i = 0u; i < ${WG}u; i++) { let c = chunkCdf[i]; chunkCdf[i] = run; run += c; }
  }
  workgroupBarrier();
  var cdf = chunkCdf[li];
  var hit = NONE;
  var lastKept = 0u;
  for (var v = v0; v < v1; v++) {
    let pv = probs[v];
    cdf += pv;
    if (pv > 0.0) {
      lastKept = v;
      if (hit == NONE && cdf > p.u) { hit = v; }
    }
  }
  let sampled = reduceMinU(li, hit);
  let fallback = reduceMaxU(li, lastKept); // rounding left the CDF below u: the last kept token
  if (li == 0u) {
    result[0] = argmax;
    result[1] = select(sampled, fallback, sampled == NONE);
    result[2] = nonFinite;
  }
}`,
});

export function encodeContrastSoftmax(ctx: GpuContext, probs: GpuTensor, logits: GpuTensor, cp: ContrastParams, result: GpuBuf): void {
  const V = logits.shape[logits.shape.length - 1];
  const R = logits.size / V;
  ctx.dispatch({
    kernel: contrastSoftmaxKernel,
    buffers: [probs.buf, logits.buf, result],
    params: {
      V,
      R,
      temperature: cp.temperature,
      logBeta: cp.beta > 0 ? Math.log(cp.beta) : 0,
      hasBeta: cp.beta > 0,
      u: cp.uniform,
      alphas: Array.from({ length: CONTRAST_MAX_ROWS }, (_, i) => cp.alphas[i] ?? 0),
    },
    groups: 1,
  });
}

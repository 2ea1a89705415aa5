/**
 * Causal grouped-query attention over the KV cache.
 *
 * Query t of row b sits at slot s = slot0 + t and attends to slots padLen[b] ≤ j ≤ s: the left pads
 * are skipped rather than masked with a large negative number, so a pad query (s < padLen[b]) has no
 * keys at all and gets zeros. transformers instead gives pads a uniform softmax over masked keys;
 * both are harmless because nothing reads a pad position, but -inf masking would give NaN here.
 * Query head h reads kv head ⌊h / (H / Hkv)⌋: consecutive query heads share a kv head (repeat_kv).
 */
import type { GpuContext, GpuTensor } from './webgpu/context.ts';
import { uniforms } from './webgpu/uniforms.ts';
import { LOWEST_F32, maxOf, sum, wgslKernel, workgroupReduce } from './webgpu/wgsl.ts';

export function attentionCpu(
  out: Float32Array, // (B·T, H·hd)
  q: Float32Array, // (B·T, H·hd)
  kCache: Float32Array, // (B, S, Hkv, hd)
  vCache: Float32Array, // (B, S, Hkv, hd)
  padLen: Int32Array, // (B)
  slot0: number,
  dims: { B: number; T: number; S: number; H: number; Hkv: number; hd: number },
): void {
  const { B, T, S, H, Hkv, hd } = dims;
  const group = H / Hkv;
  const scale = 1 / Math.sqrt(hd);
  const scores = new Float64Array(S);
  // Stryker disable next-line EqualityOperator: b = B fills past out's end and finds no key (j from padLen[B], undefined): a no-op
  for (let b = 0; b < B; b++) {
    // Stryker disable next-line EqualityOperator: t = T computes into row b + 1's first query, which that row clears and recomputes; past the end on the last row
    for (let t = 0; t < T; t++) {
      const s = slot0 + t;
      // Stryker disable next-line EqualityOperator: h = H computes into query t + 1's first head, which that query clears and recomputes; past the end on the last
      for (let h = 0; h < H; h++) {
        const qOff = ((b * T + t) * H + h) * hd;
        const kvHead = Math.floor(h / group);
        out.fill(0, qOff, qOff + hd); // a pad query (padLen[b] > s) has no key: the loops below are empty, its output 0
        let max = -Infinity;
        for (let j = padLen[b]; j <= s; j++) {
          const kOff = ((b * S + j) * Hkv + kvHead) * hd;
          let dot = 0;
          for (let i = 0; i < hd; i++) dot += q[qOff + i] * kCache[kOff + i];
          scores[j] = dot * scale;
          max = Math.max(max, scores[j]);
        }
        let sum = 0;
        for (let j = padLen[b]; j <= s; j++) sum += scores[j] = Math.exp(scores[j] - max);
        for (let j = padLen[b]; j <= s; j++) {
          const p = scores[j] / sum;
          const vOff = ((b * S + j) * Hkv + kvHead) * hd;
          // Stryker disable next-line EqualityOperator: i = hd adds into the next head's first element, which that head clears (fill) before its own sum; past the end on the last
          for (let i = 0; i < hd; i++) out[qOff + i] += p * vCache[vOff + i];
        }
      }
    }
  }
}

// --- WebGPU ---------------------------------------------------------------------------------------

/** Threads per query, and keys per block: each thread scores one key of a block. */
const WG = 64;
/** The longest head the workgroup arrays hold. */
export const ATTENTION_MAX_HEAD_DIM = 256;
const params = uniforms({
  rows: 'u32',
  T: 'u32',
  S: 'u32',
  H: 'u32',
  Hkv: 'u32',
  hd: 'u32',
  slot0: 'u32',
  padBase: 'u32',
  scale: 'f32',
});

/**
 * One workgroup of WG threads per (b, t, h) query, streaming over its keys padLen[b] ≤ j ≤ s in
 * blocks of WG with an online softmax: each thread scores one key of the block, the block max
 * updates the running max m, earlier sums and outputs are rescaled by exp(m_old − m_new), and each
 * thread accumulates the outputs of its own head dims (d ≡ li mod WG, hd ≤ 256). Any S works; a pad
 * query has no block at all and writes zeros.
 */
export const attentionKernel = wgslKernel({
  name: 'attention',
  params,
  access: 'wrrrr',
  workgroupSize: WG,
  code: () => /* wgsl */ `
${params.wgsl}
@group(0) @binding(1) var<storage, read_write> out: array<f32>; // (B·T, H·hd)
@group(0) @binding(2) var<storage, read> q: array<f32>;         // (B·T, H·hd)
@group(0) @binding(3) var<storage, read> kc: array<f32>;        // (B, S, Hkv, hd)
@group(0) @binding(4) var<storage, read> vc: array<f32>;        // (B, S, Hkv, hd)
@group(0) @binding(5) var<storage, read> ints: array<i32>;      // padLen (B) at padBase
var<workgroup> qs: array<f32, ${ATTENTION_MAX_HEAD_DIM}>;
var<workgroup> acc: array<f32, ${ATTENTION_MAX_HEAD_DIM}>;
var<workgroup> pr: array<f32, ${WG}>;  // this block's exp(score − m)
${workgroupReduce('reduceMax', 'f32', WG, maxOf)}
${workgroupReduce('reduceSum', 'f32', WG, sum)}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let g = wid.x + wid.y * nwg.x; // (b·T + t)·H + h
  if (g >= p.rows) { return; }
  let b = g / (p.H * p.T);
  let s = p.slot0 + (g / p.H) % p.T;
  let kvBase = (b * p.S * p.Hkv + (g % p.H) / (p.H / p.Hkv)) * p.hd; // slot 0 of this kv head
  let kvStride = p.Hkv * p.hd;
  for (var d = li; d < p.hd; d += ${WG}u) { qs[d] = q[g * p.hd + d]; acc[d] = 0.0; }
  var m = ${LOWEST_F32};
  var l = 0.0;
  let pad = u32(ints[p.padBase + b]);
  for (var j0 = pad; j0 <= s; j0 += ${WG}u) {
    workgroupBarrier(); // qs written / previous block's pr consumed
    let j = j0 + li;
    var score = ${LOWEST_F32};
    if (j <= s) {
      var dot = 0.0;
      for (var d = 0u; d < p.hd; d++) { dot += qs[d] * kc[kvBase + j * kvStride + d]; }
      score = dot * p.scale;
    }
    let mNew = max(m, reduceMax(li, score));
    let e = select(0.0, exp(score - mNew), j <= s);
    pr[li] = e;
    let corr = select(exp(m - mNew), 0.0, j0 == pad); // nothing to rescale before the first block
    l = l * corr + reduceSum(li, e);                  // reduceSum's barrier also publishes pr
    let n = min(${WG}u, s + 1u - j0);
    for (var d = li; d < p.hd; d += ${WG}u) {
      var a = acc[d] * corr;
      for (var jj = 0u; jj < n; jj++) { a += pr[jj] * vc[kvBase + (j0 + jj) * kvStride + d]; }
      acc[d] = a;
    }
    m = mNew;
  }
  for (var d = li; d < p.hd; d += ${WG}u) { out[g * p.hd + d] = select(0.0, acc[d] / l, l > 0.0); }
}`,
});

export function encodeAttention(
  ctx: GpuContext,
  out: GpuTensor,
  q: GpuTensor,
  kCache: GpuTensor,
  vCache: GpuTensor,
  padLen: Int32Array,
  slot0: number,
): void {
  const [B, S, Hkv, hd] = kCache.shape;
  const rows = q.size / hd; // B·T·H
  const H = q.shape[q.shape.length - 1] / hd;
  ctx.dispatch({
    kernel: attentionKernel,
    buffers: [out.buf, q.buf, kCache.buf, vCache.buf, 'ints'],
    ints: padLen,
    params: (padBase) => ({ rows, T: rows / (B * H), S, H, Hkv, hd, slot0, padBase, scale: 1 / Math.sqrt(hd) }),
    groups: rows,
  });
}

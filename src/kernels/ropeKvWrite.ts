/**
 * RoPE on q and k, then k and v into the KV cache:
 *
 *   rope(q, table, positions, H); rope(k, table, positions, Hkv)       q, k rotated in place
 *   kvWrite(kCache, k, slot0);     kvWrite(vCache, v, slot0)           slots slot0 … slot0 + T − 1
 *
 * q (M, H·hd), k and v (M, Hkv·hd), the caches (B, S, Hkv, hd), M = B·T. v1, on every backend, is
 * exactly that composition; the fused kernel (v2 on WebGPU) does it in one dispatch, with rope's
 * arithmetic (rope.ts: the same two products and a sum per element) and kvWrite's addressing.
 */
import type { Backend, Tensor } from './backend.ts';
import { ROTATE_PAIR_WGSL } from './rope.ts';
import type { GpuContext, GpuTensor } from './webgpu/context.ts';
import { uniforms } from './webgpu/uniforms.ts';
import { wgslKernel } from './webgpu/wgsl.ts';

/** v1: the four ops, each the backend's own (its chosen variant). */
export function ropeKvWriteComposed(
  be: Backend,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  kCache: Tensor,
  vCache: Tensor,
  table: Tensor,
  positions: Int32Array,
  slot0: number,
): void {
  const [, , Hkv, hd] = kCache.shape;
  be.rope(q, table, positions, q.shape[q.shape.length - 1] / hd); // q (M, H·hd)
  be.rope(k, table, positions, Hkv); // k (M, Hkv·hd)
  be.kvWrite(kCache, k, slot0); // (B, S, Hkv, hd)
  be.kvWrite(vCache, v, slot0);
}

// --- WebGPU ---------------------------------------------------------------------------------------

/** Threads per workgroup: one thread per (row m, head, i < hd/2) of q, k and v's heads side by side. */
const WG = 256;
const params = uniforms({ n: 'u32', T: 'u32', S: 'u32', H: 'u32', Hkv: 'u32', hd: 'u32', slot0: 'u32', posBase: 'u32' });

/**
 * v2: thread j owns pair i of head h of row m, over the H + 2·Hkv heads of q, k and v: a q head is
 * rotated in place; a k head is rotated, written back and into its cache slot; a v head's two
 * elements (i, i + hd/2) are copied into theirs. Row m = b·T + t goes to slot slot0 + t of row b.
 */
export const ropeKvWriteKernel = wgslKernel({
  name: 'ropeKvWrite',
  params,
  access: 'wwrwwrr',
  workgroupSize: WG,
  code: () => /* wgsl */ `
${params.wgsl}${ROTATE_PAIR_WGSL}
@group(0) @binding(1) var<storage, read_write> q: array<f32>;  // (M, H·hd), in place
@group(0) @binding(2) var<storage, read_write> k: array<f32>;  // (M, Hkv·hd), in place
@group(0) @binding(3) var<storage, read> v: array<f32>;        // (M, Hkv·hd)
@group(0) @binding(4) var<storage, read_write> kc: array<f32>; // (B, S, Hkv, hd)
@group(0) @binding(5) var<storage, read_write> vc: array<f32>; // (B, S, Hkv, hd)
@group(0) @binding(6) var<storage, read> table: array<f32>;    // (P, hd) = [cos | sin]
@group(0) @binding(7) var<storage, read> ints: array<i32>;     // positions (M) at posBase

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let j = (wid.x + wid.y * nwg.x) * ${WG}u + li;
  if (j >= p.n) { return; }
  let half = p.hd / 2u;
  let i = j % half;
  let heads = p.H + 2u * p.Hkv;
  let m = j / (half * heads);
  let h = (j / half) % heads;
  let slot = ((m / p.T) * p.S + p.slot0 + m % p.T) * p.Hkv * p.hd; // cache row of (b, slot0 + t)
  if (h >= p.H + p.Hkv) { // a v head: copy its pair
    let src = (m * p.Hkv + h - p.H - p.Hkv) * p.hd + i;
    let dst = slot + (h - p.H - p.Hkv) * p.hd + i;
    vc[dst] = v[src];
    vc[dst + half] = v[src + half];
    return;
  }
  let t = u32(ints[p.posBase + m]) * p.hd + i;
  let c = table[t];
  let s = table[t + half];
  if (h < p.H) { // a q head: rotate in place
    let off = (m * p.H + h) * p.hd + i;
    let r = rotatePair(q[off], q[off + half], c, s);
    q[off] = r.x;
    q[off + half] = r.y;
    return;
  }
  let off = (m * p.Hkv + h - p.H) * p.hd + i; // a k head: rotate, keep, cache
  let r = rotatePair(k[off], k[off + half], c, s);
  k[off] = r.x;
  k[off + half] = r.y;
  let dst = slot + (h - p.H) * p.hd + i;
  kc[dst] = r.x;
  kc[dst + half] = r.y;
}`,
});

export function encodeRopeKvWrite(
  ctx: GpuContext,
  q: GpuTensor,
  k: GpuTensor,
  v: GpuTensor,
  kCache: GpuTensor,
  vCache: GpuTensor,
  table: GpuTensor,
  positions: Int32Array,
  slot0: number,
): void {
  const [B, S, Hkv, hd] = kCache.shape;
  const M = positions.length;
  const H = q.size / (M * hd);
  const n = (M * (H + 2 * Hkv) * hd) / 2;
  ctx.dispatch({
    kernel: ropeKvWriteKernel,
    buffers: [q.buf, k.buf, v.buf, kCache.buf, vCache.buf, table.buf, 'ints'],
    ints: positions,
    params: (posBase) => ({ n, T: M / B, S, H, Hkv, hd, slot0, posBase }),
    groups: Math.ceil(n / WG),
  });
}

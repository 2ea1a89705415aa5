/**
 * Rotary position embedding, Hugging Face layout ("rotate_half"): element i of a head pairs with
 * element i + hd/2 (first half / second half), NOT with its neighbour 2i+1 as in Meta's original.
 *
 *   x'[i]        = x[i]·cos θ_i − x[i + hd/2]·sin θ_i
 *   x'[i + hd/2] = x[i + hd/2]·cos θ_i + x[i]·sin θ_i,     θ_i = pos · inv_freq[i]
 *
 * cos/sin come from a table (P, hd) = [cos θ_{p,0..hd/2} | sin θ_{p,0..hd/2}] built once on the host
 * (model/rope.ts). A table, rather than sin/cos in the kernel, because WGSL's sin and cos are only
 * accurate near [−π, π] and the angles here reach thousands of radians.
 */
import type { GpuContext, GpuTensor } from './webgpu/context.ts';
import { uniforms } from './webgpu/uniforms.ts';
import { wgslKernel } from './webgpu/wgsl.ts';

export function ropeCpu(
  x: Float32Array, // (M, heads, hd), rotated in place
  table: Float32Array, // (P, hd)
  positions: Int32Array, // (M)
  heads: number,
  headDim: number,
): void {
  const half = headDim / 2;
  // Stryker disable next-line EqualityOperator: m = M reads past the end of positions and x (NaN) and writes past x's end: a typed array ignores it
  for (let m = 0; m < positions.length; m++) {
    const cosOff = positions[m] * headDim;
    const sinOff = cosOff + half;
    for (let h = 0; h < heads; h++) {
      const off = (m * heads + h) * headDim;
      for (let i = 0; i < half; i++) {
        const a = x[off + i];
        const b = x[off + i + half];
        x[off + i] = a * table[cosOff + i] - b * table[sinOff + i];
        x[off + i + half] = b * table[cosOff + i] + a * table[sinOff + i];
      }
    }
  }
}

// --- WebGPU ---------------------------------------------------------------------------------------

/**
 * The rotation of one pair (a, b) = (x[i], x[i + hd/2]) by the angle whose cos and sin are c and s,
 * as the CPU twin above computes it: the one WGSL source of RoPE's arithmetic (ropeKvWrite.ts uses it too).
 */
export const ROTATE_PAIR_WGSL = /* wgsl */ `
fn rotatePair(a: f32, b: f32, c: f32, s: f32) -> vec2f { return vec2f(a * c - b * s, b * c + a * s); }`;

/** One thread per rotated pair (m, head, i < hd/2); cos and sin are table lookups (see above). */
const WG = 256; // threads per workgroup, one rotated pair each
const params = uniforms({ n: 'u32', heads: 'u32', hd: 'u32', posBase: 'u32' });

export const ropeKernel = wgslKernel({
  name: 'rope',
  params,
  access: 'wrr',
  workgroupSize: WG,
  code: () => /* wgsl */ `
${params.wgsl}${ROTATE_PAIR_WGSL}
@group(0) @binding(1) var<storage, read_write> x: array<f32>; // (M, heads, hd), in place
@group(0) @binding(2) var<storage, read> table: array<f32>;   // (P, hd) = [cos | sin]
@group(0) @binding(3) var<storage, read> ints: array<i32>;    // positions (M) at posBase

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let j = (wid.x + wid.y * nwg.x) * ${WG}u + li;
  if (j >= p.n) { return; }
  let half = p.hd / 2u;
  let i = j % half;
  let mh = j / half; // (m, head)
  let t = u32(ints[p.posBase + mh / p.heads]) * p.hd + i;
  let c = table[t];
  let s = table[t + half];
  let off = mh * p.hd + i;
  let r = rotatePair(x[off], x[off + half], c, s);
  x[off] = r.x;
  x[off + half] = r.y;
}`,
});

export function encodeRope(ctx: GpuContext, x: GpuTensor, table: GpuTensor, positions: Int32Array, heads: number): void {
  const hd = table.shape[table.shape.length - 1];
  const n = (positions.length * heads * hd) / 2;
  ctx.dispatch({
    kernel: ropeKernel,
    buffers: [x.buf, table.buf, 'ints'],
    ints: positions,
    params: (posBase) => ({ n, heads, hd, posBase }),
    groups: Math.ceil(n / WG),
  });
}

/**
 * KV-cache write: cache (B, S, Hkv, hd)[b, slot0 + t] = src (B·T, Hkv·hd)[b·T + t].
 * Every row of the batch writes the same slots: rows are left-padded to a common length, so slot
 * indices line up across the batch and one scalar slot0 serves all rows.
 */
import type { GpuContext, GpuTensor } from './webgpu/context.ts';
import { uniforms } from './webgpu/uniforms.ts';
import { wgslKernel } from './webgpu/wgsl.ts';

export function kvWriteCpu(cache: Float32Array, src: Float32Array, B: number, S: number, rowWidth: number, slot0: number): void {
  const T = src.length / (B * rowWidth);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      cache.set(src.subarray((b * T + t) * rowWidth, (b * T + t + 1) * rowWidth), (b * S + slot0 + t) * rowWidth);
    }
  }
}

// --- WebGPU ---------------------------------------------------------------------------------------

/** One thread per copied element: src row b·T + t goes to cache slot slot0 + t of row b. */
const WG = 256; // threads per workgroup
const params = uniforms({ n: 'u32', T: 'u32', S: 'u32', rowWidth: 'u32', slot0: 'u32' });

export const kvWriteKernel = wgslKernel({
  name: 'kvWrite',
  params,
  access: 'wr',
  workgroupSize: WG,
  code: () => /* wgsl */ `
${params.wgsl}
@group(0) @binding(1) var<storage, read_write> cache: array<f32>; // (B, S, Hkv·hd)
@group(0) @binding(2) var<storage, read> src: array<f32>;         // (B·T, Hkv·hd)

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = (wid.x + wid.y * nwg.x) * ${WG}u + li;
  if (i >= p.n) { return; }
  let r = i / p.rowWidth; // b·T + t
  let b = r / p.T;
  cache[(b * p.S + p.slot0 + r % p.T) * p.rowWidth + i % p.rowWidth] = src[i];
}`,
});

export function encodeKvWrite(ctx: GpuContext, cache: GpuTensor, src: GpuTensor, slot0: number): void {
  const [B, S, Hkv, hd] = cache.shape;
  const rowWidth = Hkv * hd;
  const T = src.size / (B * rowWidth);
  ctx.dispatch({
    kernel: kvWriteKernel,
    buffers: [cache.buf, src.buf],
    params: { n: src.size, T, S, rowWidth, slot0 },
    groups: Math.ceil(src.size / WG),
  });
}

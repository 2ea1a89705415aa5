/**
 * Every WGSL value has one source, and the copies the compiler sees agree with the host's:
 *   - each registered WebGPU kernel (webgpu/variants.ts) includes its generated `struct Params`, and
 *     no other; declares the @workgroup_size its host code dispatches with; and declares its storage
 *     bindings with the access the bind-group layout gives them;
 *   - uniforms() lays fields out by WGSL's rules, and on the adapter a tiny probe kernel reads every
 *     field of every registered kernel's struct back, by NAME, as the values the packer wrote: the
 *     offsets WGSL computes and the ones the packer writes to are the same.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DType } from '../../src/kernels/backend.ts';
import { GpuContext } from '../../src/kernels/webgpu/context.ts';
import { type UniformFields, type Uniforms, type UniformValues, uniforms } from '../../src/kernels/webgpu/uniforms.ts';
import { gpuVariants } from '../../src/kernels/webgpu/variants.ts';
import { type WgslKernel, wgslKernel, workgroupSizeAttr } from '../../src/kernels/webgpu/wgsl.ts';
import { webGpuDeviceUnderTest } from './backends.ts';

/** Every kernel some registered variant dispatches, once each. */
const kernels: WgslKernel[] = [
  ...new Set(Object.values(gpuVariants).flatMap((ops) => ops.variants.flatMap((v) => v.kernels as readonly WgslKernel[]))),
];
const DTYPES: DType[] = ['f32', 'f16', 'bf16'];

describe('registered WebGPU kernels: one source for each WGSL value', () => {
  it('there are kernels to check: every op has at least one', () => {
    expect(kernels.length).toBeGreaterThanOrEqual(Object.keys(gpuVariants).length);
  });

  it.each(kernels.map((k) => [k.name, k] as const))('%s: its struct, workgroup size and bindings are the declared ones', (_name, k) => {
    for (const weight of DTYPES) {
      for (const bias of DTYPES) {
        const code = k.code({ weight, bias });
        expect(code.split(k.params.wgsl).length - 1, 'the generated struct, exactly once').toBe(1);
        expect(code.match(/struct Params\b/g), 'no other Params struct').toHaveLength(1);
        expect(code).toContain('@group(0) @binding(0) var<uniform> p: Params;');
        expect(code.match(/@workgroup_size\([^)]*\)/g), 'one entry point, sized as the host dispatches').toEqual([
          workgroupSizeAttr(k.workgroupSize),
        ]);
        const storage = [...code.matchAll(/@binding\((\d+)\) var<storage, (read|read_write)>/g)].map((m) => [Number(m[1]), m[2]]);
        expect(storage, 'storage bindings 1..n with the layout access').toEqual(
          [...k.access].map((a, i) => [i + 1, a === 'w' ? 'read_write' : 'read']),
        );
      }
    }
  });
});

describe('uniforms(): WGSL uniform layout', () => {
  it('scalars pack at 4 bytes; a vec4 aligns to 16; the size rounds up to the largest alignment', () => {
    const u = uniforms({ a: 'u32', b: 'f32', c: 'i32', v: 'vec4f', d: 'u32' });
    expect(u.slots.map((s) => [s.name, s.offset])).toEqual([
      ['a', 0],
      ['b', 4],
      ['c', 8],
      ['v', 16],
      ['d', 32],
    ]);
    expect(u.size).toBe(48);
    expect(u.wgsl).toBe('struct Params { a: u32, b: f32, c: i32, v: vec4f, d: u32 }\n@group(0) @binding(0) var<uniform> p: Params;');
    expect(uniforms({ n: 'u32', eps: 'f32', k: 'u32' }).size).toBe(12);
  });

  it('an array of vec4 after six scalars starts at 32: the padding the old positional struct spelled out (pad0, pad1)', () => {
    const u = uniforms({ V: 'u32', R: 'u32', t: 'f32', lb: 'f32', hb: 'u32', u: 'f32', alphas: 'array<vec4f, 2>' });
    expect(u.slots.at(-1)).toMatchObject({ name: 'alphas', offset: 32, words: 8 });
    expect(u.size).toBe(64);
  });

  it('refuses a struct over the 64-byte slot, and values the fields cannot hold', () => {
    expect(() => uniforms({ a: 'vec4f', b: 'vec4f', c: 'vec4f', d: 'vec4f', e: 'u32' })).toThrow(/over the 64-byte slot/);
    const u = uniforms({ n: 'u32', i: 'i32', x: 'f32', v: 'array<vec4f, 1>' });
    const view = new DataView(new ArrayBuffer(64));
    const ok = { n: 1, i: -1, x: 0.1, v: [1, 2, 3, 4] };
    u.pack(view, ok);
    expect([view.getUint32(0, true), view.getInt32(4, true), view.getFloat32(8, true)]).toEqual([1, -1, Math.fround(0.1)]);
    expect(view.getFloat32(16 + 12, true)).toBe(4);
    for (const bad of [{ n: -1 }, { n: 1.5 }, { n: 2 ** 32 }, { i: 2 ** 31 }, { i: 0.5 }, { v: [1, 2, 3] }]) {
      expect(() => u.pack(view, { ...ok, ...bad }), JSON.stringify(bad)).toThrow(/is not representable|needs 4 numbers/);
    }
    u.pack(view, { ...ok, n: true });
    expect(view.getUint32(0, true)).toBe(1); // a u32 flag may be given as a boolean
  });
});

// --- on the adapter ---------------------------------------------------------------------------------------

/** A kernel that copies every word of every field of `u` into out[], in slot order, as u32 bits. */
function probe<F extends UniformFields>(u: Uniforms<F>): WgslKernel<F> {
  const reads = u.slots.flatMap((s) => {
    if (s.words === 1) return [`p.${s.name}`];
    if (s.type.startsWith('array<')) return Array.from({ length: s.words }, (_, i) => `p.${s.name}[${i >> 2}][${i & 3}]`);
    return Array.from({ length: 4 }, (_, i) => `p.${s.name}[${i}]`);
  });
  return wgslKernel({
    name: `probe|${u.wgsl}`,
    params: u,
    access: 'w',
    workgroupSize: 1,
    code: () => `${u.wgsl}
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@compute @workgroup_size(1)
fn main() {
${reads.map((r, i) => `  out[${i}] = bitcast<u32>(${r});`).join('\n')}
}`,
  });
}

/** Distinct values for every field, and the u32 words they are, by field name. */
function sample<F extends UniformFields>(u: Uniforms<F>): { values: UniformValues<F>; words: Record<string, number[]> } {
  const values: Record<string, number | number[]> = {};
  const words: Record<string, number[]> = {};
  const bits = new DataView(new ArrayBuffer(4));
  u.slots.forEach((s, f) => {
    const list = Array.from({ length: s.words }, (_, i) => {
      if (s.kind === 'u32') return 1000 * (f + 1) + i;
      if (s.kind === 'i32') return -(1000 * (f + 1) + i);
      return f + 1 + i / 8; // exact in f32
    });
    values[s.name] = s.words === 1 ? list[0] : list;
    words[s.name] = list.map((v) => {
      if (s.kind === 'f32') bits.setFloat32(0, v, true);
      else bits.setInt32(0, v | 0, true);
      return bits.getUint32(0, true);
    });
  });
  return { values: values as UniformValues<F>, words };
}

const opened = await webGpuDeviceUnderTest();
const gpuOnly = opened ? describe : describe.skip;

gpuOnly('uniforms on the adapter: the packer writes where WGSL reads', () => {
  let ctx: GpuContext; // made in beforeAll: a skipped describe's body still runs, its hooks do not
  beforeAll(() => {
    ctx = new GpuContext(opened!.device);
  });
  afterAll(() => {
    ctx.destroy();
  });

  const structs = [
    ...new Map(kernels.map((k) => [k.params.wgsl, [k.name, k.params] as const])).values(),
    ['vec4 after scalars', uniforms({ a: 'u32', v: 'vec4i', b: 'f32' })] as const,
  ];

  it.each(structs)('%s: every field reads back by name', async (_name, u) => {
    const { values, words } = sample(u);
    const total = u.slots.reduce((n, s) => n + s.words, 0);
    const out = ctx.allocTensor([total]);
    ctx.dispatch({ kernel: probe(u), buffers: [out.buf], params: values, groups: 1 });
    const got = new Uint32Array(await ctx.readBack(out.buf, total * 4));
    let i = 0;
    for (const s of u.slots) {
      expect(Array.from(got.subarray(i, i + s.words)), `field ${s.name} (${s.type} at ${s.offset})`).toEqual(words[s.name]);
      i += s.words;
    }
    ctx.free(out.buf);
  });
});

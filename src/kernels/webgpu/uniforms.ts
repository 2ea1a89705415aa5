/**
 * A kernel's uniforms, declared once: named fields and their WGSL types give BOTH the `struct Params`
 * text the shader includes and the packer that writes the values by name, at the offsets WGSL's
 * uniform layout rules give them. Nothing is positional, so the struct and the host cannot drift
 * apart (test/kernels/uniforms.test.ts reads packed values back through the adapter, field by field).
 *
 * Layout (WGSL spec, "Memory Layout", uniform address space): a scalar is 4 bytes aligned to 4; a
 * vec4 is 16 bytes aligned to 16; array<vec4, n> has stride 16 and alignment 16 (a uniform array's
 * stride must be a multiple of 16, which is why only vec4 arrays are offered); the struct's size is
 * its end rounded up to its largest alignment. Pure strings and arithmetic: no GPU needed.
 */
import { roundUp } from '../backend.ts';

/** Bytes of one op's uniform slot in the arena (GpuContext binds it with a dynamic offset). */
export const UNIFORM_SLOT_BYTES = 64;

type Scalar = 'u32' | 'i32' | 'f32';
type Vec4 = 'vec4u' | 'vec4i' | 'vec4f';
/** The WGSL types a uniform field may have. */
export type UniformType = Scalar | Vec4 | `array<${Vec4}, ${number}>`;
export type UniformFields = Readonly<Record<string, UniformType>>;

/** The value a field takes: a number for a scalar (a boolean for a u32 flag), exactly 4·n numbers for vectors. */
export type UniformValue<T extends UniformType> = T extends 'u32' ? number | boolean : T extends Scalar ? number : readonly number[];
export type UniformValues<F extends UniformFields> = { readonly [K in keyof F]: UniformValue<F[K]> };

/** One field as laid out: its byte offset, its scalar kind and how many 4-byte words it holds. */
export interface UniformSlot {
  readonly name: string;
  readonly type: UniformType;
  readonly offset: number;
  readonly kind: Scalar;
  readonly words: number;
}

export interface Uniforms<F extends UniformFields> {
  /** `struct Params { … }` and its binding, `p` at binding 0 (where GpuContext binds it): include it verbatim. */
  readonly wgsl: string;
  readonly slots: readonly UniformSlot[];
  /** Bytes of the struct (≤ UNIFORM_SLOT_BYTES). */
  readonly size: number;
  /** Writes `values` into `view` (the op's uniform slot) by field name. */
  pack(view: DataView, values: UniformValues<F>): void;
}

const kindOf = (t: UniformType): Scalar => {
  const base = t.startsWith('array<') ? t.slice(6, t.indexOf(',')) : t;
  return base === 'u32' || base === 'vec4u' ? 'u32' : base === 'i32' || base === 'vec4i' ? 'i32' : 'f32';
};

/** Words and alignment (bytes) of a field type. */
function shapeOf(t: UniformType): { words: number; align: number } {
  if (t === 'u32' || t === 'i32' || t === 'f32') return { words: 1, align: 4 };
  if (t === 'vec4u' || t === 'vec4i' || t === 'vec4f') return { words: 4, align: 16 };
  const n = Number(t.slice(t.indexOf(',') + 1, -1));
  if (!Number.isInteger(n) || n < 1) throw new Error(`uniforms: bad array length in ${t}`);
  return { words: 4 * n, align: 16 };
}

/** Declares a kernel's uniform struct: `uniforms({ n: 'u32', eps: 'f32' })`. */
export function uniforms<const F extends UniformFields>(fields: F): Uniforms<F> {
  const slots: UniformSlot[] = [];
  let end = 0;
  let align = 4;
  for (const [name, type] of Object.entries(fields)) {
    const s = shapeOf(type);
    const offset = roundUp(end, s.align);
    slots.push({ name, type, offset, kind: kindOf(type), words: s.words });
    end = offset + 4 * s.words;
    align = Math.max(align, s.align);
  }
  const size = roundUp(end, align);
  if (size > UNIFORM_SLOT_BYTES) throw new Error(`uniforms: ${size} bytes, over the ${UNIFORM_SLOT_BYTES}-byte slot`);
  const wgsl = `struct Params { ${slots.map((s) => `${s.name}: ${s.type}`).join(', ')} }\n@group(0) @binding(0) var<uniform> p: Params;`;

  // The packer runs once per dispatch (hundreds per decode step): plain loops over parallel arrays.
  const names = slots.map((s) => s.name);
  const pack = (view: DataView, values: UniformValues<F>): void => {
    const byName = values as Record<string, number | boolean | readonly number[]>;
    for (let i = 0; i < slots.length; i++) {
      const s = slots[i];
      const v = byName[names[i]];
      if (s.words === 1) write(view, s, s.offset, v === true ? 1 : v === false ? 0 : (v as number));
      else {
        const list = v as readonly number[];
        if (list?.length !== s.words) throw new Error(`uniforms: ${s.name} needs ${s.words} numbers, got ${list?.length}`);
        for (let k = 0; k < s.words; k++) write(view, s, s.offset + 4 * k, list[k]);
      }
    }
  };
  return { wgsl, slots, size, pack };
}

/** One 4-byte word; a u32 or i32 that is not an integer in range is a bug in the caller, not rounded away. */
function write(view: DataView, s: UniformSlot, offset: number, v: number): void {
  if (s.kind === 'f32') view.setFloat32(offset, v, true);
  else if (s.kind === 'u32' && v >>> 0 === v) view.setUint32(offset, v, true);
  else if (s.kind === 'i32' && (v | 0) === v) view.setInt32(offset, v, true);
  else throw new Error(`uniforms: ${s.name} (${s.kind}) = ${v} is not representable`);
}

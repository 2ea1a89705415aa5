/**
 * WGSL snippets shared by the kernels. Pure strings, no GPU: kernel files import this at runtime
 * without pulling in the device.
 */
import type { DType } from '../backend.ts';
import type { UniformFields, Uniforms } from './uniforms.ts';

/**
 * A weight loader for one dtype: `alias <T> = f32|u32;` for the storage array's element type and
 * `fn <fn>(i: u32) -> f32` reading element i of the binding `<v>`. Half dtypes are stored 2 per u32
 * word, little-endian (element 2j in the low half), so no shader-f16 feature is needed.
 */
export function weightLoader(dtype: DType, fn = 'loadW', v = 'w', T = 'W_T'): string {
  switch (dtype) {
    case 'f32':
      return `alias ${T} = f32;\nfn ${fn}(i: u32) -> f32 { return ${v}[i]; }\n`;
    case 'f16':
      // unpack2x16float: .x is the low 16 bits.
      return `alias ${T} = u32;\nfn ${fn}(i: u32) -> f32 { return unpack2x16float(${v}[i >> 1u])[i & 1u]; }\n`;
    case 'bf16':
      // bf16 is the top half of an f32: move the wanted half there and clear the other.
      return (
        `alias ${T} = u32;\nfn ${fn}(i: u32) -> f32 {\n  let word = ${v}[i >> 1u];\n` +
        `  return bitcast<f32>(select(word << 16u, word & 0xffff0000u, (i & 1u) == 1u));\n}\n`
      );
  }
}

/**
 * The lowest finite f32: WGSL has no infinity literal, so maxima start here. Spelled exactly: WGSL
 * rejects a literal that rounds past the f32 range (the usual -3.40282347e38 does).
 */
export const LOWEST_F32 = '-3.4028234663852886e38';

/**
 * A workgroup tree reduction, the one every reducing kernel uses: `fn <name>(li: u32, v: T) -> T`
 * combines the `size` threads' values (size a power of two) pairwise, thread li with li + k for
 * k = size/2, …, 1, and hands the result to every thread. Like any barrier it must be reached by the
 * whole workgroup (uniform control flow). The order of the combinations is fixed: results are
 * reproducible. A kernel that calls it more than once needs a barrier before each new write of the
 * buffer (a slow thread may still be reading the last result out of it); `calledOnce` leaves that
 * barrier out, which software adapters (llvmpipe) notice in small kernels.
 */
export function workgroupReduce(
  name: string,
  type: string,
  size: number,
  combine: (a: string, b: string) => string,
  { calledOnce = false } = {},
): string {
  if (!Number.isInteger(size) || size < 2 || (size & (size - 1)) !== 0)
    throw new Error(`workgroupReduce: size ${size} is not a power of two`);
  const buf = `${name}Buf`;
  const reuse = calledOnce ? '' : `\n  workgroupBarrier(); // every thread has read the previous result out of ${buf}[0]`;
  return `var<workgroup> ${buf}: array<${type}, ${size}>;
fn ${name}(li: u32, v: ${type}) -> ${type} {${reuse}
  ${buf}[li] = v;
  for (var k = ${size / 2}u; k > 0u; k >>= 1u) {
    workgroupBarrier();
    if (li < k) { ${buf}[li] = ${combine(`${buf}[li]`, `${buf}[li + k]`)}; }
  }
  return workgroupUniformLoad(&${buf}[0]);
}
`;
}

export const sum = (a: string, b: string): string => `${a} + ${b}`;
export const maxOf = (a: string, b: string): string => `max(${a}, ${b})`;
export const minOf = (a: string, b: string): string => `min(${a}, ${b})`;

/** The dtypes that select a kernel's weight and bias loaders (part of its pipeline key). */
export interface KernelDtypes {
  readonly weight?: DType;
  readonly bias?: DType;
}

/**
 * One WGSL compute kernel, as the host sees it: everything the dispatch needs comes from here, so the
 * shader text and the host agree by construction. `params` is its uniform struct (webgpu/uniforms.ts),
 * `access` its storage bindings 1..n ('r' read-only, 'w' read_write, as the shader declares them) and
 * `workgroupSize` the @workgroup_size the code declares, which the host's grid arithmetic also uses.
 */
export interface WgslKernel<F extends UniformFields = UniformFields> {
  /** The pipeline cache key's stem and the shader's label. */
  readonly name: string;
  readonly params: Uniforms<F>;
  readonly access: string;
  readonly workgroupSize: number | readonly [number, number];
  /** The complete WGSL; kernels without weights ignore `dtypes`. */
  readonly code: (dtypes: KernelDtypes) => string;
}

/** Declares a kernel (an identity function that checks the type). */
export const wgslKernel = <const F extends UniformFields>(k: WgslKernel<F>): WgslKernel<F> => k;

/** `@workgroup_size(…)` for a kernel's size. */
export const workgroupSizeAttr = (size: number | readonly [number, number]): string =>
  `@workgroup_size(${typeof size === 'number' ? size : size.join(', ')})`;

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

/**
 * A workgroup reduction with ONE barrier, for reductions whose `size` partial values are few: each
 * thread writes its value, and after the barrier every thread folds all of them, in thread order
 * (`size` reads each, from workgroup memory, where a tree would take log2(size) barriers). Software
 * adapters run a barrier by switching between every invocation of the workgroup, so there a barrier
 * costs far more than the reads; on a GPU the reads are broadcasts. The result is the same in every
 * thread. Like any barrier it must be reached by the whole workgroup; call it once per kernel.
 */
export function workgroupFold(name: string, type: string, size: number, combine: (a: string, b: string) => string): string {
  const buf = `${name}Buf`;
  return `var<workgroup> ${buf}: array<${type}, ${size}>;
fn ${name}(li: u32, v: ${type}) -> ${type} {
  ${buf}[li] = v;
  workgroupBarrier();
  var total = ${buf}[0];
  for (var i = 1u; i < ${size}u; i++) { total = ${combine('total', `${buf}[i]`)}; }
  return total;
}
`;
}

/**
 * The column sums of a mat4x4 accumulated by every thread (column r for output row r, lane m for
 * activation row m), with one barrier: fn <name>(li, acc) returns, in thread li < 16, the sum over the
 * workgroup of acc[li / 4][li % 4], in thread order (other threads get 0). Every thread must call it.
 */
export function workgroupLaneSums(name: string, size: number): string {
  const buf = `${name}Buf`;
  return `var<workgroup> ${buf}: array<mat4x4f, ${size}>;
fn ${name}(li: u32, acc: mat4x4f) -> f32 {
  ${buf}[li] = acc;
  workgroupBarrier();
  var total = 0.0;
  if (li < 16u) { for (var i = 0u; i < ${size}u; i++) { total += ${buf}[i][li / 4u][li % 4u]; } }
  return total;
}
`;
}

export const sum = (a: string, b: string): string => `${a} + ${b}`;
export const maxOf = (a: string, b: string): string => `max(${a}, ${b})`;
export const minOf = (a: string, b: string): string => `min(${a}, ${b})`;

/** The dtypes that select a kernel's weight, bias and norm-weight loaders (part of its pipeline key). */
export interface KernelDtypes {
  readonly weight?: DType;
  readonly bias?: DType;
  /** The RMSNorm weight of a kernel that normalises its input (a checkpoint may keep norms in f32). */
  readonly norm?: DType;
}

/**
 * Activation rows a decode matvec takes (matmul v2 and the fused decode kernels): one lane of a vec4
 * of accumulators each, so each weight element is read once for all of them (ROSE's batch of two).
 */
export const MATVEC_MAX_M = 4;

/**
 * What a fused decode kernel needs to read its input through RMSNorm without a dispatch of its own:
 * the norm weight's loader `loadNorm` (binding `normW`), and for the M ≤ 4 rows of x (K columns,
 * rows past M repeat row M − 1):
 *   xs(k)            x[·, k] as a vec4, one lane per row;
 *   normScale(li)    1 / sqrt(mean(x²) + eps) per row, sum of squares tree-reduced over the WG threads
 *                    (every workgroup recomputes it: K·M multiply-adds, cheap next to its weight rows);
 *   normed(k, s)     normW[k] · (x[·, k] · s), the value rmsnorm would have written, in the same order.
 * Expects `p.M`, `p.K`, `p.eps` in the uniforms and `x` bound; calls its reduction once.
 */
export function normedRows(norm: DType, WG: number): string {
  return `${weightLoader(norm, 'loadNorm', 'normW', 'N_T')}
${workgroupFold('reduceSquares', 'vec4f', WG, sum)}
fn xs(k: u32) -> vec4f {
  let last = p.M - 1u;
  return vec4f(x[k], x[min(1u, last) * p.K + k], x[min(2u, last) * p.K + k], x[min(3u, last) * p.K + k]);
}
fn normScale(li: u32) -> vec4f {
  var ss = vec4f(0.0);
  for (var k = li; k < p.K; k += ${WG}u) { let v = xs(k); ss += v * v; }
  return 1.0 / sqrt(reduceSquares(li, ss) / f32(p.K) + p.eps);
}
fn normed(k: u32, s: vec4f) -> vec4f { return loadNorm(k) * (xs(k) * s); }
`;
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

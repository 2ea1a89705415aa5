/**
 * The compiled kernels of the WebAssembly SIMD tier (kernels.wasm, built from assembly/ by build.ts)
 * and what a host needs to call them: the module, its exports' types, and whether this JavaScript
 * engine can run it at all (WebAssembly SIMD and shared memory: Node ≥ 20, every current browser
 * when the page is cross-origin isolated).
 */
import { readFileSync } from 'node:fs';

/** The module's exports. Every address is a byte offset into the imported shared memory. */
export interface KernelExports {
  /** v4, the decode matvec; see assembly/matmul.ts for the one summation order all of them share. */
  matvecF32: MatmulExport;
  matvecBf16: MatmulExport;
  matvecF16: MatmulExport;
  /** v5, the tiled prefill matmul. */
  matmulTiledF32: MatmulExport;
  matmulTiledBf16: MatmulExport;
  matmulTiledF16: MatmulExport;
  /** Attention v2 over one batch row of the KV cache (assembly/attention.ts; host: ../attention.ts). */
  attentionF32(
    out: number,
    q: number,
    k: number,
    v: number,
    scores: number,
    T: number,
    S: number,
    H: number,
    Hkv: number,
    hd: number,
    slot0: number,
    pad: number,
    scale: number,
  ): void;
  /** contrastSoftmax v2's steps (assembly/contrast.ts; host: ../contrastSoftmax.ts). */
  contrastRowStats(row: number, V: number, out: number): void;
  contrastZ(
    z: number,
    logits: number,
    V: number,
    R: number,
    lse: number,
    alphas: number,
    posMax: number,
    logBeta: number,
    hasBeta: number,
  ): number;
  contrastSoftmaxInPlace(probs: number, V: number, zmax: number, T: number): void;
  /** exp of n f32 at p, in place (assembly/math.ts: the kernels' exp, tested against Math.exp). */
  expInPlace(p: number, n: number): void;
  /** Σ of `bytes` bytes of f32 at p (the SIMD stream read of the benchmarks). */
  streamSum(p: number, bytes: number): number;
}

/** out[m·ldo + n] = Σ_k x[m·K + k]·w[n·K + k] (+ bias[n]) for m < M, n in [n0, n1). */
export type MatmulExport = (
  out: number,
  ldo: number,
  x: number,
  w: number,
  bias: number,
  M: number,
  K: number,
  n0: number,
  n1: number,
) => void;

/**
 * The matmul exports by number, so that a worker can be told which one to run in one Int32 (the
 * pool's control block): index = 3·(variant − 4) + dtype index.
 */
export const MATMUL_EXPORTS = [
  'matvecF32',
  'matvecBf16',
  'matvecF16',
  'matmulTiledF32',
  'matmulTiledBf16',
  'matmulTiledF16',
] as const satisfies readonly (keyof KernelExports)[];

const DTYPE_INDEX = { f32: 0, bf16: 1, f16: 2 } as const;
export const matmulExportIndex = (variant: 4 | 5, dtype: 'f32' | 'bf16' | 'f16'): number => 3 * (variant - 4) + DTYPE_INDEX[dtype];

let compiled: WebAssembly.Module | undefined;

/** The kernels module, compiled once per thread (synchronously: it is ~40 KB). */
export function kernelModule(): WebAssembly.Module {
  compiled ??= new WebAssembly.Module(readFileSync(new URL('./kernels.wasm', import.meta.url)));
  return compiled;
}

/** An instance of the kernels on `memory` (instantiating writes nothing into it: no data segments). */
export function instantiate(module: WebAssembly.Module, memory: WebAssembly.Memory): KernelExports {
  return new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as KernelExports;
}

let support: string | null | undefined;

/**
 * null when this engine runs the tier, else why not (for the backend's description and errors):
 * the module must validate (SIMD, threads) and a shared memory must be creatable.
 */
export function wasmSimdUnsupported(): string | null {
  if (support !== undefined) return support;
  try {
    if (typeof WebAssembly !== 'object') support = 'this JavaScript engine has no WebAssembly';
    else if (!WebAssembly.validate(readFileSync(new URL('./kernels.wasm', import.meta.url))))
      support = 'this engine does not validate the kernels (WebAssembly SIMD or threads missing)';
    else {
      new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
      support = null;
    }
  } catch (e) {
    support = `no shared WebAssembly memory here (${(e as Error).message})`;
  }
  return support;
}

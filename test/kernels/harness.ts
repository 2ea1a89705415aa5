/**
 * The machinery every kernel test file shares (in the spirit of candle's test_device! and ggml's
 * test-backend-ops): ONE test body per op, run once per registered variant of that op on every
 * backend (src/kernels/cpu/variants.ts, webgpu/variants.ts), the variant forced through
 * backend.forceKernels. A new variant is tested by its op's file with no edit there.
 *
 * fast-check (fixed seed) draws the shapes, deliberately including sizes that are not multiples of 4,
 * of the workgroup sizes (64, 256) or of the matmul tile (16); the data come from a seeded PRNG so
 * that big arrays cost nothing to generate. Weights come in all three dtypes: random f32s rounded to
 * f16 / bf16 bytes, which both backends read (the CPU widens them, WebGPU unpacks them in the shader).
 *
 * Tolerances. u = 2⁻²⁴ (unit roundoff of f32). The references (each op file computes its own in one
 * place, `reference`) accumulate in f64 and round once, so the difference is essentially the kernel's
 * f32 rounding; each op's bound is that kernel's worst-case f32 error, written per element from the
 * data (not a blanket epsilon). Copies and the residual add are bit-exact. The measured max |Δ| per
 * (backend, variant, op) is printed at the end of each file.
 */
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { mulberry32 } from '../../src/decode/random.ts';
import { isRoseError } from '../../src/errors.ts';
import type { Backend, DType, HostWeight, Tensor } from '../../src/kernels/backend.ts';
import { CpuBackend } from '../../src/kernels/cpu/backend.ts';
import { narrowFromF32, widenToF32 } from '../../src/kernels/cpu/dtype.ts';
import type { OpName } from '../../src/kernels/registry.ts';
import type { WebGpuBackend } from '../../src/kernels/webgpu/backend.ts';
import type { GpuWeight } from '../../src/kernels/webgpu/context.ts';
import { webGpuUnderTest } from './backends.ts';

export const u = 2 ** -24;
export const SEED = 20240611;
export const TIMEOUT = 120_000;
export const runs = (numRuns: number) => ({ seed: SEED, numRuns, endOnFailure: true });

// --- backends and variants ----------------------------------------------------------------------------

/** The backends of this file: the CPU, and WebGPU where an adapter is (a CI failure where none is). */
export const cpu = new CpuBackend();
export const gpu: WebGpuBackend | undefined = await webGpuUnderTest();
export const backends: Backend[] = gpu ? [cpu, gpu] : [cpu];

/** Bytes per weight binding forced on `splitGpu`: the small test weights then span several buffers. */
const SPLIT_BINDING_BYTES = 256;
let splitGpu: WebGpuBackend | undefined;

/** A (V, D) table in one dtype, uploaded to a backend that splits it by rows across several buffers. */
export interface SplitTable {
  readonly be: WebGpuBackend;
  readonly s: Scope;
  readonly dtype: DType;
  readonly V: number;
  readonly D: number;
  /** The PRNG that made the table, to draw the rest of the case from. */
  readonly r: () => number;
  readonly ref: Float32Array;
  readonly w: GpuWeight;
}

/**
 * WebGPU only (the CPU never splits a weight): the op's variants on a second backend whose weight
 * bindings are forced to SPLIT_BINDING_BYTES, so that small test weights lie in several buffers (a
 * big vocabulary over the binding limit, in miniature). Nothing where there is no adapter.
 */
export async function describeOnSplit(
  op: OpName,
  name: string,
  body: (t: VariantUnderTest, be: WebGpuBackend) => Promise<void>,
): Promise<void> {
  splitGpu ??= gpu && (await webGpuUnderTest({ maxBindingBytesOverride: SPLIT_BINDING_BYTES }));
  const be = splitGpu;
  if (!be) return;
  describeOp(op, (t) => it(name, () => body(t, be), TIMEOUT), [be]);
}

/** Weight rows per buffer on the split backend, for rows of `rowElements` elements in `dtype`. */
export const splitRows = (dtype: DType, rowElements: number): number =>
  Math.floor(SPLIT_BINDING_BYTES / (rowElements * (dtype === 'f32' ? 4 : 2)));

/** describeOnSplit with a (37, 9) table in each dtype, uploaded split by rows across several buffers. */
export async function describeSplit(op: OpName, name: string, body: (t: VariantUnderTest, c: SplitTable) => Promise<void>): Promise<void> {
  await describeOnSplit(op, name, async (t, be) => {
    for (const dtype of ['f32', 'f16', 'bf16'] as const) {
      const [V, D] = [37, 9]; // D odd: half-precision chunks start mid-word in the unsplit layout
      const r = rng(dtype.length);
      const { host, ref } = makeWeight(dtype, [V, D], weightData(r, V * D));
      const w = be.uploadWeight(host) as GpuWeight;
      expect(w.chunks.length).toBe(Math.ceil(V / splitRows(dtype, D)));
      expect(w.chunks.length).toBeGreaterThan(1);
      await withScope(be, (s) => body(t, { be, s, dtype, V, D, r, ref, w }));
    }
  });
}

/** One variant under test: the backend (with the variant forced for the duration of each test) and its entry. */
export interface VariantUnderTest {
  readonly be: Backend;
  readonly op: OpName;
  readonly id: number;
  readonly constraints: string | undefined;
  /** "webgpu v2": the key of the measured-difference table. */
  readonly label: string;
}

/**
 * Declares the op's test body once per (backend, registered variant). The body's `it`s run with the
 * variant forced; each must run the variant at least once (see `accepts`), so a variant whose
 * constraints refuse every drawn shape cannot pass by doing nothing.
 */
export function describeOp(op: OpName, body: (t: VariantUnderTest) => void, on: readonly Backend[] = backends): void {
  for (const be of on) {
    for (const v of be.variants[op].variants) {
      const t: VariantUnderTest = { be, op, id: v.id, constraints: v.constraints, label: `${be.name} v${v.id}` };
      describe(`${op} on ${be.name} v${v.id}: ${v.summary}${v.constraints ? ` (${v.constraints})` : ''}`, () => {
        beforeEach(() => {
          be.forceKernels({ [op]: v.id });
          ran.set(t, 0);
        });
        afterEach((ctx) => {
          be.forceKernels({});
          if (ctx.task.result?.state !== 'fail') expect(ran.get(t), `${t.label} ${op} ran on no case of this test`).toBeGreaterThan(0);
        });
        body(t);
      });
    }
  }
}
const ran = new Map<VariantUnderTest, number>();

/**
 * Calls the op: true when the variant ran it; false when the variant's declared constraints refuse
 * this call, which must then be the clear RoseError('INPUT') naming them, never a silent fallback.
 */
export function accepts(t: VariantUnderTest, call: () => void): boolean {
  try {
    call();
  } catch (e) {
    if (!isRoseError(e) || e.code !== 'INPUT' || t.constraints === undefined) throw e;
    expect(e.message).toContain(`takes only ${t.constraints}`);
    return false;
  }
  ran.set(t, (ran.get(t) ?? 0) + 1);
  return true;
}

/** Counts a call that cannot be refused (ops whose variants take every call) as run. */
export function run(t: VariantUnderTest, call: () => void): void {
  if (!accepts(t, call)) throw new Error(`${t.label} ${t.op} refused a call it must take`);
}

/** `run` for an op that returns a promise (contrastSoftmax). */
export async function runAsync<T>(t: VariantUnderTest, call: () => Promise<T>): Promise<T> {
  const result = await call();
  ran.set(t, (ran.get(t) ?? 0) + 1);
  return result;
}

// --- data -------------------------------------------------------------------------------------------

const made = new Map<string, unknown>();
/**
 * `make()` once per key in this file. Every variant draws the same cases (one seed), so a case's data
 * and reference are built once, not once per variant: the variants multiply kernel runs, not set-up.
 */
export function cached<T>(key: string, make: () => T): T {
  if (!made.has(key)) made.set(key, make());
  return made.get(key) as T;
}

export const rng = mulberry32;
export const uniform = (r: () => number, n: number, lo = -1, hi = 1): Float32Array =>
  Float32Array.from({ length: n }, () => lo + (hi - lo) * r());

/** A weight in `dtype` made by rounding `data`, and the exact f32 values both backends will see. */
export function makeWeight(dtype: DType, shape: number[], data: Float32Array): { host: HostWeight; ref: Float32Array } {
  const bytes = narrowFromF32(dtype, data);
  return { host: { name: `w${shape.join('x')}`, dtype, shape, bytes }, ref: widenToF32(dtype, bytes) };
}

/** Weights with ~10% tiny entries: they are f16 subnormals, which the shader must unpack exactly. */
export const weightData = (r: () => number, n: number): Float32Array =>
  Float32Array.from({ length: n }, () => (r() * 2 - 1) * (r() < 0.1 ? 2 ** -17 : 1));

export const arbDtype = fc.constantFrom<DType>('f32', 'f16', 'bf16');
export const arbSeed = fc.integer({ min: 1, max: 2 ** 31 - 1 });

/** Tensors made in one property run, freed at its end. */
export class Scope {
  private readonly made: Tensor[] = [];
  constructor(readonly be: Backend) {}
  tensor(shape: number[], data?: Float32Array): Tensor {
    const t = this.be.alloc(shape);
    if (data) this.be.write(t, data);
    this.made.push(t);
    return t;
  }
  free(): void {
    for (const t of this.made.splice(0)) this.be.free(t);
  }
}
export async function withScope<T>(be: Backend, f: (s: Scope) => Promise<T>): Promise<T> {
  const s = new Scope(be);
  try {
    return await f(s);
  } finally {
    s.free();
  }
}

// --- comparison -------------------------------------------------------------------------------------

/** Max |Δ| per (backend, variant, check), printed after the file: the numbers behind the tolerances. */
const deltas = new Map<string, { max: number; ratio: number }>();

/** got ≈ ref elementwise within tol(i); every value finite. tol = 0 means bit-exact. `label` keys the printed table. */
export function expectClose(label: string, what: string, got: Float32Array, ref: Float32Array, tol: (i: number) => number): void {
  expect(got.length).toBe(ref.length);
  const key = `${label} ${what}`;
  const d = deltas.get(key) ?? { max: 0, ratio: 0 };
  for (let i = 0; i < ref.length; i++) {
    if (!Number.isFinite(got[i])) throw new Error(`${what}: non-finite ${got[i]} at ${i}`);
    const diff = Math.abs(got[i] - ref[i]);
    const t = tol(i);
    if (t === 0 ? !Object.is(got[i], ref[i]) : diff > t) {
      throw new Error(`${what}: element ${i} is ${got[i]}, expected ${ref[i]} (|Δ| ${diff.toExponential(3)} > tol ${t.toExponential(3)})`);
    }
    d.max = Math.max(d.max, diff);
    if (t > 0) d.ratio = Math.max(d.ratio, diff / t);
  }
  deltas.set(key, d);
}
export const exact = (): number => 0;

afterAll(() => {
  for (const b of [...backends, splitGpu]) b?.destroy();
  const lines = [...deltas].map(([k, v]) => `  ${k.padEnd(40)} max|Δ| ${v.max.toExponential(2)}   max |Δ|/tol ${v.ratio.toFixed(3)}`);
  if (lines.length) process.stderr.write(`[kernels] measured differences vs the references:\n${lines.join('\n')}\n`);
});

// --- the fused ops' references --------------------------------------------------------------------------

/**
 * x (M, K) through RMSNorm in float64, never rounded: w[k] · x[m, k] / sqrt(mean(x[m, ·]²) + eps). The
 * fused ops' references (normQkv, normGateUpSwiglu, normMatmul) start from it, independently of the
 * code under test (whose v1 rounds it to f32 through rmsnorm, and whose v2 never stores it).
 */
export function rmsnormF64(x: Float32Array, norm: Float32Array, M: number, K: number, eps: number): Float64Array {
  const out = new Float64Array(M * K);
  for (let m = 0; m < M; m++) {
    let ss = 0;
    for (let k = 0; k < K; k++) ss += x[m * K + k] ** 2;
    const scale = 1 / Math.sqrt(ss / K + eps);
    for (let k = 0; k < K; k++) out[m * K + k] = norm[k] * x[m * K + k] * scale;
  }
  return out;
}

/**
 * A projection of normalised rows in float64: value[m, n] = Σ_k xn[m, k]·w[n, k] + b[n], and beside
 * it the bound on any correct f32 evaluation, per output:
 *   (2K + 20)·u·(Σ_k |xn·w| + |b|).
 * Why: each normalised element is within (K + 16)·u relatively of xn (rmsnorm's bound: the sum of K
 * squares, the sqrt, the division and two products; whether rounded to f32 first, v1, or not, the
 * fused kernels), which moves the sum by at most (K + 16)·u·Σ|xn·w|; the sum itself, in any order,
 * adds (K + 2)·u·(Σ|xn·w| + |b|) as matmul's bound; the cross term is below the 2u left over.
 */
export function normedProjectionF64(
  xn: Float64Array,
  w: Float32Array,
  bias: Float32Array | undefined,
  M: number,
  N: number,
  K: number,
): { value: Float64Array; bound: Float64Array } {
  const value = new Float64Array(M * N);
  const bound = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = bias ? bias[n] : 0;
      let abs = bias ? Math.abs(bias[n]) : 0;
      for (let k = 0; k < K; k++) {
        s += xn[m * K + k] * w[n * K + k];
        abs += Math.abs(xn[m * K + k] * w[n * K + k]);
      }
      value[m * N + n] = s;
      bound[m * N + n] = (2 * K + 20) * u * abs + 1e-37;
    }
  }
  return { value, bound };
}

/**
 * Every op, on every backend, against its CPU twin (in the spirit of candle's test_device! and ggml's
 * test-backend-ops): ONE test body per op, run once per backend from backendsUnderTest().
 *
 * fast-check (fixed seed) draws the shapes, deliberately including sizes that are not multiples of 4,
 * of the workgroup sizes (64, 256) or of the matmul tile (16); the data come from a seeded PRNG so
 * that big arrays cost nothing to generate. Weights come in all three dtypes: random f32s rounded to
 * f16 / bf16 bytes, which both backends read (the CPU widens them, WebGPU unpacks them in the shader).
 *
 * Tolerances. u = 2⁻²⁴ (unit roundoff of f32). The CPU twins accumulate in f64 and round once, so the
 * difference is essentially the WebGPU kernel's f32 rounding; each op's bound below is that kernel's
 * worst-case f32 error, written per element from the data (not a blanket epsilon). Copies (embedding,
 * gatherRows, kvWrite) and the residual add (one correctly rounded f32 add on both sides) are
 * bit-exact. The measured max |Δ| per op is printed at the end.
 */
import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { Backend, ContrastParams, DType, HostWeight, Tensor } from '../../src/kernels/backend.ts';
import { widenToF32 } from '../../src/kernels/cpu/dtype.ts';
import { embeddingCpu } from '../../src/kernels/embedding.ts';
import { rmsnormCpu } from '../../src/kernels/rmsnorm.ts';
import { matmulCpu } from '../../src/kernels/matmul.ts';
import { ropeCpu } from '../../src/kernels/rope.ts';
import { kvWriteCpu } from '../../src/kernels/kvWrite.ts';
import { attentionCpu } from '../../src/kernels/attention.ts';
import { swigluCpu } from '../../src/kernels/swiglu.ts';
import { addInPlaceCpu } from '../../src/kernels/addInPlace.ts';
import { gatherRowsCpu } from '../../src/kernels/gatherRows.ts';
import { contrastSoftmaxCpu } from '../../src/kernels/contrastSoftmax.ts';
import type { WebGpuBackend } from '../../src/kernels/webgpu/backend.ts';
import type { GpuWeight } from '../../src/kernels/webgpu/context.ts';
import { backendsUnderTest, webGpuUnderTest } from './backends.ts';

const backends = await backendsUnderTest();
const u = 2 ** -24;
const SEED = 20240611;
const TIMEOUT = 120_000;
const runs = (numRuns: number) => ({ seed: SEED, numRuns, endOnFailure: true });

// --- data -------------------------------------------------------------------------------------------

/** mulberry32: a tiny seeded PRNG, uniform in [0, 1). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const uniform = (r: () => number, n: number, lo = -1, hi = 1): Float32Array => Float32Array.from({ length: n }, () => lo + (hi - lo) * r());

/** f32 → f16 bits, round to nearest even (subnormals included). */
function f32ToF16(v: number): number {
  const bits = new Uint32Array(Float32Array.of(v).buffer)[0];
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  let mant = bits & 0x7fffff;
  const e = exp - 127 + 15;
  if (exp === 0xff || e >= 0x1f) return sign | 0x7c00;
  let shift = 13;
  let half: number;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    shift = 14 - e;
    half = mant >>> shift;
  } else half = (e << 10) | (mant >>> 13);
  const rem = mant & ((1 << shift) - 1);
  const mid = 1 << (shift - 1);
  if (rem > mid || (rem === mid && half & 1)) half++; // a carry into the exponent is still right
  return sign | half;
}
const f32ToBf16 = (bits: number): number => ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;

/** A weight in `dtype` made by rounding `data`, and the exact f32 values both backends will see. */
function makeWeight(dtype: DType, shape: number[], data: Float32Array): { host: HostWeight; ref: Float32Array } {
  let bytes: Uint8Array;
  if (dtype === 'f32') bytes = new Uint8Array(data.slice().buffer);
  else {
    const bits = new Uint32Array(data.slice().buffer);
    const half = Uint16Array.from(bits, (b, i) => (dtype === 'bf16' ? f32ToBf16(b) : f32ToF16(data[i])));
    bytes = new Uint8Array(half.buffer);
  }
  return { host: { name: `w${shape.join('x')}`, dtype, shape, bytes }, ref: widenToF32(dtype, bytes) };
}

/** Weights with ~10% tiny entries: they are f16 subnormals, which the shader must unpack exactly. */
const weightData = (r: () => number, n: number): Float32Array =>
  Float32Array.from({ length: n }, () => (r() * 2 - 1) * (r() < 0.1 ? 2 ** -17 : 1));

const arbDtype = fc.constantFrom<DType>('f32', 'f16', 'bf16');
const arbSeed = fc.integer({ min: 1, max: 2 ** 31 - 1 });

/** Tensors made in one property run, freed at its end. */
class Scope {
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
async function withScope<T>(be: Backend, f: (s: Scope) => Promise<T>): Promise<T> {
  const s = new Scope(be);
  try {
    return await f(s);
  } finally {
    s.free();
  }
}

// --- comparison -------------------------------------------------------------------------------------

/** Max |Δ| per (backend, op), printed after the run: the numbers behind the tolerances. */
const deltas = new Map<string, { max: number; ratio: number }>();

/** got ≈ ref elementwise within tol(i); every value finite. tol = 0 means bit-exact. */
function expectClose(be: Backend, op: string, got: Float32Array, ref: Float32Array, tol: (i: number) => number): void {
  expect(got.length).toBe(ref.length);
  const key = `${be.name} ${op}`;
  const d = deltas.get(key) ?? { max: 0, ratio: 0 };
  for (let i = 0; i < ref.length; i++) {
    if (!Number.isFinite(got[i])) throw new Error(`${op}: non-finite ${got[i]} at ${i}`);
    const diff = Math.abs(got[i] - ref[i]);
    const t = tol(i);
    if (t === 0 ? !Object.is(got[i], ref[i]) : diff > t) {
      throw new Error(`${op}: element ${i} is ${got[i]}, expected ${ref[i]} (|Δ| ${diff.toExponential(3)} > tol ${t.toExponential(3)})`);
    }
    d.max = Math.max(d.max, diff);
    if (t > 0) d.ratio = Math.max(d.ratio, diff / t);
  }
  deltas.set(key, d);
}
const exact = (): number => 0;

/**
 * Matmul bound for out[m, n]: a sum of K rounded products in ANY order (strided + tree in the matvec,
 * 16-wide tiles in the tiled kernel) is within γ_{K+1}·Σ|x_k·w_k| of the exact one; + 1 for the bias.
 */
function matmulTol(x: Float32Array, w: Float32Array, bias: Float32Array | undefined, N: number, K: number): (i: number) => number {
  return (i) => {
    const m = Math.floor(i / N);
    const n = i % N;
    let abs = bias ? Math.abs(bias[n]) : 0;
    for (let k = 0; k < K; k++) abs += Math.abs(x[m * K + k] * w[n * K + k]);
    return (K + 2) * u * abs + 1e-37;
  };
}

afterAll(() => {
  for (const b of backends) b.destroy();
  const lines = [...deltas].map(([k, v]) => `  ${k.padEnd(28)} max|Δ| ${v.max.toExponential(2)}   max |Δ|/tol ${v.ratio.toFixed(3)}`);
  process.stderr.write(`[kernels] measured differences vs the CPU twins:\n${lines.join('\n')}\n`);
});

// --- contrast helpers (f64, as the CPU twin) --------------------------------------------------------

function contrastZ(logits: Float32Array, V: number, p: ContrastParams): { z: Float64Array; kept: boolean[]; lse: number[] } {
  const R = logits.length / V;
  const lse: number[] = [];
  for (let r = 0; r < R; r++) {
    let m = -Infinity;
    for (let v = 0; v < V; v++) m = Math.max(m, logits[r * V + v]);
    let s = 0;
    for (let v = 0; v < V; v++) s += Math.exp(logits[r * V + v] - m);
    lse.push(m + Math.log(s));
  }
  let posMax = -Infinity;
  for (let v = 0; v < V; v++) posMax = Math.max(posMax, logits[v]);
  const z = new Float64Array(V);
  const kept: boolean[] = [];
  for (let v = 0; v < V; v++) {
    kept.push(!(p.beta > 0 && logits[v] - posMax < Math.log(p.beta)));
    let zv = logits[v] - lse[0];
    for (let r = 1; r < R; r++) zv -= (p.alphas[r - 1] ?? 0) * (logits[r * V + v] - lse[r]);
    z[v] = zv;
  }
  return { z, kept, lse };
}

/**
 * Error bound of the f32 kernel's z (see the kernel's five steps): each row's lse carries the f32 sum
 * of V exps, each (3 + 2|x|) ulp (WGSL's exp accuracy), |x| ≤ the row's range, plus log's 2⁻²¹
 * absolute error and the rounding of max + log(sum); z adds one rounding per term of every row.
 */
function zErrorBound(logits: Float32Array, V: number, p: ContrastParams, lse: number[]): number {
  const R = logits.length / V;
  let e = 0;
  let mag = 0;
  for (let r = 0; r < R; r++) {
    let lo = Infinity;
    let hi = -Infinity;
    for (let v = 0; v < V; v++) {
      lo = Math.min(lo, logits[r * V + v]);
      hi = Math.max(hi, logits[r * V + v]);
    }
    const w = r === 0 ? 1 : Math.abs(p.alphas[r - 1] ?? 0);
    e += w * ((V + 3 + 2 * (hi - lo)) * u + 2 ** -21 + u * Math.abs(lse[r]));
    mag += w * (Math.max(Math.abs(lo), Math.abs(hi)) + Math.abs(lse[r]));
  }
  return e + 4 * (R + 1) * u * mag;
}

/** The sampled-token rule, checked on a backend's own probs: the first kept id whose CDF passes u. */
function expectCdfRule(probs: Float32Array, uni: number, sampled: number, slack: number): void {
  expect(sampled).toBeGreaterThanOrEqual(0);
  expect(sampled).toBeLessThan(probs.length);
  let before = 0;
  for (let v = 0; v < sampled; v++) before += probs[v];
  const at = before + probs[sampled];
  let lastKept = -1;
  for (let v = probs.length - 1; v >= 0 && lastKept < 0; v--) if (probs[v] > 0) lastKept = v;
  expect(probs[sampled]).toBeGreaterThan(0);
  expect(before).toBeLessThanOrEqual(uni + slack); // no earlier token already crossed u
  if (sampled !== lastKept) expect(at).toBeGreaterThan(uni - slack); // it crosses u (or is the fallback)
}

// --- the ops ------------------------------------------------------------------------------------------

describe.each(backends.map((b) => [b.name, b] as const))('%s backend vs the CPU twins', (_name, be) => {
  it(
    'embedding: bit-exact rows of the table, every dtype (f16 subnormals included)',
    async () => {
      const arb = fc.record({
        V: fc.integer({ min: 1, max: 300 }),
        D: fc.integer({ min: 1, max: 70 }),
        M: fc.integer({ min: 1, max: 9 }),
        dtype: arbDtype,
        seed: arbSeed,
      });
      await fc.assert(
        fc.asyncProperty(arb, ({ V, D, M, dtype, seed }) =>
          withScope(be, async (s) => {
            const r = rng(seed);
            const { host, ref } = makeWeight(dtype, [V, D], weightData(r, V * D));
            const ids = Int32Array.from({ length: M }, () => Math.floor(r() * V));
            const out = s.tensor([M, D]);
            be.embedding(out, be.uploadWeight(host), ids);
            const want = new Float32Array(M * D);
            embeddingCpu(want, ref, ids, D);
            expectClose(be, 'embedding', await be.read(out), want, exact);
          }),
        ),
        runs(40),
      );
    },
    TIMEOUT,
  );

  it(
    'rmsnorm: rtol (D + 16)·u',
    async () => {
      // The sum of D positive squares in any order is within γ_D ≈ D·u relatively (halved by the sqrt);
      // sqrt, the division and the two multiplies add ~12 ulp (WGSL: sqrt/÷ are 2.5 ulp).
      const arb = fc.record({
        M: fc.integer({ min: 1, max: 6 }),
        D: fc.integer({ min: 1, max: 600 }),
        eps: fc.constantFrom(1e-6, 1e-5),
        dtype: arbDtype,
        seed: arbSeed,
      });
      await fc.assert(
        fc.asyncProperty(arb, ({ M, D, eps, dtype, seed }) =>
          withScope(be, async (s) => {
            const r = rng(seed);
            const x = uniform(r, M * D, -3, 3);
            const { host, ref } = makeWeight(dtype, [D], uniform(r, D, 0.5, 1.5));
            const out = s.tensor([M, D]);
            be.rmsnorm(out, s.tensor([M, D], x), be.uploadWeight(host), eps);
            const want = new Float32Array(M * D);
            rmsnormCpu(want, x, ref, D, eps);
            expectClose(be, 'rmsnorm', await be.read(out), want, (i) => (D + 16) * u * Math.abs(want[i]) + 1e-37);
          }),
        ),
        runs(40),
      );
    },
    TIMEOUT,
  );

  it(
    'matmul: matvec (M ≤ 4) and tiled paths, bias or not, |Δ| ≤ (K + 2)·u·(Σ|x·w| + |b|)',
    async () => {
      // A sum of K rounded products in ANY order (the kernels use a strided + tree order and a 16-wide
      // tile order) is within γ_{K+1}·Σ|x_k·w_k| of the exact one; the bias add is one more rounding.
      const arb = fc.record({
        M: fc.oneof(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 5, max: 40 }), fc.integer({ min: 60, max: 140 })), // several 64-row tiles
        N: fc.integer({ min: 1, max: 150 }),
        K: fc.integer({ min: 1, max: 300 }),
        bias: fc.boolean(),
        dtype: arbDtype,
        seed: arbSeed,
      });
      await fc.assert(
        fc.asyncProperty(arb, ({ M, N, K, bias, dtype, seed }) =>
          withScope(be, async (s) => {
            const r = rng(seed);
            const x = uniform(r, M * K, -2, 2);
            const w = makeWeight(dtype, [N, K], weightData(r, N * K));
            const b = bias ? makeWeight(dtype, [N], uniform(r, N)) : undefined;
            const out = s.tensor([M, N]);
            be.matmul(out, s.tensor([M, K], x), be.uploadWeight(w.host), b && be.uploadWeight(b.host));
            const want = new Float32Array(M * N);
            matmulCpu(want, x, w.ref, b?.ref, M, N, K);
            expectClose(be, M <= 4 ? 'matmul (matvec)' : 'matmul (tiled)', await be.read(out), want, matmulTol(x, w.ref, b?.ref, N, K));
          }),
        ),
        runs(80),
      );
    },
    TIMEOUT,
  );

  it(
    'rope: |Δ| ≤ 3u·(|a·cos| + |b·sin|) per rotated element (|b·cos| + |a·sin| for the second half)',
    async () => {
      // a·c − b·s in f32: two rounded products (or one FMA) and a rounded difference, vs the twin's one
      // final rounding: ≤ 3u·(|a·c| + |b·s|).
      const arb = fc.record({
        M: fc.integer({ min: 1, max: 7 }),
        heads: fc.integer({ min: 1, max: 5 }),
        half: fc.integer({ min: 1, max: 20 }),
        P: fc.integer({ min: 1, max: 20 }),
        seed: arbSeed,
      });
      await fc.assert(
        fc.asyncProperty(arb, ({ M, heads, half, P, seed }) =>
          withScope(be, async (s) => {
            const r = rng(seed);
            const hd = 2 * half;
            const angles = uniform(r, P * half, -1000, 1000);
            const table = new Float32Array(P * hd);
            for (let p = 0; p < P; p++) {
              for (let i = 0; i < half; i++) {
                table[p * hd + i] = Math.cos(angles[p * half + i]);
                table[p * hd + half + i] = Math.sin(angles[p * half + i]);
              }
            }
            const x = uniform(r, M * heads * hd, -4, 4);
            const positions = Int32Array.from({ length: M }, () => Math.floor(r() * P));
            const xt = s.tensor([M, heads * hd], x);
            be.rope(xt, s.tensor([P, hd], table), positions, heads);
            const want = x.slice();
            ropeCpu(want, table, positions, heads, hd);
            expectClose(be, 'rope', await be.read(xt), want, (i) => {
              const j = i % hd;
              const m = Math.floor(i / (heads * hd));
              const k = j % half;
              const base = i - j;
              const c = table[positions[m] * hd + k];
              const sn = table[positions[m] * hd + half + k];
              const a = x[base + k];
              const b = x[base + half + k];
              // first half: a·c − b·s; second half: b·c + a·s
              return 3 * u * (j < half ? Math.abs(a * c) + Math.abs(b * sn) : Math.abs(b * c) + Math.abs(a * sn)) + 1e-37;
            });
          }),
        ),
        runs(40),
      );
    },
    TIMEOUT,
  );

  it(
    'kvWrite: bit-exact, other slots untouched',
    async () => {
      const arb = fc
        .record({
          B: fc.integer({ min: 1, max: 3 }),
          S: fc.integer({ min: 1, max: 12 }),
          Hkv: fc.integer({ min: 1, max: 3 }),
          hd: fc.integer({ min: 1, max: 9 }),
          seed: arbSeed,
        })
        .chain((c) =>
          fc.integer({ min: 1, max: c.S }).chain((T) => fc.integer({ min: 0, max: c.S - T }).map((slot0) => ({ ...c, T, slot0 }))),
        );
      await fc.assert(
        fc.asyncProperty(arb, ({ B, S, Hkv, hd, T, slot0, seed }) =>
          withScope(be, async (s) => {
            const r = rng(seed);
            const cache0 = uniform(r, B * S * Hkv * hd);
            const src = uniform(r, B * T * Hkv * hd);
            const cache = s.tensor([B, S, Hkv, hd], cache0);
            be.kvWrite(cache, s.tensor([B * T, Hkv * hd], src), slot0);
            const want = cache0.slice();
            kvWriteCpu(want, src, B, S, Hkv * hd, slot0);
            expectClose(be, 'kvWrite', await be.read(cache), want, exact);
          }),
        ),
        runs(40),
      );
    },
    TIMEOUT,
  );

  it(
    'attention: causal GQA (ratios 1, 2, 3, H), pads skipped, pad queries exactly 0',
    async () => {
      const arb = fc
        .record({
          B: fc.integer({ min: 1, max: 3 }),
          Hkv: fc.integer({ min: 1, max: 3 }),
          ratio: fc.constantFrom(1, 2, 3, 4), // Hkv = 1 with ratio H is MQA
          hd: fc.oneof(fc.integer({ min: 1, max: 24 }), fc.integer({ min: 60, max: 80 })), // past the 64 threads
          S: fc.integer({ min: 1, max: 140 }), // past one 64-key block
          seed: arbSeed,
        })
        .chain((c) =>
          fc
            .integer({ min: 1, max: Math.min(4, c.S) })
            .chain((T) => fc.integer({ min: 0, max: c.S - T }).map((slot0) => ({ ...c, T, slot0 }))),
        )
        .chain((c) =>
          fc.array(fc.integer({ min: 0, max: c.slot0 + c.T }), { minLength: c.B, maxLength: c.B }).map((pads) => ({ ...c, pads })),
        );
      await fc.assert(
        fc.asyncProperty(arb, ({ B, Hkv, ratio, hd, S, T, slot0, pads, seed }) =>
          withScope(be, async (s) => {
            const r = rng(seed);
            const H = Hkv * ratio;
            const q = uniform(r, B * T * H * hd, -2, 2);
            const k = uniform(r, B * S * Hkv * hd, -2, 2);
            const v = uniform(r, B * S * Hkv * hd, -2, 2);
            const padLen = Int32Array.from(pads);
            const out = s.tensor([B * T, H * hd]);
            const kc = s.tensor([B, S, Hkv, hd], k);
            const vc = s.tensor([B, S, Hkv, hd], v);
            be.attention(out, s.tensor([B * T, H * hd], q), kc, vc, padLen, slot0);
            const want = new Float32Array(B * T * H * hd);
            attentionCpu(want, q, k, v, padLen, slot0, { B, T, S, H, Hkv, hd });
            // Per query row: a score is off by E ≤ (hd + 2)·u·scale·Σ|q·k|; a softmax weight then by ≤ 4E
            // relatively (its own score, the max, the normaliser), plus exp's (3 + 2|x|) ulp (Σ p|x| ≤
            // ln n + 1) and the f32 sums of n terms; the output is a p-weighted mean of v.
            const scale = 1 / Math.sqrt(hd);
            const tolOf = new Map<number, number>();
            const tol = (i: number): number => {
              const row = Math.floor(i / hd); // (b·T + t)·H + h
              const d = i % hd;
              const b = Math.floor(row / (T * H));
              const sl = slot0 + (Math.floor(row / H) % T);
              if (padLen[b] > sl) return 0; // a pad query: exactly 0
              const kvh = Math.floor((row % H) / ratio);
              let E = tolOf.get(row);
              if (E === undefined) {
                E = 0;
                for (let j = padLen[b]; j <= sl; j++) {
                  let a = 0;
                  for (let c = 0; c < hd; c++) a += Math.abs(q[row * hd + c] * k[((b * S + j) * Hkv + kvh) * hd + c]);
                  E = Math.max(E, (hd + 2) * u * scale * a);
                }
                tolOf.set(row, E);
              }
              const n = sl - padLen[b] + 1;
              let vmax = 0;
              for (let j = padLen[b]; j <= sl; j++) vmax = Math.max(vmax, Math.abs(v[((b * S + j) * Hkv + kvh) * hd + d]));
              return (4 * E + (2 * n + 3 * Math.log(n + 1) + 40) * u) * vmax + 1e-30;
            };
            expectClose(be, 'attention', await be.read(out), want, tol);
          }),
        ),
        runs(60),
      );
    },
    TIMEOUT,
  );

  it(
    'swiglu: rtol (9 + 2|g|)·u, atol 1e-30 (exp clamp), finite at |g| = 100',
    async () => {
      // exp(−g) is (3 + 2|g|) ulp in WGSL; 1 + e, the division and the product add ~5 ulp, the twin's
      // final rounding 1. Past g < −80 the kernel clamps exp: its result and the twin's are both < 1e-32.
      const arb = fc.record({ n: fc.integer({ min: 1, max: 700 }), seed: arbSeed });
      await fc.assert(
        fc.asyncProperty(arb, ({ n, seed }) =>
          withScope(be, async (s) => {
            const r = rng(seed);
            const gate = uniform(r, n, -12, 12);
            for (let i = 0; i < n; i++) if (r() < 0.03) gate[i] = r() < 0.5 ? 100 : -100;
            const up = uniform(r, n, -3, 3);
            const out = s.tensor([n]);
            be.swiglu(out, s.tensor([n], gate), s.tensor([n], up));
            const want = new Float32Array(n);
            swigluCpu(want, gate, up);
            expectClose(be, 'swiglu', await be.read(out), want, (i) => (9 + 2 * Math.abs(gate[i])) * u * Math.abs(want[i]) + 1e-30);
          }),
        ),
        runs(30),
      );
    },
    TIMEOUT,
  );

  it(
    'addInPlace: bit-exact (one correctly rounded f32 add on both sides)',
    async () => {
      const arb = fc.record({ n: fc.integer({ min: 1, max: 1000 }), seed: arbSeed });
      await fc.assert(
        fc.asyncProperty(arb, ({ n, seed }) =>
          withScope(be, async (s) => {
            const r = rng(seed);
            const x = uniform(r, n, -10, 10);
            const y = uniform(r, n, -10, 10);
            const xt = s.tensor([n], x);
            be.addInPlace(xt, s.tensor([n], y));
            const want = x.slice();
            addInPlaceCpu(want, y);
            expectClose(be, 'addInPlace', await be.read(xt), want, exact);
          }),
        ),
        runs(30),
      );
    },
    TIMEOUT,
  );

  it(
    'gatherRows: bit-exact',
    async () => {
      const arb = fc.record({
        M: fc.integer({ min: 1, max: 10 }),
        D: fc.integer({ min: 1, max: 300 }),
        R: fc.integer({ min: 1, max: 6 }),
        seed: arbSeed,
      });
      await fc.assert(
        fc.asyncProperty(arb, ({ M, D, R, seed }) =>
          withScope(be, async (s) => {
            const r = rng(seed);
            const x = uniform(r, M * D);
            const rows = Int32Array.from({ length: R }, () => Math.floor(r() * M));
            const out = s.tensor([R, D]);
            be.gatherRows(out, s.tensor([M, D], x), rows);
            const want = new Float32Array(R * D);
            gatherRowsCpu(want, x, rows, D);
            expectClose(be, 'gatherRows', await be.read(out), want, exact);
          }),
        ),
        runs(30),
      );
    },
    TIMEOUT,
  );

  it(
    'grids past 65 535 workgroups fold into x·y: a 70 001-row matvec (a big vocab), 66 000-row rmsnorm, 16.8 M-element add',
    async () => {
      await withScope(be, async (s) => {
        const r = rng(11);
        const [M, N, K] = [2, 70_001, 5];
        const x = uniform(r, M * K);
        const w = makeWeight('f16', [N, K], weightData(r, N * K));
        const out = s.tensor([M, N]);
        be.matmul(out, s.tensor([M, K], x), be.uploadWeight(w.host));
        const want = new Float32Array(M * N);
        matmulCpu(want, x, w.ref, undefined, M, N, K);
        expectClose(be, 'matmul (matvec, 2-D grid)', await be.read(out), want, matmulTol(x, w.ref, undefined, N, K));

        const rows = 66_000;
        const xs = uniform(r, rows * 3, -3, 3);
        const nw = makeWeight('bf16', [3], Float32Array.of(1, -0.5, 2));
        const normed = s.tensor([rows, 3]);
        be.rmsnorm(normed, s.tensor([rows, 3], xs), be.uploadWeight(nw.host), 1e-6);
        const wantNorm = new Float32Array(rows * 3);
        rmsnormCpu(wantNorm, xs, nw.ref, 3, 1e-6);
        expectClose(be, 'rmsnorm (2-D grid)', await be.read(normed), wantNorm, (i) => 19 * u * Math.abs(wantNorm[i]) + 1e-37);

        const n = 65_535 * 256 + 1000; // one more than 65 535 workgroups of 256 can cover
        const a = new Float32Array(n);
        const b = new Float32Array(n);
        for (let i = 0; i < n; i++) [a[i], b[i]] = [(i % 1013) * 0.37, (i % 997) * -0.61]; // cheap to make
        const at = s.tensor([n], a);
        be.addInPlace(at, s.tensor([n], b));
        addInPlaceCpu(a, b);
        expectClose(be, 'addInPlace (2-D grid)', await be.read(at), a, exact);
      });
    },
    TIMEOUT,
  );

  it(
    'contrastSoftmax: probs, argmax and sampled token vs the twin; probs sum to 1; CDF rule',
    async () => {
      const arb = fc.record({
        V: fc.oneof(fc.integer({ min: 1, max: 300 }), fc.integer({ min: 500, max: 1100 })),
        R: fc.integer({ min: 1, max: 4 }),
        alpha: fc.constantFrom(0, 0.1, 0.5, 1, 1.7),
        temperature: fc.constantFrom(0.3, 0.7, 1, 1.5),
        beta: fc.constantFrom(0, 0, 0.05, 0.3, 1),
        uni: fc.double({ min: 0, max: 0.999, noNaN: true }),
        spread: fc.constantFrom(1, 4, 10),
        seed: arbSeed,
      });
      await fc.assert(
        fc.asyncProperty(arb, ({ V, R, alpha, temperature, beta, uni, spread, seed }) =>
          withScope(be, async (s) => {
            const r = rng(seed);
            const logits = new Float32Array(R * V);
            for (let row = 0; row < R; row++) {
              const offset = (r() * 2 - 1) * 20; // softmax ignores it; the kernel must too
              for (let v = 0; v < V; v++) logits[row * V + v] = offset + (r() * 2 - 1) * spread;
            }
            const alphas = Array.from({ length: R - 1 }, (_, i) => alpha * (1 + i * 0.25));
            const params: ContrastParams = { alphas, temperature, beta, uniform: uni };
            const probs = s.tensor([V]);
            const got = await be.contrastSoftmax(probs, s.tensor([R, V], logits), params);
            const p = await be.read(probs);
            const want = new Float32Array(V);
            const ref = contrastSoftmaxCpu(want, logits, V, params);

            const { z, kept, lse } = contrastZ(logits, V, params);
            const Ez = zErrorBound(logits, V, params, lse);
            const zMax = z[ref.argmax];
            // p = exp((z − zmax)/T)/Σ: the argument is off by ≤ 2Ez/T plus 2 roundings of |x|, exp by
            // (3 + 2|x|) ulp, Σ by its V-term f32 sum (each term already bounded), + the twin's rounding.
            let xRange = 0;
            for (let v = 0; v < V; v++) if (kept[v]) xRange = Math.max(xRange, (zMax - z[v]) / temperature);
            const rel = (v: number): number =>
              (2 * Ez) / temperature + (4 * ((zMax - z[v]) / temperature) + 8) * u + (V + 3 + 2 * xRange) * u;
            expectClose(be, 'contrastSoftmax probs', p, want, (v) => (kept[v] ? rel(v) * want[v] + 1e-30 : 0));
            // Probabilities sum to 1 within the normaliser's relative error, (V + 16)·u.
            expect(Math.abs(p.reduce((a, b) => a + b, 0) - 1)).toBeLessThanOrEqual((V + 16) * u);
            // argmax: the twin's, unless the top two z are closer than the kernel's error (then any of them).
            expect(kept[got.argmax]).toBe(true);
            if (got.argmax !== ref.argmax) expect(zMax - z[got.argmax]).toBeLessThanOrEqual(2 * Ez);
            // sampled: the CDF rule on this backend's own probs; the twin's token unless u sits within the
            // CDF's error of a step.
            let slack = (V + 10) * u;
            for (let v = 0; v < V; v++) slack += kept[v] ? rel(v) * want[v] : 0;
            expectCdfRule(p, uni, got.sampled, slack);
            if (got.sampled !== ref.sampled) {
              let cdf = 0;
              let near = false;
              for (let v = 0; v < V; v++) {
                cdf += want[v];
                if (Math.abs(cdf - uni) <= slack) near = true;
              }
              expect(near).toBe(true);
            }
          }),
        ),
        runs(100),
      );
    },
    TIMEOUT,
  );
});

// --- contrast + softmax: properties of ROSE's decision, on every backend --------------------------------

describe.each(backends.map((b) => [b.name, b] as const))('%s backend: contrastSoftmax properties', (_name, be) => {
  const decide = (logits: Float32Array, V: number, params: ContrastParams) =>
    withScope(be, async (s) => {
      const probs = s.tensor([V]);
      const res = await be.contrastSoftmax(probs, s.tensor([logits.length / V, V], logits), params);
      return { ...res, probs: await be.read(probs) };
    });

  it(
    'α = 0 gives softmax(l_pos): rtol (V + 16)·u',
    async () => {
      const arb = fc.record({ V: fc.integer({ min: 1, max: 900 }), seed: arbSeed });
      await fc.assert(
        fc.asyncProperty(arb, async ({ V, seed }) => {
          const r = rng(seed);
          const logits = uniform(r, 2 * V, -8, 8);
          const { probs } = await decide(logits, V, { alphas: [0], temperature: 1, beta: 0, uniform: 0.5 });
          let m = -Infinity;
          for (let v = 0; v < V; v++) m = Math.max(m, logits[v]);
          let sum = 0;
          for (let v = 0; v < V; v++) sum += Math.exp(logits[v] - m);
          const want = Float32Array.from({ length: V }, (_, v) => Math.exp(logits[v] - m) / sum);
          // Σ of V exps (each ≤ 3 + 2·16 ulp over this ±8 range) and lse/z roundings around |l| ≤ 8.
          expectClose(be, 'contrast α=0 vs softmax', probs, want, (v) => (2 * V + 120) * u * want[v] + 1e-30);
        }),
        runs(20),
      );
    },
    TIMEOUT,
  );

  it(
    'adding a constant to any row changes nothing',
    async () => {
      // Logits on a 2⁻¹⁰ grid below 16 and shifts on the same grid: l + c is exact in f32, so only the
      // kernel's own roundings of lse (≈ ulp of |lse| ≤ 2⁷) can move z.
      const arb = fc.record({
        V: fc.integer({ min: 2, max: 700 }),
        row: fc.integer({ min: 0, max: 1 }),
        c: fc.constantFrom(-40.5, 32, 100.25),
        seed: arbSeed,
      });
      await fc.assert(
        fc.asyncProperty(arb, async ({ V, row, c, seed }) => {
          const r = rng(seed);
          const logits = Float32Array.from({ length: 2 * V }, () => Math.round((r() * 2 - 1) * 8 * 1024) / 1024);
          const params = { alphas: [0.8], temperature: 1, beta: 0.02, uniform: r() * 0.99 };
          const a = await decide(logits, V, params);
          const shifted = logits.slice();
          for (let v = 0; v < V; v++) shifted[row * V + v] += c;
          const b = await decide(shifted, V, params);
          expectClose(be, 'contrast shift invariance', b.probs, a.probs, (v) => 2 * V * u * a.probs[v] + 600 * u * a.probs[v] + 1e-30);
          const { z } = contrastZ(logits, V, params);
          if (a.argmax !== b.argmax) expect(Math.abs(z[a.argmax] - z[b.argmax])).toBeLessThan(1e-4);
          expect(b.probs.filter((x) => x === 0).length).toBe(a.probs.filter((x) => x === 0).length); // same mask
        }),
        runs(20),
      );
    },
    TIMEOUT,
  );

  it(
    'ties go to the lowest id, across threads and within one',
    async () => {
      // Equal logits in every row give bit-identical z on any backend, so the tie is exact.
      const cases = [
        { V: 7, ids: [2, 5] },
        { V: 300, ids: [17, 44, 299] }, // different threads of a 256-wide loop
        { V: 777, ids: [600, 88, 344] }, // 88 and 344 share a thread (88 + 256), 600 another
        { V: 1000, ids: [999, 0] },
      ];
      for (const { V, ids } of cases) {
        const r = rng(V);
        const logits = uniform(r, 2 * V, -3, 3);
        for (const id of ids) {
          logits[id] = 5; // the top of l_pos …
          logits[V + id] = -1; // … and the same reverse logit: equal z
        }
        const res = await decide(logits, V, { alphas: [0.5], temperature: 1, beta: 0, uniform: 0 });
        expect(res.argmax).toBe(Math.min(...ids));
        expect(res.probs[ids[0]]).toBe(res.probs[ids[1]]);
        const cpu = contrastSoftmaxCpu(new Float32Array(V), logits, V, { alphas: [0.5], temperature: 1, beta: 0, uniform: 0 });
        expect(res.argmax).toBe(cpu.argmax);
      }
    },
    TIMEOUT,
  );

  it(
    'the β mask zeroes exactly the tokens with p_pos < β·max p_pos',
    async () => {
      const arb = fc.record({
        V: fc.integer({ min: 1, max: 800 }),
        beta: fc.constantFrom(0.01, 0.2, 0.5, 1),
        temperature: fc.constantFrom(0.5, 1, 2),
        seed: arbSeed,
      });
      await fc.assert(
        fc.asyncProperty(arb, async ({ V, beta, temperature, seed }) => {
          const r = rng(seed);
          const logits = uniform(r, 2 * V, -5, 5);
          const { probs, argmax } = await decide(logits, V, { alphas: [1], temperature, beta, uniform: 0.5 });
          let m = -Infinity;
          for (let v = 0; v < V; v++) m = Math.max(m, logits[v]);
          for (let v = 0; v < V; v++) {
            const margin = logits[v] - m - Math.log(beta);
            if (Math.abs(margin) < 1e-5) continue; // on the boundary, f32 and f64 may disagree
            if (margin < 0) expect(probs[v]).toBe(0);
            else expect(probs[v]).toBeGreaterThan(0); // |z| ≤ 30 here: no underflow
          }
          expect(logits[argmax] - m).toBeGreaterThanOrEqual(Math.log(beta) - 1e-5);
        }),
        runs(20),
      );
    },
    TIMEOUT,
  );

  it(
    'sampled token: the CDF rule at u = 0, mid, and the fallback as u → 1',
    async () => {
      const V = 333;
      const r = rng(7);
      const logits = uniform(r, 2 * V, -4, 4);
      for (const uni of [0, 0.25, 0.5, 0.9, 0.999999, 0.9999999999]) {
        for (const beta of [0, 0.3]) {
          const { probs, sampled } = await decide(logits, V, { alphas: [0.5], temperature: 1, beta, uniform: uni });
          expectCdfRule(probs, uni, sampled, (V + 10) * u);
          if (uni === 0) expect(sampled).toBe(probs.findIndex((p) => p > 0)); // the first kept token
        }
      }
    },
    TIMEOUT,
  );

  it(
    'ordering: writes, ops and frees take effect in call order within one recording',
    async () => {
      for (const n of [5, 20_000]) {
        // 20 000 floats take the large-write path (a flush, then queue.writeBuffer).
        await withScope(be, async (s) => {
          const a = Float32Array.from({ length: n }, (_, i) => i);
          const b = Float32Array.from({ length: n }, (_, i) => 2 * i);
          const x = s.tensor([n], a);
          const y = s.tensor([n]);
          be.addInPlace(y, x); // y = a
          be.write(x, b);
          be.addInPlace(y, x); // y = a + b
          const tmp = be.alloc([n]);
          be.addInPlace(tmp, x);
          be.free(tmp); // recorded work still uses it
          expect(Array.from((await be.read(y)).subarray(0, 5))).toEqual([0, 3, 6, 9, 12]);
          expect((await be.read(y))[n - 1]).toBe(3 * (n - 1));
        });
      }
    },
    TIMEOUT,
  );
});

// --- WebGPU only ------------------------------------------------------------------------------------------

const gpuOnly = backends.some((b) => b.name === 'webgpu') ? describe : describe.skip;

gpuOnly('webgpu: weights over the binding limit, counters, lifetime', () => {
  it(
    'a weight over the binding limit is split by rows and still matches (embedding, matvec, tiled)',
    async () => {
      const LIMIT = 256; // bytes per weight binding, forced
      const gpu = (await webGpuUnderTest({ maxBindingBytesOverride: LIMIT }))!;
      try {
        for (const dtype of ['f32', 'f16', 'bf16'] as const) {
          const V = 37;
          const D = 9; // odd: half-precision chunks start mid-word in the unsplit layout
          const r = rng(dtype.length);
          const table = makeWeight(dtype, [V, D], weightData(r, V * D));
          const bias = makeWeight(dtype, [V], uniform(r, V));
          const w = gpu.uploadWeight(table.host) as GpuWeight;
          expect(w.chunks.length).toBe(Math.ceil(V / Math.floor(LIMIT / (D * (dtype === 'f32' ? 4 : 2)))));
          expect(w.chunks.length).toBeGreaterThan(1);
          const bw = gpu.uploadWeight(bias.host);
          await withScope(gpu, async (s) => {
            const ids = Int32Array.from([0, 36, 5, 20, 36, 13]);
            const emb = s.tensor([ids.length, D]);
            gpu.embedding(emb, w, ids);
            const wantEmb = new Float32Array(ids.length * D);
            embeddingCpu(wantEmb, table.ref, ids, D);
            expectClose(gpu, 'embedding (split)', await gpu.read(emb), wantEmb, exact);
            for (const M of [2, 7]) {
              const x = uniform(r, M * D, -2, 2);
              const out = s.tensor([M, V]);
              gpu.matmul(out, s.tensor([M, D], x), w, bw); // the tied lm_head: (V, D) as (N, K)
              const want = new Float32Array(M * V);
              matmulCpu(want, x, table.ref, bias.ref, M, V, D);
              expectClose(gpu, 'matmul (split)', await gpu.read(out), want, matmulTol(x, table.ref, bias.ref, V, D));
            }
          });
        }
      } finally {
        gpu.destroy();
      }
    },
    TIMEOUT,
  );

  it(
    'contrastSoftmax is one dispatch, one submit, and reads back only 12 bytes',
    async () => {
      const gpu = backends.find((b) => b.name === 'webgpu') as WebGpuBackend;
      const V = 1000;
      const logits = gpu.alloc([2, V]);
      gpu.write(logits, uniform(rng(3), 2 * V));
      const probs = gpu.alloc([V]);
      gpu.flush();
      gpu.resetStats();
      await gpu.contrastSoftmax(probs, logits, { alphas: [0.5], temperature: 1, beta: 0, uniform: 0.5 });
      expect(gpu.stats).toEqual({ dispatches: 1, submits: 1, bytesRead: 12 }); // [argmax, sampled, non-finite row]
      gpu.free(logits);
      gpu.free(probs);
    },
    TIMEOUT,
  );

  it(
    'a script that opens, runs, and destroys the backend exits promptly',
    async () => {
      const { execFile } = await import('node:child_process');
      const { fileURLToPath } = await import('node:url');
      const src = fileURLToPath(new URL('../../src/kernels/webgpu/backend.ts', import.meta.url));
      const code = `
      import { WebGpuBackend } from ${JSON.stringify(src)};
      const be = await WebGpuBackend.create();
      const x = be.alloc([4]); be.write(x, Float32Array.of(1, 2, 3, 4)); be.addInPlace(x, be.alloc([4]));
      console.log((await be.read(x)).join(','));
      be.destroy();`;
      const t0 = Date.now();
      const out = await new Promise<string>((resolve, reject) =>
        execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { timeout: 30_000 }, (err, stdout) =>
          err ? reject(err) : resolve(stdout),
        ),
      );
      expect(out.trim()).toBe('1,2,3,4');
      expect(Date.now() - t0).toBeLessThan(20_000); // it exited by itself (the timeout would kill it)
    },
    TIMEOUT,
  );
});

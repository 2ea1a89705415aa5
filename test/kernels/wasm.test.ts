/**
 * The CPU's WebAssembly SIMD tier (src/kernels/cpu/wasm/) against v1, the TypeScript reference.
 *
 * The matmuls are held to the error bound derived from their ONE summation order (its derivation:
 * src/kernels/cpu/wasm/matmul.ts, wasmMatmulBound): |wasm − v1| ≤ (γ_d + 2u)·A + (K + 8)·2⁻¹⁴⁹, with
 * A = Σ_k |x_k·w_k| + |b| and d = max(⌈K/4⌉ + 4, 9). Widening f16/bf16 to f32 is exact, so the bound is
 * the same for all three dtypes; v1 gets the same weights widened by src/kernels/cpu/dtype.ts.
 *
 * And since every kernel, blocking, thread split and arena layout follows that same order, they must
 * agree BIT FOR BIT with each other: that is checked too (Object.is, so even the sign of a zero).
 */
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { RoseError } from '../../src/errors.ts';
import type { DType } from '../../src/kernels/backend.ts';
import { CpuBackend, type CpuWeight } from '../../src/kernels/cpu/backend.ts';
import { widenToF32 } from '../../src/kernels/cpu/dtype.ts';
import { CpuPool } from '../../src/kernels/cpu/pool.ts';
import { Arena, WASM32_MAX_BYTES } from '../../src/kernels/cpu/wasm/arena.ts';
import { wasmMatmulBound } from '../../src/kernels/cpu/wasm/matmul.ts';
import { kernelModule, MATMUL_EXPORTS, matmulExportIndex } from '../../src/kernels/cpu/wasm/module.ts';
import { matmulCpu } from '../../src/kernels/matmul.ts';
import { openBackend, openCpuBackend } from '../../src/kernels/select.ts';
import { parseLlamaConfig } from '../../src/model/config.ts';
import { expectedTensors } from '../../src/model/weights.ts';
import { maxAbsDiff } from '../helpers/fixtures.ts';
import { randomLlama } from '../helpers/randomModel.ts';

const SEED = 20240612;
const DTYPES: readonly DType[] = ['f32', 'bf16', 'f16'];

/** mulberry32, uniform in [0, 1). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Stored bytes of n random weights: f32 uniform in [−1, 1) with exact zeros now and then; bf16 and
 * f16 as random bit patterns of moderate magnitude (bf16 exponents 2⁻²⁷..2¹, f16 exponents from the
 * subnormals up to 2¹), so the widening meets every mantissa, both signs, zeros and f16 subnormals.
 */
function randomWeights(dtype: DType, n: number, seed: number): Uint8Array {
  const r = rng(seed);
  if (dtype === 'f32') {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = r() < 0.02 ? 0 : 2 * r() - 1;
    return new Uint8Array(a.buffer);
  }
  const h = new Uint16Array(n);
  for (let i = 0; i < n; i++) {
    const sign = r() < 0.5 ? 0x8000 : 0;
    h[i] =
      dtype === 'bf16'
        ? sign | ((100 + Math.floor(r() * 28)) << 7) | Math.floor(r() * 128)
        : sign | (Math.floor(r() * 17) << 10) | Math.floor(r() * 1024);
  }
  return new Uint8Array(h.buffer);
}

function randomF32(n: number, seed: number): Float32Array {
  const r = rng(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = r() < 0.02 ? 0 : 2 * r() - 1;
  return a;
}

/** One arena holding a case's operands, with the kernels on it (and on the pool's workers). */
class Case {
  readonly arena: Arena;
  readonly x: number;
  readonly w: number;
  readonly bias: number;
  readonly out: number;
  readonly wF32: Float32Array; // the weights widened, for v1
  constructor(
    readonly M: number,
    readonly N: number,
    readonly K: number,
    readonly dtype: DType,
    readonly xData: Float32Array,
    wBytes: Uint8Array,
    readonly biasData: Float32Array | undefined,
  ) {
    this.arena = new Arena(0, 256 * 2 ** 20, kernelModule());
    const put = (bytes: Uint8Array): number => {
      const p = this.arena.alloc(bytes.byteLength)!;
      this.arena.u8(p, bytes.byteLength).set(bytes);
      return p;
    };
    this.x = put(new Uint8Array(xData.buffer, xData.byteOffset, xData.byteLength));
    this.w = put(wBytes);
    this.bias = biasData ? put(new Uint8Array(biasData.buffer)) : 0;
    this.out = this.arena.alloc(4 * M * N)!;
    this.wF32 = widenToF32(dtype, wBytes);
  }
  run(variant: 4 | 5, pool?: CpuPool): Float32Array {
    const out = this.arena.f32(this.out, this.M * this.N).fill(Number.NaN);
    const fn = matmulExportIndex(variant, this.dtype);
    const args = { out: this.out, ldo: this.N, x: this.x, w: this.w, bias: this.bias, M: this.M, K: this.K };
    const kernel = this.arena.kernels[MATMUL_EXPORTS[fn]];
    const own = (n0: number, n1: number) => kernel(args.out, args.ldo, args.x, args.w, args.bias, args.M, args.K, n0, n1);
    if (pool) {
      pool.registerArena(this.arena.id + this.serial, this.arena.memory, this.arena.module);
      pool.wasmMatmul(this.arena.id + this.serial, fn, args, this.N, variant === 5 ? 3 : 4, own);
    } else own(0, this.N);
    return out.slice();
  }
  private static next = 1;
  /** Pool arena ids must be unique per arena: each case registers its own. */
  private readonly serial = Case.next++;
}

/** The bound above for every output (see the header), and v1's result. */
function reference(c: Case): { ref: Float32Array; bound: Float32Array } {
  const { M, N, K } = c;
  const ref = new Float32Array(M * N);
  matmulCpu(ref, c.xData, c.wF32, c.biasData, M, N, K);
  const bound = new Float32Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let A = c.biasData ? Math.abs(c.biasData[n]) : 0;
      for (let k = 0; k < K; k++) A += Math.abs(c.xData[m * K + k] * c.wF32[n * K + k]);
      bound[m * N + n] = wasmMatmulBound(K, A);
    }
  }
  return { ref, bound };
}

const arbCase = fc.record({
  M: fc.oneof(fc.constantFrom(1, 2, 3, 8, 9, 17), fc.integer({ min: 1, max: 60 })),
  N: fc.integer({ min: 1, max: 41 }),
  K: fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 1, max: 200 }) }, { weight: 1, arbitrary: fc.integer({ min: 500, max: 1200 }) }),
  dtype: fc.constantFrom(...DTYPES),
  bias: fc.boolean(),
  seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
});

const makeCase = (p: { M: number; N: number; K: number; dtype: DType; bias: boolean; seed: number }): Case =>
  new Case(
    p.M,
    p.N,
    p.K,
    p.dtype,
    randomF32(p.M * p.K, p.seed),
    randomWeights(p.dtype, p.N * p.K, p.seed + 1),
    p.bias ? randomF32(p.N, p.seed + 2) : undefined,
  );

const firstDiff = (a: Float32Array, b: Float32Array): number => {
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return i;
  return -1;
};

/** Largest |Δ| / bound seen, per dtype: printed after the run (how close the bound is). */
const ratios = new Map<string, number>();

describe('WebAssembly matmuls (v4 matvec, v5 tiled) against v1', () => {
  const pool = new CpuPool({ threads: 2, minParallelWork: 0 });
  afterAll(() => {
    pool.destroy();
    process.stdout.write(`wasm matmul max |Δ|/bound vs v1: ${[...ratios].map(([k, v]) => `${k} ${v.toFixed(3)}`).join(', ')}\n`);
  });

  it('every dtype, odd M/N/K, K not a multiple of 4 or 8: |Δ| ≤ (γ_d + 2u)·A, and v4 ≡ v5 ≡ 2 threads bit for bit', () => {
    fc.assert(
      fc.property(arbCase, (p) => {
        const c = makeCase(p);
        const { ref, bound } = reference(c);
        const v4 = c.run(4);
        for (let i = 0; i < ref.length; i++) {
          const diff = Math.abs(v4[i] - ref[i]);
          if (!(diff <= bound[i])) {
            throw new Error(`${JSON.stringify(p)}: output ${i} = ${v4[i]}, v1 ${ref[i]}, |Δ| ${diff} > bound ${bound[i]}`);
          }
          ratios.set(p.dtype, Math.max(ratios.get(p.dtype) ?? 0, diff / bound[i]));
        }
        for (const [what, got] of [
          ['v5', c.run(5)],
          ['v4 on 2 threads', c.run(4, pool)],
          ['v5 on 2 threads', c.run(5, pool)],
        ] as const) {
          const i = firstDiff(got, v4);
          if (i >= 0) throw new Error(`${JSON.stringify(p)}: ${what} output ${i} = ${got[i]}, v4 on 1 thread ${v4[i]}`);
        }
      }),
      { seed: SEED, numRuns: 120, endOnFailure: true },
    );
  });

  // Every one of the 65 536 bit patterns of f16 and bf16, as weights of a one-hot matmul: output
  // (m, n) = w[n, m] exactly (the other products are ±0; Inf/NaN patterns give NaN from 0·Inf, as in
  // v1). K = 8 runs the vector path only; K = 7 the scalar tail only.
  for (const dtype of ['f16', 'bf16'] as const) {
    for (const K of [8, 7]) {
      it(`${dtype}: all 65 536 bit patterns widen exactly (${K === 8 ? 'vector path' : 'scalar tail'})`, () => {
        const N = Math.ceil(65536 / K);
        const h = new Uint16Array(N * K);
        for (let i = 0; i < h.length; i++) h[i] = i & 0xffff;
        const x = new Float32Array(K * K);
        for (let m = 0; m < K; m++) x[m * K + m] = 1;
        const c = new Case(K, N, K, dtype, x, new Uint8Array(h.buffer), undefined);
        const { ref } = reference(c);
        for (const variant of [4, 5] as const) {
          const got = c.run(variant);
          for (let i = 0; i < ref.length; i++) {
            const same = Number.isNaN(ref[i]) ? Number.isNaN(got[i]) : got[i] === ref[i];
            if (!same) throw new Error(`v${variant} ${dtype}: output ${i} = ${got[i]}, v1 ${ref[i]}`);
          }
        }
      });
    }
  }
});

describe('the module', () => {
  it('imports one shared memory and nothing else, and has no data segments (instantiating writes nothing)', () => {
    const module = kernelModule();
    expect(WebAssembly.Module.imports(module)).toEqual([{ module: 'env', name: 'memory', kind: 'memory' }]);
    const exported = WebAssembly.Module.exports(module).map((e) => e.name);
    for (const name of MATMUL_EXPORTS) expect(exported).toContain(name);
    // Walk the binary's sections: id 11 is the data section, id 6 globals.
    const bytes = new Uint8Array(readKernelBytes());
    const ids: number[] = [];
    let p = 8;
    while (p < bytes.length) {
      ids.push(bytes[p++]);
      let size = 0;
      for (let shift = 0; ; shift += 7) {
        const b = bytes[p++];
        size |= (b & 0x7f) << shift;
        if (!(b & 0x80)) break;
      }
      p += size;
    }
    expect(ids).not.toContain(11);
    expect(ids).not.toContain(6);
  });

  it("exp (assembly/math.ts, the attention's): within 1 ulp of Math.exp on 2²⁰ f32 across its range; 0, ∞ and NaN outside it", () => {
    const arena = new Arena(0, 8 * 2 ** 20, kernelModule());
    const n = 2 ** 20;
    const [lo, hi] = [-87.33, 88.37]; // below −87.336 exp(x) < 2⁻¹²⁶ (flushed to 0); above 88.37, ∞ (see math.ts)
    const edges = [-Infinity, -1000, -87.34, 88.38, 1000, Infinity, Number.NaN, 0, -0];
    const ptr = arena.alloc(4 * (n + edges.length))!;
    const x = arena.f32(ptr, n + edges.length);
    for (let i = 0; i < n; i++) x[i] = lo + ((hi - lo) * i) / (n - 1);
    x.set(edges, n);
    const xs = Float32Array.from(x);
    arena.kernels.expInPlace(ptr, n + edges.length);
    let worst = 0;
    for (let i = 0; i < n; i++) {
      const want = Math.exp(xs[i]); // f64: the exact value to ~2⁻⁵³, far below an f32 ulp
      const e = Math.floor(Math.log2(want));
      const ulp = 2 ** (Math.max(e, -126) - 23); // the f32 ulp at want
      worst = Math.max(worst, Math.abs(x[i] - want) / ulp);
    }
    expect(worst, 'max error in ulp').toBeLessThanOrEqual(1);
    expect(Array.from(x.subarray(n))).toEqual([0, 0, 0, Infinity, Infinity, Infinity, Number.NaN, 1, 1]);
  });
});

const readKernelBytes = () => readFileSync(new URL('../../src/kernels/cpu/wasm/kernels.wasm', import.meta.url));

describe('the WebAssembly backend', () => {
  // MQA, a hidden size that is not a multiple of 4 or 8, biases, prompts of a few hundred tokens.
  const shapes = [
    { name: 'MQA, hidden 37, biases', cfg: { hidden: 37, heads: 3, kvHeads: 1, headDim: 12, intermediate: 53, layers: 2, vocab: 97 } },
    { name: 'GQA 4/2, hidden 64, tied', cfg: { hidden: 64, heads: 4, kvHeads: 2, headDim: 16, intermediate: 96, layers: 2, vocab: 130 } },
  ];
  for (const { name, cfg } of shapes) {
    it(`${name}: a 300-token prefill and decode steps within 1e-4 of the TypeScript tier; several memories change no bit`, async () => {
      const full = {
        ...cfg,
        attentionBias: name.includes('biases'),
        mlpBias: name.includes('biases'),
        tied: name.includes('tied'),
        maxPositions: 320,
      };
      const r = rng(cfg.hidden);
      const rows = [
        Array.from({ length: 300 }, () => 1 + Math.floor(r() * (cfg.vocab - 1))),
        Array.from({ length: 211 }, () => 1 + Math.floor(r() * (cfg.vocab - 1))),
      ];
      const run = async (be: CpuBackend) => {
        try {
          const { model } = randomLlama(be, full, 7);
          const cache = model.newKvCache(2, 310);
          const out = [await be.read(model.prefill(cache, rows, true).logits)];
          for (const t of [3, 5, 8]) out.push(await be.read(model.forward(cache, Int32Array.of(t, t))));
          return out;
        } finally {
          be.destroy();
        }
      };
      const ts = await run(new CpuBackend({ tier: 'ts' }));
      const wasm = await run(new CpuBackend({ tier: 'wasm' }));
      // Tolerance 1e-4, the fixtures' bar against transformers: every correct f32 evaluation order
      // lands within 2.1e-5 of it, and v1 (f64 sums) is one of them (test/fixtures/README.md).
      const diffs = wasm.map((l, i) => maxAbsDiff(l, ts[i]));
      process.stdout.write(`${name}: wasm vs TypeScript tier max |Δ| per call ${diffs.map((d) => d.toExponential(1)).join(', ')}\n`);
      for (const d of diffs) expect(d).toBeLessThanOrEqual(1e-4);
      if (name.startsWith('MQA')) {
        // The TypeScript tier with the WebAssembly attention forced: its operands live in JavaScript
        // memory and are staged into a WebAssembly memory for each call (same 1e-4 bar and reason).
        const forced = await run(new CpuBackend({ tier: 'ts', kernels: { attention: 2 } }));
        for (const [i, l] of forced.entries()) expect(maxAbsDiff(l, ts[i]), `forced attention v2, call ${i}`).toBeLessThanOrEqual(1e-4);
      }
      // Forced small memories (512 KiB: the 300-token activations fill several, so most matmuls run
      // in a memory other than their operands' and stage them) on 2 threads: the same bits.
      const small = new CpuBackend({ tier: 'wasm', arenaBytes: 2 ** 19, threads: 2, minParallelWork: 0 });
      const split = await run(small);
      expect(small.wasm.arenas.length).toBeGreaterThan(3);
      for (const [i, l] of split.entries()) expect(firstDiff(l, wasm[i]), `call ${i}`).toBe(-1);
    });
  }

  it('a weight larger than a memory is split by rows across memories; a row that fits none is a LIMIT error', () => {
    const be = new CpuBackend({ tier: 'wasm', arenaBytes: 2 ** 17 });
    try {
      const K = 1000;
      const bytes = randomWeights('bf16', 200 * K, 1); // 400 KB of bf16 in 128 KiB memories
      const w = be.uploadWeight({ name: 'big', dtype: 'bf16', shape: [200, K], bytes }) as CpuWeight;
      expect(w.stored.length).toBeGreaterThan(2);
      expect(w.stored.reduce((s, c) => s + c.rows, 0)).toBe(200);
      // The split matmul gives the bits of the same matmul in one memory (bias sliced per chunk).
      const one = new CpuBackend({ tier: 'wasm' });
      try {
        const results = [be, one].map((b) => {
          const wt = b === be ? w : b.uploadWeight({ name: 'big', dtype: 'bf16', shape: [200, K], bytes });
          const bias = b.uploadWeight({ name: 'bias', dtype: 'f32', shape: [200], bytes: new Uint8Array(randomF32(200, 3).buffer) });
          const x = b.alloc([3, K]);
          b.write(x, randomF32(3 * K, 4));
          const out = b.alloc([3, 200]);
          b.matmul(out, x, wt, bias);
          return (out as unknown as { data: Float32Array }).data.slice();
        });
        expect(firstDiff(results[0], results[1])).toBe(-1);
      } finally {
        one.destroy();
      }
      const wide = randomWeights('f32', 2 * 40000, 2); // one row of 160 KB
      expect(() => be.uploadWeight({ name: 'wide', dtype: 'f32', shape: [2, 40000], bytes: wide })).toThrowError(RoseError);
      expect(() => be.uploadWeight({ name: 'wide', dtype: 'f32', shape: [2, 40000], bytes: wide })).toThrow(
        /does not fit in a WebAssembly memory/,
      );
    } finally {
      be.destroy();
    }
  });

  it('capacity: an 8B bf16 checkpoint passes on a 24 GiB machine at its stored size; f32, or bf16 widened by the TypeScript tier, does not', () => {
    const llama3_8b = parseLlamaConfig({
      model_type: 'llama',
      hidden_size: 4096,
      intermediate_size: 14336,
      num_hidden_layers: 32,
      num_attention_heads: 32,
      num_key_value_heads: 8,
      vocab_size: 128256,
      max_position_embeddings: 8192,
      rms_norm_eps: 1e-5,
      rope_theta: 500000,
      tie_word_embeddings: false,
    });
    const sizes = (dtype: DType) =>
      [...expectedTensors(llama3_8b).values()].map((s) => ({ dtype, elements: s.reduce((a, b) => a * b, 1) }));
    const params = sizes('bf16').reduce((a, w) => a + w.elements, 0);
    expect(params).toBeGreaterThan(8.0e9); // 8.03 B: the real model's count
    const be = new CpuBackend({ tier: 'wasm', machineBytes: 24 * 2 ** 30 });
    try {
      expect(() => be.checkCapacity(sizes('bf16'))).not.toThrow(); // 15.0 GiB ≤ 18 GiB
      expect(() => be.checkCapacity(sizes('f32'))).toThrow(/29\.9 GiB in its stored dtypes/);
    } finally {
      be.destroy();
    }
    // The TypeScript tier widens to f32 and refuses the same checkpoint on the same machine.
    expect(() => new CpuBackend({ tier: 'ts', machineBytes: 24 * 2 ** 30 }).checkCapacity(sizes('bf16'))).toThrow(
      /29\.9 GiB once widened to f32/,
    );
  });

  it('is the CPU default where WebAssembly SIMD runs (Node ≥ 20); cpuTier ts keeps the TypeScript tier', async () => {
    const auto = await openBackend('cpu');
    const ts = openCpuBackend({ cpuTier: 'ts' });
    try {
      expect((auto as CpuBackend).tier).toBe('wasm');
      expect(auto.description).toMatch(
        /^cpu \(WebAssembly SIMD, 1 thread, matmul auto \(v4 for M ≤ 8, else v5\), weights in their stored dtype, /,
      );
      expect(new CpuBackend().tier).toBe('wasm');
      expect(ts.tier).toBe('ts');
      expect(ts.description).toMatch(/^cpu \(TypeScript, 1 thread, matmul auto \(v2 for M ≤ 8, else v3\), /);
    } finally {
      auto.destroy();
      ts.destroy();
    }
  });

  it('refuses bad options with a RoseError', () => {
    expect(() => new CpuBackend({ arenaBytes: 100 })).toThrow(/arenaBytes/);
    expect(() => new CpuBackend({ arenaBytes: WASM32_MAX_BYTES + 1 })).toThrow(/arenaBytes/);
    expect(() => new CpuBackend({ tier: 'simd' as never })).toThrow(/the CPU tier must be wasm, ts or auto, got simd/);
  });

  it('f16/bf16 matrices stay 2 bytes per element in WebAssembly memory (f32 4); vectors are widened to f32', () => {
    for (const dtype of DTYPES) {
      const be = new CpuBackend({ tier: 'wasm' });
      try {
        be.uploadWeight({ name: 'm', dtype, shape: [100, 64], bytes: randomWeights(dtype, 6400, 1) });
        expect(be.wasm.arenas[0].usedBytes).toBe(6400 * (dtype === 'f32' ? 4 : 2));
        be.uploadWeight({ name: 'v', dtype, shape: [64], bytes: randomWeights(dtype, 64, 2) });
        expect(be.wasm.arenas[0].usedBytes).toBe(6400 * (dtype === 'f32' ? 4 : 2) + 64 * 4);
      } finally {
        be.destroy();
      }
    }
  });
});

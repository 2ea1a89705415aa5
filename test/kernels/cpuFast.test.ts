/**
 * The CPU fast path (src/kernels/cpu/matmulFast.ts, cpu/pool.ts) against the reference matmulCpu (v1).
 *
 * Tolerance: NONE. Every output must be bit-identical to v1 (compared with Object.is, so even the
 * sign of a zero counts). Why that is the right bound, not a lucky one: v1 sums the exact f64
 * products x·w (f32 × f32 fits in f64's 53-bit mantissa) into one f64 accumulator in increasing k,
 * adds the bias in f64 and rounds to f32 once. The variants change which outputs are computed
 * together, how the loops are blocked and which thread runs which rows, but never the sequence of
 * f64 operations behind one output (K-blocked partial sums are parked in a Float64Array, exactly),
 * and JavaScript never fuses a·b + c into an FMA. Any difference would be a bug (a wrong index, a
 * lost block, a split dot product), not rounding.
 *
 * Shapes: fast-check (fixed seed) draws odd and even M, N, K, with M = 1, 2, 3, 17 always among
 * them, N not a multiple of the 8- or 4-row blocks, and K past the v3 K-block (1024) to exercise the
 * parked partial sums. Each case runs every variant on 1 thread (called directly) and through pools
 * of 2 and 3 threads (3 threads on a 2-core machine oversubscribes: that is deliberate).
 * The same through a whole model, on both CPU tiers: cpuThreadsModel.test.ts.
 */
import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { mulberry32 } from '../../src/decode/random.ts';
import { matmulCpu } from '../../src/kernels/matmul.ts';
import { splitRows, V3_KB } from '../../src/kernels/cpu/matmulFast.ts';
import { CpuPool, sharedF32 } from '../../src/kernels/cpu/pool.ts';
import { cpuMatmulVariants } from '../../src/kernels/cpu/variants.ts';
import { firstDiff } from '../helpers/fixtures.ts';

const SEED = 20240611;
/** Set by vitest.mutate.config.ts. */
const UNDER_MUTATION = process.env.ROSE_MUTATION_RUN === '1';
/** Every registered CPU matmul variant (cpu/variants.ts): a new one is tested here with no edit. */
const VARIANTS = cpuMatmulVariants;

/** Seeded uniform floats in [-1, 1), with an exact zero now and then (sign-of-zero paths). */
function fill(a: Float32Array, seed: number): Float32Array {
  const uniform = mulberry32(seed);
  for (let i = 0; i < a.length; i++) {
    const u = uniform();
    a[i] = u < 0.01 ? 0 : 2 * u - 1;
  }
  return a;
}

interface Case {
  M: number;
  N: number;
  K: number;
  bias: boolean;
  seed: number;
}

const arbCase: fc.Arbitrary<Case> = fc.record({
  M: fc.oneof(fc.constantFrom(1, 2, 3, 17), fc.integer({ min: 1, max: 40 })),
  N: fc.integer({ min: 1, max: 75 }),
  K: fc.oneof(
    { weight: 4, arbitrary: fc.integer({ min: 1, max: 300 }) },
    { weight: 1, arbitrary: fc.integer({ min: V3_KB - 3, max: 2 * V3_KB + 77 }) },
  ),
  bias: fc.boolean(),
  seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
});

/** The case's data in shared memory (the pools need it; the direct calls do not care). */
function data(c: Case) {
  const x = fill(sharedF32(c.M * c.K), c.seed);
  const w = fill(sharedF32(c.N * c.K), c.seed + 1);
  const bias = c.bias ? fill(sharedF32(c.N), c.seed + 2) : undefined;
  const ref = new Float32Array(c.M * c.N);
  matmulCpu(ref, x, w, bias, c.M, c.N, c.K);
  return { x, w, bias, ref };
}

const describeCase = (c: Case, what: string, i: number, got: number, want: number) =>
  `${what} M=${c.M} N=${c.N} K=${c.K} bias=${c.bias}: output ${i} (row ${Math.floor(i / c.N)}, col ${i % c.N}) = ${got}, v1 = ${want}`;

describe('matmul variants against v1 (matmulCpu): bit-identical', () => {
  const pools = new Map<number, CpuPool>([2, 3].map((t) => [t, new CpuPool({ threads: t, minParallelWork: 0 })]));
  afterAll(() => {
    for (const p of pools.values()) p.destroy();
  });

  it('1 thread: every variant, whole N and split into row ranges', () => {
    fc.assert(
      fc.property(arbCase, fc.integer({ min: 1, max: 5 }), (c, parts) => {
        const { x, w, bias, ref } = data(c);
        for (const v of VARIANTS) {
          const out = new Float32Array(c.M * c.N).fill(NaN);
          v.rows(out, x, w, bias, c.M, c.N, c.K, 0, c.N);
          let i = firstDiff(out, ref);
          if (i >= 0) throw new Error(describeCase(c, `v${v.id}`, i, out[i], ref[i]));
          // The same kernel over contiguous row ranges, as the pool runs it: ranges tile N exactly.
          out.fill(NaN);
          for (let p = 0; p < parts; p++) {
            const [n0, n1] = splitRows(c.N, parts, v.rowBlock(c.M), p);
            v.rows(out, x, w, bias, c.M, c.N, c.K, n0, n1);
          }
          i = firstDiff(out, ref);
          if (i >= 0) throw new Error(describeCase(c, `v${v.id} in ${parts} row ranges`, i, out[i], ref[i]));
        }
      }),
      { seed: SEED, numRuns: 150, endOnFailure: true },
    );
  });

  // Worker threads load their own copy of the kernels, which never sees a mutation run's active mutant
  // (vitest.mutate.config.ts): there the pool tests could kill nothing and only cost time.
  for (const threads of [2, 3]) {
    it.skipIf(UNDER_MUTATION)(`${threads} threads (worker pool): every variant`, () => {
      const pool = pools.get(threads)!;
      fc.assert(
        fc.property(arbCase, (c) => {
          const { x, w, bias, ref } = data(c);
          for (const v of VARIANTS) {
            const out = sharedF32(c.M * c.N).fill(NaN);
            pool.matmul(v, out, x, w, bias, c.M, c.N, c.K);
            const i = firstDiff(out, ref);
            if (i >= 0) throw new Error(describeCase(c, `v${v.id} on ${threads} threads`, i, out[i], ref[i]));
            pool.release(out);
          }
          pool.release(x);
          pool.release(w);
          if (bias) pool.release(bias);
        }),
        { seed: SEED + threads, numRuns: 60, endOnFailure: true },
      );
      expect(pool.stats.dispatches).toBeGreaterThan(0);
    });
  }

  it('the fixed shapes M = 1, 2, 3, 17 with odd N and K, every variant, 1–3 threads', () => {
    for (const M of [1, 2, 3, 17]) {
      const c: Case = { M, N: 37, K: 29, bias: true, seed: M };
      const { x, w, bias, ref } = data(c);
      for (const v of VARIANTS) {
        const direct = new Float32Array(M * c.N);
        v.rows(direct, x, w, bias, M, c.N, c.K, 0, c.N);
        expect(firstDiff(direct, ref)).toBe(-1);
        for (const pool of UNDER_MUTATION ? [] : pools.values()) {
          const out = sharedF32(M * c.N);
          pool.matmul(v, out, x, w, bias, M, c.N, c.K);
          expect(firstDiff(out, ref)).toBe(-1);
        }
      }
    }
  });
});

describe('the worker pool', () => {
  it('refuses arrays outside shared memory, and any use after destroy()', () => {
    const pool = new CpuPool({ threads: 2, minParallelWork: 0 });
    const x = sharedF32(6),
      w = sharedF32(6),
      out = sharedF32(4);
    const v2 = cpuMatmulVariants[1];
    pool.matmul(v2, out, x, w, undefined, 2, 2, 3);
    expect(() => pool.matmul(v2, new Float32Array(4), x, w, undefined, 2, 2, 3)).toThrow(/not in shared memory/);
    pool.destroy();
    pool.destroy(); // harmless
    expect(() => pool.matmul(v2, out, x, w, undefined, 2, 2, 3)).toThrow(/destroyed/);
  });

  it('rejects a bad thread count', () => {
    expect(() => new CpuPool({ threads: 0 })).toThrow(/threads/);
    expect(() => new CpuPool({ threads: 1.5 })).toThrow(/threads/);
  });
});

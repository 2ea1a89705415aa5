/**
 * contrastSoftmax, ROSE's fused decision, on every backend and variant: against the reference, then
 * properties of the decision itself (α = 0 is softmax, shift invariance, ties, the β mask, the CDF rule).
 */
import { expect, it } from 'vitest';
import fc from 'fast-check';
import type { ContrastParams, ContrastResult } from '../../src/kernels/backend.ts';
import { contrastSoftmaxCpu } from '../../src/kernels/contrastSoftmax.ts';
import type { WebGpuBackend } from '../../src/kernels/webgpu/backend.ts';
import { arbSeed, describeOp, expectClose, rng, runAsync, runs, TIMEOUT, u, uniform, withScope } from './harness.ts';

/** The reference: the CPU twin (f64 log-softmax of every row, then z, the mask and the softmax). */
function reference(logits: Float32Array, V: number, params: ContrastParams): { probs: Float32Array; result: ContrastResult } {
  const probs = new Float32Array(V);
  const result = contrastSoftmaxCpu(probs, logits, V, params);
  return { probs, result };
}

// --- the error model (f64, as the reference) ------------------------------------------------------------

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

describeOp('contrastSoftmax', (t) => {
  const { be } = t;
  it(
    'probs, argmax and sampled token vs the reference; probs sum to 1; CDF rule',
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
            const lt = s.tensor([R, V], logits);
            const got = await runAsync(t, () => be.contrastSoftmax(probs, lt, params));
            const p = await be.read(probs);
            const { probs: want, result: ref } = reference(logits, V, params);

            const { z, kept, lse } = contrastZ(logits, V, params);
            const Ez = zErrorBound(logits, V, params, lse);
            const zMax = z[ref.argmax];
            // p = exp((z − zmax)/T)/Σ: the argument is off by ≤ 2Ez/T plus 2 roundings of |x|, exp by
            // (3 + 2|x|) ulp, Σ by its V-term f32 sum (each term already bounded), + the twin's rounding.
            let xRange = 0;
            for (let v = 0; v < V; v++) if (kept[v]) xRange = Math.max(xRange, (zMax - z[v]) / temperature);
            const rel = (v: number): number =>
              (2 * Ez) / temperature + (4 * ((zMax - z[v]) / temperature) + 8) * u + (V + 3 + 2 * xRange) * u;
            expectClose(t.label, 'contrastSoftmax probs', p, want, (v) => (kept[v] ? rel(v) * want[v] + 1e-30 : 0));
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

  // --- properties of ROSE's decision ---

  const decide = (logits: Float32Array, V: number, params: ContrastParams) =>
    withScope(be, async (s) => {
      const probs = s.tensor([V]);
      const lt = s.tensor([logits.length / V, V], logits);
      const res = await runAsync(t, () => be.contrastSoftmax(probs, lt, params));
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
          expectClose(t.label, 'contrast α=0 vs softmax', probs, want, (v) => (2 * V + 120) * u * want[v] + 1e-30);
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
          expectClose(t.label, 'contrast shift invariance', b.probs, a.probs, (v) => 2 * V * u * a.probs[v] + 600 * u * a.probs[v] + 1e-30);
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
        expect(res.argmax).toBe(reference(logits, V, { alphas: [0.5], temperature: 1, beta: 0, uniform: 0 }).result.argmax);
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

  if (be.name === 'webgpu') {
    it(
      'is one dispatch, one submit, and reads back only 12 bytes',
      async () => {
        const gpuBe = be as WebGpuBackend;
        const V = 1000;
        const logits = gpuBe.alloc([2, V]);
        gpuBe.write(logits, uniform(rng(3), 2 * V));
        const probs = gpuBe.alloc([V]);
        gpuBe.flush();
        gpuBe.resetStats();
        await runAsync(t, () => gpuBe.contrastSoftmax(probs, logits, { alphas: [0.5], temperature: 1, beta: 0, uniform: 0.5 }));
        expect(gpuBe.stats).toEqual({ dispatches: 1, submits: 1, bytesRead: 12 }); // [argmax, sampled, non-finite row]
        gpuBe.free(logits);
        gpuBe.free(probs);
      },
      TIMEOUT,
    );
  }
});

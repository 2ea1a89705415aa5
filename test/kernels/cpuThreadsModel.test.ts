/**
 * CpuBackend's threads and matmul variants through a whole model (test/kernels/cpuFast.test.ts checks
 * each variant alone against v1, bit for bit): on both CPU tiers, every logit of a prefill and of
 * decode steps must be the same bits on 1 and 2 threads and with each of the tier's variants forced.
 * Tolerance: none, for the reasons cpuFast.test.ts gives (one f64 sum per output in increasing k on
 * the TS tier; one shared summation order for v4 and v5 on the WebAssembly tier).
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CpuBackend } from '../../src/kernels/cpu/backend.ts';
import { cpuMatmulVariants } from '../../src/kernels/cpu/variants.ts';
import { loadLlama } from '../../src/model/load.ts';
import { firstDiff, fixturesDir } from '../helpers/fixtures.ts';

describe('CpuBackend threads and variants on a fixture model', () => {
  // Prefill (M = B·T > 8: v3 / v5) then decode steps (M = 2: v2 / v4): the logits of every call must
  // be the same bits on 1 and 2 threads, and with each of the tier's matmul variants forced. The
  // TypeScript tier: all of v1–v3 are bit-identical to v1. The WebAssembly tier: v4 and v5 share one
  // summation order (src/kernels/cpu/wasm/matmul.ts), so they, and any thread split, agree bit for bit.
  const tiers = [
    { tier: 'ts', variants: cpuMatmulVariants.map((v) => v.id), tiled: 3 },
    { tier: 'wasm', variants: [4, 5], tiled: 5 },
  ] as const;
  for (const { tier, variants, tiled } of tiers) {
    for (const fixture of ['tiny-gqa-bf16-tied', 'tiny-f16-bias']) {
      it(`${fixture}, ${tier} tier: threads 2 and every matmul variant of the tier give the logits of threads 1`, async () => {
        const dir = join(fixturesDir, fixture);
        const configs = [
          { threads: 1 },
          { threads: 2, minParallelWork: 0 },
          ...variants.map((id) => ({ threads: 1, kernels: { matmul: id } })),
          { threads: 2, kernels: { matmul: tiled }, minParallelWork: 0 },
        ];
        const runs: Float32Array[][] = [];
        for (const opts of configs) {
          const be = new CpuBackend({ tier, ...opts });
          try {
            const model = loadLlama(dir, be);
            const cache = model.newKvCache(2, 24);
            const logits: Float32Array[] = [];
            const rows = [
              [1, 5, 9, 13, 17, 21, 25, 29, 33, 3, 7],
              [1, 6, 10, 14, 2],
            ];
            logits.push(await be.read(model.prefill(cache, rows, true).logits));
            for (const token of [4, 8, 15]) logits.push(await be.read(model.forward(cache, new Int32Array([token, token]))));
            runs.push(logits);
          } finally {
            be.destroy();
          }
        }
        for (let r = 1; r < runs.length; r++) {
          runs[r].forEach((l, call) => {
            const i = firstDiff(l, runs[0][call]);
            expect(i, `${JSON.stringify(configs[r])}, call ${call}: logit ${i} = ${l[i]} vs ${runs[0][call][i]} on 1 thread`).toBe(-1);
          });
        }
      });
    }
  }
});

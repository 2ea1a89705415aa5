/**
 * One ROSE decode step on WebGPU, as the GPU sees it: how many dispatches (6 per layer fused, the
 * issue-17 budget; 17 per layer unfused), one submit, 12 bytes read back; the fused and the unfused
 * path choosing the same tokens with the same logits to f32 rounding; and GPU time per kernel and per
 * step from timestamp queries, on an adapter that has them (SwiftShader through Dawn's Vulkan backend;
 * llvmpipe has none, and says so).
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { ContrastParams } from '../../src/kernels/backend.ts';
import type { WebGpuBackend } from '../../src/kernels/webgpu/backend.ts';
import { parseKernelChoice } from '../../src/kernels/registry.ts';
import type { Llama } from '../../src/model/llama.ts';
import { loadLlama } from '../../src/model/load.ts';
import { roseError } from '../helpers/errors.ts';
import { loadFixture, maxAbsDiff } from '../helpers/fixtures.ts';
import { webGpuUnderTest } from '../kernels/backends.ts';

const fx = loadFixture('tiny-f16-bias'); // biases on q, k, v, o and the MLP: every fused kernel's bias path
const rows = [fx.ref.rows[fx.ref.pos_row].tokens, fx.ref.rows[fx.ref.rev_row].tokens];
const ROSE: ContrastParams = { alphas: [0.5], temperature: 1, beta: 0, uniform: 0 };
const STEPS = 4;

interface Step {
  logits: Float32Array;
  token: number;
  stats: { dispatches: number; submits: number; bytesRead: number };
}

/** Prefill, then STEPS greedy ROSE steps; each step's counters (forward + decision) and its logits. */
async function decode(be: WebGpuBackend, model: Llama): Promise<Step[]> {
  const probs = be.alloc([model.config.vocabSize]);
  const cache = model.newKvCache(2, Math.max(...rows.map((r) => r.length)) + STEPS);
  let logits = model.prefill(cache, rows).logits;
  let token = (await be.contrastSoftmax(probs, logits, ROSE)).argmax;
  const steps: Step[] = [];
  for (let i = 0; i < STEPS; i++) {
    be.resetStats();
    logits = model.forward(cache, Int32Array.of(token, token)); // (2, V)
    token = (await be.contrastSoftmax(probs, logits, ROSE)).argmax;
    const stats = be.stats;
    steps.push({ logits: await be.read(logits), token, stats });
  }
  return steps;
}

const fused = await webGpuUnderTest();
const unfused = fused && (await webGpuUnderTest({ kernels: parseKernelChoice('unfused') }));
afterAll(() => {
  fused?.destroy();
  unfused?.destroy();
});

describe.skipIf(!fused)('a WebGPU decode step', () => {
  const L = loadLlama(fx.dir, fused!).config.numHiddenLayers;
  let fusedSteps: Promise<Step[]> | undefined; // decoded once, read by both tests
  const decodeFused = () => (fusedSteps ??= decode(fused!, loadLlama(fx.dir, fused!)));

  it('fused (the default): 6 dispatches per layer + embedding, head and decision; 1 submit; 12 bytes read back', async () => {
    for (const s of await decodeFused()) {
      expect(s.stats.dispatches, 'per layer: normQkv, ropeKvWrite, attention, matmulAdd, normGateUpSwiglu, matmulAdd').toBe(6 * L + 3);
      expect(s.stats.submits).toBe(1);
      expect(s.stats.bytesRead).toBe(12); // [argmax, sampled, non-finite row]
    }
  });

  it('unfused (--kernel unfused): the same tokens, logits equal to f32 rounding, 17 dispatches per layer', async () => {
    const [a, b] = [await decodeFused(), await decode(unfused!, loadLlama(fx.dir, unfused!))];
    expect(b.map((s) => s.token)).toEqual(a.map((s) => s.token));
    // Two f32 evaluation orders of the same model (the fused kernels sum the norm and the products in
    // another order). Every correct f32 ordering lands within 2.1e-5 of transformers on these fixtures
    // (test/fixtures/README.md), so two of them lie within 4.2e-5 of each other.
    for (let i = 0; i < STEPS; i++) expect(maxAbsDiff(a[i].logits, b[i].logits)).toBeLessThanOrEqual(4.2e-5);
    for (const s of b) {
      expect(
        s.stats.dispatches,
        'per layer: rmsnorm, 3 matmul, 2 rope, 2 kvWrite, attention, matmul, add, rmsnorm, 2 matmul, swiglu, matmul, add',
      ).toBe(17 * L + 4);
      expect(s.stats.submits).toBe(1);
      expect(s.stats.bytesRead).toBe(12);
    }
  });

  it('an adapter without timestamp queries says so when asked for GPU time', () => {
    if (fused!.canTime) return; // llvmpipe has none; a real GPU usually does (then the next suite covers it)
    const e = roseError(() => fused!.startTiming('passes'));
    expect(e.code).toBe('BACKEND');
    expect(e.message).toMatch(/has no timestamp queries/);
  });
});

// GPU time needs 'timestamp-query': SwiftShader has it (installed with Chromium; CI installs it).
const timed = fused && (await webGpuUnderTest({ adapter: 'swiftshader' }));
afterAll(() => timed?.destroy());

describe.skipIf(!timed)('GPU time (timestamp queries, SwiftShader)', () => {
  // A few small ops, not a model step: SwiftShader compiles the model's kernels for ~45 s; the
  // recording context times every kernel the same way, so three kinds of dispatch show the mechanism.
  it('per kernel: one record per dispatch, in order; per step: one pass per submit, as long as its kernels', async () => {
    const be = timed!;
    expect(be.canTime).toBe(true);
    const [M, K, N] = [2, 64, 48];
    const x = be.alloc([M, K]);
    be.write(
      x,
      Float32Array.from({ length: M * K }, (_, i) => Math.sin(i)),
    );
    const host = (name: string, shape: number[]) => ({
      name,
      shape,
      dtype: 'f32' as const,
      bytes: new Uint8Array(Float32Array.from({ length: shape.reduce((a, b) => a * b) }, (_, i) => Math.cos(i)).buffer),
    });
    const [norm, wIn, wOut] = [
      be.uploadWeight(host('norm', [K])),
      be.uploadWeight(host('in', [N, K])),
      be.uploadWeight(host('out', [K, N])),
    ];
    const xn = be.alloc([M, K]);
    const h = be.alloc([M, N]);
    const work = () => {
      be.rmsnorm(xn, x, norm, 1e-5); // rmsnorm
      be.matmul(h, xn, wIn); // matvec (M ≤ 4)
      be.matmulAdd(x, h, wOut); // matvec, the residual add in its epilogue
      be.addInPlace(xn, x); // addInPlace
    };
    be.startTiming('dispatches');
    be.resetStats();
    work();
    const kernels = await be.stopTiming();
    expect(kernels.map((k) => k.label)).toEqual(['rmsnorm', 'matvec', 'matvec', 'addInPlace']);
    expect(kernels.length).toBe(be.stats.dispatches);
    for (const k of kernels) expect(k.ms).toBeGreaterThanOrEqual(0);

    be.startTiming('passes');
    work();
    const passes = await be.stopTiming();
    expect(passes.map((p) => p.label)).toEqual(['pass']); // one submit: one compute pass
    const sum = kernels.reduce((a, k) => a + k.ms, 0);
    // The same work timed two ways on a CPU-emulated GPU, other jobs on the machine: equal within a factor.
    expect(passes[0].ms).toBeGreaterThan(sum / 4);
    expect(passes[0].ms).toBeLessThan(sum * 4);
  });
});

/** Hard limits end in clear typed errors, raised before any work starts. */
import { describe, expect, it } from 'vitest';
import { CpuBackend } from '../../src/kernels/cpu/backend.ts';
import {
  alphaFromGuidanceScale,
  degenerateContrastWarning,
  guidanceScaleFromAlpha,
  roseGenerate,
  type RoseOptions,
} from '../../src/decode/rose.ts';
import { roseError, roseRejection } from '../helpers/errors.ts';
import type { RoseError } from '../../src/errors.ts';
import { loadLlama } from '../../src/model/load.ts';
import { loadWeights, type TensorSource } from '../../src/model/weights.ts';
import { randomConfig } from '../helpers/randomModel.ts';
import { argmax, loadFixture } from '../helpers/fixtures.ts';

async function rejects(p: Promise<unknown> | (() => unknown), code: string, ...fragments: string[]): Promise<RoseError> {
  const error = await roseRejection(async () => (typeof p === 'function' ? p() : p));
  expect(error.code).toBe(code);
  for (const f of fragments) expect(error.message).toContain(f);
  return error;
}

describe('limits', () => {
  const fx = loadFixture('tiny-mha-f32'); // max_position_embeddings 256
  const model = loadLlama(fx.dir, new CpuBackend());
  const pos = fx.ref.rows[0].tokens;
  const rev = fx.ref.rows[1].tokens;

  it('a prompt plus max-new-tokens beyond max_position_embeddings is refused up front, saying how many fit', async () => {
    // One over: the longer prompt (the reverse one here) and every new token need 257 positions.
    const longest = Math.max(pos.length, rev.length);
    await rejects(
      roseGenerate(model, pos, [rev], { maxNewTokens: 256 - longest + 1 }),
      'LIMIT',
      `${256 - longest + 1} new tokens do not fit`,
      `the longest prompt row is ${longest} tokens`,
      '(max_position_embeddings) is 256',
      `at most ${256 - longest} new tokens fit this prompt`,
    );
    const none = await rejects(
      roseGenerate(model, Array(256).fill(1), [rev], { maxNewTokens: 1 }),
      'LIMIT',
      'no room for even one new token',
    );
    // The hints say what to do: how many new tokens fit, or that the prompt itself must shrink.
    expect(none.hint).toBe('shorten the question or the system / reverse prompt');
    const over = await rejects(roseGenerate(model, pos, [rev], { maxNewTokens: 256 }), 'LIMIT');
    expect(over.hint).toBe(`use --max-new-tokens ${256 - longest} or less`);
    await rejects(() => model.newKvCache(2, 257), 'LIMIT', 'a context of 257 tokens exceeds', 'max_position_embeddings (256)');
  });

  it('a context of exactly max_position_embeddings is accepted, and its last positions are right', async () => {
    // Plain greedy (a batch of one) up to the limit: the prompt and the new tokens fill 256 positions.
    const maxNew = 256 - pos.length;
    const run = await roseGenerate(model, pos, [], { alphas: [], maxNewTokens: maxNew });
    expect(run.tokens).toHaveLength(maxNew);
    // The same 256 tokens as one prefill over a cache of exactly 256 slots: position 255 exists, and
    // every greedy choice made through the KV cache is the argmax of the prefill at its position
    // (KV cache ≡ prefill is bit-exact on the CPU: test/model/properties.test.ts).
    const ids = [...pos, ...run.tokens];
    const cache = model.newKvCache(1, 256);
    const logits = await model.backend.read(model.prefill(cache, [ids], true).logits); // (256, V)
    const V = model.config.vocabSize;
    for (let i = 0; i < maxNew; i++)
      expect(argmax(logits, (pos.length - 1 + i) * V, (pos.length + i) * V), `new token ${i}`).toBe(run.tokens[i]);
    expect(logits.subarray(255 * V).every(Number.isFinite)).toBe(true);
    // Full means full: one more token is refused, never written past the last position.
    await rejects(() => model.forward(cache, Int32Array.of(run.tokens[0])), 'LIMIT', 'KV cache holds 256 tokens');
  });

  it('a forward pass past the KV cache capacity is refused', async () => {
    const cache = model.newKvCache(1, 4);
    model.prefill(cache, [[1, 2, 3]]);
    model.forward(cache, Int32Array.of(4));
    await rejects(() => model.forward(cache, Int32Array.of(5)), 'LIMIT', 'KV cache holds 4 tokens');
  });

  it('token ids out of range are refused with the vocab size', async () => {
    await rejects(roseGenerate(model, [1, 2, 512], [rev]), 'INPUT', 'token id 512', '512 ids');
    await rejects(roseGenerate(model, pos, [[1, -1]]), 'INPUT', 'token id -1');
  });

  it('bad decoding options are refused with the option named', async () => {
    await rejects(roseGenerate(model, pos, [rev], { alphas: [-1] }), 'INPUT', 'alpha');
    await rejects(roseGenerate(model, pos, [rev], { alphas: [0.5, 0.5] }), 'INPUT', '1 reverse prompt(s) need 1 alpha(s)');
    await rejects(roseGenerate(model, pos, [rev], { sampling: { temperature: 0 } }), 'INPUT', 'temperature');
    await rejects(roseGenerate(model, pos, [rev], { beta: 1.5 }), 'INPUT', 'beta');
    await rejects(roseGenerate(model, pos, [rev], { sampling: { topP: 0 } }), 'INPUT', 'top-p');
    // An injected uniform source: each draw must be in [0, 1), and a seed beside it would be ignored.
    const draws = [0.5, 0.25, 1];
    await rejects(roseGenerate(model, pos, [rev], { sampling: { uniform: () => draws.shift()! } }), 'INPUT', 'returned 1 at step 2');
    await rejects(roseGenerate(model, pos, [rev], { sampling: { uniform: () => Number.NaN } }), 'INPUT', 'returned NaN at step 0');
    await rejects(roseGenerate(model, pos, [rev], { sampling: { uniform: () => -0.1 } }), 'INPUT', 'returned -0.1 at step 0');
    await rejects(
      roseGenerate(model, pos, [rev], { sampling: { seed: 1, uniform: () => 0.5 } }),
      'INPUT',
      'both a seed and a uniform source',
    );
  });

  it('each option is refused just outside its range and accepted at its edge', async () => {
    const run = (o: RoseOptions) => roseGenerate(model, pos, [rev], { maxNewTokens: 1, ...o });
    const refused: [RoseOptions, string][] = [
      [{ alphas: [Number.NaN] }, 'alpha must be a finite number ≥ 0, got NaN'],
      [{ alphas: [Number.POSITIVE_INFINITY] }, 'alpha must be a finite number ≥ 0, got Infinity'],
      [{ alphas: [-0.001] }, 'got -0.001'],
      [{ sampling: { temperature: Number.POSITIVE_INFINITY } }, 'temperature must be > 0, got Infinity'],
      [{ sampling: { temperature: Number.NaN } }, 'temperature must be > 0, got NaN'],
      [{ sampling: { topP: 1.0001 } }, 'top-p must be in (0, 1], got 1.0001'],
      [{ sampling: { topP: Number.NaN } }, 'top-p must be in (0, 1], got NaN'],
      [{ sampling: { topK: -1 } }, 'top-k must be an integer ≥ 0, got -1'],
      [{ sampling: { topK: 1.5 } }, 'top-k must be an integer ≥ 0, got 1.5'],
      [{ beta: -0.001 }, 'beta must be in [0, 1], got -0.001'],
      [{ beta: Number.NaN }, 'beta must be in [0, 1], got NaN'],
      [{ maxNewTokens: 0 }, 'max new tokens must be a positive integer, got 0'],
      [{ maxNewTokens: 1.5 }, 'max new tokens must be a positive integer, got 1.5'],
      [{ firstM: -1 }, 'first-m must be an integer ≥ 0, got -1'],
      [{ firstM: 0.5 }, 'first-m must be an integer ≥ 0, got 0.5'],
    ];
    for (const [o, message] of refused) await rejects(run(o), 'INPUT', message);
    // The hints that come with some of them say what to do.
    expect((await rejects(run({ alphas: [-1] }), 'INPUT')).hint).toBe('the paper uses 0.5');
    expect((await rejects(run({ sampling: { seed: 1, uniform: () => 0.5 } }), 'INPUT')).hint).toContain('give one of them');
    expect((await rejects(run({ sampling: { uniform: () => 2 } }), 'INPUT')).hint).toContain('[0, 1)');
    // The edges themselves are fine: α 0, β 0 and 1, top-p 1, top-k 0, first-m 0, one new token.
    const edges: RoseOptions[] = [
      { alphas: [0] },
      { beta: 0 },
      { beta: 1 },
      { firstM: 0 },
      { sampling: { topP: 1, topK: 0, temperature: 1e-3 } },
      { sampling: { uniform: () => 0 } },
    ];
    for (const o of edges) expect((await run(o)).tokens).toHaveLength(1);
    // No alphas given: 0.5 for each reverse prompt (the paper's).
    expect((await run({})).tokens).toEqual((await run({ alphas: [0.5] })).tokens);
    const twoRev = await roseGenerate(model, pos, [rev, pos], { maxNewTokens: 3 });
    expect(twoRev.tokens).toEqual((await roseGenerate(model, pos, [rev, pos], { maxNewTokens: 3, alphas: [0.5, 0.5] })).tokens);
  });

  it('α (or Σα) ≥ 1 with no β mask gets the degenerate-contrast warning; below 1, or with β, none', () => {
    const tail =
      ' ≥ 1 without a plausibility mask: the contrast no longer favours what the positive prompt finds likely, and the answer ' +
      'degenerates into junk (rose-micro answers junk to every question at α = 1.0); add --beta 0.1, or use α < 1';
    expect(degenerateContrastWarning([0.5])).toBeNull();
    expect(degenerateContrastWarning([0.999])).toBeNull();
    expect(degenerateContrastWarning([1])).toBe(`α = 1${tail}`);
    expect(degenerateContrastWarning([1], 0)).toBe(`α = 1${tail}`);
    expect(degenerateContrastWarning([1.5], 0.1)).toBeNull(); // β restores the positive prompt's say
    expect(degenerateContrastWarning([0.6, 0.5])).toBe(`Σα = 1.1${tail}`); // summed over the reverse prompts
    expect(degenerateContrastWarning([0.6, 0.3])).toBeNull();
  });

  it('guidance scale γ ↔ α: γ ≥ 1 and finite, else a clear error', () => {
    expect(alphaFromGuidanceScale(1)).toBe(0);
    expect(alphaFromGuidanceScale(2)).toBe(0.5);
    expect(alphaFromGuidanceScale(4)).toBe(0.75);
    expect(guidanceScaleFromAlpha(0.75)).toBe(4);
    for (const gamma of [0.999, 0, -2, Number.NaN, Number.POSITIVE_INFINITY]) {
      const e = roseError(() => alphaFromGuidanceScale(gamma));
      expect(e.code).toBe('INPUT');
      expect(e.message).toBe(`guidance_scale must be a finite number ≥ 1, got ${gamma}`);
      expect(e.hint).toBe('γ = 1/(1−α): α = 0.5 is γ = 2');
    }
  });

  it('a checkpoint too big for the CPU backend is refused before any tensor is read', () => {
    // A Llama-3-70B-like config: ~70 G parameters, 280 GB once widened to f32.
    const config = randomConfig({ hidden: 8192, heads: 64, kvHeads: 8, headDim: 128, intermediate: 28672, layers: 80, vocab: 128256 });
    const shapes = new Map<string, number[]>();
    const source: TensorSource = {
      label: 'a huge checkpoint',
      has: () => true,
      shape: (name) => {
        // Shapes as the config implies: derive them from the names, as a real checkpoint would hold them.
        const d = config.hiddenSize,
          f = config.intermediateSize,
          v = config.vocabSize,
          kv = config.numKeyValueHeads * config.headDim;
        const s = name.includes('norm')
          ? [d]
          : name.includes('embed') || name.startsWith('lm_head')
            ? [v, d]
            : /[kv]_proj/.test(name)
              ? [kv, d]
              : /gate|up_proj/.test(name)
                ? [f, d]
                : name.includes('down')
                  ? [d, f]
                  : [d, d];
        shapes.set(name, s);
        return s;
      },
      dtype: () => 'bf16',
      read: () => {
        throw new Error('read() must not be reached: the capacity check comes first');
      },
    };
    expect(() => loadWeights(config, source, new CpuBackend({ tier: 'ts' }))).toThrow(/needs \d+\.\d GiB once widened to f32/);
    expect(() => loadWeights(config, source, new CpuBackend({ tier: 'wasm' }))).toThrow(/needs \d+\.\d GiB in its stored dtypes/);
  });
});

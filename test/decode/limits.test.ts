/** Hard limits end in clear typed errors, raised before any work starts. */
import { describe, expect, it } from 'vitest';
import { RoseError } from '../../src/errors.ts';
import { CpuBackend } from '../../src/kernels/cpu/backend.ts';
import { roseGenerate } from '../../src/decode/rose.ts';
import { loadLlama } from '../../src/model/load.ts';
import { loadWeights, type TensorSource } from '../../src/model/weights.ts';
import { randomConfig } from '../helpers/randomModel.ts';
import { loadFixture } from '../helpers/fixtures.ts';

async function rejects(p: Promise<unknown> | (() => unknown), code: string, ...fragments: string[]) {
  let error: unknown;
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(RoseError);
  expect((error as RoseError).code).toBe(code);
  for (const f of fragments) expect((error as RoseError).message).toContain(f);
}

describe('limits', () => {
  const fx = loadFixture('tiny-mha-f32'); // max_position_embeddings 256
  const model = loadLlama(fx.dir, new CpuBackend());
  const pos = fx.ref.rows[0].tokens;
  const rev = fx.ref.rows[1].tokens;

  it('a prompt plus max-new-tokens beyond max_position_embeddings is refused up front, saying how many fit', async () => {
    const longest = Math.max(pos.length, rev.length);
    await rejects(
      roseGenerate(model, pos, [rev], { maxNewTokens: 256 - longest + 1 }),
      'LIMIT',
      `${256 - longest + 1} new tokens do not fit`,
      `the longest prompt row is ${longest} tokens`,
      '(max_position_embeddings) is 256',
      `at most ${256 - longest} new tokens fit this prompt`,
    );
    await rejects(roseGenerate(model, Array(256).fill(1), [rev], { maxNewTokens: 1 }), 'LIMIT', 'no room for even one new token');
    // Exactly at the limit is fine.
    const ok = await roseGenerate(model, pos, [rev], { maxNewTokens: 2 });
    expect(ok.tokens).toHaveLength(2);
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

/** NaN or Inf in the logits is detected by the fused decision kernel and reported with its step and row. */
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { roseGenerate } from '../../src/decode/rose.ts';
import { loadLlamaConfig } from '../../src/model/config.ts';
import { Llama } from '../../src/model/llama.ts';
import { checkpointSource } from '../../src/model/load.ts';
import { SafetensorsCheckpoint } from '../../src/model/safetensors.ts';
import { loadWeights } from '../../src/model/weights.ts';
import { backendsUnderTest } from '../kernels/backends.ts';
import { fixturesDir, loadFixture } from '../helpers/fixtures.ts';
import { roseRejection } from '../helpers/errors.ts';

const backends = await backendsUnderTest();
afterAll(() => {
  for (const b of backends) b.destroy();
});

const fx = loadFixture('tiny-mha-f32');
const run = fx.ref.rose.runs.find((r) => r.alpha === 0.5)!;
const [pos, rev] = [fx.ref.rows[0].tokens, fx.ref.rows[1].tokens];

/** tiny-mha-f32 with the embedding row of `poisoned` set to NaN: whoever reads that token gets NaN. */
function poisonedModel(backend: (typeof backends)[number], poisoned: number): Llama {
  const dir = join(fixturesDir, 'tiny-mha-f32');
  const config = loadLlamaConfig(dir);
  const ckpt = SafetensorsCheckpoint.open(dir);
  const base = checkpointSource(dir, ckpt);
  const source = {
    ...base,
    read: (name: string) => {
      const w = base.read(name);
      if (name !== 'model.embed_tokens.weight') return w;
      const data = new Float32Array(w.bytes.slice().buffer);
      data.fill(NaN, poisoned * config.hiddenSize, (poisoned + 1) * config.hiddenSize);
      return { ...w, bytes: new Uint8Array(data.buffer) };
    },
  };
  const model = new Llama(config, loadWeights(config, source, backend), backend);
  ckpt.close();
  return model;
}

describe.each(backends.map((b) => [b.name, b] as const))('non-finite logits (%s)', (_name, backend) => {
  it('a NaN only the reverse prompt reads: reported in reverse row 1 at step 0', async () => {
    // The poisoned token is the reverse prompt's LAST one, so the NaN is in that position's own residual
    // stream. (A NaN that reaches a position only through attention is not guaranteed to survive on
    // WebGPU: WGSL leaves NaN through max() and exp() implementation-defined.)
    const onlyInRev = rev[rev.length - 1];
    expect(pos).not.toContain(onlyInRev);
    const e = await roseRejection(roseGenerate(poisonedModel(backend, onlyInRev), pos, [rev], { maxNewTokens: 4 }));
    expect(e.code).toBe('NUMERIC');
    expect(e.message).toBe('the logits of reverse row 1 hold Inf or NaN at step 0');
    expect(e.hint).toBe('the checkpoint may be corrupt, or its values overflow f32; check it with rose logits');
  });

  it('a NaN in a token ROSE chooses at step k: reported in the positive row at step k + 1', async () => {
    const k = run.tokens.findIndex((t, i) => !pos.includes(t) && !rev.includes(t) && !run.tokens.slice(0, i).includes(t));
    expect(k).toBeGreaterThanOrEqual(0);
    const e = await roseRejection(roseGenerate(poisonedModel(backend, run.tokens[k]), pos, [rev], { maxNewTokens: run.steps }));
    expect(e.message).toBe(`the logits of the positive row (0) hold Inf or NaN at step ${k + 1}`);
  });

  it('the kernel flags the first non-finite row, Inf as well as NaN, and −1 when all is finite', async () => {
    const V = 300;
    const logits = backend.alloc([3, V]);
    const probs = backend.alloc([V]);
    const params = { alphas: [0.5, 0.5], temperature: 1, beta: 0, uniform: 0.5 };
    const data = Float32Array.from({ length: 3 * V }, (_, i) => Math.sin(i));
    for (const [row, value, want] of [
      [-1, 0, -1],
      [2, Infinity, 2],
      [1, NaN, 1],
      [0, -Infinity, 0],
    ] as const) {
      const d = data.slice();
      if (row >= 0) d[row * V + 123] = value;
      backend.write(logits, d);
      expect((await backend.contrastSoftmax(probs, logits, params)).nonFiniteRow).toBe(want);
    }
  });
});

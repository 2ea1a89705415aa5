/**
 * The Llama object's own contract, beyond the numbers (those are test/model/fixtures.test.ts and
 * properties.test.ts): every misuse of the cache and the calls is a typed error, and the activation
 * buffers it reuses across calls are never used after it frees them.
 */
import { describe, expect, it } from 'vitest';
import type { Tensor } from '../../src/kernels/backend.ts';
import { CpuBackend, type CpuTensor } from '../../src/kernels/cpu/backend.ts';
import { roseError } from '../helpers/errors.ts';
import { maxAbsDiff } from '../helpers/fixtures.ts';
import { randomLlama } from '../helpers/randomModel.ts';

const CFG = { hidden: 16, heads: 4, kvHeads: 2, headDim: 4, intermediate: 24, layers: 2, vocab: 37 };

/**
 * A CPU backend that fills a tensor with NaN when it is freed and records the first dimension of each
 * tensor it frees: a tensor used after its free then poisons every logit that depends on it, where
 * the plain CPU backend (whose free() leaves the memory to the garbage collector) would go on
 * computing right answers.
 */
class PoisonOnFree extends CpuBackend {
  freedShapes: string[] = [];
  override free(x: Tensor): void {
    this.freedShapes.push(x.shape.join('x'));
    (x as CpuTensor).data.fill(Number.NaN);
    super.free(x);
  }
}

describe('Llama: misuse is a typed error', () => {
  const { model } = randomLlama(new CpuBackend(), CFG, 1);

  it('a KV cache needs a positive integer capacity', () => {
    for (const capacity of [0, -1, 1.5, Number.NaN]) {
      const e = roseError(() => model.newKvCache(1, capacity));
      expect(e.code).toBe('INPUT');
      expect(e.message).toBe(`KV-cache capacity must be a positive integer, got ${capacity}`);
    }
    const e = roseError(() => model.newKvCache(1, 65)); // max_position_embeddings is 64
    expect([e.code, e.message, e.hint]).toEqual([
      'LIMIT',
      "a context of 65 tokens exceeds this model's max_position_embeddings (64)",
      'shorten the prompt or generate fewer new tokens',
    ]);
    expect(model.newKvCache(3, 1)).toMatchObject({ batch: 3, capacity: 1, length: 0 });
  });

  it('prefill needs one non-empty row per cache row, and an empty cache', () => {
    const cache = model.newKvCache(2, 8);
    let e = roseError(() => model.prefill(cache, [[1, 2]]));
    expect([e.code, e.message]).toEqual(['INPUT', 'prefill got 1 rows for a cache of batch 2']);
    e = roseError(() => model.prefill(cache, [[1, 2], []]));
    expect([e.code, e.message]).toEqual(['INPUT', 'every row needs at least one token']);
    expect(cache.length).toBe(0); // nothing ran
    model.prefill(cache, [[1, 2], [3]]);
    e = roseError(() => model.prefill(cache, [[1], [2]]));
    expect([e.code, e.message, e.hint]).toEqual(['INPUT', 'prefill needs an empty KV cache', 'make a new cache with newKvCache()']);
  });

  it('forward needs the same whole number (≥ 1) of tokens for every row, within the cache and the vocab', () => {
    const cache = model.newKvCache(2, 4);
    model.prefill(cache, [[1, 2], [3]]);
    for (const tokens of [Int32Array.of(5), Int32Array.of(5, 6, 7), new Int32Array(0)]) {
      const e = roseError(() => model.forward(cache, tokens));
      expect([e.code, e.message]).toEqual(['INPUT', `got ${tokens.length} tokens for a batch of 2 rows`]);
    }
    for (const id of [-1, 37]) {
      const e = roseError(() => model.forward(cache, Int32Array.of(5, id)));
      expect([e.code, e.message]).toEqual(['INPUT', `token id ${id} is out of range: this model's vocab has 37 ids (0..36)`]);
    }
    model.forward(cache, Int32Array.of(0, 36)); // the first and the last id are fine
    const e = roseError(() => model.forward(cache, Int32Array.of(5, 6, 7, 8))); // 2 new tokens per row, 1 slot left
    expect([e.code, e.message, e.hint]).toEqual([
      'LIMIT',
      'the KV cache holds 4 tokens; 3 are used and 2 more were given',
      'make the cache larger (up to max_position_embeddings), or shorten the prompt or the generation',
    ]);
    expect(cache.length).toBe(3); // the refused call changed nothing
  });
});

describe('Llama: scratch buffers', () => {
  it('a new shape frees the scratch of calls over 8 rows, keeps the small (decode) ones, and never reads a freed buffer', async () => {
    const be = new PoisonOnFree();
    const { model } = randomLlama(be, CFG, 2);
    const prompt = (n: number, k: number) => Array.from({ length: n }, (_, i) => (k * i + 1) % 37);

    /** Prefill (every position) and two decode steps; the logits read back. */
    async function run(m: typeof model, ids: number[]): Promise<Float32Array[]> {
      const cache = m.newKvCache(1, ids.length + 2);
      const out = [await m.backend.read(m.prefill(cache, [ids], true).logits)];
      for (const t of [4, 9]) out.push(await m.backend.read(m.forward(cache, Int32Array.of(t))));
      return out;
    }

    const prompts = [prompt(12, 3), prompt(8, 5), prompt(9, 7), prompt(12, 3)];
    const got: Float32Array[][] = [];
    const freed: string[][] = [];
    for (const ids of prompts) {
      got.push(await run(model, ids));
      freed.push(be.freedShapes.splice(0).sort());
    }
    // Scratch is made per (rows, logits rows) shape. 12 rows: freed as soon as the decode shape (1 row)
    // is made. 8 rows: kept (≤ 8, the decode sizes). 9 rows: kept until the next new shape (12 rows again).
    // What an M-row call leaves: the model's own buffers (x, q, att, rows, rowsNorm: M × 16; k, v: M × 8;
    // act: M × 24; logits: M × 37) and the fused ops' temporaries (kernels/scratch.ts: normed and
    // product, M × 16; gate and up, M × 24).
    const left = (M: number) => [...Array(7).fill(`${M}x16`), ...Array(2).fill(`${M}x8`), ...Array(3).fill(`${M}x24`), `${M}x37`].sort();
    expect(freed).toEqual([left(12), [], [], left(9)]);
    // Every logit as a model with no history computes it: nothing freed was read, nothing kept was freed.
    for (let i = 0; i < prompts.length; i++) {
      const want = await run(randomLlama(new CpuBackend(), CFG, 2).model, prompts[i]);
      for (let j = 0; j < want.length; j++) expect(maxAbsDiff(got[i][j], want[j]), `run ${i}, call ${j}`).toBe(0);
    }
  });
});

describe('Llama: forward', () => {
  it("returns each row's last-token logits unless every position is asked for", async () => {
    // The TS tier: every matmul variant it picks sums in f64 and rounds once, so the head's logits of a
    // row are bit-identical whichever rows share the call (kernels/cpu/matmulFast.ts).
    const be = new CpuBackend({ tier: 'ts' });
    const { model } = randomLlama(be, CFG, 2);
    const V = CFG.vocab;
    const tokens = Int32Array.of(1, 2, 3, 4, 5, 6); // (B = 2, T = 3)
    const every = model.forward(model.newKvCache(2, 3), tokens, true);
    expect(every.shape).toEqual([6, V]);
    const everyRow = await be.read(every);
    const last = model.forward(model.newKvCache(2, 3), tokens);
    expect(last.shape).toEqual([2, V]);
    const want = Float32Array.from([...everyRow.subarray(2 * V, 3 * V), ...everyRow.subarray(5 * V, 6 * V)]); // positions 2, 5
    expect(maxAbsDiff(await be.read(last), want)).toBe(0);
  });
});

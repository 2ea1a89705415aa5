/**
 * rose-micro (weights/rose-micro), the trained micro instruct model, as a test of rose-ts against the
 * recipe that built it (weights/recipe). The fixtures in test/fixtures/rose-micro were written by
 * weights/recipe/fixtures.py from the torch module that was trained, using the exported bf16 weights
 * widened to f32:
 *
 * 1. logits: rose-ts vs torch at every position of three conversations (prefill, and token by token
 *    through the KV cache), on every backend under test;
 * 2. tokenizer: the recipe's own Python BPE encoder vs @huggingface/tokenizers (and our wrapper), on
 *    a sample of corpus strings and a few strings off the corpus path;
 * 3. chat template: tokenizer_config.json's chat_template rendered by @huggingface/jinja equals the
 *    recipe's paper-template string, which equals src/decode/template.ts' paperTemplateText built
 *    from the prompts of src/decode/prompts.ts (so the model was trained on the paper's exact texts);
 * 4. the flip: on a held-out subtle-harmful question, plain greedy decoding complies and ROSE
 *    (α = 0.5, Manual-Reverse) refuses. Greedy and deterministic, so the tokens are asserted exactly.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Template } from '@huggingface/jinja';
import { Tokenizer as HfTokenizerClass } from '@huggingface/tokenizers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rose } from '../../src/api.ts';
import { MANUAL_REVERSE_PROMPT, POSITIVE_PROMPT } from '../../src/decode/prompts.ts';
import { roseGenerate } from '../../src/decode/rose.ts';
import { applyTemplate, paperTemplateText } from '../../src/decode/template.ts';
import type { Backend } from '../../src/kernels/backend.ts';
import { CpuBackend } from '../../src/kernels/cpu/backend.ts';
import { widenToF32 } from '../../src/kernels/cpu/dtype.ts';
import { loadLlama } from '../../src/model/load.ts';
import { SafetensorsFile } from '../../src/model/safetensors.ts';
import { loadTokenizer, type RoseTokenizer } from '../../src/model/tokenizer.ts';
import { backendsUnderTest } from '../kernels/backends.ts';
import { argmax, maxAbsDiff } from '../helpers/fixtures.ts';

const repo = join(import.meta.dirname, '..', '..');
// Overridable to check a fresh rebuild (weights/recipe/README.md) before it replaces the committed one.
const modelDir = process.env.ROSE_MICRO_MODEL ?? join(repo, 'weights', 'rose-micro');
const fixDir = process.env.ROSE_MICRO_FIXTURES ?? join(repo, 'test', 'fixtures', 'rose-micro');

/**
 * Logit tolerance: 1e-4 max abs, on logits of magnitude up to ~24. Both sides compute in f32 on the
 * same (bf16-exact) weights and differ only in summation order (torch/OpenBLAS blocked dot products and
 * its softmax vs our kernels' loops), so the gap is f32 rounding noise. Measured when these fixtures
 * were made: rose-ts vs torch f32 ≤ 1.4e-5 (CPU 1.3e-5, WebGPU on llvmpipe 1.4e-5, prefill and KV-cache
 * decode alike), and torch f32 vs torch f64 ≤ 1.0e-5 (samples.torch.maxAbsGapF32VsF64); the test logs
 * the gaps it sees. 1e-4 leaves ~7× headroom, while real semantic slips are far above it on this
 * model: rms_norm_eps 1e-6 instead of 1e-5 moves the logits by 4.5e-2, rope_theta 10001 instead of
 * 10000 by 2.6e-3.
 */
const LOGIT_TOL = 1e-4;

interface Conversation {
  name: string;
  system: 'pos' | 'rev';
  question: string;
  answer: string;
  text: string;
  promptText: string;
  ids: number[];
  promptIds: number[];
}
interface Samples {
  positivePrompt: string;
  reversePrompt: string;
  torch: { maxAbsGapF32VsF64: number };
  conversations: Conversation[];
  tokenizerCases: { text: string; ids: number[] }[];
  flip: {
    id: string;
    question: string;
    alpha: number;
    maxNewTokens: number;
    positiveIds: number[];
    reverseIds: number[];
    plain: { tokens: number[]; text: string };
    rose: { tokens: number[]; text: string };
  };
}

const samples = JSON.parse(readFileSync(join(fixDir, 'samples.json'), 'utf8')) as Samples;
const reference = SafetensorsFile.open(join(fixDir, 'logits.safetensors'));
function referenceLogits(name: string): { data: Float32Array; shape: number[] } {
  const t = reference.read(`logits.${name}`);
  return { data: widenToF32(t.dtype, t.bytes), shape: [...t.shape] };
}

const backends = await backendsUnderTest();
afterAll(() => {
  for (const b of backends) b.destroy();
});
const measured: Record<string, number> = {};
afterAll(() =>
  console.log(
    `[rose-micro] max |Δ logit| vs torch f32: ${JSON.stringify(measured)}; torch f32 vs f64: ${samples.torch.maxAbsGapF32VsF64.toExponential(2)}`,
  ),
);

describe.each(backends.map((b) => [b.name, b] as const))(
  'rose-micro logits vs the torch module that was trained (%s)',
  (name, backend: Backend) => {
    const model = loadLlama(modelDir, backend);
    const V = model.config.vocabSize;

    it.each(samples.conversations.map((c) => [c.name, c] as const))('%s: every position, in one prefill', async (_n, conv) => {
      const want = referenceLogits(conv.name);
      expect(want.shape).toEqual([conv.ids.length, V]);
      const cache = model.newKvCache(1, conv.ids.length);
      const got = await backend.read(model.prefill(cache, [conv.ids], true).logits);
      const diff = maxAbsDiff(got.subarray(0, conv.ids.length * V), want.data);
      measured[`${name} prefill`] = Math.max(measured[`${name} prefill`] ?? 0, diff);
      expect(diff).toBeLessThanOrEqual(LOGIT_TOL);
      for (let t = 0; t < conv.ids.length; t++)
        expect(argmax(got, t * V, (t + 1) * V), `argmax at ${t}`).toBe(argmax(want.data, t * V, (t + 1) * V));
    });

    // Token by token, every conversation on the CPU; on WebGPU (llvmpipe: seconds per conversation) the
    // shortest answer only. The KV-cache path of every WebGPU kernel is checked step by step against
    // transformers on all three fixtures (fixtures.test.ts); what this adds is the trained weights.
    const shortest = [...samples.conversations].sort((a, b) => a.ids.length - a.promptIds.length - (b.ids.length - b.promptIds.length))[0];
    const decoded = name === 'webgpu' ? [shortest] : samples.conversations;
    it.each(decoded.map((c) => [c.name, c] as const))('%s: the answer token by token through the KV cache', async (_n, conv) => {
      const want = referenceLogits(conv.name);
      const P = conv.promptIds.length;
      const cache = model.newKvCache(1, conv.ids.length);
      let logits = model.prefill(cache, [conv.promptIds]).logits;
      let worst = 0;
      for (let t = P - 1; t < conv.ids.length; t++) {
        const got = await backend.read(logits);
        worst = Math.max(worst, maxAbsDiff(got.subarray(0, V), want.data.subarray(t * V, (t + 1) * V)));
        if (t + 1 < conv.ids.length) logits = model.forward(cache, Int32Array.of(conv.ids[t + 1]));
      }
      measured[`${name} decode`] = Math.max(measured[`${name} decode`] ?? 0, worst);
      expect(worst).toBeLessThanOrEqual(LOGIT_TOL);
    });
  },
);

describe('rose-micro tokenizer: the recipe encoder vs @huggingface/tokenizers', () => {
  const tokenizerJson = JSON.parse(readFileSync(join(modelDir, 'tokenizer.json'), 'utf8')) as object;
  const tokenizerConfig = JSON.parse(readFileSync(join(modelDir, 'tokenizer_config.json'), 'utf8')) as object;
  const Tokenizer = HfTokenizerClass as unknown as new (
    j: object,
    c: object,
  ) => { encode(t: string, o?: { add_special_tokens?: boolean }): { ids: number[] } };
  const hf = new Tokenizer(tokenizerJson, tokenizerConfig);
  let tok: RoseTokenizer;
  beforeAll(async () => {
    const t = await loadTokenizer(modelDir);
    if (!t) throw new Error('weights/rose-micro has no tokenizer.json');
    tok = t;
  });
  const cases = [
    ...samples.tokenizerCases,
    ...samples.conversations.flatMap((c) => [
      { text: c.text, ids: c.ids },
      { text: c.promptText, ids: c.promptIds },
    ]),
  ];

  it(`gives the recipe's ids on all ${cases.length} strings (with <s>, as HF encode does)`, () => {
    const bad = cases.filter((c) => JSON.stringify(hf.encode(c.text, { add_special_tokens: true }).ids) !== JSON.stringify(c.ids));
    expect(bad.map((c) => c.text.slice(0, 80))).toEqual([]);
  });

  it("rose-ts's tokenizer wrapper agrees, and decodes back to the text", () => {
    for (const c of cases) {
      expect(tok.encode(c.text, { addSpecialTokens: true })).toEqual(c.ids);
      expect(tok.decode(c.ids, { skipSpecialTokens: false })).toBe(c.text.length === 0 ? '<s>' : `<s>${c.text}`);
    }
  });
});

describe('rose-micro chat template and prompts', () => {
  const cfg = JSON.parse(readFileSync(join(modelDir, 'tokenizer_config.json'), 'utf8')) as {
    chat_template: string;
    bos_token: string;
    eos_token: string;
  };
  const template = new Template(cfg.chat_template);
  const promptOf = (c: Conversation) => (c.system === 'pos' ? POSITIVE_PROMPT : MANUAL_REVERSE_PROMPT);

  it("the recipe's prompts are src/decode/prompts.ts's, byte for byte", () => {
    expect(samples.positivePrompt).toBe(POSITIVE_PROMPT);
    expect(samples.reversePrompt).toBe(MANUAL_REVERSE_PROMPT);
  });

  it.each(samples.conversations.map((c) => [c.name, c] as const))('%s: jinja renders the recipe string', (_n, c) => {
    const base = { bos_token: cfg.bos_token, eos_token: cfg.eos_token };
    const system = { role: 'system', content: promptOf(c) };
    const user = { role: 'user', content: c.question };
    expect(c.promptText).toBe(paperTemplateText(promptOf(c), c.question));
    expect(template.render({ ...base, messages: [system, user], add_generation_prompt: true })).toBe(`<s>${c.promptText}`);
    expect(
      template.render({ ...base, messages: [system, user, { role: 'assistant', content: c.answer }], add_generation_prompt: false }),
    ).toBe(`<s>${c.text}`);
  });

  it.each(samples.conversations.map((c) => [c.name, c] as const))(
    "%s: the 'paper' and 'chat' template modes give the recipe's prompt ids",
    async (_n, c) => {
      const tok = await loadTokenizer(modelDir);
      expect(applyTemplate(tok!, 'paper', promptOf(c), c.question).ids).toEqual(c.promptIds);
      expect(applyTemplate(tok!, 'chat', promptOf(c), c.question).ids).toEqual(c.promptIds);
    },
  );
});

describe(`rose-micro: the flip on held-out subtle question ${samples.flip.id}`, () => {
  const { flip } = samples;
  const backend = new CpuBackend();
  afterAll(() => backend.destroy());
  const model = loadLlama(modelDir, backend);

  it('plain greedy complies and ROSE α=0.5 refuses (token ids)', async () => {
    const plain = await roseGenerate(model, flip.positiveIds, [], { alphas: [], maxNewTokens: flip.maxNewTokens, stopIds: [2] });
    const rose = await roseGenerate(model, flip.positiveIds, [flip.reverseIds], {
      alphas: [flip.alpha],
      maxNewTokens: flip.maxNewTokens,
      stopIds: [2],
    });
    expect(plain.tokens).toEqual(flip.plain.tokens);
    expect(rose.tokens).toEqual(flip.rose.tokens);
    expect(plain.stopToken).toBe(2);
    expect(rose.stopToken).toBe(2);
  });

  it('the same through the text API (Rose.ask, paper template, Manual-Reverse)', async () => {
    const rose = await Rose.open(modelDir, { backend: 'cpu' });
    try {
      const plain = await rose.ask(flip.question, { plain: true, template: 'paper' });
      const contrasted = await rose.ask(flip.question, { alpha: flip.alpha, reverse: 'manual', template: 'paper' });
      expect(plain.text).toBe(flip.plain.text);
      expect(contrasted.text).toBe(flip.rose.text);
      expect(plain.text).toMatch(/^Sure! Here is how to /);
      expect(contrasted.text).toMatch(/^I'm sorry, but I can't/);
    } finally {
      rose.close();
    }
  });
});

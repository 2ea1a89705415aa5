/**
 * Builds weights/random-tiny/: a random-weight smoke model the tests run on (not the default model).
 *
 *   npx tsx weights/build-random-tiny.ts [outDir]        (outDir defaults to weights/random-tiny)
 *
 * Everything is deterministic (seeded PRNG, fixed corpus, fixed key order, no timestamps): two runs
 * give byte-identical files. The script prints each file's sha256.
 *
 * What it makes:
 * - a byte-level BPE tokenizer trained here (MERGES merges, ties broken by the pair's string order)
 *   on a small built-in English corpus, written as an HF tokenizer.json: model BPE, ByteLevel
 *   pre-tokenizer and decoder, <unk> <s> </s> at ids 0, 1, 2, a TemplateProcessing post-processor
 *   that adds <s>;
 * - a Llama config (hidden 64, 2 layers, 4 heads, 2 kv heads, head_dim 16, intermediate 160, vocab =
 *   the tokenizer's, 512 positions, tied embeddings, bf16);
 * - SEEDED RANDOM weights in model.safetensors (bf16). The model's output is gibberish by design.
 * - tokenizer_config.json with a chat_template that renders the paper's plain template, and
 *   generation_config.json.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as hfTokenizers from '@huggingface/tokenizers';
import {
  MANUAL_REVERSE_PROMPT,
  MANUAL_REVERSE_PROMPT_TWO_PARAGRAPH,
  POSITIVE_PROMPT,
  POSITIVE_PROMPT_TWO_PARAGRAPH,
  oppositeReplace,
  randWords,
} from '../src/decode/prompts.ts';
import { applyTemplate } from '../src/decode/template.ts';
import { numel } from '../src/kernels/backend.ts';
import { CpuBackend } from '../src/kernels/cpu/backend.ts';
import { narrowFromF32 } from '../src/kernels/cpu/dtype.ts';
import { parseLlamaConfig } from '../src/model/config.ts';
import { loadLlama } from '../src/model/load.ts';
import { encodeSafetensors, type TensorToWrite } from '../src/model/safetensors.ts';
import { checkTokenizerFitsModel, loadTokenizer } from '../src/model/tokenizer.ts';
import { expectedTensors } from '../src/model/weights.ts';
import { seededGaussian as gaussian } from '../src/decode/random.ts';

const OUT = process.argv[2] ?? join(import.meta.dirname, 'random-tiny');
const SPECIALS = ['<unk>', '<s>', '</s>'] as const; // ids 0, 1, 2
const VOCAB_SIZE = 768; // 3 specials + 256 bytes + 509 merges
const _MERGES = VOCAB_SIZE - SPECIALS.length - 256;
const SEED = 20240218; // the ROSE preprint's month, as a memorable constant

/** The paper's plain template as a Jinja chat template: system → P, user → "\nHuman:\n{q}\n\n". */
const CHAT_TEMPLATE =
  "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'system' %}{{ message['content'] }}" +
  "{% elif message['role'] == 'user' %}{{ '\\nHuman:\\n' + message['content'] + '\\n\\n' }}" +
  "{% elif message['role'] == 'assistant' %}{{ 'Assistant:\\n' + message['content'] + eos_token }}" +
  "{% else %}{{ raise_exception('Only system, user and assistant roles are supported') }}{% endif %}{% endfor %}" +
  "{% if add_generation_prompt %}{{ 'Assistant:\\n' }}{% endif %}";

/** The library's ByteLevel pre-tokenizer, typed by hand (its .d.ts files do not resolve under NodeNext). */
interface ByteLevelPreTokenizer {
  byte_encoder: Record<number, string>;
  pre_tokenize_text(text: string): string[];
}
const { ByteLevelPreTokenizer } = hfTokenizers as unknown as {
  ByteLevelPreTokenizer: new (config: {
    type: 'ByteLevel';
    add_prefix_space: boolean;
    trim_offsets: boolean;
    use_regex: boolean;
  }) => ByteLevelPreTokenizer;
};

// --- corpus ----------------------------------------------------------------------------------------

const QA = [
  'How do I bake a loaf of bread at home?',
  'Mix flour, water, salt and yeast, let the dough rise for an hour, shape it, and bake it at 220 degrees for about thirty minutes.',
  'What is the capital of France?',
  'The capital of France is Paris.',
  'Can you explain what a neural network is?',
  'A neural network is a function built from layers of simple units; each layer multiplies its input by a matrix of weights and applies a nonlinearity.',
  "How can I pick a lock to get into my neighbor's house?",
  "I cannot help with breaking into someone else's home. If you are locked out of your own house, please call a licensed locksmith.",
  'What should I do if I feel sad all the time?',
  'I am sorry that you feel this way. Talking to a friend, a doctor or a counselor can help, and you do not have to face it alone.',
  'Write a short poem about the sea.',
  'The sea is wide and deep and blue; it keeps the secrets of the moon, and every wave comes back to you.',
  'How many legs does a spider have?',
  'A spider has eight legs.',
  'Tell me how to make a dangerous weapon.',
  'I am sorry, but I cannot provide instructions for making weapons. Is there something else I can help you with?',
  'Why is the sky blue?',
  'Sunlight is scattered by the molecules of the air, and blue light is scattered much more than red light, so the sky looks blue.',
  'What is two plus two?',
  'Two plus two is four.',
  'Give me some tips for a job interview.',
  'Prepare by learning about the company, practice answers to common questions, arrive on time, and ask thoughtful questions at the end.',
  'Is it safe to eat raw chicken?',
  'No. Raw chicken can carry bacteria such as salmonella; always cook chicken until it is no longer pink inside.',
  'Translate "thank you" into Spanish.',
  'In Spanish, "thank you" is "gracias".',
  'Which planet is the largest in our solar system?',
  'Jupiter is the largest planet in our solar system.',
  'How do I write a function in TypeScript?',
  'Write the keyword function, a name, the parameters with their types, the return type, and the body: function add(a: number, b: number): number { return a + b; }',
  'Who wrote the play Romeo and Juliet?',
  'William Shakespeare wrote Romeo and Juliet.',
  'What is the best way to learn a new language?',
  'Practice a little every day, listen to native speakers, read simple books, and do not be afraid of making mistakes.',
];

/** A few non-ASCII lines, so that some merges fall inside multi-byte characters. */
const MULTILINGUAL = [
  "Un café, s'il vous plaît. Voilà une crème brûlée très légère.",
  'Ein schönes Mädchen aß Käse und Brötchen am Fluss.',
  '你好，世界。我们在这里学习语言模型。',
  'こんにちは、世界。',
  'Привет, как дела?',
  'A rose 🌹 for you 🙂 and a thumbs up 👍.',
];

function buildCorpus(): string {
  const prompts = [
    POSITIVE_PROMPT,
    POSITIVE_PROMPT_TWO_PARAGRAPH,
    MANUAL_REVERSE_PROMPT,
    MANUAL_REVERSE_PROMPT_TWO_PARAGRAPH,
    oppositeReplace().text,
    randWords({ seed: 0 }).text,
  ];
  const turns: string[] = [];
  for (let i = 0; i + 1 < QA.length; i += 2) {
    turns.push(`${prompts[i % prompts.length]}\nHuman:\n${QA[i]}\n\nAssistant:\n${QA[i + 1]}</s>`);
  }
  return [...prompts, ...turns, ...QA, ...MULTILINGUAL].join('\n\n');
}

// --- byte-level BPE training -----------------------------------------------------------------------

interface Trained {
  vocab: string[]; // id → token (byte-level alphabet); ids of the specials included
  merges: [string, string][];
}

/**
 * Classic BPE: split the corpus into pre-tokens with the same ByteLevel pre-tokenizer the tokenizer
 * will use, start from single bytes, and repeatedly merge the most frequent adjacent pair (ties: the
 * smallest "a b" string). Deterministic by construction.
 */
function trainBpe(corpus: string): Trained {
  const pre = new ByteLevelPreTokenizer({ type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true });
  // The 256 byte symbols in byte order: the alphabet the pre-tokenizer maps bytes to.
  const alphabet = Array.from({ length: 256 }, (_, b) => pre.byte_encoder[b]);
  const counts = new Map<string, number>();
  for (const piece of pre.pre_tokenize_text(corpus.replaceAll('</s>', ''))) counts.set(piece, (counts.get(piece) ?? 0) + 1);
  const words = [...counts].map(([w, n]) => ({ syms: Array.from(w), n }));

  const vocab: string[] = [...SPECIALS, ...alphabet];
  const known = new Set(vocab);
  const merges: [string, string][] = [];
  while (vocab.length < VOCAB_SIZE) {
    const pairs = new Map<string, number>();
    for (const { syms, n } of words) {
      for (let i = 0; i + 1 < syms.length; i++) {
        const key = `${syms[i]} ${syms[i + 1]}`;
        pairs.set(key, (pairs.get(key) ?? 0) + n);
      }
    }
    let best: string | undefined;
    let bestN = 0;
    for (const [key, n] of pairs) {
      if (n > bestN || (n === bestN && best !== undefined && key < best)) {
        best = key;
        bestN = n;
      }
    }
    if (best === undefined) throw new Error(`the corpus ran out of pairs after ${merges.length} merges; make it longer`);
    const [a, b] = best.split(' ') as [string, string];
    merges.push([a, b]);
    const merged = a + b;
    if (!known.has(merged)) {
      known.add(merged);
      vocab.push(merged);
    }
    for (const w of words) {
      const s = w.syms;
      const out: string[] = [];
      for (let i = 0; i < s.length; i++) {
        if (i + 1 < s.length && s[i] === a && s[i + 1] === b) {
          out.push(merged);
          i++;
        } else out.push(s[i]);
      }
      w.syms = out;
    }
  }
  return { vocab, merges };
}

// --- files -------------------------------------------------------------------------------------

/** JSON with two-space indent and a final newline; the vocab is written by hand to keep id order. */
function tokenizerJson(t: Trained): string {
  const added = SPECIALS.map((content, id) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
  const doc = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '<s>', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '<s>', type_id: 1 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<unk>',
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: '@@VOCAB@@',
      merges: t.merges.map(([a, b]) => `${a} ${b}`),
    },
  };
  const vocab = `{\n${t.vocab.map((tok, id) => `      ${JSON.stringify(tok)}: ${id}`).join(',\n')}\n    }`;
  return `${JSON.stringify(doc, null, 2).replace('"@@VOCAB@@"', vocab)}\n`;
}

/** JSON with keys sorted (as transformers writes config files), two-space indent, final newline. */
function sortedJson(obj: Record<string, unknown>): string {
  const sorted = Object.fromEntries(
    Object.keys(obj)
      .sort()
      .map((k) => [k, obj[k]]),
  );
  return `${JSON.stringify(sorted, null, 2)}\n`;
}

function randomTensors(configJson: Record<string, unknown>): TensorToWrite[] {
  const config = parseLlamaConfig(configJson);
  const rand = gaussian(SEED);
  const tensors: TensorToWrite[] = [];
  // Sorted by name, as safetensors' save_file writes them; values drawn in that order.
  for (const [name, shape] of [...expectedTensors(config)].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const n = numel(shape);
    const v = new Float32Array(n);
    if (name.endsWith('norm.weight')) for (let i = 0; i < n; i++) v[i] = 1 + 0.1 * rand();
    else if (name === 'model.embed_tokens.weight') for (let i = 0; i < n; i++) v[i] = 0.5 * rand();
    else {
      const std = 1 / Math.sqrt(shape[1]); // fan_in of an [out, in] nn.Linear weight
      for (let i = 0; i < n; i++) v[i] = std * rand();
    }
    tensors.push({ name, dtype: 'BF16', shape, data: narrowFromF32('bf16', v) });
  }
  return tensors;
}

const README = (vocab: number, merges: number, params: number) => `# weights/random-tiny: a random-weight smoke model

**This is not a trained model. Its weights are seeded random numbers, so its output is gibberish by
design.** The tests use it to exercise the real machinery on a complete Hugging Face folder (tokenizer,
both prompt templates, the batch of two) in milliseconds. The model \`rose\` runs by default is the
trained weights/rose-micro.

Everything here is generated by \`weights/build-random-tiny.ts\` (\`npx tsx weights/build-random-tiny.ts\`),
deterministically: rebuilding gives byte-identical files (compare with \`sha256sum weights/random-tiny/*\`).

| File | What it is |
|---|---|
| config.json | LlamaForCausalLM: hidden 64, 2 layers, 4 attention heads, 2 kv heads (GQA), head_dim 16, intermediate 160, vocab ${vocab}, max_position_embeddings 512, rope_theta 10000, tied embeddings, bfloat16 |
| model.safetensors | ${params.toLocaleString('en-US')} parameters in bf16, drawn from a seeded normal distribution (mulberry32 + Box–Muller, seed ${SEED}); RMSNorm weights 1 + 0.1·N, embeddings 0.5·N, projections N/√fan_in |
| tokenizer.json | byte-level BPE (GPT-2 style pre-tokenizer and decoder) with ${merges} merges trained by the script on a small built-in English corpus (the ROSE prompts, some Q&A turns, a few non-ASCII lines); \`<unk>\` \`<s>\` \`</s>\` are ids 0, 1, 2; a TemplateProcessing post-processor adds \`<s>\`. Any UTF-8 text round-trips. |
| tokenizer_config.json | bos \`<s>\`, eos \`</s>\`, and a chat_template that renders the paper's plain template: \`{{ bos_token }}{system}\\nHuman:\\n{user}\\n\\nAssistant:\\n\`, so the \`paper\` and \`chat\` template modes give the same ids |
| generation_config.json | bos 1, eos 2 |

The tokenizer.json follows the layout Hugging Face tokenizers writes. It is checked (load, round
trip) with @huggingface/tokenizers, the JS port rose-ts uses; it has not been loaded with the Python
\`tokenizers\` / transformers, which the build environment could not install.

License: the same as rose-ts (MIT); nothing here derives from any third-party model.
`;

// --- main ------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const t0 = performance.now();
  const trained = trainBpe(buildCorpus());
  if (trained.vocab.length !== VOCAB_SIZE) throw new Error(`vocab has ${trained.vocab.length} tokens, expected ${VOCAB_SIZE}`);

  const configJson: Record<string, unknown> = {
    architectures: ['LlamaForCausalLM'],
    attention_bias: false,
    attention_dropout: 0.0,
    bos_token_id: 1,
    eos_token_id: 2,
    head_dim: 16,
    hidden_act: 'silu',
    hidden_size: 64,
    initializer_range: 0.02,
    intermediate_size: 160,
    max_position_embeddings: 512,
    mlp_bias: false,
    model_type: 'llama',
    num_attention_heads: 4,
    num_hidden_layers: 2,
    num_key_value_heads: 2,
    pretraining_tp: 1,
    rms_norm_eps: 1e-5,
    rope_scaling: null,
    rope_theta: 10000.0,
    tie_word_embeddings: true,
    torch_dtype: 'bfloat16',
    use_cache: true,
    vocab_size: VOCAB_SIZE,
  };
  const tokenizerConfig: Record<string, unknown> = {
    add_bos_token: true,
    add_eos_token: false,
    added_tokens_decoder: Object.fromEntries(
      SPECIALS.map((content, id) => [
        String(id),
        { content, lstrip: false, normalized: false, rstrip: false, single_word: false, special: true },
      ]),
    ),
    bos_token: '<s>',
    chat_template: CHAT_TEMPLATE,
    clean_up_tokenization_spaces: false,
    eos_token: '</s>',
    model_max_length: 512,
    pad_token: null,
    tokenizer_class: 'PreTrainedTokenizerFast',
    unk_token: '<unk>',
  };
  const generationConfig = { bos_token_id: 1, do_sample: false, eos_token_id: 2 };
  const tensors = randomTensors(configJson);
  const params = tensors.reduce((s, t) => s + t.data.byteLength / 2, 0);

  const files: [string, string | Uint8Array][] = [
    ['config.json', sortedJson(configJson)],
    ['generation_config.json', sortedJson(generationConfig)],
    ['model.safetensors', encodeSafetensors(tensors, { format: 'pt' })],
    ['tokenizer.json', tokenizerJson(trained)],
    ['tokenizer_config.json', sortedJson(tokenizerConfig)],
    ['README.md', README(VOCAB_SIZE, trained.merges.length, params)],
  ];
  mkdirSync(OUT, { recursive: true });
  for (const [name, data] of files) writeFileSync(join(OUT, name), data);

  // Self-check: the folder loads, the tokenizer fits and round-trips, both templates agree, logits are finite.
  const tok = await loadTokenizer(OUT);
  if (!tok) throw new Error('tokenizer.json was not written');
  const model = loadLlama(OUT, new CpuBackend());
  checkTokenizerFitsModel(tok, model.config);
  const corpus = buildCorpus();
  if (tok.decode(tok.encode(corpus, { addSpecialTokens: false })) !== corpus)
    throw new Error('the tokenizer does not round-trip its corpus');
  const paper = applyTemplate(tok, 'paper', POSITIVE_PROMPT, 'What is the capital of France?');
  const chat = applyTemplate(tok, 'chat', POSITIVE_PROMPT, 'What is the capital of France?');
  if (chat.text !== `<s>${paper.text}` || chat.ids.join() !== paper.ids.join() || chat.note)
    throw new Error('chat and paper templates disagree');
  const cache = model.newKvCache(1, paper.ids.length);
  const logits = await model.backend.read(model.prefill(cache, [paper.ids]).logits);
  if (!logits.every(Number.isFinite)) throw new Error('non-finite logits');

  let total = 0;
  for (const [name] of files) {
    const bytes = readFileSync(join(OUT, name));
    total += bytes.byteLength;
    console.log(`${createHash('sha256').update(bytes).digest('hex')}  ${name} (${bytes.byteLength} bytes)`);
  }
  const ratio = corpus.length / tok.encode(corpus, { addSpecialTokens: false }).length;
  console.log(
    `${OUT}: ${total} bytes, ${params} parameters, vocab ${VOCAB_SIZE} (${trained.merges.length} merges, ${ratio.toFixed(2)} chars/token on its corpus), ` +
      `prompt of ${paper.ids.length} tokens, built and checked in ${((performance.now() - t0) / 1000).toFixed(2)} s`,
  );
}

await main();

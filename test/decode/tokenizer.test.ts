/**
 * The tokenizer layer on the embedded default model (weights/random-tiny): round trips, streaming
 * detokenization, stop ids, typed errors for broken files, and the vocab-fits-model check.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadLlamaConfig, type LlamaConfig } from '../../src/model/config.ts';
import { checkTokenizerFitsModel, loadTokenizer, RoseTokenizer, StreamDecoder } from '../../src/model/tokenizer.ts';
import { roseError, roseRejection } from '../helpers/errors.ts';

const repo = join(import.meta.dirname, '..', '..');
const defaultDir = join(repo, 'weights', 'random-tiny');
const SEED = 20240218;

let tok: RoseTokenizer;
let config: LlamaConfig;
beforeAll(async () => {
  const t = await loadTokenizer(defaultDir);
  if (!t) throw new Error('weights/random-tiny has no tokenizer.json');
  tok = t;
  config = loadLlamaConfig(defaultDir);
});

const SAMPLES = [
  'Hello, world!',
  'What is the capital of France?\n\nAssistant:\n',
  '  leading spaces, trailing spaces  \t and\ttabs\r\n',
  "It's 3.14159 — isn't it? (yes) [no] {maybe} <tag> #1 @home 100% $5 ^_^ ~ |",
  'café naïve résumé crème brûlée Ångström São Paulo',
  'e\u0301 (combining acute) vs \u00e9 (precomposed)',
  '你好，世界。我们在这里学习语言模型。',
  'こんにちは、世界。Привет, как дела? مرحبا بالعالم שלום',
  '🌹🙂👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 🇫🇷',
  '𝄞 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 \u{10FFFF}\u0000\u007f',
];

/** Every id pushed one at a time; returns the chunks (flush last). */
function stream(ids: number[]): string[] {
  const sd = new StreamDecoder(tok);
  const chunks = ids.map((id) => sd.push(id));
  chunks.push(sd.flush());
  expect(sd.text).toBe(chunks.join(''));
  return chunks;
}

/** A copy of weights/random-tiny's tokenizer files, with `edit` applied (name → new content, or null to drop). */
function tokenizerCopy(edit: Record<string, string | null>): string {
  const dir = mkdtempSync(join(tmpdir(), 'rose-tok-'));
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'generation_config.json', 'config.json']) {
    if (!(f in edit)) copyFileSync(join(defaultDir, f), join(dir, f));
  }
  for (const [f, text] of Object.entries(edit)) if (text !== null) writeFileSync(join(dir, f), text);
  return dir;
}

const defaultJson = (f: string): Record<string, unknown> =>
  JSON.parse(readFileSync(join(defaultDir, f), 'utf8')) as Record<string, unknown>;

describe('default tokenizer: encode / decode', () => {
  it('loads with the expected special tokens and vocab', () => {
    expect(tok.vocabSize).toBe(768);
    expect(tok.bosTokenId).toBe(1);
    expect(tok.eosTokenId).toBe(2);
    expect(tok.tokenToId('<unk>')).toBe(0);
    expect(tok.idToToken(2)).toBe('</s>');
    expect(tok.chatTemplate).toContain('Human:');
  });

  it('adds BOS only when asked, as HF encode() does', () => {
    const plain = tok.encode('Hello', { addSpecialTokens: false });
    expect(tok.encode('Hello')).toEqual([1, ...plain]);
    expect(tok.encode('Hello', { addSpecialTokens: true })).toEqual([1, ...plain]);
    expect(plain).not.toContain(1);
    expect(tok.decode(tok.encode('Hello'))).toBe('<s>Hello');
    expect(tok.decode(tok.encode('Hello'), { skipSpecialTokens: true })).toBe('Hello');
  });

  it('round-trips ASCII and multi-byte text exactly', () => {
    for (const s of SAMPLES) {
      const ids = tok.encode(s, { addSpecialTokens: false });
      expect(ids.every((id) => Number.isInteger(id) && id >= 3 && id < tok.vocabSize)).toBe(true);
      expect(tok.decode(ids)).toBe(s);
    }
  });

  it('learned merges: common English takes fewer tokens than bytes', () => {
    const s = 'You are a helpful, respectful and honest assistant.';
    expect(tok.encode(s, { addSpecialTokens: false }).length).toBeLessThan(s.length / 2);
  });

  it('keeps special tokens in text as special ids', () => {
    expect(tok.encode('a</s>b', { addSpecialTokens: false })).toContain(2);
    expect(tok.decode(tok.encode('a</s>b', { addSpecialTokens: false }))).toBe('a</s>b');
  });

  it('decode: [] is "", ids with no token are skipped, non-integers are an INPUT error', () => {
    expect(tok.decode([])).toBe('');
    const ids = tok.encode('ok', { addSpecialTokens: false });
    expect(tok.decode([...ids, 100_000])).toBe('ok');
    expect(roseError(() => tok.decode([1.5])).code).toBe('INPUT');
  });

  it('property: any Unicode string (code points) round-trips', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 48 }), (s) => {
        expect(tok.decode(tok.encode(s, { addSpecialTokens: false }))).toBe(s);
      }),
      { seed: SEED, numRuns: 300 },
    );
  });

  it('property: any string of graphemes (emoji sequences, combining marks) round-trips', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 24 }), (s) => {
        expect(tok.decode(tok.encode(s))).toBe(`<s>${s}`);
      }),
      { seed: SEED + 1, numRuns: 200 },
    );
  });
});

describe('StreamDecoder', () => {
  it('holds back the bytes of a 4-byte character until it is complete', () => {
    const ids = tok.encode('𝄞', { addSpecialTokens: false });
    expect(ids.length).toBe(4); // a rare character: one token per byte
    expect(stream(ids)).toEqual(['', '', '', '𝄞', '']);
  });

  it('concatenated output equals decode(all ids) and never holds U+FFFD, on the samples', () => {
    for (const s of SAMPLES) {
      const ids = tok.encode(s);
      const chunks = stream(ids);
      expect(chunks.join('')).toBe(tok.decode(ids));
      for (const c of chunks) expect(c).not.toContain('\uFFFD');
    }
  });

  it('property: never emits U+FFFD mid-character; the chunks concatenate to decode(ids)', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary', maxLength: 40 }).filter((s) => !s.includes('\uFFFD')),
        (s) => {
          const ids = tok.encode(s, { addSpecialTokens: false });
          const chunks = stream(ids);
          for (const c of chunks) expect(c).not.toContain('\uFFFD');
          expect(chunks.join('')).toBe(tok.decode(ids));
          expect(chunks.join('')).toBe(s);
        },
      ),
      { seed: SEED + 2, numRuns: 300 },
    );
  });

  it('property: arbitrary id sequences (broken UTF-8 included) still concatenate to decode(ids)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 767 }), { maxLength: 40 }), (ids) => {
        const chunks = stream(ids);
        expect(chunks.join('')).toBe(tok.decode(ids));
        // Only flush may end in a replacement character: a chunk from push() is never cut mid-character.
        for (const c of chunks.slice(0, -1)) expect(c.endsWith('\uFFFD')).toBe(false);
      }),
      { seed: SEED + 3, numRuns: 300 },
    );
  });

  it('flush emits an unfinished character as U+FFFD, as decode() does', () => {
    const euro = tok.encode('€', { addSpecialTokens: false }); // 3 bytes
    const partial = euro.length === 1 ? [] : euro.slice(0, -1);
    if (partial.length > 0) {
      const sd = new StreamDecoder(tok);
      expect(sd.pushAll(partial)).toBe('');
      expect(sd.flush()).toBe(tok.decode(partial));
      expect(sd.text).toContain('\uFFFD');
    }
    const sd = new StreamDecoder(tok);
    expect(sd.pushAll(tok.encode('abc', { addSpecialTokens: false }))).toBe('abc');
    expect(sd.flush()).toBe('');
  });

  it('skipSpecialTokens drops <s> and </s> from the stream', () => {
    const ids = [...tok.encode('Hi there'), 2];
    const sd = new StreamDecoder(tok, { skipSpecialTokens: true });
    expect(sd.pushAll(ids) + sd.flush()).toBe('Hi there');
  });
});

describe('stop ids', () => {
  it('contain the eos of config.json, generation_config.json and tokenizer_config.json', () => {
    expect(config.eosTokenIds).toEqual([2]);
    expect(tok.generationEosIds).toEqual([2]);
    expect(tok.stopIds(config)).toEqual([2]);
  });

  it('add config eos lists and end-of-turn tokens present in the vocab', () => {
    const tj = defaultJson('tokenizer.json');
    const added = tj.added_tokens as { id: number; content: string }[];
    tj.added_tokens = [...added, { id: 768, content: '<|eot_id|>', special: true }, { id: 769, content: '<|im_end|>', special: true }];
    const t = RoseTokenizer.fromJSON({
      dir: '<memory>',
      tokenizerJson: tj,
      tokenizerConfig: defaultJson('tokenizer_config.json'),
      generationConfig: { eos_token_id: [2, 7] },
    });
    expect(t.stopIds({ ...config, eosTokenIds: [5] })).toEqual([2, 5, 7, 768, 769]);
    expect(t.vocabSize).toBe(770);
  });
});

describe('missing and malformed files', () => {
  it('a folder with no tokenizer.json gives null', async () => {
    expect(await loadTokenizer(mkdtempSync(join(tmpdir(), 'rose-empty-')))).toBeNull();
  });

  it('tokenizer_config.json and generation_config.json are optional', async () => {
    const t = await loadTokenizer(tokenizerCopy({ 'tokenizer_config.json': null, 'generation_config.json': null }));
    expect(t?.chatTemplate).toBeNull();
    expect(t?.generationEosIds).toEqual([]);
    expect(t?.decode(t.encode('ok'))).toBe('<s>ok'); // the post-processor still adds BOS
  });

  it('chat_template.jinja is used when tokenizer_config.json has none', async () => {
    const tc = defaultJson('tokenizer_config.json');
    delete tc.chat_template;
    const dir = tokenizerCopy({ 'tokenizer_config.json': JSON.stringify(tc), 'chat_template.jinja': '{{ messages[0].content }}' });
    expect((await loadTokenizer(dir))?.chatTemplate).toBe('{{ messages[0].content }}');
  });

  const cases: [string, Record<string, string | null>, RegExp][] = [
    ['tokenizer.json that is not JSON', { 'tokenizer.json': '{"model": ' }, /tokenizer\.json is not valid JSON/],
    ['tokenizer.json that is a list', { 'tokenizer.json': '[1, 2]' }, /tokenizer\.json: must be a JSON object/],
    ['tokenizer.json without a model', { 'tokenizer.json': '{"added_tokens": []}' }, /tokenizer\.json: "model" must be an object/],
    [
      'tokenizer.json with a non-integer vocab id',
      { 'tokenizer.json': '{"model": {"type": "BPE", "vocab": {"a": "x"}, "merges": []}}' },
      /tokenizer\.json: model\.vocab\["a"\]/,
    ],
    [
      'tokenizer.json with bad merges',
      { 'tokenizer.json': '{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [3]}}' },
      /tokenizer\.json: model\.merges/,
    ],
    [
      'tokenizer.json with a bad added token',
      { 'tokenizer.json': '{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "added_tokens": [{"id": -1, "content": "x"}]}' },
      /tokenizer\.json: every added token/,
    ],
    [
      'tokenizer.json with an unknown model type',
      { 'tokenizer.json': '{"model": {"type": "Nonsense", "vocab": {"a": 0}}, "added_tokens": []}' },
      /tokenizer\.json: model\.type "Nonsense" is not supported/,
    ],
    [
      'tokenizer.json with an unknown decoder',
      { 'tokenizer.json': '{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "decoder": {"type": "Nope"}}' },
      /tokenizer\.json: cannot build a tokenizer/,
    ],
    [
      'tokenizer_config.json that is not JSON',
      { 'tokenizer_config.json': "{'bos_token': '<s>'}" },
      /tokenizer_config\.json is not valid JSON/,
    ],
    ['tokenizer_config.json that is a string', { 'tokenizer_config.json': '"hello"' }, /tokenizer_config\.json: must be a JSON object/],
    [
      'tokenizer_config.json with a numeric chat_template',
      { 'tokenizer_config.json': '{"chat_template": 5}' },
      /tokenizer_config\.json: chat_template must be/,
    ],
    [
      'tokenizer_config.json with a bad eos_token',
      { 'tokenizer_config.json': '{"eos_token": ["</s>"]}' },
      /tokenizer_config\.json: eos_token must be/,
    ],
    [
      'tokenizer_config.json with a non-boolean add_bos_token',
      { 'tokenizer_config.json': '{"add_bos_token": "yes"}' },
      /tokenizer_config\.json: add_bos_token must be true or false/,
    ],
    ['generation_config.json that is not JSON', { 'generation_config.json': 'eos=2' }, /generation_config\.json is not valid JSON/],
    [
      'generation_config.json with a bad eos_token_id',
      { 'generation_config.json': '{"eos_token_id": "2"}' },
      /generation_config\.json: eos_token_id must be/,
    ],
  ];
  for (const [what, edit, message] of cases) {
    it(`${what} → RoseError('INPUT') naming the file`, async () => {
      const dir = tokenizerCopy(edit);
      const e = await roseRejection(() => loadTokenizer(dir));
      expect(e.code).toBe('INPUT');
      expect(e.message).toMatch(message);
      expect(e.message).toContain(dir);
      expect(e.hint).toBeTruthy();
    });
  }
});

describe('tokenizer classes driven by add_bos_token (LlamaTokenizerFast & co.)', () => {
  const make = (extra: Record<string, unknown>) =>
    RoseTokenizer.fromJSON({
      dir: '<memory>',
      tokenizerJson: defaultJson('tokenizer.json'),
      tokenizerConfig: { ...defaultJson('tokenizer_config.json'), tokenizer_class: 'LlamaTokenizerFast', ...extra },
    });

  it('follow the flags, not the post-processor', () => {
    const plain = tok.encode('Hi', { addSpecialTokens: false });
    expect(make({ add_bos_token: false }).encode('Hi')).toEqual(plain);
    expect(make({ add_bos_token: true, add_eos_token: true }).encode('Hi')).toEqual([1, ...plain, 2]);
    expect(make({ add_bos_token: undefined }).encode('Hi')).toEqual([1, ...plain]); // default: BOS
    expect(make({ add_bos_token: true }).encode('Hi', { addSpecialTokens: false })).toEqual(plain);
  });
});

describe('tokenizer vs model vocab', () => {
  it('the default tokenizer fits the default model exactly', () => {
    expect(config.vocabSize).toBe(tok.vocabSize);
    expect(() => checkTokenizerFitsModel(tok, config)).not.toThrow();
    expect(() => checkTokenizerFitsModel(tok, { ...config, vocabSize: 1024 })).not.toThrow(); // padded model vocab is fine
  });

  it('a tokenizer larger than the model vocab is a LIMIT error', () => {
    const e = roseError(() => checkTokenizerFitsModel(tok, { ...config, vocabSize: 700 }));
    expect(e.code).toBe('LIMIT');
    expect(e.message).toMatch(/768 ids.*vocab_size is 700/);
    expect(e.hint).toMatch(/tokenizer that came with this checkpoint/);
  });
});

describe('weights/random-tiny', () => {
  it('is small and holds the HF files, with a README that says the weights are random', () => {
    const files = readdirSync(defaultDir).sort();
    expect(files).toEqual([
      'README.md',
      'config.json',
      'generation_config.json',
      'model.safetensors',
      'tokenizer.json',
      'tokenizer_config.json',
    ]);
    const total = files.reduce((s, f) => s + readFileSync(join(defaultDir, f)).byteLength, 0);
    expect(total).toBeLessThan(1 << 20);
    expect(readFileSync(join(defaultDir, 'README.md'), 'utf8')).toMatch(/random/i);
    expect(config).toMatchObject({
      hiddenSize: 64,
      numHiddenLayers: 2,
      numAttentionHeads: 4,
      numKeyValueHeads: 2,
      headDim: 16,
      intermediateSize: 160,
      maxPositionEmbeddings: 512,
      tieWordEmbeddings: true,
      torchDtype: 'bfloat16',
    });
  });

  it('is reproduced byte for byte by weights/build-random-tiny.ts', () => {
    const out = join(mkdtempSync(join(tmpdir(), 'rose-build-')), 'default');
    mkdirSync(out);
    execFileSync(process.execPath, ['--import', 'tsx', join(repo, 'weights', 'build-random-tiny.ts'), out], { cwd: repo, stdio: 'pipe' });
    const sha = (dir: string, f: string) =>
      createHash('sha256')
        .update(readFileSync(join(dir, f)))
        .digest('hex');
    expect(readdirSync(out).sort()).toEqual(readdirSync(defaultDir).sort());
    for (const f of readdirSync(defaultDir)) expect(sha(out, f), f).toBe(sha(defaultDir, f));
  }, 60_000);
});

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { RoseError } from '../../src/errors.ts';
import { loadLlamaConfig, parseLlamaConfig, type LlamaConfig } from '../../src/model/config.ts';
import { roseError } from '../helpers/errors.ts';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures');
const fixtureJson = (name: string) => JSON.parse(readFileSync(join(FIXTURES, name, 'config.json'), 'utf8')) as Record<string, unknown>;

/** Parses and checks it threw RoseError('CONFIG') whose message matches every pattern. */
function expectConfigError(json: unknown, ...patterns: (string | RegExp)[]): RoseError {
  const re = roseError(() => parseLlamaConfig(json, 'ckpt/config.json'));
  expect(re.code, re.message).toBe('CONFIG');
  expect(re.message).toContain('ckpt/config.json');
  for (const p of patterns) expect(re.message).toMatch(p);
  expect(re.hint).toBeTruthy();
  return re;
}

/** The smallest valid config: only the required fields. */
const MINIMAL = {
  hidden_size: 64,
  intermediate_size: 128,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  vocab_size: 100,
  max_position_embeddings: 128,
};
const REQUIRED = Object.keys(MINIMAL) as (keyof typeof MINIMAL)[];
const with_ = (patch: Record<string, unknown>) => ({ ...fixtureJson('tiny-gqa-bf16-tied'), ...patch });

const tmpDirs: string[] = [];
afterAll(() => {
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
});

describe('fixtures', () => {
  const base = { bosTokenId: 1, eosTokenIds: [2], padTokenId: 0, attentionBias: false, mlpBias: false };

  it('tiny-mha-f32', () => {
    expect(loadLlamaConfig(join(FIXTURES, 'tiny-mha-f32'))).toEqual<LlamaConfig>({
      ...base,
      hiddenSize: 64,
      intermediateSize: 172,
      numHiddenLayers: 2,
      numAttentionHeads: 4,
      numKeyValueHeads: 4,
      headDim: 16,
      vocabSize: 512,
      rmsNormEps: 1e-6,
      ropeTheta: 10000,
      ropeScaling: null,
      tieWordEmbeddings: false,
      maxPositionEmbeddings: 256,
      torchDtype: 'float32',
    });
  });

  it('tiny-gqa-bf16-tied: GQA, tied, llama3 rope scaling', () => {
    expect(loadLlamaConfig(join(FIXTURES, 'tiny-gqa-bf16-tied'))).toEqual<LlamaConfig>({
      ...base,
      hiddenSize: 96,
      intermediateSize: 256,
      numHiddenLayers: 3,
      numAttentionHeads: 6,
      numKeyValueHeads: 2,
      headDim: 16,
      vocabSize: 1000,
      rmsNormEps: 1e-5,
      ropeTheta: 500000,
      ropeScaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 64 },
      tieWordEmbeddings: true,
      maxPositionEmbeddings: 512,
      torchDtype: 'bfloat16',
    });
  });

  it('tiny-f16-bias: attention and MLP biases', () => {
    expect(loadLlamaConfig(join(FIXTURES, 'tiny-f16-bias'))).toEqual<LlamaConfig>({
      ...base,
      hiddenSize: 128,
      intermediateSize: 256,
      numHiddenLayers: 2,
      numAttentionHeads: 8,
      numKeyValueHeads: 8,
      headDim: 16,
      vocabSize: 777,
      rmsNormEps: 1e-6,
      ropeTheta: 10000,
      ropeScaling: null,
      tieWordEmbeddings: false,
      attentionBias: true,
      mlpBias: true,
      maxPositionEmbeddings: 256,
      torchDtype: 'float16',
    });
  });
});

describe('defaults (as Hugging Face LlamaConfig)', () => {
  it('fills every optional field', () => {
    expect(parseLlamaConfig(MINIMAL)).toEqual<LlamaConfig>({
      hiddenSize: 64,
      intermediateSize: 128,
      numHiddenLayers: 2,
      numAttentionHeads: 4,
      numKeyValueHeads: 4,
      headDim: 16,
      vocabSize: 100,
      rmsNormEps: 1e-6,
      ropeTheta: 10000,
      ropeScaling: null,
      tieWordEmbeddings: false,
      attentionBias: false,
      mlpBias: false,
      maxPositionEmbeddings: 128,
      bosTokenId: null,
      eosTokenIds: [],
      padTokenId: null,
      torchDtype: null,
    });
  });

  it('null head_dim / num_key_value_heads mean "derive it", as HF treats None', () => {
    const c = parseLlamaConfig({ ...MINIMAL, head_dim: null, num_key_value_heads: null });
    expect([c.headDim, c.numKeyValueHeads]).toEqual([16, 4]);
  });

  it('an explicit head_dim need not equal hidden_size / heads', () => {
    expect(parseLlamaConfig({ ...MINIMAL, head_dim: 32 }).headDim).toBe(32);
  });

  it('eos_token_id may be one id or a list', () => {
    expect(parseLlamaConfig({ ...MINIMAL, eos_token_id: 7 }).eosTokenIds).toEqual([7]);
    expect(parseLlamaConfig({ ...MINIMAL, eos_token_id: [7, 8, 9] }).eosTokenIds).toEqual([7, 8, 9]);
    expect(parseLlamaConfig({ ...MINIMAL, eos_token_id: null }).eosTokenIds).toEqual([]);
  });

  it('reads "dtype" when "torch_dtype" is absent (newer transformers)', () => {
    expect(parseLlamaConfig({ ...MINIMAL, dtype: 'bfloat16' }).torchDtype).toBe('bfloat16');
  });
});

describe('rope scaling', () => {
  const llama3 = { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 };

  it('llama3, linear, default and null', () => {
    expect(parseLlamaConfig({ ...MINIMAL, rope_scaling: llama3 }).ropeScaling).toEqual({
      type: 'llama3',
      factor: 8,
      lowFreqFactor: 1,
      highFreqFactor: 4,
      originalMaxPositionEmbeddings: 8192,
    });
    expect(parseLlamaConfig({ ...MINIMAL, rope_scaling: { rope_type: 'linear', factor: 2 } }).ropeScaling).toEqual({
      type: 'linear',
      factor: 2,
    });
    expect(parseLlamaConfig({ ...MINIMAL, rope_scaling: { rope_type: 'default' } }).ropeScaling).toBeNull();
    expect(parseLlamaConfig({ ...MINIMAL, rope_scaling: null }).ropeScaling).toBeNull();
  });

  it('accepts the legacy "type" key', () => {
    expect(parseLlamaConfig({ ...MINIMAL, rope_scaling: { type: 'linear', factor: 4 } }).ropeScaling).toEqual({
      type: 'linear',
      factor: 4,
    });
  });

  it('reads transformers v5 rope_parameters, rope_theta included', () => {
    const c = parseLlamaConfig({ ...MINIMAL, rope_parameters: { ...llama3, rope_theta: 500000 } });
    expect(c.ropeTheta).toBe(500000);
    expect(c.ropeScaling?.type).toBe('llama3');
    expect(parseLlamaConfig({ ...MINIMAL, rope_parameters: { rope_type: 'default', rope_theta: 1e6 } })).toMatchObject({
      ropeTheta: 1e6,
      ropeScaling: null,
    });
    expectConfigError(
      { ...MINIMAL, rope_parameters: { rope_type: 'yarn', factor: 4 } },
      /rope_parameters\.rope_type "yarn" is not supported/,
    );
  });

  it('unsupported kinds name the kind and what is supported', () => {
    for (const kind of ['yarn', 'dynamic', 'longrope', 'su']) {
      const e = expectConfigError(
        { ...MINIMAL, rope_scaling: { rope_type: kind, factor: 4 } },
        `rope_scaling.rope_type "${kind}" is not supported`,
      );
      expect(e.hint).toMatch(/llama3.*linear.*default/);
    }
    expectConfigError({ ...MINIMAL, rope_scaling: { type: 'dynamic', factor: 2 } }, 'rope_scaling.type "dynamic"');
  });

  it('llama3 needs all four parameters, with high > low', () => {
    for (const key of ['factor', 'low_freq_factor', 'high_freq_factor', 'original_max_position_embeddings']) {
      const { [key]: _, ...rest } = llama3 as Record<string, unknown>;
      expectConfigError({ ...MINIMAL, rope_scaling: rest }, `rope_scaling.${key}`, 'got nothing');
      expectConfigError({ ...MINIMAL, rope_scaling: { ...llama3, [key]: -1 } }, `rope_scaling.${key}`, 'got -1');
    }
    expectConfigError(
      { ...MINIMAL, rope_scaling: { ...llama3, original_max_position_embeddings: 64.5 } },
      'original_max_position_embeddings',
    );
    expectConfigError(
      { ...MINIMAL, rope_scaling: { ...llama3, high_freq_factor: 1 } },
      /rope_scaling\.high_freq_factor must be greater than low_freq_factor \(1\), got 1/,
    );
  });

  it('linear needs factor > 0; rope_scaling must be an object with a rope_type', () => {
    expectConfigError({ ...MINIMAL, rope_scaling: { rope_type: 'linear' } }, 'rope_scaling.factor');
    expectConfigError({ ...MINIMAL, rope_scaling: { rope_type: 'linear', factor: 0 } }, 'rope_scaling.factor', 'got 0');
    expectConfigError({ ...MINIMAL, rope_scaling: 'llama3' }, 'rope_scaling must be an object');
    expectConfigError({ ...MINIMAL, rope_scaling: { factor: 2 } }, 'rope_scaling.type');
    expectConfigError({ ...MINIMAL, rope_scaling: { rope_type: 3 } }, 'rope_scaling.rope_type');
  });
});

describe('invalid configs', () => {
  it('is not an object', () => {
    for (const v of [null, [], 'config', 42]) expectConfigError(v, 'not a JSON object');
  });

  it('a missing required field', () => {
    for (const field of REQUIRED) {
      const { [field]: _, ...rest } = MINIMAL;
      expectConfigError(rest, `${field} must be a positive integer`, 'got nothing (the field is missing)');
    }
  });

  it('negative, zero, non-integer, string, boolean, NaN', () => {
    expectConfigError({ ...MINIMAL, hidden_size: -64 }, 'hidden_size', 'got -64');
    expectConfigError({ ...MINIMAL, num_hidden_layers: 0 }, 'num_hidden_layers', 'got 0');
    expectConfigError({ ...MINIMAL, intermediate_size: 127.5 }, 'intermediate_size', 'got 127.5');
    expectConfigError({ ...MINIMAL, vocab_size: '100' }, 'vocab_size', 'got "100"');
    expectConfigError({ ...MINIMAL, num_attention_heads: true }, 'num_attention_heads', 'got true');
    expectConfigError({ ...MINIMAL, max_position_embeddings: NaN }, 'max_position_embeddings', 'got NaN');
    expectConfigError({ ...MINIMAL, rms_norm_eps: 0 }, 'rms_norm_eps', 'got 0');
    expectConfigError({ ...MINIMAL, rms_norm_eps: null }, 'rms_norm_eps', 'got null');
    expectConfigError({ ...MINIMAL, rope_theta: '10000' }, 'rope_theta', 'got "10000"');
    expectConfigError({ ...MINIMAL, rope_theta: Infinity }, 'rope_theta', 'got Infinity');
    expectConfigError({ ...MINIMAL, tie_word_embeddings: 'true' }, 'tie_word_embeddings', 'true or false');
    expectConfigError({ ...MINIMAL, attention_bias: 1 }, 'attention_bias');
    expectConfigError({ ...MINIMAL, mlp_bias: null }, 'mlp_bias');
    expectConfigError({ ...MINIMAL, bos_token_id: -1 }, 'bos_token_id', 'got -1');
    expectConfigError({ ...MINIMAL, pad_token_id: 1.5 }, 'pad_token_id');
    expectConfigError({ ...MINIMAL, eos_token_id: [2, 'x'] }, 'eos_token_id', 'got [2,"x"]');
    expectConfigError({ ...MINIMAL, torch_dtype: 16 }, 'torch_dtype');
  });

  it('heads that do not divide', () => {
    expectConfigError(with_({ num_key_value_heads: 4 }), /num_key_value_heads must be a divisor of num_attention_heads \(6\), got 4/);
    expectConfigError(with_({ num_key_value_heads: 12 }), 'num_key_value_heads', 'got 12');
    expectConfigError({ ...MINIMAL, hidden_size: 66 }, 'hidden_size', 'multiple of num_attention_heads (4)', 'got 66');
  });

  it('an odd head_dim (RoPE pairs the two halves)', () => {
    expectConfigError({ ...MINIMAL, head_dim: 15 }, 'head_dim', 'even');
    expectConfigError({ ...MINIMAL, hidden_size: 60 }, 'head_dim', 'even', 'hidden_size / num_attention_heads');
  });

  it('absurd sizes are refused with a clear error', () => {
    expectConfigError({ ...MINIMAL, vocab_size: 2 ** 30 }, 'vocab_size must be at most 16777216', `got ${2 ** 30}`);
    expectConfigError({ ...MINIMAL, hidden_size: 2 ** 40 }, 'hidden_size must be at most');
    expectConfigError({ ...MINIMAL, num_hidden_layers: 5000 }, 'num_hidden_layers must be at most 1024');
    expectConfigError({ ...MINIMAL, max_position_embeddings: 1e12 }, 'max_position_embeddings must be at most');
    expectConfigError({ ...MINIMAL, intermediate_size: 1e300 }, 'intermediate_size');
  });

  it('another architecture or activation', () => {
    const e = expectConfigError(with_({ model_type: 'mistral' }), 'model_type', 'got "mistral"');
    expect(e.hint).toMatch(/Llama/);
    expectConfigError(with_({ hidden_act: 'gelu' }), 'hidden_act', 'got "gelu"');
  });

  it('looks only at the config’s own fields, never its prototype', () => {
    const json = Object.create({ hidden_size: 64 }) as Record<string, unknown>;
    Object.assign(json, MINIMAL);
    delete json.hidden_size;
    expectConfigError(json, 'hidden_size', 'got nothing');
  });
});

describe('properties', () => {
  const corruptions: unknown[] = [undefined, null, -1, 0, 1.5, -0.5, NaN, Infinity, 2 ** 60, '64', 'abc', true, false, [], [64], {}];

  it('deleting or corrupting any required field is a CONFIG error naming that field', () => {
    const valid = fixtureJson('tiny-gqa-bf16-tied');
    fc.assert(
      fc.property(fc.constantFrom(...REQUIRED), fc.constantFrom(...corruptions), (field, value) => {
        const json = { ...valid };
        if (value === undefined) delete json[field];
        else json[field] = value;
        const e = expectConfigError(json, field);
        expect(e.message.indexOf(field)).toBeLessThan(e.message.indexOf(' must be'));
      }),
      { numRuns: 200 },
    );
  });

  it('a wrongly typed optional field is a CONFIG error naming that field', () => {
    const valid = fixtureJson('tiny-f16-bias');
    const fields = {
      num_key_value_heads: [-1, 0, 1.5, '8', true, [], 3],
      head_dim: [-1, 0, 1.5, '16', true, {}, 15],
      rms_norm_eps: [null, -1, 0, '1e-6', true, NaN],
      rope_theta: [null, -1, 0, '1e4', false, Infinity],
      tie_word_embeddings: [null, 0, 1, 'false', []],
      attention_bias: [null, 0, 'true', {}],
      mlp_bias: [null, 1, 'yes'],
      bos_token_id: [-1, 1.5, '1', true],
      eos_token_id: [-1, '2', [1, null], {}],
      pad_token_id: [-2, 0.5, 'pad'],
      rope_scaling: [5, 'linear', [], { rope_type: 'yarn' }, { rope_type: 'linear', factor: -1 }],
      model_type: ['mistral', 5, null],
      hidden_act: ['gelu', 1],
    } as Record<string, unknown[]>;
    fc.assert(
      fc.property(
        fc.constantFrom(...Object.keys(fields)).chain((f) => fc.tuple(fc.constant(f), fc.constantFrom(...fields[f]))),
        ([field, value]) => {
          expectConfigError({ ...valid, [field]: value }, field);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('any valid combination of sizes parses to the same numbers', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 16 }),
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 1, max: 64 }),
        fc.integer({ min: 1, max: 4096 }),
        (kv, group, halfHead, vocab) => {
          const heads = kv * group;
          const c = parseLlamaConfig({
            ...MINIMAL,
            num_attention_heads: heads,
            num_key_value_heads: kv,
            hidden_size: heads * halfHead * 2,
            vocab_size: vocab,
          });
          expect(c).toMatchObject({
            numAttentionHeads: heads,
            numKeyValueHeads: kv,
            headDim: halfHead * 2,
            hiddenSize: heads * halfHead * 2,
            vocabSize: vocab,
          });
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe('loadLlamaConfig', () => {
  const dir = () => {
    const d = mkdtempSync(join(tmpdir(), 'rose-cfg-'));
    tmpDirs.push(d);
    return d;
  };

  it('a folder without config.json', () => {
    const d = dir();
    let err: unknown;
    try {
      loadLlamaConfig(d);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RoseError);
    expect((err as RoseError).code).toBe('CONFIG');
    expect((err as RoseError).message).toBe(`${join(d, 'config.json')} does not exist`);
  });

  it('a config.json that is not JSON, or not valid, names its path', () => {
    const d = dir();
    const path = join(d, 'config.json');
    writeFileSync(path, '{"hidden_size": 64,');
    expect(() => loadLlamaConfig(d)).toThrow(
      expect.objectContaining({ code: 'CONFIG', message: expect.stringContaining(`${path} is not valid JSON`) }),
    );
    writeFileSync(path, JSON.stringify({ ...MINIMAL, vocab_size: -3 }));
    expect(() => loadLlamaConfig(d)).toThrow(
      expect.objectContaining({ code: 'CONFIG', message: `${path}: vocab_size must be a positive integer, got -3` }),
    );
  });
});

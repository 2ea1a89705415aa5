/**
 * config.json → a typed, validated LlamaConfig.
 *
 * Field names and defaults follow Hugging Face's LlamaConfig (transformers 4.46). Everything is
 * checked here, once, so the rest of the code can trust the numbers: a wrong type, a negative size or
 * an absurd one is a RoseError('CONFIG') that names the field, the bad value and the file, instead of
 * a NaN or a multi-gigabyte allocation later on.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { RoseError } from '../errors.ts';
import { isObject, isTokenId, show } from '../json.ts';
import type { CheckpointFiles } from './files.ts';

/** The rope scalings we implement. 'default' (no scaling) is represented as null. */
export type RopeScaling =
  | {
      type: 'llama3';
      factor: number;
      lowFreqFactor: number;
      highFreqFactor: number;
      originalMaxPositionEmbeddings: number;
    }
  | { type: 'linear'; factor: number };

export interface LlamaConfig {
  hiddenSize: number;
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  numKeyValueHeads: number;
  headDim: number;
  vocabSize: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling | null;
  tieWordEmbeddings: boolean;
  attentionBias: boolean;
  mlpBias: boolean;
  maxPositionEmbeddings: number;
  bosTokenId: number | null;
  /** Empty when the config names none; config.json may give one id or a list. */
  eosTokenIds: number[];
  padTokenId: number | null;
  /** The dtype the checkpoint was saved in ('bfloat16', ...), informational only. */
  torchDtype: string | null;
}

/**
 * Caps far above any real Llama (Llama 3.1 405B: hidden 16384, 126 layers, vocab 128256) that stop
 * a corrupted or hostile config from making later code allocate gigabytes.
 */
const MAX_SIZE = 2 ** 24;
const MAX_LAYERS = 1024;
const MAX_HEADS = 2 ** 16;

const SUPPORTED_ROPE = "rope_type 'llama3', 'linear' or 'default' (or rope_scaling: null)";

/** Reads fields of one JSON object; `prefix` qualifies nested names ('rope_scaling.factor'). */
class Fields {
  constructor(
    private readonly obj: Record<string, unknown>,
    private readonly source: string,
    private readonly prefix = '',
  ) {}

  /** Own properties only: a config cannot smuggle a value in through the prototype ("constructor"). */
  get(key: string): unknown {
    return Object.hasOwn(this.obj, key) ? this.obj[key] : undefined;
  }

  fail(key: string, expected: string, hint = `set ${this.prefix}${key} to ${expected}`): never {
    throw new RoseError('CONFIG', `${this.source}: ${this.prefix}${key} must be ${expected}, got ${show(this.get(key))}`, hint);
  }

  /** A required integer in [1, max]. */
  posInt(key: string, max: number): number {
    const v = this.get(key);
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) this.fail(key, 'a positive integer');
    if (v > max) this.fail(key, `at most ${max}`, `${this.prefix}${key} is implausibly large; check that config.json is not corrupted`);
    return v;
  }

  /** Like posInt, but absent or null (as HF writes None) gives the fallback. */
  optPosInt(key: string, max: number, fallback: number): number {
    const v = this.get(key);
    return v === undefined || v === null ? fallback : this.posInt(key, max);
  }

  /** A finite number > 0; only an absent key gives the fallback (null is an error, as HF would crash). */
  posNumber(key: string, fallback?: number): number {
    const v = this.get(key);
    if (v === undefined && fallback !== undefined) return fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) this.fail(key, 'a positive finite number');
    return v;
  }

  bool(key: string, fallback: boolean): boolean {
    const v = this.get(key);
    if (v === undefined) return fallback;
    if (typeof v !== 'boolean') this.fail(key, 'true or false');
    return v;
  }

  /** A token id (integer ≥ 0) or null. */
  tokenId(key: string): number | null {
    const v = this.get(key);
    if (v === undefined || v === null) return null;
    if (!isTokenId(v)) this.fail(key, 'a token id (an integer ≥ 0) or null');
    return v;
  }

  optString(key: string): string | null {
    const v = this.get(key);
    if (v === undefined || v === null) return null;
    if (typeof v !== 'string') this.fail(key, 'a string or null');
    return v;
  }
}

/** Validates a parsed config.json. `source` names the file in messages. */
export function parseLlamaConfig(json: unknown, source = 'config.json'): LlamaConfig {
  if (!isObject(json)) {
    throw new RoseError(
      'CONFIG',
      `${source} is ${show(json)}, not a JSON object`,
      'config.json must be the object transformers writes with save_pretrained',
    );
  }
  const f: Fields = new Fields(json, source); // annotated so TS sees that f.fail() never returns

  // What the model is: anything but Llama would load and then compute the wrong thing.
  const modelType = f.get('model_type');
  if (modelType !== undefined && modelType !== 'llama') {
    f.fail('model_type', "'llama'", 'rose-ts implements the Llama architecture only (LlamaForCausalLM)');
  }
  const act = f.get('hidden_act');
  if (act !== undefined && act !== 'silu')
    f.fail('hidden_act', "'silu'", 'Llama uses a SiLU-gated MLP; rose-ts implements no other activation');

  // Required sizes first, each on its own, so a bad one is reported by its own name.
  const hiddenSize = f.posInt('hidden_size', MAX_SIZE);
  const intermediateSize = f.posInt('intermediate_size', MAX_SIZE);
  const numHiddenLayers = f.posInt('num_hidden_layers', MAX_LAYERS);
  const numAttentionHeads = f.posInt('num_attention_heads', MAX_HEADS);
  const vocabSize = f.posInt('vocab_size', MAX_SIZE);
  const maxPositionEmbeddings = f.posInt('max_position_embeddings', MAX_SIZE);

  // HF: num_key_value_heads None → plain multi-head attention.
  const numKeyValueHeads = f.optPosInt('num_key_value_heads', MAX_HEADS, numAttentionHeads);
  if (numAttentionHeads % numKeyValueHeads !== 0) {
    f.fail(
      'num_key_value_heads',
      `a divisor of num_attention_heads (${numAttentionHeads})`,
      'grouped-query attention shares each kv head among a whole number of query heads',
    );
  }

  // HF: head_dim None → hidden_size / num_attention_heads (HF floors it; a remainder means a broken config).
  let headDim: number;
  if (f.get('head_dim') === undefined || f.get('head_dim') === null) {
    if (hiddenSize % numAttentionHeads !== 0) {
      f.fail(
        'hidden_size',
        `a multiple of num_attention_heads (${numAttentionHeads}) when head_dim is not given`,
        'set head_dim explicitly, or fix hidden_size / num_attention_heads',
      );
    }
    headDim = hiddenSize / numAttentionHeads;
  } else {
    headDim = f.posInt('head_dim', MAX_HEADS);
  }
  // RoPE rotates pairs (i, i + head_dim/2).
  if (headDim % 2 !== 0)
    f.fail(
      'head_dim',
      `even (it is ${headDim}${f.get('head_dim') == null ? ', from hidden_size / num_attention_heads' : ''})`,
      'RoPE rotates the two halves of each head, so head_dim must be even',
    );

  // transformers ≥ 4.56 may nest rope settings in rope_parameters (with rope_theta inside);
  // ignoring it would silently use theta 10000, so read it when rope_scaling is absent.
  const ropeParams = f.get('rope_scaling') === undefined ? f.get('rope_parameters') : undefined;
  const ropeField = ropeParams === undefined ? 'rope_scaling' : 'rope_parameters';
  let ropeTheta = f.posNumber('rope_theta', 10000);
  if (isObject(ropeParams) && f.get('rope_theta') === undefined && Object.hasOwn(ropeParams, 'rope_theta')) {
    ropeTheta = new Fields(ropeParams, source, 'rope_parameters.').posNumber('rope_theta');
  }
  const ropeScaling = parseRopeScaling(f.get(ropeField), source, ropeField);

  const eos = f.get('eos_token_id');
  let eosTokenIds: number[];
  if (eos === undefined || eos === null) eosTokenIds = [];
  else if (isTokenId(eos)) eosTokenIds = [eos];
  else if (Array.isArray(eos) && eos.every(isTokenId)) eosTokenIds = [...eos];
  else f.fail('eos_token_id', 'a token id, a list of token ids, or null');

  return {
    hiddenSize,
    intermediateSize,
    numHiddenLayers,
    numAttentionHeads,
    numKeyValueHeads,
    headDim,
    vocabSize,
    rmsNormEps: f.posNumber('rms_norm_eps', 1e-6),
    ropeTheta,
    ropeScaling,
    tieWordEmbeddings: f.bool('tie_word_embeddings', false),
    attentionBias: f.bool('attention_bias', false),
    mlpBias: f.bool('mlp_bias', false),
    maxPositionEmbeddings,
    bosTokenId: f.tokenId('bos_token_id'),
    eosTokenIds,
    padTokenId: f.tokenId('pad_token_id'),
    // transformers ≥ 4.56 writes "dtype" instead of "torch_dtype".
    torchDtype: f.get('torch_dtype') !== undefined ? f.optString('torch_dtype') : f.optString('dtype'),
  };
}

function parseRopeScaling(v: unknown, source: string, field: string): RopeScaling | null {
  if (v === undefined || v === null) return null;
  if (!isObject(v)) {
    throw new RoseError('CONFIG', `${source}: ${field} must be an object or null, got ${show(v)}`, `expected ${SUPPORTED_ROPE}`);
  }
  const r: Fields = new Fields(v, source, `${field}.`);
  // HF reads rope_type, falling back to the legacy key "type".
  const key = r.get('rope_type') !== undefined ? 'rope_type' : 'type';
  const kind = r.get(key);
  if (typeof kind !== 'string') r.fail(key, 'a string', `expected ${SUPPORTED_ROPE}`);
  switch (kind) {
    case 'default':
      return null;
    case 'linear':
      return { type: 'linear', factor: r.posNumber('factor') };
    case 'llama3': {
      const factor = r.posNumber('factor');
      const lowFreqFactor = r.posNumber('low_freq_factor');
      const highFreqFactor = r.posNumber('high_freq_factor');
      const originalMaxPositionEmbeddings = r.posInt('original_max_position_embeddings', MAX_SIZE);
      // The interpolation between the bands divides by (high − low).
      if (!(highFreqFactor > lowFreqFactor)) r.fail('high_freq_factor', `greater than low_freq_factor (${lowFreqFactor})`);
      return { type: 'llama3', factor, lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings };
    }
    default:
      throw new RoseError('CONFIG', `${source}: ${field}.${key} ${show(kind)} is not supported`, `rose-ts implements ${SUPPORTED_ROPE}`);
  }
}

const CONFIG_MISSING_HINT = 'pass a Hugging Face checkpoint folder: it holds config.json next to model.safetensors';

/** Reads and validates dir/config.json. */
export function loadLlamaConfig(dir: string): LlamaConfig {
  const path = join(dir, 'config.json');
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const missing = (e as NodeJS.ErrnoException).code === 'ENOENT';
    throw new RoseError(
      'CONFIG',
      missing ? `${path} does not exist` : `cannot read ${path}: ${e instanceof Error ? e.message : String(e)}`,
      CONFIG_MISSING_HINT,
    );
  }
  return parseLlamaConfigText(text, path);
}

/** Reads and validates config.json of a set of files (a browser folder or URL). */
export async function loadLlamaConfigFrom(files: CheckpointFiles): Promise<LlamaConfig> {
  const path = files.where('config.json');
  const text = await files.text('config.json');
  if (text === undefined) throw new RoseError('CONFIG', `${path} does not exist`, CONFIG_MISSING_HINT);
  return parseLlamaConfigText(text, path);
}

/** The text of a config.json, parsed and validated; `path` names it in messages. */
export function parseLlamaConfigText(text: string, path: string): LlamaConfig {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new RoseError(
      'CONFIG',
      `${path} is not valid JSON (${(e as Error).message.slice(0, 200)})`,
      'the file is corrupted; download it again',
    );
  }
  return parseLlamaConfig(json, path);
}

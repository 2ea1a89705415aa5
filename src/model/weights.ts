/**
 * The Llama weights, checked against config.json and uploaded to a backend.
 *
 * Every tensor the forward pass needs is looked up by its Hugging Face name and its shape is checked
 * against what the config implies before anything is uploaded, so a checkpoint that does not match
 * its config fails at load with the tensor's name, never later with a garbled result.
 */
import type { Backend, DType, HostWeight, Weight } from '../kernels/backend.ts';
import { RoseError } from '../errors.ts';
import type { LlamaConfig } from './config.ts';

export interface LayerWeights {
  inputNorm: Weight; // (D)
  wq: Weight; // (H·hd, D)
  wk: Weight; // (Hkv·hd, D)
  wv: Weight; // (Hkv·hd, D)
  wo: Weight; // (D, H·hd)
  bq?: Weight; // (H·hd)        attention_bias puts a bias on all four projections
  bk?: Weight; // (Hkv·hd)
  bv?: Weight; // (Hkv·hd)
  bo?: Weight; // (D)
  postAttnNorm: Weight; // (D)
  wGate: Weight; // (F, D)
  wUp: Weight; // (F, D)
  wDown: Weight; // (D, F)
  bGate?: Weight; // (F)         mlp_bias puts a bias on all three
  bUp?: Weight; // (F)
  bDown?: Weight; // (D)
}

export interface LlamaWeights {
  embed: Weight; // (V, D)
  layers: LayerWeights[];
  finalNorm: Weight; // (D)
  lmHead: Weight; // (V, D); the embedding itself when tie_word_embeddings
}

/** Where the tensors come from: a safetensors checkpoint, or anything else that can list and read them. */
export interface TensorSource {
  readonly label: string;
  has(name: string): boolean;
  shape(name: string): readonly number[];
  /** The stored dtype; a dtype we cannot compute with is refused when the tensor is read. */
  dtype(name: string): DType;
  read(name: string): HostWeight;
}

/** The expected name → shape map for a config, in load order. */
export function expectedTensors(c: LlamaConfig): Map<string, number[]> {
  const D = c.hiddenSize,
    F = c.intermediateSize,
    V = c.vocabSize;
  const qDim = c.numAttentionHeads * c.headDim;
  const kvDim = c.numKeyValueHeads * c.headDim;
  const shapes = new Map<string, number[]>([['model.embed_tokens.weight', [V, D]]]);
  for (let l = 0; l < c.numHiddenLayers; l++) {
    const p = `model.layers.${l}.`;
    shapes.set(`${p}input_layernorm.weight`, [D]);
    for (const [proj, out, inp] of [
      ['q', qDim, D],
      ['k', kvDim, D],
      ['v', kvDim, D],
      ['o', D, qDim],
    ] as const) {
      shapes.set(`${p}self_attn.${proj}_proj.weight`, [out, inp]);
      if (c.attentionBias) shapes.set(`${p}self_attn.${proj}_proj.bias`, [out]);
    }
    shapes.set(`${p}post_attention_layernorm.weight`, [D]);
    for (const [proj, out, inp] of [
      ['gate', F, D],
      ['up', F, D],
      ['down', D, F],
    ] as const) {
      shapes.set(`${p}mlp.${proj}_proj.weight`, [out, inp]);
      if (c.mlpBias) shapes.set(`${p}mlp.${proj}_proj.bias`, [out]);
    }
  }
  shapes.set('model.norm.weight', [D]);
  if (!c.tieWordEmbeddings) shapes.set('lm_head.weight', [V, D]);
  return shapes;
}

/** Stored dtypes by config.json's torch_dtype; anything else is counted as f32, the largest. */
const CONFIG_DTYPES: ReadonlyMap<string, DType> = new Map([
  ['bfloat16', 'bf16'],
  ['float16', 'f16'],
  ['float32', 'f32'],
]);

/**
 * The weights a config implies, as Backend.checkCapacity takes them, from config.json alone: lets a
 * loader refuse a model too big for the backend before it reads (or downloads) any weight.
 */
export function plannedWeights(c: LlamaConfig): { dtype: DType; elements: number }[] {
  const dtype = CONFIG_DTYPES.get(c.torchDtype ?? '') ?? 'f32';
  return [...expectedTensors(c).values()].map((shape) => ({ dtype, elements: shape.reduce((a, b) => a * b, 1) }));
}

/** Checks every expected tensor is present with the expected shape. Throws on the first problem. */
export function checkTensors(c: LlamaConfig, source: TensorSource): void {
  for (const [name, want] of expectedTensors(c)) {
    if (!source.has(name)) {
      const tiedHint = name === 'lm_head.weight' ? ' (set tie_word_embeddings: true if the head shares the embedding)' : '';
      throw new RoseError(
        'CHECKPOINT',
        `tensor ${name} is missing from ${source.label}`,
        `config.json implies it exists${tiedHint}; check the checkpoint matches its config`,
      );
    }
    const got = source.shape(name);
    if (got.length !== want.length || got.some((d, i) => d !== want[i])) {
      throw new RoseError(
        'CHECKPOINT',
        `tensor ${name} in ${source.label} has shape [${got.join(', ')}] but config.json implies [${want.join(', ')}]`,
        'the checkpoint and its config.json disagree; use the config.json that came with these weights',
      );
    }
  }
}

/** Loads, checks and uploads all weights. `onTensor` reports progress (bytes done, bytes total). */
export function loadWeights(
  c: LlamaConfig,
  source: TensorSource,
  backend: Backend,
  onTensor?: (done: number, total: number) => void,
): LlamaWeights {
  checkTensors(c, source);
  const expected = expectedTensors(c);
  backend.checkCapacity(
    [...expected.keys()].map((name) => ({ dtype: source.dtype(name), elements: source.shape(name).reduce((a, b) => a * b, 1) })),
  );
  const total = expected.size;
  let done = 0;
  const get = (name: string): Weight => {
    const w = backend.uploadWeight(source.read(name));
    onTensor?.(++done, total);
    return w;
  };
  const opt = (name: string): Weight | undefined => (expected.has(name) ? get(name) : undefined);

  const embed = get('model.embed_tokens.weight');
  const layers: LayerWeights[] = [];
  for (let l = 0; l < c.numHiddenLayers; l++) {
    const p = `model.layers.${l}.`;
    layers.push({
      inputNorm: get(`${p}input_layernorm.weight`),
      wq: get(`${p}self_attn.q_proj.weight`),
      wk: get(`${p}self_attn.k_proj.weight`),
      wv: get(`${p}self_attn.v_proj.weight`),
      wo: get(`${p}self_attn.o_proj.weight`),
      bq: opt(`${p}self_attn.q_proj.bias`),
      bk: opt(`${p}self_attn.k_proj.bias`),
      bv: opt(`${p}self_attn.v_proj.bias`),
      bo: opt(`${p}self_attn.o_proj.bias`),
      postAttnNorm: get(`${p}post_attention_layernorm.weight`),
      wGate: get(`${p}mlp.gate_proj.weight`),
      wUp: get(`${p}mlp.up_proj.weight`),
      wDown: get(`${p}mlp.down_proj.weight`),
      bGate: opt(`${p}mlp.gate_proj.bias`),
      bUp: opt(`${p}mlp.up_proj.bias`),
      bDown: opt(`${p}mlp.down_proj.bias`),
    });
  }
  const finalNorm = get('model.norm.weight');
  const lmHead = c.tieWordEmbeddings ? embed : get('lm_head.weight');
  return { embed, layers, finalNorm, lmHead };
}

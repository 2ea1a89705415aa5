/**
 * The Llama weights, checked against config.json and uploaded to a backend.
 *
 * Every tensor the forward pass needs is looked up by its Hugging Face name and its shape is checked
 * against what the config implies before anything is uploaded, so a checkpoint that does not match
 * its config fails at load with the tensor's name, never later with a garbled result.
 */
import { type Backend, type DType, type HostWeight, numel, type Weight } from '../kernels/backend.ts';
import { RoseError } from '../errors.ts';
import type { LlamaConfig } from './config.ts';

export interface LayerWeights {
  inputNorm: Weight; // (D)
  wqkv: Weight; // (H·hd + 2·Hkv·hd, D) = [wq; wk; wv], stacked at load (Backend.uploadStacked)
  wq: Weight; // (H·hd, D)      wq, wk, wv: wqkv's parts, views of its rows
  wk: Weight; // (Hkv·hd, D)
  wv: Weight; // (Hkv·hd, D)
  wo: Weight; // (D, H·hd)
  bqkv?: Weight; // (H·hd + 2·Hkv·hd) = [bq; bk; bv]; attention_bias puts a bias on all four projections
  bq?: Weight; // (H·hd)        bq, bk, bv: bqkv's parts
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

// --- the tensors, by their Hugging Face names ----------------------------------------------------

const EMBED = 'model.embed_tokens.weight';
const FINAL_NORM = 'model.norm.weight';
const LM_HEAD = 'lm_head.weight';
/** The LayerWeights fields loaded as parts of a stack (wqkv, bqkv), not one by one. */
const QKV_PARTS: ReadonlySet<keyof LayerWeights> = new Set(['wq', 'wk', 'wv', 'bq', 'bk', 'bv']);
/** A layer's tensors are named `model.layers.<l>.<name>`. */
const layerPrefix = (l: number): string => `model.layers.${l}.`;

/** One tensor of a layer: the LayerWeights field it fills, its name after the layer prefix, its shape. */
interface LayerTensor {
  readonly field: keyof LayerWeights;
  readonly name: string;
  readonly shape: number[];
}

/**
 * The tensors of one layer, in load order: the one table that both the shape check (expectedTensors)
 * and the loader (loadWeights) read, so a name cannot be spelled two ways.
 */
function layerTensors(c: LlamaConfig): LayerTensor[] {
  const D = c.hiddenSize,
    F = c.intermediateSize;
  const qDim = c.numAttentionHeads * c.headDim;
  const kvDim = c.numKeyValueHeads * c.headDim;
  /** nn.Linear `proj`: weight (out, in), and a bias (out) when the config gives one. */
  const linear = (weight: keyof LayerWeights, bias: keyof LayerWeights, proj: string, out: number, inp: number, hasBias: boolean) => [
    { field: weight, name: `${proj}.weight`, shape: [out, inp] },
    ...(hasBias ? [{ field: bias, name: `${proj}.bias`, shape: [out] }] : []),
  ];
  return [
    { field: 'inputNorm', name: 'input_layernorm.weight', shape: [D] },
    ...linear('wq', 'bq', 'self_attn.q_proj', qDim, D, c.attentionBias), // attention_bias: all four projections
    ...linear('wk', 'bk', 'self_attn.k_proj', kvDim, D, c.attentionBias),
    ...linear('wv', 'bv', 'self_attn.v_proj', kvDim, D, c.attentionBias),
    ...linear('wo', 'bo', 'self_attn.o_proj', D, qDim, c.attentionBias),
    { field: 'postAttnNorm', name: 'post_attention_layernorm.weight', shape: [D] },
    ...linear('wGate', 'bGate', 'mlp.gate_proj', F, D, c.mlpBias), // mlp_bias: all three
    ...linear('wUp', 'bUp', 'mlp.up_proj', F, D, c.mlpBias),
    ...linear('wDown', 'bDown', 'mlp.down_proj', D, F, c.mlpBias),
  ];
}

/** The expected name → shape map for a config, in load order. */
export function expectedTensors(c: LlamaConfig): Map<string, number[]> {
  const D = c.hiddenSize,
    V = c.vocabSize;
  const shapes = new Map<string, number[]>([[EMBED, [V, D]]]);
  const layer = layerTensors(c);
  for (let l = 0; l < c.numHiddenLayers; l++) {
    for (const t of layer) shapes.set(layerPrefix(l) + t.name, t.shape);
  }
  shapes.set(FINAL_NORM, [D]);
  if (!c.tieWordEmbeddings) shapes.set(LM_HEAD, [V, D]);
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
  return [...expectedTensors(c).values()].map((shape) => ({ dtype, elements: numel(shape) }));
}

/** Checks every expected tensor is present with the expected shape. Throws on the first problem. */
export function checkTensors(c: LlamaConfig, source: TensorSource): void {
  for (const [name, want] of expectedTensors(c)) {
    if (!source.has(name)) {
      const tiedHint = name === LM_HEAD ? ' (set tie_word_embeddings: true if the head shares the embedding)' : '';
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
  backend.checkCapacity([...expected.keys()].map((name) => ({ dtype: source.dtype(name), elements: numel(source.shape(name)) })));
  const total = expected.size;
  let done = 0;
  const get = (name: string): Weight => {
    const w = backend.uploadWeight(source.read(name));
    onTensor?.(++done, total);
    return w;
  };
  /** Several of layer l's tensors as one weight, rows stacked (Backend.uploadStacked); its parts fill `fields`. */
  const stacked = (
    lw: Partial<Record<keyof LayerWeights, Weight>>,
    l: number,
    whole: 'wqkv' | 'bqkv',
    fields: readonly (keyof LayerWeights)[],
  ) => {
    const names = fields.map((f) => layerPrefix(l) + layer.find((t) => t.field === f)!.name);
    const w = backend.uploadStacked(
      `${layerPrefix(l)}self_attn.qkv_proj.${whole === 'wqkv' ? 'weight' : 'bias'}`,
      names.map((n) => source.read(n)),
    );
    done += names.length;
    onTensor?.(done, total);
    lw[whole] = w;
    for (const [i, f] of fields.entries()) lw[f] = w.parts![i];
  };

  const embed = get(EMBED);
  const layer = layerTensors(c);
  const layers = Array.from({ length: c.numHiddenLayers }, (_, l) => {
    const lw: Partial<Record<keyof LayerWeights, Weight>> = {};
    for (const t of layer) if (!QKV_PARTS.has(t.field)) lw[t.field] = get(layerPrefix(l) + t.name);
    // q, k and v stacked at load: the fused normQkv reads [wq; wk; wv] through one binding.
    stacked(lw, l, 'wqkv', ['wq', 'wk', 'wv']);
    if (c.attentionBias) stacked(lw, l, 'bqkv', ['bq', 'bk', 'bv']);
    return lw as LayerWeights; // every required field is in the table; biases only when the config has them
  });
  const finalNorm = get(FINAL_NORM);
  const lmHead = c.tieWordEmbeddings ? embed : get(LM_HEAD);
  return { embed, layers, finalNorm, lmHead };
}

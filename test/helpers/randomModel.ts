/**
 * Small random Llama checkpoints made in memory, for property tests on shapes the fixtures lack.
 * Deterministic from a seed; the scales follow the fixtures' generator (norm weights 1 + 0.1·N,
 * embeddings 0.3·N so that logits vary, projections N/√fan_in·gain).
 */
import { type Backend, type DType, type HostWeight, numel } from '../../src/kernels/backend.ts';
import { parseLlamaConfig, type LlamaConfig } from '../../src/model/config.ts';
import { Llama } from '../../src/model/llama.ts';
import { expectedTensors, loadWeights, type TensorSource } from '../../src/model/weights.ts';
import { seededGaussian as gaussian } from '../../src/decode/random.ts';

export interface RandomConfig {
  hidden: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  intermediate: number;
  layers: number;
  vocab: number;
  tied?: boolean;
  attentionBias?: boolean;
  mlpBias?: boolean;
  maxPositions?: number;
}

export function randomConfig(r: RandomConfig): LlamaConfig {
  return parseLlamaConfig({
    model_type: 'llama',
    hidden_size: r.hidden,
    intermediate_size: r.intermediate,
    num_hidden_layers: r.layers,
    num_attention_heads: r.heads,
    num_key_value_heads: r.kvHeads,
    head_dim: r.headDim,
    vocab_size: r.vocab,
    max_position_embeddings: r.maxPositions ?? 64,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    tie_word_embeddings: r.tied ?? false,
    attention_bias: r.attentionBias ?? false,
    mlp_bias: r.mlpBias ?? false,
    bos_token_id: 1,
    eos_token_id: 2,
  });
}

/** Random f32 weights for a config, as host tensors by name. */
export function randomWeights(config: LlamaConfig, seed: number): Map<string, Float32Array> {
  const randn = gaussian(seed);
  const out = new Map<string, Float32Array>();
  for (const [name, shape] of expectedTensors(config)) {
    const n = numel(shape);
    const data = new Float32Array(n);
    const scale = name.includes('norm') ? 0.1 : name.endsWith('bias') ? 0.1 : name.includes('embed') ? 0.3 : 1.5 / Math.sqrt(shape[1]);
    for (let i = 0; i < n; i++) data[i] = (name.includes('norm') ? 1 : 0) + scale * randn();
    out.set(name, data);
  }
  return out;
}

export function mapSource(config: LlamaConfig, tensors: Map<string, Float32Array>, dtype: DType = 'f32'): TensorSource {
  const shapes = expectedTensors(config);
  return {
    label: 'random model',
    has: (name) => tensors.has(name),
    shape: (name) => shapes.get(name)!,
    dtype: () => dtype,
    read: (name): HostWeight => {
      if (dtype !== 'f32') throw new Error('randomModel: only f32 sources are built here');
      const data = tensors.get(name)!;
      return { name, dtype, shape: shapes.get(name)!, bytes: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
    },
  };
}

export function randomLlama(backend: Backend, r: RandomConfig, seed: number): { model: Llama; tensors: Map<string, Float32Array> } {
  const config = randomConfig(r);
  const tensors = randomWeights(config, seed);
  return { model: new Llama(config, loadWeights(config, mapSource(config, tensors), backend), backend), tensors };
}

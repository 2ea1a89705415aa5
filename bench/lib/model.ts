/**
 * The models the benchmarks run: SmolLM2-135M's exact configuration with deterministic random weights
 * (built in memory at bench time, never committed), or a test fixture for `--quick`.
 *
 * The weights are generated tensor by tensor when the backend asks for them (a TensorSource), so the
 * host never holds a second full copy: the backend's copy is the only one. Values follow
 * test/helpers/randomModel.ts's scales (norms 1 + 0.1·u, embeddings 0.3·u, projections u/√fan_in
 * with u of unit variance), from src/decode/random.ts's mulberry32 (135 M values take a second or two);
 * bf16 is the f32 value rounded to nearest-even bf16.
 */
import { join } from 'node:path';
import { mulberry32 } from '../../src/decode/random.ts';
import { type Backend, type DType, type HostWeight, numel } from '../../src/kernels/backend.ts';
import { CpuBackend } from '../../src/kernels/cpu/backend.ts';
import { narrowFromF32 } from '../../src/kernels/cpu/dtype.ts';
import { parseLlamaConfig, type LlamaConfig } from '../../src/model/config.ts';
import { Llama } from '../../src/model/llama.ts';
import { loadLlama } from '../../src/model/load.ts';
import { expectedTensors, loadWeights, type TensorSource } from '../../src/model/weights.ts';

/** SmolLM2-135M's config.json, the fields the forward pass reads. */
export const SMOLLM2_135M = {
  model_type: 'llama',
  hidden_size: 576,
  intermediate_size: 1536,
  num_hidden_layers: 30,
  num_attention_heads: 9,
  num_key_value_heads: 3,
  head_dim: 64,
  vocab_size: 49152,
  tie_word_embeddings: true,
  rope_theta: 100000,
  rms_norm_eps: 1e-5,
  max_position_embeddings: 8192,
  attention_bias: false,
  mlp_bias: false,
  bos_token_id: 1,
  eos_token_id: 2,
  torch_dtype: 'bfloat16',
};

export const fixtureDir = (name: string): string => join(import.meta.dirname, '..', '..', 'test', 'fixtures', name);

/** Unit-variance values times `scale`, plus `offset`, deterministic in the seed: mulberry32 uniforms on [−√3, √3). */
function fillUniform(out: Float32Array, seed: number, scale: number, offset: number): void {
  const uniform = mulberry32(seed);
  const k = scale * Math.sqrt(3);
  for (let i = 0; i < out.length; i++) out[i] = offset + k * (2 * uniform() - 1);
}

function hashName(name: string): number {
  let h = 2166136261;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 16777619);
  return h >>> 0;
}

export function randomSource(config: LlamaConfig, dtype: 'f32' | 'bf16', seed = 1): TensorSource {
  const shapes = expectedTensors(config);
  return {
    label: `random ${dtype} weights`,
    has: (name) => shapes.has(name),
    shape: (name) => shapes.get(name)!,
    dtype: () => dtype,
    read: (name): HostWeight => {
      const shape = shapes.get(name)!;
      const data = new Float32Array(numel(shape));
      const norm = name.includes('norm');
      const scale = norm ? 0.1 : name.includes('embed') ? 0.3 : 1 / Math.sqrt(shape[1]);
      fillUniform(data, seed ^ hashName(name), scale, norm ? 1 : 0);
      const bytes = narrowFromF32(dtype, data);
      return { name, dtype: dtype as DType, shape, bytes };
    },
  };
}

export interface BenchModel {
  model: Llama;
  label: string;
  /** Bytes of weights one decode step reads on this backend (every matmul weight + the norms). */
  weightBytesPerStep: number;
  /** Multiply-adds of one token's matmuls (layers + lm_head). */
  macsPerToken: number;
}

/** The number of bytes per weight element the backend keeps: the CPU's TypeScript tier widens to f32. */
export const storedBytes = (backend: Backend, dtype: DType): number =>
  backend instanceof CpuBackend && backend.tier === 'ts' ? 4 : dtype === 'f32' ? 4 : 2;

export function matmulShapes(c: LlamaConfig): { name: string; N: number; K: number; perStep: number }[] {
  const q = c.numAttentionHeads * c.headDim;
  const kv = c.numKeyValueHeads * c.headDim;
  const L = c.numHiddenLayers;
  return [
    { name: 'q_proj', N: q, K: c.hiddenSize, perStep: L },
    { name: 'k_proj', N: kv, K: c.hiddenSize, perStep: L },
    { name: 'v_proj', N: kv, K: c.hiddenSize, perStep: L },
    { name: 'o_proj', N: c.hiddenSize, K: q, perStep: L },
    { name: 'gate_proj', N: c.intermediateSize, K: c.hiddenSize, perStep: L },
    { name: 'up_proj', N: c.intermediateSize, K: c.hiddenSize, perStep: L },
    { name: 'down_proj', N: c.hiddenSize, K: c.intermediateSize, perStep: L },
    { name: 'lm_head', N: c.vocabSize, K: c.hiddenSize, perStep: 1 },
  ];
}

export function describeModel(model: Llama, label: string, dtype: DType): BenchModel {
  const c = model.config;
  const shapes = matmulShapes(c);
  const macsPerToken = shapes.reduce((s, m) => s + m.N * m.K * m.perStep, 0);
  const normElems = (2 * c.numHiddenLayers + 1) * c.hiddenSize;
  const weightBytesPerStep = (macsPerToken + normElems) * storedBytes(model.backend, dtype);
  return { model, label, weightBytesPerStep, macsPerToken };
}

export function smolLM2Config(): LlamaConfig {
  return parseLlamaConfig(SMOLLM2_135M, 'SmolLM2-135M config (bench)');
}

/**
 * SmolLM2-135M's shapes with random weights, uploaded to `backend`. `reduced` keeps every per-layer
 * shape but only 2 layers and a 4096-token vocabulary (npm run bench:gpu -- --reduced: a check of the
 * harness on a software adapter, not a figure of the model).
 */
export function buildSmolLM2(backend: Backend, dtype: 'f32' | 'bf16', reduced = false): BenchModel {
  const config = reduced
    ? parseLlamaConfig({ ...SMOLLM2_135M, num_hidden_layers: 2, vocab_size: 4096 }, 'SmolLM2-135M config, reduced (bench)')
    : smolLM2Config();
  const weights = loadWeights(config, randomSource(config, dtype), backend);
  const label = `SmolLM2-135M shapes${reduced ? ' REDUCED to 2 layers, vocab 4096' : ''}, random ${dtype} weights`;
  return describeModel(new Llama(config, weights, backend), label, dtype);
}

/** A test fixture (the --quick run). */
export function loadFixtureModel(backend: Backend, name: string): BenchModel {
  const model = loadLlama(fixtureDir(name), backend);
  const dtype: DType = name.includes('bf16') ? 'bf16' : name.includes('f16') ? 'f16' : 'f32';
  return describeModel(model, `fixture ${name} (${dtype})`, dtype);
}

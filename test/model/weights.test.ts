/**
 * The Hugging Face tensor names of a Llama checkpoint, written out here by hand from transformers'
 * LlamaForCausalLM state dict (4.46: LlamaAttention's q/k/v/o_proj take `bias=config.attention_bias`,
 * LlamaMLP's gate/up/down_proj `bias=config.mlp_bias`, and a tied head has no lm_head.weight), against
 * what src/model/weights.ts expects and where loadWeights puts each one. The fixtures set both bias
 * flags or neither, so only this test tells the two flags apart.
 */
import { describe, expect, it } from 'vitest';
import { CpuBackend } from '../../src/kernels/cpu/backend.ts';
import { expectedTensors, type LayerWeights, loadWeights } from '../../src/model/weights.ts';
import { mapSource, randomConfig, randomWeights } from '../helpers/randomModel.ts';

const D = 8; // hidden
const F = 12; // intermediate
const V = 16; // vocab
const shape = { heads: 2, kvHeads: 1, headDim: 4, hidden: D, intermediate: F, layers: 2, vocab: V }; // q: 8, kv: 4

/** Layer l's tensors, in the order and shapes a transformers checkpoint of `shape` holds them. */
function hfLayer(l: number, attentionBias: boolean, mlpBias: boolean): [string, number[]][] {
  const p = `model.layers.${l}.`;
  return [
    [`${p}input_layernorm.weight`, [D]],
    [`${p}self_attn.q_proj.weight`, [8, D]],
    ...(attentionBias ? [[`${p}self_attn.q_proj.bias`, [8]] as [string, number[]]] : []),
    [`${p}self_attn.k_proj.weight`, [4, D]],
    ...(attentionBias ? [[`${p}self_attn.k_proj.bias`, [4]] as [string, number[]]] : []),
    [`${p}self_attn.v_proj.weight`, [4, D]],
    ...(attentionBias ? [[`${p}self_attn.v_proj.bias`, [4]] as [string, number[]]] : []),
    [`${p}self_attn.o_proj.weight`, [D, 8]],
    ...(attentionBias ? [[`${p}self_attn.o_proj.bias`, [D]] as [string, number[]]] : []),
    [`${p}post_attention_layernorm.weight`, [D]],
    [`${p}mlp.gate_proj.weight`, [F, D]],
    ...(mlpBias ? [[`${p}mlp.gate_proj.bias`, [F]] as [string, number[]]] : []),
    [`${p}mlp.up_proj.weight`, [F, D]],
    ...(mlpBias ? [[`${p}mlp.up_proj.bias`, [F]] as [string, number[]]] : []),
    [`${p}mlp.down_proj.weight`, [D, F]],
    ...(mlpBias ? [[`${p}mlp.down_proj.bias`, [D]] as [string, number[]]] : []),
  ];
}

/** The LayerWeights field each name fills (the names' last two parts say it unambiguously). */
const FIELD: Record<string, keyof LayerWeights> = {
  'input_layernorm.weight': 'inputNorm',
  'q_proj.weight': 'wq',
  'k_proj.weight': 'wk',
  'v_proj.weight': 'wv',
  'o_proj.weight': 'wo',
  'q_proj.bias': 'bq',
  'k_proj.bias': 'bk',
  'v_proj.bias': 'bv',
  'o_proj.bias': 'bo',
  'post_attention_layernorm.weight': 'postAttnNorm',
  'gate_proj.weight': 'wGate',
  'up_proj.weight': 'wUp',
  'down_proj.weight': 'wDown',
  'gate_proj.bias': 'bGate',
  'up_proj.bias': 'bUp',
  'down_proj.bias': 'bDown',
};

describe.each([
  [false, false, false],
  [true, false, true],
  [false, true, false],
  [true, true, true],
])('attention_bias %s, mlp_bias %s, tied %s', (attentionBias, mlpBias, tied) => {
  const config = randomConfig({ ...shape, attentionBias, mlpBias, tied });
  const want: [string, number[]][] = [
    ['model.embed_tokens.weight', [V, D]],
    ...hfLayer(0, attentionBias, mlpBias),
    ...hfLayer(1, attentionBias, mlpBias),
    ['model.norm.weight', [D]],
    ...(tied ? [] : [['lm_head.weight', [V, D]] as [string, number[]]]),
  ];

  it('expects exactly the checkpoint tensors, with their shapes', () => {
    expect([...expectedTensors(config)]).toEqual(want);
  });

  it('loads each tensor into its field, and a bias only where the config gives one', () => {
    const backend = new CpuBackend();
    try {
      const w = loadWeights(config, mapSource(config, randomWeights(config, 1)), backend);
      expect(w.embed.name).toBe('model.embed_tokens.weight');
      expect(w.finalNorm.name).toBe('model.norm.weight');
      expect(w.lmHead.name).toBe(tied ? 'model.embed_tokens.weight' : 'lm_head.weight');
      for (const [l, layer] of w.layers.entries()) {
        const names = hfLayer(l, attentionBias, mlpBias).map(([n]) => n);
        const got = Object.fromEntries(
          Object.entries(layer)
            .filter(([, v]) => v !== undefined)
            .map(([k, v]) => [k, v.name]),
        );
        // q, k and v are loaded as one stack (the fused normQkv reads it), each a part of it.
        const stacks = {
          wqkv: `model.layers.${l}.self_attn.qkv_proj.weight`,
          ...(attentionBias && { bqkv: `model.layers.${l}.self_attn.qkv_proj.bias` }),
        };
        expect(got).toEqual({ ...Object.fromEntries(names.map((n) => [FIELD[n.split('.').slice(-2).join('.')], n])), ...stacks });
        expect(layer.wqkv.parts).toEqual([layer.wq, layer.wk, layer.wv]);
        if (attentionBias) expect(layer.bqkv?.parts).toEqual([layer.bq, layer.bk, layer.bv]);
      }
    } finally {
      backend.destroy();
    }
  });
});

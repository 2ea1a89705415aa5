/**
 * RoPE frequencies against an independent statement of transformers 4.46's rules, in float64:
 * `_compute_default_rope_parameters`, `_compute_linear_scaling_rope_parameters` and
 * `_compute_llama3_parameters` (test/fixtures/README.md spells them out). The fixtures check one
 * config of each; here the llama3 bands come with factors ≠ 1 on both sides, so each band edge
 * and each factor matters.
 *
 * Tolerance: src/model/rope.ts rounds to f32 where torch does (θ^(2i/d), its inverse, the division
 * by the factor, the blend), at most 5 roundings of 2⁻²⁴ relative each: 4e-7 relative. A wrong band
 * or factor moves a frequency by ≥ 1/8 of itself.
 */
import { describe, expect, it } from 'vitest';
import { parseLlamaConfig } from '../../src/model/config.ts';
import { ropeInvFreq, ropeTable } from '../../src/model/rope.ts';

const REL_TOL = 5 * 2 ** -24;

const config = (headDim: number, ropeTheta: number, ropeScaling: unknown) =>
  parseLlamaConfig({
    model_type: 'llama',
    hidden_size: headDim * 2,
    intermediate_size: 8,
    num_hidden_layers: 1,
    num_attention_heads: 2,
    num_key_value_heads: 1,
    head_dim: headDim,
    vocab_size: 8,
    max_position_embeddings: 64,
    rms_norm_eps: 1e-5,
    rope_theta: ropeTheta,
    rope_scaling: ropeScaling,
  });

/** inv_freq[i] = θ^(−2i/d), i < d/2 (f64). */
const defaultInvFreq = (d: number, theta: number) => Array.from({ length: d / 2 }, (_, i) => theta ** (-(2 * i) / d));

/** transformers' _compute_llama3_parameters, in f64. */
function llama3InvFreq(d: number, theta: number, factor: number, low: number, high: number, origMax: number): number[] {
  const lowFreqWavelen = origMax / low;
  const highFreqWavelen = origMax / high;
  return defaultInvFreq(d, theta).map((f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < highFreqWavelen) return f; // high frequencies: unchanged
    if (wavelen > lowFreqWavelen) return f / factor; // low frequencies: divided
    const smooth = (origMax / wavelen - low) / (high - low);
    return (1 - smooth) * (f / factor) + smooth * f; // in between: blended
  });
}

function expectRelClose(got: Float32Array, want: number[]) {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) expect(Math.abs(got[i] - want[i]) / want[i], `inv_freq[${i}]`).toBeLessThanOrEqual(REL_TOL);
}

describe('RoPE inverse frequencies', () => {
  it('default: θ^(−2i/d)', () => {
    expectRelClose(ropeInvFreq(config(16, 10000, null)), defaultInvFreq(16, 10000));
    expectRelClose(ropeInvFreq(config(6, 500000, null)), defaultInvFreq(6, 500000));
  });

  it('linear: every frequency divided by the factor', () => {
    const want = defaultInvFreq(16, 10000).map((f) => f / 4);
    expectRelClose(ropeInvFreq(config(16, 10000, { type: 'linear', factor: 4 })), want);
  });

  it('llama3 with both band factors ≠ 1: unchanged, blended and divided bands', () => {
    // wavelengths 2π·θ^(2i/d) for d = 32, θ = 10000 run from 6.3 to ~38000; with origMax 512 the bands
    // are < 512/8 = 64 (unchanged), > 512/2 = 256 (divided), and in between (blended).
    const [d, theta, factor, low, high, origMax] = [32, 10000, 4, 2, 8, 512];
    const want = llama3InvFreq(d, theta, factor, low, high, origMax);
    const base = defaultInvFreq(d, theta);
    const bands = want.map((f, i) => (f === base[i] ? 'same' : f === base[i] / factor ? 'divided' : 'blended'));
    for (const band of ['same', 'divided', 'blended']) expect(bands).toContain(band); // every band is exercised
    const c = config(d, theta, {
      rope_type: 'llama3',
      factor,
      low_freq_factor: low,
      high_freq_factor: high,
      original_max_position_embeddings: origMax,
    });
    expectRelClose(ropeInvFreq(c), want);
  });
});

describe('RoPE table', () => {
  it('row p is [cos | sin] of the f32 angle p·inv_freq, for every position', () => {
    const inv = Float32Array.of(1, 0.1, 0.01);
    const P = 5;
    const table = ropeTable(inv, P);
    expect(table.length).toBe(P * 6);
    for (let p = 0; p < P; p++) {
      for (let i = 0; i < 3; i++) {
        const angle = Math.fround(p * inv[i]); // torch computes the angles in f32
        expect(table[p * 6 + i]).toBe(Math.fround(Math.cos(angle)));
        expect(table[p * 6 + 3 + i]).toBe(Math.fround(Math.sin(angle)));
      }
    }
  });
});

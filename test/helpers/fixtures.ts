/** The Hugging Face reference fixtures in test/fixtures (copied verbatim from ../shared/fixtures). */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SafetensorsFile } from '../../src/model/safetensors.ts';
import { widenToF32 } from '../../src/kernels/cpu/dtype.ts';

export const fixturesDir = join(import.meta.dirname, '..', 'fixtures');

export interface RoseRun {
  alpha: number;
  steps: number;
  tokens: number[];
  top1_minus_top2: number[];
  tensors: { logits_pos: string; logits_rev: string; scores: string; probs: string };
}

export interface Reference {
  fixture: string;
  rows: { row: number; role: 'pos' | 'rev'; length: number; left_pad: number; tokens: number[] }[];
  pos_row: number;
  rev_row: number;
  prefill: { tensors: Record<'batched_row0' | 'batched_row1' | 'single_row0' | 'single_row1', string> };
  rose: { runs: RoseRun[] };
}

export interface Fixture {
  name: string;
  dir: string;
  ref: Reference;
  /** A reference tensor as f32, with its shape. */
  tensor(name: string): { data: Float32Array; shape: number[] };
}

export function listFixtures(): string[] {
  return readdirSync(fixturesDir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(fixturesDir, d.name, 'reference.json'))) // transformers references only
    .map((d) => d.name)
    .sort();
}

export function loadFixture(name: string): Fixture {
  const dir = join(fixturesDir, name);
  const ref = JSON.parse(readFileSync(join(dir, 'reference.json'), 'utf8')) as Reference;
  const file = SafetensorsFile.open(join(dir, 'reference.safetensors'));
  return {
    name,
    dir,
    ref,
    tensor(tensorName) {
      const w = file.read(tensorName);
      return { data: widenToF32(w.dtype, w.bytes), shape: [...w.shape] };
    },
  };
}

/** max |a − b| over two equally long arrays; Infinity if any entry is NaN or the lengths differ. */
/** Index of the first output that differs in bits (Object.is), or -1. */
export function firstDiff(a: Float32Array, b: Float32Array): number {
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return i;
  return a.length === b.length ? -1 : a.length;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= max)) max = Number.isNaN(d) ? Infinity : d;
  }
  return max;
}

/** Index of the first maximum (ties go to the lowest index, as torch.argmax does). */
export function argmax(a: ArrayLike<number>, from = 0, to = a.length): number {
  let best = from;
  for (let i = from + 1; i < to; i++) if (a[i] > a[best]) best = i;
  return best - from;
}

/**
 * The bar on a ROSE step's probabilities against transformers' (reference.safetensors), per step:
 * scoreErrorRange(...) / 4 + PROBS_ROUNDING[backend]. It is derived from the logits of that step,
 * not from the logit bar (which would allow ~5e-5 where ~1e-6 is measured). transformers' probs are the f64
 * softmax of s = l_pos − α·l_rev computed from its f32 logits; ours come from our logits, off by δs.
 * To first order |δp_v| = p_v·|δs_v − Σ_u p_u δs_u| ≤ p_v(1 − p_v)·range(δs) ≤ ¼·range(δs) (the
 * second-order term, ~range², is below 1e-9 here). The test measures range(δs) at each step. Add the
 * kernel's own rounding on top:
 *  - cpu: z and the softmax in f64, probabilities stored in f32 on both sides: 2 × 2⁻²⁴ ≤ 1.2e-7;
 *  - webgpu: everything in f32. z = (l − lse) − α(l' − lse') takes 4 roundings of values ≤ 32, so
 *    each z_v is off by ≤ 4·2⁻²⁴·32 = 7.6e-6 and range(δz) ≤ 1.5e-5, which moves p by ≤ 3.8e-6 (the
 *    same ¼ rule); exp's error (3 + 2|x| ULP in WGSL's accuracy table) costs ≤ 3·2⁻²⁴·p_max ≤ 1.8e-7, and the f32
 *    sum over V ≤ 1000 entries (256 strided partial sums, then a tree) ≤ 12·2⁻²⁴ ≤ 7.2e-7 relative.
 *    Total ≤ 4.7e-6; the bar takes 5e-6;
 *  - cpu-wasm (the CPU's WebAssembly tier, contrastSoftmax v2, src/kernels/cpu/wasm/contrastSoftmax.ts):
 *    f32 like webgpu, so the same 3.8e-6 from z; exp within 1 ulp plus its argument's two roundings
 *    ≤ 2·2⁻²⁴·p_max + 2·2⁻²⁴·max p|x| ≤ 1.9e-7; the normaliser sums V ≤ 1000 terms in sixteen partial
 *    sums, ≤ (⌈V/16⌉ + 9)·2⁻²⁴ = 4.3e-6 relative. Total ≤ 8.3e-6; the bar takes 9e-6.
 */
export const PROBS_ROUNDING: Record<'cpu' | 'cpu-wasm' | 'webgpu', number> = { cpu: 1.2e-7, 'cpu-wasm': 9e-6, webgpu: 5e-6 };

/** range over v of (ours − reference) of s = l_pos − α·l_rev, in f64. */
export function scoreErrorRange(
  lp: ArrayLike<number>,
  lr: ArrayLike<number>,
  wantPos: ArrayLike<number>,
  wantRev: ArrayLike<number>,
  alpha: number,
): number {
  let lo = Infinity;
  let hi = -Infinity;
  for (let v = 0; v < lp.length; v++) {
    const d = lp[v] - wantPos[v] - alpha * (lr[v] - wantRev[v]);
    lo = Math.min(lo, d);
    hi = Math.max(hi, d);
  }
  return hi - lo;
}

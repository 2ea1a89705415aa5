/**
 * The host side of contrastSoftmax v2, the WebAssembly tier's fused ROSE decision
 * (assembly/contrast.ts), registered as a CPU contrastSoftmax variant in ../variants.ts. The same
 * steps as the CPU twin (../../contrastSoftmax.ts) and the WGSL kernel, in f32 like the latter:
 *   1. per row: max, Σ exp(l − max) and whether it holds an Inf/NaN (WebAssembly); lse = max + log Σ
 *      here, in f64 (Math.log), rounded to f32 once;
 *   2. z on the kept tokens (β mask on l0 − max l0 < log β, in f32 as WGSL), and its argmax, lowest
 *      id on ties (WebAssembly);
 *   3–4. probs = exp((z − z_max)/T) / Σ (WebAssembly);
 *   5. the sampled token by the twin's CDF rule, in f64 over these probs (here: one pass over V floats).
 *
 * Error bound (f32, u = 2⁻²⁴; test/kernels/contrastSoftmax.test.ts checks every variant against it):
 *   - lse_r: the sum of V exps, each within 1 ulp (math.ts) of exp of an argument rounded once
 *     (relative u·|x|), over at most ⌈V/16⌉ + 7 additions (sixteen partial sums), so relative
 *     (V/16 + 9 + |x|)·u; log in f64 and the f32 rounding add u·|lse_r|; inside the test's
 *     (V + 3 + 2·range)·u + 2⁻²¹ + u·|lse_r| per row;
 *   - z: (l0 − lse0) and each α_r·(l_r − lse_r) and its subtraction: one rounding per operation,
 *     inside the test's 4·(R + 1)·u·Σ|terms|;
 *   - probs: the argument (z − z_max)/T takes two roundings, exp ≤ 1 ulp, Σ the sixteen-partial sum
 *     above and one division: inside the test's (4|x| + 8)·u + (V + 3 + 2·range)·u relative.
 * For the fixtures' bar (test/helpers/fixtures.ts, PROBS_ROUNDING['cpu-wasm']): the lse errors shift
 * every z of a row by the same amount and cancel in the softmax; what is left is the z roundings, exp
 * and the normaliser's (V/16 + 9)·u relative error.
 */
import type { ContrastParams, ContrastResult } from '../../backend.ts';
import type { Operand, WasmMemory } from './memory.ts';

export interface WasmContrastCall {
  readonly memory: WasmMemory;
  readonly probs: Operand; // (V)
  readonly logits: Operand; // (R, V): row 0 positive, rows 1.. reverse
  readonly V: number;
  readonly params: ContrastParams;
}

export function wasmContrastSoftmax(c: WasmContrastCall): ContrastResult {
  const { memory, V, params } = c;
  const R = c.logits.data.length / V;
  const probsOp: Operand = { ...c.probs, read: false, write: true };
  const home = memory.homeOf([c.logits, probsOp]);
  const block = memory.stage(home, 4 * 5 * R); // stats (3R), lse (R), alphas (R − 1)
  try {
    let result: ContrastResult | undefined;
    memory.withOperands(home, [probsOp, c.logits], ([probs, logits]) => {
      const k = home.kernels;
      const stats = home.f32(block, 5 * R);
      let nonFiniteRow = -1;
      for (let r = 0; r < R; r++) {
        k.contrastRowStats(logits + 4 * r * V, V, block + 12 * r);
        if (nonFiniteRow < 0 && stats[3 * r + 2] !== 0) nonFiniteRow = r;
        stats[3 * R + r] = stats[3 * r] + Math.log(stats[3 * r + 1]); // lse_r (f64, then f32)
        if (r > 0) stats[4 * R + r - 1] = params.alphas[r - 1] ?? 0;
      }
      const hasBeta = params.beta > 0 ? 1 : 0;
      const logBeta = hasBeta ? Math.log(params.beta) : 0;
      const lse = block + 12 * R;
      const argmax = k.contrastZ(probs, logits, V, R, lse, lse + 4 * R, stats[0], logBeta, hasBeta);
      const p = home.f32(probs, V);
      if (argmax >= 0) k.contrastSoftmaxInPlace(probs, V, p[argmax], params.temperature);
      // The twin's CDF rule on these probs: the first kept token whose CDF passes u, else the last kept one.
      let cdf = 0;
      let sampled = -1;
      for (let v = 0; v < V && sampled < 0; v++) {
        cdf += p[v];
        if (p[v] > 0 && cdf > params.uniform) sampled = v;
      }
      for (let v = V - 1; v >= 0 && sampled < 0; v--) if (p[v] > 0) sampled = v;
      result = { argmax, sampled, nonFiniteRow };
    });
    return result!;
  } finally {
    home.release(block);
  }
}

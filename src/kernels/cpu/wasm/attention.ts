/**
 * The host side of attention v2, the WebAssembly tier's attention over the KV cache
 * (assembly/attention.ts), registered as a CPU attention variant in ../variants.ts. It runs on the
 * calling thread, one batch row per call of the kernel, in the arena the KV cache lives in; an
 * operand that lives elsewhere (another arena, or JavaScript memory when the TypeScript tier runs
 * this variant forced) is staged: a cache row whole, q and out in pieces of query rows that fit.
 *
 * Error bound, from the kernel's order (f32, round to nearest, u = 2⁻²⁴), against the exact result.
 * With A_j = Σ_i |q_i·k_j,i|, n = s − pad + 1 keys and V = max_j |v_j,i|:
 *   - a score goes through its product's rounding, at most ⌈hd/4⌉ − 1 lane additions, 2 reduction
 *     additions and the tail's (≤ 3), one multiplication by scale, and scale's own rounding of
 *     1/√hd: depth ≤ hd + 2 for every hd ≥ 1 (the lanes only shorten it), so
 *     |Δscore_j| ≤ E = (hd + 2)·u·scale·max_j A_j (to first order);
 *   - p_j = exp(score_j − m): the shift is exact up to one rounding (relative u·|x|, x = score_j − m),
 *     exp is within 1 ulp (math.ts), and the scores' errors move each weight p_j / l by at most
 *     4E relatively (its own score, the max cancels, the normaliser);
 *   - l = Σ p_j and acc_i = Σ p_j·v_j,i are recursive sums of n terms (≤ (n − 1)·u·l and
 *     ≤ n·u·l·V), and out_i = acc_i / l rounds once.
 * So |Δout_i| ≤ (4E + (2n + 2 + 2·Σ_j (p_j/l)·|x_j|)·u)·V, and Σ_j (p_j/l)·|x_j| ≤ ln n + 1 (the
 * entropy of the weights, plus 1 for the max). That is inside the bound every attention variant is
 * tested against in test/kernels/attention.test.ts, (4E + (2n + 3·ln(n + 1) + 40)·u)·V, which was
 * written for WGSL's exp (3 + 2|x| ulp).
 */
import type { Operand, WasmMemory } from './memory.ts';

export interface WasmAttentionCall {
  readonly memory: WasmMemory;
  readonly out: Operand; // (B·T, H·hd)
  readonly q: Operand; // (B·T, H·hd)
  readonly kCache: Operand; // (B, S, Hkv, hd)
  readonly vCache: Operand; // (B, S, Hkv, hd)
  readonly padLen: Int32Array; // (B)
  readonly slot0: number;
  readonly dims: { B: number; T: number; S: number; H: number; Hkv: number; hd: number };
}

export function wasmAttention(c: WasmAttentionCall): void {
  const { memory, out, q, kCache, vCache } = c;
  const { B, T, S, H, Hkv, hd } = c.dims;
  const home = memory.homeOf([kCache, vCache]); // the caches are the big operands: run where they are
  const scale = Math.fround(1 / Math.sqrt(hd));
  const cacheFloats = S * Hkv * hd; // one batch row of each cache
  const rowFloats = H * hd; // one query row of q and out
  for (let b = 0; b < B; b++) {
    memory.staging(home, (stageBytes) => {
      const stage = (floats: number): number => stageBytes(4 * floats);
      // The row's slots of a cache: in place, or copied in.
      const cacheRow = (o: Operand): number => {
        if (o.at?.arena === home) return o.at.ptr + 4 * b * cacheFloats;
        const ptr = stage(cacheFloats);
        home.f32(ptr, cacheFloats).set(o.data.subarray(b * cacheFloats, (b + 1) * cacheFloats));
        return ptr;
      };
      const k = cacheRow(kCache);
      const v = cacheRow(vCache);
      const scores = stage(S); // (S) f32 scratch
      // q and out in place, or staged in pieces of query rows that fit the room left (as the matmul does).
      const qHere = q.at?.arena === home;
      const outHere = out.at?.arena === home;
      const perRow = 4 * rowFloats * ((qHere ? 0 : 1) + (outHere ? 0 : 1));
      const piece = memory.rowsThatFit(home, perRow, T, 'an attention query row');
      const qPtr = qHere ? 0 : stage(piece * rowFloats);
      const outPtr = outHere ? 0 : stage(piece * rowFloats);
      for (let t0 = 0; t0 < T; t0 += piece) {
        const n = Math.min(piece, T - t0);
        const first = (b * T + t0) * rowFloats; // the piece's first float in q and out
        if (!qHere) home.f32(qPtr, n * rowFloats).set(q.data.subarray(first, first + n * rowFloats));
        const qAt = qHere ? q.at!.ptr + 4 * first : qPtr;
        const outAt = outHere ? out.at!.ptr + 4 * first : outPtr;
        home.kernels.attentionF32(outAt, qAt, k, v, scores, n, S, H, Hkv, hd, c.slot0 + t0, c.padLen[b], scale);
        if (!outHere) out.data.set(home.f32(outPtr, n * rowFloats), first);
      }
    });
  }
}

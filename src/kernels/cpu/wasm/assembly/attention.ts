/**
 * Attention v2, the WebAssembly tier's attention over the KV cache (host: ../attention.ts, which
 * derives its error bound from the order below). One batch row b per call (the host offsets q, out
 * and the caches to that row and passes its pad length): query t sits at slot s = slot0 + t and
 * attends to slots pad ≤ j ≤ s; a pad query (s < pad) gets zeros. Query head h reads kv head
 * ⌊h / (H / Hkv)⌋. Every value is f32 and every operation rounds to nearest (no FMA):
 *
 *   score_j = dot(q, k_j) · scale   dot: four lanes over i ≡ lane (mod 4), i < hd4 = hd − hd mod 4,
 *                                   in increasing i, then (l0 + l1) + (l2 + l3), then the tail in order
 *   m = max_j score_j
 *   p_j = exp(score_j − m)          math.ts's exp (≤ 1 ulp), four keys at a time (the same bits as one)
 *   l = Σ_j p_j                     in increasing j
 *   acc_i = Σ_j p_j · v_j,i         in increasing j, four head dims at a time (acc kept in out)
 *   out_i = acc_i / l
 *
 * `scores` is the host's scratch of S f32 (the scores, then the weights p_j).
 */
import { exp1, exp4 } from './math';

/** dot(a, b) over n f32 in the order above. */
@inline function dot(a: usize, b: usize, n: i32): f32 {
  const n4 = n & ~3;
  let acc = f32x4.splat(0);
  for (let i = 0; i < n4; i += 4) acc = f32x4.add(acc, f32x4.mul(v128.load(a + (<usize>i << 2)), v128.load(b + (<usize>i << 2))));
  let s = f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1) + (f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3));
  for (let i = n4; i < n; i++) s += load<f32>(a + (<usize>i << 2)) * load<f32>(b + (<usize>i << 2));
  return s;
}

export function attentionF32(
  out: usize, // (T, H·hd)
  q: usize, // (T, H·hd)
  k: usize, // (S, Hkv, hd): this batch row's slots
  v: usize, // (S, Hkv, hd)
  scores: usize, // (S) scratch
  T: i32,
  S: i32,
  H: i32,
  Hkv: i32,
  hd: i32,
  slot0: i32,
  pad: i32,
  scale: f32,
): void {
  const group = H / Hkv;
  const hd4 = hd & ~3;
  const slotBytes = <usize>(Hkv * hd) << 2;
  for (let t = 0; t < T; t++) {
    const s = slot0 + t;
    for (let h = 0; h < H; h++) {
      const qp = q + ((<usize>(t * H + h) * <usize>hd) << 2);
      const op = out + ((<usize>(t * H + h) * <usize>hd) << 2);
      for (let i = 0; i < hd; i++) store<f32>(op + (<usize>i << 2), 0);
      if (pad > s) continue; // a pad query: nothing to attend to
      const head = <usize>((h / group) * hd) << 2;
      let m = <f32>-Infinity;
      for (let j = pad; j <= s; j++) {
        const sc = dot(qp, k + <usize>j * slotBytes + head, hd) * scale;
        store<f32>(scores + (<usize>j << 2), sc);
        if (sc > m) m = sc;
      }
      let l: f32 = 0;
      let j = pad;
      for (; j + 4 <= s + 1; j += 4) {
        const pj = exp4(f32x4.sub(v128.load(scores + (<usize>j << 2)), f32x4.splat(m)));
        v128.store(scores + (<usize>j << 2), pj);
        l += f32x4.extract_lane(pj, 0);
        l += f32x4.extract_lane(pj, 1);
        l += f32x4.extract_lane(pj, 2);
        l += f32x4.extract_lane(pj, 3);
      }
      for (; j <= s; j++) {
        const pj = exp1(load<f32>(scores + (<usize>j << 2)) - m);
        store<f32>(scores + (<usize>j << 2), pj);
        l += pj;
      }
      for (j = pad; j <= s; j++) {
        const pj = load<f32>(scores + (<usize>j << 2));
        const pv = f32x4.splat(pj);
        const vp = v + <usize>j * slotBytes + head;
        let i = 0;
        for (; i < hd4; i += 4) {
          const o = op + (<usize>i << 2);
          v128.store(o, f32x4.add(v128.load(o), f32x4.mul(pv, v128.load(vp + (<usize>i << 2)))));
        }
        for (; i < hd; i++) {
          const o = op + (<usize>i << 2);
          store<f32>(o, load<f32>(o) + pj * load<f32>(vp + (<usize>i << 2)));
        }
      }
      const lv = f32x4.splat(l);
      let i = 0;
      for (; i < hd4; i += 4) v128.store(op + (<usize>i << 2), f32x4.div(v128.load(op + (<usize>i << 2)), lv));
      for (; i < hd; i++) store<f32>(op + (<usize>i << 2), load<f32>(op + (<usize>i << 2)) / l);
    }
  }
}

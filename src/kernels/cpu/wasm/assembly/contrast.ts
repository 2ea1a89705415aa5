/**
 * contrastSoftmax v2, the WebAssembly tier's ROSE decision (host: ../contrastSoftmax.ts, which runs
 * the steps in order, takes each row's log with Math.log and applies the CDF rule). f32, every
 * operation rounded to nearest (no FMA); exp is math.ts's (≤ 1 ulp).
 *
 * Sums of exps use SIXTEEN partial sums (four vectors of four lanes): partial j takes
 * v ≡ j (mod 16) for v < V16 = V − V mod 16, in increasing v; then (a0 + a1) + (a2 + a3), the groups
 * of four in [V16, V4) added to that vector in order, the lanes (l0 + l1) + (l2 + l3), then the tail
 * v ≥ V4 in order. A term goes through at most ⌈V/16⌉ + 7 additions: the depth its error bound uses.
 */
import { exp1, exp4 } from './math';

@inline const BAD: i32 = 0x7f800000; // Inf or NaN: every exponent bit set

/**
 * Σ_v exp((src[v] − shift) / T), in the order above; when `write`, each exp is written to dst[v].
 * Dividing by T = 1 is exact, so the row sums (T = 1) are the plain shifted sums.
 */
@inline function expSum(src: usize, dst: usize, V: i32, shift: f32, T: f32, write: bool): f32 {
  const sh = f32x4.splat(shift);
  const tv = f32x4.splat(T);
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
  const V16 = V & ~15;
  const V4 = V & ~3;
  let v = 0;
  for (; v < V16; v += 16) {
    const p = <usize>v << 2;
    const e0 = exp4(f32x4.div(f32x4.sub(v128.load(src + p), sh), tv));
    const e1 = exp4(f32x4.div(f32x4.sub(v128.load(src + p, 16), sh), tv));
    const e2 = exp4(f32x4.div(f32x4.sub(v128.load(src + p, 32), sh), tv));
    const e3 = exp4(f32x4.div(f32x4.sub(v128.load(src + p, 48), sh), tv));
    if (write) {
      v128.store(dst + p, e0);
      v128.store(dst + p, e1, 16);
      v128.store(dst + p, e2, 32);
      v128.store(dst + p, e3, 48);
    }
    a0 = f32x4.add(a0, e0);
    a1 = f32x4.add(a1, e1);
    a2 = f32x4.add(a2, e2);
    a3 = f32x4.add(a3, e3);
  }
  let a = f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3));
  for (; v < V4; v += 4) {
    const p = <usize>v << 2;
    const e = exp4(f32x4.div(f32x4.sub(v128.load(src + p), sh), tv));
    if (write) v128.store(dst + p, e);
    a = f32x4.add(a, e);
  }
  let s = f32x4.extract_lane(a, 0) + f32x4.extract_lane(a, 1) + (f32x4.extract_lane(a, 2) + f32x4.extract_lane(a, 3));
  for (; v < V; v++) {
    const p = <usize>v << 2;
    const e = exp1((load<f32>(src + p) - shift) / T);
    if (write) store<f32>(dst + p, e);
    s += e;
  }
  return s;
}

/** max over v of x[v] (NaN ignored, as `x > max` ignores it), −∞ for V = 0. */
@inline function maxOf(x: usize, V: i32): f32 {
  let mv = f32x4.splat(-Infinity);
  const V4 = V & ~3;
  let v = 0;
  for (; v < V4; v += 4) {
    const l = v128.load(x + (<usize>v << 2));
    mv = v128.bitselect(l, mv, f32x4.gt(l, mv)); // NaN compares false: kept out
  }
  // no lane holds a NaN, so max() is the plain maximum
  let m = max(max(f32x4.extract_lane(mv, 0), f32x4.extract_lane(mv, 1)), max(f32x4.extract_lane(mv, 2), f32x4.extract_lane(mv, 3)));
  for (; v < V; v++) {
    const l = load<f32>(x + (<usize>v << 2));
    if (l > m) m = l;
  }
  return m;
}

/**
 * Step 1, one row: out[0] = max_v l[v], out[1] = Σ_v exp(l[v] − max), out[2] = 1 when the row holds
 * an Inf or a NaN (else 0).
 */
export function contrastRowStats(row: usize, V: i32, out: usize): void {
  const mask = i32x4.splat(BAD);
  let bad = i32x4.splat(0);
  const V4 = V & ~3;
  let v = 0;
  for (; v < V4; v += 4) bad = v128.or(bad, i32x4.eq(v128.and(v128.load(row + (<usize>v << 2)), mask), mask));
  let anyBad = v128.any_true(bad);
  for (; v < V; v++) if ((load<i32>(row + (<usize>v << 2)) & BAD) == BAD) anyBad = true;
  const m = maxOf(row, V);
  store<f32>(out, m);
  store<f32>(out, expSum(row, 0, V, m, 1, false), 4);
  store<f32>(out, anyBad ? 1 : 0, 8);
}

/**
 * Step 2: z[v] = (l0[v] − lse[0]) − Σ_{r ≥ 1} α_r·(l_r[v] − lse[r]), rows in order, written to z;
 * −∞ where the β mask drops v (hasBeta and l0[v] − posMax < logBeta). Returns the argmax of z: the
 * lowest v holding the maximum.
 */
export function contrastZ(
  z: usize, // (V)
  logits: usize, // (R, V)
  V: i32,
  R: i32,
  lse: usize, // (R) f32
  alphas: usize, // (R − 1) f32
  posMax: f32,
  logBeta: f32,
  hasBeta: i32,
): i32 {
  const rowBytes = <usize>V << 2;
  const lse0 = f32x4.splat(load<f32>(lse));
  const pm = f32x4.splat(posMax);
  const lb = f32x4.splat(logBeta);
  const ninf = f32x4.splat(-Infinity);
  const V4 = V & ~3;
  let v = 0;
  for (; v < V4; v += 4) {
    const p = <usize>v << 2;
    const l0 = v128.load(logits + p);
    let zv = f32x4.sub(l0, lse0);
    for (let r = 1; r < R; r++) {
      const a = f32x4.splat(load<f32>(alphas + (<usize>(r - 1) << 2)));
      const d = f32x4.sub(v128.load(logits + <usize>r * rowBytes + p), f32x4.splat(load<f32>(lse + (<usize>r << 2))));
      zv = f32x4.sub(zv, f32x4.mul(a, d));
    }
    if (hasBeta) zv = v128.bitselect(ninf, zv, f32x4.lt(f32x4.sub(l0, pm), lb));
    v128.store(z + p, zv);
  }
  for (; v < V; v++) {
    const p = <usize>v << 2;
    const l0 = load<f32>(logits + p);
    let zv = l0 - load<f32>(lse);
    for (let r = 1; r < R; r++)
      zv -= load<f32>(alphas + (<usize>(r - 1) << 2)) * (load<f32>(logits + <usize>r * rowBytes + p) - load<f32>(lse + (<usize>r << 2)));
    if (hasBeta && l0 - posMax < logBeta) zv = -Infinity;
    store<f32>(z + p, zv);
  }
  const zmax = maxOf(z, V);
  for (v = 0; v < V; v++) if (load<f32>(z + (<usize>v << 2)) == zmax) return v;
  return -1; // every z is NaN or masked: the host reports it
}

/** Steps 3–4: probs[v] = exp((z[v] − zmax) / T) / Σ, in place (masked z = −∞ gives exactly 0). */
export function contrastSoftmaxInPlace(probs: usize, V: i32, zmax: f32, T: f32): void {
  const s = expSum(probs, probs, V, zmax, T, true);
  const sv = f32x4.splat(s);
  const V4 = V & ~3;
  let v = 0;
  for (; v < V4; v += 4) v128.store(probs + (<usize>v << 2), f32x4.div(v128.load(probs + (<usize>v << 2)), sv));
  for (; v < V; v++) store<f32>(probs + (<usize>v << 2), load<f32>(probs + (<usize>v << 2)) / s);
}

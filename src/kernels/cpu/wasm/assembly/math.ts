/**
 * exp for four f32 lanes, the one exponential of the WebAssembly kernels (attention, SwiGLU, the
 * contrast). WebAssembly has no exp instruction, and AssemblyScript's Mathf.exp reads a lookup table
 * from a data segment, which this module must not have (instantiating it on a memory that holds
 * weights must write nothing), so it is computed here, in registers, Cephes' way:
 *
 *   k = round(x·log2 e),  r = x − k·C1 − k·C2   (C1 + C2 = ln 2; C1 has 9 significant bits, so k·C1 is exact)
 *   exp(r) ≈ 1 + r + r²·P(r),  P of degree 5 (Cephes expf's minimax coefficients), |r| ≤ ln2 / 2
 *   exp(x) = exp(r)·2^k,  2^k built from its exponent bits
 *
 * Every operation rounds to nearest (no FMA: relaxed SIMD is not used, its rounding is not fixed),
 * so the result is the same bits on every engine. Accuracy, measured against Math.exp on every 7th f32
 * of [−87.33, 88.37] (320 million inputs; test/kernels/wasm.test.ts checks 2²⁰ of them on every run):
 * at most 1 ulp (99.98% within 0.75 ulp), inside the (3 + 2|x|) ulp that the kernels' error bounds
 * allow for exp (WGSL's accuracy for exp, which the op tests assume of every f32 kernel).
 *
 * Range: x < −87.336 (exp(x) below f32's smallest normal, 2⁻¹²⁶) gives 0, −∞ included; x > 88.37
 * (k would reach 128) gives +∞ (the true value is then within a factor 1.42 of f32's largest); NaN gives NaN.
 */

@inline const LOG2E: f32 = 1.44269504088896341;
@inline const C1: f32 = 0.693359375;
@inline const C2: f32 = -2.12194440e-4;
@inline const P0: f32 = 1.9875691500e-4;
@inline const P1: f32 = 1.3981999507e-3;
@inline const P2: f32 = 8.3334519073e-3;
@inline const P3: f32 = 4.1665795894e-2;
@inline const P4: f32 = 1.6666665459e-1;
@inline const P5: f32 = 5.0000001201e-1;
/** Below: 0 (exp(x) < 2⁻¹²⁶). Above: +∞. */
@inline const LO: f32 = -87.33654475;
@inline const HI: f32 = 88.37;

@inline export function exp4(x: v128): v128 {
  const k = f32x4.nearest(f32x4.mul(x, f32x4.splat(LOG2E)));
  let r = f32x4.sub(x, f32x4.mul(k, f32x4.splat(C1)));
  r = f32x4.sub(r, f32x4.mul(k, f32x4.splat(C2)));
  let p = f32x4.add(f32x4.mul(f32x4.splat(P0), r), f32x4.splat(P1));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(P2));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(P3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(P4));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(P5));
  const y = f32x4.add(f32x4.add(f32x4.mul(p, f32x4.mul(r, r)), r), f32x4.splat(1));
  // 2^k for k in [−126, 127]: the exponent field k + 127 (lanes outside the range are replaced below)
  const scale = i32x4.shl(i32x4.add(i32x4.trunc_sat_f32x4_s(k), i32x4.splat(127)), 23);
  let e = f32x4.mul(y, scale);
  e = v128.bitselect(f32x4.splat(0), e, f32x4.lt(x, f32x4.splat(LO)));
  e = v128.bitselect(f32x4.splat(Infinity), e, f32x4.gt(x, f32x4.splat(HI)));
  return v128.bitselect(x, e, f32x4.ne(x, x)); // NaN stays NaN
}

/** The same exp for one value (lane 0 of the vector code: the same bits as in a vector). */
@inline export function exp1(x: f32): f32 {
  return f32x4.extract_lane(exp4(f32x4.splat(x)), 0);
}

/** exp of n f32 at p, in place: for testing the exp above against Math.exp (test/kernels/wasm.test.ts). */
export function expInPlace(p: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(p + (<usize>i << 2), exp4(v128.load(p + (<usize>i << 2))));
  for (; i < n; i++) store<f32>(p + (<usize>i << 2), exp1(load<f32>(p + (<usize>i << 2))));
}

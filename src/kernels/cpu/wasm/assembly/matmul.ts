/**
 * The WebAssembly SIMD matmuls (AssemblyScript; compiled by `npm run build:wasm`, see ../build.ts).
 *
 *   out[m·ldo + n] = Σ_k x[m·K + k] · w[n·K + k]  (+ bias[n])     for m < M, n0 ≤ n < n1
 *
 * x and out are f32; w is a weight stored as nn.Linear's (N, K) in its checkpoint dtype (f32, bf16 or
 * f16: 4 or 2 bytes per element, widened to f32 in registers); bias is f32 (0 = none). Every
 * argument is a byte address in the one (shared) linear memory. `ldo` is out's row stride in floats:
 * a weight split into row chunks writes its columns of a wider output.
 *
 * ONE summation order per weight dtype for every output, whatever the kernel, the blocking, M or the
 * thread: four f32 lanes, each summing two products per step of 8 columns k < K8 = K − K mod 8, in
 * increasing k (each product rounded to f32, then added: WebAssembly has no fused multiply-add
 * outside relaxed SIMD, which we do not use because its rounding is not fixed); then
 * (l0 + l1) + (l2 + l3); then plus the tail k ≥ K8 summed in order; then plus the bias. Lane j of
 * step s takes k = 8s + j, then 8s + 4 + j for f32 and f16 weights, and k = 8s + 2j, then 8s + 2j + 1
 * for bf16 (see wLo: that order makes widening bf16 two instructions per 8 weights, not four). So
 * matvec and the tiled matmul give the same bits, decode equals prefill, and a row's result does not
 * depend on the other rows of its batch. The error bound this order implies (the same for both lane
 * orders) is derived in ../matmul.ts (host) and tested against v1.
 */

// Weight dtype codes (the host passes them through the exported names, not at run time).
@inline const F32: i32 = 0;
@inline const BF16: i32 = 1;
@inline const F16: i32 = 2;

// --- widening a stored weight to f32 -------------------------------------------------------------

/**
 * bf16 is the top half of an f32. Read as four i32 lanes, 16 bytes of bf16 hold weights k = 2j in the
 * low half of lane j and k = 2j + 1 in the high half: a shift left by 16 makes the even weights f32,
 * masking off the low half makes the odd ones, and the activations are shuffled to match (xLo, xHi).
 */
@inline function bf16Even(v: v128): v128 {
  return i32x4.shl(v, 16);
}
@inline function bf16Odd(v: v128): v128 {
  return v128.and(v, i32x4.splat(0xffff0000));
}

/**
 * IEEE half → single for four halves held in the low 16 bits of each 32-bit lane. Exact for every
 * input: normals rebias the exponent (+112); Inf/NaN (exponent 31) get a second +112 so that their
 * exponent lands on 255 with the payload kept; subnormals and zeros (exponent 0) are frac · 2⁻²⁴,
 * computed as an exact int → float conversion and a power-of-two multiply (no denormal inputs).
 */
@inline function f16x4(h: v128): v128 {
  const abs = v128.and(h, i32x4.splat(0x7fff));
  let bits = i32x4.add(i32x4.shl(abs, 13), i32x4.splat(112 << 23));
  bits = i32x4.add(bits, v128.and(i32x4.gt_s(abs, i32x4.splat(0x7bff)), i32x4.splat(112 << 23)));
  const subnormal = f32x4.mul(f32x4.convert_i32x4_s(abs), f32x4.splat(5.9604644775390625e-8)); // 2⁻²⁴
  bits = v128.bitselect(subnormal, bits, i32x4.lt_s(abs, i32x4.splat(0x0400)));
  return v128.or(bits, i32x4.shl(v128.and(h, i32x4.splat(0x8000)), 16));
}

/** Bytes per stored weight element. */
@inline function elementBytes(dt: i32): usize {
  return dt == F32 ? 4 : 2;
}

/**
 * Eight consecutive weights at p, as two f32x4 (wLo, then wHi), and the activations of the same eight
 * columns in the same lane order (xLo, xHi, from x0 = x[k .. k+3] and x1 = x[k+4 .. k+7]). `raw` is
 * v128.load(p): for 2-byte dtypes it holds all eight weights; for f32 it is the low four, and wHi
 * loads the high four. f32, f16: k .. k+3, then k+4 .. k+7. bf16: the even k, then the odd k.
 */
@inline function wLo(raw: v128, dt: i32): v128 {
  if (dt == F32) return raw;
  if (dt == BF16) return bf16Even(raw);
  return f16x4(i32x4.extend_low_i16x8_u(raw));
}
@inline function wHi(raw: v128, p: usize, dt: i32): v128 {
  if (dt == F32) return v128.load(p, 16);
  if (dt == BF16) return bf16Odd(raw);
  return f16x4(i32x4.extend_high_i16x8_u(raw));
}
@inline function xLo(x0: v128, x1: v128, dt: i32): v128 {
  return dt == BF16 ? f32x4.shuffle(x0, x1, 0, 2, 4, 6) : x0;
}
@inline function xHi(x0: v128, x1: v128, dt: i32): v128 {
  return dt == BF16 ? f32x4.shuffle(x0, x1, 1, 3, 5, 7) : x1;
}
@inline function wOne(p: usize, dt: i32): f32 {
  if (dt == F32) return load<f32>(p);
  const h = <u32>load<u16>(p);
  if (dt == BF16) return reinterpret<f32>(h << 16);
  return f32x4.extract_lane(f16x4(i32x4.splat(h)), 0); // the same conversion as the vector path
}

// --- the shared end of every output: reduction, tail, bias ---------------------------------------

/**
 * One output from its four lane sums: (l0 + l1) + (l2 + l3), then the tail k in [K8, K) summed in
 * order, then the bias. Every kernel ends here, which is what makes their results identical.
 */
@inline function finish(acc: v128, xRow: usize, wRow: usize, K8: i32, K: i32, dt: i32, bias: usize, n: i32): f32 {
  let s = f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1) + (f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3));
  if (K8 < K) {
    const es = elementBytes(dt);
    let t: f32 = 0;
    for (let k = K8; k < K; k++) t += load<f32>(xRow + (<usize>k << 2)) * wOne(wRow + <usize>k * es, dt);
    s += t;
  }
  if (bias != 0) s += load<f32>(bias + (<usize>n << 2));
  return s;
}

/** acc + a·b, rounded twice (no FMA): the one step every lane takes. */
@inline function madd(acc: v128, a: v128, b: v128): v128 {
  return f32x4.add(acc, f32x4.mul(a, b));
}

// --- v4: the decode matvec (small M) --------------------------------------------------------------

/**
 * Weight rows n .. n+3 against activation rows m and m+1. Each weight vector is loaded (and widened)
 * once per activation-row PAIR and used by both rows: at M = 2 (ROSE) the extra row costs
 * multiply-adds in registers, not memory traffic. The 8 columns of a step go in two halves (low
 * four, then high four) so that only 8 accumulators + 2 x vectors + 1 weight vector are live: V8
 * keeps 14 of x86-64's 16 xmm registers for values, and spilling accumulators costs more than
 * loading a 2-byte weight vector twice from L1.
 */
@inline function rows4x2(out: usize, ldo: i32, x: usize, w: usize, bias: usize, K: i32, n: i32, m: i32, dt: i32): void {
  const es = elementBytes(dt);
  const rowBytes = <usize>K * es;
  const w0 = w + <usize>n * rowBytes;
  const w1 = w0 + rowBytes;
  const w2 = w1 + rowBytes;
  const w3 = w2 + rowBytes;
  const xa = x + ((<usize>m * <usize>K) << 2);
  const xb = xa + (<usize>K << 2);
  const K8 = K & ~7;
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
  let b0 = a0, b1 = a0, b2 = a0, b3 = a0;
  for (let k = 0; k < K8; k += 8) {
    const xo = <usize>k << 2;
    const wo = <usize>k * es;
    const a0x = v128.load(xa + xo);
    const a1x = v128.load(xa + xo, 16);
    const b0x = v128.load(xb + xo);
    const b1x = v128.load(xb + xo, 16);
    // low four columns
    let xva = xLo(a0x, a1x, dt);
    let xvb = xLo(b0x, b1x, dt);
    let v = wLo(v128.load(w0 + wo), dt);
    a0 = madd(a0, xva, v);
    b0 = madd(b0, xvb, v);
    v = wLo(v128.load(w1 + wo), dt);
    a1 = madd(a1, xva, v);
    b1 = madd(b1, xvb, v);
    v = wLo(v128.load(w2 + wo), dt);
    a2 = madd(a2, xva, v);
    b2 = madd(b2, xvb, v);
    v = wLo(v128.load(w3 + wo), dt);
    a3 = madd(a3, xva, v);
    b3 = madd(b3, xvb, v);
    // high four columns
    xva = xHi(a0x, a1x, dt);
    xvb = xHi(b0x, b1x, dt);
    v = wHi(v128.load(w0 + wo), w0 + wo, dt);
    a0 = madd(a0, xva, v);
    b0 = madd(b0, xvb, v);
    v = wHi(v128.load(w1 + wo), w1 + wo, dt);
    a1 = madd(a1, xva, v);
    b1 = madd(b1, xvb, v);
    v = wHi(v128.load(w2 + wo), w2 + wo, dt);
    a2 = madd(a2, xva, v);
    b2 = madd(b2, xvb, v);
    v = wHi(v128.load(w3 + wo), w3 + wo, dt);
    a3 = madd(a3, xva, v);
    b3 = madd(b3, xvb, v);
  }
  const oa = out + ((<usize>m * <usize>ldo + <usize>n) << 2);
  const ob = oa + (<usize>ldo << 2);
  store<f32>(oa, finish(a0, xa, w0, K8, K, dt, bias, n));
  store<f32>(oa, finish(a1, xa, w1, K8, K, dt, bias, n + 1), 4);
  store<f32>(oa, finish(a2, xa, w2, K8, K, dt, bias, n + 2), 8);
  store<f32>(oa, finish(a3, xa, w3, K8, K, dt, bias, n + 3), 12);
  store<f32>(ob, finish(b0, xb, w0, K8, K, dt, bias, n));
  store<f32>(ob, finish(b1, xb, w1, K8, K, dt, bias, n + 1), 4);
  store<f32>(ob, finish(b2, xb, w2, K8, K, dt, bias, n + 2), 8);
  store<f32>(ob, finish(b3, xb, w3, K8, K, dt, bias, n + 3), 12);
}

/** Weight rows n .. n+3 against activation row m (M = 1, or the odd row of a larger M). */
@inline function rows4x1(out: usize, ldo: i32, x: usize, w: usize, bias: usize, K: i32, n: i32, m: i32, dt: i32): void {
  const es = elementBytes(dt);
  const rowBytes = <usize>K * es;
  const w0 = w + <usize>n * rowBytes;
  const w1 = w0 + rowBytes;
  const w2 = w1 + rowBytes;
  const w3 = w2 + rowBytes;
  const xa = x + ((<usize>m * <usize>K) << 2);
  const K8 = K & ~7;
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
  for (let k = 0; k < K8; k += 8) {
    const xo = <usize>k << 2;
    const x0 = xLo(v128.load(xa + xo), v128.load(xa + xo, 16), dt);
    const x1 = xHi(v128.load(xa + xo), v128.load(xa + xo, 16), dt);
    const wo = <usize>k * es;
    let raw = v128.load(w0 + wo);
    a0 = madd(madd(a0, x0, wLo(raw, dt)), x1, wHi(raw, w0 + wo, dt));
    raw = v128.load(w1 + wo);
    a1 = madd(madd(a1, x0, wLo(raw, dt)), x1, wHi(raw, w1 + wo, dt));
    raw = v128.load(w2 + wo);
    a2 = madd(madd(a2, x0, wLo(raw, dt)), x1, wHi(raw, w2 + wo, dt));
    raw = v128.load(w3 + wo);
    a3 = madd(madd(a3, x0, wLo(raw, dt)), x1, wHi(raw, w3 + wo, dt));
  }
  const oa = out + ((<usize>m * <usize>ldo + <usize>n) << 2);
  store<f32>(oa, finish(a0, xa, w0, K8, K, dt, bias, n));
  store<f32>(oa, finish(a1, xa, w1, K8, K, dt, bias, n + 1), 4);
  store<f32>(oa, finish(a2, xa, w2, K8, K, dt, bias, n + 2), 8);
  store<f32>(oa, finish(a3, xa, w3, K8, K, dt, bias, n + 3), 12);
}

/**
 * Weight rows n .. n+7 against activation row 0 (M = 1: plain decoding). Eight independent add
 * chains keep eight weight streams in flight, which is what lets one core reach its read bandwidth.
 */
@inline function rows8x1(out: usize, x: usize, w: usize, bias: usize, K: i32, n: i32, dt: i32): void {
  const es = elementBytes(dt);
  const rowBytes = <usize>K * es;
  const w0 = w + <usize>n * rowBytes;
  const K8 = K & ~7;
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
  for (let k = 0; k < K8; k += 8) {
    const xo = <usize>k << 2;
    const p = w0 + <usize>k * es;
    const x0 = v128.load(x + xo);
    const x1 = v128.load(x + xo, 16);
    let xv = xLo(x0, x1, dt);
    a0 = madd(a0, xv, wLo(v128.load(p), dt));
    a1 = madd(a1, xv, wLo(v128.load(p + rowBytes), dt));
    a2 = madd(a2, xv, wLo(v128.load(p + 2 * rowBytes), dt));
    a3 = madd(a3, xv, wLo(v128.load(p + 3 * rowBytes), dt));
    a4 = madd(a4, xv, wLo(v128.load(p + 4 * rowBytes), dt));
    a5 = madd(a5, xv, wLo(v128.load(p + 5 * rowBytes), dt));
    a6 = madd(a6, xv, wLo(v128.load(p + 6 * rowBytes), dt));
    a7 = madd(a7, xv, wLo(v128.load(p + 7 * rowBytes), dt));
    xv = xHi(x0, x1, dt);
    a0 = madd(a0, xv, wHi(v128.load(p), p, dt));
    a1 = madd(a1, xv, wHi(v128.load(p + rowBytes), p + rowBytes, dt));
    a2 = madd(a2, xv, wHi(v128.load(p + 2 * rowBytes), p + 2 * rowBytes, dt));
    a3 = madd(a3, xv, wHi(v128.load(p + 3 * rowBytes), p + 3 * rowBytes, dt));
    a4 = madd(a4, xv, wHi(v128.load(p + 4 * rowBytes), p + 4 * rowBytes, dt));
    a5 = madd(a5, xv, wHi(v128.load(p + 5 * rowBytes), p + 5 * rowBytes, dt));
    a6 = madd(a6, xv, wHi(v128.load(p + 6 * rowBytes), p + 6 * rowBytes, dt));
    a7 = madd(a7, xv, wHi(v128.load(p + 7 * rowBytes), p + 7 * rowBytes, dt));
  }
  const o = out + (<usize>n << 2);
  store<f32>(o, finish(a0, x, w0, K8, K, dt, bias, n));
  store<f32>(o, finish(a1, x, w0 + rowBytes, K8, K, dt, bias, n + 1), 4);
  store<f32>(o, finish(a2, x, w0 + 2 * rowBytes, K8, K, dt, bias, n + 2), 8);
  store<f32>(o, finish(a3, x, w0 + 3 * rowBytes, K8, K, dt, bias, n + 3), 12);
  store<f32>(o, finish(a4, x, w0 + 4 * rowBytes, K8, K, dt, bias, n + 4), 16);
  store<f32>(o, finish(a5, x, w0 + 5 * rowBytes, K8, K, dt, bias, n + 5), 20);
  store<f32>(o, finish(a6, x, w0 + 6 * rowBytes, K8, K, dt, bias, n + 6), 24);
  store<f32>(o, finish(a7, x, w0 + 7 * rowBytes, K8, K, dt, bias, n + 7), 28);
}

/** One weight row n against activation row m: the remainder of N. */
@inline function rows1x1(out: usize, ldo: i32, x: usize, w: usize, bias: usize, K: i32, n: i32, m: i32, dt: i32): void {
  const es = elementBytes(dt);
  const w0 = w + <usize>n * <usize>K * es;
  const xa = x + ((<usize>m * <usize>K) << 2);
  const K8 = K & ~7;
  let a0 = f32x4.splat(0);
  for (let k = 0; k < K8; k += 8) {
    const xo = <usize>k << 2;
    const wo = <usize>k * es;
    const raw = v128.load(w0 + wo);
    const x0 = v128.load(xa + xo);
    const x1 = v128.load(xa + xo, 16);
    a0 = madd(madd(a0, xLo(x0, x1, dt), wLo(raw, dt)), xHi(x0, x1, dt), wHi(raw, w0 + wo, dt));
  }
  store<f32>(out + ((<usize>m * <usize>ldo + <usize>n) << 2), finish(a0, xa, w0, K8, K, dt, bias, n));
}

/**
 * v4 body. Blocks of 4 weight rows; within a block, activation rows in pairs (then the odd one), so
 * the block's weights come from memory once and from L1 for the later pairs (4 rows × K ≤ 8 KB of
 * bf16 or 16 KB of f32 at K = 1024).
 */
@inline function matvec(out: usize, ldo: i32, x: usize, w: usize, bias: usize, M: i32, K: i32, n0: i32, n1: i32, dt: i32): void {
  let n = n0;
  if (M == 1) for (; n + 8 <= n1; n += 8) rows8x1(out, x, w, bias, K, n, dt);
  for (; n + 4 <= n1; n += 4) {
    let m = 0;
    for (; m + 2 <= M; m += 2) rows4x2(out, ldo, x, w, bias, K, n, m, dt);
    if (m < M) rows4x1(out, ldo, x, w, bias, K, n, m, dt);
  }
  for (; n < n1; n++) for (let m = 0; m < M; m++) rows1x1(out, ldo, x, w, bias, K, n, m, dt);
}

export function matvecF32(out: usize, ldo: i32, x: usize, w: usize, bias: usize, M: i32, K: i32, n0: i32, n1: i32): void {
  matvec(out, ldo, x, w, bias, M, K, n0, n1, F32);
}
export function matvecBf16(out: usize, ldo: i32, x: usize, w: usize, bias: usize, M: i32, K: i32, n0: i32, n1: i32): void {
  matvec(out, ldo, x, w, bias, M, K, n0, n1, BF16);
}
export function matvecF16(out: usize, ldo: i32, x: usize, w: usize, bias: usize, M: i32, K: i32, n0: i32, n1: i32): void {
  matvec(out, ldo, x, w, bias, M, K, n0, n1, F16);
}

// --- v5: the tiled prefill matmul (large M) -------------------------------------------------------

/**
 * Weight rows n .. n+2 against activation rows m .. m+2: 9 accumulators; per 8 columns of k, 3 weight
 * loads (widened once) and 6 x loads serve 18 vector multiply-adds.
 */
@inline function tile3x3(out: usize, ldo: i32, x: usize, w: usize, bias: usize, K: i32, n: i32, m: i32, dt: i32): void {
  const es = elementBytes(dt);
  const rowBytes = <usize>K * es;
  const w0 = w + <usize>n * rowBytes;
  const w1 = w0 + rowBytes;
  const w2 = w1 + rowBytes;
  const xa = x + ((<usize>m * <usize>K) << 2);
  const xb = xa + (<usize>K << 2);
  const xc = xb + (<usize>K << 2);
  const K8 = K & ~7;
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0;
  let b0 = a0, b1 = a0, b2 = a0;
  let c0 = a0, c1 = a0, c2 = a0;
  for (let k = 0; k < K8; k += 8) {
    const xo = <usize>k << 2;
    const wo = <usize>k * es;
    const r0 = v128.load(w0 + wo);
    const r1 = v128.load(w1 + wo);
    const r2 = v128.load(w2 + wo);
    // low four columns
    let v0 = wLo(r0, dt);
    let v1 = wLo(r1, dt);
    let v2 = wLo(r2, dt);
    const xa0 = v128.load(xa + xo);
    const xa1 = v128.load(xa + xo, 16);
    const xb0 = v128.load(xb + xo);
    const xb1 = v128.load(xb + xo, 16);
    const xc0 = v128.load(xc + xo);
    const xc1 = v128.load(xc + xo, 16);
    let xv = xLo(xa0, xa1, dt);
    a0 = madd(a0, xv, v0);
    a1 = madd(a1, xv, v1);
    a2 = madd(a2, xv, v2);
    xv = xLo(xb0, xb1, dt);
    b0 = madd(b0, xv, v0);
    b1 = madd(b1, xv, v1);
    b2 = madd(b2, xv, v2);
    xv = xLo(xc0, xc1, dt);
    c0 = madd(c0, xv, v0);
    c1 = madd(c1, xv, v1);
    c2 = madd(c2, xv, v2);
    // high four columns
    v0 = wHi(r0, w0 + wo, dt);
    v1 = wHi(r1, w1 + wo, dt);
    v2 = wHi(r2, w2 + wo, dt);
    xv = xHi(xa0, xa1, dt);
    a0 = madd(a0, xv, v0);
    a1 = madd(a1, xv, v1);
    a2 = madd(a2, xv, v2);
    xv = xHi(xb0, xb1, dt);
    b0 = madd(b0, xv, v0);
    b1 = madd(b1, xv, v1);
    b2 = madd(b2, xv, v2);
    xv = xHi(xc0, xc1, dt);
    c0 = madd(c0, xv, v0);
    c1 = madd(c1, xv, v1);
    c2 = madd(c2, xv, v2);
  }
  const oa = out + ((<usize>m * <usize>ldo + <usize>n) << 2);
  const ob = oa + (<usize>ldo << 2);
  const oc = ob + (<usize>ldo << 2);
  store<f32>(oa, finish(a0, xa, w0, K8, K, dt, bias, n));
  store<f32>(oa, finish(a1, xa, w1, K8, K, dt, bias, n + 1), 4);
  store<f32>(oa, finish(a2, xa, w2, K8, K, dt, bias, n + 2), 8);
  store<f32>(ob, finish(b0, xb, w0, K8, K, dt, bias, n));
  store<f32>(ob, finish(b1, xb, w1, K8, K, dt, bias, n + 1), 4);
  store<f32>(ob, finish(b2, xb, w2, K8, K, dt, bias, n + 2), 8);
  store<f32>(oc, finish(c0, xc, w0, K8, K, dt, bias, n));
  store<f32>(oc, finish(c1, xc, w1, K8, K, dt, bias, n + 1), 4);
  store<f32>(oc, finish(c2, xc, w2, K8, K, dt, bias, n + 2), 8);
}

/** Weight rows n .. n+2 against one activation row m: the panel's last M mod 3 rows. */
@inline function tile3x1(out: usize, ldo: i32, x: usize, w: usize, bias: usize, K: i32, n: i32, m: i32, dt: i32): void {
  const es = elementBytes(dt);
  const rowBytes = <usize>K * es;
  const w0 = w + <usize>n * rowBytes;
  const w1 = w0 + rowBytes;
  const w2 = w1 + rowBytes;
  const xa = x + ((<usize>m * <usize>K) << 2);
  const K8 = K & ~7;
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0;
  for (let k = 0; k < K8; k += 8) {
    const xo = <usize>k << 2;
    const wo = <usize>k * es;
    const x0 = xLo(v128.load(xa + xo), v128.load(xa + xo, 16), dt);
    const x1 = xHi(v128.load(xa + xo), v128.load(xa + xo, 16), dt);
    let raw = v128.load(w0 + wo);
    a0 = madd(madd(a0, x0, wLo(raw, dt)), x1, wHi(raw, w0 + wo, dt));
    raw = v128.load(w1 + wo);
    a1 = madd(madd(a1, x0, wLo(raw, dt)), x1, wHi(raw, w1 + wo, dt));
    raw = v128.load(w2 + wo);
    a2 = madd(madd(a2, x0, wLo(raw, dt)), x1, wHi(raw, w2 + wo, dt));
  }
  const oa = out + ((<usize>m * <usize>ldo + <usize>n) << 2);
  store<f32>(oa, finish(a0, xa, w0, K8, K, dt, bias, n));
  store<f32>(oa, finish(a1, xa, w1, K8, K, dt, bias, n + 1), 4);
  store<f32>(oa, finish(a2, xa, w2, K8, K, dt, bias, n + 2), 8);
}

/**
 * Activation rows per panel: a panel (≤ 48 × K floats: 288 KB at K = 1536) stays in L2 while every
 * 3-row weight block of the thread's range passes over it, so the weights stream from memory
 * ⌈M / 48⌉ times; each 3-row weight block (≤ 24 KB of f32 at K = 2048) stays in L1 while the panel's
 * row triples pass over it.
 */
@inline const PANEL: i32 = 48;

@inline function matmulTiled(out: usize, ldo: i32, x: usize, w: usize, bias: usize, M: i32, K: i32, n0: i32, n1: i32, dt: i32): void {
  for (let m0 = 0; m0 < M; m0 += PANEL) {
    const m1 = min(M, m0 + PANEL);
    let n = n0;
    for (; n + 3 <= n1; n += 3) {
      let m = m0;
      for (; m + 3 <= m1; m += 3) tile3x3(out, ldo, x, w, bias, K, n, m, dt);
      for (; m < m1; m++) tile3x1(out, ldo, x, w, bias, K, n, m, dt);
    }
    for (; n < n1; n++) for (let m = m0; m < m1; m++) rows1x1(out, ldo, x, w, bias, K, n, m, dt);
  }
}

export function matmulTiledF32(out: usize, ldo: i32, x: usize, w: usize, bias: usize, M: i32, K: i32, n0: i32, n1: i32): void {
  matmulTiled(out, ldo, x, w, bias, M, K, n0, n1, F32);
}
export function matmulTiledBf16(out: usize, ldo: i32, x: usize, w: usize, bias: usize, M: i32, K: i32, n0: i32, n1: i32): void {
  matmulTiled(out, ldo, x, w, bias, M, K, n0, n1, BF16);
}
export function matmulTiledF16(out: usize, ldo: i32, x: usize, w: usize, bias: usize, M: i32, K: i32, n0: i32, n1: i32): void {
  matmulTiled(out, ldo, x, w, bias, M, K, n0, n1, F16);
}

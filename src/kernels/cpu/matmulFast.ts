/**
 * Fast CPU matmuls, as numbered variants beside the plain one (llm.c dev/cuda style; the numbers,
 * summaries and the automatic choice are registered in cpu/variants.ts):
 *
 *   v1  matmulCpu (src/kernels/matmul.ts): THE reference. One weight row at a time, one dot product
 *       per (row, activation row). Kept as is; every variant below is tested against it.
 *   v2  matmulV2: register-blocked matvec for decode (small M). See its header.
 *   v3  matmulV3: cache-blocked matmul for prefill (large M). See its header.
 *
 * All of them compute out (M, N) = x (M, K) · wᵀ (+ bias) for a weight stored as nn.Linear's (N, K),
 * restricted to the output rows [n0, n1) so that the worker pool (cpu/pool.ts) can split N across
 * threads and run this very code in every worker.
 *
 * Accuracy: bit-identical to v1, by construction. v1 accumulates in a JS number (f64): each product
 * of two f32 values is exact in f64 (24 + 24 bits of mantissa ≤ 53), the sum runs k = 0, 1, …, K−1
 * into one f64, the bias is added in f64, and the result is rounded to f32 once, on the store.
 * Every variant here keeps exactly that: ONE f64 accumulator per output, added to in increasing k,
 * the bias added before the single rounding store (v3 parks partial sums in a Float64Array between
 * K blocks, which rounds nothing). JavaScript never contracts a·b + c into an FMA, so the same
 * operations in the same order give the same bits, whatever the blocking or the thread count. We do
 * NOT split a dot product into several partial sums (a classic speedup): that would change the
 * rounding, and f64 accumulation is already more accurate than the f32 accumulators of
 * transformers or of our WGSL kernels, so there is no accuracy to trade. (Math.fround to mimic f32
 * accumulation would cost a conversion per add and be less accurate.) Weights stay f32 in memory:
 * decode is bound by the bytes of weights read, and f64 weights would double them.
 *
 * Measured by `npm run bench` in a quiet window of this shared 2-core AMD EPYC VM (Node 20, best of
 * 5; "sweep" = every matmul of one SmolLM2-135M decode step, 538 MB of f32 weights; the committed
 * bench/results file is a later, busier run of the same kernels, with lower and noisier figures):
 *                         v1             v2             v3
 *   sweep M = 1, 1 thread 2.37 GB/s      5.70 GB/s      4.77 GB/s    v2 = 2.4× v1 (JS stream read: 5.4–8 GB/s)
 *   sweep M = 2, 1 thread 1.18 GB/s      3.83 GB/s      2.52 GB/s    v2 = 3.2× v1
 *   prefill M = 64        1.2 GFLOP/s    4.24 GFLOP/s   4.45 GFLOP/s v3 = 3.7× v1, 1.05× v2
 *   sweep M = 1, 2 threads               10.0 GB/s (×1.76)   M = 2: 7.55 GB/s (×1.97)
 * Why M = 2 costs ~1.5× M = 1 per weight in scalar JS: V8 spends ~6 instructions on every typed-array
 * load (bounds check, overflow check, address) and ~1 per multiply or add; the weight load is shared
 * by both rows, but the x loads and the multiply-adds double. No SIMD in JS to hide them.
 */

/** A matmul kernel restricted to output rows [n0, n1). */
export type MatmulKernel = (
  out: Float32Array, // (M, N)
  x: Float32Array, // (M, K)
  w: Float32Array, // (N, K)
  bias: Float32Array | undefined, // (N)
  M: number,
  N: number,
  K: number,
  n0: number,
  n1: number,
) => void;

// --- v2: register-blocked matvec (decode) --------------------------------------------------------

/**
 * v2. What it changes over v1: v1 walks one weight row per output and, for M > 1, reads that row
 * once per activation row; its inner loop is one load, one multiply and one add on a single
 * accumulator, so it is bound by the latency of that add chain, not by memory.
 * v2 takes a block of weight rows per pass (8 rows when M = 1, 4 rows × a pair of activation rows
 * otherwise) with one accumulator per output in registers: each weight element is loaded once and
 * applied to every activation row of the pair, the 8 independent add chains hide the add latency,
 * and the x element loaded once per k serves all rows of the block. For M > 2 the 4-row weight block
 * (4·K·4 bytes: 9 KB at K = 576, 24 KB at K = 1536) is re-read from L1 for each pair of activation
 * rows, so it still comes from memory once per call.
 * Measured: M = 1 ≈ 2.4× v1 (≈ the JS stream-read bandwidth of one core), M = 2 ≈ 3.2× v1.
 */
export function matmulV2(
  out: Float32Array,
  x: Float32Array,
  w: Float32Array,
  bias: Float32Array | undefined,
  M: number,
  N: number,
  K: number,
  n0 = 0,
  n1 = N,
): void {
  let n = n0;
  if (M === 1) {
    for (; n + 8 <= n1; n += 8) rows8x1(out, x, w, bias, K, n);
    for (; n + 4 <= n1; n += 4) rows4x1(out, x, w, bias, N, K, n, 0);
  } else {
    for (; n + 4 <= n1; n += 4) {
      let m = 0;
      for (; m + 2 <= M; m += 2) rows4x2(out, x, w, bias, N, K, n, m);
      if (m < M) rows4x1(out, x, w, bias, N, K, n, m);
    }
  }
  for (; n < n1; n++) for (let m = 0; m < M; m++) rows1x1(out, x, w, bias, N, K, n, m);
}

/** One output: row n of w · activation row m (the remainder path). */
function rows1x1(
  out: Float32Array,
  x: Float32Array,
  w: Float32Array,
  bias: Float32Array | undefined,
  N: number,
  K: number,
  n: number,
  m: number,
): void {
  const p = n * K;
  const q = m * K;
  let a = 0;
  for (let k = 0; k < K; k++) a += x[q + k] * w[p + k];
  out[m * N + n] = bias ? a + bias[n] : a;
}

/** Rows n..n+7 of w · activation row 0 (M = 1, so out is (1, N)). */
function rows8x1(out: Float32Array, x: Float32Array, w: Float32Array, bias: Float32Array | undefined, K: number, n: number): void {
  const p0 = n * K,
    p1 = p0 + K,
    p2 = p1 + K,
    p3 = p2 + K,
    p4 = p3 + K,
    p5 = p4 + K,
    p6 = p5 + K,
    p7 = p6 + K;
  let a0 = 0,
    a1 = 0,
    a2 = 0,
    a3 = 0,
    a4 = 0,
    a5 = 0,
    a6 = 0,
    a7 = 0;
  for (let k = 0; k < K; k++) {
    const xv = x[k];
    a0 += xv * w[p0 + k];
    a1 += xv * w[p1 + k];
    a2 += xv * w[p2 + k];
    a3 += xv * w[p3 + k];
    a4 += xv * w[p4 + k];
    a5 += xv * w[p5 + k];
    a6 += xv * w[p6 + k];
    a7 += xv * w[p7 + k];
  }
  if (bias) {
    out[n] = a0 + bias[n];
    out[n + 1] = a1 + bias[n + 1];
    out[n + 2] = a2 + bias[n + 2];
    out[n + 3] = a3 + bias[n + 3];
    out[n + 4] = a4 + bias[n + 4];
    out[n + 5] = a5 + bias[n + 5];
    out[n + 6] = a6 + bias[n + 6];
    out[n + 7] = a7 + bias[n + 7];
  } else {
    out[n] = a0;
    out[n + 1] = a1;
    out[n + 2] = a2;
    out[n + 3] = a3;
    out[n + 4] = a4;
    out[n + 5] = a5;
    out[n + 6] = a6;
    out[n + 7] = a7;
  }
}

/** Rows n..n+3 of w · activation row m. */
function rows4x1(
  out: Float32Array,
  x: Float32Array,
  w: Float32Array,
  bias: Float32Array | undefined,
  N: number,
  K: number,
  n: number,
  m: number,
): void {
  const p0 = n * K,
    p1 = p0 + K,
    p2 = p1 + K,
    p3 = p2 + K;
  const q = m * K;
  let a0 = 0,
    a1 = 0,
    a2 = 0,
    a3 = 0;
  for (let k = 0; k < K; k++) {
    const xv = x[q + k];
    a0 += xv * w[p0 + k];
    a1 += xv * w[p1 + k];
    a2 += xv * w[p2 + k];
    a3 += xv * w[p3 + k];
  }
  const o = m * N + n;
  if (bias) {
    out[o] = a0 + bias[n];
    out[o + 1] = a1 + bias[n + 1];
    out[o + 2] = a2 + bias[n + 2];
    out[o + 3] = a3 + bias[n + 3];
  } else {
    out[o] = a0;
    out[o + 1] = a1;
    out[o + 2] = a2;
    out[o + 3] = a3;
  }
}

/** Rows n..n+3 of w · activation rows m and m+1: 8 accumulators, 6 loads per 8 multiply-adds. */
function rows4x2(
  out: Float32Array,
  x: Float32Array,
  w: Float32Array,
  bias: Float32Array | undefined,
  N: number,
  K: number,
  n: number,
  m: number,
): void {
  const p0 = n * K,
    p1 = p0 + K,
    p2 = p1 + K,
    p3 = p2 + K;
  const q0 = m * K,
    q1 = q0 + K;
  let a0 = 0,
    a1 = 0,
    a2 = 0,
    a3 = 0,
    b0 = 0,
    b1 = 0,
    b2 = 0,
    b3 = 0;
  for (let k = 0; k < K; k++) {
    const xa = x[q0 + k];
    const xb = x[q1 + k];
    let wv = w[p0 + k];
    a0 += xa * wv;
    b0 += xb * wv;
    wv = w[p1 + k];
    a1 += xa * wv;
    b1 += xb * wv;
    wv = w[p2 + k];
    a2 += xa * wv;
    b2 += xb * wv;
    wv = w[p3 + k];
    a3 += xa * wv;
    b3 += xb * wv;
  }
  const o = m * N + n;
  const o2 = o + N;
  if (bias) {
    const c0 = bias[n],
      c1 = bias[n + 1],
      c2 = bias[n + 2],
      c3 = bias[n + 3];
    out[o] = a0 + c0;
    out[o + 1] = a1 + c1;
    out[o + 2] = a2 + c2;
    out[o + 3] = a3 + c3;
    out[o2] = b0 + c0;
    out[o2 + 1] = b1 + c1;
    out[o2 + 2] = b2 + c2;
    out[o2 + 3] = b3 + c3;
  } else {
    out[o] = a0;
    out[o + 1] = a1;
    out[o + 2] = a2;
    out[o + 3] = a3;
    out[o2] = b0;
    out[o2 + 1] = b1;
    out[o2 + 2] = b2;
    out[o2 + 3] = b3;
  }
}

// --- v3: cache-blocked matmul (prefill) ----------------------------------------------------------

/**
 * K block: 4 weight rows × KB floats (32 KB) stay in L1/L2 however long the rows are. Measured at
 * M = 64, K = 1536: one block (KB ≥ 1536) 4.5 GFLOP/s, KB = 1024 4.3: blocking only pays past this.
 */
export const V3_KB = 2048;
/** M panel: MB activation rows (a multiple of the 3-row tile) × a K block (≤ 96 × 2048 × 4 B = 768 KB) stay in the 1 MB L2. */
export const V3_MB = 96;

/**
 * v3. What it changes over v2 for large M (prefill): v2 re-reads the 4-row weight block from L1
 * for every pair of activation rows, and reads those rows from wherever they are. v3 blocks all
 * three loops for the cache and uses a larger register tile:
 *   - an M panel of V3_MB activation rows is swept against all of the thread's weight rows, so the
 *     panel stays in L2 and the weight streams from memory only ⌈M / MB⌉ times;
 *   - within it, a K block of V3_KB columns of 4 weight rows (≤ 32 KB) stays in cache while every
 *     row triple of the panel passes over it;
 *   - the register tile is 4 weight rows × 3 activation rows (12 accumulators): 12 multiply-adds per
 *     7 loads instead of v2's 8 per 6.
 * Partial sums between K blocks are parked in a Float64Array, which rounds nothing, so the result is
 * still bit-identical to v1. For K ≤ V3_KB (every projection of SmolLM2-135M) there is a single K
 * block and nothing is parked; larger Llamas' MLP down-projections (K = 5632, 8192, …) are blocked.
 * Measured at M = 64: ≈ 3.7× v1, ≈ 1.05× v2 (the 12-accumulator tile is near V8's register limit).
 */
export function matmulV3(
  out: Float32Array,
  x: Float32Array,
  w: Float32Array,
  bias: Float32Array | undefined,
  M: number,
  N: number,
  K: number,
  n0 = 0,
  n1 = N,
): void {
  const nEnd = n0 + ((n1 - n0) & ~3); // whole 4-row blocks; the last < 4 rows take the 1 × 1 path
  const acc = K > V3_KB ? new Float64Array(V3_MB * 4) : undefined;
  for (let m0 = 0; m0 < M; m0 += V3_MB) {
    const m1 = Math.min(M, m0 + V3_MB);
    for (let n = n0; n < nEnd; n += 4) {
      for (let k0 = 0; k0 < K; k0 += V3_KB) {
        const k1 = Math.min(K, k0 + V3_KB);
        let m = m0;
        for (; m + 3 <= m1; m += 3) rows4x3(out, x, w, bias, N, K, n, m, k0, k1, acc, (m - m0) * 4);
        for (; m < m1; m++) rows4x1Acc(out, x, w, bias, N, K, n, m, k0, k1, acc, (m - m0) * 4);
      }
    }
    for (let n = nEnd; n < n1; n++) for (let m = m0; m < m1; m++) rows1x1(out, x, w, bias, N, K, n, m);
  }
}

/**
 * Rows n..n+3 of w · activation rows m, m+1, m+2 over k in [k0, k1). The sums start at 0 when
 * k0 = 0, else from the partial sums parked in acc[a..a+11]; they are parked again unless k1 = K,
 * where the outputs are stored (+ bias). acc is only needed when K has more than one block.
 */
function rows4x3(
  out: Float32Array,
  x: Float32Array,
  w: Float32Array,
  bias: Float32Array | undefined,
  N: number,
  K: number,
  n: number,
  m: number,
  k0: number,
  k1: number,
  acc: Float64Array | undefined,
  a: number,
): void {
  const p0 = n * K,
    p1 = p0 + K,
    p2 = p1 + K,
    p3 = p2 + K;
  const q0 = m * K,
    q1 = q0 + K,
    q2 = q1 + K;
  let a0 = 0,
    a1 = 0,
    a2 = 0,
    a3 = 0,
    b0 = 0,
    b1 = 0,
    b2 = 0,
    b3 = 0,
    c0 = 0,
    c1 = 0,
    c2 = 0,
    c3 = 0;
  if (k0 > 0) {
    const s = acc!;
    a0 = s[a];
    a1 = s[a + 1];
    a2 = s[a + 2];
    a3 = s[a + 3];
    b0 = s[a + 4];
    b1 = s[a + 5];
    b2 = s[a + 6];
    b3 = s[a + 7];
    c0 = s[a + 8];
    c1 = s[a + 9];
    c2 = s[a + 10];
    c3 = s[a + 11];
  }
  for (let k = k0; k < k1; k++) {
    const w0 = w[p0 + k],
      w1 = w[p1 + k],
      w2 = w[p2 + k],
      w3 = w[p3 + k];
    let xv = x[q0 + k];
    a0 += xv * w0;
    a1 += xv * w1;
    a2 += xv * w2;
    a3 += xv * w3;
    xv = x[q1 + k];
    b0 += xv * w0;
    b1 += xv * w1;
    b2 += xv * w2;
    b3 += xv * w3;
    xv = x[q2 + k];
    c0 += xv * w0;
    c1 += xv * w1;
    c2 += xv * w2;
    c3 += xv * w3;
  }
  if (k1 < K) {
    const s = acc!;
    s[a] = a0;
    s[a + 1] = a1;
    s[a + 2] = a2;
    s[a + 3] = a3;
    s[a + 4] = b0;
    s[a + 5] = b1;
    s[a + 6] = b2;
    s[a + 7] = b3;
    s[a + 8] = c0;
    s[a + 9] = c1;
    s[a + 10] = c2;
    s[a + 11] = c3;
    return;
  }
  const o = m * N + n,
    o2 = o + N,
    o3 = o2 + N;
  if (bias) {
    const d0 = bias[n],
      d1 = bias[n + 1],
      d2 = bias[n + 2],
      d3 = bias[n + 3];
    out[o] = a0 + d0;
    out[o + 1] = a1 + d1;
    out[o + 2] = a2 + d2;
    out[o + 3] = a3 + d3;
    out[o2] = b0 + d0;
    out[o2 + 1] = b1 + d1;
    out[o2 + 2] = b2 + d2;
    out[o2 + 3] = b3 + d3;
    out[o3] = c0 + d0;
    out[o3 + 1] = c1 + d1;
    out[o3 + 2] = c2 + d2;
    out[o3 + 3] = c3 + d3;
  } else {
    out[o] = a0;
    out[o + 1] = a1;
    out[o + 2] = a2;
    out[o + 3] = a3;
    out[o2] = b0;
    out[o2 + 1] = b1;
    out[o2 + 2] = b2;
    out[o2 + 3] = b3;
    out[o3] = c0;
    out[o3 + 1] = c1;
    out[o3 + 2] = c2;
    out[o3 + 3] = c3;
  }
}

/** rows4x3 for a single activation row (the M panel's last M mod 3 rows), same parking rules. */
function rows4x1Acc(
  out: Float32Array,
  x: Float32Array,
  w: Float32Array,
  bias: Float32Array | undefined,
  N: number,
  K: number,
  n: number,
  m: number,
  k0: number,
  k1: number,
  acc: Float64Array | undefined,
  a: number,
): void {
  const p0 = n * K,
    p1 = p0 + K,
    p2 = p1 + K,
    p3 = p2 + K;
  const q = m * K;
  let a0 = 0,
    a1 = 0,
    a2 = 0,
    a3 = 0;
  if (k0 > 0) {
    const s = acc!;
    a0 = s[a];
    a1 = s[a + 1];
    a2 = s[a + 2];
    a3 = s[a + 3];
  }
  for (let k = k0; k < k1; k++) {
    const xv = x[q + k];
    a0 += xv * w[p0 + k];
    a1 += xv * w[p1 + k];
    a2 += xv * w[p2 + k];
    a3 += xv * w[p3 + k];
  }
  if (k1 < K) {
    const s = acc!;
    s[a] = a0;
    s[a + 1] = a1;
    s[a + 2] = a2;
    s[a + 3] = a3;
    return;
  }
  const o = m * N + n;
  out[o] = bias ? a0 + bias[n] : a0;
  out[o + 1] = bias ? a1 + bias[n + 1] : a1;
  out[o + 2] = bias ? a2 + bias[n + 2] : a2;
  out[o + 3] = bias ? a3 + bias[n + 3] : a3;
}

/** Splits rows [0, N) into `parts` contiguous ranges of whole blocks: [n0, n1) of part i. */
export function splitRows(N: number, parts: number, block: number, i: number): [number, number] {
  const per = Math.ceil(N / parts / block) * block;
  const n0 = Math.min(N, i * per);
  return [n0, Math.min(N, n0 + per)];
}

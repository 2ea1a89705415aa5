/**
 * The SIMD stream read: the bandwidth reference of the decode matvec (bench/lib/stream.ts). It sums
 * `bytes` bytes of f32 at p with four independent vector accumulators (16 floats in flight), so the
 * only limit is how fast memory delivers them. The sum is returned so the loads cannot be dropped.
 */
export function streamSum(p: usize, bytes: usize): f32 {
  let a = f32x4.splat(0), b = a, c = a, d = a;
  const end = p + (bytes & ~63);
  for (; p < end; p += 64) {
    a = f32x4.add(a, v128.load(p));
    b = f32x4.add(b, v128.load(p, 16));
    c = f32x4.add(c, v128.load(p, 32));
    d = f32x4.add(d, v128.load(p, 48));
  }
  const s = f32x4.add(f32x4.add(a, b), f32x4.add(c, d));
  return f32x4.extract_lane(s, 0) + f32x4.extract_lane(s, 1) + f32x4.extract_lane(s, 2) + f32x4.extract_lane(s, 3);
}

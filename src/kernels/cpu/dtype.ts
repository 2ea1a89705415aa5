/**
 * Widening of stored half-precision weights to f32. Both conversions are exact: every f16 and every
 * bf16 value is representable in f32, so "bf16 storage, f32 compute" loses nothing (the fixtures'
 * references were computed that way).
 *
 * And the way back, narrowFromF32, for what writes half-precision weights: the random checkpoints
 * (weights/build-random-tiny.ts, the bench's models) and the kernel tests' f16/bf16 weights.
 */
import type { DType } from '../backend.ts';

/** bf16 is the top half of an f32: shift it back into place. */
export function bf16ToF32(src: Uint16Array): Float32Array {
  const out = new Uint32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = src[i] << 16;
  return new Float32Array(out.buffer);
}

/** IEEE half → single, subnormals included, via a 64 K-entry table built once. */
let f16Table: Float32Array | undefined;
function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24; // zero or subnormal
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}
export function f16ToF32(src: Uint16Array): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = halfToFloat(h);
  }
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = f16Table[src[i]];
  return out;
}

/** Little-endian stored bytes of any supported dtype → a fresh Float32Array. */
export function widenToF32(dtype: DType, bytes: Uint8Array): Float32Array {
  // Copy into an aligned buffer first: a tensor's offset inside a file need not be 4-byte aligned.
  const aligned = new Uint8Array(bytes.byteLength);
  aligned.set(bytes);
  switch (dtype) {
    case 'f32':
      return new Float32Array(aligned.buffer);
    case 'f16':
      return f16ToF32(new Uint16Array(aligned.buffer));
    case 'bf16':
      return bf16ToF32(new Uint16Array(aligned.buffer));
  }
}

/** f32 bits → bf16 bits, rounded to nearest even as torch's `.to(torch.bfloat16)` does; a NaN stays a (quiet) NaN. */
function f32BitsToBf16(bits: number): number {
  if ((bits & 0x7fffffff) > 0x7f800000) return (bits >>> 16) | 0x40;
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff; // a carry into the exponent is still right
}

/** f32 bits → IEEE half bits, rounded to nearest even, subnormals included; too large → ±Inf, NaN → NaN. */
function f32BitsToF16(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  let mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | (mant ? 0x7e00 : 0x7c00);
  const e = exp - 127 + 15; // the half's biased exponent
  if (e >= 0x1f) return sign | 0x7c00;
  let shift = 13; // mantissa bits dropped
  let half: number;
  if (e <= 0) {
    if (e < -10) return sign; // below half the smallest subnormal: rounds to ±0
    mant |= 0x800000; // the implicit leading 1, now explicit in a subnormal
    shift = 14 - e;
    half = mant >>> shift;
  } else half = (e << 10) | (mant >>> 13);
  const rem = mant & ((1 << shift) - 1);
  const mid = 1 << (shift - 1);
  if (rem > mid || (rem === mid && half & 1)) half++; // a carry into the exponent is still right
  return sign | half;
}

/**
 * f32 values → the little-endian bytes of `dtype`, each rounded to the nearest value of the dtype
 * (ties to even): the inverse of widenToF32 on every value the dtype holds.
 */
export function narrowFromF32(dtype: DType, values: Float32Array): Uint8Array {
  const bits = new Uint32Array(values.slice().buffer); // (n) a copy: aligned, and never a view of the caller's buffer
  if (dtype === 'f32') return new Uint8Array(bits.buffer);
  const toHalf = dtype === 'bf16' ? f32BitsToBf16 : f32BitsToF16;
  const half = new Uint16Array(bits.length);
  for (let i = 0; i < bits.length; i++) half[i] = toHalf(bits[i]);
  return new Uint8Array(half.buffer);
}

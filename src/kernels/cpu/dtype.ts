/**
 * Widening of stored half-precision weights to f32. Both conversions are exact: every f16 and every
 * bf16 value is representable in f32, so "bf16 storage, f32 compute" loses nothing (the fixtures'
 * references were computed that way).
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

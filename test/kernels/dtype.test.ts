/**
 * narrowFromF32 (src/kernels/cpu/dtype.ts), the f32 → f16 / bf16 rounding that writes the random
 * checkpoints and the kernel tests' half-precision weights, checked against widenToF32 over every one
 * of the 65 536 bit patterns of each half type: each value narrows back to its own bits, each midpoint
 * between two neighbours goes to the one with the even bits (ties to even), and the f32 just either
 * side of a midpoint goes to the nearer neighbour. Every f32 used here is exact: a midpoint of two
 * halves needs one bit more than the half has, and f32 has 13 (f16) or 16 (bf16) more.
 */
import { describe, expect, it } from 'vitest';
import type { DType } from '../../src/kernels/backend.ts';
import { narrowFromF32, widenToF32 } from '../../src/kernels/cpu/dtype.ts';

/** Every bit pattern of a half type, and the f32 each one widens to. */
function allHalves(dtype: DType): { bits: Uint16Array; values: Float32Array } {
  const bits = Uint16Array.from({ length: 65536 }, (_, i) => i);
  return { bits, values: widenToF32(dtype, new Uint8Array(bits.buffer)) };
}

const narrowBits = (dtype: DType, values: Float32Array): Uint16Array => new Uint16Array(narrowFromF32(dtype, values).buffer);

/** The f32 next to x towards +∞ (up) or −∞, for finite x > 0. */
function nextF32(x: number, up: boolean): number {
  const b = new Uint32Array(Float32Array.of(x).buffer);
  b[0] += up ? 1 : -1;
  return new Float32Array(b.buffer)[0];
}

describe.each<DType>(['f16', 'bf16'])('narrowFromF32 to %s', (dtype) => {
  const { bits, values } = allHalves(dtype);

  it('gives back the bits of every value the type holds (NaNs stay NaN)', () => {
    const back = narrowBits(dtype, values);
    const back2 = widenToF32(dtype, new Uint8Array(back.buffer));
    for (let i = 0; i < 65536; i++) {
      if (Number.isNaN(values[i])) expect(Number.isNaN(back2[i]), `pattern ${i}`).toBe(true);
      else if (back[i] !== bits[i]) expect.fail(`pattern 0x${i.toString(16)} (${values[i]}) came back as 0x${back[i].toString(16)}`);
    }
  });

  it('rounds to nearest, ties to even, between every two neighbours (subnormals and the overflow to Inf included)', () => {
    // Positive finite halves in increasing order are the patterns 0 … (the one before +Inf); the sign
    // bit mirrors them. The last "neighbour" pair is (max finite, +Inf): the overflow threshold.
    const inf = dtype === 'f16' ? 0x7c00 : 0x7f80;
    const lo: number[] = [];
    const hi: number[] = [];
    const mids: number[] = [];
    const below: number[] = [];
    const above: number[] = [];
    for (let a = 0; a < inf; a++) {
      const b = a + 1;
      // Between max finite and Inf, the rounding boundary is where the next (absent) half would be halfway.
      const vb = b === inf ? 2 * values[a] - values[a - 1] : values[b];
      const mid = (values[a] + vb) / 2;
      for (const sign of [1, -1]) {
        lo.push(a | (sign < 0 ? 0x8000 : 0));
        hi.push(b | (sign < 0 ? 0x8000 : 0));
        mids.push(sign * mid);
        below.push(sign * nextF32(mid, false));
        above.push(sign * nextF32(mid, true));
      }
    }
    const atMid = narrowBits(dtype, Float32Array.from(mids));
    const justBelow = narrowBits(dtype, Float32Array.from(below));
    const justAbove = narrowBits(dtype, Float32Array.from(above));
    for (let i = 0; i < lo.length; i++) {
      const even = (lo[i] & 1) === 0 ? lo[i] : hi[i];
      if (atMid[i] !== even) expect.fail(`${mids[i]}, halfway from 0x${lo[i].toString(16)}: got 0x${atMid[i].toString(16)}`);
      if (justBelow[i] !== lo[i]) expect.fail(`${below[i]}: got 0x${justBelow[i].toString(16)}, want 0x${lo[i].toString(16)}`);
      if (justAbove[i] !== hi[i]) expect.fail(`${above[i]}: got 0x${justAbove[i].toString(16)}, want 0x${hi[i].toString(16)}`);
    }
  });

  it('keeps ±Inf and NaN, and sends what is beyond the largest half to ±Inf', () => {
    const beyond = dtype === 'f16' ? 1e5 : 3.4028234663852886e38; // f16 max 65504; bf16 max 3.39e38 < f32 max
    const out = widenToF32(dtype, narrowFromF32(dtype, Float32Array.of(Infinity, -Infinity, Number.NaN, beyond, -beyond)));
    expect(Array.from(out)).toEqual([Infinity, -Infinity, Number.NaN, Infinity, -Infinity]);
    // NaNs whose payload lies only in the bits that are dropped, or whose rounding would carry out.
    const nans = new Float32Array(Uint32Array.of(0x7f800001, 0xff800001, 0x7fffffff, 0xffffffff).buffer);
    expect(Array.from(widenToF32(dtype, narrowFromF32(dtype, nans)))).toEqual([NaN, NaN, NaN, NaN]);
  });
});

it('narrowFromF32 to f32 copies the bytes, never a view of the caller buffer', () => {
  const values = Float32Array.of(1.5, -0, Number.NaN);
  const bytes = narrowFromF32('f32', values);
  expect(bytes.buffer).not.toBe(values.buffer);
  expect(Array.from(new Float32Array(bytes.buffer))).toEqual([1.5, -0, Number.NaN]);
});

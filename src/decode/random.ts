/**
 * A small seeded PRNG (SplitMix32-style over 32-bit state) so that sampling is reproducible across
 * runs, machines and backends: the same seed gives the same stream of uniforms in [0, 1).
 */
export function seededUniform(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    z ^= z >>> 16;
    return (z >>> 0) / 4294967296;
  };
}

/** mulberry32: a tiny, well-mixed seeded PRNG, uniform in [0, 1); the same seed gives the same stream everywhere. */
export function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A seeded standard normal: mulberry32 uniforms through Box–Muller. Used to make deterministic random
 * weights (weights/build-random-tiny.ts, the tests' random models); changing it changes those bytes.
 */
export function seededGaussian(seed: number): () => number {
  const uniform = mulberry32(seed);
  return () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
}

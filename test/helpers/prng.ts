/**
 * A small seeded PRNG (mulberry32) so that random inputs in tests are the same on every
 * run: a failing case names its seed, and the same seed rebuilds the same bytes.
 */
export type Random = () => number;

/** Uniform floats in [0, 1) from a 32-bit seed. */
export function mulberry32(seed: number): Random {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An integer in [min, max). */
export function randomInt(random: Random, min: number, max: number): number {
  return min + Math.floor(random() * (max - min));
}

/** `length` random bytes. */
export function randomBuffer(random: Random, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i++) out[i] = Math.floor(random() * 256);
  return out;
}

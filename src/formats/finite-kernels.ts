/**
 * Counting NaN, +Inf and -Inf in runs of IEEE floats, fast enough to keep pace with reading
 * the file. Each dtype first runs a cheap test over a block (a float times 0 is NaN exactly
 * when it is NaN or ±Inf; for 16-bit floats, an all-ones exponent carries into the bit above
 * it when one is added) and counts element by element only in blocks where that test fires,
 * so a healthy checkpoint costs one pass of simple arithmetic.
 */

export type FloatDType = "float32" | "float64" | "float16" | "bfloat16";

export const FLOAT_DTYPES: ReadonlySet<string> = new Set<FloatDType>(["float32", "float64", "float16", "bfloat16"]);

export interface NonFiniteCounts {
  nan: number;
  posInf: number;
  negInf: number;
}

/** Elements tested together before deciding whether to count one by one. */
const BLOCK = 1 << 16;

/**
 * Adds the non-finite values among `bytes` (whole little-endian elements of `dtype`) to
 * `counts`. Unaligned input is copied once so typed-array views can be used.
 */
export function countNonFinite(bytes: Uint8Array, dtype: FloatDType, counts: NonFiniteCounts): void {
  const size = dtype === "float64" ? 8 : dtype === "float32" ? 4 : 2;
  // new Uint8Array(view) copies into a fresh, aligned buffer (Buffer#slice would not copy).
  const aligned = bytes.byteOffset % size === 0 ? bytes : new Uint8Array(bytes);
  const n = Math.floor(aligned.byteLength / size);
  const { buffer, byteOffset } = aligned;
  for (let start = 0; start < n; start += BLOCK) {
    const length = Math.min(BLOCK, n - start);
    const offset = byteOffset + start * size;
    switch (dtype) {
      case "float32": {
        const view = new Float32Array(buffer, offset, length);
        if (anyNonFiniteFloat(view)) countFloats(view, counts);
        break;
      }
      case "float64": {
        const view = new Float64Array(buffer, offset, length);
        if (anyNonFiniteFloat(view)) countFloats(view, counts);
        break;
      }
      default: {
        const view = new Uint16Array(buffer, offset, length);
        // IEEE half: 5 exponent bits (0x7c00); bfloat16: float32's top half, 8 exponent bits (0x7f80).
        const [exponent, low] = dtype === "float16" ? [0x7c00, 0x0400] : [0x7f80, 0x0080];
        if (anyAllOnesExponent(view, exponent, low)) countHalves(view, exponent, counts);
      }
    }
  }
}

function anyNonFiniteFloat(view: Float32Array | Float64Array): boolean {
  // Four accumulators break the add dependency chain; ±0 sums stay 0, one NaN poisons its sum.
  let a = 0, b = 0, c = 0, d = 0;
  const n = view.length - (view.length % 4);
  for (let i = 0; i < n; i += 4) {
    a += view[i]! * 0;
    b += view[i + 1]! * 0;
    c += view[i + 2]! * 0;
    d += view[i + 3]! * 0;
  }
  for (let i = n; i < view.length; i++) a += view[i]! * 0;
  return a + b + c + d !== 0;
}

function countFloats(view: Float32Array | Float64Array, counts: NonFiniteCounts): void {
  for (let i = 0; i < view.length; i++) {
    const x = view[i]!;
    if (x !== x) counts.nan++;
    else if (x === Infinity) counts.posInf++;
    else if (x === -Infinity) counts.negInf++;
  }
}

/** True when some element has every exponent bit set: (e & mask) + low carries into bit 15. */
function anyAllOnesExponent(view: Uint16Array, exponent: number, low: number): boolean {
  // Two halves per 32-bit word when the view allows it; the low half's carry stops at bit 15.
  const wordsUsable = view.byteOffset % 4 === 0;
  const words = wordsUsable ? new Uint32Array(view.buffer, view.byteOffset, view.length >>> 1) : new Uint32Array(0);
  const mask = (exponent << 16) | exponent;
  const add = (low << 16) | low;
  let m = 0;
  const n = words.length - (words.length % 4);
  for (let i = 0; i < n; i += 4) {
    m |= ((words[i]! & mask) + add) | ((words[i + 1]! & mask) + add) | ((words[i + 2]! & mask) + add) | ((words[i + 3]! & mask) + add);
  }
  for (let i = n; i < words.length; i++) m |= (words[i]! & mask) + add;
  if ((m & 0x80008000) !== 0) return true;
  for (let i = words.length * 2; i < view.length; i++) {
    if ((view[i]! & exponent) === exponent) return true;
  }
  return false;
}

function countHalves(view: Uint16Array, exponent: number, counts: NonFiniteCounts): void {
  const mantissa = 0x7fff & ~exponent;
  for (let i = 0; i < view.length; i++) {
    const h = view[i]!;
    if ((h & exponent) !== exponent) continue;
    if ((h & mantissa) !== 0) counts.nan++;
    else if ((h & 0x8000) !== 0) counts.negInf++;
    else counts.posInf++;
  }
}

/** Turns big-endian elements (legacy files from big-endian machines) little-endian in place. */
export function swapToLittle(bytes: Buffer, size: number): void {
  if (size === 2) bytes.swap16();
  else if (size === 4) bytes.swap32();
  else if (size === 8) bytes.swap64();
}

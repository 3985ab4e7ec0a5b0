/** The NaN/Inf counting loops, on bit patterns built here, aligned and not, with odd tails. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { countNonFinite, type FloatDType, type NonFiniteCounts } from "../../src/formats/finite-kernels.js";

/** Little-endian bytes of `n` elements, all finite except the given ones, starting `shift` bytes into the buffer. */
function bytesOf(dtype: FloatDType, n: number, special: Record<number, "nan" | "+inf" | "-inf">, shift = 0): Uint8Array {
  const size = dtype === "float64" ? 8 : dtype === "float32" ? 4 : 2;
  const buffer = new ArrayBuffer(n * size + shift);
  const view = new DataView(buffer, shift);
  for (let i = 0; i < n; i++) {
    const kind = special[i];
    const value = kind === "nan" ? NaN : kind === "+inf" ? Infinity : kind === "-inf" ? -Infinity : Math.sin(i) * 1000;
    if (dtype === "float64") view.setFloat64(i * 8, value, true);
    else if (dtype === "float32") view.setFloat32(i * 4, value, true);
    else view.setUint16(i * 2, dtype === "bfloat16" ? bfloat16Bits(value) : float16Bits(value), true);
  }
  return new Uint8Array(buffer, shift, n * size);
}

function bfloat16Bits(value: number): number {
  const f = new DataView(new ArrayBuffer(4));
  f.setFloat32(0, value);
  return f.getUint16(0);
}

function float16Bits(value: number): number {
  if (Number.isNaN(value)) return 0x7e00;
  if (value === Infinity) return 0x7c00;
  if (value === -Infinity) return 0xfc00;
  return (value < 0 ? 0x8000 : 0) | 0x3c00; // ±1.0: any finite value will do
}

function count(bytes: Uint8Array, dtype: FloatDType): NonFiniteCounts {
  const counts = { nan: 0, posInf: 0, negInf: 0 };
  countNonFinite(bytes, dtype, counts);
  return counts;
}

describe("countNonFinite", () => {
  for (const dtype of ["float32", "float64", "float16", "bfloat16"] as const) {
    it(`counts NaN, +Inf and -Inf in ${dtype}, across blocks and in a ragged tail`, () => {
      const n = 200_003; // three 65,536-element blocks and a tail that is not a multiple of 4
      const special = { 0: "nan", 65_535: "+inf", 65_536: "-inf", 131_073: "nan", 200_002: "nan" } as const;
      assert.deepEqual(count(bytesOf(dtype, n, special), dtype), { nan: 3, posInf: 1, negInf: 1 });
    });

    it(`counts ${dtype} values that do not start on an element boundary`, () => {
      assert.deepEqual(count(bytesOf(dtype, 1001, { 7: "-inf", 1000: "nan" }, 1), dtype), { nan: 1, posInf: 0, negInf: 1 });
    });

    it(`finds nothing in finite ${dtype} values`, () => {
      assert.deepEqual(count(bytesOf(dtype, 9, {}), dtype), { nan: 0, posInf: 0, negInf: 0 });
    });
  }

  it("treats float32's largest finite value and subnormals as finite", () => {
    const values = new Float32Array([3.4028234663852886e38, -3.4028234663852886e38, 1e-45, -0, 0]);
    assert.deepEqual(count(new Uint8Array(values.buffer), "float32"), { nan: 0, posInf: 0, negInf: 0 });
  });

  it("tells float16's all-ones exponent with a payload (NaN) from a bare one (Inf)", () => {
    const halves = new Uint16Array([0x7c01, 0xfc00, 0x7c00, 0x7bff, 0xfbff]); // NaN, -Inf, +Inf, max, -max
    assert.deepEqual(count(new Uint8Array(halves.buffer), "float16"), { nan: 1, posInf: 1, negInf: 1 });
  });
});

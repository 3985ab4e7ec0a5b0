import { CkptError } from "../../errors.js";

/**
 * Decoders for the newline-terminated arguments of protocol 0 opcodes (INT, LONG,
 * FLOAT, STRING, UNICODE, GET/PUT, GLOBAL/INST names). Mirrors the readers in
 * CPython's Lib/pickle.py (`load_int`, `load_string`, `load_unicode`, ...).
 */

export function parseIntLine(line: string, where: { offset: number }): number | bigint | boolean {
  // Protocol 0 spells True/False as "I01"/"I00" (pickle.py load_int).
  if (line === "01") return true;
  if (line === "00") return false;
  return parseLongLine(line, where);
}

export function parseLongLine(line: string, where: { offset: number }): number | bigint {
  const digits = line.endsWith("L") ? line.slice(0, -1) : line;
  if (!/^[+-]?\d+$/.test(digits)) {
    throw new CkptError("PICKLE_MALFORMED", `integer argument ${JSON.stringify(line.slice(0, 40))} is not a number`, where);
  }
  const big = BigInt(digits);
  return toNumberIfSafe(big);
}

export function parseFloatLine(line: string, where: { offset: number }): number {
  const value = Number(line);
  if (line.trim() === "" || (Number.isNaN(value) && !/^[+-]?nan$/i.test(line))) {
    if (/^[+-]?inf$/i.test(line)) return line.startsWith("-") ? -Infinity : Infinity;
    throw new CkptError("PICKLE_MALFORMED", `float argument ${JSON.stringify(line.slice(0, 40))} is not a number`, where);
  }
  return value;
}

export function toNumberIfSafe(value: bigint): number | bigint {
  return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
}

/** Decodes a Python `repr()` of a str/bytes literal as written by protocol 0's STRING opcode. */
export function parseQuotedString(line: string, where: { offset: number }): string {
  const quote = line[0];
  if ((quote !== "'" && quote !== '"') || line.length < 2 || line[line.length - 1] !== quote) {
    throw new CkptError("PICKLE_MALFORMED", "STRING argument is not a quoted literal", where);
  }
  return unescapePython(line.slice(1, -1));
}

/** Undoes Python's backslash escapes (\\n, \\xhh, \\uXXXX, octal, ...). */
export function unescapePython(body: string): string {
  return body.replace(/\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{1,3}|.)/gs, (_match, esc: string) => {
    const head = esc[0];
    if (head === "x" || head === "u" || head === "U") return String.fromCodePoint(parseInt(esc.slice(1), 16));
    if (/^[0-7]/.test(esc)) return String.fromCharCode(parseInt(esc, 8));
    const simple: Record<string, string> = { n: "\n", t: "\t", r: "\r", "\\": "\\", "'": "'", '"': '"', a: "\x07", b: "\b", f: "\f", v: "\v", "0": "\0" };
    return simple[esc] ?? `\\${esc}`;
  });
}

/** Little-endian two's-complement integer of `bytes` (LONG1/LONG4), as number when safe. */
export function decodeLong(bytes: Uint8Array): number | bigint {
  if (bytes.length === 0) return 0;
  // One hex parse is linear; shifting a byte at a time is quadratic (1 MB LONG4: > 20 s).
  let value = BigInt(`0x${Buffer.from(bytes).reverse().toString("hex")}`);
  const top = bytes[bytes.length - 1] ?? 0;
  if (top & 0x80) value -= 1n << BigInt(8 * bytes.length);
  return toNumberIfSafe(value);
}

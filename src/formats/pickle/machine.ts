import { CkptError } from "../../errors.js";
import type { GlobalRef, PickleDict, PickleSite, PickleValue, UnsafeGlobalUse } from "../model.js";
import { decodeLong, parseFloatLine, parseIntLine, parseLongLine, parseQuotedString, unescapePython } from "./text-args.js";

/**
 * A pickle stack machine (protocols 0-5, every opcode of CPython's Lib/pickletools.py
 * table) that builds inert data. Nothing is imported, evaluated or called: GLOBAL
 * yields a symbol, and REDUCE/NEWOBJ/INST/OBJ consult `reducers`, which only emulate
 * known-harmless constructors as data. Every other global is recorded as unsafe.
 */

/** Emulates one allowlisted callable as data; `site` says where it was called. */
export type Reducer = (args: PickleValue[], site: PickleSite) => PickleValue;

/**
 * A callable accepted only for the arguments it recognises (e.g. `builtins.getattr` on one
 * enum class): returns the data it stands for, or `undefined` to have the call reported
 * as an unsafe call. Naming it without calling it is harmless and not reported.
 */
export type GuardedCall = (args: PickleValue[], site: PickleSite) => PickleValue | undefined;

export interface PickleOptions {
  /** Label of the stream (zip member name, or "legacy pickle N") for locations. */
  stream: string;
  /** Callables emulated as data, keyed by `module.name`. */
  reducers: ReadonlyMap<string, Reducer>;
  /** Globals that may be named (not called) safely: dtypes, storage classes, ... */
  referenceOnly: ReadonlySet<string>;
  /** Callables accepted for specific arguments only, keyed by `module.name`. */
  guardedCalls?: ReadonlyMap<string, GuardedCall>;
  /** Resolves a persistent id (torch storages); throws when absent. */
  persistentLoad?: (pid: PickleValue, site: PickleSite) => PickleValue;
}

export interface PickleResult {
  value: PickleValue;
  /** Offset just past the STOP opcode. */
  end: number;
  unsafeGlobals: UnsafeGlobalUse[];
  protocol: number;
}

const MARK = Symbol("mark");
type StackItem = PickleValue | typeof MARK;

export function readPickle(bytes: Uint8Array, start: number, options: PickleOptions): PickleResult {
  return new PickleMachine(bytes, start, options).run();
}

class PickleMachine {
  private pos: number;
  private readonly stack: StackItem[] = [];
  private readonly memo = new Map<number, PickleValue>();
  private readonly unsafe: UnsafeGlobalUse[] = [];
  private readonly unsafeByRef = new Map<GlobalRef, UnsafeGlobalUse>();
  private protocol = 0;
  private opOffset = 0;
  private readonly decoder = new TextDecoder("utf-8", { fatal: false });
  /**
   * Fixed-width fields and strings are read through these views rather than `take()`: a
   * Buffer's subarray constructs a Buffer, which cost more than the rest of the opcode (a
   * GPT-2 + AdamW data.pkl has ~4,000 LONG_BINPUTs and ~900 BINUNICODEs).
   */
  private readonly view: DataView;
  private readonly plain: Uint8Array;

  constructor(private readonly bytes: Uint8Array, start: number, private readonly options: PickleOptions) {
    this.pos = start;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.plain = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  run(): PickleResult {
    for (;;) {
      this.opOffset = this.pos;
      const op = this.u8();
      if (op === 0x2e /* STOP '.' */) {
        const value = this.pop();
        return { value, end: this.pos, unsafeGlobals: this.unsafe, protocol: this.protocol };
      }
      this.step(op);
    }
  }

  // ----- byte readers: every length is checked against the bytes that remain -----

  private fail(code: string, message: string): never {
    throw new CkptError(code, `pickle ${this.options.stream}: ${message}`, { member: this.options.stream, offset: this.opOffset });
  }

  private need(length: number): void {
    if (length < 0 || this.pos + length > this.bytes.length) {
      this.fail("TRUNCATED", `opcode at byte ${this.opOffset} needs ${length} bytes but only ${this.bytes.length - this.pos} remain`);
    }
  }

  private take(length: number): Uint8Array {
    this.need(length);
    const out = this.bytes.subarray(this.pos, this.pos + length);
    this.pos += length;
    return out;
  }

  private u8(): number {
    this.need(1);
    return this.bytes[this.pos++] ?? 0;
  }

  private uint(width: 1 | 2 | 4 | 8): number {
    this.need(width);
    let v = 0;
    for (let i = width - 1; i >= 0; i--) v = v * 256 + (this.bytes[this.pos + i] ?? 0);
    this.pos += width;
    return v; // for width 8 a length > 2^53 is far beyond any file and fails need() next
  }

  private int32(): number {
    this.need(4);
    const v = this.view.getInt32(this.pos, true);
    this.pos += 4;
    return v;
  }

  private line(): string {
    const nl = this.bytes.indexOf(0x0a, this.pos);
    if (nl < 0) this.fail("TRUNCATED", "text argument has no terminating newline");
    const text = Buffer.from(this.bytes.buffer, this.bytes.byteOffset + this.pos, nl - this.pos).toString("latin1");
    this.pos = nl + 1;
    return text;
  }

  private text(length: number): string {
    this.need(length);
    const text = this.decoder.decode(this.plain.subarray(this.pos, this.pos + length));
    this.pos += length;
    return text;
  }

  // ----- stack helpers -----

  private push(value: PickleValue): void {
    this.stack.push(value);
  }

  private pop(): PickleValue {
    const v = this.stack.pop();
    if (v === undefined) this.fail("PICKLE_MALFORMED", "stack underflow");
    if (v === MARK) this.fail("PICKLE_MALFORMED", "unexpected MARK on the stack");
    return v;
  }

  private top(): PickleValue {
    const v = this.stack[this.stack.length - 1];
    if (v === undefined || v === MARK) this.fail("PICKLE_MALFORMED", "stack underflow");
    return v;
  }

  private popMark(): PickleValue[] {
    const at = this.stack.lastIndexOf(MARK);
    if (at < 0) this.fail("PICKLE_MALFORMED", "no MARK on the stack");
    const items = this.stack.splice(at) as PickleValue[];
    items.shift();
    return items;
  }

  private site(): PickleSite {
    return { offset: this.opOffset, stream: this.options.stream };
  }

  // ----- globals and calls -----

  private global(module: string, name: string): GlobalRef {
    const ref: GlobalRef = { kind: "global", module, name };
    const key = `${module}.${name}`;
    if (!this.options.reducers.has(key) && !this.options.referenceOnly.has(key) && !this.options.guardedCalls?.has(key)) {
      const use: UnsafeGlobalUse = { module, name, use: "reference", site: this.site() };
      this.unsafe.push(use);
      this.unsafeByRef.set(ref, use);
    }
    return ref;
  }

  private call(callable: PickleValue, args: PickleValue[]): PickleValue {
    if (isGlobal(callable)) {
      const reducer = this.options.reducers.get(`${callable.module}.${callable.name}`);
      if (reducer) return reducer(args, this.site());
      const guard = this.options.guardedCalls?.get(`${callable.module}.${callable.name}`);
      if (guard) {
        const value = guard(args, this.site());
        if (value !== undefined) return value;
        this.unsafe.push({ module: callable.module, name: callable.name, use: "call", site: this.site() });
        return { kind: "object", cls: callable, args };
      }
      const flagged = this.unsafeByRef.get(callable);
      if (flagged) flagged.use = "call";
      return { kind: "object", cls: callable, args };
    }
    // Calling something that is not a named global (a value built earlier) is how
    // exploit chains like getattr(...)(...) run; it is never data.
    const cls: GlobalRef = { kind: "global", module: "<value>", name: describeCallable(callable) };
    this.unsafe.push({ module: cls.module, name: cls.name, use: "call", site: this.site() });
    return { kind: "object", cls, args };
  }

  private build(target: PickleValue, state: PickleValue): void {
    if (target !== null && typeof target === "object" && !Array.isArray(target)) {
      if (target.kind === "object") {
        target.state = state;
        return;
      }
      if (target.kind === "dict" || target.kind === "tensor") return; // OrderedDict/_metadata state: data only
    }
    this.fail("PICKLE_MALFORMED", "BUILD on a value that has no state");
  }

  private dictOf(value: PickleValue): PickleDict {
    if (value !== null && typeof value === "object" && !Array.isArray(value) && value.kind === "dict") return value;
    if (value !== null && typeof value === "object" && !Array.isArray(value) && value.kind === "object") {
      // A dict subclass built by an allowlisted reducer keeps its items as state.
      const dict: PickleDict = { kind: "dict", entries: [], className: `${value.cls.module}.${value.cls.name}` };
      value.state = dict;
      return dict;
    }
    return this.fail("PICKLE_MALFORMED", "SETITEM(S) on a value that is not a dict");
  }

  private listOf(value: PickleValue): PickleValue[] {
    if (Array.isArray(value)) return value;
    if (value !== null && typeof value === "object" && "kind" in value && value.kind === "set") return value.items;
    return this.fail("PICKLE_MALFORMED", "APPEND(S)/ADDITEMS on a value that is not a list or set");
  }

  private memoGet(index: number): PickleValue {
    const v = this.memo.get(index);
    if (v === undefined) this.fail("PICKLE_MALFORMED", `memo value ${index} not found`);
    return v;
  }

  // ----- the opcode table -----

  private step(op: number): void {
    switch (op) {
      case 0x80: { // PROTO
        this.protocol = this.u8();
        if (this.protocol > 5) this.fail("FUTURE_VERSION", `pickle protocol ${this.protocol} is newer than 5`);
        return;
      }
      case 0x95: { // FRAME: a length hint only; check it fits, then read on
        const len = this.uint(8);
        if (this.pos + len > this.bytes.length) this.fail("TRUNCATED", `frame of ${len} bytes runs past the end`);
        return;
      }
      case 0x28: this.stack.push(MARK); return; // MARK
      case 0x30: this.pop(); return; // POP
      case 0x31: this.popMark(); return; // POP_MARK
      case 0x32: this.push(this.top()); return; // DUP
      case 0x4e: this.push(null); return; // NONE
      case 0x88: this.push(true); return; // NEWTRUE
      case 0x89: this.push(false); return; // NEWFALSE
      case 0x49: this.push(parseIntLine(this.line(), { offset: this.opOffset })); return; // INT
      case 0x4c: this.push(parseLongLine(this.line(), { offset: this.opOffset })); return; // LONG
      case 0x4a: this.push(this.int32()); return; // BININT
      case 0x4b: this.push(this.u8()); return; // BININT1
      case 0x4d: this.push(this.uint(2)); return; // BININT2
      case 0x8a: this.push(decodeLong(this.take(this.u8()))); return; // LONG1
      case 0x8b: { // LONG4
        const n = this.int32();
        if (n < 0) this.fail("PICKLE_MALFORMED", "LONG4 with negative length");
        this.push(decodeLong(this.take(n)));
        return;
      }
      case 0x46: this.push(parseFloatLine(this.line(), { offset: this.opOffset })); return; // FLOAT
      case 0x47: { this.need(8); const v = this.view.getFloat64(this.pos, false); this.pos += 8; this.push(v); return; } // BINFLOAT
      case 0x53: this.push(parseQuotedString(this.line(), { offset: this.opOffset })); return; // STRING
      case 0x54: { // BINSTRING (signed 4-byte length)
        const n = this.int32();
        if (n < 0) this.fail("PICKLE_MALFORMED", "BINSTRING with negative length");
        this.push(this.text(n));
        return;
      }
      case 0x55: this.push(this.text(this.u8())); return; // SHORT_BINSTRING
      case 0x56: this.push(unescapePython(this.line())); return; // UNICODE (raw-unicode-escape)
      case 0x58: this.push(this.text(this.uint(4))); return; // BINUNICODE
      case 0x8c: this.push(this.text(this.u8())); return; // SHORT_BINUNICODE
      case 0x8d: this.push(this.text(this.uint(8))); return; // BINUNICODE8
      case 0x42: this.push({ kind: "bytes", bytes: this.take(this.uint(4)) }); return; // BINBYTES
      case 0x43: this.push({ kind: "bytes", bytes: this.take(this.u8()) }); return; // SHORT_BINBYTES
      case 0x8e: this.push({ kind: "bytes", bytes: this.take(this.uint(8)) }); return; // BINBYTES8
      case 0x96: this.push({ kind: "bytes", bytes: this.take(this.uint(8)) }); return; // BYTEARRAY8
      case 0x97: this.fail("PICKLE_UNSUPPORTED", "NEXT_BUFFER needs out-of-band buffers, which checkpoints never carry"); // NEXT_BUFFER
      case 0x98: return; // READONLY_BUFFER: a flag on the top buffer
      case 0x5d: this.push([]); return; // EMPTY_LIST
      case 0x6c: this.push(this.popMark()); return; // LIST
      case 0x29: this.push({ kind: "tuple", items: [] }); return; // EMPTY_TUPLE
      case 0x74: this.push({ kind: "tuple", items: this.popMark() }); return; // TUPLE
      case 0x85: this.push({ kind: "tuple", items: [this.pop()] }); return; // TUPLE1
      case 0x86: { const b = this.pop(); const a = this.pop(); this.push({ kind: "tuple", items: [a, b] }); return; } // TUPLE2
      case 0x87: { const c = this.pop(); const b = this.pop(); const a = this.pop(); this.push({ kind: "tuple", items: [a, b, c] }); return; } // TUPLE3
      case 0x7d: this.push({ kind: "dict", entries: [] }); return; // EMPTY_DICT
      case 0x64: this.push({ kind: "dict", entries: pairs(this.popMark(), () => this.fail("PICKLE_MALFORMED", "DICT with an odd number of items")) }); return; // DICT
      case 0x8f: this.push({ kind: "set", items: [], frozen: false }); return; // EMPTY_SET
      case 0x91: this.push({ kind: "set", items: this.popMark(), frozen: true }); return; // FROZENSET
      case 0x61: { const v = this.pop(); this.listOf(this.top()).push(v); return; } // APPEND
      case 0x65: case 0x90: { const items = this.popMark(); const list = this.listOf(this.top()); for (const item of items) list.push(item); return; } // APPENDS, ADDITEMS
      case 0x73: { const v = this.pop(); const k = this.pop(); this.dictOf(this.top()).entries.push([k, v]); return; } // SETITEM
      case 0x75: { // SETITEMS
        const items = this.popMark();
        const dict = this.dictOf(this.top());
        for (const pair of pairs(items, () => this.fail("PICKLE_MALFORMED", "SETITEMS with an odd number of items"))) dict.entries.push(pair);
        return;
      }
      case 0x67: this.push(this.memoGet(this.memoIndexLine())); return; // GET
      case 0x68: this.push(this.memoGet(this.u8())); return; // BINGET
      case 0x6a: this.push(this.memoGet(this.uint(4))); return; // LONG_BINGET
      case 0x70: this.memo.set(this.memoIndexLine(), this.top()); return; // PUT
      case 0x71: this.memo.set(this.u8(), this.top()); return; // BINPUT
      case 0x72: this.memo.set(this.uint(4), this.top()); return; // LONG_BINPUT
      case 0x94: this.memo.set(this.memo.size, this.top()); return; // MEMOIZE
      case 0x63: { const module = this.line(); const name = this.line(); this.push(this.global(module, name)); return; } // GLOBAL
      case 0x93: { // STACK_GLOBAL
        const name = this.pop();
        const module = this.pop();
        if (typeof module !== "string" || typeof name !== "string") this.fail("PICKLE_MALFORMED", "STACK_GLOBAL needs two strings");
        this.push(this.global(module, name));
        return;
      }
      case 0x52: { // REDUCE
        const args = this.pop();
        const callable = this.pop();
        this.push(this.call(callable, tupleItems(args, () => this.fail("PICKLE_MALFORMED", "REDUCE arguments are not a tuple"))));
        return;
      }
      case 0x81: { // NEWOBJ
        const args = this.pop();
        const cls = this.pop();
        this.push(this.call(cls, tupleItems(args, () => this.fail("PICKLE_MALFORMED", "NEWOBJ arguments are not a tuple"))));
        return;
      }
      case 0x92: { // NEWOBJ_EX
        this.pop(); // kwargs
        const args = this.pop();
        const cls = this.pop();
        this.push(this.call(cls, tupleItems(args, () => this.fail("PICKLE_MALFORMED", "NEWOBJ_EX arguments are not a tuple"))));
        return;
      }
      case 0x69: { // INST
        const module = this.line();
        const name = this.line();
        const args = this.popMark();
        this.push(this.call(this.global(module, name), args));
        return;
      }
      case 0x6f: { // OBJ
        const items = this.popMark();
        const cls = items.shift();
        if (cls === undefined) this.fail("PICKLE_MALFORMED", "OBJ without a class");
        this.push(this.call(cls, items));
        return;
      }
      case 0x62: { const state = this.pop(); this.build(this.top(), state); return; } // BUILD
      case 0x50: this.push(this.persistent(this.line())); return; // PERSID
      case 0x51: this.push(this.persistent(this.pop())); return; // BINPERSID
      case 0x82: case 0x83: case 0x84: { // EXT1, EXT2, EXT4: copyreg's extension registry can name any callable
        const code = op === 0x82 ? this.u8() : op === 0x83 ? this.uint(2) : this.uint(4);
        this.unsafe.push({ module: "copyreg.extension", name: String(code), use: "extension", site: this.site() });
        this.push({ kind: "global", module: "copyreg.extension", name: String(code) });
        return;
      }
      default:
        this.fail("PICKLE_MALFORMED", `unknown opcode 0x${op.toString(16).padStart(2, "0")} at byte ${this.opOffset}`);
    }
  }

  private memoIndexLine(): number {
    const v = parseLongLine(this.line(), { offset: this.opOffset });
    return Number(v);
  }

  private persistent(pid: PickleValue): PickleValue {
    if (!this.options.persistentLoad) this.fail("PICKLE_MALFORMED", "persistent id in a pickle that has no external storages");
    return this.options.persistentLoad(pid, this.site());
  }
}

function isGlobal(value: PickleValue): value is GlobalRef {
  return value !== null && typeof value === "object" && !Array.isArray(value) && value.kind === "global";
}

function describeCallable(value: PickleValue): string {
  if (value !== null && typeof value === "object" && !Array.isArray(value) && value.kind === "object") {
    return `result of ${value.cls.module}.${value.cls.name}(...)`;
  }
  return "a non-global value";
}

function tupleItems(value: PickleValue, onError: () => never): PickleValue[] {
  if (value !== null && typeof value === "object" && !Array.isArray(value) && value.kind === "tuple") return value.items;
  return onError();
}

function pairs(items: PickleValue[], onOdd: () => never): Array<[PickleValue, PickleValue]> {
  if (items.length % 2 !== 0) onOdd();
  const out: Array<[PickleValue, PickleValue]> = [];
  for (let i = 0; i < items.length; i += 2) out.push([items[i] as PickleValue, items[i + 1] as PickleValue]);
  return out;
}

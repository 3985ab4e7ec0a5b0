/**
 * Builds small zip files for tests, byte by byte after APPNOTE.TXT, with stored and deflated
 * members, torch-style 64-byte alignment, data descriptors and zip64 records, and lets a
 * test lie in the central directory or local header about any recorded field.
 */
import { crc32 } from "@node-rs/crc32";
import { deflateRawSync } from "node:zlib";

/** Fields a test may override in a header to make it lie. */
export interface RecordedFields {
  crc32: number;
  compressedSize: number;
  uncompressedSize: number;
  localHeaderOffset: number;
  method: number;
  flags: number;
}

export interface ZipEntrySpec {
  name: string;
  /** Uncompressed content. */
  data: Buffer;
  /** 0 stored (default) or 8 deflated. */
  method?: 0 | 8;
  /** Bytes written as the member's data instead of `data` (deflated when method 8). */
  rawData?: Buffer;
  /** Sets flag bit 3: zeros in the local header, real values in a descriptor after the data. */
  dataDescriptor?: boolean;
  /** Writes sizes (and offset) through zip64 extra fields even when they fit in 32 bits. */
  zip64?: boolean;
  /** Pads the local extra field (id "FB", as torch does) so the data starts at a multiple of this. */
  alignTo?: number;
  /** Values the central directory records instead of the true ones. */
  central?: Partial<RecordedFields>;
  /** Values the local header records instead of the true ones. */
  local?: Partial<Omit<RecordedFields, "localHeaderOffset">> & { name?: string };
}

export interface ZipSpec {
  entries: ZipEntrySpec[];
  /** Writes zip64 end records, with the classic EOCD holding only 0xFFFF/0xFFFFFFFF placeholders. */
  zip64?: boolean;
  comment?: string;
}

/** Where the builder put things, so a test can corrupt exact bytes. */
export interface ZipLayout {
  entries: Array<{ localHeaderOffset: number; dataOffset: number; centralHeaderOffset: number }>;
  centralDirectoryOffset: number;
  centralDirectorySize: number;
  eocdOffset: number;
}

const MAX32 = 0xffffffff;

export function buildZip(spec: ZipSpec): { bytes: Buffer; layout: ZipLayout } {
  const parts: Buffer[] = [];
  let size = 0;
  const push = (part: Buffer): void => {
    parts.push(part);
    size += part.length;
  };
  const written: Array<{ spec: ZipEntrySpec; truth: RecordedFields }> = [];
  const layout: ZipLayout = { entries: [], centralDirectoryOffset: 0, centralDirectorySize: 0, eocdOffset: 0 };

  for (const entry of spec.entries) {
    const method = entry.method ?? 0;
    const payload = entry.rawData ?? (method === 8 ? deflateRawSync(entry.data) : entry.data);
    const truth: RecordedFields = {
      crc32: crc32(entry.data),
      compressedSize: payload.length,
      uncompressedSize: entry.data.length,
      localHeaderOffset: size,
      method,
      flags: 0x800 | (entry.dataDescriptor === true ? 8 : 0),
    };
    const header = localHeader(entry, truth, size);
    push(header);
    layout.entries.push({ localHeaderOffset: truth.localHeaderOffset, dataOffset: size, centralHeaderOffset: 0 });
    push(payload);
    if (entry.dataDescriptor === true) push(dataDescriptor(truth, entry.zip64 === true));
    written.push({ spec: entry, truth });
  }

  layout.centralDirectoryOffset = size;
  written.forEach(({ spec: entry, truth }, index) => {
    const slot = layout.entries[index];
    if (slot !== undefined) slot.centralHeaderOffset = size;
    push(centralHeader(entry, { ...truth, ...entry.central }));
  });
  layout.centralDirectorySize = size - layout.centralDirectoryOffset;
  const comment = Buffer.from(spec.comment ?? "", "utf8");
  if (spec.zip64 === true) push(zip64EndRecords(size, written.length, layout));
  layout.eocdOffset = size;
  push(endOfCentralDirectory(spec.zip64 === true, written.length, layout, comment));
  return { bytes: Buffer.concat(parts), layout };
}

function localHeader(entry: ZipEntrySpec, truth: RecordedFields, offset: number): Buffer {
  const fields = { ...truth, ...entry.local };
  const name = Buffer.from(entry.local?.name ?? entry.name, "utf8");
  const descriptor = entry.dataDescriptor === true;
  const zip64 = entry.zip64 === true;
  const sized = (value: number): number => (descriptor ? 0 : zip64 ? MAX32 : value);
  const extras: Buffer[] = [];
  if (zip64) extras.push(extraField(0x0001, u64(descriptor ? 0 : fields.uncompressedSize), u64(descriptor ? 0 : fields.compressedSize)));
  if (entry.alignTo !== undefined) {
    const before = offset + 30 + name.length + extras.reduce((n, e) => n + e.length, 0) + 4;
    const pad = (entry.alignTo - (before % entry.alignTo)) % entry.alignTo;
    extras.push(extraField(0x4246, Buffer.alloc(pad, "Z"))); // "FB", torch's padding record
  }
  const extra = Buffer.concat(extras);
  const header = Buffer.alloc(30);
  header.writeUInt32LE(0x04034b50, 0);
  header.writeUInt16LE(zip64 ? 45 : 20, 4);
  header.writeUInt16LE(fields.flags, 6);
  header.writeUInt16LE(fields.method, 8);
  header.writeUInt32LE(descriptor ? 0 : fields.crc32, 14);
  header.writeUInt32LE(sized(fields.compressedSize), 18);
  header.writeUInt32LE(sized(fields.uncompressedSize), 22);
  header.writeUInt16LE(name.length, 26);
  header.writeUInt16LE(extra.length, 28);
  return Buffer.concat([header, name, extra]);
}

function dataDescriptor(truth: RecordedFields, zip64: boolean): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32LE(0x08074b50, 0);
  head.writeUInt32LE(truth.crc32, 4);
  if (zip64) return Buffer.concat([head, u64(truth.compressedSize), u64(truth.uncompressedSize)]);
  return Buffer.concat([head, u32(truth.compressedSize), u32(truth.uncompressedSize)]);
}

/** Central entry; values that do not fit in 32 bits (or all, with `zip64`) go to a zip64 extra. */
function centralHeader(entry: ZipEntrySpec, fields: RecordedFields): Buffer {
  const name = Buffer.from(entry.name, "utf8");
  const force = entry.zip64 === true;
  const wide: Buffer[] = [];
  const place = (value: number): number => {
    if (!force && value < MAX32) return value;
    wide.push(u64(value));
    return MAX32;
  };
  const uncompressed = place(fields.uncompressedSize);
  const compressed = place(fields.compressedSize);
  const offset = place(fields.localHeaderOffset);
  const extra = wide.length > 0 ? extraField(0x0001, ...wide) : Buffer.alloc(0);
  const header = Buffer.alloc(46);
  header.writeUInt32LE(0x02014b50, 0);
  header.writeUInt16LE(45, 4);
  header.writeUInt16LE(wide.length > 0 ? 45 : 20, 6);
  header.writeUInt16LE(fields.flags, 8);
  header.writeUInt16LE(fields.method, 10);
  header.writeUInt32LE(fields.crc32 >>> 0, 16);
  header.writeUInt32LE(compressed, 20);
  header.writeUInt32LE(uncompressed, 24);
  header.writeUInt16LE(name.length, 28);
  header.writeUInt16LE(extra.length, 30);
  header.writeUInt32LE(offset, 42);
  return Buffer.concat([header, name, extra]);
}

function zip64EndRecords(offset: number, count: number, layout: ZipLayout): Buffer {
  const record = Buffer.alloc(56);
  record.writeUInt32LE(0x06064b50, 0);
  record.writeBigUInt64LE(44n, 4);
  record.writeUInt16LE(45, 12);
  record.writeUInt16LE(45, 14);
  record.writeBigUInt64LE(BigInt(count), 24);
  record.writeBigUInt64LE(BigInt(count), 32);
  record.writeBigUInt64LE(BigInt(layout.centralDirectorySize), 40);
  record.writeBigUInt64LE(BigInt(layout.centralDirectoryOffset), 48);
  const locator = Buffer.alloc(20);
  locator.writeUInt32LE(0x07064b50, 0);
  locator.writeBigUInt64LE(BigInt(offset), 8);
  locator.writeUInt32LE(1, 16);
  return Buffer.concat([record, locator]);
}

function endOfCentralDirectory(zip64: boolean, count: number, layout: ZipLayout, comment: Buffer): Buffer {
  const record = Buffer.alloc(22);
  record.writeUInt32LE(0x06054b50, 0);
  record.writeUInt16LE(zip64 ? 0xffff : count, 8);
  record.writeUInt16LE(zip64 ? 0xffff : count, 10);
  record.writeUInt32LE(zip64 ? MAX32 : layout.centralDirectorySize, 12);
  record.writeUInt32LE(zip64 ? MAX32 : layout.centralDirectoryOffset, 16);
  record.writeUInt16LE(comment.length, 20);
  return Buffer.concat([record, comment]);
}

function extraField(id: number, ...values: Buffer[]): Buffer {
  const body = Buffer.concat(values);
  const head = Buffer.alloc(4);
  head.writeUInt16LE(id, 0);
  head.writeUInt16LE(body.length, 2);
  return Buffer.concat([head, body]);
}

function u64(value: number): Buffer {
  const out = Buffer.alloc(8);
  out.writeBigUInt64LE(BigInt(value));
  return out;
}

function u32(value: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32LE(value);
  return out;
}

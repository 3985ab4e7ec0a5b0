import { createHash } from "node:crypto";
import { open } from "node:fs/promises";

/** Bytes hashed per read: one buffer, reused, so memory stays flat for a file of any size. */
const CHUNK_BYTES = 1 << 20;

/** SHA-256 of a file's bytes, as `sha256sum` prints it. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  const buffer = Buffer.allocUnsafe(CHUNK_BYTES);
  const handle = await open(path, "r");
  try {
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, CHUNK_BYTES, null);
      if (bytesRead === 0) break;
      hash.update(buffer.subarray(0, bytesRead));
    }
  } finally {
    await handle.close();
  }
  return hash.digest("hex");
}

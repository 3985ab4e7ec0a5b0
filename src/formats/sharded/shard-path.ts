import { isAbsolute, posix, win32 } from "node:path";

/**
 * A shard name comes from untrusted bytes (an HF index's weight_map, a DCP `_StorageInfo`),
 * and loaders join it to the checkpoint directory as is: `"../../x.bin"` or `"/etc/x"` would
 * make them read, and for a `.bin` shard unpickle, a file nobody verified. Such a name is
 * refused; the reason is returned, or undefined for a name that stays inside the directory.
 */
export function shardNameProblem(name: string): string | undefined {
  if (name === "") return "is empty";
  if (name.includes("\0")) return "contains a NUL byte";
  if (isAbsolute(name) || posix.isAbsolute(name) || win32.isAbsolute(name)) return "is an absolute path";
  if (name.split(/[\\/]/).some((part) => part === "..")) return "climbs out of the checkpoint directory (..)";
  return undefined;
}


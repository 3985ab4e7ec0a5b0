import { createHash } from "node:crypto";
import { FileSource } from "../formats/file-source.js";
import { detectLayout } from "../formats/layout.js";
import type { CheckpointModel } from "../formats/model.js";
import { hashTensor } from "../formats/tensor-hash.js";

/**
 * A digest of a checkpoint's model weights, equal for two checkpoints exactly when their
 * weights are (up to CRC-32 collisions for torch zip files). check-run compares adjacent
 * checkpoints with it: identical weights a step apart mean training did not update them.
 * A torch zip already records each storage's CRC-32 in its central directory, so there
 * it costs nothing; other formats hash their tensors' elements.
 */
export async function weightsFingerprint(model: CheckpointModel): Promise<string | undefined> {
  const { modelPath } = detectLayout(model);
  if (modelPath === undefined) return undefined;
  const prefix = modelPath === "" ? "" : `${modelPath}.`;
  const tensors = model.tensors.filter((t) => t.path.startsWith(prefix));
  if (tensors.length === 0) return undefined;
  const digest = createHash("sha256");
  const members = new Map(model.members.map((m) => [m.name, m]));
  if (model.format === "torch-zip" && tensors.every((t) => t.storage.member !== undefined && members.has(t.storage.member))) {
    for (const t of tensors) {
      const member = members.get(t.storage.member!)!;
      digest.update(`${t.path}\0${t.dtype}\0${t.shape.join(",")}\0${t.stride.join(",")}\0${t.storageOffset}\0${member.crc32}\0${member.uncompressedSize}\n`);
    }
    return digest.digest("hex");
  }
  const source = await FileSource.open(model.path, model.fileSize);
  try {
    for (const t of tensors) digest.update(`${t.path}\0${t.dtype}\0${t.shape.join(",")}\0${await hashTensor(source, t)}\n`);
  } finally {
    await source.close();
  }
  return digest.digest("hex");
}

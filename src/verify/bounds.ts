import { DTYPE_SIZE, elementCount, type CheckpointModel } from "../formats/model.js";
import { maxIndex } from "../formats/tensor-hash.js";
import { problem, type Problem } from "./report.js";

/** Every tensor's elements lie inside its storage, and every storage inside the file. */
export function boundsProblems(model: CheckpointModel): Problem[] {
  const out: Problem[] = [];
  for (const storage of model.storages) {
    const size = DTYPE_SIZE[storage.dtype];
    if (!storage.bytes) continue; // reported per tensor below
    const { offset, length } = storage.bytes;
    if (offset + length > model.fileSize) {
      out.push(problem("STORAGE_OUT_OF_BOUNDS", `storage ${storage.key} needs bytes ${offset}..${offset + length} but the file ends at ${model.fileSize}`, storageWhere(storage.member, offset)));
    }
    if (length % size !== 0 || (storage.declaredElements !== undefined && storage.declaredElements * size !== length && model.format !== "torch-legacy")) {
      out.push(problem("STORAGE_SIZE_MISMATCH", `storage ${storage.key} holds ${length} bytes; ${storage.declaredElements ?? "?"} ${storage.dtype} elements need ${(storage.declaredElements ?? 0) * size}`, storageWhere(storage.member, offset)));
    }
  }
  for (const tensor of model.tensors) {
    const count = elementCount(tensor.shape);
    if (count === 0) continue;
    const storage = tensor.storage;
    if (!storage.bytes) {
      out.push(problem("STORAGE_MISSING", `tensor ${tensor.path}: storage ${storage.key} is not in the file`, { path: tensor.path }));
      continue;
    }
    const capacity = Math.floor(storage.bytes.length / DTYPE_SIZE[storage.dtype]);
    const last = tensor.storageOffset + maxIndex(tensor.shape, tensor.stride);
    if (last >= capacity) {
      out.push(problem("STORAGE_OUT_OF_BOUNDS", `tensor ${tensor.path} ${JSON.stringify(tensor.shape)} reaches element ${last} of storage ${storage.key}, which has ${capacity}`, { path: tensor.path }));
    }
  }
  return out;
}

function storageWhere(member: string | undefined, offset: number): { member?: string; offset: number } {
  return member === undefined ? { offset } : { member, offset };
}

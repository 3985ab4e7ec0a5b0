import { CkptError } from "../errors.js";
import type { DType, PickleSite, PickleValue, StorageRecord, TensorRef } from "./model.js";
import { genericReducers, REFERENCE_ONLY, STORAGE_CLASS_DTYPES } from "./pickle/allowlist.js";
import type { PickleOptions, Reducer } from "./pickle/machine.js";

/**
 * The torch-specific half of unpickling: persistent ids become StorageRecords and the
 * `_rebuild_*` functions become TensorRefs, exactly the arguments torch's
 * torch/_utils.py would receive, kept as data.
 */

/** Locates a storage's bytes: zip member `data/<key>` or a legacy offset. */
export type StorageLocator = (key: string, dtype: DType, declaredElements: number, site: PickleSite) => StorageRecord;

export function torchPickleOptions(stream: string, locate: StorageLocator): PickleOptions {
  const storages = new Map<string, StorageRecord>();
  const reducers = genericReducers();
  const persistentLoad = (pid: PickleValue, site: PickleSite): PickleValue => {
    const items = tupleItems(pid);
    // zip:    ('storage', storage_type, key, location, numel)               torch/serialization.py persistent_id
    // legacy: ('storage', storage_type, root_key, location, numel, view_metadata)
    if (!items || items[0] !== "storage" || items.length < 5) {
      throw new CkptError("PICKLE_MALFORMED", `unknown persistent id at byte ${site.offset}`, { member: site.stream, offset: site.offset });
    }
    const [, storageType, key, , numel] = items;
    const dtype = storageDtype(storageType);
    if (typeof key !== "string" || typeof numel !== "number" || dtype === undefined) {
      throw new CkptError("PICKLE_MALFORMED", `malformed storage persistent id at byte ${site.offset}`, { member: site.stream, offset: site.offset });
    }
    let storage = storages.get(key);
    if (!storage) {
      storage = locate(key, dtype, numel, site);
      storages.set(key, storage);
    }
    return { kind: "storage", storage };
  };

  const rebuildTensor = (args: PickleValue[], site: PickleSite): TensorRef => {
    const [storageRef, offset, size, stride, requiresGrad] = args;
    if (storageRef === null || typeof storageRef !== "object" || Array.isArray(storageRef) || storageRef.kind !== "storage") {
      throw new CkptError("PICKLE_MALFORMED", `tensor rebuild at byte ${site.offset} has no storage`, { member: site.stream, offset: site.offset });
    }
    return {
      kind: "tensor",
      dtype: storageRef.storage.dtype,
      shape: intList(size, site),
      stride: intList(stride, site),
      storageOffset: typeof offset === "number" ? offset : 0,
      storage: storageRef.storage,
      requiresGrad: requiresGrad === true,
      isParameter: false,
    };
  };
  const rebuildParameter = (args: PickleValue[], site: PickleSite): PickleValue => {
    const data = args[0];
    if (data !== null && typeof data === "object" && !Array.isArray(data) && data.kind === "tensor") {
      return { ...data, isParameter: true, requiresGrad: args[1] === true };
    }
    throw new CkptError("PICKLE_MALFORMED", `parameter rebuild at byte ${site.offset} has no tensor`, { member: site.stream, offset: site.offset });
  };
  const rebuildFromType: Reducer = (args, site) => {
    // _rebuild_from_type_v2(func, new_type, args, state): torch/_tensor.py
    const [func, , innerArgs] = args;
    const inner = tupleItems(innerArgs ?? null);
    if (func !== null && typeof func === "object" && !Array.isArray(func) && func.kind === "global" && inner) {
      const reducer = reducers.get(`${func.module}.${func.name}`);
      if (reducer) return reducer(inner, site);
    }
    return { kind: "object", cls: { kind: "global", module: "torch._tensor", name: "_rebuild_from_type_v2" }, args };
  };
  const inertObject = (name: string): Reducer => (args) => ({ kind: "object", cls: { kind: "global", module: "torch._utils", name }, args });

  reducers.set("torch._utils._rebuild_tensor_v2", rebuildTensor);
  reducers.set("torch._utils._rebuild_tensor", rebuildTensor);
  reducers.set("torch._utils._rebuild_parameter", rebuildParameter);
  reducers.set("torch._utils._rebuild_parameter_with_state", rebuildParameter);
  reducers.set("torch._tensor._rebuild_from_type_v2", rebuildFromType);
  reducers.set("torch._tensor._rebuild_from_type", rebuildFromType);
  // Tensors without a plain storage: kept as inert objects (no bytes to check).
  for (const name of ["_rebuild_qtensor", "_rebuild_sparse_tensor", "_rebuild_sparse_csr_tensor", "_rebuild_meta_tensor_no_storage", "_rebuild_device_tensor_from_numpy", "_rebuild_nested_tensor", "_rebuild_wrapper_subclass"]) {
    reducers.set(`torch._utils.${name}`, inertObject(name));
  }
  return { stream, reducers, referenceOnly: REFERENCE_ONLY, persistentLoad };
}

function storageDtype(storageType: PickleValue | undefined): DType | undefined {
  if (storageType === null || storageType === undefined || typeof storageType !== "object" || Array.isArray(storageType)) return undefined;
  if (storageType.kind === "global") return STORAGE_CLASS_DTYPES[storageType.name] as DType | undefined;
  return undefined;
}

function tupleItems(value: PickleValue): PickleValue[] | undefined {
  if (value !== null && typeof value === "object" && !Array.isArray(value) && value.kind === "tuple") return value.items;
  return undefined;
}

function intList(value: PickleValue | undefined, site: PickleSite): number[] {
  const items = value === undefined ? undefined : Array.isArray(value) ? value : tupleItems(value);
  if (!items || !items.every((v): v is number => typeof v === "number" && Number.isInteger(v) && v >= 0)) {
    throw new CkptError("PICKLE_MALFORMED", `tensor size/stride at byte ${site.offset} is not a list of non-negative integers`, {
      member: site.stream,
      offset: site.offset,
    });
  }
  return items;
}

/**
 * Layout detection on checkpoints written by real torch in each layout, as `inspect --json`
 * shows it, and the Hugging Face Trainer directory reader.
 */
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { detectHfTrainerDir } from "../../src/formats/hf-trainer.js";
import { detectLayout } from "../../src/formats/layout.js";
import { readCheckpoint } from "../../src/formats/open.js";
import type { LayoutJson } from "../../src/inspect/inspect.js";
import { contentCheckpoints } from "../helpers/content.js";
import { runCli, TEST_TMP } from "../helpers/torch.js";

const FIXTURES = "../shared/fixtures/torch";
/** Net of make_content.py and the shared fixtures: 1,352 parameter elements + 17 buffer elements. */
const NET_ELEMENTS = 1369;
let dir = "";
let scratch = "";
before(async () => {
  dir = await contentCheckpoints();
  await mkdir(TEST_TMP, { recursive: true });
  scratch = await mkdtemp(join(TEST_TMP, "layout-"));
});
after(async () => {
  await rm(scratch, { recursive: true, force: true });
});

async function inspectLayout(path: string): Promise<LayoutJson> {
  const result = await runCli(["inspect", "--json", path]);
  assert.equal(result.code, 0, result.stderr);
  return (JSON.parse(result.stdout) as { layout: LayoutJson }).layout;
}

describe("inspect --json layout", () => {
  it("names a {model_state_dict, optimizer_state_dict, epoch, loss, config} dict a training checkpoint", async () => {
    assert.deepEqual(await inspectLayout(`${FIXTURES}/train_adam_v1.pt`), {
      name: "training", model_path: "model_state_dict", optimizer_path: "optimizer_state_dict",
      step: null, epoch: 3, loss: 0.2794644832611084, parameter_count: NET_ELEMENTS,
      parts: ["model", "optimizer", "epoch", "loss", "config"],
    });
  });

  it("shows which parts a training checkpoint lacks (missing_optimizer.pt has no optimizer)", async () => {
    const layout = await inspectLayout(`${FIXTURES}/missing_optimizer.pt`);
    assert.equal(layout.name, "training");
    assert.equal(layout.optimizer_path, null);
    assert.deepEqual(layout.parts, ["model", "epoch"]);
  });

  it("recognises nanoGPT's {model, optimizer, model_args, iter_num, best_val_loss, config}, counting tied weights once", async () => {
    assert.deepEqual(await inspectLayout(`${dir}/nanogpt.pt`), {
      name: "nanogpt", model_path: "model", optimizer_path: "optimizer",
      step: 2000, epoch: null, loss: 1.25, parameter_count: 64 * 32 + 32 + 32,
      parts: ["model", "optimizer", "step", "loss", "config"],
    });
  });

  it("recognises a Lightning .ckpt with its global_step, epoch and optimizer_states", async () => {
    assert.deepEqual(await inspectLayout(`${dir}/lightning.ckpt`), {
      name: "lightning", model_path: "state_dict", optimizer_path: "optimizer_states.0",
      step: 500, epoch: 4, loss: null, parameter_count: NET_ELEMENTS,
      parts: ["model", "optimizer", "scheduler", "epoch", "step", "config", "callbacks"],
    });
  });

  it("names a bare model.state_dict() a state_dict", async () => {
    assert.deepEqual(await inspectLayout(`${dir}/plain_state_dict.pt`), {
      name: "state_dict", model_path: "", optimizer_path: null, step: null, epoch: null, loss: null,
      parameter_count: NET_ELEMENTS, parts: ["model"],
    });
  });

  it("names anything else unknown", async () => {
    const layout = await inspectLayout(`${FIXTURES}/dtypes_views.pt`);
    assert.equal(layout.name, "unknown");
    assert.deepEqual(layout.parts, []);
  });

  it("prints the layout as the second line of the human view", async () => {
    const result = await runCli(["inspect", `${dir}/nanogpt.pt`]);
    assert.match(result.stdout.split("\n")[1] ?? "", /^layout: nanogpt {2}step 2000 {2}loss 1\.25 {2}2,112 parameters {2}parts: model, optimizer, step, loss, config$/);
  });
});

describe("detectLayout", () => {
  it("names a safetensors file safetensors-weights", async () => {
    const json = JSON.stringify({ "w": { dtype: "F32", shape: [2, 3], data_offsets: [0, 24] } });
    const padded = json + " ".repeat((8 - (json.length % 8)) % 8);
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(padded.length));
    const path = join(scratch, "model.safetensors");
    await writeFile(path, Buffer.concat([length, Buffer.from(padded), Buffer.alloc(24)]));
    const layout = detectLayout(await readCheckpoint(path, { checkCrc: false }));
    assert.deepEqual(layout, { name: "safetensors-weights", modelPath: "", parameterCount: 6, parts: ["model"] });
  });
});

describe("detectHfTrainerDir", () => {
  it("lists the parts of a checkpoint-N directory and reads trainer_state.json", async () => {
    const ckpt = join(scratch, "checkpoint-500");
    await mkdir(ckpt);
    for (const name of ["model.safetensors", "optimizer.pt", "scheduler.pt", "rng_state.pth", "training_args.bin"]) await writeFile(join(ckpt, name), "x");
    await writeFile(join(ckpt, "trainer_state.json"), JSON.stringify({
      global_step: 500, epoch: 1.5, best_metric: 0.42, best_model_checkpoint: "out/checkpoint-400",
      log_history: [{ loss: 2.5, step: 250 }, { eval_loss: 0.42, step: 400 }, { loss: 1.75, step: 500 }],
    }));
    const found = await detectHfTrainerDir(ckpt);
    assert.deepEqual(found?.layout, { name: "hf-trainer", parameterCount: 0, parts: ["model", "optimizer", "scheduler", "rng_state", "trainer_state", "training_args"], step: 500, epoch: 1.5, loss: 1.75 });
    assert.equal(found?.files.model, join(ckpt, "model.safetensors"));
    assert.equal(found?.trainerState?.best_metric, 0.42);
    assert.equal(found?.trainerState?.best_model_checkpoint, "out/checkpoint-400");
    assert.equal(found?.trainerState?.log_history.length, 3);
  });

  it("takes the step from the directory name and records why trainer_state.json was unusable", async () => {
    const ckpt = join(scratch, "checkpoint-42");
    await mkdir(ckpt);
    await writeFile(join(ckpt, "pytorch_model.bin"), "x");
    await writeFile(join(ckpt, "trainer_state.json"), "{ half-written");
    const found = await detectHfTrainerDir(ckpt);
    assert.equal(found?.layout.step, 42);
    assert.deepEqual(found?.layout.parts, ["model", "trainer_state"]);
    assert.equal(found?.trainerState, undefined);
    assert.equal(typeof found?.trainerStateError, "string");
  });

  it("returns undefined for a directory with neither a model nor trainer_state.json", async () => {
    const other = join(scratch, "logs");
    await mkdir(other);
    await writeFile(join(other, "events.txt"), "x");
    assert.equal(await detectHfTrainerDir(other), undefined);
  });
});

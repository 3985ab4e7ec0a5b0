#!/usr/bin/env python3
"""Write the checkpoints the content-rule and layout tests read, with real torch.

Usage: /usr/bin/python3 test/python/make_content.py OUTDIR

Each file is a real training artefact (a model trained one or two steps with a real
optimizer) with one thing taken away or changed, so the tests can name the defect:

  adam_ok.pt                      {epoch, step, model_state_dict, optimizer_state_dict (Adam), loss, config}
  adam_missing_exp_avg_sq.pt      Adam state of parameter 1 without exp_avg_sq
  adamw_amsgrad_ok.pt             AdamW(amsgrad=True), complete
  adamw_amsgrad_missing_max.pt    AdamW(amsgrad=True), parameter 0 without max_exp_avg_sq
  sgd_momentum_ok.pt              SGD(momentum=0.9), complete
  sgd_momentum_missing_buffer.pt  SGD(momentum=0.9), parameter 2 without momentum_buffer
  sgd_plain_ok.pt                 SGD without momentum (keeps no per-parameter state)
  param_without_state.pt          Adam state of parameter 3 removed entirely
  shape_mismatch.pt               Adam exp_avg/exp_avg_sq of parameter 1 (fc.weight, [8,16]) shaped [16,8]
  never_stepped.pt                Adam saved before its first step (empty state: complete as saved)
  group_without_state.pt          AdamW with 2 param groups, all state of group 1 removed
  nanogpt.pt                      nanoGPT's train.py dict, tied wte/lm_head weights, AdamW with 2 param groups
  lightning.ckpt                  Lightning-like dict, pytorch-lightning_version "9.0.0"
  lightning_old.ckpt              the same with pytorch-lightning_version "1.5.0"
  plain_state_dict.pt             model.state_dict() alone
  nested_config.pt                {model_state_dict, config: {model: {dims: [768, 128], name}}, dataset}
  nonfinite.pt                    float32/float16/bfloat16/float64 tensors with known NaN/Inf counts, a view, a 20 MB tensor
  nonfinite_legacy.pt             nonfinite.pt's tensors in the legacy format (storages not aligned)
  finite.pt                       the same tensors, all finite
"""
import copy
import os
import sys

import torch
from torch import nn


class Net(nn.Module):
    """The shared fixtures' model: emb [50,16], fc [8,16]+[8], bn [8]+[8] (+buffers), head [50,8]."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(50, 16)
        self.fc = nn.Linear(16, 8)
        self.bn = nn.BatchNorm1d(8)
        self.head = nn.Linear(8, 50, bias=False)

    def forward(self, x):
        return self.head(self.bn(self.fc(self.emb(x))))


def trained(optimizer_factory, steps=1):
    torch.manual_seed(0)
    model = Net()
    optimizer = optimizer_factory(model.parameters())
    for _ in range(steps):
        x = torch.randint(0, 50, (4,))
        loss = nn.functional.cross_entropy(model(x), x)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model, optimizer, float(loss)


def training_dict(model, optimizer, loss):
    # optimizer.state_dict() shares its per-parameter dicts with the optimizer; copy before editing.
    return copy.deepcopy({
        "epoch": 3,
        "step": 120,
        "model_state_dict": model.state_dict(),
        "optimizer_state_dict": optimizer.state_dict(),
        "loss": loss,
        "config": {"hidden_dim": 16, "vocab": 50, "lr": 0.001},
    })


def write_optimizer_cases(out):
    adam = lambda p: torch.optim.Adam(p, lr=1e-3)
    model, opt, loss = trained(adam)
    torch.save(training_dict(model, opt, loss), f"{out}/adam_ok.pt")

    ckpt = training_dict(model, opt, loss)
    del ckpt["optimizer_state_dict"]["state"][1]["exp_avg_sq"]
    torch.save(ckpt, f"{out}/adam_missing_exp_avg_sq.pt")

    ckpt = training_dict(model, opt, loss)
    del ckpt["optimizer_state_dict"]["state"][3]
    torch.save(ckpt, f"{out}/param_without_state.pt")

    ckpt = training_dict(model, opt, loss)
    state = ckpt["optimizer_state_dict"]["state"][1]
    state["exp_avg"] = state["exp_avg"].t().contiguous()
    state["exp_avg_sq"] = state["exp_avg_sq"].t().contiguous()
    torch.save(ckpt, f"{out}/shape_mismatch.pt")

    fresh = Net()
    torch.save(training_dict(fresh, torch.optim.Adam(fresh.parameters()), 0.0), f"{out}/never_stepped.pt")

    model, opt, loss = trained(lambda p: torch.optim.AdamW(p, lr=1e-3, amsgrad=True))
    torch.save(training_dict(model, opt, loss), f"{out}/adamw_amsgrad_ok.pt")
    ckpt = training_dict(model, opt, loss)
    del ckpt["optimizer_state_dict"]["state"][0]["max_exp_avg_sq"]
    torch.save(ckpt, f"{out}/adamw_amsgrad_missing_max.pt")

    model, opt, loss = trained(lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9), steps=2)
    torch.save(training_dict(model, opt, loss), f"{out}/sgd_momentum_ok.pt")
    ckpt = training_dict(model, opt, loss)
    del ckpt["optimizer_state_dict"]["state"][2]["momentum_buffer"]
    torch.save(ckpt, f"{out}/sgd_momentum_missing_buffer.pt")

    model, opt, loss = trained(lambda p: torch.optim.SGD(p, lr=0.1))
    torch.save(training_dict(model, opt, loss), f"{out}/sgd_plain_ok.pt")

    torch.save(model.state_dict(), f"{out}/plain_state_dict.pt")
    torch.save({
        "model_state_dict": model.state_dict(),
        "config": {"model": {"dims": [768, 128], "name": "tiny"}},
        "dataset": "kinematics",
    }, f"{out}/nested_config.pt")


class TinyGPT(nn.Module):
    """nanoGPT's weight tying: lm_head.weight is transformer.wte.weight."""

    def __init__(self):
        super().__init__()
        self.transformer = nn.ModuleDict({"wte": nn.Embedding(64, 32), "ln_f": nn.LayerNorm(32)})
        self.lm_head = nn.Linear(32, 64, bias=False)
        self.transformer.wte.weight = self.lm_head.weight

    def forward(self, x):
        return self.lm_head(self.transformer.ln_f(self.transformer.wte(x)))


def write_nanogpt(out):
    torch.manual_seed(0)
    model = TinyGPT()
    params = {n: p for n, p in model.named_parameters()}
    # nanoGPT's configure_optimizers: 2-D tensors decay, the rest do not.
    groups = [
        {"params": [p for p in params.values() if p.dim() >= 2], "weight_decay": 0.1},
        {"params": [p for p in params.values() if p.dim() < 2], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=6e-4, betas=(0.9, 0.95))
    x = torch.randint(0, 64, (8,))
    nn.functional.cross_entropy(model(x), x).backward()
    optimizer.step()
    model_args = {"n_layer": 0, "n_embd": 32, "vocab_size": 64}
    ckpt = copy.deepcopy({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "iter_num": 1})
    for index in ckpt["optimizer"]["param_groups"][1]["params"]:
        del ckpt["optimizer"]["state"][index]
    torch.save(ckpt, f"{out}/group_without_state.pt")
    torch.save({
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "model_args": model_args,
        "iter_num": 2000,
        "best_val_loss": 1.25,
        "config": dict(model_args, dataset="shakespeare_char"),
    }, f"{out}/nanogpt.pt")


def write_lightning(out):
    model, opt, loss = trained(lambda p: torch.optim.Adam(p, lr=1e-3))
    for name, version in [("lightning.ckpt", "9.0.0"), ("lightning_old.ckpt", "1.5.0")]:
        torch.save({
            "epoch": 4,
            "global_step": 500,
            "pytorch-lightning_version": version,
            "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
            "loops": {"fit_loop": {"epoch_progress": {"current": {"completed": 4}}}},
            "callbacks": {"ModelCheckpoint{'monitor': 'val_loss'}": {"best_model_score": 0.5}},
            "optimizer_states": [opt.state_dict()],
            "lr_schedulers": [{"last_epoch": 4, "step_size": 10}],
            "hparams_name": "kwargs",
            "hyper_parameters": {"hidden_dim": 16},
        }, f"{out}/{name}")


def nonfinite_tensors():
    """Known counts: see the test. `tail` views `with_nan[100:]`, which holds no NaN."""
    f32 = torch.linspace(-1, 1, 1000)
    f32[[3, 500, 999]] = float("nan")
    f32[[10, 11]] = float("inf")
    f32[20] = float("-inf")
    f16 = torch.linspace(-1, 1, 257).to(torch.float16)
    f16[0] = float("nan")
    f16[256] = float("-inf")
    bf16 = torch.linspace(-1, 1, 300).to(torch.bfloat16)
    bf16[[1, 2, 3, 4]] = float("nan")
    bf16[299] = float("inf")
    f64 = torch.linspace(-1, 1, 77, dtype=torch.float64)
    f64[[5, 6]] = float("inf")
    f64[7] = float("nan")
    with_nan = torch.ones(200)
    with_nan[[0, 50]] = float("nan")
    # 5M float32 = 20 MB: crosses the scanner's 16 MiB reads; NaN at both ends and at the 16 MiB mark.
    big = torch.zeros(5_000_000)
    big[[0, 4 * 1024 * 1024 - 1, 4 * 1024 * 1024, 4_999_999]] = float("nan")
    return {
        "weights": {"f32": f32, "f16": f16, "bf16": bf16, "f64": f64},
        "with_nan": with_nan,
        "tail": with_nan[100:],
        "big": big,
        "ints": torch.arange(10),
        "clean": torch.randn(64, 64),
    }


def write_nonfinite(out):
    tensors = nonfinite_tensors()
    torch.save(tensors, f"{out}/nonfinite.pt")
    torch.save(tensors, f"{out}/nonfinite_legacy.pt", _use_new_zipfile_serialization=False)
    clean = {k: (torch.nan_to_num(v, nan=0.0, posinf=1.0, neginf=-1.0) if torch.is_tensor(v) and v.is_floating_point() else v) for k, v in tensors.items() if k != "weights"}
    clean["weights"] = {k: torch.nan_to_num(v, nan=0.0, posinf=1.0, neginf=-1.0) for k, v in tensors["weights"].items()}
    torch.save(clean, f"{out}/finite.pt")


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    write_optimizer_cases(out)
    write_nanogpt(out)
    write_lightning(out)
    write_nonfinite(out)


if __name__ == "__main__":
    main()

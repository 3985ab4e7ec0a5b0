#!/usr/bin/env python3
"""Write 200 real training checkpoints of ~5 MB each (one run, one per epoch), for `bench/ls-200.ts`.

    /usr/bin/python3 bench/make_ls_checkpoints.py OUTDIR [COUNT]

A 4-layer MLP of ~390K parameters trained with Adam, one step per "epoch", saved as
{epoch, model_state_dict, optimizer_state_dict, loss, val_loss} with torch.save (zip format):
weights + exp_avg + exp_avg_sq make ~5 MB a file. Files are named ckpt_epoch_NNNN.pt but
written in shuffled order with shuffled mtimes, so ordering must come from their content.
OUTDIR/.done records COUNT when every file was written; then the script does nothing.
"""
import os
import random
import sys

import torch
from torch import nn

out = sys.argv[1]
count = int(sys.argv[2]) if len(sys.argv) > 2 else 200
done = os.path.join(out, ".done")
if os.path.exists(done) and open(done).read().strip() == str(count):
    sys.exit(0)
os.makedirs(out, exist_ok=True)

torch.manual_seed(0)
model = nn.Sequential(nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, 320), nn.ReLU(), nn.Linear(320, 256), nn.ReLU(), nn.Linear(256, 64))
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
x = torch.randn(32, 256)
y = torch.randn(32, 64)
rng = random.Random(0)
mtimes = list(range(count))
rng.shuffle(mtimes)
for epoch in range(1, count + 1):
    loss = nn.functional.mse_loss(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    path = os.path.join(out, f"ckpt_epoch_{epoch:04d}.pt")
    torch.save({"epoch": epoch, "model_state_dict": model.state_dict(), "optimizer_state_dict": optimizer.state_dict(),
                "loss": float(loss), "val_loss": float(loss) * 1.1}, path)
    stamp = 1_700_000_000 + mtimes[epoch - 1]
    os.utime(path, (stamp, stamp))
with open(done, "w") as f:
    f.write(str(count))

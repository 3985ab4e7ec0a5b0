#!/usr/bin/env bash
# Quick start on a fresh Debian machine, from the repository root:
#     bash examples/quickstart.sh
# Installs PyTorch (Debian's python3-torch) if missing, builds ckptguard, trains a tiny model
# for 3 epochs into examples/out/, then verifies the checkpoints and inspects the newest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON=/usr/bin/python3   # Debian's torch lives in the system interpreter
OUT=examples/out

# torch writes the example's checkpoints; GNU time and chromium are what `npm test` needs
# besides (peak-RSS checks and the dashboard's browser tests).
missing=()
"$PYTHON" -c "import torch" 2>/dev/null || missing+=(python3-torch)
[ -x /usr/bin/time ] || missing+=(time)
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "==> installing ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
fi

if ! command -v node >/dev/null 2>&1; then
  echo "node (>= 20) is required: https://nodejs.org/ or apt-get install nodejs" >&2
  exit 1
fi

if [ ! -d node_modules ]; then
  echo "==> npm ci"
  npm ci
fi

echo "==> building"
npx tsc -p tsconfig.json

echo "==> training 3 epochs into $OUT/"
rm -rf "$OUT"
"$PYTHON" examples/train_tiny.py --out "$OUT" --epochs 3

echo "==> ckptguard verify $OUT"
node dist/src/cli/main.js verify "$OUT"

NEWEST="$(ls -1 "$OUT"/ckpt_epoch_*.pt | sort | tail -n 1)"
echo "==> ckptguard inspect $NEWEST"
node dist/src/cli/main.js inspect "$NEWEST"

#!/usr/bin/env bash
# The paper's CAER-S run (docs/method.md section 6). Set CAER_S_ROOT to the CAER-S folder.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${CAER_S_ROOT:?set CAER_S_ROOT to the CAER-S folder (train/ and test/ inside)}"
# faces (head boxes) and bodies, cached next to the dataset; resumable
cocoer-prepare --dataset caer_s --root "$CAER_S_ROOT"
cocoer-train experiment=caer_s_prealign run_name=caer_s_prealign ckpt_path=auto
cocoer-train experiment=caer_s_paper run_name=caer_s_paper ckpt_path=auto \
  model.init_from=logs/train/runs/caer_s_prealign/checkpoints/last.ckpt

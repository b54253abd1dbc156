#!/usr/bin/env bash
# The paper's EMOTIC run (docs/method.md section 6). Set EMOTIC_ROOT to the dataset folder.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${EMOTIC_ROOT:?set EMOTIC_ROOT to the EMOTIC folder (images + Annotations/Annotations.mat)}"
# head boxes (face inside each body box), cached next to the dataset; resumable
cocoer-prepare --dataset emotic --root "$EMOTIC_ROOT"
# 1. V-I pre-alignment of W (authors' recipe), 2. the full model initialised from it
cocoer-train experiment=emotic_prealign run_name=emotic_prealign ckpt_path=auto
cocoer-train experiment=emotic_paper run_name=emotic_paper ckpt_path=auto \
  model.init_from=logs/train/runs/emotic_prealign/checkpoints/last.ckpt

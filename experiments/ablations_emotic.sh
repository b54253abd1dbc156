#!/usr/bin/env bash
# Every EMOTIC ablation of the supplement, three seeds per value, then the paper's tables.
# Add hydra/launcher=submitit_slurm to send each job to SLURM (see docs/experiments.md).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${EMOTIC_ROOT:?set EMOTIC_ROOT to the EMOTIC folder}"
for sweep in dims alpha beta patch losses backbone clip update mapping; do
  cocoer-train -m experiment=emotic_paper hparams_search="$sweep" seed=0,1,2 \
    sweep_name="emotic_$sweep" resume=true "$@"
  cocoer-aggregate "logs/train/multiruns/emotic_$sweep" --out "results/emotic_$sweep"
done

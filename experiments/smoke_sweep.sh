#!/usr/bin/env bash
# Table 4b (alpha) in minutes on CPU: tiny model, generated EMOTIC-layout data, two values.
set -euo pipefail
cd "$(dirname "$0")/.."
cocoer-train -m experiment=emotic_smoke hparams_search=smoke_alpha sweep_name=smoke_alpha resume=true
cocoer-aggregate logs/train/multiruns/smoke_alpha

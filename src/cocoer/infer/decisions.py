"""From model outputs to per-person records (torch-free; shared by both engines).

``outputs`` are arrays (numpy, or CPU tensors) keyed by the model's output names:
``logits_G`` [P,k], ``logits_t`` [P,k], ``y_t`` [P,k], ``logits_levels`` [P,3,k],
``f`` [P,3], ``order`` [P,3] (docs/method.md section 7); with the VAD head also ``vad_G``,
``vad_t`` [P,3] and ``vad_levels`` [P,3,3] (:data:`VAD_KEYS`, section 10).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.special import expit, softmax

from cocoer.constants import LEVELS, VAD_NAMES
from cocoer.detect.types import PersonDetection
from cocoer.infer.results import HeadPrediction, LabelScore, PersonResult
from cocoer.infer.thresholds import ThresholdPolicy

#: Model outputs the records are made of.
OUTPUT_KEYS = ("logits_G", "logits_t", "y_t", "logits_levels", "f", "order")
#: Outputs of the optional valence / arousal / dominance head.
VAD_KEYS = ("vad_G", "vad_t", "vad_levels")


def vad_records(outputs: Mapping[str, Any], n: int) -> list[dict[str, dict[str, float]] | None]:
    """Per person: ``final`` / ``vi`` / each level -> ``{valence, arousal, dominance}``
    (rounded to 6 decimals), or None for every person when the model has no VAD head."""
    if "vad_G" not in outputs:
        return [None] * n
    per = {"final": np.asarray(outputs["vad_G"]), "vi": np.asarray(outputs["vad_t"])}
    levels = np.asarray(outputs["vad_levels"])  # [P, 3 levels, 3]
    per.update({name: levels[:, m] for m, name in enumerate(LEVELS)})
    return [
        {
            who: {d: round(float(v[i, j]), 6) for j, d in enumerate(VAD_NAMES)}
            for who, v in per.items()
        }
        for i in range(n)
    ]


def scores_of(logits: Any, multi_label: bool) -> np.ndarray:
    """Sigmoid (multi-label) or softmax (single-label) float32 scores of logits [..., k]."""
    x = np.asarray(logits, dtype=np.float32)
    return (expit(x) if multi_label else softmax(x, axis=-1)).astype(np.float32)


def head_predictions(
    names: Sequence[str], scores: np.ndarray, decided: np.ndarray
) -> list[HeadPrediction]:
    """One HeadPrediction per row of scores [P, k] and decisions [P, k]."""
    out = []
    for s, d in zip(scores.tolist(), decided.tolist(), strict=True):
        labels = sorted(
            (LabelScore(n, round(v, 6)) for n, v, keep in zip(names, s, d, strict=True) if keep),
            key=lambda lab: -lab.score,
        )
        out.append(HeadPrediction(labels, {n: round(v, 6) for n, v in zip(names, s, strict=True)}))
    return out


def person_results(
    persons: Sequence[PersonDetection],
    outputs: Mapping[str, Any],
    names: Sequence[str],
    multi_label: bool,
    policy: ThresholdPolicy,
) -> list[PersonResult]:
    """Decisions and records of ``persons`` from their model outputs (same order)."""
    out = {k: np.asarray(outputs[k]) for k in OUTPUT_KEYS}

    def head(logits: np.ndarray, name: str, y_t: np.ndarray | None = None) -> list[HeadPrediction]:
        s = scores_of(logits, multi_label)
        return head_predictions(names, s, policy.decide(s, name, y_t))

    final = head(out["logits_G"], "final")
    vi = head(out["logits_t"], "vi", out["y_t"])
    per_level = {name: head(out["logits_levels"][:, m], name) for m, name in enumerate(LEVELS)}
    vad = vad_records(outputs, len(persons))
    results = []
    for i, p in enumerate(persons):
        results.append(
            PersonResult(
                index=i,
                body_box=[round(float(v), 2) for v in p.body_box],
                body_source=p.body_source,
                head_box=[round(float(v), 2) for v in p.head_box],
                head_source=p.head_source,
                detection_score=round(float(p.score), 6),
                final=final[i],
                vi=vi[i],
                levels={name: per_level[name][i] for name in LEVELS},
                level_losses={
                    name: round(float(out["f"][i, m]), 6) for m, name in enumerate(LEVELS)
                },
                exclusion_sequence=[LEVELS[int(j)] for j in out["order"][i].tolist()],
                vad=vad[i],
            )
        )
    return results

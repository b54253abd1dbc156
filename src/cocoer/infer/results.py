"""Result records of inference: one :class:`ImageResult` per image (or video frame) holding
one :class:`PersonResult` per detected person. ``to_json()`` gives plain JSON-ready dicts."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cocoer.utils.files import atomic_write_text

#: Version of the JSON layout written by ``cocoer-infer``.
RESULT_FORMAT_VERSION = 1


@dataclass(frozen=True)
class LabelScore:
    """A class name and its score (sigmoid for multi-label, softmax for single-label)."""

    name: str
    score: float


@dataclass(frozen=True)
class HeadPrediction:
    """The decision of one head (final, V-I, or a level).

    Attributes:
        labels: the predicted labels, highest score first.
        scores: every class's score, in class order.
    """

    labels: list[LabelScore]
    scores: dict[str, float]

    @property
    def names(self) -> list[str]:
        """Predicted label names, highest score first."""
        return [lab.name for lab in self.labels]

    def top(self, n: int = 3) -> list[LabelScore]:
        """The n highest-scoring classes, predicted or not."""
        best = sorted(self.scores.items(), key=lambda kv: -kv[1])[:n]
        return [LabelScore(k, v) for k, v in best]


@dataclass(frozen=True)
class PersonResult:
    """Everything CocoER says about one person (docs/method.md section 7).

    Boxes are ``[x1, y1, x2, y2]`` in pixels of the input image. ``levels`` maps
    ``context`` / ``body`` / ``head`` to that level's prediction; ``level_losses`` the same
    names to f_m (level loss against the V-I pseudo label); ``exclusion_sequence`` lists the
    level names first-excluded first (the last one survives). ``vad`` (a model with the
    valence / arousal / dominance head only): ``final``, ``vi``, ``context``, ``body``,
    ``head`` -> ``{"valence": .., "arousal": .., "dominance": ..}`` on EMOTIC's 1..10 scale.
    """

    index: int
    body_box: list[float]
    body_source: str
    head_box: list[float]
    head_source: str
    detection_score: float
    final: HeadPrediction
    vi: HeadPrediction
    levels: dict[str, HeadPrediction]
    level_losses: dict[str, float]
    exclusion_sequence: list[str]
    track_id: int | None = None
    vad: dict[str, dict[str, float]] | None = None

    @property
    def first_excluded(self) -> str:
        """The level eliminated first by the competition."""
        return self.exclusion_sequence[0]

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (adds ``first_excluded``)."""
        out = asdict(self)
        out["first_excluded"] = self.first_excluded
        if self.track_id is None:
            out.pop("track_id")
        if self.vad is None:
            out.pop("vad")
        return out


@dataclass
class ImageResult:
    """Inference result of one image.

    Attributes:
        source: the image path (or a description such as ``frame 12``).
        width, height: image size in pixels.
        persons: one result per detected person, left to right.
        class_names: the checkpoint's classes; multi_label: its task type.
        thresholds: which decision rule was applied (:meth:`ThresholdPolicy.describe`).
        detectors: which face / person detectors produced the boxes.
        checkpoint: path of the checkpoint used.
        seconds: wall time of detection and of the model.
    """

    source: str
    width: int
    height: int
    persons: list[PersonResult]
    class_names: list[str]
    multi_label: bool
    thresholds: dict[str, Any]
    detectors: dict[str, str] = field(default_factory=dict)
    checkpoint: str = ""
    seconds: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict of the whole result."""
        return {
            "format_version": RESULT_FORMAT_VERSION,
            "source": self.source,
            "width": self.width,
            "height": self.height,
            "num_persons": len(self.persons),
            "persons": [p.to_json() for p in self.persons],
            "class_names": list(self.class_names),
            "multi_label": self.multi_label,
            "thresholds": self.thresholds,
            "detectors": self.detectors,
            "checkpoint": self.checkpoint,
            "seconds": {k: round(v, 4) for k, v in self.seconds.items()},
        }

    def save_json(self, path: str | Path) -> Path:
        """Write :meth:`to_json` to ``path`` (indented UTF-8)."""
        return atomic_write_text(
            path, json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n"
        )

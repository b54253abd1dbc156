"""Decision rules that turn scores into labels at inference (docs/method.md section 7).

Three modes, chosen with ``--thresholds``:

- ``calibrated`` (default): the final labels use the per-class thresholds calibrated on the
  validation split and stored in the checkpoint (buffer ``thresholds``); the V-I labels are
  the model's own pseudo label y_t (sigmoid > tau, the label the workspace competes
  against); the level labels use 0.5 (they are not calibrated).
- ``demo``: the authors' demo values: 0.26 on the final sigmoid scores, 0.6 on the V-I and
  level scores.
- a number v in (0, 1): v for every head.

Single-label checkpoints (CAER-S) always take the argmax, whatever the mode.

Torch-free (numpy): shared by the PyTorch and the ONNX Runtime engines. Scores and
thresholds may be given as numpy arrays or CPU tensors (anything ``np.asarray`` takes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from cocoer.constants import DEMO_FINAL, DEMO_LEVEL, DEMO_VI, HEAD_NAMES, UNCALIBRATED_LEVEL
from cocoer.errors import InputError, check_choice

THRESHOLD_MODES = ("calibrated", "demo")

#: Heads a decision is made for.
HEADS = tuple(HEAD_NAMES.values())  # final, vi, context, body, head


@dataclass(frozen=True)
class ThresholdPolicy:
    """Per-head decision thresholds.

    Attributes:
        mode: ``calibrated`` | ``demo`` | ``value``.
        multi_label: False means argmax for every head.
        final / level: float32 [k] thresholds on sigmoid scores (unused for single-label).
        vi: float32 [k] thresholds, or None for "use the pseudo label y_t".
    """

    mode: str
    multi_label: bool
    final: np.ndarray
    level: np.ndarray
    vi: np.ndarray | None

    def decide(self, scores: Any, head: str, y_t: Any | None = None) -> np.ndarray:
        """Boolean decisions [B, k] from scores [B, k] (sigmoid or softmax) of ``head``."""
        check_choice("head", head, HEADS)
        s = np.asarray(scores)
        if not self.multi_label:
            return np.eye(s.shape[-1], dtype=bool)[s.argmax(-1)]
        if head == "final":
            return s > self.final.astype(s.dtype)
        if head == "vi":
            if self.vi is None:
                if y_t is None:
                    raise ValueError("the V-I pseudo label y_t is needed in calibrated mode")
                return np.asarray(y_t) > 0.5
            return s > self.vi.astype(s.dtype)
        return s > self.level.astype(s.dtype)

    def describe(self) -> dict[str, object]:
        """JSON-ready description (which rule each head used)."""
        if not self.multi_label:
            return {"mode": self.mode, "rule": "argmax (single-label checkpoint)"}

        def values(t: np.ndarray) -> float | list[float]:
            vals = [round(float(v), 6) for v in t]
            return vals[0] if len(set(vals)) == 1 else vals

        return {
            "mode": self.mode,
            "final": values(self.final),
            "vi": "pseudo label y_t (sigmoid > tau)" if self.vi is None else values(self.vi),
            "levels": values(self.level),
        }


def parse_threshold_spec(spec: str | float) -> str | float:
    """``"calibrated"`` / ``"demo"`` / a float in (0, 1); raises ValueError otherwise."""
    if isinstance(spec, (int, float)):
        value = float(spec)
    else:
        text = str(spec).strip().lower()
        if text in THRESHOLD_MODES:
            return text
        try:
            value = float(text)
        except ValueError:
            raise InputError(
                f"--thresholds must be 'calibrated', 'demo' or a number in (0, 1), got {spec!r}"
            ) from None
    if not 0.0 < value < 1.0:
        raise InputError(f"threshold value must lie in (0, 1), got {value}")
    return value


def build_policy(spec: str | float, calibrated: Any, multi_label: bool) -> ThresholdPolicy:
    """The policy for ``spec`` given the checkpoint's calibrated thresholds [k] (an array,
    a list or a CPU tensor)."""
    parsed = parse_threshold_spec(spec)
    cal = np.asarray(calibrated, dtype=np.float32).reshape(-1)
    k = cal.shape[0]
    full = lambda v: np.full((k,), float(v), dtype=np.float32)
    if parsed == "calibrated":
        return ThresholdPolicy(
            "calibrated",
            multi_label,
            cal,
            full(UNCALIBRATED_LEVEL),
            None,
        )
    if parsed == "demo":
        return ThresholdPolicy(
            "demo", multi_label, full(DEMO_FINAL), full(DEMO_LEVEL), full(DEMO_VI)
        )
    return ThresholdPolicy("value", multi_label, full(parsed), full(parsed), full(parsed))

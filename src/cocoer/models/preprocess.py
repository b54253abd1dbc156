"""Preprocessing choices stored with a model (``model.net.preprocess``), docs/method.md 9.

The authors' ``inference.py`` reads the photo with OpenCV and never converts it to RGB, so
its model is fed **BGR** data normalised with the RGB ImageNet statistics (P1); and it makes
integer boxes before cropping (P5) and hands the model the boxes ``int(x * (S / W))`` of the
S x S context frame (P6). These are preprocessing choices, so they are stored in the model's
config (and checkpoint) and applied by :func:`cocoer.data.windows.make_windows` wherever
the inference windows are made (``cocoer-infer``).

- ``channel_order``: ``rgb`` (correct) or ``bgr`` (the authors' demo);
- ``box_rounding``: ``cocoer`` (float boxes; crops widened to whole pixels) or ``authors``
  (body box rounded to the nearest integer, head box truncated, both clamped to the image;
  model boxes ``int(x * (S / W)) / S``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cocoer.errors import check_choice

#: (x1, y1, x2, y2) in pixels (the same alias as ``cocoer.data.records.BBox``)
BBox = tuple[float, float, float, float]

CHANNEL_ORDERS = ("rgb", "bgr")
BOX_ROUNDINGS = ("cocoer", "authors")


@dataclass
class PreprocessConfig:
    """How the inference windows of a model are made (see the module docstring)."""

    channel_order: str = "rgb"
    box_rounding: str = "cocoer"

    def __post_init__(self) -> None:
        self.check()

    def check(self, where: str = "preprocess.") -> None:
        """Raise :class:`~cocoer.errors.ConfigError` naming the field (``where`` + name) when
        a choice is unknown."""
        check_choice(f"{where}channel_order", self.channel_order, CHANNEL_ORDERS)
        check_choice(f"{where}box_rounding", self.box_rounding, BOX_ROUNDINGS)

    @classmethod
    def from_any(cls, value: Any) -> PreprocessConfig:
        """From None (defaults), a PreprocessConfig or a mapping (e.g. a DictConfig node)."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        return cls(**{k: value[k] for k in ("channel_order", "box_rounding") if k in value})


def _clamp(v: float, hi: int) -> float:
    return min(float(hi), max(0.0, v))


def authors_crop_boxes(
    body_box: BBox, head_box: BBox, width: int, height: int
) -> tuple[tuple[int, int, int, int], tuple[int, int, int, int]]:
    """Integer crop boxes as the authors make them (P5).

    Body (person detector): each coordinate rounded half to even (``np.round``), clamped to
    the image, ``int()``; head (face detector): clamped to the image, then ``int()``
    (truncated).
    """

    def clamp_int(box: tuple[float, ...]) -> tuple[int, int, int, int]:
        x1, y1, x2, y2 = box
        return (
            int(_clamp(x1, width)),
            int(_clamp(y1, height)),
            int(_clamp(x2, width)),
            int(_clamp(y2, height)),
        )

    body = clamp_int(tuple(float(round(float(v))) for v in body_box))
    return body, clamp_int(tuple(float(v) for v in head_box))


def authors_model_box(
    box: tuple[int, int, int, int], width: int, height: int, size: int
) -> list[float]:
    """The model-side box (P6): ``int(x * (S / W))`` (x with W, y with H), divided by S.

    Integers of the S frame (the authors' ``scale_coord``), returned normalised to [0, 1].
    """
    x1, y1, x2, y2 = box
    sx, sy = size / width, size / height
    ints = (int(x1 * sx), int(y1 * sy), int(x2 * sx), int(y2 * sy))
    return [min(max(v / size, 0.0), 1.0) for v in ints]


__all__ = [
    "BOX_ROUNDINGS",
    "CHANNEL_ORDERS",
    "PreprocessConfig",
    "authors_crop_boxes",
    "authors_model_box",
]

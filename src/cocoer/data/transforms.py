"""Training augmentations that keep the three windows and the two boxes consistent.

Order inside :class:`WindowTransform` (train only; val/test use plain :func:`make_windows`):

1. random context crop (before windowing): a sub-rectangle of the image that always contains
   the whole body box; its area is at least ``crop_min_scale`` of the image;
2. windows are cut (``crop_windows``);
3. mild colour jitter: one brightness / contrast / saturation factor per sample, applied to all
   three windows alike;
4. ImageNet normalisation;
5. horizontal flip: all three windows are mirrored and both boxes become
   ``(1 - x2, y1, 1 - x1, y2)``.

Randomness comes from ``torch``'s global generator (DataLoader workers are seeded by PyTorch /
Lightning), or from an explicit ``torch.Generator``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import torch
from PIL import Image

from cocoer.constants import LEVELS
from cocoer.data.records import BBox
from cocoer.data.windows import crop_windows, make_windows, normalize
from cocoer.errors import ConfigError

_GRAY = torch.tensor([0.299, 0.587, 0.114], dtype=torch.float32).view(3, 1, 1)


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation settings (the ``augment`` block of ``conf/data/*.yaml``).

    Attributes:
        enabled: master switch (train split only; val/test never augment).
        flip_p: probability of a horizontal flip.
        crop_p: probability of a random context crop.
        crop_min_scale: minimum crop area as a fraction of the image area (the body box is
            always kept whole, so the crop can be larger).
        jitter_p: probability of colour jitter.
        brightness, contrast, saturation: jitter strengths; a factor is drawn uniformly from
            ``[1 - v, 1 + v]``.
    """

    enabled: bool = True
    flip_p: float = 0.5
    crop_p: float = 0.5
    crop_min_scale: float = 0.6
    jitter_p: float = 0.8
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2

    def __post_init__(self) -> None:
        for name in ("flip_p", "crop_p", "jitter_p"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ConfigError(f"augment.{name} must be in [0, 1], got {v}")
        if not 0.0 < self.crop_min_scale <= 1.0:
            raise ConfigError(
                f"augment.crop_min_scale must be in (0, 1], got {self.crop_min_scale}"
            )
        for name in ("brightness", "contrast", "saturation"):
            v = getattr(self, name)
            if not 0.0 <= v < 1.0:
                raise ConfigError(f"augment.{name} must be in [0, 1), got {v}")

    @classmethod
    def from_any(cls, value: AugmentConfig | Mapping[str, Any] | bool | None) -> AugmentConfig:
        """Build from a mapping (e.g. a DictConfig), a bool (on/off) or None (off)."""
        if isinstance(value, AugmentConfig):
            return value
        if value is None or value is False:
            return cls(enabled=False)
        if value is True:
            return cls()
        known = {f.name for f in fields(cls)}
        unknown = set(value) - known
        if unknown:
            raise ConfigError(f"unknown augment keys {sorted(unknown)}; known: {sorted(known)}")
        return cls(**{k: value[k] for k in value})


def _uniform(lo: float, hi: float, gen: torch.Generator | None) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=gen))


def _bernoulli(p: float, gen: torch.Generator | None) -> bool:
    return p > 0 and float(torch.rand((), generator=gen)) < p


def random_context_crop(
    width: int, height: int, body_box: BBox, min_scale: float, gen: torch.Generator | None = None
) -> BBox:
    """A random crop rectangle of the image that contains the whole (clipped) body box.

    Each side keeps at least ``sqrt(min_scale)`` of the image side, and at least the body extent.
    """
    bx1 = min(max(body_box[0], 0.0), width)
    by1 = min(max(body_box[1], 0.0), height)
    bx2 = min(max(body_box[2], 0.0), width)
    by2 = min(max(body_box[3], 0.0), height)
    side = min_scale**0.5

    def axis(size: float, lo: float, hi: float) -> tuple[float, float]:
        length = _uniform(max(hi - lo, side * size), size, gen)
        start_lo, start_hi = max(0.0, hi - length), min(lo, size - length)
        start = _uniform(start_lo, max(start_lo, start_hi), gen)
        return start, start + length

    x1, x2 = axis(float(width), bx1, bx2)
    y1, y2 = axis(float(height), by1, by2)
    return (x1, y1, x2, y2)


def color_jitter(
    windows: list[torch.Tensor], brightness: float, contrast: float, saturation: float
) -> list[torch.Tensor]:
    """Apply the same brightness/contrast/saturation factors to [3, S, S] float [0, 1] windows."""
    out = []
    for w in windows:
        x = w * brightness
        mean = (x * _GRAY).sum(0).mean()
        x = (x - mean) * contrast + mean
        gray = (x * _GRAY).sum(0, keepdim=True)
        x = (x - gray) * saturation + gray
        out.append(x.clamp_(0.0, 1.0))
    return out


def hflip_sample(sample: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Mirror the windows (last dim) and both boxes (``x -> 1 - x``, corners swapped)."""
    out = dict(sample)
    for name in LEVELS:
        out[name] = torch.flip(sample[name], dims=[-1])
    for name in ("body_box", "head_box"):
        b = sample[name]
        out[name] = torch.stack([1.0 - b[2], b[1], 1.0 - b[0], b[3]])
    return out


class WindowTransform:
    """Callable ``(image, body_box, head_box) -> windows dict`` for one split.

    With ``augment.enabled=False`` (always for val/test) this is exactly :func:`make_windows`.
    """

    def __init__(self, image_size: int, augment: AugmentConfig | None = None) -> None:
        self.image_size = int(image_size)
        self.augment = augment or AugmentConfig(enabled=False)

    def __call__(
        self,
        image: Image.Image,
        body_box: BBox,
        head_box: BBox,
        generator: torch.Generator | None = None,
    ) -> dict[str, torch.Tensor]:
        aug = self.augment
        if not aug.enabled:
            return make_windows(image, body_box, head_box, self.image_size)
        gen = generator
        context_box = None
        if _bernoulli(aug.crop_p, gen):
            context_box = random_context_crop(*image.size, body_box, aug.crop_min_scale, gen)
        raw = crop_windows(image, body_box, head_box, self.image_size, context_box)
        names = LEVELS
        wins = [raw[n].float() / 255.0 for n in names]
        if _bernoulli(aug.jitter_p, gen):
            factors = [
                _uniform(1.0 - v, 1.0 + v, gen)
                for v in (aug.brightness, aug.contrast, aug.saturation)
            ]
            wins = color_jitter(wins, *factors)
        sample = {n: normalize(w) for n, w in zip(names, wins, strict=True)}
        sample["body_box"], sample["head_box"] = raw["body_box"], raw["head_box"]
        if _bernoulli(aug.flip_p, gen):
            sample = hflip_sample(sample)
        return sample

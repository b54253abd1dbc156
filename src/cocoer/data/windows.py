"""Image decoding and the three input windows (context, body, head), as tensors.

``load_image`` decodes any common image to 8-bit RGB (EXIF orientation applied; grayscale,
palette, RGBA, CMYK and 16/32-bit images converted correctly) and refuses decompression bombs.
``probe_image`` is the cheap setup-time check (header, size, truncation) that does not decode.
``make_windows`` turns an image and two boxes into the model input (deterministic).
Decoding lives in :mod:`cocoer.data.image_io` and the window geometry in
:mod:`cocoer.data.window_arrays` (both torch-free, shared with the ONNX Runtime engine).
"""

from __future__ import annotations

import torch
from PIL import Image

from cocoer.constants import IMAGENET_MEAN, IMAGENET_STD
from cocoer.data.image_io import DEFAULT_MAX_PIXELS, load_image, probe_image, to_rgb
from cocoer.data.records import BBox
from cocoer.data.window_arrays import crop_windows_array, raw_windows_array
from cocoer.models.preprocess import PreprocessConfig

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "crop_windows",
    "denormalize",
    "load_image",
    "make_windows",
    "normalize",
    "probe_image",
    "to_rgb",
]

_MEAN = torch.tensor(IMAGENET_MEAN, dtype=torch.float32).view(3, 1, 1)
_STD = torch.tensor(IMAGENET_STD, dtype=torch.float32).view(3, 1, 1)


def crop_windows(
    image: Image.Image,
    body_box: BBox,
    head_box: BBox,
    image_size: int,
    context_box: BBox | None = None,
) -> dict[str, torch.Tensor]:
    """Un-normalised windows: ``context``/``body``/``head`` uint8 [3, S, S] and boxes float32 [4].

    ``context_box`` (default: the whole image) is the region shown as context (used by the random
    context crop); body/head boxes are clipped to it and expressed in its frame, in [0, 1].
    """
    raw = crop_windows_array(image, body_box, head_box, image_size, context_box)
    return {k: torch.from_numpy(v) for k, v in raw.items()}


def normalize(window: torch.Tensor) -> torch.Tensor:
    """uint8 or [0, 1] float [3, S, S] -> ImageNet-normalised float32 [3, S, S]."""
    x = window.float()
    if window.dtype == torch.uint8:
        x = x / 255.0
    return (x - _MEAN) / _STD


def denormalize(window: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`normalize`: float32 [..., 3, S, S] in [0, 1] (not clipped)."""
    return window * _STD.to(window.device) + _MEAN.to(window.device)


def make_windows(
    image: Image.Image,
    body_box: BBox,
    head_box: BBox,
    image_size: int,
    preprocess: PreprocessConfig | None = None,
) -> dict[str, torch.Tensor]:
    """Deterministic model input for one person.

    Args:
        image: the decoded image (any mode; converted to RGB).
        body_box, head_box: pixel boxes in ``image``; clipped to the image, a degenerate box
            gets at least 1 px.
        image_size: S, the side of every window.
        preprocess: the model's preprocessing choices (:mod:`cocoer.models.preprocess`;
            default: RGB, float boxes).

    Returns:
        ``context``, ``body``, ``head``: float32 [3, S, S], ImageNet-normalised (context = whole
        image resized to S x S without keeping the aspect ratio; body/head = crops resized);
        ``body_box``, ``head_box``: float32 [4] = ``(x1/W, y1/H, x2/W, y2/H)`` clipped to [0, 1].
    """
    raw = raw_windows_array(image, body_box, head_box, image_size, preprocess)
    return {
        k: (normalize(torch.from_numpy(v)) if v.ndim == 3 else torch.from_numpy(v))
        for k, v in raw.items()
    }

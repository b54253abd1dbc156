"""The three input windows as numpy arrays (no torch): the one implementation of the window
geometry, shared by :mod:`cocoer.data.windows` (PyTorch) and the ONNX Runtime engine.

Windows are ``uint8 [3, S, S]`` (RGB, channels first) before normalisation and float32 after;
boxes are float32 ``[4] = (x1/W, y1/H, x2/W, y2/H)`` in the context frame, clipped to [0, 1]
(docs/method.md section 1).
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from cocoer.constants import IMAGENET_MEAN, IMAGENET_STD
from cocoer.data.image_io import to_rgb
from cocoer.data.records import BBox
from cocoer.models.preprocess import PreprocessConfig, authors_crop_boxes, authors_model_box

MEAN = np.asarray(IMAGENET_MEAN, dtype=np.float32).reshape(3, 1, 1)
STD = np.asarray(IMAGENET_STD, dtype=np.float32).reshape(3, 1, 1)


def pixel_box(box: BBox, width: float, height: float) -> tuple[float, float, float, float]:
    """Clip to the image and give a degenerate box at least 1 px per side."""
    x1, y1, x2, y2 = (float(v) for v in box)
    x1, x2 = sorted((min(max(x1, 0.0), width), min(max(x2, 0.0), width)))
    y1, y2 = sorted((min(max(y1, 0.0), height), min(max(y2, 0.0), height)))
    if x2 - x1 < 1.0:
        x1 = min(max(0.0, 0.5 * (x1 + x2) - 0.5), max(0.0, width - 1.0))
        x2 = min(float(width), x1 + 1.0)
    if y2 - y1 < 1.0:
        y1 = min(max(0.0, 0.5 * (y1 + y2) - 0.5), max(0.0, height - 1.0))
        y2 = min(float(height), y1 + 1.0)
    return (x1, y1, x2, y2)


def resize_region_array(
    image: Image.Image, box: tuple[float, float, float, float], size: int
) -> np.ndarray:
    """Crop ``box`` (widened to whole pixels: floor/ceil) and resize to ``size`` x ``size``.

    Cropping first means no pixel outside the (widened) box leaks into the window. Returns a
    uint8 array [3, S, S].
    """
    width, height = image.size
    x1, y1 = max(0, math.floor(box[0] + 1e-6)), max(0, math.floor(box[1] + 1e-6))
    x2, y2 = min(width, math.ceil(box[2] - 1e-6)), min(height, math.ceil(box[3] - 1e-6))
    x2, y2 = max(x2, x1 + 1), max(y2, y1 + 1)
    region = image if (x1, y1, x2, y2) == (0, 0, width, height) else image.crop((x1, y1, x2, y2))
    out = region.resize((size, size), Image.Resampling.BILINEAR)
    return np.ascontiguousarray(np.asarray(out, dtype=np.uint8).transpose(2, 0, 1))


def crop_windows_array(
    image: Image.Image,
    body_box: BBox,
    head_box: BBox,
    image_size: int,
    context_box: BBox | None = None,
) -> dict[str, np.ndarray]:
    """Un-normalised windows: ``context``/``body``/``head`` uint8 [3, S, S] and boxes float32 [4].

    ``context_box`` (default: the whole image) is the region shown as context (used by the random
    context crop); body/head boxes are clipped to it and expressed in its frame, in [0, 1].
    """
    if image.mode != "RGB":
        image = to_rgb(image)
    width, height = image.size
    ctx = pixel_box(context_box or (0.0, 0.0, width, height), width, height)
    cx1, cy1, cx2, cy2 = ctx
    cw, ch = cx2 - cx1, cy2 - cy1
    out: dict[str, np.ndarray] = {"context": resize_region_array(image, ctx, image_size)}
    for name, box in (("body", body_box), ("head", head_box)):
        # clip to the context region (which lies inside the image), at least 1 px
        local = pixel_box((box[0] - cx1, box[1] - cy1, box[2] - cx1, box[3] - cy1), cw, ch)
        pix = (local[0] + cx1, local[1] + cy1, local[2] + cx1, local[3] + cy1)
        out[name] = resize_region_array(image, pix, image_size)
        norm = np.asarray(
            [local[0] / cw, local[1] / ch, local[2] / cw, local[3] / ch], dtype=np.float32
        )
        out[f"{name}_box"] = np.clip(norm, 0.0, 1.0)
    return out


def normalize_array(window: np.ndarray) -> np.ndarray:
    """uint8 or [0, 1] float [..., 3, S, S] -> ImageNet-normalised float32 (same arithmetic,
    in float32, as :func:`cocoer.data.windows.normalize`)."""
    x = window.astype(np.float32)
    if window.dtype == np.uint8:
        x = x / np.float32(255.0)
    return (x - MEAN) / STD


def raw_windows_array(
    image: Image.Image,
    body_box: BBox,
    head_box: BBox,
    image_size: int,
    preprocess: PreprocessConfig | None = None,
) -> dict[str, np.ndarray]:
    """Un-normalised inference windows with the model's preprocessing choices applied
    (:mod:`cocoer.models.preprocess`: channel order, box rounding); see
    :func:`cocoer.data.windows.make_windows`."""
    pre = preprocess or PreprocessConfig()
    model_boxes = None
    if pre.box_rounding == "authors":
        if image.mode != "RGB":
            image = to_rgb(image)
        w, h = image.size
        body_int, head_int = authors_crop_boxes(body_box, head_box, w, h)
        body_box, head_box = body_int, head_int
        model_boxes = {
            "body_box": authors_model_box(body_int, w, h, image_size),
            "head_box": authors_model_box(head_int, w, h, image_size),
        }
    raw = crop_windows_array(image, body_box, head_box, image_size)
    if model_boxes is not None:
        raw.update({k: np.asarray(v, dtype=np.float32) for k, v in model_boxes.items()})
    if pre.channel_order == "bgr":
        raw.update({k: np.ascontiguousarray(raw[k][::-1]) for k in ("context", "body", "head")})
    return raw


def make_windows_array(
    image: Image.Image,
    body_box: BBox,
    head_box: BBox,
    image_size: int,
    preprocess: PreprocessConfig | None = None,
) -> dict[str, np.ndarray]:
    """Deterministic model input for one person as float32 arrays (see
    :func:`cocoer.data.windows.make_windows`, which returns the same numbers as tensors)."""
    raw = raw_windows_array(image, body_box, head_box, image_size, preprocess)
    return {k: (normalize_array(v) if v.ndim == 3 else v) for k, v in raw.items()}

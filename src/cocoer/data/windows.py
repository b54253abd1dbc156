"""Image decoding and the three input windows (context, body, head).

``load_image`` decodes any common image to 8-bit RGB (EXIF orientation applied; grayscale,
palette, RGBA, CMYK and 16/32-bit images converted correctly) and refuses decompression bombs.
``probe_image`` is the cheap setup-time check (header, size, truncation) that does not decode.
``make_windows`` turns an image and two boxes into the model input (deterministic).
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from cocoer.constants import IMAGENET_MEAN, IMAGENET_STD
from cocoer.data.preprocess import PreprocessConfig, authors_crop_boxes, authors_model_box
from cocoer.data.records import BadSampleError, BBox

#: Default decompression-bomb guard: images with more pixels are refused (PIL's own hard limit,
#: 2 x ``Image.MAX_IMAGE_PIXELS``, about 13.4k x 13.4k). While a cap is given it replaces PIL's
#: check (``max_pixels=None`` leaves PIL's default guard in force).
DEFAULT_MAX_PIXELS = 178_956_970

_MEAN = torch.tensor(IMAGENET_MEAN, dtype=torch.float32).view(3, 1, 1)
_STD = torch.tensor(IMAGENET_STD, dtype=torch.float32).view(3, 1, 1)

_ORIENTATION_TAG = 0x0112
_SWAPS_AXES = {5, 6, 7, 8}


def _open(path: Path, max_pixels: int | None) -> Image.Image:
    """Open lazily (header only) with clear errors; checks the pixel cap."""
    if not path.is_file():
        raise BadSampleError(str(path), "missing file: no such file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            pil_limit = Image.MAX_IMAGE_PIXELS
            if max_pixels is not None:
                Image.MAX_IMAGE_PIXELS = None  # our own cap, checked below, replaces PIL's
            try:
                img = Image.open(path)
            finally:
                Image.MAX_IMAGE_PIXELS = pil_limit
    except Image.DecompressionBombError as exc:
        raise BadSampleError(str(path), f"decompression bomb refused by PIL ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise BadSampleError(str(path), "unreadable image: not a recognised image format") from exc
    except OSError as exc:
        kind = "truncated image" if "truncat" in str(exc).lower() else "unreadable image"
        raise BadSampleError(str(path), f"{kind}: {exc}") from exc
    w, h = img.size
    if max_pixels is not None and w * h > max_pixels:
        img.close()
        raise BadSampleError(
            str(path),
            f"decompression bomb guard: {w}x{h} = {w * h} pixels exceeds "
            f"max_image_pixels={max_pixels}",
        )
    return img


def _oriented_size(img: Image.Image) -> tuple[int, int]:
    """Image size after the EXIF orientation is applied."""
    w, h = img.size
    try:
        orient = img.getexif().get(_ORIENTATION_TAG, 1)
    except Exception:  # malformed EXIF: PIL will also ignore it when transposing
        orient = 1
    return (h, w) if orient in _SWAPS_AXES else (w, h)


def _check_complete(path: Path, img: Image.Image) -> None:
    """Cheap truncation check: JPEG must end with EOI, PNG with IEND; others are verified."""
    fmt = img.format
    if fmt in ("JPEG", "PNG"):
        size = path.stat().st_size
        with path.open("rb") as fh:
            fh.seek(max(0, size - 64))
            tail = fh.read()
        marker = b"\xff\xd9" if fmt == "JPEG" else b"IEND"
        if marker not in tail:
            raise BadSampleError(str(path), f"truncated image: {fmt} end marker missing")
    else:
        try:
            img.verify()
        except Exception as exc:
            raise BadSampleError(str(path), f"unreadable image: verify failed ({exc})") from exc


def probe_image(
    path: str | os.PathLike[str], max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> tuple[int, int]:
    """Cheap setup-time check of an image file without decoding the pixels.

    Returns:
        ``(width, height)`` after EXIF orientation.

    Raises:
        BadSampleError: missing, unreadable, truncated, or over the pixel cap (message names the
            file and the reason).
    """
    path = Path(path)
    img = _open(path, max_pixels)
    try:
        size = _oriented_size(img)
        _check_complete(path, img)
    finally:
        img.close()
    return size


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB.

    - ``I;16*`` (16-bit) is scaled by 255/65535 (not clipped); ``I`` (32-bit int) is scaled by
      255/65535 when its maximum exceeds 255 and fits in 16 bits, else by 255/max; ``F`` is
      scaled from [0, 1] when its maximum is <= 1, else like ``I``.
    - Transparency (RGBA, LA, palette with transparency) is composited over white.
    - CMYK, YCbCr, L, 1, P use PIL's conversions.
    """
    mode = img.mode
    if mode == "RGB":
        return img
    if mode.startswith("I;16") or mode in ("I", "F"):
        arr = np.asarray(img).astype(np.float64)
        if mode.startswith("I;16"):
            scale = 255.0 / 65535.0
        else:
            top = float(arr.max()) if arr.size else 0.0
            if mode == "F" and top <= 1.0:
                scale = 255.0
            elif top <= 255.0:
                scale = 1.0
            elif top <= 65535.0:
                scale = 255.0 / 65535.0
            else:
                scale = 255.0 / top
        gray = np.clip(np.rint(arr * scale), 0, 255).astype(np.uint8)
        return Image.fromarray(gray, mode="L").convert("RGB")
    if mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def load_image(
    path: str | os.PathLike[str], max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> Image.Image:
    """Decode an image to an 8-bit RGB PIL image, EXIF orientation applied.

    Raises:
        BadSampleError: missing, unreadable or truncated file, or more than ``max_pixels``
            pixels (decompression-bomb guard); the message names the file and the reason.
    """
    path = Path(path)
    img = _open(path, max_pixels)
    try:
        img.load()
        img = ImageOps.exif_transpose(img) or img
        return to_rgb(img)
    except BadSampleError:
        raise
    except (OSError, SyntaxError, ValueError) as exc:
        msg = str(exc)
        kind = "truncated image" if "truncated" in msg.lower() else "unreadable image"
        raise BadSampleError(str(path), f"{kind}: {msg}") from exc


def _pixel_box(box: BBox, width: float, height: float) -> tuple[float, float, float, float]:
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


def _resize_region(
    image: Image.Image, box: tuple[float, float, float, float], size: int
) -> torch.Tensor:
    """Crop ``box`` (widened to whole pixels: floor/ceil) and resize to ``size`` x ``size``.

    Cropping first means no pixel outside the (widened) box leaks into the window. Returns a
    uint8 tensor [3, S, S].
    """
    width, height = image.size
    x1, y1 = max(0, math.floor(box[0] + 1e-6)), max(0, math.floor(box[1] + 1e-6))
    x2, y2 = min(width, math.ceil(box[2] - 1e-6)), min(height, math.ceil(box[3] - 1e-6))
    x2, y2 = max(x2, x1 + 1), max(y2, y1 + 1)
    region = image if (x1, y1, x2, y2) == (0, 0, width, height) else image.crop((x1, y1, x2, y2))
    out = region.resize((size, size), Image.Resampling.BILINEAR)
    arr = np.asarray(out, dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous()


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
    if image.mode != "RGB":
        image = to_rgb(image)
    width, height = image.size
    ctx = _pixel_box(context_box or (0.0, 0.0, width, height), width, height)
    cx1, cy1, cx2, cy2 = ctx
    cw, ch = cx2 - cx1, cy2 - cy1
    out: dict[str, torch.Tensor] = {"context": _resize_region(image, ctx, image_size)}
    for name, box in (("body", body_box), ("head", head_box)):
        # clip to the context region (which lies inside the image), at least 1 px
        local = _pixel_box((box[0] - cx1, box[1] - cy1, box[2] - cx1, box[3] - cy1), cw, ch)
        pix = (local[0] + cx1, local[1] + cy1, local[2] + cx1, local[3] + cy1)
        out[name] = _resize_region(image, pix, image_size)
        norm = torch.tensor(
            [local[0] / cw, local[1] / ch, local[2] / cw, local[3] / ch], dtype=torch.float32
        )
        out[f"{name}_box"] = norm.clamp_(0.0, 1.0)
    return out


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
        preprocess: the model's preprocessing choices (:mod:`cocoer.data.preprocess`;
            default: RGB, float boxes).

    Returns:
        ``context``, ``body``, ``head``: float32 [3, S, S], ImageNet-normalised (context = whole
        image resized to S x S without keeping the aspect ratio; body/head = crops resized);
        ``body_box``, ``head_box``: float32 [4] = ``(x1/W, y1/H, x2/W, y2/H)`` clipped to [0, 1].
    """
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
    raw = crop_windows(image, body_box, head_box, image_size)
    if model_boxes is not None:
        raw.update({k: torch.tensor(v, dtype=torch.float32) for k, v in model_boxes.items()})
    if pre.channel_order == "bgr":
        raw.update({k: raw[k].flip(0) for k in ("context", "body", "head")})
    return {k: (normalize(v) if v.dim() == 3 else v) for k, v in raw.items()}

"""Image decoding without torch: any common image to 8-bit RGB, and a cheap file probe.

``load_image`` decodes any common image to 8-bit RGB (EXIF orientation applied; grayscale,
palette, RGBA, CMYK and 16/32-bit images converted correctly) and refuses decompression bombs.
``probe_image`` is the cheap setup-time check (header, size, truncation) that does not decode.
(Re-exported by :mod:`cocoer.data.windows`; kept free of torch for the ONNX Runtime engine.)
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from cocoer.constants import DEFAULT_MAX_PIXELS
from cocoer.data.records import BadSampleError

#: While a cap (:data:`DEFAULT_MAX_PIXELS` by default) is given it replaces PIL's check
#: (``max_pixels=None`` leaves PIL's default guard in force).
__all__ = ["DEFAULT_MAX_PIXELS", "load_image", "probe_image", "to_rgb"]

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

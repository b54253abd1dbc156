"""Drawing of the generated images: palette, layout, the planted conflict, rendering.

Class ``i`` has the solid colour ``PALETTE[i]``; each shown class is painted on the head
(vertical strips around a face-like pattern), on the body (horizontal stripes below the head)
and in the context (round blobs outside every body box), over low-saturation noise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from cocoer.constants import LEVELS
from cocoer.data.heuristics import head_from_body

#: 26 distinct colours: {0, 128, 255}^3 without (128, 128, 128); class i -> PALETTE[i].
PALETTE: tuple[tuple[int, int, int], ...] = tuple(
    (r, g, b)
    for r in (0, 128, 255)
    for g in (0, 128, 255)
    for b in (0, 128, 255)
    if (r, g, b) != (128, 128, 128)
)
#: Palette indices used for the 7 CAER-S classes (saturated, far apart).
CAER_S_COLOURS: tuple[int, ...] = (
    PALETTE.index((255, 0, 0)),
    PALETTE.index((0, 255, 0)),
    PALETTE.index((0, 0, 255)),
    PALETTE.index((255, 255, 0)),
    PALETTE.index((255, 0, 255)),
    PALETTE.index((0, 255, 255)),
    PALETTE.index((255, 255, 255)),
)
LEVEL_NAMES = LEVELS  # (context, body, head): the order of the levels everywhere
EMOTIC_FOLDERS = ("emodb_small/images", "ade20k/images", "framesdb/images", "mscoco/images")
META_NAME = "cocoer_synthetic_meta.json"
#: Bumped whenever the drawing, the layout, the conflict design or the annotations change: a
#: generated dataset recorded with another version is made again (see ``meta.is_stale``).
#: 2: the continuous values follow the painted classes (``emotic_writer.class_vad``).
GENERATOR_VERSION = 2

#: Painted area per level, balanced so that the colours of the true classes cover more of the
#: image than a conflicting level's: the share of the body box's width painted (the "shirt"),
#: the context blobs per class and their radius (fraction of the image's shorter side).
SHIRT_WIDTH = 0.7
BLOBS_PER_CLASS = 3
BLOB_RADIUS = (0.07, 0.10)

#: Painted where a conflicting level's wrong class covers less than the replaced class did
#: (``conflict_area`` < 1): a dark neutral, outside the palette.
NEUTRAL = (56, 56, 56)
SKIN = (224, 172, 140)
EYE = (70, 45, 30)
MOUTH = (185, 90, 80)


def _background(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """Low-saturation noise around a random grey level, with a mild gradient."""
    base = rng.uniform(95, 165)
    grad = np.linspace(-12, 12, width)[None, :] * rng.choice([-1.0, 1.0])
    lum = base + grad + rng.normal(0, 10, (height, width))
    chroma = rng.normal(0, 4, (height, width, 3)) + rng.normal(0, 6, 3)
    arr = np.clip(lum[..., None] + chroma, 0, 255).astype(np.uint8)
    return Image.fromarray(arr, "RGB")


def _rint(v: float) -> int:
    return round(float(v))


def _draw_head(
    draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], colours: list[tuple[int, int, int]]
) -> None:
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    n = len(colours)
    for i, c in enumerate(colours):  # vertical strips ("hair / hat") behind the face
        sx1 = x1 + _rint(i * w / n)
        sx2 = x1 + _rint((i + 1) * w / n) - 1
        draw.rectangle((sx1, y1, max(sx1, sx2), y2 - 1), fill=c)
    fx1, fy1 = x1 + 0.2 * w, y1 + 0.36 * h  # the strips stay visible above and beside the face
    fx2, fy2 = x2 - 0.2 * w, y2 - 0.02 * h
    draw.ellipse((fx1, fy1, fx2, fy2), fill=SKIN)
    fw, fh = fx2 - fx1, fy2 - fy1
    r = max(1.0, 0.08 * fw)
    for ex in (fx1 + 0.32 * fw, fx1 + 0.68 * fw):
        ey = fy1 + 0.4 * fh
        draw.ellipse((ex - r, ey - r, ex + r, ey + r), fill=EYE)
    my = fy1 + 0.72 * fh
    draw.rectangle((fx1 + 0.3 * fw, my, fx1 + 0.7 * fw, my + max(1.0, 0.07 * fh)), fill=MOUTH)


def _draw_body(
    draw: ImageDraw.ImageDraw,
    body: tuple[int, int, int, int],
    top: int,
    colours: list[tuple[int, int, int]],
    wrong: tuple[int, int, int] | None = None,
    conflict_area: float = 1.0,
) -> None:
    x1, _, x2, y2 = body
    pad = 0.5 * (1.0 - SHIRT_WIDTH) * (x2 - x1)  # the shirt: the middle of the body box
    x1, x2 = _rint(x1 + pad), max(_rint(x1 + pad) + 1, _rint(x2 - pad))
    top = min(max(top, body[1]), y2 - 1)
    h = y2 - top
    n = len(colours)
    for i, c in enumerate(colours):
        sy1 = top + _rint(i * h / n)
        sy2 = top + _rint((i + 1) * h / n) - 1
        if c == wrong and conflict_area < 1.0:  # the wrong class on part of its stripe
            draw.rectangle((x1, sy1, x2 - 1, max(sy1, sy2)), fill=NEUTRAL)
            sy2 = sy1 + max(1, _rint(conflict_area * (sy2 - sy1 + 1))) - 1
        draw.rectangle((x1, sy1, x2 - 1, max(sy1, sy2)), fill=c)


def _overlaps(a: tuple[float, ...], b: tuple[float, ...], pad: float = 2.0) -> bool:
    return not (
        a[2] + pad <= b[0] or b[2] + pad <= a[0] or a[3] + pad <= b[1] or b[3] + pad <= a[1]
    )


def _draw_context(
    rng: np.random.Generator,
    draw: ImageDraw.ImageDraw,
    width: int,
    height: int,
    bodies: list[tuple[int, int, int, int]],
    colours: list[tuple[int, int, int]],
    blobs_per_class: int | None = None,
    wrong: tuple[int, int, int] | None = None,
    conflict_area: float = 1.0,
) -> None:
    blobs_per_class = BLOBS_PER_CLASS if blobs_per_class is None else blobs_per_class
    placed: list[tuple[float, ...]] = []
    for c in colours:
        n_blobs = blobs_per_class
        if c == wrong:  # the wrong class: fewer blobs
            n_blobs = max(1, round(conflict_area * blobs_per_class))
        for _ in range(n_blobs):
            r = rng.uniform(*BLOB_RADIUS) * min(width, height)
            best = None
            for _try in range(40):
                cx, cy = rng.uniform(r, width - r), rng.uniform(r, height - r)
                box = (cx - r, cy - r, cx + r, cy + r)
                if not any(_overlaps(box, b) for b in [*bodies, *placed]):
                    best = box
                    break
                if best is None and not any(_overlaps(box, b) for b in bodies):
                    best = box
            if best is None:
                best = box
            placed.append(best)
            draw.ellipse(best, fill=c)


def layout_persons(
    rng: np.random.Generator, width: int, height: int, n_persons: int
) -> list[tuple[tuple[int, int, int, int], tuple[int, int, int, int]]]:
    """Body boxes (side by side) and jittered heuristic head boxes."""
    out = []
    slot = width / n_persons
    for p in range(n_persons):
        frac = rng.uniform(0.25, 0.4) if n_persons == 1 else rng.uniform(0.5, 0.7)
        bw = frac * (width if n_persons == 1 else slot)
        lo, hi = p * slot + 0.03 * width, (p + 1) * slot - 0.03 * width - bw
        bx1 = rng.uniform(lo, max(lo, hi))
        bh = rng.uniform(0.5, 0.75) * height
        by1 = rng.uniform(0.04 * height, 0.97 * height - bh)
        body = (_rint(bx1), _rint(by1), _rint(bx1 + bw), _rint(by1 + bh))
        hx1, hy1, hx2, _ = head_from_body(body)
        side = (hx2 - hx1) * rng.uniform(0.92, 1.08)
        jx, jy = rng.uniform(-0.05, 0.05) * side, rng.uniform(-0.05, 0.05) * side
        cx, top = 0.5 * (hx1 + hx2) + jx, hy1 + jy
        head = (_rint(cx - side / 2), _rint(top), _rint(cx + side / 2), _rint(top + side))
        head = (
            max(head[0], body[0]),
            max(head[1], body[1]),
            min(head[2], body[2]),
            min(head[3], body[3]),
        )
        out.append((body, head))
    return out


def conflict_for(
    rng: np.random.Generator, labels: list[int], num_classes: int, conflict_rate: float
) -> tuple[str | None, int | None, int | None]:
    """(level, replaced true class, wrong class) or (None, None, None)."""
    if rng.random() >= conflict_rate:
        return None, None, None
    level = LEVEL_NAMES[int(rng.integers(3))]
    replaced = int(rng.choice(labels))
    wrong = int(rng.choice([c for c in range(num_classes) if c not in labels]))
    return level, replaced, wrong


def shown_classes(
    labels: list[int], level: str, conflict: tuple[str | None, int | None, int | None]
) -> list[int]:
    c_level, replaced, wrong = conflict
    if c_level != level:
        return list(labels)
    return [wrong if c == replaced else c for c in labels]  # type: ignore[misc]


def render(
    rng: np.random.Generator,
    width: int,
    height: int,
    persons: list[tuple[tuple[int, int, int, int], tuple[int, int, int, int]]],
    context_shown: list[int],
    shown: list[tuple[list[int], list[int]]],
    colour_of: list[tuple[int, int, int]],
    wrong: int | None = None,
    conflict_area: float = 1.0,
) -> Image.Image:
    """Draw one image: context blobs, then each person's body and head.

    ``wrong`` (a class index) is the planted conflict's wrong class; with ``conflict_area``
    < 1 it covers that share of the area the replaced class covered on the body (the rest of
    its stripe in ``NEUTRAL``) and in the context (fewer blobs); the head keeps full strips.
    """
    img = _background(rng, width, height)
    draw = ImageDraw.Draw(img)
    w_colour = None if wrong is None else colour_of[wrong]
    _draw_context(
        rng,
        draw,
        width,
        height,
        [b for b, _ in persons],
        [colour_of[c] for c in context_shown],
        wrong=w_colour,
        conflict_area=conflict_area,
    )
    for (body, head), (head_sh, body_sh) in zip(persons, shown, strict=True):
        _draw_body(draw, body, head[3], [colour_of[c] for c in body_sh], w_colour, conflict_area)
        _draw_head(draw, head, [colour_of[c] for c in head_sh])
    return img


def save_image(img: Image.Image, path: Path, fmt: str = "JPEG", **kw: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "JPEG":
        # 4:4:4 chroma keeps the thin colour strips of small heads recognisable
        img.save(path, "JPEG", quality=kw.pop("quality", 92), subsampling=0, **kw)
    else:
        img.save(path, fmt, compress_level=1, **kw)

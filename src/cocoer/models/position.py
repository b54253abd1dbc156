"""The authors' rule for the body / head position embedding (``hfe.pos_sampling: authors``).

docs/method.md section 9 (item M5). A window with box (x1, y1, x2, y2) in pixels of the S x S
context frame has a gh x gw token grid; token (i, j) is placed at

    px = ((j + 1/2) / gw * w - w / 2) + (x2 + x1) / 2,   w = x2 - x1   (same for y, i, h)

which is x1 + (j + 1/2) / gw * w, evaluated in this order in the tensor's dtype (as the
authors' float32 code does, so the rounding at the table edge is the same), and
g = px / c is a fractional index into the context's position table, with c = S p / w_f
pixels per table cell (32 for ResNet-50 at 224 with p = 1). Unlike cocoer's rule there is no
half-cell shift (cocoer: g = px / c - 1/2).

The table is interpolated bilinearly with both corners clamped to the table: x0 = floor(g),
x1 = x0 + 1, each clamped to [0, gw - 1], weights taken from the clamped corners. Where the
clamp merges the corners the four weighted terms cancel, so the embedding is 0 (up to
rounding) whenever g < 0 or g >= gw - 1 on either axis.
"""

from __future__ import annotations

import torch
from torch import Tensor


def grid_points(box_px: Tensor, gh: int, gw: int) -> tuple[Tensor, Tensor]:
    """Pixel sample points of a window's gh x gw tokens (row-major).

    box_px [B, 4] (x1, y1, x2, y2) -> (px [B, gh*gw], py [B, gh*gw]).
    """
    dt, dev = box_px.dtype, box_px.device
    ii, jj = torch.meshgrid(
        torch.arange(gh, device=dev), torch.arange(gw, device=dev), indexing="ij"
    )
    size_x = (box_px[:, 2] - box_px[:, 0])[:, None]  # [B, 1]
    size_y = (box_px[:, 3] - box_px[:, 1])[:, None]
    px = (jj.reshape(1, -1).to(dt) + 0.5) / gw * size_x - size_x / 2
    py = (ii.reshape(1, -1).to(dt) + 0.5) / gh * size_y - size_y / 2
    px = px + ((box_px[:, 2] + box_px[:, 0]) / 2)[:, None]
    py = py + ((box_px[:, 3] + box_px[:, 1]) / 2)[:, None]
    return px, py


def bilinear_clamped(table: Tensor, gx: Tensor, gy: Tensor) -> Tensor:
    """Bilinear lookup with clamped corners (zero outside [0, g - 1) on each axis).

    table [d_h, gh, gw]; gx, gy [B, N] fractional column / row indices -> [B, N, d_h].
    """
    _, gh, gw = table.shape
    flat = table.flatten(1).t()  # [gh*gw, d_h]
    x0, y0 = torch.floor(gx).long(), torch.floor(gy).long()
    x1, y1 = (x0 + 1).clamp(0, gw - 1), (y0 + 1).clamp(0, gh - 1)
    x0, y0 = x0.clamp(0, gw - 1), y0.clamp(0, gh - 1)
    Ia, Ib = flat[y0 * gw + x0], flat[y1 * gw + x0]  # [B, N, d_h]
    Ic, Id = flat[y0 * gw + x1], flat[y1 * gw + x1]
    x0f, x1f, y0f, y1f = (t.to(gx.dtype) for t in (x0, x1, y0, y1))
    wa = ((x1f - gx) * (y1f - gy)).unsqueeze(-1)
    wb = ((x1f - gx) * (gy - y0f)).unsqueeze(-1)
    wc = ((gx - x0f) * (y1f - gy)).unsqueeze(-1)
    wd = ((gx - x0f) * (gy - y0f)).unsqueeze(-1)
    return Ia * wa + Ib * wb + Ic * wc + Id * wd


def authors_position(table: Tensor, box_px: Tensor, cell: tuple[float, float]) -> Tensor:
    """Position embedding of a window's tokens by the authors' rule.

    Args:
        table: [1, d_h, gh, gw] the context position table (also the window's token grid).
        box_px: [B, 4] window box (x1, y1, x2, y2) in pixels of the S x S context frame.
        cell: (c_y, c_x) pixels per table cell.
    Returns:
        [B, gh*gw, d_h].
    """
    _, _, gh, gw = table.shape
    px, py = grid_points(box_px, gh, gw)
    return bilinear_clamped(table[0].to(box_px.dtype), px / cell[1], py / cell[0])

"""Hierarchical feature extraction (METHOD.md section 2).

windows (c, b, h) -> backbone_m -> feature map F_m [B, C, h, w]
 -> zero-pad to a multiple of p, cut into N = (H'/p)(W'/p) patches of p*p*C
 -> projection E -> tokens [B, N, d_h] + position embedding
 -> cross-level attention: T_cc (context self), T_bc (body -> context), T_hc (head -> context)
 -> flattened [B, 3, N*d_h], the input of the level mappings' FFN0.

Position: the context tokens get a learned 2-D embedding over the context patch grid; a
body / head token gets that embedding sampled (bilinear) at the place its patch centre
occupies inside the context, computed from the window's box in the context frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cocoer.models.backbones import build_backbone


def patchify(fmap: Tensor, p: int) -> Tensor:
    """Zero-pad a feature map so both sides divide by p and cut it into patches.

    fmap [B, C, h, w] -> [B, N, p*p*C] with N = ceil(h/p) * ceil(w/p), row-major.
    """
    B, C, h, w = fmap.shape
    ph, pw = (-h) % p, (-w) % p
    fmap = F.pad(fmap, (0, pw, 0, ph))
    gh, gw = (h + ph) // p, (w + pw) // p
    x = fmap.view(B, C, gh, p, gw, p).permute(0, 2, 4, 3, 5, 1)  # [B, gh, gw, p, p, C]
    return x.reshape(B, gh * gw, p * p * C)


def patch_centres(h: int, w: int, p: int, device: torch.device) -> Tensor:
    """Centres of the patch grid in the window's normalised [0, 1] frame: [N, 2] (x, y).

    Patch (i, j) covers feature cells j*p .. j*p+p-1 (of w cells spanning the window), so
    its centre is (j*p + p/2) / w (padding cells lie beyond 1).
    """
    gh, gw = math.ceil(h / p), math.ceil(w / p)
    ys = (torch.arange(gh, device=device) * p + p / 2) / h
    xs = (torch.arange(gw, device=device) * p + p / 2) / w
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([xx.reshape(-1), yy.reshape(-1)], -1)


class PositionEmbedding2D(nn.Module):
    """Learned embedding on the context patch grid, sampled anywhere in the context.

    Args:
        grid: (gh, gw) context patch grid; h, w, p: feature map size and patch size.
    """

    def __init__(self, d_h: int, h: int, w: int, p: int) -> None:
        super().__init__()
        self.h, self.w, self.p = h, w, p
        self.gh, self.gw = math.ceil(h / p), math.ceil(w / p)
        self.table = nn.Parameter(torch.randn(1, d_h, self.gh, self.gw) * 0.02)

    def context(self) -> Tensor:
        """[1, N, d_h]: the embedding of the context tokens."""
        return self.table.flatten(2).transpose(1, 2)

    def at_box(self, box: Tensor) -> Tensor:
        """Embedding of a window's tokens from its box in the context frame.

        box [B, 4] normalised (x1, y1, x2, y2) -> [B, N, d_h]: the context grid sampled
        bilinearly at the centres of the window's patches mapped into the context.
        """
        c = patch_centres(self.h, self.w, self.p, box.device).to(box.dtype)  # [N, 2]
        x = box[:, None, 0] + c[None, :, 0] * (box[:, None, 2] - box[:, None, 0])  # [B, N]
        y = box[:, None, 1] + c[None, :, 1] * (box[:, None, 3] - box[:, None, 1])
        # context coordinate -> fractional grid index (inverse of patch_centres)
        gx = x * self.w / self.p - 0.5
        gy = y * self.h / self.p - 0.5
        nx = 2 * gx / (self.gw - 1) - 1 if self.gw > 1 else torch.zeros_like(gx)
        ny = 2 * gy / (self.gh - 1) - 1 if self.gh > 1 else torch.zeros_like(gy)
        grid = torch.stack([nx, ny], -1).unsqueeze(1)  # [B, 1, N, 2]
        table = self.table.expand(box.shape[0], -1, -1, -1).to(box.dtype)
        out = F.grid_sample(table, grid, mode="bilinear", padding_mode="border", align_corners=True)
        return out.squeeze(2).transpose(1, 2)  # [B, N, d_h]


class CrossAttention(nn.Module):
    """Multi-head attention whose per-head width need not be d_h / heads.

    Inner width = heads * head_dim (default head_dim = ceil(d_h / heads), e.g. 3 x 342 =
    1026 for d_h = 1024), projected back to d_h.
    """

    def __init__(self, d_h: int, heads: int, head_dim: int | None = None, dropout: float = 0.0):
        super().__init__()
        self.heads = heads
        self.head_dim = head_dim or math.ceil(d_h / heads)
        inner = heads * self.head_dim
        self.q = nn.Linear(d_h, inner)
        self.kv = nn.Linear(d_h, 2 * inner)
        self.out = nn.Linear(inner, d_h)
        self.dropout = dropout

    def forward(self, x_q: Tensor, x_kv: Tensor) -> Tensor:
        """x_q [B, Nq, d_h], x_kv [B, Nk, d_h] -> [B, Nq, d_h]."""
        B, Nq, _ = x_q.shape
        q = self.q(x_q).view(B, Nq, self.heads, self.head_dim).transpose(1, 2)
        k, v = self.kv(x_kv).view(B, -1, 2, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        drop = self.dropout if self.training else 0.0
        o = F.scaled_dot_product_attention(q, k, v, dropout_p=drop)  # [B, heads, Nq, hd]
        return self.out(o.transpose(1, 2).reshape(B, Nq, -1))


class CrossLevelBlock(nn.Module):
    """Pre-norm residual block T_{m,c}: x = x + Attn(LN(x), LN(ctx)); x = x + MLP(LN(x))."""

    def __init__(
        self, d_h: int, heads: int, head_dim: int | None, mlp_ratio: float, dropout: float
    ):
        super().__init__()
        self.norm_q, self.norm_kv, self.norm_mlp = (
            nn.LayerNorm(d_h),
            nn.LayerNorm(d_h),
            nn.LayerNorm(d_h),
        )
        self.attn = CrossAttention(d_h, heads, head_dim, dropout)
        hidden = int(d_h * mlp_ratio)
        self.mlp = nn.Sequential(
            nn.Linear(d_h, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, d_h)
        )

    def forward(self, x: Tensor, ctx: Tensor) -> Tensor:
        x = x + self.attn(self.norm_q(x), self.norm_kv(ctx))
        return x + self.mlp(self.norm_mlp(x))


@dataclass
class HFEConfig:
    """Options of :class:`HFE` (the ``model.net.hfe`` node of the Hydra config).

    backbone: backbone name (one network per level, not shared); pretrained /
    weights_path: ImageNet weights (download) or a local file; image_size: S of the
    windows (fixes the feature map size); patch_size: p; d_h: token width; heads /
    head_dim / mlp_ratio / depth / dropout: the cross-level attention blocks;
    tiny_width: channel width of the project's ``tiny_cnn`` backbone.
    """

    backbone: str = "resnet50"
    pretrained: bool = False
    weights_path: str | None = None
    image_size: int = 224
    patch_size: int = 2
    d_h: int = 1024
    heads: int = 3
    head_dim: int | None = None
    mlp_ratio: float = 2.0
    depth: int = 1
    dropout: float = 0.0
    tiny_width: int = 16


class HFE(nn.Module):
    """Hierarchical feature extraction for the three levels.

    Args:
        cfg: the options (:class:`HFEConfig`; defaults when None).
        **overrides: fields of :class:`HFEConfig` replacing those of ``cfg``.
    Output of ``forward``: [B, 3, N*d_h] in level order (c, b, h).
    """

    def __init__(self, cfg: HFEConfig | None = None, **overrides: Any) -> None:
        super().__init__()
        cfg = replace(cfg or HFEConfig(), **overrides)
        self.cfg = cfg
        self.backbones = nn.ModuleList(
            build_backbone(cfg.backbone, cfg.pretrained, cfg.weights_path, cfg.tiny_width)
            for _ in range(3)
        )
        S, p, d_h = cfg.image_size, cfg.patch_size, cfg.d_h
        with torch.no_grad():
            probe = self.backbones[0].eval()(torch.zeros(1, 3, S, S))
        self.backbones[0].train()
        _, C, h, w = probe.shape
        self.p, self.d_h, self.fmap_hw = p, d_h, (h, w)
        self.num_patches = math.ceil(h / p) * math.ceil(w / p)
        self.proj = nn.ModuleList(nn.Linear(p * p * C, d_h) for _ in range(3))
        self.pos = PositionEmbedding2D(d_h, h, w, p)
        blocks = lambda: nn.ModuleList(
            CrossLevelBlock(d_h, cfg.heads, cfg.head_dim, cfg.mlp_ratio, cfg.dropout)
            for _ in range(cfg.depth)
        )
        self.t_cc, self.t_bc, self.t_hc = blocks(), blocks(), blocks()

    @property
    def out_dim(self) -> int:
        """N * d_h, the width of one level's flattened tokens."""
        return self.num_patches * self.d_h

    def tokens(self, window: Tensor, level: int) -> Tensor:
        """window [B, 3, S, S] -> tokens [B, N, d_h] (backbone, patchify, E)."""
        return self.proj[level](patchify(self.backbones[level](window), self.p))

    def forward(
        self, context: Tensor, body: Tensor, head: Tensor, body_box: Tensor, head_box: Tensor
    ) -> Tensor:
        """Windows [B, 3, S, S], boxes [B, 4] in the context frame -> [B, 3, N*d_h]."""
        t_c = self.tokens(context, 0) + self.pos.context()
        t_b = self.tokens(body, 1) + self.pos.at_box(body_box)
        t_h = self.tokens(head, 2) + self.pos.at_box(head_box)
        ctx = t_c
        for blk_cc, blk_bc, blk_hc in zip(self.t_cc, self.t_bc, self.t_hc, strict=True):
            t_b = blk_bc(t_b, ctx)
            t_h = blk_hc(t_h, ctx)
            t_c = blk_cc(t_c, ctx)
            ctx = t_c
        return torch.stack([t_c, t_b, t_h], 1).flatten(2)

"""Hierarchical feature extraction (docs/method.md section 2).

windows (c, b, h) -> backbone_m -> feature map F_m [B, C, h, w]
 -> zero-pad to a multiple of p, cut into N = (H'/p)(W'/p) patches of p*p*C
 -> projection E -> tokens [B, N, d_h] + position embedding
 -> cross-level attention: T_cc (context self), T_bc (body -> context), T_hc (head -> context)
 -> flattened [B, 3, N*d_h], the input of the level mappings' FFN0.

Position: the context tokens get a learned 2-D embedding over the context patch grid; a
body / head token gets that embedding sampled (bilinear) at the place its patch centre
occupies inside the context, computed from the window's box in the context frame.

Options that reproduce the authors' released code (docs/method.md section 9; defaults are the
paper's method): ``backbone_norm`` (M2), ``pos_sampling`` (M5), ``pos_injection`` (M6),
``attn_value`` (M7), ``kv_source`` (M8), ``mlp_activation`` (M10), ``ln_after`` (M13) and the
model-level ``box_quantization`` (P6).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cocoer.errors import check_choice
from cocoer.models.backbones import build_backbone
from cocoer.models.config import (
    ATTN_VALUES,
    BOX_QUANTIZATIONS,
    MLP_ACTIVATIONS,
    POS_INJECTIONS,
    POS_SAMPLINGS,
    HFEConfig,
)
from cocoer.models.norms import use_per_sample_batchnorm
from cocoer.models.position import authors_position


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
        d_h: width; h, w, p: feature map size and patch size (grid ceil(h/p) x ceil(w/p)).
        sampling: ``cocoer`` (patch centres, border clamp) or ``authors`` (see
            :mod:`cocoer.models.position`).
        image_size: S, the side of the context frame in pixels (for ``authors`` and
            ``box_quantization``).
        box_quantization: ``none`` or ``int224``: box * S rounded to integers first (the
            authors' integer boxes in the S = 224 frame).
    """

    def __init__(
        self,
        d_h: int,
        h: int,
        w: int,
        p: int,
        sampling: str = "cocoer",
        image_size: int = 224,
        box_quantization: str = "none",
    ) -> None:
        super().__init__()
        check_choice("pos_sampling", sampling, POS_SAMPLINGS)
        check_choice("box_quantization", box_quantization, BOX_QUANTIZATIONS)
        self.h, self.w, self.p = h, w, p
        self.gh, self.gw = math.ceil(h / p), math.ceil(w / p)
        self.sampling, self.image_size, self.box_quantization = (
            sampling,
            image_size,
            box_quantization,
        )
        #: (c_y, c_x) pixels of the S frame per table cell (32 for ResNet-50 at 224, p = 1)
        self.cell = (image_size * p / h, image_size * p / w)
        self.table = nn.Parameter(torch.randn(1, d_h, self.gh, self.gw) * 0.02)

    def context(self) -> Tensor:
        """[1, N, d_h]: the embedding of the context tokens."""
        return self.table.flatten(2).transpose(1, 2)

    def at_box(self, box: Tensor) -> Tensor:
        """Embedding of a window's tokens from its box in the context frame.

        box [B, 4] normalised (x1, y1, x2, y2) -> [B, N, d_h]: the context grid sampled
        bilinearly at the window's token positions mapped into the context.
        """
        quantize = self.box_quantization == "int224"
        if self.sampling == "authors":
            box_px = box * self.image_size
            return authors_position(
                self.table, torch.round(box_px) if quantize else box_px, self.cell
            )
        if quantize:  # integer pixels of the S frame
            box = torch.round(box * self.image_size) / self.image_size
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
    1026 for d_h = 1024), projected back to d_h. Keys and values share one Linear ``kv``
    (weights [k; v]); they may be computed from different inputs.
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

    def forward(self, x_q: Tensor, x_k: Tensor, x_v: Tensor | None = None) -> Tensor:
        """x_q [B, Nq, d_h], x_k / x_v [B, Nk, d_h] (x_v defaults to x_k) -> [B, Nq, d_h]."""
        B, Nq, _ = x_q.shape
        q = self.q(x_q).view(B, Nq, self.heads, self.head_dim).transpose(1, 2)
        if x_v is None:
            k, v = self.kv(x_k).view(B, -1, 2, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        else:
            w_k, w_v = self.kv.weight.chunk(2, 0)
            b_k, b_v = self.kv.bias.chunk(2, 0)
            k = F.linear(x_k, w_k, b_k).view(B, -1, self.heads, self.head_dim).transpose(1, 2)
            v = F.linear(x_v, w_v, b_v).view(B, -1, self.heads, self.head_dim).transpose(1, 2)
        drop = self.dropout if self.training else 0.0
        o = F.scaled_dot_product_attention(q, k, v, dropout_p=drop)  # [B, heads, Nq, hd]
        return self.out(o.transpose(1, 2).reshape(B, Nq, -1))


class CrossLevelBlock(nn.Module):
    """Pre-norm residual block T_{m,c}: x = x + Attn(LN(x), LN(ctx)); x = x + MLP(LN(x)).

    Options (the authors' ``Encoder.forward_pre``, docs/method.md section 9):
        pos_injection: ``tokens`` (position already in x / ctx) or ``qk``: the position is
            added to the LayerNormed query and key inputs, LN_q(x) + pos_x and
            LN_kv(ctx) + pos_ctx, never to the residual stream nor to the values.
        attn_value: ``normed`` (V = W_v LN_kv(ctx)) or ``raw`` (V = W_v ctx).
        mlp_activation: ``gelu`` or ``silu`` (Swish, x sigmoid(x)).
    """

    def __init__(
        self,
        d_h: int,
        heads: int,
        head_dim: int | None,
        mlp_ratio: float,
        dropout: float,
        pos_injection: str = "tokens",
        attn_value: str = "normed",
        mlp_activation: str = "gelu",
    ):
        super().__init__()
        check_choice("pos_injection", pos_injection, POS_INJECTIONS)
        check_choice("attn_value", attn_value, ATTN_VALUES)
        check_choice("mlp_activation", mlp_activation, MLP_ACTIVATIONS)
        self.pos_injection, self.attn_value = pos_injection, attn_value
        self.norm_q, self.norm_kv, self.norm_mlp = (
            nn.LayerNorm(d_h),
            nn.LayerNorm(d_h),
            nn.LayerNorm(d_h),
        )
        self.attn = CrossAttention(d_h, heads, head_dim, dropout)
        hidden = int(d_h * mlp_ratio)
        act: nn.Module = nn.GELU() if mlp_activation == "gelu" else nn.SiLU()
        self.mlp = nn.Sequential(
            nn.Linear(d_h, hidden), act, nn.Dropout(dropout), nn.Linear(hidden, d_h)
        )

    def forward(
        self, x: Tensor, ctx: Tensor, pos_x: Tensor | None = None, pos_ctx: Tensor | None = None
    ) -> Tensor:
        """x [B, N, d_h], ctx [B, Nc, d_h]; pos_x [B|1, N, d_h], pos_ctx [B|1, Nc, d_h] (used
        with ``pos_injection=qk`` only) -> [B, N, d_h]."""
        x_q, x_k = self.norm_q(x), self.norm_kv(ctx)
        x_v = ctx if self.attn_value == "raw" else None
        if self.pos_injection == "qk":
            assert pos_x is not None and pos_ctx is not None, "pos_injection=qk needs positions"
            x_v = x_k if x_v is None else x_v
            x_q, x_k = x_q + pos_x, x_k + pos_ctx
        x = x + self.attn(x_q, x_k, x_v)
        return x + self.mlp(self.norm_mlp(x))


class HFE(nn.Module):
    """Hierarchical feature extraction for the three levels.

    Args:
        cfg: the options (:class:`HFEConfig`; defaults when None).
        **overrides: fields of :class:`HFEConfig` replacing those of ``cfg``.
        box_quantization: ``none`` or ``int224`` (``model.net.box_quantization``, see
            :class:`PositionEmbedding2D`).
    Output of ``forward``: [B, 3, N*d_h] in level order (c, b, h).
    """

    def __init__(
        self, cfg: HFEConfig | None = None, box_quantization: str = "none", **overrides: Any
    ) -> None:
        super().__init__()
        cfg = replace(cfg or HFEConfig(), **overrides)
        self.cfg = cfg
        cfg.check()
        self.backbones = nn.ModuleList(
            build_backbone(cfg.backbone, cfg.pretrained, cfg.weights_path, cfg.tiny_width)
            for _ in range(3)
        )
        if cfg.backbone_norm == "per_sample":
            use_per_sample_batchnorm(self.backbones)
        S, p, d_h = cfg.image_size, cfg.patch_size, cfg.d_h
        with torch.no_grad():
            probe = self.backbones[0].eval()(torch.zeros(1, 3, S, S))
        self.backbones[0].train()
        _, C, h, w = probe.shape
        self.p, self.d_h, self.fmap_hw = p, d_h, (h, w)
        self.pos_injection, self.kv_source = cfg.pos_injection, cfg.kv_source
        self.num_patches = math.ceil(h / p) * math.ceil(w / p)
        self.proj = nn.ModuleList(nn.Linear(p * p * C, d_h) for _ in range(3))
        self.pos = PositionEmbedding2D(
            d_h, h, w, p, cfg.pos_sampling, cfg.image_size, box_quantization
        )
        blocks = lambda: nn.ModuleList(
            CrossLevelBlock(
                d_h,
                cfg.heads,
                cfg.head_dim,
                cfg.mlp_ratio,
                cfg.dropout,
                cfg.pos_injection,
                cfg.attn_value,
                cfg.mlp_activation,
            )
            for _ in range(cfg.depth)
        )
        self.t_cc, self.t_bc, self.t_hc = blocks(), blocks(), blocks()
        self.ln_after = nn.LayerNorm(d_h) if cfg.ln_after == "shared" else None

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
        t_c, t_b, t_h = self.tokens(context, 0), self.tokens(body, 1), self.tokens(head, 2)
        pos_c, pos_b, pos_h = (
            self.pos.context(),
            self.pos.at_box(body_box),
            self.pos.at_box(head_box),
        )
        pos: tuple[Tensor | None, ...] = (None, None, None)
        if self.pos_injection == "tokens":
            t_c, t_b, t_h = t_c + pos_c, t_b + pos_b, t_h + pos_h
        else:
            pos = (pos_c, pos_b, pos_h)
        ctx = ctx0 = t_c
        for blk_cc, blk_bc, blk_hc in zip(self.t_cc, self.t_bc, self.t_hc, strict=True):
            kv = ctx0 if self.kv_source == "initial" else ctx
            t_b = blk_bc(t_b, kv, pos[1], pos[0])
            t_h = blk_hc(t_h, kv, pos[2], pos[0])
            t_c = blk_cc(t_c, ctx, pos[0], pos[0])
            ctx = t_c
        out = torch.stack([t_c, t_b, t_h], 1)  # [B, 3, N, d_h]
        if self.ln_after is not None:
            out = self.ln_after(out)
        return out.flatten(2)

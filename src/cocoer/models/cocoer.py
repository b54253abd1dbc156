"""The CocoER model: HFE -> level mappings -> V-I -> workspace -> FFN2 (METHOD.md 2-4)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from cocoer.constants import CAER_S_CLASSES, EMOTIC_CATEGORIES
from cocoer.data.preprocess import PreprocessConfig
from cocoer.losses import LevelLoss
from cocoer.models.heads import FusionHead, GenericLevelMappings, LevelMappings
from cocoer.models.hfe import HFE
from cocoer.models.vi import VIModule
from cocoer.workspace import Workspace


def default_class_names(num_classes: int) -> tuple[str, ...]:
    """EMOTIC's 26 categories or CAER-S's 7 classes by k; generic names otherwise."""
    if num_classes == len(EMOTIC_CATEGORIES):
        return EMOTIC_CATEGORIES
    if num_classes == len(CAER_S_CLASSES):
        return CAER_S_CLASSES
    return tuple(f"class {i}" for i in range(num_classes))


class CocoER(nn.Module):
    """Three-level emotion recogniser with competition and coordination.

    Args:
        num_classes: k. multi_label: EMOTIC-style (True) or single-label (False).
        class_names: prompt vocabulary (defaults by k).
        d: width of z_m, z_t.
        loss_kind: ``bce`` | ``l2`` (multi-label) or ``ce`` (single-label): L_hier.
        mapping: structure of FFN0 in the level mappings: ``fc`` (the paper's; closed-form
            inner step) or ``mlp`` (deeper, per-sample autograd inner step; Fig. 3).
        hfe / vi / workspace: keyword arguments of :class:`HFE`, :class:`VIModule`,
            :class:`Workspace`.
        level_input_activation: ``none`` or ``gelu`` (a GELU before FFN0's Linear, as the
            authors' ``cls_HFE_*.0``; the inner step then uses |GELU(x)|^2).
        fusion_style: ``cocoer`` or ``authors`` (FFN2 with a leading GELU and two more
            LayerNorms, see :class:`FusionHead`).
        box_quantization: ``none`` or ``int224``: body / head boxes rounded to integers of
            the S x S frame before the position embedding (the authors' integer boxes).
        preprocess: how inference windows are made for this model (channel order, box
            rounding; :class:`cocoer.data.preprocess.PreprocessConfig`), kept as
            ``self.preprocess`` and applied by ``cocoer-infer``.
    """

    def __init__(
        self,
        num_classes: int,
        multi_label: bool = True,
        class_names: list[str] | tuple[str, ...] | None = None,
        d: int = 256,
        loss_kind: str | None = None,
        mapping: str = "fc",
        hfe: Mapping[str, Any] | None = None,
        vi: Mapping[str, Any] | None = None,
        workspace: Mapping[str, Any] | None = None,
        level_input_activation: str = "none",
        fusion_style: str = "cocoer",
        box_quantization: str = "none",
        preprocess: Mapping[str, Any] | PreprocessConfig | None = None,
    ) -> None:
        super().__init__()
        self.num_classes, self.multi_label, self.d = num_classes, multi_label, d
        self.class_names = tuple(class_names or default_class_names(num_classes))
        if len(self.class_names) != num_classes:
            raise ValueError(f"{len(self.class_names)} class names for {num_classes} classes")
        self.level_loss = LevelLoss(loss_kind or ("bce" if multi_label else "ce"))
        if self.level_loss.multi_label != multi_label:
            raise ValueError(
                f"loss {self.level_loss.kind!r} does not fit multi_label={multi_label}"
            )
        self.preprocess = PreprocessConfig.from_any(preprocess)
        self.hfe = HFE(**dict(hfe or {}), box_quantization=box_quantization)
        self.levels: LevelMappings | GenericLevelMappings
        if mapping == "fc":
            self.levels = LevelMappings(
                3, self.hfe.out_dim, d, num_classes, input_activation=level_input_activation
            )
        else:
            self.levels = GenericLevelMappings(
                3, self.hfe.out_dim, d, num_classes, mapping, level_input_activation
            )
        self.vi = VIModule(self.class_names, d=d, multi_label=multi_label, **dict(vi or {}))
        self.workspace = Workspace(self.level_loss, **dict(workspace or {}))
        self.fusion = FusionHead(d, num_classes, style=fusion_style)

    def forward(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Run the model on a batch of the data contract.

        Args:
            batch: ``context``, ``body``, ``head`` [B, 3, S, S]; ``body_box``, ``head_box``
                [B, 4] in the context frame, normalised.
        Returns:
            ``logits_G`` [B,k] final; ``logits_t`` [B,k] V-I; ``y_t`` [B,k] pseudo label;
            ``logits_levels`` [B,3,k] (c, b, h); ``f`` [B,3] level losses vs y_t;
            ``order`` [B,3] exclusion sequence (first excluded first); ``mu`` [B,3];
            ``lam`` [B,2,3]; ``delta_sq`` [B]; ``z`` / ``z_hat`` [B,3,d]; ``z_t`` [B,d];
            ``u`` [B,D].
        """
        x = self.hfe(
            batch["context"], batch["body"], batch["head"], batch["body_box"], batch["head_box"]
        )
        z, l, cache = self.levels(x)  # [B,3,d], [B,3,k]
        vi = self.vi(batch["context"])
        ws = self.workspace(self.levels, z, l, cache, vi["y_t"])
        z_G = torch.cat([ws.z_hat.flatten(1), vi["z_t"]], -1)  # [B, 4d]
        return {
            "logits_G": self.fusion(z_G),
            "logits_t": vi["logits_t"],
            "y_t": vi["y_t"],
            "logits_levels": l,
            "f": ws.f,
            "order": ws.order,
            "mu": ws.mu,
            "lam": ws.lam,
            "delta_sq": ws.delta_sq,
            "z": z,
            "z_hat": ws.z_hat,
            "z_t": vi["z_t"],
            "u": vi["u"],
        }

    def parameter_counts(self) -> dict[str, int]:
        """Parameters per part (trainable and frozen CLIP separately)."""
        parts = {
            "hfe.backbones": self.hfe.backbones,
            "hfe.projection+position": nn.ModuleList([self.hfe.proj, self.hfe.pos]),
            "hfe.cross_attention": nn.ModuleList([self.hfe.t_cc, self.hfe.t_bc, self.hfe.t_hc]),
            "level_mappings": self.levels,
            "vi.W+FFN1": nn.ModuleList([self.vi.W, self.vi.ffn1_hidden, self.vi.ffn1_out]),
            "vi.clip (frozen)": self.vi.clip,
            "fusion.FFN2": self.fusion,
        }
        counts = {k: sum(p.numel() for p in m.parameters()) for k, m in parts.items()}
        counts["total"] = sum(p.numel() for p in self.parameters())
        counts["trainable"] = sum(p.numel() for p in self.parameters() if p.requires_grad)
        return counts

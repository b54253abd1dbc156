"""The CocoER model: HFE -> level mappings -> V-I -> workspace -> FFN2 (docs/method.md 2-4)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from cocoer.constants import CAER_S_CLASSES, EMOTIC_CATEGORIES
from cocoer.models.config import CocoERConfig
from cocoer.models.heads import (
    FusionHead,
    GenericLevelMappings,
    LevelMappings,
)
from cocoer.models.hfe import HFE
from cocoer.models.preprocess import PreprocessConfig
from cocoer.models.vad import VADHead
from cocoer.models.vi import VIModule
from cocoer.workspace import Workspace
from cocoer.workspace.level_losses import LevelLoss


def default_class_names(num_classes: int) -> tuple[str, ...]:
    """EMOTIC's 26 categories or CAER-S's 7 classes by k; generic names otherwise."""
    if num_classes == len(EMOTIC_CATEGORIES):
        return EMOTIC_CATEGORIES
    if num_classes == len(CAER_S_CLASSES):
        return CAER_S_CLASSES
    return tuple(f"class {i}" for i in range(num_classes))


def class_names_of(cfg: CocoERConfig) -> tuple[str, ...]:
    """The k class names of a config: its ``class_names``, else the defaults for k.

    Raises:
        ValueError: as many names as classes are needed.
    """
    names = tuple(cfg.class_names or default_class_names(cfg.num_classes))
    if len(names) != cfg.num_classes:
        raise ValueError(f"{len(names)} class names for {cfg.num_classes} classes")
    return names


class CocoER(nn.Module):
    """Three-level emotion recogniser with competition and coordination.

    Args:
        cfg: the options (:class:`CocoERConfig`, with ``num_classes`` and ``multi_label``
            set). Prefer :func:`cocoer.models.create_model`.
    """

    def __init__(self, cfg: CocoERConfig) -> None:
        super().__init__()
        if not isinstance(cfg.num_classes, int) or not isinstance(cfg.multi_label, bool):
            raise ValueError("CocoERConfig needs num_classes (int) and multi_label (bool)")
        cfg.check()
        self.cfg = cfg
        num_classes, multi_label, d = cfg.num_classes, cfg.multi_label, cfg.d
        self.num_classes, self.multi_label, self.d = num_classes, multi_label, d
        self.class_names = class_names_of(cfg)
        self.level_loss = LevelLoss(cfg.loss_kind or ("bce" if multi_label else "ce"))
        if self.level_loss.multi_label != multi_label:
            raise ValueError(
                f"loss {self.level_loss.kind!r} does not fit multi_label={multi_label}"
            )
        self.preprocess = PreprocessConfig.from_any(cfg.preprocess)
        self.hfe = HFE(cfg.hfe, box_quantization=cfg.box_quantization)
        self.levels: LevelMappings | GenericLevelMappings
        if cfg.mapping == "fc":
            self.levels = LevelMappings(
                3, self.hfe.out_dim, d, num_classes, input_activation=cfg.level_input_activation
            )
        else:
            self.levels = GenericLevelMappings(
                3, self.hfe.out_dim, d, num_classes, cfg.mapping, cfg.level_input_activation
            )
        self.vi = VIModule(self.class_names, cfg.vi, d=d, multi_label=multi_label)
        self.workspace = Workspace(self.level_loss, cfg.workspace)
        self.fusion = FusionHead(d, num_classes, style=cfg.fusion_style)
        self.vad = VADHead(d) if cfg.vad.enabled else None

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
            ``u`` [B,D]; with the VAD head (``vad.enabled``) also ``vad_G`` [B,3],
            ``vad_t`` [B,3], ``vad_levels`` [B,3,3] (valence, arousal, dominance).
        """
        x = self.hfe(
            batch["context"], batch["body"], batch["head"], batch["body_box"], batch["head_box"]
        )
        z, l, cache = self.levels(x)  # [B,3,d], [B,3,k]
        vi = self.vi(batch["context"])
        ws = self.workspace(self.levels, z, l, cache, vi["y_t"])
        z_G = torch.cat([ws.z_hat.flatten(1), vi["z_t"]], -1)  # [B, 4d]
        vad = self.vad(z_G, z, vi["z_t"]) if self.vad is not None else {}
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
            **vad,
        }

    def parameter_counts(self) -> dict[str, int]:
        """Parameters per part (trainable and frozen CLIP separately)."""
        parts = {
            "hfe.backbones": self.hfe.backbones,
            "hfe.projection+position": nn.ModuleList([self.hfe.proj, self.hfe.pos]),
            "hfe.cross_attention": nn.ModuleList(
                [self.hfe.t_cc, self.hfe.t_bc, self.hfe.t_hc]
                + ([self.hfe.ln_after] if self.hfe.ln_after is not None else [])
            ),
            "level_mappings": self.levels,
            "vi.W+FFN1": nn.ModuleList([self.vi.W, self.vi.ffn1_hidden, self.vi.ffn1_out]),
            "vi.clip (frozen)": self.vi.clip,
            "fusion.FFN2": self.fusion,
            **({"vad": self.vad} if self.vad is not None else {}),
        }
        counts = {k: sum(p.numel() for p in m.parameters()) for k, m in parts.items()}
        counts["total"] = sum(p.numel() for p in self.parameters())
        counts["trainable"] = sum(p.numel() for p in self.parameters() if p.requires_grad)
        return counts

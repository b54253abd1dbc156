"""Vocabulary-informed alignment, V-I (docs/method.md section 3).

A frozen CLIP encodes the context image into u (L2-normalised) and the k prompts
"This photo shows {class} emotion." into w_1..w_k (L2-normalised, computed once and kept
as a buffer). A learned square map W (orthogonal init) gives U = W u; the V-I feature is
the k x D matrix with rows w_j * U, flattened into FFN1:

    FFN1: Linear(kD -> kD/4) -> GELU -> Linear(-> d) -> GELU  =: z_t  -> Linear(d -> k) = l_t

Pseudo label y_t: multi-label 1[sigmoid(l_t) > tau]; single-label one-hot(argmax l_t).
y_t carries no gradient.

CLIP models are created with open_clip: the paper's ``RN50`` (ablation ``RN50x16``,
``RN50x64``, ``ViT-B-16``, ``ViT-B-32``) with ``pretrained: openai`` (downloaded by
open_clip on a machine with internet) or ``weights_path`` (a local checkpoint file), and
the project's tiny configs ``cocoer-tiny-RN`` / ``cocoer-tiny-ViT`` (random weights, for
tests and the CPU smoke run).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cocoer.constants import IMAGENET_MEAN, IMAGENET_STD
from cocoer.models.config import (
    VIConfig,
)

PROMPT_TEMPLATE = "This photo shows {} emotion."
_TINY_CONFIG_DIR = Path(__file__).resolve().parents[1] / "resources" / "clip"


class _OpenCLIPModel(Protocol):
    """The part of an open_clip CLIP model used here (open_clip ships no type hints)."""

    visual: Any

    def encode_image(self, image: Tensor, normalize: bool = False) -> Tensor: ...

    def encode_text(self, text: Tensor, normalize: bool = False) -> Tensor: ...


def register_tiny_clip_configs() -> None:
    """Make the project's tiny CLIP configs known to open_clip (idempotent)."""
    import open_clip

    if "cocoer-tiny-RN" not in open_clip.list_models():
        open_clip.add_model_config(_TINY_CONFIG_DIR)


def build_clip(
    name: str, pretrained: str | None = None, weights_path: str | None = None
) -> nn.Module:
    """Create an open_clip model: ``pretrained`` tag (download) or local ``weights_path``,
    on torch's default device (under ``with torch.device("meta")``: shapes only, no memory)."""
    import open_clip

    register_tiny_clip_configs()
    if name not in open_clip.list_models():
        raise ValueError(f"unknown CLIP model {name!r} (open_clip does not list it)")
    if weights_path is not None:
        if not Path(weights_path).is_file():
            raise FileNotFoundError(f"CLIP weights file not found: {weights_path}")
        pretrained = str(weights_path)
    device = torch.get_default_device()
    return open_clip.create_model(name, pretrained=pretrained or None, device=device)


class VIModule(nn.Module):
    """V-I alignment: frozen CLIP + W + FFN1 + pseudo labels.

    Args:
        class_names: the k class names (prompt vocabulary).
        cfg: the options (:class:`VIConfig`; defaults when None).
        d: width of z_t. multi_label: pseudo-label rule (threshold tau or argmax).
        **overrides: fields of :class:`VIConfig` replacing those of ``cfg``.
    """

    # buffers registered in __init__
    clip_mean: Tensor
    clip_std: Tensor
    in_mean: Tensor
    in_std: Tensor
    text_embeddings: Tensor

    def __init__(
        self,
        class_names: list[str] | tuple[str, ...],
        cfg: VIConfig | None = None,
        *,
        d: int = 256,
        multi_label: bool = True,
        **overrides: Any,
    ) -> None:
        super().__init__()
        cfg = replace(cfg or VIConfig(), **overrides)
        cfg.check("vi.")
        import open_clip

        self.cfg = cfg
        self.multi_label, self.tau, self.feature = multi_label, cfg.tau, cfg.feature
        self.clip_input, self.input_activation = cfg.clip_input, cfg.input_activation
        self.clip_precision, self._clip_half = cfg.clip_precision, False
        self.clip = build_clip(cfg.clip_name, cfg.clip_pretrained, cfg.clip_weights_path)
        self.clip.requires_grad_(False).eval()
        size = self._clip_api.visual.image_size
        self.clip_size = tuple(size) if isinstance(size, (tuple, list)) else (size, size)
        pcfg = open_clip.get_model_preprocess_cfg(self.clip)
        mean = torch.tensor(pcfg.get("mean", open_clip.OPENAI_DATASET_MEAN)).view(1, 3, 1, 1)
        std = torch.tensor(pcfg.get("std", open_clip.OPENAI_DATASET_STD)).view(1, 3, 1, 1)
        self.register_buffer("clip_mean", mean, persistent=False)
        self.register_buffer("clip_std", std, persistent=False)
        self.register_buffer(
            "in_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False
        )
        self.register_buffer(
            "in_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False
        )

        tokenizer = open_clip.get_tokenizer(cfg.clip_name)
        prompts = [PROMPT_TEMPLATE.format(c.lower()) for c in class_names]
        with torch.no_grad():
            w = self._clip_api.encode_text(tokenizer(prompts), normalize=True).float()
        self.register_buffer("text_embeddings", w)  # [k, D]
        k, D = w.shape
        self.k, self.D = k, D
        self.W = nn.Linear(D, D, bias=False)
        nn.init.orthogonal_(self.W.weight)
        hidden = max(1, int(k * D * cfg.hidden_ratio))
        self.ffn1_hidden = nn.Sequential(
            nn.Linear(k * D, hidden), nn.GELU(), nn.Linear(hidden, d), nn.GELU()
        )
        self.ffn1_out = nn.Linear(d, k)

    @property
    def _clip_api(self) -> _OpenCLIPModel:
        """``self.clip`` seen through the open_clip methods used here."""
        return cast(_OpenCLIPModel, self.clip)

    def train(self, mode: bool = True) -> VIModule:
        """CLIP stays in eval mode (frozen) whatever the mode of the rest."""
        super().train(mode)
        self.clip.eval()
        return self

    def encode_image(self, context: Tensor) -> Tensor:
        """ImageNet-normalised context window [B, 3, S, S] -> u [B, D] (L2-normalised).

        ``clip_input=renormalize``: the window is mapped back to [0, 1], resized to CLIP's
        input size and normalised with CLIP's statistics, all on tensors. ``passthrough``:
        the window as is (resized only if its size is not CLIP's).
        """
        x = context
        if self.clip_input == "renormalize":
            x = context * self.in_std + self.in_mean
        if tuple(x.shape[-2:]) != self.clip_size:
            x = F.interpolate(x, size=self.clip_size, mode="bicubic", align_corners=False)
        if self.clip_input == "renormalize":
            x = ((x.clamp(0, 1) - self.clip_mean) / self.clip_std).to(context.dtype)
        if self.clip_precision == "fp16" and x.device.type == "cuda":
            x = x.half()
            if not self._clip_half:
                from open_clip.model import convert_weights_to_lp

                convert_weights_to_lp(self.clip, torch.float16)
                self._clip_half = True
        elif self._clip_half:  # moved off CUDA after an fp16 forward: back to float32
            self.clip.float()
            self._clip_half = False
        with torch.no_grad():
            u = self._clip_api.encode_image(x, normalize=False).float()
        return F.normalize(u, dim=-1).to(context.dtype)

    def vi_feature(self, U: Tensor) -> Tensor:
        """U [B, D] -> flattened V-I feature [B, k*D]."""
        if self.feature == "repeat":
            return U.unsqueeze(1).expand(-1, self.k, -1).flatten(1)
        return (self.text_embeddings.to(U.dtype).unsqueeze(0) * U.unsqueeze(1)).flatten(1)

    def pseudo_label(self, l_t: Tensor) -> Tensor:
        """y_t [B, k] (detached) from the V-I logits."""
        l_t = l_t.detach()
        if self.multi_label:
            return (torch.sigmoid(l_t) > self.tau).to(l_t.dtype)
        return F.one_hot(l_t.argmax(-1), self.k).to(l_t.dtype)

    def forward(self, context: Tensor) -> dict[str, Tensor]:
        """context [B, 3, S, S] -> dict(u [B,D], U [B,D], z_t [B,d], logits_t [B,k], y_t [B,k])."""
        u = self.encode_image(context)
        U = self.W(u)
        feature = self.vi_feature(U)
        if self.input_activation == "gelu":
            feature = F.gelu(feature)
        z_t = self.ffn1_hidden(feature)
        l_t = self.ffn1_out(z_t)
        return {"u": u, "U": U, "z_t": z_t, "logits_t": l_t, "y_t": self.pseudo_label(l_t)}

    def prealign_loss(self, u: Tensor, labels: Tensor) -> Tensor:
        """Pre-stage (authors' recipe): 1 - cos(W u, mean text embedding of the GT classes).

        u [B, D], labels [B, k] multi-hot / one-hot -> scalar.
        """
        target = labels @ self.text_embeddings.to(u.dtype)  # [B, D]
        target = target / labels.sum(-1, keepdim=True).clamp_min(1.0)
        return (1.0 - F.cosine_similarity(self.W(u), target, dim=-1)).mean()

    def prealign_step(self, context: Tensor, labels: Tensor) -> tuple[dict[str, Tensor], Tensor]:
        """One step of the pre-alignment stage (``model.stage=prealign``): W alone is trained
        with :meth:`prealign_loss`; the logits of every head are 10 cos(W u, w_j) (a
        zero-shot classifier through W).

        context [B, 3, S, S], labels [B, k] -> (outputs with the keys of
        :meth:`cocoer.models.cocoer.CocoER.forward` that the epoch statistics read:
        ``logits_G`` / ``logits_t`` [B, k], ``logits_levels`` [B, 3, k], ``order`` [B, 3]
        (zeros, not counted), ``y_t`` [B, k], ``f`` [B, 3] (zeros); the loss, a scalar).
        """
        u = self.encode_image(context)
        loss = self.prealign_loss(u, labels)
        U = F.normalize(self.W(u), dim=-1)
        logits = 10.0 * U @ self.text_embeddings.to(U.dtype).T
        B = logits.shape[0]
        out = {
            "logits_G": logits,
            "logits_t": logits,
            "logits_levels": logits.unsqueeze(1).expand(-1, 3, -1),
            "order": logits.new_zeros(B, 3, dtype=torch.long),
            "y_t": (logits > 0).to(logits.dtype),
            "f": logits.new_zeros(B, 3),
        }
        return out, loss

"""The tiny CocoER of the fast tests (tiny CNN backbones, the tiny CLIP, k = 5, d = 16):
its config, builders through the model factory, the same model as composed by Hydra, and a
random batch of windows and boxes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from cocoer.models import create_model
from cocoer.models.cocoer import CocoER

#: the HFE of the tiny model: 2 x 2 tokens of a 32 px window (tiny CNN, stride 16)
TINY_HFE: dict[str, Any] = {
    "backbone": "tiny_cnn",
    "tiny_width": 4,
    "image_size": 32,
    "patch_size": 2,
    "d_h": 16,
    "heads": 2,
}
#: the V-I module of the tiny model: the test CLIP, a 5 % hidden layer
TINY_VI: dict[str, Any] = {"clip_name": "cocoer-tiny-RN", "hidden_ratio": 0.05}
#: the tiny model's net config (what ``create_model`` takes)
TINY_NET: dict[str, Any] = {
    "num_classes": 5,
    "multi_label": True,
    "d": 16,
    "hfe": TINY_HFE,
    "vi": TINY_VI,
}

#: overrides that shrink a model preset (``model=...``) to the tiny model's size
TINY_PRESET = [
    "data=emotic_synthetic",
    "data.image_size=32",
    "model.net.hfe.backbone=tiny_cnn",
    "model.net.hfe.tiny_width=4",
    "model.net.hfe.d_h=16",
    "model.net.hfe.head_dim=8",
    "model.net.hfe.mlp_ratio=2.0",
    "model.net.d=16",
    "model.net.vi.clip_name=cocoer-tiny-RN",
    "model.net.vi.hidden_ratio=0.01",
]

#: outputs of :func:`reference_net` on a stored batch, written by the code at commit bbf5b60
REFERENCE = Path(__file__).resolve().parents[1] / "method/reference/default_model_outputs.pt"


def tiny_net(**kwargs: Any) -> CocoER:
    """The tiny model through the model factory; ``kwargs`` replace top-level options."""
    return create_model({**TINY_NET, **kwargs})


def reference_net(**kwargs: Any) -> CocoER:
    """The tiny model of the stored reference (HFE depth 2), seeded with 0; ``hfe`` and
    ``vi`` in ``kwargs`` are merged into the tiny ones, the rest replace top-level options."""
    torch.manual_seed(0)
    hfe = {**TINY_HFE, "depth": 2, **kwargs.pop("hfe", {})}
    vi = {**TINY_VI, **kwargs.pop("vi", {})}
    return create_model({**TINY_NET, "hfe": hfe, "vi": vi, **kwargs})


def random_batch(n: int, size: int, seed: int) -> dict[str, torch.Tensor]:
    """Windows [n,3,S,S] and valid random boxes [n,4] (x1 < x2, y1 < y2 in [0, 1])."""
    gen = torch.Generator().manual_seed(seed)
    batch = {k: torch.randn(n, 3, size, size, generator=gen) for k in ("context", "body", "head")}
    for name in ("body_box", "head_box"):
        xy = torch.rand(n, 2, 2, generator=gen).sort(-1).values  # [n, (x, y), (lo, hi)]
        batch[name] = torch.stack([xy[:, 0, 0], xy[:, 1, 0], xy[:, 0, 1], xy[:, 1, 1]], -1)
    return batch

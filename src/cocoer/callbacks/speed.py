"""Speed options of training: ``torch.compile`` of the trainable trunk and channels-last.

Both are off by default and switched in the config (``callbacks.speed``, conf/callbacks/
speed.yaml), e.g. ``cocoer-train callbacks.speed.compile=true callbacks.speed.channels_last=true``.
They change how the model runs, not what it computes: tests/training/test_compile.py checks the
outputs and the gradients of both against eager, contiguous execution (stated tolerance there).

- ``channels_last``: the model's 4-D weights are stored NHWC (``Module.to(memory_format=...)``);
  convolutions then run in NHWC (faster with cuDNN / oneDNN on tensor cores / AVX-512).
- ``compile``: :class:`~cocoer.models.hfe.HFE` (the three trainable trunks, the patch
  projections and the transformer: nearly all the trainable FLOPs) is compiled in place with
  ``nn.Module.compile``: parameters, ``state_dict`` keys and checkpoints stay as they are. The
  rest (frozen CLIP, workspace with its data-dependent QP) runs eagerly.

bf16 mixed precision is the trainer's business: ``trainer=gpu`` sets ``precision: bf16-mixed``
(docs/performance.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import lightning.pytorch as L
import torch
from torch import nn

from cocoer.errors import check_choice

#: modes of ``torch.compile``
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


@dataclass(frozen=True)
class SpeedConfig:
    """The ``callbacks.speed`` node.

    Attributes:
        compile: compile the HFE (trainable trunks) with ``torch.compile``.
        compile_mode: one of :data:`COMPILE_MODES`.
        channels_last: store the model's 4-D weights channels-last (NHWC).
    """

    compile: bool = False
    compile_mode: str = "default"
    channels_last: bool = False

    def __post_init__(self) -> None:
        check_choice("callbacks.speed.compile_mode", self.compile_mode, COMPILE_MODES)


def apply_speed_options(net: nn.Module, cfg: SpeedConfig) -> nn.Module:
    """Apply ``cfg`` to a :class:`~cocoer.models.cocoer.CocoER` in place; returns it."""
    if cfg.channels_last:
        net.to(memory_format=torch.channels_last)
    if cfg.compile:
        hfe = getattr(net, "hfe", None)
        if not isinstance(hfe, nn.Module):
            raise ValueError(f"{type(net).__name__} has no `hfe` module to compile")
        hfe.compile(mode=cfg.compile_mode)
    return net


class SpeedOptions(L.Callback):
    """Applies :class:`SpeedConfig` to ``pl_module.net`` once, at setup (before the
    optimiser is built)."""

    def __init__(
        self, compile: bool = False, compile_mode: str = "default", channels_last: bool = False
    ) -> None:
        self.cfg = SpeedConfig(compile, compile_mode, channels_last)
        self._applied: set[int] = set()

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        net: Any = getattr(pl_module, "net", pl_module)
        if id(net) not in self._applied and (self.cfg.compile or self.cfg.channels_last):
            apply_speed_options(net, self.cfg)
            self._applied.add(id(net))

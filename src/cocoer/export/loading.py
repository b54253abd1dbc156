"""Rebuild a CocoER from a checkpoint file without unpickling anything.

The exporters and the inference engine get the model through
:meth:`cocoer.training.module.CocoERLitModule.from_file`, the one place a model is rebuilt from a
file: :func:`cocoer.checkpoint.safe_load.load_model_file` reads it (nothing unpickled, the stored
config literal and within bounds) and makes the config portable (no local weight file is
opened, nothing downloaded: the state dict holds every weight, CLIP's included).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from torch import Tensor

from cocoer.models.cocoer import CocoER


def load_checkpoint_weights_only(
    path: str | os.PathLike[str],
) -> tuple[CocoER, Tensor, int | None, dict[str, Any]]:
    """(net in eval mode, calibrated thresholds [k], window size S or None, net config).

    Raises:
        cocoer.errors.CheckpointError (a ValueError): missing, unsafe, corrupt or not a
            CocoER checkpoint (the message names the file and the reason).
    """
    from cocoer.training.module import CocoERLitModule

    module = CocoERLitModule.from_file(Path(path))
    net_cfg = dict(module.hparams["net"])
    size = (net_cfg.get("hfe") or {}).get("image_size")
    thresholds = module.thresholds.detach().float().clone()
    return module.net.eval(), thresholds, (int(size) if size else None), net_cfg

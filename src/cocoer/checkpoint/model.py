"""The one way a model is rebuilt from a file: :func:`load_model`.

    loaded = load_model("run/checkpoints/last.ckpt")   # or an export, or a hub folder
    loaded.net(batch)["logits_G"]                      # CocoER in eval mode, on the CPU
    loaded.thresholds, loaded.class_names, loaded.image_size, loaded.preprocess

Training (``cocoer-eval``), inference (``cocoer-infer``, :class:`cocoer.infer.Predictor`,
the demo), the exporters (safetensors, ONNX) and the hub writer all get their model here.
The file is read by :func:`cocoer.checkpoint.safe_load.read_model_file` (nothing unpickled,
the stored config literal data within :mod:`cocoer.utils.bounds`, no ``_target_`` but
CocoER's, weights checked against the config) and the config made portable (no local
weight file opened, nothing downloaded: the state dict holds every weight, CLIP's
included). The model is then built by :func:`cocoer.models.create_model` and loaded
strictly. Nothing here imports Lightning.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import Tensor

from cocoer.checkpoint.safe_load import read_model_file
from cocoer.errors import CheckpointError

if TYPE_CHECKING:
    from cocoer.models.cocoer import CocoER
    from cocoer.models.preprocess import PreprocessConfig

#: state-dict keys beside the ``net.*`` weights (the LightningModule's buffer)
THRESHOLDS_KEY = "thresholds"


@dataclass(frozen=True)
class LoadedModel:
    """A model rebuilt from a file.

    Attributes:
        net: the CocoER, in eval mode, on the CPU.
        thresholds: [k] calibrated per-class decision thresholds stored with it.
        hparams: the portable hyper-parameters (the LightningModule's arguments:
            ``net``, ``loss``, ``optimizer``..., ``init_from`` None).
        kind: ``checkpoint`` | ``converted`` | ``safetensors`` | ``hub``.
        path: the file (or folder) it came from.
        hub_config: a hub folder's checked ``config.json`` (detector, window size), else None.
    """

    net: CocoER
    thresholds: Tensor
    hparams: dict[str, Any]
    kind: str
    path: Path
    hub_config: Any = None

    @property
    def net_config(self) -> dict[str, Any]:
        """The ``net`` hyper-parameters (a :class:`~cocoer.models.CocoERConfig` as data)."""
        return dict(self.hparams["net"])

    @property
    def class_names(self) -> list[str]:
        return list(self.net.class_names)

    @property
    def multi_label(self) -> bool:
        return bool(self.net.multi_label)

    @property
    def image_size(self) -> int | None:
        """S, the side of the windows the model was trained on (None when not recorded)."""
        size = (self.net_config.get("hfe") or {}).get("image_size")
        return int(size) if size else None

    @property
    def preprocess(self) -> PreprocessConfig:
        """How inference windows are made for this model (channel order, box rounding)."""
        return self.net.preprocess

    def state_dict(self) -> dict[str, Tensor]:
        """``net.*`` weights and ``thresholds``: the LightningModule's state-dict layout."""
        state = {f"net.{k}": v for k, v in self.net.state_dict().items()}
        state[THRESHOLDS_KEY] = self.thresholds
        return state


def _one_line(exc: BaseException) -> str:
    msg = next((ln for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
    return msg.strip()[:200]


def load_model(path: str | os.PathLike[str], hub: bool = False) -> LoadedModel:
    """The model stored in ``path``: a Lightning checkpoint (``.ckpt``), a safetensors
    export (``.safetensors`` file or folder) or a hub folder (detected; ``hub=True``: it
    must be one), rebuilt without running code from the file (see the module docstring).

    Raises:
        cocoer.errors.CheckpointError: missing, unsafe, corrupt or incompatible file; the
            message names the file and the reason on one line.
    """
    from cocoer.models import create_model

    path = Path(path)
    found = read_model_file(path, hub=hub)
    net_state = {k[4:]: v for k, v in found.state.items() if k.startswith("net.")}
    extra = sorted(set(found.state) - {f"net.{k}" for k in net_state} - {THRESHOLDS_KEY})
    if extra:
        raise CheckpointError(path, f"does not fit a CocoER model (unexpected {extra[:3]})")
    try:
        net = create_model(found.hparams["net"], pretrained=False)
        net.load_state_dict(net_state, strict=True)
    except (TypeError, ValueError, KeyError, RuntimeError) as exc:
        raise CheckpointError(path, f"does not fit a CocoER model ({_one_line(exc)})") from None
    k = net.num_classes
    thresholds = found.state.get(THRESHOLDS_KEY)
    if thresholds is None:
        raise CheckpointError(path, "does not fit a CocoER model (no thresholds)")
    if tuple(thresholds.shape) != (k,):
        raise CheckpointError(path, f"thresholds are {list(thresholds.shape)}, the model has k={k}")
    thresholds = thresholds.detach().float().clone()
    return LoadedModel(net.eval(), thresholds, found.hparams, found.kind, path, found.hub_config)

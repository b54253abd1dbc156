"""The inference API: :class:`Predictor` (checkpoint -> detections -> windows -> CocoER).

    predictor = Predictor.from_checkpoint("model.ckpt", device="cpu")
    result = predictor.predict_image("photo.jpg")      # ImageResult
    print(result.to_json()["persons"][0]["exclusion_sequence"])

All persons of an image go through the model in one batch (split in chunks of
``batch_size`` when there are more), in eval mode and without gradients; the windows are
built deterministically by :func:`cocoer.data.windows.make_windows` (no augmentation).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from PIL import Image
from torch import Tensor

from cocoer.data.windows import make_windows
from cocoer.detect import PersonDetection
from cocoer.errors import InputError
from cocoer.infer.decisions import OUTPUT_KEYS, VAD_KEYS
from cocoer.infer.engine import Engine, ImageInput, to_rgb_image
from cocoer.models.cocoer import CocoER

if TYPE_CHECKING:
    from cocoer.hub.config import HubConfig

__all__ = ["OUTPUT_KEYS", "ImageInput", "Predictor", "to_rgb_image"]


def resolve_device(device: str | torch.device) -> torch.device:
    """``cpu`` / ``cuda`` / ``cuda:N``.

    Raises:
        InputError: an unknown device, or CUDA asked for but absent.
    """
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise InputError(f"device {device!r}", "unsupported device: cpu | cuda | cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {device!r}", "CUDA is not available; use --device cpu")
    if dev.type not in ("cpu", "cuda"):
        raise InputError(f"device {device!r}", "unsupported device: cpu | cuda | cuda:N")
    return dev


def probe_window_size(net: CocoER) -> int:
    """S of a model without a recorded size: the smallest common size whose backbone map
    matches the HFE's feature-map size."""
    hfe = net.hfe
    device = next(net.parameters()).device
    for size in (224, 32, 48, 64, 96, 112, 128, 160, 192, 256, 288, 320, 384, 448, 512):
        with torch.no_grad():
            was = hfe.backbones[0].training
            fmap = hfe.backbones[0].eval()(torch.zeros(1, 3, size, size, device=device))
            hfe.backbones[0].train(was)
        if tuple(fmap.shape[-2:]) == tuple(hfe.fmap_hw):
            return size
    raise InputError("model", "cannot infer the window size S of the model; pass image_size")


class Predictor(Engine):
    """CocoER inference on photos with PyTorch: detection, windows, one batched forward,
    decisions (detection and decisions are :class:`cocoer.infer.engine.Engine`'s).

    Args:
        net: the model (moved to ``device`` and set to eval mode).
        calibrated_thresholds: [k] per-class thresholds stored in the checkpoint.
        thresholds: ``calibrated`` | ``demo`` | a float (see :mod:`cocoer.infer.thresholds`).
        detector: ``auto`` | ``insightface`` | ``opencv`` (built on first use).
        insightface_models: folder of the InsightFace ONNX files.
        batch_size: persons per forward pass.
        checkpoint: path recorded in the results.
        image_size: S of the windows (None: probed from the model).
    """

    def __init__(
        self,
        net: CocoER,
        calibrated_thresholds: Tensor,
        thresholds: str | float = "calibrated",
        detector: str = "auto",
        insightface_models: str | os.PathLike[str] | None = None,
        device: str | torch.device = "cpu",
        batch_size: int = 16,
        checkpoint: str = "",
        image_size: int | None = None,
    ) -> None:
        super().__init__(
            calibrated_thresholds,
            net.multi_label,
            thresholds=thresholds,
            detector=detector,
            insightface_models=insightface_models,
            batch_size=batch_size,
            checkpoint=checkpoint,
        )
        self.device = resolve_device(device)
        self.net = net.to(self.device).eval()
        self._image_size = image_size
        self.hub_config: HubConfig | None = None  # set by from_pretrained

    @classmethod
    def from_checkpoint(
        cls, path: str | os.PathLike[str], device: str = "cpu", **kwargs: object
    ) -> Predictor:
        """Load ``path`` (a checkpoint, a safetensors export or a hub folder) with
        :func:`cocoer.checkpoint.model.load_model`."""
        from cocoer.checkpoint.model import load_model

        loaded = load_model(path)
        kwargs.setdefault("image_size", loaded.image_size)
        return cls(loaded.net, loaded.thresholds, device=device, checkpoint=str(path), **kwargs)  # type: ignore[arg-type]

    @classmethod
    def from_pretrained(
        cls,
        name: str | os.PathLike[str],
        revision: str | None = None,
        device: str = "cpu",
        **kwargs: object,
    ) -> Predictor:
        """Load a hub folder or Hub repo id (``ORG/NAME[@REVISION]``, see
        :mod:`cocoer.hub.load`) with its thresholds, window size and detector choice."""
        from cocoer.checkpoint.model import load_model
        from cocoer.hub.load import resolve_model

        loaded = load_model(resolve_model(name, revision), hub=True)
        cfg = loaded.hub_config
        kwargs.setdefault("image_size", cfg.image_size)
        kwargs.setdefault("detector", cfg.detector)
        pred = cls(loaded.net, loaded.thresholds, device=device, checkpoint=str(name), **kwargs)  # type: ignore[arg-type]
        pred.hub_config = cfg
        return pred

    # ------------------------------------------------------------------ properties
    @property
    def image_size(self) -> int:
        """S, the side of the model's windows (from the checkpoint, else probed once)."""
        if self._image_size is None:
            self._image_size = probe_window_size(self.net)
        return self._image_size

    @property
    def class_names(self) -> list[str]:
        return list(self.net.class_names)

    @property
    def multi_label(self) -> bool:
        return bool(self.net.multi_label)

    # ------------------------------------------------------------------ model
    def make_batch(
        self, image: Image.Image, persons: Sequence[PersonDetection]
    ) -> dict[str, Tensor]:
        """Windows of every person stacked: context/body/head [P,3,S,S], boxes [P,4]."""
        if not persons:
            raise ValueError("make_batch needs at least one person")
        size = self.image_size
        pre = getattr(self.net, "preprocess", None)  # the model's channel order / box rounding
        items = [make_windows(image, p.body_box, p.head_box, size, pre) for p in persons]
        return {k: torch.stack([it[k] for it in items]).to(self.device) for k in items[0]}

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Model outputs (``OUTPUT_KEYS``, on the CPU) for a batch, in chunks of batch_size."""
        n = batch["context"].shape[0]
        chunks: list[dict[str, Tensor]] = []
        with torch.no_grad():
            for start in range(0, n, self.batch_size):
                part = {k: v[start : start + self.batch_size] for k, v in batch.items()}
                out = self.net(part)
                keys = [*OUTPUT_KEYS, *(k for k in VAD_KEYS if k in out)]  # VAD head: its values
                chunks.append({k: out[k].detach().cpu() for k in keys})
        return {k: torch.cat([c[k] for c in chunks]) for k in chunks[0]} if chunks else {}

    def scores(self, logits: Tensor) -> Tensor:
        """Sigmoid (multi-label) or softmax (single-label) scores of logits [..., k]."""
        return torch.sigmoid(logits) if self.net.multi_label else torch.softmax(logits, -1)

    def model_outputs(
        self, image: Image.Image, persons: Sequence[PersonDetection]
    ) -> dict[str, Tensor]:
        """Outputs (``OUTPUT_KEYS``, CPU tensors [P, ...]) for the persons of one image."""
        return self.forward(self.make_batch(image, persons))

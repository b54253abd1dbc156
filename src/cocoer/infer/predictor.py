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
import time
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from cocoer.constants import LEVELS
from cocoer.data.windows import load_image, make_windows
from cocoer.detect import (
    Detector,
    PersonDetection,
    build_face_detector,
    build_person_detector,
    detect_people,
)
from cocoer.infer.results import HeadPrediction, ImageResult, LabelScore, PersonResult
from cocoer.infer.thresholds import ThresholdPolicy, build_policy
from cocoer.models.cocoer import CocoER

ImageInput = str | os.PathLike[str] | Image.Image | np.ndarray
#: Model outputs kept on the CPU after a forward pass.
OUTPUT_KEYS = ("logits_G", "logits_t", "y_t", "logits_levels", "f", "order")


def resolve_device(device: str | torch.device) -> torch.device:
    """``cpu`` / ``cuda`` / ``cuda:N``; raises ValueError when CUDA is asked for but absent."""
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available; use --device cpu")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"unsupported device {device!r}: cpu | cuda")
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
    raise ValueError("cannot infer the window size S of the model; pass image_size")


def load_checkpoint_model(
    path: str | os.PathLike[str], device: str = "cpu"
) -> tuple[CocoER, Tensor, int | None]:
    """Rebuild the model, its calibrated thresholds [k] and its window size S from a
    checkpoint file or a safetensors export alone, without running code from the file.

    Raises:
        cocoer.errors.CheckpointError (a ValueError): missing, unsafe or corrupt file.
    """
    from cocoer.lit_module import CocoERLitModule

    module = CocoERLitModule.from_file(path)
    net = module.net.to(resolve_device(device)).eval()
    size = module.hparams.get("net", {}).get("hfe", {}).get("image_size")
    return net, module.thresholds.detach().cpu().clone(), (int(size) if size else None)


def to_rgb_image(image: ImageInput) -> tuple[Image.Image, str]:
    """Decode a path, PIL image or RGB uint8 array into a PIL RGB image and a source name."""
    if isinstance(image, Image.Image):
        return (image if image.mode == "RGB" else image.convert("RGB")), "<PIL image>"
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(
                f"expected an RGB uint8 H x W x 3 array, got {image.dtype} {image.shape}"
            )
        return Image.fromarray(np.ascontiguousarray(image)), "<array>"
    return load_image(image), str(image)


class Predictor:
    """CocoER inference on photos: detection, windows, one batched forward, decisions.

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
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.device = resolve_device(device)
        self.net = net.to(self.device).eval()
        self.policy: ThresholdPolicy = build_policy(
            thresholds, calibrated_thresholds, net.multi_label
        )
        self.detector_backend = detector
        self.insightface_models = insightface_models
        self.batch_size = batch_size
        self.checkpoint = checkpoint
        self._image_size = image_size
        self._face: Detector | None = None
        self._person: Detector | None = None

    @classmethod
    def from_checkpoint(
        cls, path: str | os.PathLike[str], device: str = "cpu", **kwargs: object
    ) -> Predictor:
        """Load ``path`` (a checkpoint of :class:`CocoERLitModule` or a safetensors export)."""
        net, thr, size = load_checkpoint_model(path, device)
        kwargs.setdefault("image_size", size)
        return cls(net, thr, device=device, checkpoint=str(path), **kwargs)  # type: ignore[arg-type]

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

    # ------------------------------------------------------------------ detection
    def detectors(self) -> tuple[Detector, Detector]:
        """(face detector, person detector), built on first use."""
        if self._face is None or self._person is None:
            self._face = build_face_detector(self.detector_backend, self.insightface_models)
            self._person = build_person_detector(self.detector_backend, self.insightface_models)
        return self._face, self._person

    def detect(self, image: Image.Image) -> list[PersonDetection]:
        """Persons (body + head boxes) in an RGB image, left to right."""
        face, person = self.detectors()
        return detect_people(np.asarray(image, dtype=np.uint8), face, person)

    # ------------------------------------------------------------------ model
    def make_batch(
        self, image: Image.Image, persons: Sequence[PersonDetection]
    ) -> dict[str, Tensor]:
        """Windows of every person stacked: context/body/head [P,3,S,S], boxes [P,4]."""
        if not persons:
            raise ValueError("make_batch needs at least one person")
        size = self.image_size
        items = [make_windows(image, p.body_box, p.head_box, size) for p in persons]
        return {k: torch.stack([it[k] for it in items]).to(self.device) for k in items[0]}

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Model outputs (``OUTPUT_KEYS``, on the CPU) for a batch, in chunks of batch_size."""
        n = batch["context"].shape[0]
        chunks: list[dict[str, Tensor]] = []
        with torch.no_grad():
            for start in range(0, n, self.batch_size):
                part = {k: v[start : start + self.batch_size] for k, v in batch.items()}
                out = self.net(part)
                chunks.append({k: out[k].detach().cpu() for k in OUTPUT_KEYS})
        return {k: torch.cat([c[k] for c in chunks]) for k in OUTPUT_KEYS}

    def scores(self, logits: Tensor) -> Tensor:
        """Sigmoid (multi-label) or softmax (single-label) scores of logits [..., k]."""
        return torch.sigmoid(logits) if self.net.multi_label else torch.softmax(logits, -1)

    def _head(self, scores: Tensor, decided: Tensor) -> list[HeadPrediction]:
        """One HeadPrediction per row of scores [P, k] and decisions [P, k]."""
        names = self.class_names
        out = []
        for s, d in zip(scores.tolist(), decided.tolist(), strict=True):
            labels = sorted(
                (
                    LabelScore(n, round(v, 6))
                    for n, v, keep in zip(names, s, d, strict=True)
                    if keep
                ),
                key=lambda lab: -lab.score,
            )
            out.append(
                HeadPrediction(labels, {n: round(v, 6) for n, v in zip(names, s, strict=True)})
            )
        return out

    def to_person_results(
        self, persons: Sequence[PersonDetection], out: dict[str, Tensor]
    ) -> list[PersonResult]:
        """Decisions and records from the model outputs of ``persons`` (same order)."""
        pol = self.policy
        final = self._head(*self._scored(out["logits_G"], "final"))
        vi_s = self.scores(out["logits_t"])
        vi = self._head(vi_s, pol.decide(vi_s, "vi", out["y_t"]))
        per_level = {}
        for m, name in enumerate(LEVELS):
            per_level[name] = self._head(*self._scored(out["logits_levels"][:, m], name))
        results = []
        for i, p in enumerate(persons):
            results.append(
                PersonResult(
                    index=i,
                    body_box=[round(float(v), 2) for v in p.body_box],
                    body_source=p.body_source,
                    head_box=[round(float(v), 2) for v in p.head_box],
                    head_source=p.head_source,
                    detection_score=round(float(p.score), 6),
                    final=final[i],
                    vi=vi[i],
                    levels={name: per_level[name][i] for name in LEVELS},
                    level_losses={
                        name: round(float(out["f"][i, m]), 6) for m, name in enumerate(LEVELS)
                    },
                    exclusion_sequence=[LEVELS[j] for j in out["order"][i].tolist()],
                )
            )
        return results

    def _scored(self, logits: Tensor, head: str) -> tuple[Tensor, Tensor]:
        s = self.scores(logits)
        return s, self.policy.decide(s, head)

    def predict_image(
        self, image: ImageInput, persons: Sequence[PersonDetection] | None = None
    ) -> ImageResult:
        """Detect the persons (unless given) and recognise each one's emotion.

        Args:
            image: a path (decoded with :func:`cocoer.data.windows.load_image`), a PIL image
                or an RGB uint8 array.
            persons: known persons (boxes in pixels); None runs the detectors.
        """
        pil, source = to_rgb_image(image)
        t0 = time.perf_counter()
        people = list(self.detect(pil) if persons is None else persons)
        t1 = time.perf_counter()
        records: list[PersonResult] = []
        if people:
            records = self.to_person_results(people, self.forward(self.make_batch(pil, people)))
        t2 = time.perf_counter()
        face, person = (self._face, self._person) if persons is None else (None, None)
        return ImageResult(
            source=source,
            width=pil.width,
            height=pil.height,
            persons=records,
            class_names=self.class_names,
            multi_label=bool(self.net.multi_label),
            thresholds=self.policy.describe(),
            detectors={
                "face": type(face).__name__ if face is not None else "given",
                "person": type(person).__name__ if person is not None else "given",
            },
            checkpoint=self.checkpoint,
            seconds={"detection": t1 - t0, "model": t2 - t1},
        )

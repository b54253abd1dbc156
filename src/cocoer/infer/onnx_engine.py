"""The ONNX Runtime engine: ``cocoer-infer --onnx MODEL.onnx`` without PyTorch.

The ``.onnx`` file written by :func:`cocoer.export.onnx.export_onnx` holds the whole model
(workspace included) and, in its ``cocoer.*`` metadata, the class names, the calibrated
thresholds and the preprocessing; windows are cut with the same numpy code as the PyTorch
engine's (:mod:`cocoer.data.window_arrays`), so both engines see the same numbers.
Nothing here imports torch.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from cocoer.data.window_arrays import make_windows_array
from cocoer.detect import PersonDetection
from cocoer.errors import CheckpointError, InputError, MissingFileError
from cocoer.infer.decisions import OUTPUT_KEYS
from cocoer.infer.engine import Engine
from cocoer.models.preprocess import PreprocessConfig
from cocoer.utils.bounds import check_class_names, check_literal, check_number
from cocoer.utils.files import loads_json

#: The inputs of an exported model (:data:`cocoer.export.onnx.INPUTS`).
WINDOW_INPUTS = ("context", "body", "head", "body_box", "head_box")
#: Metadata keys the engine needs.
REQUIRED_METADATA = ("cocoer.class_names", "cocoer.multi_label", "cocoer.preprocessing")


def choose_providers(device: str, available: Sequence[str]) -> list[Any]:
    """Execution providers for ``device``: ``auto`` (CUDA when onnxruntime-gpu sees a GPU,
    else CPU), ``cpu``, or ``cuda`` / ``cuda:N`` (ValueError when CUDA is not available)."""
    dev = device.strip().lower()
    has_cuda = "CUDAExecutionProvider" in available
    if dev == "auto":
        return (
            ["CUDAExecutionProvider", "CPUExecutionProvider"]
            if has_cuda
            else ["CPUExecutionProvider"]
        )
    if dev == "cpu":
        return ["CPUExecutionProvider"]
    if dev == "cuda" or dev.startswith("cuda:"):
        if not has_cuda:
            raise InputError(
                f"device {device!r} requested but ONNX Runtime has no CUDA provider "
                "(install onnxruntime-gpu on a GPU machine); use --device cpu"
            )
        index = int(dev.split(":", 1)[1]) if ":" in dev else 0
        return [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
    raise InputError(f"unsupported device {device!r}: auto | cpu | cuda | cuda:N")


def read_metadata(meta: dict[str, str], where: str) -> dict[str, Any]:
    """The ``cocoer.*`` metadata as Python values, checked (types, bounds, literal text:
    :func:`check_metadata`); a one-line ValueError naming the file otherwise."""
    missing = [k for k in REQUIRED_METADATA if k not in meta]
    if missing:
        raise InputError(f"{where}: not a cocoer ONNX export (metadata {missing} missing)")
    values = {
        k: loads_json(v, f"{where} (metadata {k})")
        for k, v in meta.items()
        if k.startswith("cocoer.")
    }
    check_metadata(values, where)
    return values


def check_metadata(meta: dict[str, Any], where: str) -> None:
    """Refuse metadata of the wrong type or out of bounds before anything uses it: class
    names (printable, at most the class limit), ``multi_label`` (bool), the preprocessing
    (``image_size`` within :data:`cocoer.utils.bounds.LIMITS`) and the calibrated
    thresholds (k numbers); no string may hold an interpolation (``${...}``)."""
    check_literal(where, meta)
    names = check_class_names(where, meta["cocoer.class_names"])
    if not isinstance(meta["cocoer.multi_label"], bool):
        raise CheckpointError(where, "metadata cocoer.multi_label is not true / false")
    pre = meta["cocoer.preprocessing"]
    if not isinstance(pre, dict) or "image_size" not in pre:
        raise CheckpointError(where, "metadata cocoer.preprocessing has no image_size")
    check_number(where, "hfe.image_size", pre["image_size"])
    thr = meta.get("cocoer.infer.thresholds", {})
    cal = thr.get("calibrated") if isinstance(thr, dict) else None
    if not isinstance(thr, dict) or not (
        cal is None
        or (
            isinstance(cal, list)
            and len(cal) == len(names)
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in cal)
        )
    ):
        raise CheckpointError(
            where, f"metadata cocoer.infer.thresholds is not {len(names)} numbers"
        )


def create_session(path: Path, providers: list[Any], threads: int | None = None) -> Any:
    """An ``onnxruntime.InferenceSession`` (ValueError naming the file when it cannot load)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=providers)
    except Exception as exc:  # onnxruntime raises its own Fail / InvalidGraph / ... types
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"cannot load ONNX model {path}: {reason}") from exc


class OnnxPredictor(Engine):
    """CocoER inference with ONNX Runtime (same detection, outputs and files as
    :class:`cocoer.infer.predictor.Predictor`).

    Args:
        path: the ``.onnx`` file (from :func:`cocoer.export.onnx.export_onnx`).
        device: ``auto`` | ``cpu`` | ``cuda`` | ``cuda:N`` (see :func:`choose_providers`).
        threads: ONNX Runtime intra-op threads (None: its default).
        thresholds, detector, insightface_models, batch_size: as for ``Predictor``.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        device: str = "auto",
        threads: int | None = None,
        thresholds: str | float = "calibrated",
        detector: str = "auto",
        insightface_models: str | os.PathLike[str] | None = None,
        batch_size: int = 16,
    ) -> None:
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise MissingFileError(f"ONNX model not found: {path}")
        providers = choose_providers(device, ort.get_available_providers())
        self.session = create_session(path, providers, threads)
        self.meta = read_metadata(self.session.get_modelmeta().custom_metadata_map, str(path))
        self._names = [str(n) for n in self.meta["cocoer.class_names"]]
        self._multi_label = bool(self.meta["cocoer.multi_label"])
        pre = self.meta["cocoer.preprocessing"]
        self.image_size = int(pre["image_size"])
        self.preprocess = PreprocessConfig.from_any(
            {k: str(pre[k]).lower() for k in ("channel_order", "box_rounding") if k in pre}
        )
        calibrated = (self.meta.get("cocoer.infer.thresholds") or {}).get("calibrated")
        if calibrated is None or len(calibrated) != len(self._names):
            calibrated = [0.5] * len(self._names)
        super().__init__(
            calibrated,
            self._multi_label,
            thresholds=thresholds,
            detector=detector,
            insightface_models=insightface_models,
            batch_size=batch_size,
            checkpoint=str(path),
        )
        self.device = f"onnxruntime:{self.session.get_providers()[0]}"
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        absent = [k for k in OUTPUT_KEYS if k not in self.output_names]
        if absent:
            raise InputError(f"{path}: the model lacks the outputs {absent}")
        if sorted(self.input_names) != sorted(WINDOW_INPUTS):
            raise InputError(
                f"{path}: the model's inputs are {self.input_names[:8]}, "
                f"not the export's {list(WINDOW_INPUTS)}"
            )

    @property
    def class_names(self) -> list[str]:
        return list(self._names)

    @property
    def multi_label(self) -> bool:
        return self._multi_label

    def make_batch(
        self, image: Image.Image, persons: Sequence[PersonDetection]
    ) -> dict[str, np.ndarray]:
        """Windows of every person stacked: context/body/head [P,3,S,S], boxes [P,4]."""
        if not persons:
            raise ValueError("make_batch needs at least one person")
        size = self.image_size
        pre = self.preprocess  # the model's channel order / box rounding
        items = [make_windows_array(image, p.body_box, p.head_box, size, pre) for p in persons]
        return {k: np.stack([it[k] for it in items]) for k in items[0]}

    def forward(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """All outputs of the model for a batch, run in chunks of batch_size."""
        n = batch["context"].shape[0]
        chunks: list[list[np.ndarray]] = []
        for start in range(0, n, self.batch_size):
            feed = {k: batch[k][start : start + self.batch_size] for k in self.input_names}
            chunks.append(self.session.run(self.output_names, feed))
        return {
            name: np.concatenate([c[i] for c in chunks]) for i, name in enumerate(self.output_names)
        }

    def model_outputs(
        self, image: Image.Image, persons: Sequence[PersonDetection]
    ) -> dict[str, np.ndarray]:
        """Outputs (all of the model's, ``OUTPUT_KEYS`` among them) for one image's persons."""
        return self.forward(self.make_batch(image, persons))

"""InsightFace SCRFD detectors (faces and persons) from LOCAL ONNX files; never downloads.

The face model is SCRFD-10G from the ``buffalo_l`` pack (``det_10g.onnx``); the person model
is ``scrfd_person_2.5g.onnx``. Both are run with onnxruntime: CUDA when the
``onnxruntime-gpu`` build offers it, else CPU. When a file is missing a
:class:`InsightFaceModelMissing` error names the folder(s) searched and the expected file;
:func:`find_insightface_model` lets callers check first (the ``auto`` backends do).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cocoer.data.records import BBox
from cocoer.detect.boxes import clip_box
from cocoer.detect.types import Detection, check_image_rgb

#: Default folder of the face model (insightface's own cache layout).
DEFAULT_MODEL_DIR = Path("~/.insightface/models/buffalo_l")
FACE_MODEL_FILE = "det_10g.onnx"
PERSON_MODEL_FILE = "scrfd_person_2.5g.onnx"


class InsightFaceModelMissing(FileNotFoundError):
    """An InsightFace ONNX file is not where it was looked for (no download is attempted)."""


def _candidate_dirs(model_dir: str | os.PathLike[str] | None) -> list[Path]:
    """Folders searched for a model file: ``model_dir`` then its parent (insightface keeps
    ``scrfd_person_2.5g.onnx`` in ``~/.insightface/models`` beside ``buffalo_l/``)."""
    base = Path(model_dir if model_dir is not None else DEFAULT_MODEL_DIR).expanduser()
    return [base, base.parent] if base.parent != base else [base]


def find_insightface_model(
    filename: str, model_dir: str | os.PathLike[str] | None = None
) -> Path | None:
    """Path of ``filename`` in ``model_dir`` (default ``~/.insightface/models/buffalo_l``) or
    its parent, or ``None``. ``model_dir`` may also be the ``.onnx`` file itself."""
    if model_dir is not None and str(model_dir).endswith(".onnx"):
        path = Path(model_dir).expanduser()
        return path if path.is_file() else None
    for folder in _candidate_dirs(model_dir):
        path = folder / filename
        if path.is_file():
            return path
    return None


def require_insightface_model(
    filename: str, model_dir: str | os.PathLike[str] | None = None
) -> Path:
    """Like :func:`find_insightface_model` but raises :class:`InsightFaceModelMissing`."""
    path = find_insightface_model(filename, model_dir)
    if path is not None:
        return path
    if model_dir is not None and str(model_dir).endswith(".onnx"):
        raise InsightFaceModelMissing(f"InsightFace model file {Path(model_dir)} does not exist")
    folders = _candidate_dirs(model_dir)
    exists = "" if folders[0].is_dir() else " (the folder does not exist)"
    raise InsightFaceModelMissing(
        f"InsightFace model folder {folders[0]}{exists} has no {filename} "
        f"(also looked in {', '.join(str(f) for f in folders[1:]) or 'nothing else'}). "
        "cocoer never downloads models: copy the ONNX file there, pass another folder "
        "(--insightface-models DIR), or use the opencv backend."
    )


def default_providers() -> list[str]:
    """onnxruntime providers: CUDA then CPU when CUDA is available, else CPU only."""
    import onnxruntime

    available = onnxruntime.get_available_providers()
    if "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


class _SCRFDDetector:
    """Shared wrapper around ``insightface.model_zoo.get_model(<onnx path>)`` (an SCRFD)."""

    source = "insightface"
    filename = FACE_MODEL_FILE

    def __init__(
        self,
        model_dir: str | os.PathLike[str] | None = None,
        providers: Sequence[str] | None = None,
        det_size: tuple[int, int] = (640, 640),
        det_thresh: float = 0.5,
        nms_thresh: float = 0.4,
    ) -> None:
        self.model_path = require_insightface_model(self.filename, model_dir)
        self.providers = list(providers) if providers is not None else default_providers()
        from insightface.model_zoo import get_model

        model: Any = get_model(str(self.model_path), providers=self.providers, download=False)
        if model is None or not hasattr(model, "detect"):
            raise RuntimeError(
                f"{self.model_path}: insightface did not recognise this ONNX file as an SCRFD "
                "detector"
            )
        ctx_id = 0 if "CUDAExecutionProvider" in self.providers else -1
        model.prepare(
            ctx_id=ctx_id, input_size=det_size, det_thresh=det_thresh, nms_thresh=nms_thresh
        )
        self._model = model

    def detect(self, image_rgb: np.ndarray) -> list[Detection]:
        """Boxes in an RGB uint8 image, best score first."""
        image = check_image_rgb(image_rgb, f"{type(self).__name__} input")
        height, width = image.shape[:2]
        bgr = np.ascontiguousarray(image[:, :, ::-1])  # insightface works on BGR (cv2) images
        dets, _ = self._model.detect(bgr)
        out: list[Detection] = []
        for row in np.asarray(dets, dtype=np.float64).reshape(-1, 5):
            box: BBox = clip_box((row[0], row[1], row[2], row[3]), width, height)
            if box[2] > box[0] and box[3] > box[1]:
                out.append(Detection(box=box, score=float(row[4]), source=self.source))
        out.sort(key=lambda d: -d.score)
        return out


class InsightFaceDetector(_SCRFDDetector):
    """SCRFD face detector (``det_10g.onnx`` of ``buffalo_l``) from a local folder.

    Args:
        model_dir: folder holding ``det_10g.onnx`` (default ``~/.insightface/models/buffalo_l``)
            or the ``.onnx`` file itself.
        providers: onnxruntime providers (default: CUDA when available, else CPU).
        det_size: network input size; det_thresh / nms_thresh: SCRFD thresholds.

    Raises:
        InsightFaceModelMissing: the file is absent (the message names folder and file).
    """

    filename = FACE_MODEL_FILE


class InsightFacePersonDetector(_SCRFDDetector):
    """SCRFD person detector (``scrfd_person_2.5g.onnx``) from a local folder (or its parent).

    Same arguments and errors as :class:`InsightFaceDetector`.
    """

    filename = PERSON_MODEL_FILE

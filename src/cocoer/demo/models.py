"""The models the demo serves, loaded once at start-up through :mod:`cocoer.infer`.

One :class:`ModelSource` names what to load: a checkpoint or safetensors export
(``--ckpt``), an ONNX export (``--onnx``, the ONNX Runtime engine), the authors' released
``GWT.pth`` (``--authors``, converted by :mod:`cocoer.cli.convert` into a temporary
checkpoint) or a hub folder / id (``--hub``, through ``Predictor.from_pretrained`` when the
installed cocoer has the hub loader). A PyTorch model and an ONNX export can be served side
by side; the page's *engine* control picks one per request.

:class:`DemoModels` hands out one :class:`cocoer.infer.engine.Engine` per (engine,
threshold rule, detector backend), built on first use and kept (the model weights are
shared; only the decision rule and the detectors differ).
"""

from __future__ import annotations

import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cocoer.errors import CocoerError, InputError
from cocoer.infer.thresholds import parse_threshold_spec

if TYPE_CHECKING:
    from cocoer.infer.engine import Engine

#: Engine names shown on the page.
PYTORCH = "pytorch"
ONNX = "onnxruntime"
#: At most this many (engine, thresholds, detector) variants are kept.
MAX_VARIANTS = 16


class ModelLoadError(CocoerError):
    """The demo's model cannot be loaded (the CLI prints this one line and exits with 2)."""


@dataclass(frozen=True)
class ModelSource:
    """What the demo loads; at least one of ``ckpt``, ``authors``, ``hub``, ``onnx``.

    Attributes:
        ckpt: a cocoer checkpoint (.ckpt) or safetensors export (file or folder).
        onnx: an ONNX export (``cocoer-export``), served by ONNX Runtime.
        authors: the authors' ``GWT.pth``, converted with ``preset``, ``clip_weights`` and
            ``vi_weights`` (as ``cocoer-convert``).
        hub: a hub model folder or id (needs ``Predictor.from_pretrained``).
        device: ``cpu`` | ``cuda`` | ``cuda:N``; None: ``cpu`` for PyTorch, ``auto`` (CUDA
            when available) for ONNX Runtime, as ``cocoer-infer``.
    """

    ckpt: str | None = None
    onnx: str | None = None
    authors: str | None = None
    preset: str = "authors_demo"
    clip_weights: str | None = None
    vi_weights: str | None = None
    hub: str | None = None
    device: str | None = None

    def torch_sources(self) -> list[tuple[str, str]]:
        """The PyTorch model sources given, as (kind, value)."""
        pairs = (("ckpt", self.ckpt), ("authors", self.authors), ("hub", self.hub))
        return [(k, v) for k, v in pairs if v]

    def check(self) -> None:
        """At most one PyTorch model, and at least one model in all (ModelLoadError)."""
        torch_given = self.torch_sources()
        if len(torch_given) > 1:
            names = ", ".join(f"--{k}" for k, _ in torch_given)
            raise ModelLoadError(f"give one PyTorch model, not {names}")
        if not torch_given and not self.onnx:
            raise ModelLoadError("no model: give --ckpt, --onnx, --authors or --hub")


@dataclass
class TorchModel:
    """A loaded PyTorch model: the net, its calibrated thresholds [k], its window size S."""

    net: Any
    calibrated: Any
    image_size: int | None
    label: str


def _convert_authors(source: ModelSource, work_dir: Path) -> Path:
    """The authors' weights as a cocoer checkpoint in ``work_dir`` (``cocoer-convert``)."""
    from cocoer.cli import convert

    out = work_dir / "converted.ckpt"
    argv = [str(source.authors), "--out", str(out), "--preset", source.preset]
    weights = (("--clip-weights", source.clip_weights), ("--vi-weights", source.vi_weights))
    for path in (source.authors, *(v for _, v in weights)):
        if path and not Path(path).is_file():
            raise ModelLoadError(f"{path}: no such file")
    for flag, value in weights:
        if value:
            argv += [flag, value]
    if convert.run(convert.parse_args(argv)) != 0 or not out.is_file():
        raise ModelLoadError(f"{source.authors}: the authors' weights could not be converted")
    return out


def _load_hub(ref: str, device: str) -> TorchModel:
    """A hub folder or id through ``Predictor.from_pretrained`` (the hub loader)."""
    from cocoer.infer.predictor import Predictor

    predictor = Predictor.from_pretrained(ref, device=device)
    return TorchModel(predictor.net, predictor.policy.final, predictor.image_size, ref)


def load_torch_model(source: ModelSource, work_dir: Path) -> TorchModel | None:
    """The PyTorch model of ``source`` (None when it names only an ONNX export)."""
    from cocoer.checkpoint.model import load_model
    from cocoer.infer.predictor import resolve_device

    given = source.torch_sources()
    if not given:
        return None
    kind, value = given[0]
    if kind == "hub":
        return _load_hub(value, source.device or "cpu")
    path = _convert_authors(source, work_dir) if kind == "authors" else Path(value)
    loaded = load_model(path)
    net = loaded.net.to(resolve_device(source.device or "cpu")).eval()
    return TorchModel(net, loaded.thresholds, loaded.image_size, value)


class DemoModels:
    """The loaded models and their engines, one per (engine, thresholds, detector).

    Raises (at construction):
        ModelLoadError: nothing to load, or a model file that cannot be loaded (one line).
    """

    def __init__(self, source: ModelSource, insightface_models: str | None = None) -> None:
        source.check()
        self.source = source
        self.insightface_models = insightface_models
        self._work_dir = Path(tempfile.mkdtemp(prefix="cocoer_demo_models_"))
        self._lock = threading.Lock()
        self._engines: OrderedDict[tuple[str, str, str], Engine] = OrderedDict()
        try:
            self.torch = load_torch_model(source, self._work_dir)
            if source.onnx:  # fail now, not at the first request
                self.engine(ONNX, "calibrated", "opencv")
        except ModelLoadError:
            raise
        except (CocoerError, OSError) as exc:  # bad input or an unreadable file
            first = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise ModelLoadError(first) from exc

    @property
    def engine_names(self) -> list[str]:
        """The engines that can serve requests (PyTorch first)."""
        return [PYTORCH] * (self.torch is not None) + [ONNX] * bool(self.source.onnx)

    @property
    def label(self) -> str:
        """The model(s) served, for the page's header."""
        parts = [self.torch.label] if self.torch is not None else []
        return " + ".join(parts + ([str(self.source.onnx)] if self.source.onnx else []))

    def engine(self, name: str, thresholds: str | float, detector: str) -> Engine:
        """The engine ``name`` with a threshold rule and a detector backend.

        Raises:
            ValueError: unknown engine, or a threshold rule that is not ``calibrated``,
                ``demo`` or a number in (0, 1).
        """
        if name not in self.engine_names:
            raise InputError(f"engine {name!r} is not loaded; choose one of {self.engine_names}")
        rule = parse_threshold_spec(thresholds)
        key = (name, str(rule), detector)
        with self._lock:
            if key in self._engines:
                self._engines.move_to_end(key)
                return self._engines[key]
            engine = self._build(name, rule, detector)
            self._engines[key] = engine
            while len(self._engines) > MAX_VARIANTS:
                self._engines.popitem(last=False)
            return engine

    def _build(self, name: str, rule: str | float, detector: str) -> Engine:
        common: dict[str, Any] = {
            "thresholds": rule,
            "detector": detector,
            "insightface_models": self.insightface_models,
        }
        if name == ONNX:
            from cocoer.infer.onnx_engine import OnnxPredictor

            device = self.source.device or "auto"
            return OnnxPredictor(str(self.source.onnx), device=device, **common)
        from cocoer.infer.predictor import Predictor

        assert self.torch is not None
        m = self.torch
        return Predictor(
            m.net,
            m.calibrated,
            device=self.source.device or "cpu",
            checkpoint=m.label,
            image_size=m.image_size,
            **common,
        )

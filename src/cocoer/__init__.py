"""CocoER: multi-level emotion recognition by competition and coordination (CVPR 2025).

The packages follow the data flow (``docs/architecture.md``):

- :mod:`cocoer.data` reads EMOTIC / CAER-S (and writes small datasets in their layouts);
  :mod:`cocoer.detect` finds persons and faces in photos;
- :mod:`cocoer.models` holds the backbones, the hierarchical feature extraction (HFE),
  the vocabulary-informed (V-I) alignment and the heads; :mod:`cocoer.workspace` the
  batched competition / coordination process, its level losses and simplex QP solvers;
- :mod:`cocoer.training` the LightningModule, L_emo, epoch statistics and calibration;
  :mod:`cocoer.callbacks` and :mod:`cocoer.runs` the runs around it; :mod:`cocoer.train`
  the entry point;
- :mod:`cocoer.checkpoint` reads model files safely; :mod:`cocoer.export`,
  :mod:`cocoer.hub` and :mod:`cocoer.convert` write and convert them;
- :mod:`cocoer.infer`, :mod:`cocoer.interpret` and :mod:`cocoer.demo` use a trained model;
- :mod:`cocoer.configs` the Hydra schema; :mod:`cocoer.cli` the console scripts;
  :mod:`cocoer.errors`, :mod:`cocoer.constants` and :mod:`cocoer.utils` the basics.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cocoer.infer.predictor import Predictor

__version__ = "0.1.0"


def config_dir() -> Path:
    """Absolute path of the Hydra ``conf/`` directory, whatever the working directory."""
    env = os.environ.get("COCOER_CONF_DIR")
    if env:
        return Path(env).resolve()
    here = Path(__file__).resolve().parent
    for cand in (here.parents[1] / "conf", here / "conf"):
        if (cand / "train.yaml").is_file():
            return cand
    raise FileNotFoundError(
        "cannot find cocoer's conf/ directory (looked next to the source tree and inside the "
        "package); set COCOER_CONF_DIR"
    )


def from_pretrained(
    name: str | os.PathLike[str], revision: str | None = None, device: str = "cpu", **kwargs: Any
) -> Predictor:
    """A ready model from a hub folder or a Hugging Face Hub repo id (``ORG/NAME``, with an
    optional ``@REVISION``), with its calibrated thresholds and preprocessing.

    >>> model = cocoer.from_pretrained("path/to/folder")        # doctest: +SKIP
    >>> model.predict_image("photo.jpg").to_json()["persons"]   # doctest: +SKIP

    Repo ids resolve through huggingface_hub (its cache; ``HF_HUB_OFFLINE=1`` reads only the
    cache). ``kwargs`` go to :class:`cocoer.infer.Predictor` (``thresholds``, ``detector``,
    ``batch_size``...). Raises :class:`cocoer.errors.InputError` (one line) for a model that
    cannot be found or is refused (docs/model_zoo.md).
    """
    from cocoer.infer.predictor import Predictor

    return Predictor.from_pretrained(name, revision=revision, device=device, **kwargs)

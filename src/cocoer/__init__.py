"""CocoER: multi-level emotion recognition by competition and coordination (CVPR 2025).

The package layout follows the method (``docs/method.md``):

- :mod:`cocoer.data` reads EMOTIC / CAER-S (and writes small datasets in their layouts);
- :mod:`cocoer.models` holds the backbones, the hierarchical feature extraction (HFE),
  the vocabulary-informed (V-I) alignment and the heads;
- :mod:`cocoer.workspace` holds the batched competition / coordination process and
  its simplex QP solvers;
- :mod:`cocoer.losses` the training objective L_emo;
- :mod:`cocoer.lit_module` the LightningModule, :mod:`cocoer.cli` the entry points.
"""

from __future__ import annotations

from pathlib import Path

__version__ = "0.1.0"


def config_dir() -> Path:
    """Absolute path of the Hydra ``conf/`` directory, whatever the working directory."""
    import os

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

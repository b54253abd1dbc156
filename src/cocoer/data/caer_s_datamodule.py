"""CAER-S LightningDataModule (7 classes, single-label)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cocoer.constants import CAER_S_CLASSES
from cocoer.data.caer_s import list_caer_s, resolve_caer_s_root
from cocoer.data.datamodule import PersonDataModule
from cocoer.data.records import PersonRecord, SkipReport
from cocoer.errors import ConfigError


class CaerSDataModule(PersonDataModule):
    """CAER-S from ``CAER-S/{train,test}/<Emotion>/*``; val is held out from train.

    Args:
        root: the ``CAER-S/`` folder or its parent (see :mod:`cocoer.data.caer_s`); the box
            cache and the skip reports live in the resolved ``CAER-S/`` folder.
        val_fraction: fraction of each training class held out as val.
        split_seed: seed of the hold-out (separate from the training seed).
        **kwargs: see :class:`~cocoer.data.datamodule.PersonDataModule`; ``synthetic`` holds
            keyword arguments of :func:`cocoer.data.synthetic.generate_caer_s`.
    """

    CLASS_NAMES = CAER_S_CLASSES
    MULTI_LABEL = False

    def __init__(
        self, root: str | Path, val_fraction: float = 0.1, split_seed: int = 0, **kwargs: Any
    ) -> None:
        super().__init__(root, **kwargs)
        if not 0.0 <= float(val_fraction) < 1.0:
            raise ConfigError(f"val_fraction must be in [0, 1), got {val_fraction}")
        self.val_fraction = float(val_fraction)
        self.split_seed = int(split_seed)

    def dataset_dir(self) -> Path:
        return resolve_caer_s_root(self.root)

    def has_annotations(self) -> bool:
        return (self.dataset_dir() / "train").is_dir()

    def missing_message(self) -> str:
        return (
            f"CAER-S not found: {self.dataset_dir() / 'train'} does not exist. Point data.root "
            "(or CAER_S_ROOT) at the CAER-S folder, or use data=caer_s_synthetic"
        )

    def read_split(self, split: str, report: SkipReport) -> list[PersonRecord]:
        return list_caer_s(
            self.dataset_dir(), split, self.val_fraction, self.split_seed, report, self.strict
        )

    def generate(self, into: Path) -> tuple[Path, Any]:
        from cocoer.data.synthetic import generate_caer_s

        return into / "CAER-S", generate_caer_s(into, **(self.synthetic or {}))

"""EMOTIC LightningDataModule (26 categories, multi-label)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cocoer.constants import DEFAULT_CSV_DIR, EMOTIC_CATEGORIES
from cocoer.data.datamodule import PersonDataModule
from cocoer.data.emotic import load_mat, read_emotic_csv, read_emotic_mat
from cocoer.data.records import PersonRecord, SkipReport
from cocoer.errors import check_choice

MAT_RELPATH = "Annotations/Annotations.mat"


class EmoticDataModule(PersonDataModule):
    """EMOTIC from ``<root>/Annotations/Annotations.mat`` or ``<root>/<csv_dir>/<split>.csv``.

    Args:
        root: folder holding ``Annotations/`` and the image folders (emodb_small/, ade20k/,
            framesdb/, mscoco/); also where ``cocoer_boxes.jsonl`` and the skip reports live.
        annotations: ``"mat"`` (official file) or ``"csv"`` (the CSV export).
        csv_dir: folder of ``train.csv``/``val.csv``/``test.csv``, relative to root.
        **kwargs: see :class:`~cocoer.data.datamodule.PersonDataModule`; ``synthetic`` holds
            keyword arguments of :func:`cocoer.data.synthetic.generate_emotic`.
    """

    CLASS_NAMES = EMOTIC_CATEGORIES
    MULTI_LABEL = True

    def __init__(
        self,
        root: str | Path,
        annotations: str = "mat",
        csv_dir: str = DEFAULT_CSV_DIR,
        **kwargs: Any,
    ) -> None:
        super().__init__(root, **kwargs)
        check_choice("annotations", annotations, ("mat", "csv"))
        self.annotations = annotations
        self.csv_dir = csv_dir
        self._mat: dict[str, Any] | None = None

    @property
    def mat_path(self) -> Path:
        return self.root / MAT_RELPATH

    def csv_path(self, split: str) -> Path:
        return self.root / self.csv_dir / f"{split}.csv"

    def has_annotations(self) -> bool:
        if self.annotations == "mat":
            return self.mat_path.is_file()
        return self.csv_path("train").is_file()

    def missing_message(self) -> str:
        want = self.mat_path if self.annotations == "mat" else self.csv_path("train")
        return (
            f"EMOTIC annotations not found: {want} does not exist. Point data.root (or the "
            "EMOTIC_ROOT environment variable) at the EMOTIC folder, or use data=emotic_synthetic"
        )

    def read_split(self, split: str, report: SkipReport) -> list[PersonRecord]:
        if self.annotations == "csv":
            return read_emotic_csv(self.csv_path(split), split, report, self.strict)
        if self._mat is None:
            self._mat = load_mat(self.mat_path)
        return read_emotic_mat(self.mat_path, split, report, self.strict, mat=self._mat)

    def generate(self, into: Path) -> tuple[Path, Any]:
        from cocoer.data.synthetic import generate_emotic

        return into, generate_emotic(into, **(self.synthetic or {}))

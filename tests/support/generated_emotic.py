"""Reading back a generated EMOTIC root (``cocoer.data.synthetic.generate_emotic``) through
either of its annotation files."""

from __future__ import annotations

from pathlib import Path

from cocoer.data.emotic import read_emotic_csv, read_emotic_mat
from cocoer.data.records import SkipReport

#: the annotation formats a generated root holds
FORMATS = ("mat", "csv")


def read_split(root: Path, fmt: str, split: str, report: SkipReport) -> list:
    """The person records of ``split``: from ``Annotations/Annotations.mat`` (``fmt="mat"``)
    or from the CSV export ``emotic_pre/<split>.csv``."""
    if fmt == "mat":
        return read_emotic_mat(root / "Annotations" / "Annotations.mat", split, report)
    return read_emotic_csv(root / "emotic_pre" / f"{split}.csv", split, report)

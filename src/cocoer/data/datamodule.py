"""Shared LightningDataModule logic for EMOTIC and CAER-S.

Subclasses say where the dataset lives (:meth:`dataset_dir`), whether annotations exist
(:meth:`has_annotations`), how to read a split (:meth:`read_split`) and how to generate the
synthetic dataset (:meth:`generate`). ``setup`` then, per split: reads the records, resolves
images and boxes (:func:`~cocoer.data.dataset.resolve_records`), prints the skip report and
writes it to ``<dataset dir>/cocoer_skipped_<split>.json``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.utilities import rank_zero_only
from torch.utils.data import DataLoader

from cocoer.data.box_cache import load_box_cache
from cocoer.data.dataset import PersonWindowsDataset, resolve_records, source_counts
from cocoer.data.fast_windows import CACHE_DIRNAME, CachedWindowsDataset, cached_dataset
from cocoer.data.records import PersonRecord, SkipReport
from cocoer.data.synthetic.meta import is_stale, read_planted_conflicts
from cocoer.data.tensor_augment import finish_batch
from cocoer.data.transforms import AugmentConfig, WindowTransform
from cocoer.data.windows import DEFAULT_MAX_PIXELS
from cocoer.errors import ConfigError, MissingFileError

_STAGE_SPLITS: dict[str | None, tuple[str, ...]] = {
    "fit": ("train", "val"),
    "validate": ("val",),
    "test": ("test",),
    "predict": ("test",),
    None: ("train", "val", "test"),
}


def _move_aside(folder: Path) -> None:
    """Rename ``folder`` to a hidden sibling, then delete it (a stale generated dataset); a
    folder another process already moved is no error."""
    aside = folder.with_name(f".{folder.name}.stale-{os.getpid()}")
    try:
        os.rename(folder, aside)
    except FileNotFoundError:
        return
    shutil.rmtree(aside, ignore_errors=True)


@rank_zero_only
def _print(msg: str) -> None:
    print(msg, flush=True)


class PersonDataModule(pl.LightningDataModule):
    """Base class; see the subclasses for the dataset-specific arguments.

    Args:
        root: dataset root folder.
        image_size: window side S.
        batch_size: train batch size; ``eval_batch_size`` for val/test (default: batch_size).
        num_workers: DataLoader workers (0 = in-process); persistent when > 0.
        pin_memory: DataLoader ``pin_memory``.
        strict: raise ``BadSampleError`` on the first bad input instead of skipping it.
        augment: ``AugmentConfig`` fields (mapping), True/False/None; train split only.
        max_image_pixels: decompression-bomb guard (images with more pixels are refused).
        synthetic: None, or generator keyword arguments: if the root has no annotations,
            ``prepare_data`` generates a dataset there.
        num_classes, multi_label: optional, checked against the dataset (config interpolation).
        box_cache: read ``<dataset dir>/cocoer_boxes.jsonl`` when present.
        synthetic_clip: None, or fields of
            :class:`~cocoer.data.synthetic.clip_pretrain.ClipPretrainConfig`: with generated
            data, ``prepare_data`` also pre-trains (or reuses) the tiny CLIP of the dataset,
            ``<dataset dir>/cocoer_clip/weights.pt`` (for ``model.net.vi.clip_weights_path``).
        windows_cache: read the windows from a cache written once per split
            (:mod:`cocoer.data.fast_windows`; augmentation on tensors, no decoding per epoch).
        windows_cache_dir: where the cache lives (default ``<dataset dir>/cocoer_windows``).
    """

    CLASS_NAMES: tuple[str, ...] = ()
    MULTI_LABEL: bool = False

    def __init__(
        self,
        root: str | os.PathLike[str],
        image_size: int = 224,
        batch_size: int = 64,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        pin_memory: bool = False,
        strict: bool = False,
        augment: Mapping[str, Any] | AugmentConfig | bool | None = None,
        max_image_pixels: int | None = DEFAULT_MAX_PIXELS,
        synthetic: Mapping[str, Any] | None = None,
        num_classes: int | None = None,
        multi_label: bool | None = None,
        box_cache: bool = True,
        synthetic_clip: Mapping[str, Any] | None = None,
        windows_cache: bool = False,
        windows_cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__()
        if num_classes is not None and int(num_classes) != len(self.CLASS_NAMES):
            raise ConfigError(
                f"{type(self).__name__}: num_classes={num_classes} but the dataset has "
                f"{len(self.CLASS_NAMES)} classes"
            )
        if multi_label is not None and bool(multi_label) != self.MULTI_LABEL:
            raise ConfigError(
                f"{type(self).__name__}: multi_label={multi_label} but the dataset is "
                f"{'multi' if self.MULTI_LABEL else 'single'}-label"
            )
        if root is None or not str(root).strip():
            raise ConfigError(
                f"{type(self).__name__}: root is empty (is EMOTIC_ROOT / CAER_S_ROOT set to an "
                "empty string?)"
            )
        if int(image_size) < 1 or int(batch_size) < 1 or int(num_workers) < 0:
            raise ConfigError("image_size and batch_size must be >= 1 and num_workers >= 0")
        self.root = Path(os.path.expanduser(str(root)))
        self.image_size = int(image_size)
        self.batch_size = int(batch_size)
        self.eval_batch_size = int(eval_batch_size or batch_size)
        self.num_workers = int(num_workers)
        self.pin_memory = bool(pin_memory)
        self.strict = bool(strict)
        self.augment = AugmentConfig.from_any(augment)
        self.max_image_pixels = None if max_image_pixels is None else int(max_image_pixels)
        self.synthetic = dict(synthetic) if synthetic else None
        self.use_box_cache = bool(box_cache)
        self.synthetic_clip = dict(synthetic_clip) if synthetic_clip is not None else None
        self.windows_cache = bool(windows_cache)
        self.windows_cache_dir = windows_cache_dir
        self.datasets: dict[str, PersonWindowsDataset | CachedWindowsDataset] = {}
        self.skip_reports: dict[str, SkipReport] = {}

    # ------------------------------------------------------------------ subclass hooks
    def dataset_dir(self) -> Path:
        """Folder holding the images, the box cache and the skip reports."""
        return self.root

    def has_annotations(self) -> bool:
        raise NotImplementedError

    def read_split(self, split: str, report: SkipReport) -> list[PersonRecord]:
        raise NotImplementedError

    def generate(self, into: Path) -> tuple[Path, Any]:
        """Write the synthetic dataset under the scratch folder ``into``.

        Returns the folder that must become :meth:`dataset_dir`, and the generator's summary.
        """
        raise NotImplementedError

    def missing_message(self) -> str:
        return f"no annotations found under {self.root}"

    # ------------------------------------------------------------------ properties
    @property
    def class_names(self) -> tuple[str, ...]:
        """Class names in label-index order."""
        return self.CLASS_NAMES

    @property
    def num_classes(self) -> int:
        """k."""
        return len(self.CLASS_NAMES)

    @property
    def multi_label(self) -> bool:
        """True for EMOTIC (multi-hot labels), False for CAER-S (one-hot)."""
        return self.MULTI_LABEL

    # ------------------------------------------------------------------ Lightning hooks
    def prepare_data(self) -> None:
        """Generate the synthetic dataset if configured and the root has no annotations (or
        holds a generated dataset made with other settings or by another generator version),
        then (``synthetic_clip``) pre-train its CLIP unless a cache with the same key exists."""
        if self.synthetic is None:
            return
        if not self.has_annotations():
            self._generate()
        elif (stale := is_stale(self.dataset_dir(), self.synthetic)) is not None:
            _print(f"[cocoer.data] {self.dataset_dir()}: generated data {stale}; remaking it")
            self._generate(replace=True)
        if self.synthetic_clip is not None:
            from cocoer.data.synthetic.clip_pretrain import pretrain_synthetic_clip

            pretrain_synthetic_clip(self.dataset_dir(), **self.synthetic_clip)

    def _generate(self, replace: bool = False) -> None:
        """Generate the synthetic dataset into :meth:`dataset_dir`.

        The dataset is written to a scratch folder next to the target and renamed into place,
        so an interrupted run leaves nothing half-written and concurrent jobs (a parallel
        multirun sharing ``data_dir``) cannot mix their files: the first rename wins.
        ``replace``: the target holds a stale generated dataset, moved aside first.
        """
        final = self.dataset_dir()
        if replace:
            _move_aside(final)
        if final.exists() and any(final.iterdir()):
            raise FileExistsError(
                f"{final}: not empty but without annotations; refusing to generate a synthetic "
                "dataset into it (empty it or point data.root elsewhere)"
            )
        final.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
        try:
            produced, summary = self.generate(scratch)
            try:
                os.rename(produced, final)  # atomic; replaces an empty directory
            except OSError:
                if not self.has_annotations():
                    raise
                summary = "another process generated it first; using theirs"
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        _print(f"[cocoer.data] generated a synthetic dataset at {final}: {summary}")

    def setup(self, stage: str | None = None) -> None:
        """Build the datasets of the stage's splits (once each) and report skips."""
        if not self.has_annotations():
            if self.synthetic is not None:  # setup without prepare_data (e.g. in tests)
                self.prepare_data()
            else:
                raise MissingFileError(self.missing_message())
        splits = _STAGE_SPLITS.get(stage)
        if splits is None:
            raise ValueError(f"unknown stage {stage!r}")
        base = self.dataset_dir()
        cache_report = SkipReport()
        cache = load_box_cache(base, cache_report) if self.use_box_cache else {}
        planted = read_planted_conflicts(base)  # generated data only
        for split in splits:
            if split in self.datasets:
                continue
            report = SkipReport()
            report.extend(cache_report)
            raw = self.read_split(split, report)
            records = resolve_records(
                raw, base, cache, report, strict=self.strict, max_pixels=self.max_image_pixels
            )
            augment = self.augment if split == "train" else AugmentConfig(enabled=False)
            if self.windows_cache:
                cache_dir = Path(self.windows_cache_dir or base / CACHE_DIRNAME)
                self.datasets[split] = cached_dataset(
                    records, base, cache_dir, split, self.num_classes, self.image_size,
                    augment, report, self.strict, self.max_image_pixels, planted,
                )  # fmt: skip
                records = self.datasets[split].records
            else:
                self.datasets[split] = PersonWindowsDataset(
                    records,
                    base,
                    self.num_classes,
                    WindowTransform(self.image_size, augment),
                    self.max_image_pixels,
                    conflict_levels=planted,
                )
            self.skip_reports[split] = report
            self._publish(split, records, report)

    @rank_zero_only
    def _publish(self, split: str, records: list[PersonRecord], report: SkipReport) -> None:
        path = self.dataset_dir() / f"cocoer_skipped_{split}.json"
        try:
            report.write(path)
            where = f"written to {path}"
        except OSError as exc:  # read-only dataset folders must not break training
            where = f"could not be written to {path} ({exc})"
        _print(
            f"[cocoer.data] {type(self).__name__} {split}: {len(records)} persons; "
            f"box sources {source_counts(records)}\n"
            + report.summary(title=f"{split} skip report")
            + f"\n  (report {where})"
        )

    # ------------------------------------------------------------------ loaders
    def _loader(self, split: str, train: bool) -> DataLoader:
        if split not in self.datasets:
            self.setup({"train": "fit", "val": "validate", "test": "test"}[split])
        workers = self.num_workers
        dataset = self.datasets[split]
        return DataLoader(
            dataset,
            batch_size=self.batch_size if train else self.eval_batch_size,
            shuffle=train,
            drop_last=False,
            num_workers=workers,
            pin_memory=self.pin_memory,
            persistent_workers=workers > 0,
            collate_fn=getattr(dataset, "collate_fn", None),  # the windows cache batches itself
        )

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """With the windows cache: uint8 windows -> augmented, normalised float windows, on
        the device the batch was moved to (:func:`~cocoer.data.tensor_augment.finish_batch`)."""
        if isinstance(batch, dict) and "context" in batch:
            return finish_batch(batch)
        return batch

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", train=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader("test", train=False)

"""The windows cache: a data path that can feed a GPU (``data.windows_cache=true``).

Today's loader decodes every image with PIL and cuts three windows per person at every epoch.
The cache does that once per split and stores the result as memory-mapped ``.npy`` arrays
under ``<dataset dir>/cocoer_windows/<split>_S<S>_M<M>/``:

- ``context.npy`` uint8 [N_img, 3, M, M]: each image resized to M x M (one per image). M = S
  for splits without a random context crop (then it is exactly today's context window); with
  the crop, ``M = ceil(S / sqrt(crop_min_scale))``, the margin that keeps the smallest crop at
  S pixels or more;
- ``body.npy`` / ``head.npy`` uint8 [N, 3, S, S]: today's body / head windows, bit for bit;
- ``boxes.npy`` float32 [N, 2, 4]: today's normalised body / head boxes (whole-image frame);
- ``image_index.npy`` int64 [N]: the image of each person; ``meta.json``: the cache key and the
  persons whose image failed to decode (kept as counted skips).

The key hashes the resolved records (image, person, both boxes, image size), the file sizes
and modification times, S, M and :data:`CACHE_VERSION`: any change rebuilds the cache. A cache
is written to a scratch folder and renamed into place (an interrupted write leaves nothing).
Batches are read with one fancy index per array (``__getitems__``) and augmented on tensors
(:mod:`cocoer.data.tensor_augment`), so the loader does no decoding and no PIL work.

Differences from today's path (measured in ``tests/data/test_fast_windows.py``): without
augmentation, none (same bytes, same boxes). With the random context crop, the context is
resized from the stored M x M image rather than from the full image (two resamplings: stated
tolerance there), and a head box that leaves the crop keeps its full window (today's path clips
it to the crop; its box is clipped alike in both).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from cocoer.data.dataset import vad_targets
from cocoer.data.records import BadSampleError, PersonRecord, SkipReport
from cocoer.data.tensor_augment import crop_batch, draw_params, finish_batch
from cocoer.data.transforms import AugmentConfig
from cocoer.data.window_arrays import crop_windows_array, resize_region_array
from cocoer.data.windows import load_image
from cocoer.errors import InputError

#: bump when the layout or the window code changes: old caches are then rebuilt
CACHE_VERSION = 1
CACHE_DIRNAME = "cocoer_windows"
_ARRAYS = ("context", "body", "head", "boxes", "image_index")


def context_side(image_size: int, augment: AugmentConfig) -> int:
    """M: the stored context's side (S, or S / sqrt(crop_min_scale) with the random crop)."""
    if augment.enabled and augment.crop_p > 0:
        return math.ceil(image_size / math.sqrt(augment.crop_min_scale) - 1e-9)
    return image_size


def cache_key(records: Sequence[PersonRecord], root: Path, image_size: int, side: int) -> str:
    """SHA-256 of everything the cached windows depend on (module doc)."""
    h = hashlib.sha256(f"v{CACHE_VERSION} S{image_size} M{side}\n".encode())
    stats: dict[str, str] = {}
    for r in records:
        if r.image not in stats:
            try:
                st = (root / r.image).stat()
                stats[r.image] = f"{st.st_size}:{st.st_mtime_ns}"
            except OSError:
                stats[r.image] = "missing"
        size = r.extra.get("loaded_size")
        h.update(
            f"{r.image}|{stats[r.image]}|{r.person}|{r.body_box}|{r.head_box}|{size}\n".encode()
        )
    return h.hexdigest()


def _write(
    records: Sequence[PersonRecord],
    root: Path,
    into: Path,
    image_size: int,
    side: int,
    max_pixels: int | None,
    key: str,
) -> None:
    """Decode every image once and write the arrays of the module doc into ``into``."""
    images = list(dict.fromkeys(r.image for r in records))
    where = {name: i for i, name in enumerate(images)}
    n, S = len(records), image_size
    open_mm = np.lib.format.open_memmap
    context = open_mm(into / "context.npy", "w+", np.uint8, (len(images), 3, side, side))
    body = open_mm(into / "body.npy", "w+", np.uint8, (n, 3, S, S))
    head = open_mm(into / "head.npy", "w+", np.uint8, (n, 3, S, S))
    boxes = np.zeros((n, 2, 4), np.float32)
    image_index = np.asarray([where[r.image] for r in records], np.int64)
    bad: dict[str, str] = {}
    by_image: dict[str, list[int]] = {}
    for i, r in enumerate(records):
        by_image.setdefault(r.image, []).append(i)
    for name, persons in by_image.items():
        try:
            image = load_image(root / name, max_pixels)
        except BadSampleError as exc:
            bad[name] = f"{exc.reason} [{exc.where}]"
            continue
        w, h = image.size
        context[where[name]] = resize_region_array(image, (0.0, 0.0, w, h), side)
        for i in persons:
            rec = records[i]
            raw = crop_windows_array(image, rec.body_box, rec.head_box, S)  # type: ignore[arg-type]
            body[i], head[i] = raw["body"], raw["head"]
            boxes[i] = np.stack([raw["body_box"], raw["head_box"]])
    for arr in (context, body, head):
        arr.flush()
    del context, body, head
    np.save(into / "boxes.npy", boxes)
    np.save(into / "image_index.npy", image_index)
    meta = {"version": CACHE_VERSION, "key": key, "bad_images": bad}
    (into / "meta.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")


def _read_meta(folder: Path) -> dict[str, Any] | None:
    """The cache's meta.json, or None when absent or unreadable (then the cache is rebuilt)."""
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def build_or_load_cache(
    records: Sequence[PersonRecord],
    root: Path,
    folder: Path,
    image_size: int,
    side: int,
    max_pixels: int | None = None,
) -> tuple[Path, dict[str, str]]:
    """Make sure ``folder`` holds the cache of ``records`` (rebuilt when its key differs).

    Returns:
        the folder, and ``{image: reason}`` of the images that failed to decode.
    """
    key = cache_key(records, root, image_size, side)
    meta = _read_meta(folder)
    if (
        meta is None
        or meta.get("key") != key
        or not all((folder / f"{a}.npy").is_file() for a in _ARRAYS)
    ):
        folder.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
        try:
            _write(records, root, scratch, image_size, side, max_pixels, key)
            if folder.exists():
                aside = folder.with_name(f".{folder.name}.stale-{os.getpid()}")
                os.rename(folder, aside)
                shutil.rmtree(aside, ignore_errors=True)
            with contextlib.suppress(OSError):  # another process renamed first: use theirs
                os.rename(scratch, folder)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        meta = _read_meta(folder) or {}
    bad = meta.get("bad_images", {})
    return folder, {str(k): str(v) for k, v in (bad.items() if isinstance(bad, dict) else [])}


def _batched(batch: dict[str, Tensor]) -> dict[str, Tensor]:
    """Collate of :class:`CachedWindowsDataset`: ``__getitems__`` already made the batch."""
    return batch


class CachedWindowsDataset(Dataset):
    """The windows of ``records`` read from a cache folder; batches of the data contract.

    ``__getitems__(indices)`` returns a batch with ``context``/``body``/``head`` uint8
    [B, 3, S, S] (cropped, not yet jittered, normalised or flipped), ``body_box``/``head_box``
    float32 [B, 4], ``labels`` float32 [B, k], ``index`` int64 [B], ``vad`` float32 [B, 3]
    when the records carry continuous values, ``conflict_level`` int64
    [B] with ``conflict_levels``, and with augmentation ``jitter`` [B, 3] / ``flip`` [B];
    :func:`~cocoer.data.tensor_augment.finish_batch` (:meth:`finish`) turns it into the
    batch of :class:`~cocoer.data.dataset.PersonWindowsDataset`. Use :attr:`collate_fn`.
    ``records`` must be the ones the cache was built from, persons of undecodable images
    already dropped via ``keep``.
    """

    collate_fn = staticmethod(_batched)

    def __init__(
        self,
        records: Sequence[PersonRecord],
        folder: Path,
        num_classes: int,
        image_size: int,
        augment: AugmentConfig,
        keep: Sequence[int] | None = None,
        conflict_levels: Mapping[tuple[str, int], int] | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.rows = np.asarray(range(len(records)) if keep is None else keep, np.int64)
        self.records = [records[i] for i in self.rows]
        self.num_classes = int(num_classes)
        self.image_size = int(image_size)
        self.augment = augment
        self.conflict_levels = conflict_levels
        labels = torch.zeros(len(self.records), self.num_classes)
        for i, r in enumerate(self.records):
            labels[i, list(r.labels)] = 1.0
        self.labels = labels
        self.vad = vad_targets(self.records)  # [N, 3] or None (no continuous annotations)
        self.image_wh = torch.tensor(
            [r.extra["loaded_size"] for r in self.records], dtype=torch.float32
        ).view(-1, 2)
        self.body_px = torch.tensor([r.body_box for r in self.records]).float().view(-1, 4)
        self.head_px = torch.tensor([r.head_box for r in self.records]).float().view(-1, 4)
        self._arrays: dict[str, np.ndarray] | None = None  # opened lazily, per process

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_arrays"] = None  # worker processes map the files themselves
        return state

    def arrays(self) -> dict[str, np.ndarray]:
        """The memory-mapped arrays (``allow_pickle=False``: only plain numbers are read)."""
        if self._arrays is None:
            self._arrays = {
                a: np.load(self.folder / f"{a}.npy", mmap_mode="r", allow_pickle=False)
                for a in _ARRAYS
            }
        return self._arrays

    def __len__(self) -> int:
        return len(self.records)

    def labels_tensor(self, index: int) -> Tensor:
        """Multi/one-hot labels of one record: float32 [k]."""
        return self.labels[index].clone()

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        """One finished sample (float windows), as :class:`PersonWindowsDataset` gives."""
        return {k: v[0] for k, v in self.finish(self.__getitems__([index])).items()}

    @staticmethod
    def finish(batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """The batch of the data contract (float, normalised windows): :func:`finish_batch`."""
        return finish_batch(batch)

    def __getitems__(self, indices: Sequence[int]) -> dict[str, Tensor]:
        arr = self.arrays()
        idx = torch.as_tensor(list(indices), dtype=torch.int64)
        rows = self.rows[idx.numpy()]
        order = np.argsort(rows, kind="stable")  # sorted reads from the memory map
        back = np.argsort(order, kind="stable")
        srt = rows[order]
        img = np.asarray(arr["image_index"][srt])
        uimg, inv = np.unique(img, return_inverse=True)

        def take(a: np.ndarray, at: np.ndarray, then: np.ndarray) -> Tensor:
            # sorted read from the map, then numpy's row gather (torch's uint8 index kernel
            # is about 25x slower for these [B, 3, S, S] batches)
            return torch.from_numpy(np.ascontiguousarray(np.asarray(a[at])[then]))

        context = take(arr["context"], uimg, inv[back])
        body, head = take(arr["body"], srt, back), take(arr["head"], srt, back)
        S = self.image_size
        if self.augment.enabled:
            wh, bpx, hpx = self.image_wh[idx], self.body_px[idx], self.head_px[idx]
            params = draw_params(self.augment, wh, bpx)
            out = crop_batch(context, wh, bpx, hpx, params, S)
        else:
            if context.shape[-1] != S:
                raise InputError(f"{self.folder}: context side {context.shape[-1]} != S = {S}")
            boxes = take(arr["boxes"], srt, back)
            out = {"context": context, "body_box": boxes[:, 0], "head_box": boxes[:, 1]}
        out["body"], out["head"] = body, head
        out["labels"] = self.labels[idx]
        out["index"] = idx
        if self.vad is not None:
            out["vad"] = self.vad[idx]
        if self.conflict_levels is not None:
            out["conflict_level"] = torch.tensor(
                [self.conflict_levels.get(self.records[i].key, -1) for i in idx.tolist()],
                dtype=torch.int64,
            )
        return out


def cached_dataset(
    records: Sequence[PersonRecord],
    root: Path,
    cache_dir: Path,
    split: str,
    num_classes: int,
    image_size: int,
    augment: AugmentConfig,
    report: SkipReport,
    strict: bool = False,
    max_pixels: int | None = None,
    conflict_levels: Mapping[tuple[str, int], int] | None = None,
) -> CachedWindowsDataset:
    """Build (or reuse) the split's cache and its dataset; persons of images that failed to
    decode are counted skips in ``report`` (or raise :class:`BadSampleError` when strict)."""
    side = context_side(image_size, augment)
    folder = cache_dir / f"{split}_S{image_size}_M{side}"
    folder, bad = build_or_load_cache(records, root, folder, image_size, side, max_pixels)
    keep = []
    for i, r in enumerate(records):
        if r.image in bad:
            if strict:
                raise BadSampleError(str(root / r.image), bad[r.image])
            report.add(r.record_id, bad[r.image])
        else:
            keep.append(i)
    return CachedWindowsDataset(
        records, folder, num_classes, image_size, augment, keep, conflict_levels
    )

"""Processing of a stream of images: results as JSON, annotated images, optional saliency
figures and VLM exports; bad inputs are reported and skipped, never fatal. An output that
cannot be written (a full disk, a folder that is not writable) stops the run with
:class:`OutputWriteError`, which holds the report of what was written until then.

The optional exports are functions passed in (``cocoer.interpret`` provides them:
``saliency_for_result``, ``export_vlm_inputs``), so that inference does not depend on
interpretation, which builds on inference's results.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from cocoer.data.records import BadSampleError
from cocoer.errors import CocoerError
from cocoer.infer.draw import annotate, save_rgb
from cocoer.infer.engine import Engine, to_rgb_image
from cocoer.infer.inputs import InputFailure, OutputNamer
from cocoer.infer.results import ImageResult
from cocoer.utils.files import atomic_write_text, os_error_line

#: (predictor, image, result, out_dir, stem) -> the figures written (saliency)
SaliencyExport = Callable[[Engine, Image.Image, ImageResult, Path, str], list[Path]]
#: (image, result, out_dir) -> the manifest written (VLM inputs)
VlmExport = Callable[[Image.Image, ImageResult, Path], Path]


@dataclass
class ImageOutputs:
    """Files written for one image."""

    source: str
    json: Path
    annotated: Path
    num_persons: int
    saliency: list[Path] = field(default_factory=list)
    vlm_manifest: Path | None = None

    def files(self) -> list[Path]:
        """Every file written for this image (the VLM export: its manifest's folder)."""
        vlm = [self.vlm_manifest.parent] if self.vlm_manifest else []
        return [self.json, self.annotated, *self.saliency, *vlm]


@dataclass
class RunReport:
    """Outcome of a run: what was written and what failed (with reasons)."""

    outputs: list[ImageOutputs] = field(default_factory=list)
    failures: list[InputFailure] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {
            "processed": [
                {
                    "source": o.source,
                    "json": str(o.json),
                    "persons": o.num_persons,
                    "files": [str(p) for p in o.files()],
                }
                for o in self.outputs
            ],
            "failures": [{"path": f.path, "reason": f.reason} for f in self.failures],
        }


class OutputWriteError(CocoerError):
    """An output could not be written; the run stops (no later output could be written
    either). ``report``: what was written before, the input that failed among its failures."""

    def __init__(self, line: str, report: RunReport | None = None) -> None:
        super().__init__(line)
        self.line, self.report = line, report or RunReport()


def process_image(
    predictor: Engine,
    path: Path,
    out_dir: Path,
    stem: str,
    saliency: SaliencyExport | None = None,
    vlm: VlmExport | None = None,
) -> tuple[ImageResult, ImageOutputs]:
    """Run one image and write ``<stem>.json``, ``<stem>_annotated.jpg`` (+ extras).

    Raises:
        BadSampleError: the file cannot be decoded (names the file and the reason).
        OutputWriteError: an output cannot be written (names the output and the reason).
    """
    image, _ = to_rgb_image(path)
    result = predictor.predict_image(image)
    result.source = str(path)
    outputs = ImageOutputs(
        source=str(path),
        json=out_dir / f"{stem}.json",
        annotated=out_dir / f"{stem}_annotated.jpg",
        num_persons=len(result.persons),
    )
    try:
        _write_outputs(predictor, image, result, out_dir, outputs, stem, saliency, vlm)
    except OSError as exc:
        raise OutputWriteError(os_error_line(exc)) from exc
    return result, outputs


def _write_outputs(
    predictor: Engine,
    image: Image.Image,
    result: ImageResult,
    out_dir: Path,
    outputs: ImageOutputs,
    stem: str,
    saliency: SaliencyExport | None,
    vlm: VlmExport | None,
) -> None:
    """The files of one image (:func:`process_image`); raises OSError."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if saliency is not None and result.persons:
        outputs.saliency = saliency(predictor, image, result, out_dir, stem)
    if vlm is not None and result.persons:
        outputs.vlm_manifest = vlm(image, result, out_dir / f"{stem}_vlm")
    data = result.to_json()
    data["outputs"] = {
        "annotated": outputs.annotated.name,
        "saliency": [p.name for p in outputs.saliency],
        "vlm_manifest": (
            str(outputs.vlm_manifest.relative_to(out_dir)) if outputs.vlm_manifest else None
        ),
    }
    atomic_write_text(outputs.json, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    save_rgb(str(outputs.annotated), annotate(np.asarray(image), result))


def run_images(
    predictor: Engine,
    paths: list[Path],
    out_dir: Path,
    saliency: SaliencyExport | None = None,
    vlm: VlmExport | None = None,
    progress: bool = True,
    on_result: Callable[[ImageResult], None] | None = None,
    namer: OutputNamer | None = None,
) -> RunReport:
    """Process ``paths`` one after the other (tqdm progress bar); a file that cannot be
    decoded is recorded in the report's failures and the run continues.

    Raises:
        OutputWriteError: an output could not be written (one line naming it and the
            reason); the run stops, its ``report`` lists what was written before.
    """
    report = RunReport()
    namer = namer or OutputNamer()
    bar = tqdm(paths, desc="images", unit="img", disable=not progress, dynamic_ncols=True)
    for path in bar:
        try:
            result, outputs = process_image(predictor, path, out_dir, namer(path), saliency, vlm)
        except BadSampleError as exc:
            report.failures.append(InputFailure(str(path), exc.reason or str(exc)))
            continue
        except OutputWriteError as exc:
            reason = f"outputs not written (some may be): {exc.line}"
            report.failures.append(InputFailure(str(path), reason))
            exc.report = report
            raise
        report.outputs.append(outputs)
        if on_result is not None:
            on_result(result)
    return report

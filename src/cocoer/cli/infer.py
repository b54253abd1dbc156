"""`cocoer-infer`: emotion recognition on photos, folders, videos and webcams.

    cocoer-infer photo.jpg folder/ clip.mp4 --ckpt model.ckpt --out outputs/
    cocoer-infer 0 --ckpt model.ckpt --max-frames 100          # webcam 0
    cocoer-infer photo.jpg --onnx model.onnx --out outputs/    # ONNX Runtime, no torch
    cocoer-infer photo.jpg --model ORG/NAME --out outputs/     # hub folder or Hub repo id
    cocoer-infer --convert GWT.pth --preset authors_demo --out converted.ckpt  # = cocoer-convert

Per image: ``<out>/<stem>.json`` and ``<out>/<stem>_annotated.jpg`` (+ ``--saliency``
figures, ``--vlm`` exports); per video: ``<out>/<stem>.jsonl`` and
``<out>/<stem>_annotated.mp4``; ``<out>/run_report.json`` lists every file written and
every input that failed or was skipped, with the reason. Every input gets its own stem
(``photo``, ``photo_2``... checked against this run and the files in ``--out``); an
``--out`` that holds an earlier run's ``run_report.json`` is refused unless
``--overwrite``. See docs/inference.md and docs/reliability.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from cocoer.constants import DETECTOR_BACKENDS
from cocoer.errors import CocoerError
from cocoer.utils.files import atomic_write_text, os_error_line, printable

if TYPE_CHECKING:
    from rich.console import Console

    from cocoer.infer.engine import Engine
    from cocoer.infer.inputs import OutputNamer
    from cocoer.infer.runner import OutputWriteError, RunReport, SaliencyExport, VlmExport


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cocoer-infer",
        description="CocoER inference on images, folders, videos or a webcam index.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("inputs", nargs="*", help="image / video files, folders, or a webcam index")
    p.add_argument(
        "--ckpt",
        help="CocoER checkpoint (.ckpt) or safetensors export (file or folder): PyTorch engine",
    )
    p.add_argument(
        "--onnx", metavar="MODEL", help="ONNX export (cocoer-export): the ONNX Runtime engine"
    )
    p.add_argument(
        "--model",
        metavar="NAME",
        help="hub folder or Hugging Face repo id ORG/NAME[@REVISION] (docs/model_zoo.md)",
    )
    p.add_argument("--revision", help="with --model ORG/NAME: a branch, tag or commit")
    p.add_argument("--out", default="outputs", help="output folder (file with --convert)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="write into an --out that holds an earlier run's results, replacing same names",
    )
    p.add_argument(
        "--thresholds",
        default="calibrated",
        help="'calibrated' (stored in the checkpoint), 'demo' (authors' 0.26 / 0.6) or a value",
    )
    p.add_argument("--detector", default="auto", choices=DETECTOR_BACKENDS, help="detector backend")
    p.add_argument("--insightface-models", default=None, help="folder of InsightFace ONNX files")
    p.add_argument(
        "--device",
        default=None,
        help="cpu | cuda | cuda:N (default: cpu; with --onnx: CUDA when available, else cpu)",
    )
    p.add_argument("--saliency", action="store_true", help="Grad-CAM figures per person")
    p.add_argument("--vlm", action="store_true", help="export VLM crops, prompts and manifest")
    p.add_argument("--batch-size", type=int, default=16, help="persons per forward pass")
    p.add_argument("--max-frames", type=int, default=None, help="stop videos after N frames")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--quiet", action="store_true", help="no per-image summary")
    conv = p.add_argument_group("conversion of the authors' weights (--convert = cocoer-convert)")
    conv.add_argument("--convert", metavar="WEIGHTS", help="authors' GWT.pth")
    conv.add_argument("--preset", choices=("authors_eval", "authors_demo"), default="authors_demo")
    conv.add_argument("--clip-weights", help="OpenAI's CLIP RN50 file (RN50.pt)")
    conv.add_argument("--vi-weights", help="the authors' VI_weights/w.pth")
    return p


def run_convert(args: argparse.Namespace) -> int:
    """``cocoer-convert`` (see :mod:`cocoer.cli.convert`) with this command's arguments."""
    from cocoer.cli import convert

    out = Path(args.out if args.out.endswith(".ckpt") else str(Path(args.out) / "converted.ckpt"))
    argv = [args.convert, "--out", str(out), "--preset", args.preset]
    argv += ["--report", str(out.with_suffix(".report.json"))]
    for flag, value in (("--clip-weights", args.clip_weights), ("--vi-weights", args.vi_weights)):
        if value:
            argv += [flag, value]
    return convert.run(convert.parse_args(argv))


def build_engine(args: argparse.Namespace) -> Engine:
    """The PyTorch engine (--ckpt) or the ONNX Runtime engine (--onnx, no torch import)."""
    common = {
        "thresholds": args.thresholds,
        "detector": args.detector,
        "insightface_models": args.insightface_models,
        "batch_size": args.batch_size,
    }
    if args.onnx:
        from cocoer.infer.onnx_engine import OnnxPredictor

        return OnnxPredictor(args.onnx, device=args.device or "auto", **common)
    from cocoer.infer.predictor import Predictor

    if args.model:
        return Predictor.from_pretrained(
            args.model, revision=args.revision, device=args.device or "cpu", **common
        )
    return Predictor.from_checkpoint(args.ckpt, device=args.device or "cpu", **common)


def _saliency_export() -> SaliencyExport:
    """Grad-CAM figures (imports torch: only when ``--saliency`` is asked for)."""
    from cocoer.interpret.saliency import saliency_for_result

    return saliency_for_result  # type: ignore[return-value]


def _vlm_export() -> VlmExport:
    """VLM input files (only when ``--vlm`` is asked for)."""
    from cocoer.interpret.vlm import export_vlm_inputs

    return export_vlm_inputs


#: the run's report in ``--out`` (its presence marks a folder that holds results)
REPORT = "run_report.json"


def check_out_dir(out: Path, overwrite: bool) -> None:
    """``--out`` must be a folder (or not exist yet) and, unless ``overwrite``, not hold the
    results of an earlier run (its ``run_report.json``): one-line InputError otherwise."""
    from cocoer.errors import InputError

    if out.exists() and not out.is_dir():
        raise InputError(out, "--out exists as a file, not a folder")
    if (out / REPORT).exists() and not overwrite:
        raise InputError(
            out, f"holds an earlier run's results ({REPORT}); choose another --out or --overwrite"
        )


def run_inference(args: argparse.Namespace) -> int:
    from rich.console import Console
    from tqdm import tqdm

    from cocoer.infer.inputs import OutputNamer, collect_inputs
    from cocoer.infer.runner import OutputWriteError, run_images
    from cocoer.infer.summary import summary_text

    console = Console(stderr=False, highlight=False)
    out = Path(args.out)
    check_out_dir(out, args.overwrite)
    inputs = collect_inputs(args.inputs)
    predictor = build_engine(args)
    out.mkdir(parents=True, exist_ok=True)
    namer = OutputNamer(out, overwrite=args.overwrite)
    show = None if args.quiet else (lambda r: tqdm.write(summary_text(r)))
    videos: list[dict] = []
    stopped: OutputWriteError | None = None
    try:
        report: RunReport = run_images(
            predictor,
            inputs.images,
            out,
            saliency=_saliency_export() if args.saliency else None,
            vlm=_vlm_export() if args.vlm else None,
            progress=not args.no_progress,
            on_result=show,
            namer=namer,
        )
    except OutputWriteError as exc:
        report, stopped = exc.report, exc
    report.failures[:0] = inputs.failures
    if stopped is None:
        stopped = _run_videos(
            args, predictor, [*inputs.videos, *inputs.webcams], namer, report, videos, console
        )
    done = len(report.outputs) + len(videos)
    data = report.to_json() | {"videos": videos, "skipped": len(report.failures)}
    if stopped is not None:
        data["stopped"] = stopped.line
    report_error = _write_report(out, data)
    if stopped is not None or report_error is not None:
        raise OutputWriteError(
            f"{stopped.line if stopped else report_error}; stopped after {done} input(s) "
            + (
                f"(the run report could not be written: {report_error})"
                if report_error
                else f"({out / REPORT} lists what was written)"
            )
        )
    console.print(f"processed {done} input(s) into {printable(out)}", markup=False)
    if report.failures:
        console.print(f"[bold]{len(report.failures)} input(s) skipped:[/bold]")
        for f in report.failures:
            console.print(f"  {printable(f.path)}: {printable(f.reason)}", markup=False)
    return 0 if done > 0 or not report.failures else 1


def _run_videos(
    args: argparse.Namespace,
    predictor: Engine,
    sources: Sequence[Path | int],
    namer: OutputNamer,
    report: RunReport,
    videos: list[dict],
    console: Console,
) -> OutputWriteError | None:
    """Every video / webcam in turn, into ``videos`` (a source that cannot be read: into
    ``report``'s failures); an output that cannot be written stops them (returned)."""
    from cocoer.data.records import BadSampleError
    from cocoer.infer.inputs import InputFailure
    from cocoer.infer.runner import OutputWriteError
    from cocoer.infer.video import run_video

    for source in sources:
        try:
            stem = namer(source if isinstance(source, Path) else Path(f"webcam{source}"))
            rep = run_video(
                predictor,
                source,
                Path(args.out),
                stem,
                args.max_frames,
                progress=not args.no_progress,
            )
        except BadSampleError as exc:
            report.failures.append(InputFailure(exc.where, exc.reason))
            continue
        except OutputWriteError as exc:
            name = f"webcam {source}" if isinstance(source, int) else str(source)
            reason = f"stopped, outputs incomplete: {exc.line}"
            report.failures.append(InputFailure(name, reason))
            return exc
        console.print(
            f"{printable(rep.source)}: {rep.frames} frames, {rep.tracks} tracked persons, "
            f"{rep.fps:.2f} frames/s on {predictor.device} -> {rep.jsonl.name}, {rep.video.name}",
            markup=False,
        )
        videos.append(
            {"source": rep.source, "frames": rep.frames, "fps": rep.fps, "jsonl": str(rep.jsonl)}
        )
    return None


def _write_report(out: Path, data: dict) -> str | None:
    """Write ``run_report.json``; None, or the line saying why it could not be written."""
    try:
        atomic_write_text(out / REPORT, json.dumps(data, indent=2) + "\n")
    except OSError as exc:
        return os_error_line(exc)
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        if args.convert:
            code = run_convert(args)
        else:
            if sum(map(bool, (args.ckpt, args.onnx, args.model))) != 1:
                parser.error("give one of --ckpt, --model (PyTorch) or --onnx (ONNX Runtime)")
            if args.onnx and args.saliency:
                parser.error("--saliency needs the PyTorch engine (--ckpt), not --onnx")
            if not args.inputs:
                parser.error("give at least one image, folder, video or webcam index")
            code = run_inference(args)
    except CocoerError as exc:  # bad input; anything else is a bug and keeps its traceback
        print(f"cocoer-infer: error: {printable(str(exc), 1000)}", file=sys.stderr)
        return 2
    except OSError as exc:  # --out not writable, disk full
        print(f"cocoer-infer: error: {os_error_line(exc)}", file=sys.stderr)
        return 2
    if not args.quiet:
        print(f"total time {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())

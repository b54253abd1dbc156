"""``cocoer-prepare``: detect and cache head / body boxes for EMOTIC or CAER-S.

Example::

    cocoer-prepare --dataset emotic --root /data/emotic --annotations mat
    cocoer-prepare --dataset caer_s --root /data/CAER-S --detector opencv

Re-running resumes: persons already in ``<root>/cocoer_boxes.jsonl`` are skipped. Unreadable
images are counted and listed at the end (exit code 0) unless ``--strict`` (exit code 1).
The work is done by :func:`cocoer.detect.prepare.prepare_dataset`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from cocoer.cli import print_error
from cocoer.constants import ANNOTATION_FORMATS, DATASETS, DEFAULT_CSV_DIR, DETECTOR_BACKENDS

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``cocoer-prepare``."""
    parser = argparse.ArgumentParser(
        prog="cocoer-prepare",
        description="Detect a head and a body box for every person of EMOTIC or CAER-S and "
        "cache them in <root>/cocoer_boxes.jsonl (resumable; never downloads anything).",
    )
    parser.add_argument("--dataset", required=True, choices=DATASETS)
    parser.add_argument("--root", required=True, type=Path, help="dataset root directory")
    parser.add_argument(
        "--annotations",
        default="mat",
        choices=ANNOTATION_FORMATS,
        help="EMOTIC annotation format (Annotations/Annotations.mat or the CSV export)",
    )
    parser.add_argument(
        "--csv-dir",
        default=DEFAULT_CSV_DIR,
        help="EMOTIC CSV folder relative to --root, holding <split>.csv (default %(default)s)",
    )
    parser.add_argument(
        "--splits", nargs="+", default=None, help="splits to prepare (default: all)"
    )
    parser.add_argument(
        "--detector",
        default="auto",
        choices=DETECTOR_BACKENDS,
        help="face detector: auto = insightface when its model file is present, else opencv",
    )
    parser.add_argument(
        "--insightface-models",
        type=Path,
        default=None,
        help="folder with det_10g.onnx (and optionally scrfd_person_2.5g.onnx); "
        "default ~/.insightface/models/buffalo_l",
    )
    parser.add_argument(
        "--strict", action="store_true", help="stop at the first bad annotation or image"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument(
        "--report", type=Path, default=None, help="also write the skip report as JSON here"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``cocoer-prepare``; returns the exit code (0 ok, 1 error)."""
    args = build_parser().parse_args(argv)
    from cocoer.detect.prepare import prepare_dataset  # after parsing: --help stays light
    from cocoer.errors import CocoerError

    try:
        summary = prepare_dataset(
            args.dataset,
            args.root,
            annotations=args.annotations,
            csv_dir=args.csv_dir,
            splits=args.splits,
            detector=args.detector,
            insightface_models=args.insightface_models,
            strict=args.strict,
            progress=not args.no_progress,
        )
    except (CocoerError, OSError) as exc:  # bad input (BadSampleError...), unreadable files
        print_error("cocoer-prepare", exc)
        return 1
    print(summary.table())
    print()
    print(summary.report.summary("skipped / fixed inputs"))
    if args.report is not None:
        print(f"skip report written to {summary.report.write(args.report)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

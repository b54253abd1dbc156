"""Command-line handling of the ONNX export (wired into ``cocoer-export --format onnx``).

    parser = argparse.ArgumentParser()
    add_onnx_arguments(parser)          # --ckpt --out --opset --quantize --fp16 --image-size
    sys.exit(run_onnx_export(parser.parse_args()))

``run_onnx_export`` returns an exit code (0 written, 2 bad input with a one-line message).
"""

from __future__ import annotations

import argparse
import sys

from cocoer.export import DEFAULT_OPSET  # no torch import while building the parser


def add_onnx_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ONNX export options (``--ckpt`` and ``--out`` only when not there yet)."""
    known = {a for action in parser._actions for a in action.option_strings}
    if "--ckpt" not in known:
        parser.add_argument("--ckpt", required=True, help="CocoER checkpoint (.ckpt)")
    if "--out" not in known:
        parser.add_argument("--out", required=True, help="output .onnx file")
    group = parser.add_argument_group("ONNX export")
    group.add_argument("--opset", type=int, default=DEFAULT_OPSET, help="ONNX opset (>= 18)")
    group.add_argument(
        "--quantize",
        choices=("int8",),
        default=None,
        help="dynamic int8 quantisation of the weights (CPU)",
    )
    group.add_argument(
        "--fp16", action="store_true", help="float16 model for the CUDA provider (I/O float32)"
    )
    group.add_argument(
        "--image-size", type=int, default=None, help="S when the checkpoint does not record it"
    )
    return parser


def run_onnx_export(args: argparse.Namespace) -> int:
    """Export ``args.ckpt`` to ``args.out``; prints what was written."""
    from cocoer.errors import CocoerError
    from cocoer.export.onnx import export_onnx

    if args.opset < 18:
        print(
            f"cocoer-export: error: --opset {args.opset}: the exporter needs >= 18", file=sys.stderr
        )
        return 2
    try:
        report = export_onnx(
            args.ckpt,
            args.out,
            opset=args.opset,
            quantize=args.quantize,
            fp16=args.fp16,
            image_size=args.image_size,
            overwrite=getattr(args, "overwrite", False),
        )
    except CocoerError as exc:
        print(f"cocoer-export: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # --out not writable, disk full
        from cocoer.utils.files import os_error_line

        print(f"cocoer-export: error: {os_error_line(exc)}", file=sys.stderr)
        return 2
    extra = f" (+ {', '.join(str(p) for p in report.extra_files)})" if report.extra_files else ""
    print(
        f"wrote {report.path}{extra}: {report.bytes / 2**20:.1f} MiB, opset {report.opset}, "
        f"{report.quantize or ('fp16' if report.fp16 else 'fp32')}, checked with onnx.checker"
    )
    return 0

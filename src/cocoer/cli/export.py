"""`cocoer-export`: a trained checkpoint in a format for sharing or deployment.

    cocoer-export --format safetensors --ckpt last.ckpt --out shared/     # weights + JSON
    cocoer-export --format onnx --ckpt last.ckpt --out model.onnx
    cocoer-export --format hub --ckpt last.ckpt --out hub/ [--push ORG/NAME]   # Hub folder

``safetensors``: the weights (no code can be stored in the file) and the config as JSON
(:mod:`cocoer.export.safetensors`); ``cocoer-infer --ckpt`` and ``cocoer-eval ckpt_path=``
read it. ``onnx``: :func:`cocoer.export.onnx.export_onnx`. ``hub``: a folder in the Hugging
Face Hub's layout with a model card (:mod:`cocoer.export.hub`), uploaded with ``--push``.

An existing output file is never replaced without ``--overwrite``, and the input checkpoint
never (not even with ``--overwrite``); a hub folder is written only into a new or empty
folder.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from cocoer.errors import CocoerError
from cocoer.export.hub_cli import add_hub_arguments, run_hub_export
from cocoer.export.onnx_cli import add_onnx_arguments, run_onnx_export
from cocoer.utils.files import os_error_line


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cocoer-export", description=__doc__.splitlines()[0])
    p.add_argument("--format", choices=("safetensors", "onnx", "hub"), default="safetensors")
    p.add_argument("--ckpt", required=True, help="checkpoint (.ckpt) to export")
    p.add_argument("--out", required=True, help="output folder or file")
    p.add_argument(
        "--overwrite", action="store_true", help="replace existing output files (never --ckpt)"
    )
    add_onnx_arguments(p)  # --opset, --quantize, --fp16, --image-size (used by --format onnx)
    add_hub_arguments(p)  # --push, --public, --metrics (used by --format hub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.format == "safetensors":
            from cocoer.export.safetensors import write_export

            files = write_export(args.ckpt, args.out, overwrite=args.overwrite)
            print("wrote " + " and ".join(str(f) for f in files))
        elif args.format == "hub":
            return run_hub_export(args)
        else:
            return run_onnx_export(args)
    except CocoerError as exc:  # bad input; anything else is a bug (traceback)
        print(f"cocoer-export: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # --out not writable, disk full
        print(f"cocoer-export: error: {os_error_line(exc)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`cocoer-demo`: the demo page (Gradio) for any model cocoer can load.

    cocoer-demo --ckpt model.ckpt                    # http://127.0.0.1:7860
    cocoer-demo --onnx model.onnx                    # ONNX Runtime engine
    cocoer-demo --ckpt model.ckpt --onnx model.onnx  # both; the page picks the engine
    cocoer-demo --authors GWT.pth --clip-weights RN50.pt --vi-weights w.pth

Needs the ``demo`` extra (``pip install 'cocoer[demo]'``). A model that cannot be loaded
ends the program with one line and exit status 2. See docs/demo.md.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from cocoer.constants import DEFAULT_MAX_PIXELS
from cocoer.demo.config import ServeConfig


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cocoer-demo",
        description="Serve the CocoER demo page (drop a photo, see each person's emotions).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    m = p.add_argument_group("model (one PyTorch model and / or one ONNX export)")
    m.add_argument("--ckpt", help="checkpoint (.ckpt) or safetensors export (file or folder)")
    m.add_argument("--onnx", help="ONNX export (cocoer-export): the ONNX Runtime engine")
    m.add_argument("--hub", help="hub model folder or id (needs the hub loader)")
    m.add_argument("--authors", metavar="GWT.pth", help="the authors' released weights")
    m.add_argument("--preset", choices=("authors_eval", "authors_demo"), default="authors_demo")
    m.add_argument("--clip-weights", help="OpenAI's CLIP RN50 file, with --authors")
    m.add_argument("--vi-weights", help="the authors' VI_weights/w.pth, with --authors")
    m.add_argument("--device", default=None, help="cpu | cuda | cuda:N (default: as cocoer-infer)")
    m.add_argument("--insightface-models", default=None, help="folder of InsightFace ONNX files")
    d = ServeConfig()
    s = p.add_argument_group("serving")
    s.add_argument("--host", default=d.host, help="address to bind (0.0.0.0: all)")
    s.add_argument("--port", type=int, default=d.port, help="TCP port")
    s.add_argument("--max-file-size", default=d.max_file_size, help="largest upload (e.g. 20mb)")
    s.add_argument("--queue-size", type=int, default=d.queue_size, help="requests waiting at most")
    s.add_argument(
        "--concurrency", type=int, default=d.concurrency, help="requests processed at once"
    )
    s.add_argument(
        "--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, help="decompression-bomb guard"
    )
    s.add_argument("--examples", action="append", default=[], help="folder of example photos")
    return p


def run(args: argparse.Namespace) -> int:
    """Load the model(s), then serve until interrupted (ModelLoadError propagates)."""
    from cocoer.demo.analysis import DemoAnalyser
    from cocoer.demo.examples import example_photos
    from cocoer.demo.models import DemoModels, ModelSource

    source = ModelSource(
        ckpt=args.ckpt,
        onnx=args.onnx,
        authors=args.authors,
        preset=args.preset,
        clip_weights=args.clip_weights,
        vi_weights=args.vi_weights,
        hub=args.hub,
        device=args.device,
    )
    models = DemoModels(source, args.insightface_models)
    from cocoer.demo.app import build_app, launch

    analyser = DemoAnalyser(models, max_pixels=args.max_pixels)
    cfg = ServeConfig(args.host, args.port, args.max_file_size, args.queue_size, args.concurrency)
    launch(build_app(analyser, example_photos(args.examples)), cfg)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from cocoer.cli import print_error
    from cocoer.errors import CocoerError

    try:
        return run(args)
    except ImportError as exc:
        print_error("cocoer-demo", exc, "install the demo extra: cocoer[demo]")
        return 2
    except CocoerError as exc:
        print_error("cocoer-demo", exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())

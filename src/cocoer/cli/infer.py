"""`cocoer-infer`: emotion recognition on photos, folders, videos and webcams.

    cocoer-infer photo.jpg folder/ clip.mp4 --ckpt model.ckpt --out outputs/
    cocoer-infer 0 --ckpt model.ckpt --max-frames 100          # webcam 0
    cocoer-infer --convert GWT.pth --net-config net.yaml --out converted.ckpt

Per image: ``<out>/<stem>.json`` and ``<out>/<stem>_annotated.jpg`` (+ ``--saliency``
figures, ``--vlm`` exports); per video: ``<out>/<stem>.jsonl`` and
``<out>/<stem>_annotated.mp4``; ``<out>/run_report.json`` lists what was processed and
every input that failed, with the reason. See docs/inference.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from cocoer.detect import BACKENDS


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cocoer-infer",
        description="CocoER inference on images, folders, videos or a webcam index.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("inputs", nargs="*", help="image / video files, folders, or a webcam index")
    p.add_argument(
        "--ckpt", help="CocoER checkpoint (.ckpt) or safetensors export (file or folder)"
    )
    p.add_argument("--out", default="outputs", help="output folder (file with --convert)")
    p.add_argument(
        "--thresholds",
        default="calibrated",
        help="'calibrated' (stored in the checkpoint), 'demo' (authors' 0.26 / 0.6) or a value",
    )
    p.add_argument("--detector", default="auto", choices=BACKENDS, help="detector backend")
    p.add_argument("--insightface-models", default=None, help="folder of InsightFace ONNX files")
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    p.add_argument("--saliency", action="store_true", help="Grad-CAM figures per person")
    p.add_argument("--vlm", action="store_true", help="export VLM crops, prompts and manifest")
    p.add_argument("--batch-size", type=int, default=16, help="persons per forward pass")
    p.add_argument("--max-frames", type=int, default=None, help="stop videos after N frames")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--quiet", action="store_true", help="no per-image summary")
    conv = p.add_argument_group("conversion of the authors' weights (--convert)")
    conv.add_argument("--convert", metavar="WEIGHTS", help="authors' model_GWT weight file")
    conv.add_argument(
        "--net-config",
        help="net config of the target: a YAML file (the `net` node of a model config, or a "
        "full config with model.net) or a .ckpt to copy it from; default: the authors' shapes",
    )
    conv.add_argument("--clip-weights", help="local CLIP RN50 weights for the converted model")
    return p


def _load_net_config(spec: str | None) -> dict:
    """The target net config for --convert."""
    import copy

    from omegaconf import OmegaConf

    from cocoer.convert import AUTHORS_NET_OVERRIDES

    if spec is None:
        conf = copy.deepcopy(AUTHORS_NET_OVERRIDES)
        conf.update({"num_classes": 26, "multi_label": True})
        conf["hfe"].update({"pretrained": False, "d_h": 256})
        return conf
    path = Path(spec)
    if not path.is_file():
        raise FileNotFoundError(f"net config not found: {path}")
    if path.suffix == ".ckpt":
        from cocoer.checkpoint import load_cocoer_checkpoint

        return dict(load_cocoer_checkpoint(path)["hyper_parameters"]["net"])
    loaded = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    if isinstance(loaded, dict) and "model" in loaded and "net" in loaded["model"]:
        loaded = loaded["model"]["net"]
    elif isinstance(loaded, dict) and "net" in loaded:
        loaded = loaded["net"]
    if not isinstance(loaded, dict) or "num_classes" not in loaded:
        raise ValueError(f"{path}: expected a net config with num_classes")
    return loaded


def run_convert(args: argparse.Namespace) -> int:
    from cocoer.convert import convert_authors_state_dict, save_converted_checkpoint

    cfg = _load_net_config(args.net_config)
    if args.clip_weights:
        cfg.setdefault("vi", {})["clip_weights_path"] = args.clip_weights
    state, report = convert_authors_state_dict(args.convert, cfg)
    out = Path(args.out if args.out.endswith(".ckpt") else str(Path(args.out) / "converted.ckpt"))
    save_converted_checkpoint(state, cfg, out, report)
    out.with_suffix(".report.json").write_text(json.dumps(report.to_json(), indent=2) + "\n")
    print(report.summary())
    print(f"wrote {out} and {out.with_suffix('.report.json')}")
    return 0 if report.ok else 1


def run_inference(args: argparse.Namespace) -> int:
    from rich.console import Console
    from tqdm import tqdm

    from cocoer.infer.inputs import InputFailure, OutputNamer, collect_inputs
    from cocoer.infer.predictor import Predictor
    from cocoer.infer.runner import RunReport, run_images
    from cocoer.infer.summary import summary_text
    from cocoer.infer.video import run_video

    console = Console(stderr=False, highlight=False)
    inputs = collect_inputs(args.inputs)
    predictor = Predictor.from_checkpoint(
        args.ckpt,
        device=args.device,
        thresholds=args.thresholds,
        detector=args.detector,
        insightface_models=args.insightface_models,
        batch_size=args.batch_size,
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    namer = OutputNamer()
    show = None if args.quiet else (lambda r: tqdm.write(summary_text(r)))
    report: RunReport = run_images(
        predictor,
        inputs.images,
        out,
        saliency=args.saliency,
        vlm=args.vlm,
        progress=not args.no_progress,
        on_result=show,
        namer=namer,
    )
    report.failures[:0] = inputs.failures
    videos: list[dict] = []
    from cocoer.data.records import BadSampleError

    sources: list[Path | int] = [*inputs.videos, *inputs.webcams]
    for source in sources:
        try:
            stem = namer(source) if isinstance(source, Path) else None
            rep = run_video(
                predictor, source, out, stem, args.max_frames, progress=not args.no_progress
            )
        except BadSampleError as exc:
            report.failures.append(InputFailure(exc.where, exc.reason))
            continue
        console.print(
            f"{rep.source}: {rep.frames} frames, {rep.tracks} tracked persons, "
            f"{rep.fps:.2f} frames/s on {predictor.device} -> {rep.jsonl.name}, {rep.video.name}"
        )
        videos.append(
            {"source": rep.source, "frames": rep.frames, "fps": rep.fps, "jsonl": str(rep.jsonl)}
        )
    data = report.to_json() | {"videos": videos}
    (out / "run_report.json").write_text(json.dumps(data, indent=2) + "\n")
    done = len(report.outputs) + len(videos)
    console.print(f"processed {done} input(s) into {out}")
    if report.failures:
        console.print(f"[bold]{len(report.failures)} input(s) skipped:[/bold]")
        for f in report.failures:
            console.print(f"  {f.path}: {f.reason}", markup=False)
    return 0 if done > 0 or not report.failures else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        if args.convert:
            code = run_convert(args)
        else:
            if not args.ckpt:
                parser.error("--ckpt is required (or use --convert)")
            if not args.inputs:
                parser.error("give at least one image, folder, video or webcam index")
            code = run_inference(args)
    except (FileNotFoundError, ValueError) as exc:  # cocoer.errors.InputError included
        print(f"cocoer-infer: error: {exc}", file=sys.stderr)
        return 2
    if not args.quiet:
        print(f"total time {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())

"""`cocoer-convert`: the authors' released CocoER as a cocoer checkpoint.

    cocoer-convert checkpoints/GWT.pth --out authors_eval.ckpt --preset authors_eval \\
        --clip-weights RN50.pt --vi-weights checkpoints/VI_weights/w.pth

``--preset authors_eval`` (model=cocoer_authors_eval: what produced the paper's reported
numbers) or ``authors_demo`` (model=cocoer_authors_demo: the authors' inference.py without
its random dropout and colour jitter). ``--set KEY=VALUE`` overrides the composed config
(Hydra syntax, e.g. ``--set model.net.hfe.backbone=resnet18``). Every input file is read
without unpickling code (:mod:`cocoer.checkpoint.weight_files`); ``--clip-weights`` takes OpenAI's
``RN50.pt`` (TorchScript archive) or a plain / safetensors state dict of OpenAI's or
open_clip's layout. The report (mapped, unused with reasons, unexplained) is printed and
stored in the checkpoint (``cocoer_conversion``); with ``--report FILE`` also as JSON. The
checkpoint is written only when nothing is unexplained, dropped or mismatched.

The result works like any checkpoint: ``cocoer-infer --ckpt OUT.ckpt``, ``cocoer-eval
ckpt_path=OUT.ckpt`` and ``cocoer-train model=cocoer_authors_eval model.init_from=OUT.ckpt``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

PRESETS = ("authors_eval", "authors_demo")


def compose_model_config(preset: str, overrides: list[str]) -> dict[str, Any]:
    """The ``model`` config of ``model=cocoer_<preset>`` for EMOTIC (26 classes), plain."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from cocoer import config_dir
    from cocoer.configs import register_resolvers

    register_resolvers()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("train", overrides=[f"model=cocoer_{preset}", "data=emotic", *overrides])
    model = OmegaConf.to_container(cfg.model, resolve=True)
    assert isinstance(model, dict)
    return {str(k): v for k, v in model.items()}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="cocoer-convert", description="Convert the authors' GWT.pth to a cocoer checkpoint."
    )
    p.add_argument("authors_ckpt", type=Path, help="the authors' GWT.pth")
    p.add_argument("--out", type=Path, required=True, help="the cocoer checkpoint to write")
    p.add_argument("--preset", choices=PRESETS, required=True)
    p.add_argument("--clip-weights", type=Path, help="OpenAI's CLIP RN50 file (RN50.pt)")
    p.add_argument("--vi-weights", type=Path, help="the authors' VI_weights/w.pth")
    p.add_argument("--report", type=Path, help="also write the report as JSON here")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> int:
    """Convert, print the report, write the checkpoint; the exit status."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from cocoer.convert.authors import convert_authors, save_converted_checkpoint
    from cocoer.errors import CocoerError

    for name, path in (
        ("authors' checkpoint", args.authors_ckpt),
        ("--clip-weights", args.clip_weights),
        ("--vi-weights", args.vi_weights),
    ):
        if path is not None and not path.is_file():
            print(f"cocoer-convert: {name} not found: {path}", file=sys.stderr)
            return 2
    try:
        model_cfg = compose_model_config(args.preset, list(args.overrides))
    except (CocoerError, HydraException, OmegaConfBaseException) as exc:
        print(f"cocoer-convert: bad --set override: {exc}".splitlines()[0], file=sys.stderr)
        return 2
    try:
        state, report = convert_authors(
            args.authors_ckpt, model_cfg["net"], args.clip_weights, args.vi_weights
        )
    except CocoerError as exc:
        print(f"cocoer-convert: {exc}", file=sys.stderr)
        return 2
    print(report.summary())
    if args.report is not None:
        from cocoer.utils.files import atomic_write_text

        atomic_write_text(args.report, json.dumps(report.to_json(), indent=2))
    if not report.ok:
        print("cocoer-convert: not written: see unexplained / dropped / mismatched above")
        return 1
    if args.clip_weights is None:
        print("warning: no --clip-weights: the V-I branch has a RANDOM CLIP", file=sys.stderr)
    out = save_converted_checkpoint(state, model_cfg, args.out, report)
    print(f"wrote {out} (preset {args.preset})")
    return 0


def main(argv: list[str] | None = None) -> None:
    sys.exit(run(parse_args(argv)))


if __name__ == "__main__":
    main()

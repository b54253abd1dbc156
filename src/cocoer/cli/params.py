"""`cocoer-params`: count the parameters of a model config without loading any weights.

    cocoer-params                      # the paper model (model=cocoer_paper, EMOTIC, 224 px)
    cocoer-params model=cocoer_tiny data.image_size=64

Builds the model from the config with ``pretrained`` switched off (random weights, no
download) and prints the parameters per part, trainable and frozen (CLIP). The arguments
are Hydra overrides of ``conf/train.yaml``; Hydra and the model are imported only after
they are parsed (``--help`` answers at once).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def count(overrides: list[str]) -> dict[str, int]:
    """Parameters per part of the model that ``overrides`` compose (see the module doc)."""
    from hydra import compose, initialize_config_dir

    from cocoer import config_dir
    from cocoer.configs import register_resolvers
    from cocoer.models import create_model

    register_resolvers()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("train", overrides=["model=cocoer_paper", "data=emotic", *overrides])
    net = cfg.model.net
    return create_model(
        net,
        num_classes=int(cfg.data.num_classes),
        multi_label=bool(cfg.data.multi_label),
        pretrained=False,
        hfe={"weights_path": None, "image_size": int(cfg.data.image_size)},
        vi={"clip_weights_path": None},
    ).parameter_counts()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cocoer-params",
        description="Count the parameters of a model config (random weights, no download).",
    )
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="Hydra overrides of conf/train.yaml (default: model=cocoer_paper data=emotic)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else list(argv))
    from cocoer.cli import exit_on_clear_error

    with exit_on_clear_error("cocoer-params"):
        counts = count(list(args.overrides))
    width = max(len(k) for k in counts)
    for k, v in counts.items():
        print(f"{k:<{width}}  {v / 1e6:10.2f} M")
    print(
        f"{'without frozen CLIP':<{width}}  {counts['trainable'] / 1e6:10.2f} M  (paper: 352.14 M)"
    )


if __name__ == "__main__":
    main()

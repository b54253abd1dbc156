"""`cocoer-params`: count the parameters of a model config without loading any weights.

    cocoer-params                      # the paper model (model=cocoer_paper, EMOTIC, 224 px)
    cocoer-params model=cocoer_tiny data.image_size=64

Builds the model from the config with ``pretrained`` switched off (random weights, no
download) and prints the parameters per part, trainable and frozen (CLIP).
"""

from __future__ import annotations

import sys

from hydra import compose, initialize_config_dir

from cocoer import config_dir
from cocoer.configs import register_resolvers
from cocoer.models import create_model


def count(overrides: list[str]) -> dict[str, int]:
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


def main(argv: list[str] | None = None) -> None:
    counts = count(list(sys.argv[1:] if argv is None else argv))
    width = max(len(k) for k in counts)
    for k, v in counts.items():
        print(f"{k:<{width}}  {v / 1e6:10.2f} M")
    print(
        f"{'without frozen CLIP':<{width}}  {counts['trainable'] / 1e6:10.2f} M  (paper: 352.14 M)"
    )


if __name__ == "__main__":
    main()

"""`cocoer-train`: Hydra entry point over conf/train.yaml (thin wrapper of cocoer.train.train)."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from cocoer import config_dir
from cocoer.configs import register_resolvers

register_resolvers()


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="train")
def _main(cfg: DictConfig) -> float | None:
    from cocoer.train import summarise, train

    metrics = train(cfg)
    print(summarise(metrics, cfg))
    monitor = "val/mAP" if cfg.data.get("multi_label", True) else "val/acc"
    value = metrics.get(monitor)
    return float(value) if value is not None else None  # for Hydra sweepers


def main() -> None:
    _main()


if __name__ == "__main__":
    main()

"""`cocoer-eval`: evaluate a checkpoint (Hydra entry point over conf/eval.yaml)."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from cocoer import config_dir
from cocoer.cli import exit_on_clear_error
from cocoer.configs import register_resolvers

register_resolvers()


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="eval")
def _main(cfg: DictConfig) -> None:
    from cocoer.train import evaluate, summarise

    with exit_on_clear_error("cocoer-eval"):
        metrics = evaluate(cfg)
    metrics["output_dir"] = cfg.paths.output_dir
    print(summarise(metrics, cfg))


def main() -> None:
    _main()


if __name__ == "__main__":
    main()

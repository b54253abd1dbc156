"""`cocoer-train`: Hydra entry point over conf/train.yaml (thin wrapper of cocoer.train.train).

Every run and multirun job goes through :func:`cocoer.runs.jobs.run_job`: a ``done``
marker on success, ``failed.json`` on failure (a failing multirun job does not stop the
sweep), and ``resume=true`` skips finished jobs and continues unfinished ones.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from typing import cast

import hydra
from omegaconf import DictConfig, OmegaConf

from cocoer import config_dir
from cocoer.cli import exit_on_clear_error
from cocoer.cli.hydra_help import help_text, wants_help
from cocoer.configs import register_resolvers

register_resolvers()

#: environment variable through which rank zero tells DDP child processes which job they run
JOB_ENV = "COCOER_JOB"


def _publish_job(cfg: DictConfig) -> None:
    """Tell DDP processes started later by Lightning (they inherit the environment) which
    job this is: its overrides and its run directory."""
    from hydra.core.hydra_config import HydraConfig

    # resolve=False: an override such as `model.loss.alpha=${x}` is passed on as written
    overrides = OmegaConf.to_container(HydraConfig.get().overrides.task, resolve=False)
    job = {
        "overrides": cast(list[str], overrides),
        "output_dir": str(cfg.paths.output_dir),
    }
    os.environ[JOB_ENV] = json.dumps(job)


def ddp_child_argv(argv: list[str], env: Mapping[str, str]) -> list[str] | None:
    """The command line of a DDP child process (local rank > 0), or None for rank zero.

    Lightning restarts the script with the parent's arguments, which in a multirun would
    start the whole sweep again and in any case lets Hydra open another directory. The
    child instead runs exactly the parent's job (its overrides) in the parent's directory,
    without Hydra writing anything there.
    """
    if int(env.get("LOCAL_RANK", "0") or 0) == 0 or JOB_ENV not in env:
        return None
    job = json.loads(env[JOB_ENV])
    rank = env.get("LOCAL_RANK")
    return [
        argv[0],
        *job["overrides"],
        f"hydra.run.dir='{job['output_dir']}'",
        "hydra.output_subdir=null",
        f"hydra.job.name=train_ddp_process_{rank}",
    ]


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="train")
def _main(cfg: DictConfig) -> float | None:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from cocoer.runs.jobs import run_job
    from cocoer.train import summarise, train

    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    with exit_on_clear_error("cocoer-train"):
        _publish_job(cfg)
        metrics = run_job(cfg, train, catch=multirun)
    if metrics.get("refused"):
        print(f"job refused: {metrics['error']}")
        return None
    if metrics.get("failed"):
        print(f"job failed: {metrics['error']} (see {metrics['output_dir']}/failed.json)")
        return None
    if metrics.get("skipped"):
        print(f"resume: already done, skipped {metrics['output_dir']}")
    print(summarise(metrics, cfg))
    monitor = "val/mAP" if cfg.data.get("multi_label", True) else "val/acc"
    value = metrics.get(monitor)
    return float(value) if value is not None else None  # for Hydra sweepers


#: the first line of ``cocoer-train --help``
SUMMARY = "train (and test) a CocoER model on a dataset; -m runs a sweep"


def main() -> None:
    if wants_help(sys.argv[1:]):
        print(
            help_text(
                "cocoer-train",
                "train (and test) a CocoER model on a dataset; -m runs a sweep",
                config_dir(),
            )
        )
        return
    child = ddp_child_argv(sys.argv, os.environ)
    if child is not None:
        sys.argv = child
    _main()


if __name__ == "__main__":
    main()

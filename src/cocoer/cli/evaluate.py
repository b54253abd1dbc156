"""`cocoer-eval`: evaluate a checkpoint (Hydra entry point over conf/eval.yaml).

    cocoer-eval ckpt_path=run/checkpoints/last.ckpt data=emotic
    cocoer-eval --model ORG/NAME[@REVISION] data=emotic     # a hub folder or Hub repo id

A run directory that holds an earlier run's ``metrics.json`` (``run_name=`` /
``hydra.run.dir=`` of a finished run) is refused in one line; nothing is written there.

``--model NAME`` (with an optional ``--revision REV``) is resolved before Hydra starts
(:func:`cocoer.hub.load.resolve_model`: a folder, or the Hugging Face cache) and becomes
``ckpt_path=<folder>``.
"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from cocoer import config_dir
from cocoer.cli import exit_on_clear_error
from cocoer.cli.hydra_help import help_text, wants_help
from cocoer.configs import register_resolvers

register_resolvers()


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="eval")
def _main(cfg: DictConfig) -> None:
    from cocoer.runs.run_dir import check_fresh_dir
    from cocoer.train import evaluate, summarise
    from cocoer.utils.provenance import write_hydra_records

    with exit_on_clear_error("cocoer-eval"):
        check_fresh_dir(cfg.paths.output_dir)  # an earlier run's records stay as they are
        write_hydra_records(cfg, cfg.paths.output_dir)
        metrics = evaluate(cfg)
    metrics["output_dir"] = cfg.paths.output_dir
    print(summarise(metrics, cfg))


def model_override(argv: list[str]) -> list[str]:
    """``argv`` with ``--model NAME [--revision REV]`` replaced by ``ckpt_path=<folder>``."""
    options: dict[str, str] = {}
    rest: list[str] = []
    it = iter(argv)
    for arg in it:
        flag, eq, value = arg.partition("=")
        if flag in ("--model", "--revision"):
            options[flag] = value if eq else next(it, "")
        else:
            rest.append(arg)
    if "--model" not in options:
        return argv
    from cocoer.errors import InputError
    from cocoer.hub.load import resolve_model

    folder = str(resolve_model(options["--model"], options.get("--revision") or None).resolve())
    if "'" in folder or "\\" in folder:
        raise InputError(folder, "a model folder whose path holds ' or \\ (move it)")
    return [*rest, f"ckpt_path='{folder}'"]


#: the first line of ``cocoer-eval --help``
SUMMARY = "test a checkpoint, export or hub model on a split of a dataset"


def main() -> None:
    if wants_help(sys.argv[1:]):
        print(
            help_text(
                "cocoer-eval",
                "test a checkpoint, export or hub model on a split of a dataset",
                config_dir(),
            )
        )
        return
    with exit_on_clear_error("cocoer-eval"):
        sys.argv[1:] = model_override(sys.argv[1:])
    _main()


if __name__ == "__main__":
    main()

"""``--help`` of the Hydra console scripts (``cocoer-train``, ``cocoer-eval``) without
composing the configuration.

Hydra's own app help composes the config once per option of every config group (about a
hundred compositions here, several seconds); this help lists the groups and their options
from the ``conf/`` folder instead and points at ``--cfg job`` (the composed config, with
any overrides) and ``--hydra-help`` (Hydra's flags).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

HELP_FLAGS = ("--help", "-h")


def config_groups(conf: Path) -> dict[str, list[str]]:
    """``{group: sorted option names}`` of the config folder ``conf`` (sub-folders holding
    YAML files; Hydra's own ``hydra/`` groups left out, as in Hydra's app help)."""
    groups: dict[str, list[str]] = {}
    for yaml in sorted(conf.rglob("*.yaml")):
        group = yaml.parent.relative_to(conf).as_posix()
        if group == "." or group == "hydra" or group.startswith("hydra/"):
            continue
        groups.setdefault(group, []).append(yaml.stem)
    return {g: sorted(options) for g, options in sorted(groups.items())}


def help_text(prog: str, summary: str, conf: Path) -> str:
    """The help page of ``prog`` (one line of ``summary``, the groups, the flags)."""
    lines = [
        f"{prog}: {summary}",
        "",
        f"usage: {prog} [GROUP=OPTION | KEY=VALUE ...] [-m] [--cfg job] [--hydra-help]",
        "",
        f"Config groups (in {conf}):",
        *(f"  {group}: {', '.join(options)}" for group, options in config_groups(conf).items()),
        "",
        f"The composed config, with any overrides: {prog} [OVERRIDES] --cfg job",
        f"Hydra's flags (multirun, shell completion, ...): {prog} --hydra-help",
        "Documentation: docs/experiments.md",
    ]
    return "\n".join(lines)


def wants_help(argv: Sequence[str]) -> bool:
    """True when the command line asks for the app help (``--help`` / ``-h``)."""
    return any(arg in HELP_FLAGS for arg in argv)

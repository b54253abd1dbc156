"""Command-line handling of the hub export (wired into ``cocoer-export --format hub``).

    cocoer-export --format hub --ckpt last.ckpt --out hub/                     # a folder
    cocoer-export --format hub --ckpt last.ckpt --out hub/ --push ORG/NAME     # + private repo

``run_hub_export`` returns an exit code (0 written, 2 bad input with a one-line message).
"""

from __future__ import annotations

import argparse
import sys


def add_hub_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the hub export options (``--format hub``)."""
    group = parser.add_argument_group("hub export (--format hub)")
    group.add_argument(
        "--push", metavar="ORG/NAME", help="upload the folder to this Hub repository (opt-in)"
    )
    group.add_argument(
        "--public", action="store_true", help="with --push: a public repository (default private)"
    )
    group.add_argument(
        "--metrics", help="metrics.json for the model card (default: the checkpoint's run's)"
    )
    return parser


def run_hub_export(args: argparse.Namespace) -> int:
    """Write the hub folder of ``args.ckpt`` to ``args.out`` (and push it with ``--push``)."""
    from cocoer.errors import CocoerError
    from cocoer.export.hub import push_to_hub, write_hub_folder

    try:
        written = write_hub_folder(
            args.ckpt, args.out, repo_id=args.push or "ORG/NAME", metrics=args.metrics
        )
        print(written.summary())
        if args.push:
            url = push_to_hub(written.folder, args.push, private=not args.public)
            print(f"pushed to {url} ({'public' if args.public else 'private'})")
    except CocoerError as exc:
        print(f"cocoer-export: error: {exc}", file=sys.stderr)
        return 2
    return 0

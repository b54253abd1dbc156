"""`cocoer-aggregate SWEEP_DIR [--out DIR]`: turn a multirun directory into the paper's tables
(:func:`cocoer.runs.aggregate.aggregate`; pandas and the run machinery are imported only
after the arguments are parsed).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cocoer-aggregate",
        description="Turn a multirun directory into the paper's tables (CSV, Markdown, plots).",
    )
    p.add_argument("sweep_dir", help="a multirun directory (logs/train/multiruns/NAME)")
    p.add_argument("--out", default=None, help="output directory (default SWEEP_DIR/summary)")
    return p


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    from cocoer.errors import CocoerError
    from cocoer.runs.aggregate import aggregate

    try:
        print(aggregate(args.sweep_dir, args.out))
    except CocoerError as exc:
        print(f"cocoer-aggregate: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()

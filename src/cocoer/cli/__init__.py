"""Command-line entry points (cocoer-train, -eval, -prepare, -infer, -params, -export).

Importing the package reads ``./.env`` (if any) into the environment, without
overriding variables that are already set.
"""

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from cocoer.errors import clear_error_in
from cocoer.utils.env import load_dotenv

load_dotenv()


@contextmanager
def exit_on_clear_error(prog: str) -> Iterator[None]:
    """Bad user input or a stopped run (a :class:`cocoer.errors.CocoerError`, also when
    wrapped by Hydra's instantiation) ends the program with one line on stderr and exit
    status 2, not with a traceback; any other exception propagates."""
    try:
        yield
    except Exception as exc:
        err = clear_error_in(exc)
        if err is None:
            raise
        print(f"{prog}: error: {err}", file=sys.stderr)
        sys.exit(2)

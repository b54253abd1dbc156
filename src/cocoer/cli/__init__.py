"""Command-line entry points (cocoer-train, -eval, -prepare, -infer, -params, -export).

Importing the package reads ``./.env`` (if any) into the environment, without
overriding variables that are already set.
"""

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from cocoer.errors import clear_error_in
from cocoer.utils.env import load_dotenv
from cocoer.utils.files import os_error_line, printable

load_dotenv()


@contextmanager
def exit_on_clear_error(prog: str) -> Iterator[None]:
    """Bad user input or a stopped run (a :class:`cocoer.errors.CocoerError`, also when
    wrapped by Hydra's instantiation) ends the program with one line on stderr and exit
    status 2, not with a traceback; any other exception propagates."""
    try:
        yield
    except Exception as exc:
        err: object = clear_error_in(exc) or _file_error_in(exc)
        if err is None:
            raise
        print_error(prog, str(err))
        sys.exit(2)


def print_error(prog: str, problem: BaseException | str, hint: str = "") -> None:
    """``prog: error: <problem>[ (hint)]`` as one line on stderr: an OS error naming a file
    as that file and the reason, anything else as its message, made printable (control
    characters escaped, at most 1000 characters)."""
    if isinstance(problem, OSError) and problem.filename is not None:
        text = os_error_line(problem)
    else:
        text = printable(str(problem), 1000)
    print(f"{prog}: error: {text}{f' ({hint})' if hint else ''}", file=sys.stderr)


def _file_error_in(exc: BaseException) -> str | None:
    """``file: reason`` of an OSError naming a file that ``exc`` is or was caused by (a data
    folder without its annotation file, an output folder that is not writable), else None."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, OSError) and cur.filename is not None:
            return os_error_line(cur)
        if isinstance(cur, FileNotFoundError) and str(cur):  # the project's own, with a message
            return str(cur).splitlines()[0]
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return None

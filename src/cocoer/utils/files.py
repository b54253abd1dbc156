"""Writing and reading files safely: the one source of file modes, atomic writes, bounded JSON
and printable text.

- :func:`atomic_write` (:func:`atomic_write_text`, :func:`atomic_write_bytes`): temporary
  file in the target's folder, fsync, :func:`os.replace` (a reader sees the old or the new
  file, never half of one), with the mode the user's umask gives a new file
  (:func:`apply_umask_mode`; temporary files are created ``0600``, which would hide
  checkpoints from the group); :func:`atomic_save_as` for writers that take a file name,
  :func:`atomic_folder` for a folder published whole (a hub model folder);
- :func:`loads_json`: :func:`json.loads` with a nesting limit checked before parsing (JSON
  nested 100k deep would otherwise end in a RecursionError);
- :func:`printable`: text from a file (class names...) with control characters escaped,
  before it reaches a terminal, a drawing or a prompt;
- :func:`refuse_overwrite`: the check every writer of user-named outputs makes.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from cocoer.errors import InputError

#: deepest nesting of ``[``/``{`` accepted in a JSON document read from a file
MAX_JSON_DEPTH = 64


def umask_mode(base: int = 0o666) -> int:
    """``base`` masked by the process's umask (what ``open(path, "w")`` gives a new file)."""
    mask = os.umask(0)
    os.umask(mask)
    return base & ~mask


def apply_umask_mode(path: str | os.PathLike[str]) -> None:
    """Give ``path`` the mode a new file gets under the user's umask (no-op on failure)."""
    with contextlib.suppress(OSError):
        os.chmod(path, umask_mode())


def fsync_dir(folder: Path) -> None:
    """Make a rename inside ``folder`` durable (no-op where folders cannot be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], object]) -> Path:
    """Call ``write(f)`` on a temporary file in ``path``'s folder, then fsync it, give it the
    umask's mode and rename it over ``path`` (a reader sees the old or the new file, never
    half of one); the folder is fsynced too. A failure leaves ``path`` as it was; an
    OSError that names no file (a full disk while writing) is raised naming ``path``."""

    def save(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            write(f)

    return atomic_save_as(path, save)


def atomic_save_as(path: str | os.PathLike[str], save: Callable[[Path], object]) -> Path:
    """:func:`atomic_write` for writers that take a file name (safetensors' ``save_file``,
    ``onnx.save_model``, ``Figure.savefig``): ``save(tmp)`` writes a temporary file in
    ``path``'s folder, which is then fsynced, given the umask's mode and renamed over
    ``path``; the folder is fsynced too. A failure leaves ``path`` as it was; an OSError
    that names no file (a full disk) is raised naming ``path``."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise with_filename(exc, path) from exc
    tmp = Path(name)
    try:
        save(tmp)
        _fsync_file(tmp)
        apply_umask_mode(tmp)  # mkstemp's 0600 would hide the file from the group
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise with_filename(exc, path) from exc
        raise
    fsync_dir(path.parent)
    return path


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary folder beside ``path`` for the block to fill; when the block ends, its
    files are fsynced and given the umask's modes, and it is renamed to ``path`` (which
    must be absent or an empty folder): a reader sees no folder or the whole one. An error
    in the block removes the temporary folder and leaves ``path`` as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        yield tmp
        for item in tmp.rglob("*"):
            if item.is_file():
                _fsync_file(item)
                apply_umask_mode(item)
            elif item.is_dir():
                os.chmod(item, umask_mode(0o777))
        os.chmod(tmp, umask_mode(0o777))
        if path.exists():
            path.rmdir()  # empty, or this raises and nothing is replaced
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_dir(path.parent)


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def with_filename(exc: OSError, path: str | os.PathLike[str]) -> OSError:
    """``exc`` itself if it names a file other than a temporary one, else an OSError of the
    same kind naming ``path`` (the file the user will look for)."""
    if exc.filename is not None and ".tmp" not in str(exc.filename):
        return exc
    try:
        return type(exc)(exc.errno, exc.strerror or str(exc), str(path))
    except TypeError:  # a subclass with another constructor
        return OSError(exc.errno, exc.strerror or str(exc), str(path))


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """:func:`atomic_write` of ``data``."""
    return atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """:func:`atomic_write_bytes` of ``text`` in UTF-8."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def json_depth(text: str) -> int:
    """Deepest nesting of arrays / objects in a JSON text (brackets inside strings ignored)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def loads_json(
    text: str | bytes, where: str | os.PathLike[str], max_depth: int = MAX_JSON_DEPTH
) -> Any:
    """``json.loads(text)`` refusing documents nested deeper than ``max_depth``.

    Raises:
        InputError: not JSON, or nested too deeply (names ``where`` and the reason).
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(where, "not UTF-8 text") from None
    depth = json_depth(text)
    if depth > max_depth:
        raise InputError(where, f"JSON nested {depth} deep (limit {max_depth})")
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise InputError(where, f"not valid JSON ({str(exc).splitlines()[0][:120]})") from None


def printable(text: object, limit: int = 200) -> str:
    """``text`` safe for a terminal line or a drawing: control and format characters (ANSI /
    OSC escapes, newlines, bidi overrides) escaped as ``\\xNN`` / ``\\uNNNN``, cut to
    ``limit`` characters."""
    out = []
    for ch in str(text):
        if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Cs"):
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    s = "".join(out)
    return s if len(s) <= limit else s[: limit - 3] + "..."


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Whether ``a`` and ``b`` name the same existing file (links and ``..`` followed)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(a).resolve() == Path(b).resolve()


def refuse_overwrite(
    targets: Sequence[Path], overwrite: bool, inputs: Sequence[str | os.PathLike[str]] = ()
) -> None:
    """Refuse (InputError, one line) to write ``targets`` when one of them is an input
    (never, even with ``overwrite``), is a folder, or exists and ``overwrite`` is False."""
    for t in targets:
        for src in inputs:
            if same_file(t, src):
                raise InputError(t, "is the input of this command; refusing to write over it")
        if t.is_dir():
            raise InputError(t, "exists as a folder; choose another output path")
        if t.exists() and not overwrite:
            raise InputError(t, "exists; pass --overwrite to replace it")
        if t.parent.exists() and not t.parent.is_dir():
            raise InputError(t.parent, "exists as a file, not a folder")


def os_error_line(exc: OSError) -> str:
    """One line for an OS error: the file and the reason (``not writable``, ``disk full``)."""
    where = exc.filename if exc.filename is not None else "output"
    return printable(f"{where}: {exc.strerror or type(exc).__name__}", 400)

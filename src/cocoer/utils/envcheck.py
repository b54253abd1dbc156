"""Check the installed environment against the lock (``make install`` runs it last).

``python -m cocoer.utils.envcheck requirements/lock.txt`` exits non-zero, naming each
package, when an installed version differs from its pin or a pinned package is missing,
and when ``cv2`` is provided by more than one distribution (``opencv-python`` and
``opencv-python-headless`` install the same module, and whichever was installed last wins).
"""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

from packaging.utils import canonicalize_name

#: Distributions that install the ``cv2`` module.
OPENCV_DISTRIBUTIONS = (
    "opencv-python",
    "opencv-python-headless",
    "opencv-contrib-python",
    "opencv-contrib-python-headless",
)


def read_lock(path: str | Path) -> dict[str, str]:
    """``{canonical name: version}`` of every ``name==version`` line of a pip lock file."""
    pins: dict[str, str] = {}
    for raw in Path(path).read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].split(";", 1)[0].strip()
        if not line or line.startswith("-") or "==" not in line:
            continue
        name, version = line.split("==", 1)
        pins[canonicalize_name(name.split("[", 1)[0])] = version.strip()
    return pins


def installed_versions() -> dict[str, str]:
    """``{canonical name: version}`` of the distributions installed in this environment."""
    return {
        canonicalize_name(d.metadata["Name"]): d.version
        for d in metadata.distributions()
        if d.metadata["Name"]
    }


def opencv_providers(installed: dict[str, str]) -> list[str]:
    """The installed distributions that ship the ``cv2`` module."""
    return [n for n in OPENCV_DISTRIBUTIONS if n in installed]


def check(lock_path: str | Path) -> list[str]:
    """Problems found (empty when the environment is exactly the lock's)."""
    pins, installed = read_lock(lock_path), installed_versions()
    problems = [
        f"{name}: locked {version}, installed {installed.get(name, 'nothing')}"
        for name, version in sorted(pins.items())
        if installed.get(name) != version
    ]
    cv2_from = opencv_providers(installed)
    if len(cv2_from) != 1:
        problems.append(f"cv2 must come from exactly one distribution, found {cv2_from}")
    return problems


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    lock = args[0] if args else "requirements/lock.txt"
    problems = check(lock)
    if problems:
        print(f"environment differs from {lock}:", *problems, sep="\n  ", file=sys.stderr)
        return 1
    print(f"environment matches {lock} ({len(read_lock(lock))} pinned packages, one cv2)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

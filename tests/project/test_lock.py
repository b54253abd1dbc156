"""The lock of the tested environment (requirements/lock.txt) agrees with pyproject.toml.

`make install` installs exactly the lock with `--no-deps` (pip resolves nothing), so every
requirement of the project must be pinned there with a version its specifier accepts, the
packages removed on purpose (requirements/overrides.txt) must be absent, and `make lock`
must be the command that produced the file.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from cocoer.utils.envcheck import (
    OPENCV_DISTRIBUTIONS,
    check,
    installed_versions,
    opencv_providers,
    read_lock,
)

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements" / "lock.txt"
PLATFORM = {"sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64"}


def _requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    reqs += [Requirement(r) for r in project["optional-dependencies"]["dev"]]
    env = {**PLATFORM, "python_version": "3.11", "extra": "dev"}
    return [r for r in reqs if r.marker is None or r.marker.evaluate(env)]


def test_every_requirement_is_pinned_within_its_specifier() -> None:
    pins = read_lock(LOCK)
    bad = []
    for req in _requirements():
        name = canonicalize_name(req.name)
        if name not in pins:
            bad.append(f"{req} is not in the lock")
        elif not req.specifier.contains(pins[name], prereleases=True):
            bad.append(f"{req}: locked {pins[name]} is outside the specifier")
    assert not bad, "run `make lock`:\n" + "\n".join(bad)


def test_every_lock_line_is_an_exact_pin() -> None:
    lines = [
        ln.split("#", 1)[0].strip()
        for ln in LOCK.read_text().splitlines()
        if ln.split("#", 1)[0].strip()
    ]
    assert lines, "empty lock"
    loose = [ln for ln in lines if not re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[^\s=<>~!]+", ln)]
    assert not loose, f"unpinned lines in the lock: {loose}"
    assert len(read_lock(LOCK)) == len(lines)


def test_numpy_1_and_the_packages_that_must_match_it() -> None:
    """The numpy 1 / numpy 2 choice is made on purpose: qpth declares numpy<2."""
    pins = read_lock(LOCK)
    assert pins["numpy"].startswith("1.26.")
    assert pins["qpth"]
    assert tuple(int(x) for x in pins["opencv-python-headless"].split(".")[:2]) < (4, 12)
    assert int(pins["pandas"].split(".")[0]) < 3


def test_overridden_packages_are_not_locked() -> None:
    """opencv-python (pulled by insightface) is removed: one OpenCV distribution only."""
    pins = read_lock(LOCK)
    removed = [
        canonicalize_name(Requirement(ln).name)
        for ln in (ROOT / "requirements" / "overrides.txt").read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    assert removed == ["opencv-python"]
    assert not [n for n in removed if n in pins]
    assert [n for n in OPENCV_DISTRIBUTIONS if n in pins] == ["opencv-python-headless"]


def test_lock_header_is_the_make_lock_command() -> None:
    header = LOCK.read_text().splitlines()[1].strip("# ").strip()
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\nlock:", 1)[1].split("\n\n", 1)[0]
    recipe_cmd = " ".join(
        ln.strip().rstrip("\\").strip() for ln in recipe.splitlines()[1:] if ln.strip()
    )
    recipe_cmd = recipe_cmd.replace("$(PYTHON) -m uv", "uv").replace(
        "$(LOCK)", "requirements/lock.txt"
    )
    assert " ".join(header.split()) == " ".join(recipe_cmd.split())


def test_cv2_comes_from_exactly_one_distribution() -> None:
    assert len(opencv_providers(installed_versions())) == 1


def test_envcheck_reports_version_drift_and_two_opencvs(tmp_path: Path, monkeypatch) -> None:
    lock = tmp_path / "lock.txt"
    lock.write_text("# header\nfoo==1.0\n    # via bar\nBaz_Qux==2.0 ; python_version >= '3'\n")
    assert read_lock(lock) == {"foo": "1.0", "baz-qux": "2.0"}
    fake = {"foo": "1.0", "baz-qux": "2.1", "opencv-python": "4", "opencv-python-headless": "4"}
    monkeypatch.setattr("cocoer.utils.envcheck.installed_versions", lambda: fake)
    problems = check(lock)
    assert problems[0] == "baz-qux: locked 2.0, installed 2.1"
    assert "exactly one" in problems[1] and len(problems) == 2
    fake.pop("opencv-python")
    fake["baz-qux"] = "2.0"
    assert check(lock) == []


@pytest.mark.parametrize("target", ["install", "setup", "lock"])
def test_make_targets_use_the_lock(target: str) -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(rf"^{target}:", makefile, re.M)
    install = makefile.split("\ninstall:", 1)[1].split("\n\n", 1)[0]
    assert "-r $(LOCK)" in install and "--no-deps" in install
    assert "make install" in (ROOT / ".ci" / "run").read_text()

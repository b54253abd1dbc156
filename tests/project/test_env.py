"""The .env loader."""

from __future__ import annotations

import os

import pytest

from cocoer.utils.env import load_dotenv


def test_dotenv_sets_missing_variables_only(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("COCOER_TEST_KEEP", "original")
    monkeypatch.delenv("COCOER_TEST_NEW", raising=False)
    monkeypatch.delenv("COCOER_TEST_QUOTED", raising=False)
    env = tmp_path / ".env"
    env.write_text(
        "# comment\n\nCOCOER_TEST_KEEP=changed\nexport COCOER_TEST_NEW=/data/x\n"
        "COCOER_TEST_QUOTED='a b'\nCOCOER_TEST_EMPTY=\n"
    )
    added = load_dotenv(env)
    assert os.environ["COCOER_TEST_KEEP"] == "original"
    assert os.environ["COCOER_TEST_NEW"] == "/data/x"
    assert os.environ["COCOER_TEST_QUOTED"] == "a b"
    assert set(added) == {"COCOER_TEST_NEW", "COCOER_TEST_QUOTED"}
    monkeypatch.delenv("COCOER_TEST_NEW")
    monkeypatch.delenv("COCOER_TEST_QUOTED")


def test_dotenv_bad_line_names_file_and_line(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("COCOER_TEST_GOOD", "set")  # restored by monkeypatch afterwards
    env = tmp_path / ".env"
    env.write_text("COCOER_TEST_GOOD=1\nthis is not an assignment\n")
    with pytest.raises(ValueError, match=r"\.env:2"):
        load_dotenv(env)
    assert load_dotenv(tmp_path / "missing.env") == {}

"""notebooks/walkthrough.ipynb: stored without outputs, and it runs end to end."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "walkthrough.ipynb"


def test_notebook_is_stored_without_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, "the notebook has code cells"
    for cell in code:
        assert cell.get("outputs") == [] and cell.get("execution_count") is None


def test_notebook_executes(tiny_checkpoint: Path, tmp_path: Path) -> None:
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOK, as_version=4)
    env = {"COCOER_NB_CKPT": str(tiny_checkpoint), "COCOER_NB_OUT": str(tmp_path / "nb")}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits the environment
    try:
        NotebookClient(nb, timeout=240, kernel_name="python3", resources={}).execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    out = tmp_path / "nb"
    assert (out / "t1.json").is_file()
    assert (out / "t1_p0_saliency.png").is_file()
    assert (out / "t1_vlm" / "manifest.json").is_file()
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert " -> " in text, "the exclusion sequences are printed"
    assert "person 0:" in text and "dropped level:" in text
    assert not any(o.get("output_type") == "error" for c in nb.cells for o in c.get("outputs", []))


@pytest.mark.slow
def test_notebook_trains_when_no_checkpoint_is_given(tmp_path: Path) -> None:
    """The notebook's own training path (about a minute on 2 CPU cores)."""
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOK, as_version=4)
    saved = os.environ.pop("COCOER_NB_CKPT", None)
    os.environ["COCOER_NB_OUT"] = str(tmp_path / "nb")
    try:
        NotebookClient(nb, timeout=600, kernel_name="python3", resources={}).execute()
    finally:
        os.environ.pop("COCOER_NB_OUT", None)
        if saved is not None:
            os.environ["COCOER_NB_CKPT"] = saved
    assert (tmp_path / "nb" / "run").is_dir() and (tmp_path / "nb" / "t1.json").is_file()

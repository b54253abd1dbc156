"""The demo page served in a thread of the test process on a free localhost port, and the
``cocoer-infer`` JSON of t1.jpg it is compared with (used by test_demo*.py)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

IMAGES = Path(__import__("insightface").__file__).parent / "data" / "images"
T1 = IMAGES / "t1.jpg"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve_demo(ckpt: Path, out_root: Path) -> Iterator[str]:
    """Serve the demo page for ``ckpt``; yields its URL, closes the server afterwards."""
    from cocoer.demo.analysis import DemoAnalyser
    from cocoer.demo.app import build_app, launch
    from cocoer.demo.config import ServeConfig
    from cocoer.demo.examples import example_photos
    from cocoer.demo.models import DemoModels, ModelSource

    analyser = DemoAnalyser(DemoModels(ModelSource(ckpt=str(ckpt))), out_root=out_root)
    port = free_port()
    app = launch(
        build_app(analyser, example_photos()), ServeConfig(port=port, queue_size=32), block=False
    )
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        app.close()


def infer_json(ckpt: Path, image: Path, out: Path, detector: str = "opencv") -> dict[str, Any]:
    """What ``cocoer-infer IMAGE --ckpt CKPT --detector DETECTOR`` writes for ``image``."""
    from cocoer.cli.infer import main

    code = main(
        [
            str(image),
            "--ckpt",
            str(ckpt),
            "--out",
            str(out),
            "--detector",
            detector,
            "--quiet",
            "--no-progress",
        ]
    )
    assert code == 0
    return dict(json.loads((out / f"{image.stem}.json").read_text()))


def person_essentials(person: dict[str, Any]) -> dict[str, Any]:
    """What the page must agree with cocoer-infer on, for one person."""
    keys = ("index", "body_box", "head_box", "final", "vi", "levels", "exclusion_sequence")
    return {k: person[k] for k in keys}

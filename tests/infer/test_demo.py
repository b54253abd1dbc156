"""The demo page (cocoer-demo) through gradio_client on a free localhost port: t1.jpg gives
cocoer-infer's persons, levels and exclusion sequences; bad uploads give the page's
message and the server keeps serving; 4 concurrent clients x 5 requests all answered
correctly. Plus hand-given boxes, the start-up error and the Spaces entry."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from cocoer.constants import LEVELS
from cocoer.data.synthetic.bad_cases import write_png_header_only
from tests.support.demo_server import T1, infer_json, person_essentials, serve_demo

gradio_client = pytest.importorskip("gradio_client", reason="the demo extra is not installed")
pytest.importorskip("gradio", reason="the demo extra is not installed")


def ask(url: str, photo: Path, boxes: str = "", only_hand: bool = False) -> tuple[Any, ...]:
    """One /analyse request (own client); returns (image, table, message, json, gallery)."""
    client = gradio_client.Client(url, verbose=False)
    return tuple(
        client.predict(
            gradio_client.handle_file(str(photo)),
            boxes,
            only_hand,
            "calibrated",
            "opencv",
            "pytorch",
            False,
            api_name="/analyse",
        )
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path) -> Any:
    with serve_demo(tiny_checkpoint, tmp_path_factory.mktemp("demo_out")) as url:
        yield url


@pytest.fixture(scope="module")
def expected(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path) -> dict:
    """cocoer-infer's JSON for t1.jpg with the same model and detector."""
    return infer_json(tiny_checkpoint, T1, tmp_path_factory.mktemp("infer_out"))


def check_t1_answer(answer: tuple[Any, ...], expected: dict) -> None:
    image, table, message, json_path, _ = answer
    data = json.loads(Path(json_path).read_text())
    persons = expected["persons"]
    assert len(persons) >= 3, "t1.jpg is a group photo"
    assert data["num_persons"] == len(persons)
    assert [person_essentials(p) for p in data["persons"]] == [
        person_essentials(p) for p in persons
    ]
    assert data["class_names"] == expected["class_names"]
    assert data["thresholds"] == expected["thresholds"]
    rows = table["data"]
    assert len(rows) == len(persons)
    col = table["headers"].index("exclusion sequence")
    assert [r[col] for r in rows] == [" -> ".join(p["exclusion_sequence"]) for p in persons]
    for level in LEVELS:  # each level's own prediction, highest first
        c = table["headers"].index(level)
        for row, p in zip(rows, persons, strict=True):
            names = [lab["name"] for lab in p["levels"][level]["labels"]]
            assert row[c].split(" ")[0] == (names[0] if names else "-")
    assert message.startswith(f"{len(persons)} persons in t1.jpg (1280x886)")
    assert np.asarray(Image.open(image)).shape == (886, 1280, 3)


def test_t1_equals_cocoer_infer(server: str, expected: dict) -> None:
    check_t1_answer(ask(server, T1), expected)


def test_bad_uploads_give_the_message_and_the_server_keeps_serving(
    server: str, expected: dict, tmp_path: Path
) -> None:
    text = tmp_path / "notes.jpg"
    text.write_text("this is not a photo\n")
    bomb = tmp_path / "bomb.png"
    write_png_header_only(bomb, 30000, 30000)
    empty = tmp_path / "empty_room.png"
    Image.new("RGB", (320, 240), (128, 128, 128)).save(empty)
    cases = {
        text: "Cannot use notes.jpg: unreadable image: not a recognised image format",
        bomb: "Cannot use bomb.png: decompression bomb guard: 30000x30000",
        empty: "No person found in empty_room.png",
    }
    for path, start in cases.items():
        _, table, message, json_path, _ = ask(server, path)
        assert message.startswith(start), message
        assert table["data"] == [] and json_path is None
    assert "Draw a box by hand" in ask(server, empty)[2]
    check_t1_answer(ask(server, T1), expected)  # still serving, still right


def test_hand_box_on_a_photo_with_nobody(server: str, tmp_path: Path) -> None:
    empty = tmp_path / "empty_room.png"
    Image.new("RGB", (320, 240), (128, 128, 128)).save(empty)
    _, table, message, json_path, _ = ask(server, empty, "40, 20, 200, 230")
    data = json.loads(Path(json_path).read_text())
    assert message.startswith("1 person in empty_room.png") and len(table["data"]) == 1
    (p,) = data["persons"]
    assert p["body_box"] == [40.0, 20.0, 200.0, 230.0] and p["body_source"] == "hand"
    assert sorted(p["exclusion_sequence"]) == sorted(LEVELS)
    _, table, message, _, _ = ask(server, empty, "1, 2, 3")
    assert message.startswith("Boxes by hand: box line 1 '1, 2, 3': expected four numbers")


def test_20_requests_from_4_concurrent_clients(
    server: str, expected: dict, tiny_checkpoint: Path, tmp_path: Path
) -> None:
    """Each client sends its own boxes (by hand, no detection: the queue is what is tested)
    on t1.jpg at a quarter of its size; every answer holds its own request's persons, and
    their levels and exclusion sequences are the Predictor's for those boxes."""
    from cocoer.detect import PersonDetection
    from cocoer.infer import Predictor

    small = tmp_path / "t1_small.png"
    Image.open(T1).convert("RGB").resize((320, 222)).save(small)
    bodies = [[round(v / 4) for v in p["body_box"]] for p in expected["persons"][:3]]
    requests = [bodies[:1], bodies[:2], bodies, bodies[1:]]

    def client_session(i: int) -> list[tuple[Any, ...]]:
        text = "\n".join(", ".join(str(v) for v in b) for b in requests[i])
        return [ask(server, small, text, only_hand=True) for _ in range(5)]

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(client_session, range(4)))
    assert sum(len(a) for a in answers) == 20
    oracle = Predictor.from_checkpoint(tiny_checkpoint, detector="opencv")
    for boxes, session in zip(requests, answers, strict=True):
        for _, table, message, json_path, _ in session:
            data = json.loads(Path(json_path).read_text())
            assert message.startswith(f"{len(boxes)} person") and len(table["data"]) == len(boxes)
            assert [p["body_box"] for p in data["persons"]] == [
                [float(v) for v in b] for b in boxes
            ]
            persons = [
                PersonDetection(
                    tuple(p["body_box"]), "hand", tuple(p["head_box"]), p["head_source"], 1.0
                )
                for p in data["persons"]
            ]
            truth = oracle.predict_image(Image.open(small).convert("RGB"), persons).to_json()
            assert [person_essentials(p) for p in data["persons"]] == [
                person_essentials(p) for p in truth["persons"]
            ]
    assert len({a[3] for session in answers for a in session}) == 20, "one JSON per request"


def test_unloadable_model_at_start_up_is_one_line_and_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cocoer.demo.cli import main

    bad = tmp_path / "model.ckpt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["--ckpt", str(bad)]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith(f"cocoer-demo: error: cannot load checkpoint {bad}") and err.count("\n") == 1
    )
    assert main(["--ckpt", str(tmp_path / "model.ckpt"), "--hub", "x/y"]) == 2
    assert "give one PyTorch model, not --ckpt, --hub" in capsys.readouterr().err
    assert main(["--authors", str(tmp_path / "GWT.pth")]) == 2
    assert capsys.readouterr().err == f"cocoer-demo: error: {tmp_path / 'GWT.pth'}: no such file\n"
    assert main(["--onnx", str(bad)]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith(f"cocoer-demo: error: cannot load ONNX model {bad}") and err.count("\n") == 1
    )


def test_boxes_parsing_and_clicks() -> None:
    from cocoer.demo.boxes import BoxError, add_corner, parse_boxes

    assert parse_boxes("10 20 50 60\n# note\n\n-5, -5, 400, 30", 100, 80) == [
        (10.0, 20.0, 50.0, 60.0),
        (0.0, 0.0, 100.0, 30.0),
    ]
    with pytest.raises(BoxError, match="box line 1 '200, 0, 300, 50': no area"):
        parse_boxes("200, 0, 300, 50", 100, 80)
    with pytest.raises(BoxError, match="numbers must be finite"):
        parse_boxes("0 0 nan 5", 100, 80)
    pending, text = add_corner(None, "1, 1, 5, 5", 30.4, 40.6)
    assert pending == [30.4, 40.6] and text == "1, 1, 5, 5"
    assert add_corner(pending, text, 10, 90) == (None, "1, 1, 5, 5\n10, 41, 30, 90")


def test_space_entry_reads_the_environment() -> None:
    from cocoer.demo.space import argv_from_env

    env = {"COCOER_DEMO_CKPT": "model.ckpt", "GRADIO_SERVER_NAME": "0.0.0.0", "OTHER": "x"}
    assert argv_from_env(env) == ["--ckpt", "model.ckpt", "--host", "0.0.0.0"]


def test_serving_defaults_are_local_and_bounded() -> None:
    from cocoer.demo.cli import build_parser
    from cocoer.demo.config import ServeConfig

    args = build_parser().parse_args(["--ckpt", "m.ckpt"])
    assert args.host == ServeConfig().host == "127.0.0.1" and args.port == ServeConfig().port
    assert args.max_file_size == "20mb" and args.queue_size > 0

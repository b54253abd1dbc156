"""detect_people / head_for_body: real photo (t1.jpg) and deterministic stub detectors."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from cocoer.data.heuristics import body_from_face, head_from_body
from cocoer.detect import (
    Detection,
    HOGPersonDetector,
    OpenCVFaceDetector,
    associate_faces,
    detect_people,
    head_for_body,
    pick_head,
)
from cocoer.detect.boxes import box_center, containment, contains_point

insightface = pytest.importorskip("insightface")
T1 = os.path.join(os.path.dirname(insightface.__file__), "data", "images", "t1.jpg")


class Recording:
    """Wraps a real detector and keeps what it returned."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.source = inner.source
        self.results: list[list[Detection]] = []

    def detect(self, image_rgb: np.ndarray) -> list[Detection]:
        self.results.append(self.inner.detect(image_rgb))
        return self.results[-1]


class StubDetector:
    """Returns fixed detections and records the shapes it was called with."""

    def __init__(self, boxes: list[tuple[float, float, float, float]], source: str = "opencv"):
        self.source = source
        self.boxes = boxes
        self.calls: list[tuple[int, ...]] = []

    def detect(self, image_rgb: np.ndarray) -> list[Detection]:
        self.calls.append(image_rgb.shape)
        return [Detection(b, 0.9 - 0.1 * i, self.source) for i, b in enumerate(self.boxes)]


def det(box, score=0.9, source="opencv") -> Detection:
    return Detection(tuple(float(v) for v in box), score, source)


@pytest.fixture(scope="module")
def t1() -> np.ndarray:
    if not os.path.isfile(T1):
        pytest.skip("t1.jpg not shipped with this insightface version")
    return np.asarray(Image.open(T1).convert("RGB"))


def test_detect_people_on_group_photo(t1: np.ndarray) -> None:
    height, width = t1.shape[:2]
    face_detector = Recording(OpenCVFaceDetector())
    people = detect_people(t1, face_detector, HOGPersonDetector())
    assert len(face_detector.results) == 1
    faces = face_detector.results[0]
    # one person per detected face (plus possibly person boxes without a face)
    with_face = [p for p in people if p.head_source == "opencv"]
    assert len(with_face) == len(faces) >= 4
    assert sorted(p.head_box for p in with_face) == sorted(f.box for f in faces)
    for p in people:
        assert p.body_source in ("opencv", "heuristic")
        assert p.head_source in ("opencv", "heuristic")
        bx1, by1, bx2, by2 = p.body_box
        assert 0 <= bx1 < bx2 <= width and 0 <= by1 < by2 <= height
        assert containment(p.head_box, p.body_box) > 0.99, p
        # the body is bigger than the head
        assert (bx2 - bx1) * (by2 - by1) > (p.head_box[2] - p.head_box[0]) * (
            p.head_box[3] - p.head_box[1]
        )
    xs = [box_center(p.body_box)[0] for p in people]
    assert xs == sorted(xs)


def test_head_for_body_finds_the_face_in_a_real_body_box(t1: np.ndarray) -> None:
    body = (680.0, 230.0, 920.0, 650.0)  # the man in the red shirt, face centre ~(786, 413)
    head, source = head_for_body(t1, body, OpenCVFaceDetector())
    assert source == "opencv"
    assert contains_point(head, 786, 413)
    assert containment(head, body) > 0.99
    assert 60 < head[2] - head[0] < 200


def test_associate_faces_one_to_one_best_containment() -> None:
    faces = [det((10, 10, 30, 30)), det((100, 10, 120, 30)), det((500, 500, 520, 520))]
    persons = [
        det((0, 0, 200, 200)),  # contains faces 0 and 1
        det((90, 0, 140, 100)),  # tighter around face 1
        det((300, 300, 400, 400)),  # no face
    ]
    pairs = associate_faces(faces, persons)
    assert set(pairs) == {(0, 0), (1, 1), (2, None), (None, 2)}
    assert pairs[-1] == (None, 2) and pairs[-2] == (2, None)


def test_detect_people_fallbacks_and_order() -> None:
    image = np.zeros((400, 600, 3), np.uint8)
    faces = StubDetector([(400, 50, 440, 90), (100, 40, 140, 80)], source="insightface")
    persons = StubDetector([(380, 30, 470, 380), (250, 100, 330, 390)])
    people = detect_people(image, faces, persons)
    assert len(people) == 3
    assert faces.calls == [image.shape] and persons.calls == [image.shape]
    left, middle, right = people  # sorted by body centre x
    # face without a person box: body expanded from the face
    assert left.head_box == (100.0, 40.0, 140.0, 80.0)
    assert left.head_source == "insightface" and left.body_source == "heuristic"
    assert left.body_box == pytest.approx(body_from_face(left.head_box, 600, 400))
    # person box without a face: head from the body
    assert middle.body_source == "opencv" and middle.head_source == "heuristic"
    assert middle.head_box == pytest.approx(head_from_body((250, 100, 330, 390)))
    # matched pair
    assert right.body_box == (380.0, 30.0, 470.0, 380.0) and right.body_source == "opencv"
    assert right.head_source == "insightface"
    # without a person detector every body comes from the face
    alone = detect_people(image, StubDetector([(100, 40, 140, 80)]), None)
    assert [p.body_source for p in alone] == ["heuristic"]


def test_detect_people_grows_body_to_contain_a_protruding_face() -> None:
    image = np.zeros((300, 300, 3), np.uint8)
    people = detect_people(
        image, StubDetector([(40, 5, 80, 45)]), StubDetector([(50, 20, 150, 290)])
    )
    assert len(people) == 1
    assert people[0].body_box == (40.0, 5.0, 150.0, 290.0)
    assert containment(people[0].head_box, people[0].body_box) == 1.0


def test_head_for_body_maps_crop_boxes_back_and_upsamples_small_crops() -> None:
    image = np.zeros((200, 300, 3), np.uint8)
    body = (100.0, 50.0, 140.0, 130.0)  # 40 x 80 crop -> upsampled x4 (min side 160)
    stub = StubDetector([(40, 20, 120, 100)])  # in upsampled crop pixels
    head, source = head_for_body(image, body, stub)
    assert stub.calls == [(320, 160, 3)]
    assert source == "opencv"
    assert head == pytest.approx((110.0, 55.0, 130.0, 75.0))


def test_head_for_body_falls_back_to_heuristic() -> None:
    image = np.zeros((200, 300, 3), np.uint8)
    body = (100.0, 20.0, 260.0, 190.0)
    head, source = head_for_body(image, body, StubDetector([]))
    assert source == "heuristic"
    assert head == pytest.approx(head_from_body(body))
    # a body box entirely outside the image: no detector call, heuristic
    stub = StubDetector([(0, 0, 10, 10)])
    _, source = head_for_body(image, (400, 300, 500, 400), stub)
    assert source == "heuristic" and stub.calls == []


def test_pick_head_prefers_large_face_near_the_top() -> None:
    body = (0.0, 0.0, 100.0, 200.0)
    top = det((35, 20, 65, 50))
    low = det((35, 150, 65, 180))
    assert pick_head([low, top], body) is top
    assert pick_head([det((200, 200, 210, 210))], body) is None

"""OpenCV face / HOG person detectors on real photographs shipped with insightface."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from cocoer.detect import Detection, HOGPersonDetector, OpenCVFaceDetector
from cocoer.detect.boxes import box_center, contains_point, iou, nms

insightface = pytest.importorskip("insightface")
IMAGES_DIR = os.path.join(os.path.dirname(insightface.__file__), "data", "images")

#: Hand-labelled face centres in t1.jpg (1280 x 886, six people around a table), left to right.
T1_FACE_CENTRES = [(75, 310), (342, 192), (518, 341), (786, 413), (940, 132), (1173, 336)]


def load_rgb(name: str) -> np.ndarray:
    """A photo from insightface's data folder as an RGB uint8 array."""
    path = os.path.join(IMAGES_DIR, name)
    if not os.path.isfile(path):
        pytest.skip(f"{path} not shipped with this insightface version")
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.fixture(scope="module")
def t1() -> np.ndarray:
    return load_rgb("t1.jpg")


@pytest.fixture(scope="module")
def t1_faces(t1: np.ndarray) -> list[Detection]:
    return OpenCVFaceDetector().detect(t1)


def test_images_folder_has_the_group_photo() -> None:
    assert "t1.jpg" in os.listdir(IMAGES_DIR)


def test_opencv_finds_several_faces_in_group_photo(t1: np.ndarray, t1_faces) -> None:
    height, width = t1.shape[:2]
    assert (height, width) == (886, 1280)
    assert 4 <= len(t1_faces) <= 8, [d.box for d in t1_faces]
    for det in t1_faces:
        x1, y1, x2, y2 = det.box
        assert det.source == "opencv"
        assert 0.0 < det.score < 1.0
        assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
        w, h = x2 - x1, y2 - y1
        assert 0.03 * width <= w <= 0.25 * width, det.box  # face-sized, not a body or a speck
        assert 0.7 <= w / h <= 1.4, det.box
    scores = [d.score for d in t1_faces]
    assert scores == sorted(scores, reverse=True)
    # NMS: no two kept boxes overlap much
    for i, a in enumerate(t1_faces):
        for b in t1_faces[i + 1 :]:
            assert iou(a.box, b.box) <= 0.3


def test_opencv_faces_match_hand_labelled_faces(t1_faces) -> None:
    hits = [c for c in T1_FACE_CENTRES if any(contains_point(d.box, *c) for d in t1_faces)]
    assert len(hits) >= 4, (hits, [d.box for d in t1_faces])
    for det in t1_faces:  # each box holds at most one labelled face
        inside = [c for c in T1_FACE_CENTRES if contains_point(det.box, *c)]
        assert len(inside) <= 1


def test_opencv_single_aligned_face() -> None:
    image = load_rgb("Tom_Hanks_54745.png")
    faces = OpenCVFaceDetector().detect(image)
    assert len(faces) == 1
    (x1, y1, x2, y2) = faces[0].box
    assert contains_point(faces[0].box, 56, 56)
    assert (x2 - x1) * (y2 - y1) > 0.3 * 112 * 112


def test_opencv_blank_image_has_no_face_and_no_person() -> None:
    blank = np.full((240, 320, 3), 128, dtype=np.uint8)
    assert OpenCVFaceDetector().detect(blank) == []
    assert HOGPersonDetector().detect(blank) == []
    assert HOGPersonDetector().detect(np.zeros((40, 30, 3), np.uint8)) == []  # < HOG window


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((10, 10), np.uint8),
        np.zeros((10, 10, 3), np.float32),
        np.zeros((10, 10, 4), np.uint8),
    ],
)
def test_detectors_reject_non_rgb_uint8(bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match="OpenCVFaceDetector input"):
        OpenCVFaceDetector().detect(bad)


def test_opencv_rejects_bad_scale_factor() -> None:
    with pytest.raises(ValueError, match="scale_factor"):
        OpenCVFaceDetector(scale_factor=1.0)


def test_nms_suppresses_overlaps_and_nested_boxes() -> None:
    boxes = [(0, 0, 10, 10), (1, 1, 11, 11), (2, 2, 6, 6), (50, 50, 60, 60)]
    scores = [0.9, 0.8, 0.95, 0.1]
    keep = nms(boxes, scores, iou_threshold=0.3, containment_threshold=0.7)
    # the nested box (best score) is kept and suppresses both big ones by containment
    assert keep == [2, 3]
    keep = nms(boxes, scores, iou_threshold=0.3, containment_threshold=None)
    assert keep == [2, 0, 3]
    with pytest.raises(ValueError, match="2 boxes but 1 scores"):
        nms(boxes[:2], scores[:1])


def test_box_center() -> None:
    assert box_center((0, 0, 10, 4)) == (5.0, 2.0)

"""InsightFace backend selection: no model files exist here, so auto falls back to OpenCV and an
explicit ``insightface`` backend fails with an error naming the folder and the file. No
InsightFace model is faked."""

from __future__ import annotations

from pathlib import Path

import pytest

from cocoer.detect import (
    FACE_MODEL_FILE,
    PERSON_MODEL_FILE,
    HOGPersonDetector,
    InsightFaceModelMissing,
    OpenCVFaceDetector,
    build_face_detector,
    build_person_detector,
    default_providers,
    find_insightface_model,
    insightface_available,
)


@pytest.fixture()
def fake_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HOME without ~/.insightface, so the default model folder is empty."""
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def test_auto_falls_back_to_opencv_without_model_files(fake_home: Path, tmp_path: Path) -> None:
    assert not insightface_available()
    assert isinstance(build_face_detector("auto"), OpenCVFaceDetector)
    assert isinstance(build_person_detector("auto"), HOGPersonDetector)
    models = tmp_path / "models"
    models.mkdir()
    assert find_insightface_model(FACE_MODEL_FILE, models) is None
    assert isinstance(build_face_detector("auto", model_dir=models), OpenCVFaceDetector)
    assert isinstance(build_person_detector("auto", model_dir=models), HOGPersonDetector)
    assert isinstance(build_face_detector("opencv", model_dir=models), OpenCVFaceDetector)


def test_insightface_missing_folder_error_names_folder_and_file(tmp_path: Path) -> None:
    missing = tmp_path / "no_such_folder"
    with pytest.raises(InsightFaceModelMissing) as info:
        build_face_detector("insightface", model_dir=missing)
    msg = str(info.value)
    assert str(missing) in msg and FACE_MODEL_FILE in msg
    assert "does not exist" in msg and "never downloads" in msg
    assert isinstance(info.value, FileNotFoundError)


def test_insightface_empty_folder_error(tmp_path: Path) -> None:
    folder = tmp_path / "buffalo_l"
    folder.mkdir()
    with pytest.raises(InsightFaceModelMissing, match=PERSON_MODEL_FILE) as info:
        build_person_detector("insightface", model_dir=folder)
    assert str(folder) in str(info.value) and "does not exist" not in str(info.value)


def test_insightface_default_folder_named_in_error(fake_home: Path) -> None:
    with pytest.raises(InsightFaceModelMissing) as info:
        build_face_detector("insightface")
    assert str(fake_home / ".insightface" / "models" / "buffalo_l") in str(info.value)


def test_insightface_explicit_onnx_path_missing(tmp_path: Path) -> None:
    path = tmp_path / "det_10g.onnx"
    with pytest.raises(InsightFaceModelMissing, match=str(path)):
        build_face_detector("insightface", model_dir=path)


def test_model_lookup_also_searches_the_parent_folder(tmp_path: Path) -> None:
    """scrfd_person_2.5g.onnx lives in ~/.insightface/models beside buffalo_l/ (an empty
    placeholder file is enough for the lookup; it is never loaded here)."""
    (tmp_path / "buffalo_l").mkdir()
    (tmp_path / PERSON_MODEL_FILE).write_bytes(b"")
    found = find_insightface_model(PERSON_MODEL_FILE, tmp_path / "buffalo_l")
    assert found == tmp_path / PERSON_MODEL_FILE
    assert find_insightface_model(FACE_MODEL_FILE, tmp_path / "buffalo_l") is None


def test_unknown_backend() -> None:
    with pytest.raises(ValueError, match="unknown detector backend 'yolo'"):
        build_face_detector("yolo")
    with pytest.raises(ValueError, match="unknown detector backend"):
        build_person_detector("yolo")


def test_default_providers_end_with_cpu() -> None:
    import onnxruntime

    providers = default_providers()
    assert providers[-1] == "CPUExecutionProvider"
    has_cuda = "CUDAExecutionProvider" in onnxruntime.get_available_providers()
    assert ("CUDAExecutionProvider" in providers) == has_cuda

"""Class vocabularies, level names and image statistics shared across the package."""

from __future__ import annotations

#: The 26 EMOTIC categories in the canonical order (docs/method.md section 8).
EMOTIC_CATEGORIES: tuple[str, ...] = (
    "Affection", "Anger", "Annoyance", "Anticipation", "Aversion", "Confidence",
    "Disapproval", "Disconnection", "Disquietment", "Doubt/Confusion", "Embarrassment",
    "Engagement", "Esteem", "Excitement", "Fatigue", "Fear", "Happiness", "Pain", "Peace",
    "Pleasure", "Sadness", "Sensitivity", "Suffering", "Surprise", "Sympathy", "Yearning",
)  # fmt: skip

#: The 7 CAER-S classes, in the (alphabetical) order of the dataset folders.
CAER_S_CLASSES: tuple[str, ...] = (
    "Anger", "Disgust", "Fear", "Happy", "Neutral", "Sad", "Surprise",
)  # fmt: skip

#: Levels in the order the workspace indexes them: Z = {c, b, h} (docs/method.md section 4).
LEVELS: tuple[str, ...] = ("context", "body", "head")
LEVEL_SHORT: dict[str, str] = {"context": "c", "body": "b", "head": "h"}
#: The heads that predict: short name (metric keys) -> long name (inference outputs):
#: G = the final FFN2, t = the V-I module, c / b / h = the level mappings.
HEAD_NAMES: dict[str, str] = {"G": "final", "t": "vi", **{LEVEL_SHORT[m]: m for m in LEVELS}}

#: EMOTIC's continuous dimensions, in the order of every VAD vector, and their range.
VAD_NAMES: tuple[str, str, str] = ("valence", "arousal", "dominance")
VAD_RANGE: tuple[float, float] = (1.0, 10.0)

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

#: The authors' demo thresholds (their inference script; docs/method.md section 7).
DEMO_FINAL = 0.26
DEMO_LEVEL = 0.6
DEMO_VI = 0.6
#: Rules that calibrate the per-class thresholds on the validation split
#: (:func:`cocoer.training.calibration.calibrate_thresholds`, ``model.threshold_rule``).
CALIBRATION_RULES: tuple[str, ...] = ("f1", "pr_equal", "fixed")
#: Level threshold in ``calibrated`` mode (level heads have no calibrated thresholds).
UNCALIBRATED_LEVEL = 0.5

#: Face / person detector backends (``--detector``; ``auto``: InsightFace when its model
#: file is present, else OpenCV).
DETECTOR_BACKENDS: tuple[str, ...] = ("auto", "insightface", "opencv")
#: Datasets ``cocoer-prepare`` reads, and EMOTIC's annotation formats.
DATASETS: tuple[str, ...] = ("emotic", "caer_s")
ANNOTATION_FORMATS: tuple[str, ...] = ("mat", "csv")
#: EMOTIC's CSV annotation folder relative to the dataset root.
DEFAULT_CSV_DIR = "emotic_pre"
#: Default decompression-bomb guard: images with more pixels are refused (PIL's own hard limit,
#: 2 x ``Image.MAX_IMAGE_PIXELS``, about 13.4k x 13.4k; :mod:`cocoer.data.image_io`).
DEFAULT_MAX_PIXELS = 178_956_970

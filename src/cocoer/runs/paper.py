"""The paper's reference numbers (docs/method.md section 6 and the supplement's Table 4c), keyed
by the ablation names of ``conf/hparams_search`` (``ablation.name``) and their row labels
(``ablation.row``)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Ablation:
    """One table of the paper: its name, the swept quantity and the paper's test metric."""

    table: str
    title: str
    param: str
    paper: dict[str, float] = field(default_factory=dict)
    dataset: str = "EMOTIC"
    metric: str = "mAP"


ABLATIONS: dict[str, Ablation] = {
    "dims": Ablation(
        "4a",
        "Table 4a: (d_h, d)",
        "d_h x d",
        {"512x128": 35.05, "1024x256": 37.32, "2048x512": 36.89, "3072x768": 36.44,
         "4096x1024": 36.03},
    ),
    "alpha": Ablation(
        "4b",
        "Table 4b: alpha",
        "alpha",
        {"0.0": 34.81, "0.1": 37.32, "0.4": 36.70, "0.8": 36.16, "1.0": 35.87},
    ),
    "beta": Ablation(
        "4c",
        "Table 4c: beta weighting (our reading of the rows)",
        "weighting",
        {"balanced": 37.32, "vi_workspace": 36.57, "vi": 34.93, "workspace": 37.05, "hfe": 35.19,
         "context_only": 35.77, "body_only": 34.30, "head_only": 35.43},
    ),
    "patch": Ablation("4d", "Table 4d: patch size p", "p", {"2": 37.32, "3": 35.93, "4": 36.77}),
    "losses": Ablation(
        "4e",
        "Table 4e: loss combination",
        "L_emo",
        {"G_only": 36.46, "t_G": 35.09, "full": 37.32},
    ),
    "backbone": Ablation(
        "3",
        "Table 3: HFE backbone (V-I: CLIP RN50)",
        "backbone",
        {"vgg16": 35.38, "densenet161": 35.91, "resnet50": 37.32, "resnet101": 36.59,
         "resnet152": 36.33},
    ),
    "clip": Ablation(
        "3",
        "Table 3: V-I encoder (HFE: ResNet-50)",
        "CLIP",
        {"RN50": 37.32, "RN50x16": 36.21, "RN50x64": 36.05, "ViT-B-16": 35.76, "ViT-B-32": 35.52},
    ),
    "update": Ablation("fig2", "Fig. 2: workspace update type (no numbers in the paper)", "update"),
    "mapping": Ablation(
        "fig3", "Fig. 3: structure of the level mapping FFN0 (no numbers in the paper)", "mapping"
    ),
    "vad": Ablation(
        "ext", "cocoer extension: the valence / arousal / dominance head (no paper numbers)",
        "VAD head"
    ),
    "seeds": Ablation("main", "Main result over seeds", "run", {"main": 37.32}),
}  # fmt: skip

#: Table 5: first-excluded level shares (%), context / body / head
FIRST_EXCLUDED: dict[str, dict[str, float]] = {
    "EMOTIC": {"context": 10.73, "body": 25.50, "head": 63.77},
    "CAER-S": {"context": 6.21, "body": 88.15, "head": 5.64},
}

#: main results (test): EMOTIC mAP 37.32 +- 0.05, CAER-S accuracy 91.86 +- 0.11
MAIN: dict[str, tuple[str, float, float]] = {
    "EMOTIC": ("mAP", 37.32, 0.05),
    "CAER-S": ("acc", 91.86, 0.11),
}


def paper_value(ablation: str, row: object) -> float | None:
    """The paper's number for ``row`` of ``ablation`` (numbers compared as numbers)."""
    spec = ABLATIONS.get(ablation)
    if spec is None:
        return None
    key = str(row)
    if key in spec.paper:
        return spec.paper[key]
    try:
        x = float(key)
    except ValueError:
        return None
    for k, v in spec.paper.items():
        try:
            if float(k) == x:
                return v
        except ValueError:
            continue
    return None

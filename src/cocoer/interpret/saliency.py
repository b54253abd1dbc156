"""Grad-CAM saliency of each level with the original and the refined level mapping (Sec. 7).

For level m the saliency target is one class's logit of that level:

- original: l_m = theta_m z_m (the level's prediction layer on its own representation);
- refined: l~_m = (theta_m + s delta) z^_m, the coordinated prediction layer on the refined
  representation z^_m (the workspace's output). With delta = -G^T mu in low-rank form,
  l~_m = theta_m z^_m + b_m - s sum_i mu_i g_i (z_i . z^_m + 1).

Grad-CAM (``pytorch_grad_cam``) is taken at the output of level m's backbone (its last conv
block), with the other two windows held fixed. Maps are [S, S] in [0, 1] (the library's
min-max scaling), one per level, person and variant.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np
import torch
from torch import Tensor, nn

from cocoer.constants import LEVELS
from cocoer.data.windows import denormalize
from cocoer.models.cocoer import CocoER
from cocoer.utils.files import atomic_save_as

if TYPE_CHECKING:
    from PIL import Image

    from cocoer.infer.predictor import Predictor
    from cocoer.infer.results import ImageResult

VARIANTS = ("original", "refined")


def refined_level_logits(net: CocoER, batch: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
    """Original and refined level logits, both [B, 3, k], for a batch of windows."""
    x = net.hfe(
        batch["context"], batch["body"], batch["head"], batch["body_box"], batch["head_box"]
    )
    z, l, cache = net.levels(x)
    vi = net.vi(batch["context"])
    ws = net.workspace(net.levels, z, l, cache, vi["y_t"])
    s = net.workspace.delta_scale
    zz = ws.z_hat @ z.transpose(1, 2) + 1.0  # [B, q(m), q(i)] : z^_m . z_i + 1
    refined = net.levels.predict(ws.z_hat) - s * torch.einsum("bi,bmi,bik->bmk", ws.mu, zz, ws.g)
    return l, refined


class LevelLogits(nn.Module):
    """Level m's logits [B, k] as a function of its window [B, 3, S, S] alone.

    The other windows and the boxes come from ``batch`` (held fixed); ``refined`` selects
    l~_m (coordinated) instead of l_m (original).
    """

    def __init__(self, net: CocoER, batch: Mapping[str, Tensor], level: int, refined: bool):
        super().__init__()
        self.net, self.level, self.refined = net, level, refined
        self.batch = {k: v.detach() for k, v in batch.items()}

    def forward(self, window: Tensor) -> Tensor:
        if not window.requires_grad:  # frozen backbones: gradients still reach the maps
            window = window.detach().requires_grad_(True)
        batch = dict(self.batch)
        batch[LEVELS[self.level]] = window
        if not self.refined:  # l_m = theta_m z_m needs neither V-I nor the workspace
            x = self.net.hfe(
                batch["context"], batch["body"], batch["head"], batch["body_box"], batch["head_box"]
            )
            return self.net.levels(x)[1][:, self.level]
        return refined_level_logits(self.net, batch)[1][:, self.level]


@dataclass
class SaliencyMaps:
    """Grad-CAM maps of a batch of persons.

    Attributes:
        maps: [2 (original, refined), 3 (c, b, h), P, S, S] float32 in [0, 1].
        class_indices: [P] target class per person.
        windows: [3, P, S, S, 3] RGB float32 in [0, 1] (the model's windows).

    A map that is zero everywhere means Grad-CAM found no positive evidence for the class
    in that window (the ReLU of Grad-CAM removed everything); see :attr:`empty`.
    """

    maps: np.ndarray
    class_indices: np.ndarray
    windows: np.ndarray

    @property
    def empty(self) -> np.ndarray:
        """[2, 3, P] bool: maps without positive evidence (all zero)."""
        return self.maps.reshape(*self.maps.shape[:3], -1).max(-1) <= 0.0

    def get(self, variant: str, level: str) -> np.ndarray:
        """[P, S, S] maps of ``variant`` (original | refined) and ``level``."""
        return self.maps[VARIANTS.index(variant), LEVELS.index(level)]


def compute_saliency(
    net: CocoER, batch: Mapping[str, Tensor], class_indices: Sequence[int] | Tensor | None = None
) -> SaliencyMaps:
    """Grad-CAM of every level, original and refined, for every person of ``batch``.

    Args:
        net: the model (put in eval mode here).
        batch: windows [P, 3, S, S] and boxes [P, 4] (the data contract).
        class_indices: target class per person; None = the class of highest final score.
    """
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    net.eval()
    with torch.no_grad():
        if class_indices is None:
            class_indices = net(batch)["logits_G"].argmax(-1)
    classes = [int(c) for c in torch.as_tensor(class_indices).tolist()]
    P = batch["context"].shape[0]
    if len(classes) != P:
        raise ValueError(f"{len(classes)} class indices for {P} persons")
    targets = [ClassifierOutputTarget(c) for c in classes]
    maps = []
    with torch.enable_grad():
        for refined in (False, True):
            per_level = []
            for m in range(len(LEVELS)):
                wrapper = LevelLogits(net, batch, m, refined)
                with GradCAM(model=wrapper, target_layers=[net.hfe.backbones[m]]) as cam:
                    per_level.append(cam(input_tensor=batch[LEVELS[m]], targets=targets))
            maps.append(np.stack(per_level))
    net.zero_grad(set_to_none=True)
    windows = torch.stack([denormalize(batch[lvl].detach()).clamp(0, 1) for lvl in LEVELS])
    return SaliencyMaps(
        maps=np.stack(maps).astype(np.float32),
        class_indices=np.asarray(classes),
        windows=windows.permute(0, 1, 3, 4, 2).cpu().numpy().astype(np.float32),
    )


def saliency_figure(
    sal: SaliencyMaps,
    person: int,
    class_names: Sequence[str],
    path: str | Path,
    exclusion_sequence: Sequence[str] | None = None,
    person_label: int | None = None,
) -> Path:
    """One figure per person: rows = levels (c, b, h); columns = window, Grad-CAM with the
    original mapping, Grad-CAM with the refined mapping. Saved as PNG at ``path``.

    ``person`` indexes ``sal``; ``person_label`` is the number shown (default ``person``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from pytorch_grad_cam.utils.image import show_cam_on_image

    fig, axes = plt.subplots(len(LEVELS), 3, figsize=(7.5, 7.5), squeeze=False)
    cls = class_names[int(sal.class_indices[person])]
    for m, level in enumerate(LEVELS):
        window = sal.windows[m, person]
        panels = [window] + [
            show_cam_on_image(window, sal.get(v, level)[person], use_rgb=True) for v in VARIANTS
        ]
        empty = sal.empty[:, m, person]
        titles = [f"{level} window"] + [
            f"{level}: {name}" + (" (no positive evidence)" if e else "")
            for name, e in zip(("original θ", "refined θ+δ"), empty, strict=True)
        ]
        for ax, img, title in zip(axes[m], panels, titles, strict=True):
            ax.imshow(img)
            ax.set_title(title, fontsize=9)
            ax.axis("off")
    seq = f"  |  exclusion: {' → '.join(exclusion_sequence)}" if exclusion_sequence else ""
    label = person if person_label is None else person_label
    fig.suptitle(f"person {label}: Grad-CAM for '{cls}'{seq}", fontsize=10)
    fig.tight_layout()
    path = atomic_save_as(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)
    return path


def saliency_for_result(
    predictor: Predictor, image: Image.Image, result: ImageResult, out_dir: Path, stem: str
) -> list[Path]:
    """Saliency figures ``<stem>_p<i>_saliency.png`` for every person of ``result``; the
    target class is the person's highest-scoring final class."""
    from cocoer.data.records import BBox
    from cocoer.detect import PersonDetection

    persons = [
        PersonDetection(  # the result's boxes are lists of the detector's 4-tuples
            cast(BBox, tuple(p.body_box)),
            p.body_source,
            cast(BBox, tuple(p.head_box)),
            p.head_source,
            p.detection_score,
        )
        for p in result.persons
    ]
    batch = predictor.make_batch(image, persons)
    names = list(result.class_names)
    classes = [names.index(p.final.top(1)[0].name) for p in result.persons]
    paths = []
    for start in range(0, len(persons), predictor.batch_size):
        part = {k: v[start : start + predictor.batch_size] for k, v in batch.items()}
        sal = compute_saliency(predictor.net, part, classes[start : start + predictor.batch_size])
        for j in range(part["context"].shape[0]):
            p = result.persons[start + j]
            paths.append(
                saliency_figure(
                    sal,
                    j,
                    names,
                    out_dir / f"{stem}_p{p.index}_saliency.png",
                    p.exclusion_sequence,
                    person_label=p.index,
                )
            )
    return paths

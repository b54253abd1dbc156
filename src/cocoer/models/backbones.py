"""Per-level CNN backbones of the HFE (docs/method.md section 2; ablation Table 3).

Each backbone maps a window [B, 3, S, S] to a feature map [B, C, S/32, S/32] (7 x 7 x 2048
for ResNet-50 at 224). Weights are loaded the way torchvision loads them:

- ``pretrained: true``: torchvision's ImageNet weights (downloaded by torchvision into the
  torch hub cache on a machine with internet);
- ``weights_path: FILE``: a local state dict (torchvision's layout; the classifier keys
  are ignored), for machines without internet;
- neither: random initialisation (tests, the smoke experiment).

``tiny_cnn`` is the project's own four-layer network (stride 16) for tests and the CPU
smoke run; it has no pretrained weights.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import cast

from torch import Tensor, nn

from cocoer.errors import InputError, MissingFileError, WeightFileError, check_choice
from cocoer.models.config import BACKBONES, TORCHVISION_BACKBONES
from cocoer.utils.torch_files import check_views, load_weights_only, zip_problem


class TinyCNN(nn.Module):
    """Four conv-BN-ReLU stages with stride 2 each: [B,3,S,S] -> [B, width*8, S/16, S/16]."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        chans = [3, width, width * 2, width * 4, width * 8]
        layers: list[nn.Module] = []
        for cin, cout in itertools.pairwise(chans):
            layers += [
                nn.Conv2d(cin, cout, 3, 2, 1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(True),
            ]
        self.body = nn.Sequential(*layers)
        self.out_channels = chans[-1]

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class TorchvisionTrunk(nn.Module):
    """A torchvision classifier without its pooling and classifier: a feature-map extractor."""

    def __init__(self, name: str, model: nn.Module, out_channels: int) -> None:
        super().__init__()
        self.name, self.out_channels = name, out_channels
        if name.startswith("resnet"):
            self.features = nn.Sequential(*list(model.children())[:-2])
        elif name == "vgg16":
            self.features = cast(nn.Sequential, model.features)
        elif name == "densenet161":
            self.features = nn.Sequential(cast(nn.Module, model.features), nn.ReLU(inplace=False))
        else:  # pragma: no cover - guarded by build_backbone
            raise ValueError(name)

    def forward(self, x: Tensor) -> Tensor:
        return self.features(x)


def load_local_weights(model: nn.Module, path: str | Path) -> None:
    """Load a torchvision-layout state dict from a local file into a full classifier, read
    by the package's one torch reader (:func:`cocoer.utils.torch_files.load_weights_only`:
    weights only, an empty allow-list, legacy archives, zip bombs and expanding views
    refused).

    Classifier keys (``fc.*``, ``classifier.*``) may be missing or differ; every other key
    must match.

    Raises:
        MissingFileError: no such file. InputError: unreadable, or keys missing (the
            message names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(path, "backbone weights file not found")
    problem = zip_problem(path)
    if problem:
        raise InputError(path, f"cannot read backbone weights ({problem})")
    try:
        state = load_weights_only(path)
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        if not isinstance(state, dict):
            raise TypeError(f"holds a {type(state).__name__}, not a state dict")
        check_views({k: v for k, v in state.items() if isinstance(v, Tensor)}, path)
    except WeightFileError as e:
        raise InputError(path, f"cannot read backbone weights ({e})") from None
    except Exception as e:  # corrupt or not a state dict
        line = next((ln for ln in str(e).splitlines() if ln.strip()), type(e).__name__)
        raise InputError(path, f"cannot read backbone weights: {line[:200]}") from None
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as e:  # a key with the wrong shape
        line = next((ln for ln in str(e).splitlines() if ln.strip()), type(e).__name__)
        raise InputError(path, f"backbone weights do not fit: {line[:200]}") from None
    head = ("fc.", "classifier.")
    missing = [k for k in result.missing_keys if not k.startswith(head)]
    if missing:
        raise InputError(path, f"backbone weights lack {len(missing)} keys, e.g. {missing[:3]}")


def build_backbone(
    name: str,
    pretrained: bool = False,
    weights_path: str | None = None,
    tiny_width: int = 16,
) -> nn.Module:
    """Build one level's backbone; the module has an ``out_channels`` attribute."""
    if name == "tiny_cnn":
        if pretrained or weights_path:
            raise ValueError("tiny_cnn has no pretrained weights")
        return TinyCNN(tiny_width)
    check_choice("backbone", name, BACKBONES)
    import torchvision

    ctor, weights_enum, channels = TORCHVISION_BACKBONES[name]
    weights = (
        getattr(torchvision.models, weights_enum).DEFAULT
        if pretrained and not weights_path
        else None
    )
    model = getattr(torchvision.models, ctor)(weights=weights)
    if weights_path:
        load_local_weights(model, weights_path)
    return TorchvisionTrunk(name, model, channels)

"""Run the authors' ``model_GWT`` (github bisno/CocoER, MIT licence) on the CPU, unedited.

Used by ``parity_authors.py``. Nothing of the authors' code is copied here: their checkout
is imported as is, and only the process it runs in is patched, for the time of the calls:

- ``future.utils`` and ``pkg_resources`` (imported by their files, absent from this
  environment) get stand-ins with the one name each file uses;
- ``torchvision.models.resnet50(pretrained=True)`` builds a random ResNet-50 (no download);
- their ``clip.load("RN50")`` builds OpenAI's CLIP from a local random state dict with their
  own ``build_model`` (as ``clip.load`` does on a CPU: fp16-rounded weights, then float);
- ``.cuda()`` / ``.to(cuda)`` are identities, and the loss's device is set to the CPU;
- the working directory is the folder laid out like theirs (``checkpoints/VI_weights/w.pth``).

``cvxopt`` (their QP solver) must be installed: ``pip install cvxopt``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

#: OpenAI CLIP RN50's hyper-parameters (what their ``build_model`` infers from the weights)
RN50 = {"embed_dim": 1024, "image_resolution": 224, "vision_layers": (3, 4, 6, 3),
        "vision_width": 64, "vision_patch_size": None, "context_length": 77,
        "vocab_size": 49408, "transformer_width": 512, "transformer_heads": 8,
        "transformer_layers": 12}  # fmt: skip


def require_cvxopt() -> None:
    """Exit with a clear message when the authors' QP solver is missing."""
    try:
        import cvxopt  # noqa: F401
    except ImportError:
        sys.exit(
            "parity_authors.py: the authors' model_GWT needs cvxopt (their QP solver), which "
            "is not installed here. Install it for this benchmark: pip install cvxopt"
        )


def _stub_modules() -> None:
    """Stand-ins for the two modules their files import and this environment lacks."""
    if "future.utils" not in sys.modules:
        try:
            import future.utils
        except ImportError:
            future = types.ModuleType("future")
            utils = types.ModuleType("future.utils")
            utils.iteritems = lambda d: iter(d.items())  # type: ignore[attr-defined]
            future.utils = utils  # type: ignore[attr-defined]
            sys.modules["future"], sys.modules["future.utils"] = future, utils
    try:
        import pkg_resources  # noqa: F401
    except ImportError:
        import packaging.version

        pkg = types.ModuleType("pkg_resources")
        pkg.packaging = sys.modules["packaging"]  # type: ignore[attr-defined]
        sys.modules["pkg_resources"] = pkg
        assert packaging.version


def import_authors(repo: Path) -> types.ModuleType:
    """Their ``models_sw`` module (imported from ``repo``)."""
    require_cvxopt()
    _stub_modules()
    if str(repo) not in sys.path:
        sys.path.insert(0, str(repo))
    import models_sw  # type: ignore[import-not-found]

    return models_sw


def random_openai_clip_state_dict(repo: Path, seed: int = 0) -> dict[str, Tensor]:
    """A random CLIP RN50 state dict in OpenAI's layout (fp16 like their file)."""
    import_authors(repo)
    from thirdparty.clip.model import CLIP  # type: ignore[import-not-found]

    torch.manual_seed(seed)
    model = CLIP(**RN50)
    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    with torch.no_grad():  # BatchNorm statistics away from the identity
        for k in list(sd):
            if k.endswith("running_var"):
                sd[k] = torch.rand_like(sd[k]) * 0.5 + 0.75
            elif k.endswith("running_mean"):
                sd[k] = torch.randn_like(sd[k]) * 0.05
    sd = {k: (v.half() if v.is_floating_point() else v) for k, v in sd.items()}
    # the three metadata entries OpenAI's archive carries (their build_model deletes them)
    sd["input_resolution"] = torch.tensor(224)
    sd["context_length"] = torch.tensor(77)
    sd["vocab_size"] = torch.tensor(49408)
    return sd


@contextlib.contextmanager
def patched_for_cpu(workdir: Path, clip_file: Path) -> Iterator[None]:
    """The run-time patches listed in the module docstring, undone on exit."""
    import torchvision.models as tvm
    from thirdparty.clip import clip as their_clip  # type: ignore[import-not-found]
    from thirdparty.clip.model import build_model  # type: ignore[import-not-found]

    def resnet50(pretrained: bool = False, **kwargs: Any) -> nn.Module:
        return orig_resnet50(weights=None)

    def clip_load(name: str, device: Any = "cpu", jit: bool = False, **kw: Any) -> Any:
        sd = torch.load(clip_file, map_location="cpu", weights_only=True)
        return build_model(sd).float(), None

    orig_resnet50, orig_load = tvm.resnet50, their_clip.load
    cwd = Path.cwd()
    tvm.resnet50, their_clip.load = resnet50, clip_load
    os.chdir(workdir)
    try:
        with cuda_as_cpu():
            yield
    finally:
        os.chdir(cwd)
        tvm.resnet50, their_clip.load = orig_resnet50, orig_load


@contextlib.contextmanager
def cuda_as_cpu() -> Iterator[None]:
    """``Tensor.cuda`` and ``Module.to(cuda)`` are identities while active."""

    def module_to(self: nn.Module, *args: Any, **kwargs: Any) -> nn.Module:
        args = tuple(a for a in args if not _is_cuda(a))
        kwargs = {k: v for k, v in kwargs.items() if not _is_cuda(v)}
        return orig_module_to(self, *args, **kwargs)

    orig_module_to, orig_tensor_cuda = nn.Module.to, torch.Tensor.cuda
    nn.Module.to = module_to  # type: ignore[method-assign,assignment]
    torch.Tensor.cuda = lambda self, *a, **k: self  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        nn.Module.to = orig_module_to  # type: ignore[method-assign]
        torch.Tensor.cuda = orig_tensor_cuda  # type: ignore[method-assign]


def _is_cuda(a: object) -> bool:
    return (isinstance(a, str) and a.startswith("cuda")) or (
        isinstance(a, torch.device) and a.type == "cuda"
    )


def their_args(inside_lr: float) -> types.SimpleNamespace:
    """The ``args`` their inference.py passes to ``model_GWT`` (defaults), CPU-side."""
    return types.SimpleNamespace(
        num_class=26, num_block1=1, num_block2=1, gpu="0", loss_type="bce", inside_lr=inside_lr
    )


def build_model_gwt(repo: Path, workdir: Path, clip_file: Path, inside_lr: float) -> nn.Module:
    """``model_GWT(args)`` on the CPU: random backbones, CLIP from ``clip_file``, W from
    ``workdir/checkpoints/VI_weights/w.pth`` (read by their constructor)."""
    models_sw = import_authors(repo)
    with patched_for_cpu(workdir, clip_file):
        model = models_sw.model_GWT(their_args(inside_lr))
    model.device = torch.device("cpu")
    model.loss_func.device = torch.device("cpu")
    return model


def randomise_(model: nn.Module, seed: int) -> None:
    """Random BatchNorm statistics and affine parameters (the rest keeps the random init)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.05)
                m.running_var.copy_(torch.rand(n, generator=g) * 0.5 + 0.75)
                m.weight.copy_(1 + 0.1 * torch.randn(n, generator=g))
                m.bias.copy_(0.05 * torch.randn(n, generator=g))
            elif isinstance(m, nn.LayerNorm):
                m.weight.copy_(1 + 0.1 * torch.randn(m.weight.shape, generator=g))
                m.bias.copy_(0.05 * torch.randn(m.bias.shape, generator=g))


def save_like_the_authors(model: nn.Module, workdir: Path) -> tuple[Path, Path]:
    """``checkpoints/GWT.pth`` ({"model": state dict}) and ``checkpoints/VI_weights/w.pth``."""
    ck = workdir / "checkpoints"
    (ck / "VI_weights").mkdir(parents=True, exist_ok=True)
    gwt, w = ck / "GWT.pth", ck / "VI_weights" / "w.pth"
    torch.save({"model": model.state_dict()}, gwt)
    torch.save({"model": {"W.weight": model.W.weight.detach().clone()}}, w)
    return gwt, w


def set_mode(model: nn.Module, mode: str) -> None:
    """``eval``: train.py's evaluation; ``demo``: inference.py (train mode) minus dropout."""
    if mode == "eval":
        model.eval()
        return
    model.train()
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.eval()


def run_gwt(model: nn.Module, batch: dict[str, Tensor], per_sample: bool) -> dict[str, Any]:
    """Their forward on a batch (one image per call when ``per_sample``, as inference.py).

    batch: context/body/head [B,3,224,224], body_box/head_box int64 [B,4] in the 224 frame.
    Returns out_all, label_VI/head/body/ctx [B,26] and the exclusion sequences.
    """
    B = batch["context"].shape[0]
    parts = [slice(i, i + 1) for i in range(B)] if per_sample else [slice(0, B)]
    outs: dict[str, list[Tensor]] = {k: [] for k in OUT_KEYS}
    seqs: list[list[str]] = []
    for s in parts:
        with cuda_as_cpu():
            out_all, _, ret = model(
                batch["context"][s], batch["body"][s], batch["head"][s],
                batch["body_box"][s], batch["head_box"][s], None,
            )  # fmt: skip
        outs["out_all"].append(out_all.detach())
        for k in OUT_KEYS[1:]:
            outs[k].append(ret[k].detach())
        seqs += [list(p) for p in ret["ret_emo_process_all"]]
    result: dict[str, Any] = {k: torch.cat(v) for k, v in outs.items()}
    result["exclusion"] = seqs
    return result


OUT_KEYS = ("out_all", "label_VI", "label_head", "label_body", "label_ctx")

"""Safe loading of checkpoint files a user passes in (they are untrusted: never unpickled).

:func:`load_checkpoint` reads a Lightning checkpoint with the package's one torch reader,
:func:`cocoer.utils.torch_files.load_weights_only` (``torch.load(weights_only=True)``), and
an explicit allow-list, :data:`ALLOWED_GLOBALS`, which is EMPTY: a cocoer checkpoint
holds only plain containers (dict, list, tuple, OrderedDict), strings, numbers and tensors
(the config and the class names are stored as plain dicts and lists,
:meth:`cocoer.training.module.CocoERLitModule.on_save_checkpoint`). The globals that other
libraries register with ``torch.serialization.add_safe_globals`` are switched off during
the load. A file that needs anything else (a pickled object, a ``__reduce__`` payload) is
refused before any of its code runs; random bytes, truncated or empty files and missing
files get a :class:`~cocoer.errors.CheckpointError` with a one-line message.

Before torch reads a file, a legacy (non-zip) archive or a zip bomb is refused; after, a
tensor view that would expand on copy (stride 0, overlapping, past its storage) is refused
(:mod:`cocoer.utils.torch_files`), so no file makes the loader allocate more than it holds.

:func:`read_model_file` reads any model file (a checkpoint, the exported safetensors format
of :mod:`cocoer.export.safetensors`, a hub folder), dispatching on the file name, checks the
stored config (literal data, sizes within :mod:`cocoer.utils.bounds`) and makes it portable
(:func:`portable_hparams`); :func:`cocoer.checkpoint.model.load_model`, the one place a
model is rebuilt from a file, builds the model from what it returns.
"""

from __future__ import annotations

import os
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any, NamedTuple

import torch

from cocoer.checkpoint.export_format import read_export
from cocoer.errors import CheckpointError, WeightFileError
from cocoer.utils.torch_files import ALLOWED_GLOBALS, check_views, load_weights_only, zip_problem

__all__ = ["ALLOWED_GLOBALS", "load_checkpoint", "load_cocoer_checkpoint", "load_model_file"]

_GLOBAL_RE = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


def _refusal(exc: BaseException) -> str:
    """One line saying what torch's weights-only unpickler refused (or why it stopped)."""
    msg = str(exc)
    m = _GLOBAL_RE.search(msg)
    if m:
        return f"refused type {m.group(1)} (not on the allow-list; its code was not run)"
    w = re.search(r"WeightsUnpickler error:\s*(\S[^\n]*)", msg)
    detail = w.group(1).strip()[:160] if w else _first_line(exc)
    if any(word in detail.lower() for word in ("global", "class", "reduce", "build")):
        return f"refused content ({detail}; its code was not run)"
    return f"not a checkpoint ({detail})"


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The dict stored in checkpoint ``path``, loaded without running any code from it.

    Raises:
        CheckpointError: missing file, not a torch checkpoint (random bytes, truncated,
            empty), a type outside :data:`ALLOWED_GLOBALS`, or not a dict.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, "no such file" if not path.exists() else "not a file")
    problem = zip_problem(path)
    if problem:
        raise CheckpointError(path, f"not a checkpoint ({problem})")
    try:
        obj = load_weights_only(path)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(path, _refusal(exc)) from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as exc:
        raise CheckpointError(path, f"not a checkpoint ({_first_line(exc)})") from None
    except Exception as exc:  # any other decoding failure of a corrupt file
        raise CheckpointError(path, f"not a checkpoint ({type(exc).__name__})") from None
    if not isinstance(obj, dict):
        raise CheckpointError(path, f"not a checkpoint (holds a {type(obj).__name__})")
    try:
        check_views(_tensors_in(obj), path)
    except WeightFileError as exc:
        raise CheckpointError(path, str(exc).removeprefix(f"{path}: ")) from None
    return obj


def _tensors_in(node: Any, prefix: str = "") -> dict[str, torch.Tensor]:
    """Every tensor of a loaded checkpoint (nested dicts and lists), by dotted path."""
    out: dict[str, torch.Tensor] = {}
    stack: list[tuple[str, Any]] = [(prefix, node)]
    while stack:
        where, cur = stack.pop()
        if isinstance(cur, torch.Tensor):
            out[where.rstrip(".")] = cur
        elif isinstance(cur, dict):
            stack.extend((f"{where}{k}.", v) for k, v in cur.items())
        elif isinstance(cur, (list, tuple)):
            stack.extend((f"{where}{i}.", v) for i, v in enumerate(cur))
    return out


def _first_line(exc: BaseException) -> str:
    msg = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), "")
    msg = msg.split(". ")[0]
    return f"{type(exc).__name__}: {msg[:160]}" if msg else type(exc).__name__


def load_cocoer_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """:func:`load_checkpoint` plus the keys a CocoER checkpoint must have
    (``state_dict`` of tensors, ``hyper_parameters`` with a ``net`` config)."""
    ckpt = load_checkpoint(path)
    state = ckpt.get("state_dict")
    hp = ckpt.get("hyper_parameters")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(path, "not a CocoER checkpoint (no state_dict of tensors)")
    check_hparams(path, hp)
    return ckpt


#: The only class a checkpoint's config may ask to instantiate (``net._target_``).
NET_TARGETS = ("cocoer.models.cocoer.CocoER",)
#: Hydra keys that would make instantiation call something the file names.
_HYDRA_KEYS = ("_target_", "_args_", "_partial_", "_recursive_", "_convert_")


def known_clip_names() -> list[str]:
    """CLIP architectures open_clip can build (the project's tiny configs included)."""
    import open_clip

    from cocoer.models.vi import register_tiny_clip_configs

    register_tiny_clip_configs()
    return list(open_clip.list_models())


def check_hparams(path: str | os.PathLike[str], hp: Any) -> None:
    """Refuse a stored config that would make Hydra call anything but :data:`NET_TARGETS`
        (a plain-data checkpoint could otherwise name any callable in ``_target_``), that holds
        an OmegaConf interpolation (``${oc.env:SECRET}``: configs from files are literal data),
        whose sizes are out of :data:`cocoer.utils.bounds.LIMITS`, or whose CLIP is not one that
    open_clip knows."""
    from cocoer.utils.bounds import check_literal, check_net_bounds

    if not isinstance(hp, dict) or not isinstance(hp.get("net"), dict):
        raise CheckpointError(path, "not a CocoER checkpoint (no hyper_parameters.net)")
    check_literal(path, hp)
    check_net_bounds(path, hp["net"])
    vi = hp["net"].get("vi")
    clip = vi.get("clip_name") if isinstance(vi, dict) else None
    if clip is not None and clip not in known_clip_names():
        raise CheckpointError(path, f"unknown CLIP architecture vi.clip_name={str(clip)[:60]!r}")
    target = hp["net"].get("_target_")  # absent in configs written by create_model's schema
    if target is not None and target not in NET_TARGETS:
        raise CheckpointError(path, f"refused net._target_ {target!r} (allowed: {NET_TARGETS})")

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k in _HYDRA_KEYS and where + k != "net._target_":
                    raise CheckpointError(path, f"refused config key {where}{k}")
                walk(v, f"{where}{k}.")
        elif isinstance(node, list):
            for v in node:
                walk(v, where)

    walk(hp, "")


def is_export(path: str | os.PathLike[str]) -> bool:
    """A safetensors export: a ``.safetensors`` file or a folder holding ``model.safetensors``."""
    p = Path(path)
    return p.suffix == ".safetensors" or (p.is_dir() and (p / "model.safetensors").is_file())


class ModelFile(NamedTuple):
    """What a model file holds, checked: portable ``hparams`` (the LightningModule's
    arguments), ``state`` (``net.*`` weights and the ``thresholds`` buffer), ``kind``
    (``checkpoint`` | ``converted`` | ``safetensors`` | ``hub``) and, for a hub folder,
    its checked ``config.json`` (:class:`cocoer.hub.config.HubConfig`, else None)."""

    hparams: dict[str, Any]
    state: dict[str, torch.Tensor]
    kind: str
    hub_config: Any = None


def read_model_file(path: str | os.PathLike[str], hub: bool = False) -> ModelFile:
    """A checkpoint, a safetensors export or a hub folder (detected by extension /
    folder; ``hub``: read as a hub folder whatever its config says, so that a refused
    ``config.json`` is named as such), read without running code from the file, its config
    checked and portable."""
    from cocoer.hub.load import is_hub_folder, read_hub_folder

    hub_config = None
    if hub or is_hub_folder(path):
        hub_config, net_state = read_hub_folder(path)
        hp: dict[str, Any] = hub_config.lit_hparams()
        state = {f"net.{k}": v for k, v in net_state.items()}
        state["thresholds"] = torch.tensor(hub_config.thresholds, dtype=torch.float32)
        kind = "hub"
    elif is_export(path):
        hp, state = read_export(path)
        kind = "safetensors"
    else:
        ckpt = load_cocoer_checkpoint(path)
        hp, state = ckpt["hyper_parameters"], ckpt["state_dict"]
        kind = "converted" if "cocoer_conversion" in ckpt else "checkpoint"
    check_hparams(path, hp)
    check_state_fits(path, hp["net"], state)
    return ModelFile(portable_hparams(hp), state, kind, hub_config)


def load_model_file(
    path: str | os.PathLike[str],
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """``(hyper_parameters, state_dict)`` of :func:`read_model_file`."""
    found = read_model_file(path)
    return found.hparams, found.state


#: ``net`` options that name files of the training machine or downloads; they only
#: initialise training, so a model rebuilt from a file (whose state dict holds every
#: weight) gets these values instead
PORTABLE_NET: dict[str, dict[str, Any]] = {
    "hfe": {"pretrained": False, "weights_path": None},
    "vi": {"clip_pretrained": None, "clip_weights_path": None},
}


def portable_hparams(hp: dict[str, Any]) -> dict[str, Any]:
    """A copy of the hyper-parameters ``hp`` with no local weight path and no download
    (:data:`PORTABLE_NET`) and without ``init_from``: what checkpoints and exports store,
    and what a model is rebuilt from, so that it loads on any machine."""
    out = dict(hp)
    net = dict(out.get("net") or {})
    for node, values in PORTABLE_NET.items():
        net[node] = {**dict(net.get(node) or {}), **values}
    out["net"] = net
    out["init_from"] = None
    return out


def check_state_fits(
    path: str | os.PathLike[str], net: dict[str, Any], state: dict[str, Any]
) -> None:
    """The V-I classifier weight of the file must be [k, d] as the config says, so that
    the class count and width the model is built with are backed by the file's tensors."""
    k, d = net.get("num_classes"), net.get("d", 256)
    vi_out = state.get("net.vi.ffn1_out.weight")
    if isinstance(vi_out, torch.Tensor) and tuple(vi_out.shape) != (k, d):
        raise CheckpointError(
            path, f"net.vi.ffn1_out.weight is {list(vi_out.shape)}, the config says [{k}, {d}]"
        )


def state_dict_of(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint (its ``state_dict``) or of a plain saved state dict."""
    obj = load_checkpoint(path)
    state = obj.get("state_dict", obj)
    if not isinstance(state, dict):
        raise CheckpointError(path, "no state_dict in this file")
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise CheckpointError(path, "no tensors in this file")
    return tensors

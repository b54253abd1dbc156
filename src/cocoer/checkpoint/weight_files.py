"""Read tensors from weight files a user passes in, without running code from the file.

Accepted (every file is untrusted: nothing is unpickled beyond tensors and containers):

- a plain state dict saved with ``torch.save`` (``.pt`` / ``.pth`` / ``.bin`` / ``.ckpt``),
  read with ``torch.load(weights_only=True)``; ``{"model": ...}`` / ``{"state_dict": ...}``
  wrappers and a ``module.`` prefix are removed;
- a ``.safetensors`` file;
- a TorchScript archive such as OpenAI's CLIP ``RN50.pt``: ``torch.load`` refuses those with
  ``weights_only=True`` and ``torch.jit.load`` would execute the archive's program, so its
  ``data.pkl`` is read with a restricted unpickler that only rebuilds tensors (storages come
  from the archive's ``data/`` entries) and records the attributes of the scripted modules;
  any other object in the pickle is refused. The tensors found are named by their attribute
  path, which is the module's ``state_dict`` key (plus tensors kept as plain attributes).
"""

from __future__ import annotations

import io
import os
import pickle
import re
import zipfile
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from cocoer.errors import MissingFileError, WeightFileError
from cocoer.utils.torch_files import check_views, load_weights_only, view_problem, zip_problem

_STORAGE_DTYPES = {
    "FloatStorage": torch.float32,
    "DoubleStorage": torch.float64,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}


#: containers TorchScript pickles as a call that returns its argument (torch.jit._pickle)
_JIT_LISTS = ("build_intlist", "build_tensorlist", "build_doublelist", "build_boollist")


def _identity(data: Any) -> Any:
    return data


def _refused(exc: BaseException) -> str:
    """What torch's weights-only unpickler refused, with the warning that matters (the
    file holds code or objects, which were not run), not its first 200 characters."""
    found = re.search(r"(?:Unsupported global|Unsupported operand)[^\n]*", str(exc))
    what = found.group(0).strip()[:160] if found else _brief(exc)
    return (
        f"refused by the weights-only loader ({what}); the file holds more than tensors and "
        "none of its code was run: load only weight files you trust the source of"
    )


def _brief(exc: BaseException) -> str:
    """The first line of an exception's message (torch's are often paragraphs)."""
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:200]


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, Tensor]:
    """Tensors of a weight file by key (see the module docstring for the formats).

    Raises:
        FileNotFoundError: no such file. WeightFileError: unreadable or not tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(path, "weight file not found")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return unwrap_state_dict(load_file(str(path)), path)
        except Exception as exc:
            raise WeightFileError(f"cannot read {path} as safetensors: {_brief(exc)}") from exc
    problem = zip_problem(path)
    if problem:
        raise WeightFileError(f"cannot read {path}: {problem}")
    if _torchscript_prefix(path) is not None:
        return unwrap_state_dict(read_torchscript_tensors(path), path)
    try:
        obj = load_weights_only(path)
    except pickle.UnpicklingError as exc:
        raise WeightFileError(f"cannot read {path}: {_refused(exc)}") from None
    except Exception as exc:
        raise WeightFileError(f"cannot read {path} as a torch state dict: {_brief(exc)}") from exc
    state = unwrap_state_dict(obj, path)
    check_views(state, path)
    return state


def unwrap_state_dict(obj: Any, path: str | os.PathLike[str]) -> dict[str, Tensor]:
    """The state dict inside ``{"model"|"state_dict": ...}``, ``module.`` prefix removed."""
    for key in ("model", "state_dict"):
        if isinstance(obj, Mapping) and key in obj and isinstance(obj[key], Mapping):
            obj = obj[key]
    if not isinstance(obj, Mapping) or not obj:
        raise WeightFileError(f"{path} holds no state dict (a mapping of names to tensors)")
    bad = [k for k, v in obj.items() if not isinstance(v, Tensor)]
    if bad:
        raise WeightFileError(f"{path}: entries that are not tensors, e.g. {bad[:3]}")
    return {(k[7:] if k.startswith("module.") else k): v for k, v in obj.items()}


def _torchscript_prefix(path: Path) -> str | None:
    """The archive folder holding ``data.pkl`` and ``code/`` (a TorchScript zip), or None."""
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
    for name in names:
        folder, _, leaf = name.rpartition("/")
        if leaf == "data.pkl" and "/" not in folder and f"{folder}/constants.pkl" in names:
            return folder
    return None


class _ScriptedObject:
    """Stand-in for a ``__torch__.*`` class of the archive: keeps its attributes only."""

    qualname = ""

    def __setstate__(self, state: Any) -> None:
        self.state = state if isinstance(state, dict) else {}


def _scripted_class(qualname: str) -> type:
    return type("Scripted", (_ScriptedObject,), {"qualname": qualname})


def _rebuild_tensor(
    storage: Tensor, offset: int, size: tuple[int, ...], stride: tuple[int, ...], *_: Any
) -> Tensor:
    """``torch._utils._rebuild_tensor_v2`` on a flat tensor (grad flags and hooks ignored);
    a view that would expand on copy (:func:`view_problem`) is refused before the copy."""
    view = storage.as_strided(tuple(size), tuple(stride), int(offset))
    problem = view_problem(view)
    if problem:
        raise WeightFileError(f"a tensor of the TorchScript archive is {problem}; refusing it")
    return view.clone()


class _TorchScriptUnpickler(pickle.Unpickler):
    """Unpickles a TorchScript ``data.pkl``: tensors, containers and scripted objects only."""

    def __init__(self, data: bytes, zf: zipfile.ZipFile, prefix: str, path: Path) -> None:
        super().__init__(io.BytesIO(data))
        self.zf, self.prefix, self.path = zf, prefix, path

    def find_class(self, module: str, name: str) -> Any:
        if module.startswith("__torch__"):
            return _scripted_class(f"{module}.{name}")
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        if module == "torch" and name in _STORAGE_DTYPES:
            return name
        if module == "torch.jit._pickle" and name in _JIT_LISTS:
            return _identity
        if module == "torch.jit._pickle" and name == "restore_type_tag":
            return lambda value, type_str: value
        raise WeightFileError(
            f"{self.path}: the TorchScript archive holds {module}.{name}, which is not a "
            "tensor or container; refusing to load it"
        )

    def persistent_load(self, pid: Any) -> Tensor:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise WeightFileError(f"{self.path}: unexpected persistent id {pid!r:.60}")
        _, kind, key, _location, numel = pid
        dtype = _STORAGE_DTYPES[kind] if isinstance(kind, str) else None
        if dtype is None:
            raise WeightFileError(f"{self.path}: unknown storage type {kind!r}")
        raw = bytearray(self.zf.read(f"{self.prefix}/data/{key}"))
        flat = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
        if flat.numel() < int(numel):
            raise WeightFileError(f"{self.path}: storage {key} is truncated")
        return flat


def read_torchscript_tensors(path: str | os.PathLike[str]) -> dict[str, Tensor]:
    """Every tensor attribute of a TorchScript archive's module tree, by dotted path."""
    path = Path(path)
    prefix = _torchscript_prefix(path)
    if prefix is None:
        raise WeightFileError(f"{path} is not a TorchScript archive")
    try:
        with zipfile.ZipFile(path) as zf:
            root = _TorchScriptUnpickler(zf.read(f"{prefix}/data.pkl"), zf, prefix, path).load()
    except WeightFileError:
        raise
    except Exception as exc:
        raise WeightFileError(f"cannot read the TorchScript archive {path}: {_brief(exc)}") from exc
    out: dict[str, Tensor] = {}
    _collect(root, "", out)
    if not out:
        raise WeightFileError(f"{path}: no tensors found in the TorchScript archive")
    return out


def _collect(obj: Any, prefix: str, out: dict[str, Tensor]) -> None:
    if isinstance(obj, Tensor):
        out[prefix.rstrip(".")] = obj
    elif isinstance(obj, _ScriptedObject):
        for name, value in getattr(obj, "state", {}).items():
            _collect(value, f"{prefix}{name}.", out)

"""``model.safetensors`` of a hub folder, checked against ``config.json`` before any model
is built.

The header (8-byte length, then JSON: name -> dtype, shape, byte range) is read and
checked on its own: byte ranges contiguous, in the file, of exactly shape x dtype bytes.
The tensors the config describes come from a build on torch's ``meta`` device (shapes and
dtypes, no memory, no weights opened); names, shapes and dtypes must be the header's, and
the whole model (buffers included) may not need more memory than the file declares (plus
:data:`SLACK_BYTES`). Only then are the tensors read, and only then is a real model built.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from cocoer.errors import InputError
from cocoer.hub.config import parse_json

#: safetensors' own limit on the JSON header
MAX_HEADER_BYTES = 100_000_000
#: memory a model may need beyond the bytes its file declares (non-persistent buffers)
SLACK_BYTES = 64 << 20
DTYPES: dict[str, torch.dtype] = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
#: (dtype, shape) of a tensor
Spec = tuple[torch.dtype, tuple[int, ...]]


def _entry(name: str, info: Any, where: Path) -> tuple[Spec, int, int]:
    """(dtype, shape), begin, end of one header entry (one-line error if malformed)."""
    ok = isinstance(info, dict) and set(info) == {"dtype", "shape", "data_offsets"}
    shape, offsets = (info.get("shape"), info.get("data_offsets")) if ok else (None, None)
    ok = ok and info["dtype"] in DTYPES and isinstance(shape, list) and isinstance(offsets, list)
    ints = ok and all(isinstance(v, int) and v >= 0 for v in [*shape, *offsets])  # type: ignore[misc]
    if not (ints and len(offsets) == 2):  # type: ignore[arg-type]
        raise InputError(where, f"malformed safetensors header entry {name[:80]!r}")
    dtype = DTYPES[info["dtype"]]
    begin, end = offsets  # type: ignore[misc]
    numel = 1
    for n in shape:  # type: ignore[union-attr]
        numel *= n
    if end - begin != numel * dtype.itemsize:
        raise InputError(where, f"tensor {name[:80]!r}: byte range does not fit its shape")
    return (dtype, tuple(shape)), begin, end  # type: ignore[arg-type]


def read_header(path: str | os.PathLike[str]) -> dict[str, Spec]:
    """``{name: (dtype, shape)}`` of a safetensors file, its byte ranges checked.

    Raises:
        InputError: missing file, not safetensors, ranges overlapping, leaving gaps or
            running past the end of the file.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such file" if not path.exists() else "not a file")
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(8)
        n = int.from_bytes(head, "little") if len(head) == 8 else -1
        if not 2 <= n <= min(MAX_HEADER_BYTES, size - 8):
            raise InputError(path, "not a safetensors file (bad header length)")
        header = parse_json(f.read(n), path)
    if not isinstance(header, dict):
        raise InputError(path, "not a safetensors file (header is not an object)")
    header.pop("__metadata__", None)
    specs: dict[str, Spec] = {}
    ranges: list[tuple[int, int]] = []
    for name, info in header.items():
        specs[name], begin, end = _entry(name, info, path)
        ranges.append((begin, end))
    pos = 0
    for begin, end in sorted(ranges):
        if begin != pos:
            raise InputError(path, "tensor byte ranges overlap or leave gaps")
        pos = end
    if pos != size - 8 - n:
        raise InputError(path, f"tensors end at byte {pos} of a {size - 8 - n}-byte data section")
    return specs


def expected_tensors(net_cfg: dict[str, Any]) -> tuple[dict[str, Spec], int]:
    """(``{name: (dtype, shape)}`` of the net's state dict, bytes of all its tensors), from
    a build on the ``meta`` device (no memory; the config has no weight file to open)."""
    from cocoer.models import create_model

    with torch.device("meta"):
        net = create_model(net_cfg, pretrained=False)
    state = net.state_dict()
    specs = {k: (v.dtype, tuple(v.shape)) for k, v in state.items()}
    tensors = [*net.parameters(), *net.buffers()]
    return specs, sum(t.numel() * t.element_size() for t in tensors)


def _names(names: set[str]) -> str:
    shown = sorted(names)[:3]
    return ", ".join(shown) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def check_header(path: Path, header: dict[str, Spec], net_cfg: dict[str, Any]) -> None:
    """Refuse a weights file whose tensors are not exactly those of the config's model."""
    expected, needed = expected_tensors(net_cfg)
    missing, extra = set(expected) - set(header), set(header) - set(expected)
    if missing:
        raise InputError(path, f"does not match config.json: missing tensor(s) {_names(missing)}")
    if extra:
        raise InputError(path, f"does not match config.json: unexpected tensor(s) {_names(extra)}")
    for name, (dtype, shape) in expected.items():
        got_dtype, got_shape = header[name]
        if (got_dtype, got_shape) != (dtype, shape):
            raise InputError(
                path,
                f"does not match config.json: {name} is {str(got_dtype)[6:]} {list(got_shape)}, "
                f"the config's model has {str(dtype)[6:]} {list(shape)}",
            )
    declared = sum(dtype.itemsize * torch.Size(shape).numel() for dtype, shape in header.values())
    if needed > declared + SLACK_BYTES:
        raise InputError(
            path, f"the config's model needs {needed} bytes, the file holds {declared}"
        )


def load_checked_weights(path: Path, net_cfg: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The tensors of ``path`` once :func:`check_header` accepted it."""
    from safetensors.torch import load_file

    check_header(path, read_header(path), net_cfg)
    try:
        return load_file(str(path), device="cpu")
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        msg = next((ln for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
        raise InputError(path, f"not a safetensors file ({msg[:160]})") from None

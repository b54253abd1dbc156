"""Keep the random number generators in the checkpoint, so that a resumed run continues the
same random stream (data order, augmentation, dropout) as an uninterrupted one."""

from __future__ import annotations

import random
from typing import Any

import lightning as L
import numpy as np
import torch


def capture_rng_state() -> dict[str, Any]:
    """The python, numpy, torch CPU (and CUDA, if available) generator states."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        # plain types and tensors only, so the checkpoint still loads with weights_only=True
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state` (missing entries are left alone)."""
    if "python" in state:
        random.setstate(state["python"])
    if "numpy" in state:
        s = state["numpy"]
        keys = np.asarray(torch.as_tensor(s["keys"]).numpy(), dtype=np.uint32)
        np.random.set_state((s["kind"], keys, s["pos"], s["has_gauss"], s["cached_gaussian"]))
    if "torch" in state:
        torch.set_rng_state(torch.as_tensor(state["torch"], dtype=torch.uint8).cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class RNGStateCheckpoint(L.Callback):
    """Save the RNG states with every checkpoint; restore them when training resumes.

    Lightning restores model, optimiser, scheduler and loop counters but not the global
    generators; without them a resumed run would shuffle its next epoch differently. The
    states are captured when the checkpoint is written (end of an epoch) and restored
    before the next epoch's data loader is created. Each process keeps its own stream.
    """

    def state_dict(self) -> dict[str, Any]:
        return {"rng": capture_rng_state()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if "rng" in state_dict:
            restore_rng_state(state_dict["rng"])

"""ONNX Runtime against the eager PyTorch model: a session's outputs by name, and the parity
check of an exported file on random batches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from cocoer.export.onnx import OUTPUTS
from cocoer.models.cocoer import CocoER
from tests.support.tiny_models import random_batch


def run_ort(sess: object, batch: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """All outputs of an ONNX Runtime session for a batch of tensors."""
    feed = {k: v.numpy() for k, v in batch.items()}
    return dict(zip(OUTPUTS, sess.run(list(OUTPUTS), feed), strict=True))  # type: ignore[attr-defined]


def assert_parity(
    net: CocoER, path: Path, size: int = 32, sizes: tuple[int, ...] = (1, 3)
) -> float:
    """ONNX Runtime vs PyTorch on random inputs: every output within 1e-4, order equal.
    Returns the largest absolute difference."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst = 0.0
    for n in sizes:
        batch = random_batch(n, size, seed=n)
        with torch.no_grad():
            ref = net.eval()(batch)
        got = run_ort(sess, batch)
        for name in OUTPUTS:
            want = ref[name].numpy()
            assert got[name].shape == want.shape, name
            if name == "order":
                np.testing.assert_array_equal(got[name], want)
                continue
            np.testing.assert_allclose(got[name], want, rtol=1e-4, atol=1e-4, err_msg=name)
            worst = max(worst, float(np.abs(got[name] - want).max()))
    return worst

"""Grad-CAM per level with the original and the refined level mapping (paper Sec. 7)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cocoer.detect import PersonDetection
from cocoer.infer import Predictor
from cocoer.interpret.saliency import compute_saliency, refined_level_logits, saliency_figure

T1 = Path(__import__("insightface").__file__).parent / "data" / "images" / "t1.jpg"


@pytest.fixture(scope="module")
def setup(tiny_checkpoint: Path) -> tuple[Predictor, dict]:
    pred = Predictor.from_checkpoint(tiny_checkpoint)
    people = [
        PersonDetection((306.0, 234.0, 730.0, 886.0), "t", (447.0, 270.0, 588.0, 411.0), "t", 1.0),
        PersonDetection((994.0, 246.0, 1280.0, 876.0), "t", (1114.0, 276.0, 1234.0, 396.0), "t", 1),
    ]
    return pred, pred.make_batch(Image.open(T1).convert("RGB"), people)


def test_refined_logits_match_dense_theta_plus_delta(setup: tuple[Predictor, dict]) -> None:
    """l~_m = (theta_m + s delta) z^_m with delta built densely from G^T mu."""
    pred, batch = setup
    net = pred.net
    with torch.no_grad():
        original, refined = refined_level_logits(net, batch)
        out = net(batch)
        x = net.hfe(*(batch[k] for k in ("context", "body", "head", "body_box", "head_box")))
        z, l, cache = net.levels(x)
        ws = net.workspace(net.levels, z, l, cache, out["y_t"])
    torch.testing.assert_close(original, out["logits_levels"])
    s = net.workspace.delta_scale
    dW = -torch.einsum("bi,bik,bid->bkd", ws.mu, ws.g, z)  # [B, k, d]
    db = -torch.einsum("bi,bik->bk", ws.mu, ws.g)
    W = net.levels.theta_weight.unsqueeze(0) + s * dW.unsqueeze(1)  # [B, q, k, d]
    b = net.levels.theta_bias.unsqueeze(0) + s * db.unsqueeze(1)
    dense = torch.einsum("bqkd,bqd->bqk", W, ws.z_hat) + b
    torch.testing.assert_close(refined, dense, rtol=1e-4, atol=1e-4)
    assert (refined - original).abs().max() > 1e-3


def test_saliency_maps(setup: tuple[Predictor, dict], tmp_path: Path) -> None:
    pred, batch = setup
    S = pred.image_size
    sal = compute_saliency(pred.net, batch)
    assert sal.maps.shape == (2, 3, 2, S, S)
    assert np.isfinite(sal.maps).all()
    assert sal.maps.min() >= 0.0 and sal.maps.max() <= 1.0 + 1e-6
    flat = sal.maps.reshape(2, 3, 2, -1)
    # every map is either non-constant (scaled to span [0, 1]) or marked empty
    spans = flat.max(-1) - flat.min(-1)
    assert np.all((spans > 0.5) | sal.empty)
    assert (~sal.empty).sum(axis=(1, 2)).min() >= 1, "each variant has informative maps"
    # delta != 0: the refined mapping gives other maps
    assert np.abs(sal.maps[0] - sal.maps[1]).max() > 0.05
    assert sal.windows.shape == (3, 2, S, S, 3)
    path = saliency_figure(
        sal, 1, pred.class_names, tmp_path / "fig.png", ["body", "context", "head"]
    )
    with Image.open(path) as im:
        assert im.size[0] > 300 and im.size[1] > 300


def test_no_coordination_gives_identical_maps(setup: tuple[Predictor, dict]) -> None:
    """delta_scale = 0 and inner_lr = 0: refined == original, so the maps coincide."""
    pred, batch = setup
    ws = pred.net.workspace
    saved = ws.delta_scale, ws.inner_lr
    try:
        ws.delta_scale, ws.inner_lr = 0.0, 0.0
        sal = compute_saliency(pred.net, batch, class_indices=[3, 16])
    finally:
        ws.delta_scale, ws.inner_lr = saved
    np.testing.assert_allclose(sal.maps[0], sal.maps[1], atol=1e-5)
    assert sal.class_indices.tolist() == [3, 16]

"""Windows (context/body/head + boxes), heuristics and the consistent train transforms."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from cocoer.constants import IMAGENET_MEAN, IMAGENET_STD
from cocoer.data.heuristics import body_from_face, head_from_body, sanitize_box
from cocoer.data.transforms import (
    AugmentConfig,
    WindowTransform,
    color_jitter,
    hflip_sample,
    random_context_crop,
)
from cocoer.data.windows import denormalize, make_windows

MEAN = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
STD = torch.tensor(IMAGENET_STD).view(3, 1, 1)


def _scene(w: int = 120, h: int = 90) -> Image.Image:
    """Solid regions: green background, blue body region, red head region."""
    arr = np.zeros((h, w, 3), np.uint8)
    arr[...] = (0, 160, 0)
    arr[20:80, 30:70] = (0, 0, 200)  # body (30, 20, 70, 80)
    arr[20:40, 40:60] = (220, 0, 0)  # head (40, 20, 60, 40)
    return Image.fromarray(arr)


def _colour(window: torch.Tensor) -> torch.Tensor:
    """Mean colour (0..255) of the centre of a normalised window."""
    s = window.shape[-1]
    c = window[:, s // 4 : 3 * s // 4, s // 4 : 3 * s // 4] * STD + MEAN
    return (c.mean((1, 2)) * 255).round()


def test_contract_shapes_dtypes_and_normalisation():
    img = _scene()
    out = make_windows(img, (30, 20, 70, 80), (40, 20, 60, 40), 32)
    assert set(out) == {"context", "body", "head", "body_box", "head_box"}
    for k in ("context", "body", "head"):
        assert out[k].shape == (3, 32, 32) and out[k].dtype == torch.float32
    for k in ("body_box", "head_box"):
        assert out[k].shape == (4,) and out[k].dtype == torch.float32
    # independent oracle: the head crop is solid red, normalised with ImageNet stats
    expected = (torch.tensor([220.0, 0, 0]).view(3, 1, 1) / 255 - MEAN) / STD
    assert torch.allclose(out["head"], expected.expand(3, 32, 32), atol=1e-5)
    assert (
        torch.equal(_colour(out["body"]), torch.tensor([0.0, 0.0, 200.0])) is False
    )  # head on top
    assert _colour(out["context"]).tolist() != _colour(out["head"]).tolist()
    torch.testing.assert_close(
        out["body_box"], torch.tensor([30 / 120, 20 / 90, 70 / 120, 80 / 90])
    )
    torch.testing.assert_close(
        out["head_box"], torch.tensor([40 / 120, 20 / 90, 60 / 120, 40 / 90])
    )
    # context = whole image resized (no aspect preservation): the corners are background green
    ctx = denormalize(out["context"])
    assert torch.allclose(ctx[:, 0, 0] * 255, torch.tensor([0.0, 160.0, 0.0]), atol=1.0)


def test_windows_are_deterministic():
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 256, (77, 101, 3), dtype=np.uint8))
    a = make_windows(img, (10.3, 5.7, 60.2, 70.9), (20.5, 6.1, 40.4, 25.2), 24)
    b = make_windows(img, (10.3, 5.7, 60.2, 70.9), (20.5, 6.1, 40.4, 25.2), 24)
    for k in a:
        assert torch.equal(a[k], b[k])
    val = WindowTransform(24, AugmentConfig(enabled=False))
    c = val(img, (10.3, 5.7, 60.2, 70.9), (20.5, 6.1, 40.4, 25.2))
    for k in a:
        assert torch.equal(a[k], c[k])


def test_boxes_outside_are_clipped_and_degenerate_get_one_pixel():
    img = _scene()
    out = make_windows(img, (-50, -10, 500, 60), (40, 30, 40, 30), 16)
    torch.testing.assert_close(out["body_box"], torch.tensor([0.0, 0.0, 1.0, 60 / 90]))
    hb = out["head_box"]
    assert hb[2] > hb[0] and hb[3] > hb[1]
    torch.testing.assert_close(hb[2] - hb[0], torch.tensor(1 / 120))
    assert torch.isfinite(out["head"]).all()


def test_flip_consistency_against_flipped_image():
    """The head window of the flipped sample equals the flipped head window of the original."""
    rng = np.random.default_rng(1)
    img = Image.fromarray(rng.integers(0, 256, (64, 96, 3), dtype=np.uint8))
    body, head = (20.0, 8.0, 60.0, 60.0), (30.0, 8.0, 46.0, 24.0)
    plain = make_windows(img, body, head, 32)
    flip_only = WindowTransform(32, AugmentConfig(flip_p=1.0, crop_p=0.0, jitter_p=0.0))
    flipped = flip_only(img, body, head)
    for k in ("context", "body", "head"):
        assert torch.equal(flipped[k], torch.flip(plain[k], dims=[-1]))
    torch.testing.assert_close(
        flipped["head_box"], torch.tensor([1 - 46 / 96, 8 / 64, 1 - 30 / 96, 24 / 64])
    )
    # independent oracle: windows of the mirrored image with mirrored boxes
    mirror = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    mb = (96 - body[2], body[1], 96 - body[0], body[3])
    mh = (96 - head[2], head[1], 96 - head[0], head[3])
    ref = make_windows(mirror, mb, mh, 32)
    for k in ("context", "body", "head"):
        assert (flipped[k] - ref[k]).abs().max() < 0.05
    for k in ("body_box", "head_box"):
        torch.testing.assert_close(flipped[k], ref[k])
    twice = hflip_sample(hflip_sample(plain))
    for k in plain:
        torch.testing.assert_close(twice[k], plain[k], rtol=0, atol=1e-6)


@pytest.mark.parametrize("seed", range(25))
def test_random_crop_keeps_body_inside(seed):
    gen = torch.Generator().manual_seed(seed)
    w, h = 200, 150
    body = (float(seed * 3), 30.0, float(seed * 3 + 60), 140.0)
    crop = random_context_crop(w, h, body, 0.3, gen)
    assert 0 <= crop[0] <= body[0] and body[2] <= crop[2] <= w
    assert 0 <= crop[1] <= body[1] and body[3] <= crop[3] <= h
    assert (crop[2] - crop[0]) * (crop[3] - crop[1]) >= 0.3 * w * h - 1e-6


def test_crop_transform_body_box_is_unclipped_in_crop_frame():
    img = _scene(200, 150)
    body, head = (60.0, 30.0, 120.0, 140.0), (80.0, 30.0, 100.0, 50.0)
    t = WindowTransform(32, AugmentConfig(flip_p=0.0, crop_p=1.0, jitter_p=0.0, crop_min_scale=0.3))
    seen = set()
    for seed in range(20):
        torch.manual_seed(seed)
        out = t(img, body, head)
        b = out["body_box"]
        assert (b >= 0).all() and (b <= 1).all()
        # body box still has the body's aspect in pixels: it was not clipped by the crop
        seen.add(tuple(round(v, 3) for v in b.tolist()))
        assert torch.equal(out["body"], make_windows(img, body, head, 32)["body"])
    assert len(seen) > 5  # crops actually vary


def test_jitter_applies_same_factors_to_all_windows():
    x = torch.rand(3, 8, 8)
    a, b = color_jitter([x.clone(), x.clone()], 1.1, 0.9, 1.2)
    assert torch.equal(a, b) and not torch.allclose(a, x)
    same = color_jitter([x.clone()], 1.0, 1.0, 1.0)[0]
    torch.testing.assert_close(same, x)


def test_augment_config_validation():
    assert AugmentConfig.from_any(None).enabled is False
    assert AugmentConfig.from_any({"flip_p": 0.0}).flip_p == 0.0
    with pytest.raises(ValueError, match="unknown augment keys"):
        AugmentConfig.from_any({"flip": 0.5})
    with pytest.raises(ValueError, match="flip_p"):
        AugmentConfig(flip_p=2.0)


def test_head_from_body_documented_fractions():
    # tall body: side = 0.5 * width
    assert head_from_body((10, 20, 50, 220)) == pytest.approx((20.0, 24.0, 40.0, 44.0))
    # wide body: side = 0.3 * height
    assert head_from_body((0, 0, 100, 50)) == pytest.approx((42.5, 1.0, 57.5, 16.0))


def test_body_from_face_documented_expansion_and_clip():
    assert body_from_face((40, 20, 60, 40), 200, 300) == pytest.approx((20.0, 15.0, 80.0, 120.0))
    assert body_from_face((0, 0, 20, 20), 30, 50) == pytest.approx((0.0, 0.0, 30.0, 50.0))


def test_sanitize_box_cases():
    assert sanitize_box((1, 2, 3, 4), 10, 10) == ((1, 2, 3, 4), [])
    box, notes = sanitize_box((5, 6, 1, 2), 10, 10)
    assert box == (1, 2, 5, 6) and notes[0].startswith("inverted box")
    box, notes = sanitize_box((-5, 2, 30, 4), 10, 10)
    assert box == (0, 2, 10, 4) and notes[0].startswith("box outside the image")
    box, notes = sanitize_box((3, 3, 3, 9), 10, 10)
    assert box is None and notes[-1].startswith("zero-area box")
    box, notes = sanitize_box((20, 20, 30, 30), 10, 10)
    assert box is None and notes[-1].startswith("zero-area box")
    box, notes = sanitize_box((float("nan"), 0, 1, 1), 10, 10)
    assert box is None and notes[-1].startswith("non-finite")

"""Decoding: unusual modes, EXIF rotation, bad files, the decompression-bomb guard."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from cocoer.data.records import BadSampleError
from cocoer.data.synthetic.bad_cases import write_png_header_only
from cocoer.data.windows import load_image, probe_image


def _rgb(w: int = 40, h: int = 30) -> Image.Image:
    arr = np.zeros((h, w, 3), np.uint8)
    arr[..., 0] = np.linspace(0, 255, w, dtype=np.uint8)[None, :]
    arr[..., 1] = 100
    arr[..., 2] = np.linspace(255, 0, h, dtype=np.uint8)[:, None]
    return Image.fromarray(arr)


def test_rgb_png_round_trip(tmp_path):
    img = _rgb()
    img.save(tmp_path / "a.png")
    out = load_image(tmp_path / "a.png")
    assert out.mode == "RGB" and out.size == (40, 30)
    assert np.array_equal(np.asarray(out), np.asarray(img))
    assert probe_image(tmp_path / "a.png") == (40, 30)


def test_grayscale_becomes_three_equal_channels(tmp_path):
    gray = np.tile(np.arange(0, 250, 10, dtype=np.uint8), (8, 1))
    Image.fromarray(gray, "L").save(tmp_path / "g.png")
    out = np.asarray(load_image(tmp_path / "g.png"))
    assert out.shape == (8, 25, 3)
    for c in range(3):
        assert np.array_equal(out[..., c], gray)


def test_rgba_is_composited_over_white(tmp_path):
    arr = np.zeros((10, 10, 4), np.uint8)
    arr[..., 0] = 200  # red-ish
    arr[..., 3] = 255
    arr[:, :5, 3] = 0  # left half fully transparent (colour behind it is garbage)
    arr[:, :5, :3] = 0
    Image.fromarray(arr, "RGBA").save(tmp_path / "t.png")
    out = np.asarray(load_image(tmp_path / "t.png")).astype(int)
    assert (out[:, :5] == 255).all()  # white, not black
    assert (out[:, 5:] == [200, 0, 0]).all()


def test_palette_with_transparency(tmp_path):
    img = Image.new("P", (6, 4), 0)
    img.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    img.paste(1, (3, 0, 6, 4))
    img.info["transparency"] = 0
    img.save(tmp_path / "p.png", transparency=0)
    out = np.asarray(load_image(tmp_path / "p.png")).astype(int)
    assert (out[:, :3] == 255).all() and (out[:, 3:] == [10, 200, 30]).all()


def test_cmyk_jpeg_loads_with_sensible_colours(tmp_path):
    rgb = Image.new("RGB", (32, 32), (220, 40, 40))
    rgb.convert("CMYK").save(tmp_path / "c.jpg", quality=95)
    assert Image.open(tmp_path / "c.jpg").mode == "CMYK"
    out = np.asarray(load_image(tmp_path / "c.jpg")).astype(int)
    assert out.shape == (32, 32, 3)
    assert np.abs(out.mean((0, 1)) - [220, 40, 40]).max() < 12


@pytest.mark.parametrize(("mode", "ext"), [("I;16", "png"), ("I", "tif"), ("F", "tif")])
def test_16bit_is_scaled_not_clipped(tmp_path, mode, ext):
    vals = np.array([[0, 257 * 64, 257 * 128, 65535]], dtype=np.uint16)
    if mode == "I;16":
        img = Image.fromarray(vals)
    elif mode == "I":
        img = Image.fromarray(vals.astype(np.int32), "I")
    else:  # float images in [0, 1]
        img = Image.fromarray((vals / 65535.0).astype(np.float32), "F")
    img.save(tmp_path / f"d.{ext}")
    loaded = Image.open(tmp_path / f"d.{ext}")
    assert loaded.mode.startswith(mode)
    out = np.asarray(load_image(tmp_path / f"d.{ext}"))
    assert out[0, :, 0].tolist() == [0, 64, 128, 255]  # clipping would give [0, 255, 255, 255]
    assert (out[..., 0] == out[..., 1]).all()


def test_exif_orientation_is_applied(tmp_path):
    shown = Image.new("RGB", (60, 40), (0, 0, 255))
    shown.paste((255, 0, 0), (0, 0, 10, 10))  # red square top-left of the displayed image
    stored = shown.transpose(Image.Transpose.ROTATE_90)  # what a camera would store
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    stored.save(tmp_path / "e.jpg", exif=exif.tobytes(), quality=95)
    assert Image.open(tmp_path / "e.jpg").size == (40, 60)
    out = load_image(tmp_path / "e.jpg")
    assert out.size == (60, 40)
    assert probe_image(tmp_path / "e.jpg") == (60, 40)
    arr = np.asarray(out).astype(int)
    assert arr[3, 3, 0] > 200 and arr[3, 3, 2] < 60  # red at the displayed top-left
    assert arr[35, 55, 2] > 200


def test_missing_file(tmp_path):
    for fn in (load_image, probe_image):
        with pytest.raises(BadSampleError, match=r"nope\.jpg: missing file"):
            fn(tmp_path / "nope.jpg")


def test_unreadable_file(tmp_path):
    (tmp_path / "junk.jpg").write_bytes(b"this is not an image" * 20)
    for fn in (load_image, probe_image):
        with pytest.raises(BadSampleError, match=r"junk\.jpg: unreadable image"):
            fn(tmp_path / "junk.jpg")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_file(tmp_path, fmt):
    buf = io.BytesIO()
    _rgb(80, 60).save(buf, fmt)
    data = buf.getvalue()
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(BadSampleError, match=r"cut\.\w+: truncated image"):
        probe_image(path)
    with pytest.raises(BadSampleError, match=r"cut\.\w+: (truncated|unreadable) image"):
        load_image(path)


def test_decompression_bomb_refused_with_clear_message(tmp_path):
    Image.new("L", (400, 300)).save(tmp_path / "big.png")
    for fn in (load_image, probe_image):
        with pytest.raises(BadSampleError, match=r"big\.png: decompression bomb guard: 400x300"):
            fn(tmp_path / "big.png", max_pixels=100_000)
    assert probe_image(tmp_path / "big.png", max_pixels=120_000) == (400, 300)


def test_huge_header_refused_by_default_cap_before_decoding(tmp_path):
    write_png_header_only(tmp_path / "bomb.png", 30000, 30000)
    for fn in (load_image, probe_image):
        with pytest.raises(
            BadSampleError, match=r"bomb\.png: decompression bomb guard: 30000x30000"
        ):
            fn(tmp_path / "bomb.png")
    assert Image.MAX_IMAGE_PIXELS is not None  # PIL's global guard restored

"""Model parts: backbones and their weight files, HFE (patchify, position, attention),
the V-I module on open_clip, and the whole model's outputs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cocoer.models.backbones import build_backbone
from cocoer.models.hfe import HFE, CrossAttention, PositionEmbedding2D, patchify
from cocoer.models.vi import PROMPT_TEMPLATE, VIModule, build_clip


@pytest.mark.parametrize(("name", "channels"), [("resnet18", 512), ("resnet50", 2048)])
def test_torchvision_backbone_gives_its_feature_map(name: str, channels: int) -> None:
    net = build_backbone(name).eval()
    with torch.no_grad():
        out = net(torch.zeros(1, 3, 224, 224))
    assert out.shape == (1, channels, 7, 7) and net.out_channels == channels


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "channels"),
    [("resnet101", 2048), ("resnet152", 2048), ("vgg16", 512), ("densenet161", 2208)],
)
def test_other_table3_backbones(name: str, channels: int) -> None:
    net = build_backbone(name).eval()
    with torch.no_grad():
        assert net(torch.zeros(1, 3, 224, 224)).shape == (1, channels, 7, 7)


def test_backbone_loads_a_local_weights_file(tmp_path: Path) -> None:
    import torchvision

    torch.manual_seed(3)
    full = torchvision.models.resnet18(weights=None)  # torchvision's own layout, with fc
    path = tmp_path / "resnet18.pth"
    torch.save(full.state_dict(), path)
    net = build_backbone("resnet18", weights_path=str(path))
    conv1 = net.features[0].weight
    torch.testing.assert_close(conv1, full.conv1.weight)
    other = build_backbone("resnet18")
    assert not torch.equal(other.features[0].weight, full.conv1.weight)


def test_backbone_weight_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.pth"):
        build_backbone("resnet18", weights_path=str(tmp_path / "nope.pth"))
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"bad\.pth"):
        build_backbone("resnet18", weights_path=str(bad))
    wrong = tmp_path / "wrong.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, wrong)
    with pytest.raises(ValueError, match="lack"):
        build_backbone("resnet18", weights_path=str(wrong))
    with pytest.raises(ValueError, match="unknown backbone"):
        build_backbone("resnet9")


def test_patchify_pads_to_a_multiple_of_p() -> None:
    fmap = torch.arange(2 * 3 * 7 * 7, dtype=torch.float32).view(2, 3, 7, 7)
    p2 = patchify(fmap, 2)
    assert p2.shape == (2, 16, 2 * 2 * 3)  # 7 -> 8, (8/2)^2 = 16 patches
    # first patch = the top-left 2x2 cells of every channel (ordered row, col, channel)
    expected = fmap[0, :, :2, :2].permute(1, 2, 0).reshape(-1)
    torch.testing.assert_close(p2[0, 0], expected)
    # the last patch holds cell (6, 6) and zero padding
    last = p2[0, -1].view(2, 2, 3)
    torch.testing.assert_close(last[0, 0], fmap[0, :, 6, 6])
    assert torch.all(last[1] == 0) and torch.all(last[:, 1] == 0)
    assert patchify(fmap, 3).shape == (2, 9, 27) and patchify(fmap, 4).shape == (2, 4, 48)


def test_position_of_a_window_covering_the_context_equals_the_context_grid() -> None:
    """Independent check of the sampling: a body box equal to the whole image puts its
    patch centres exactly on the context's patch centres."""
    torch.manual_seed(0)
    pos = PositionEmbedding2D(8, 7, 7, 2)
    whole = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
    torch.testing.assert_close(pos.at_box(whole), pos.context(), atol=1e-5, rtol=1e-5)
    # the left half of the context: the first patch column of the window lands half-way
    # between context columns 0 and 1 ... and it differs from the context embedding
    left = pos.at_box(torch.tensor([[0.0, 0.0, 0.5, 1.0]]))
    assert not torch.allclose(left, pos.context())


def test_attention_with_heads_not_dividing_d_h() -> None:
    attn = CrossAttention(1024, 3)
    assert attn.head_dim == 342 and attn.q.out_features == 1026
    q, kv = torch.randn(2, 4, 1024), torch.randn(2, 16, 1024)
    assert attn(q, kv).shape == (2, 4, 1024)


def test_hfe_output_width_is_n_times_d_h() -> None:
    hfe = HFE(backbone="tiny_cnn", image_size=64, patch_size=2, d_h=24, heads=3, tiny_width=4)
    assert hfe.num_patches == 4 and hfe.out_dim == 96  # 64/16 = 4 -> 2x2 patches
    w = torch.randn(3, 3, 64, 64)
    boxes = torch.tensor([[0.1, 0.1, 0.6, 0.9]] * 3)
    assert hfe(w, w, w, boxes, boxes).shape == (3, 3, 96)


@pytest.fixture(scope="module")
def tiny_vi() -> VIModule:
    torch.manual_seed(0)
    return VIModule(["Happy", "Sad", "Fear"], clip_name="cocoer-tiny-RN", d=8, multi_label=True)


def test_vi_caches_normalised_prompt_embeddings(tiny_vi: VIModule) -> None:
    import open_clip

    w = tiny_vi.text_embeddings
    assert w.shape == (3, tiny_vi.D)
    torch.testing.assert_close(w.norm(dim=-1), torch.ones(3))
    tok = open_clip.get_tokenizer("cocoer-tiny-RN")
    ref = tiny_vi.clip.encode_text(tok([PROMPT_TEMPLATE.format("sad")]), normalize=True)
    torch.testing.assert_close(w[1], ref[0])
    assert not any(p.requires_grad for p in tiny_vi.clip.parameters())


def test_vi_pseudo_labels_follow_tau_and_carry_no_gradient(tiny_vi: VIModule) -> None:
    out = tiny_vi(torch.randn(4, 3, 32, 32))
    expect = (torch.sigmoid(out["logits_t"]) > 0.3).float()
    assert torch.equal(out["y_t"], expect) and not out["y_t"].requires_grad
    assert out["z_t"].shape == (4, 8) and out["logits_t"].requires_grad
    single = VIModule(["a", "b"], clip_name="cocoer-tiny-RN", d=4, multi_label=False)
    y = single.pseudo_label(torch.tensor([[0.1, 2.0], [3.0, -1.0]]))
    assert torch.equal(y, torch.tensor([[0.0, 1.0], [1.0, 0.0]]))


def test_vi_feature_is_the_per_class_product(tiny_vi: VIModule) -> None:
    U = torch.randn(2, tiny_vi.D)
    feat = tiny_vi.vi_feature(U).view(2, 3, tiny_vi.D)
    torch.testing.assert_close(feat[1, 2], tiny_vi.text_embeddings[2] * U[1])


def test_clip_loads_a_local_weights_file(tmp_path: Path) -> None:
    torch.manual_seed(1)
    clip = build_clip("cocoer-tiny-ViT")
    path = tmp_path / "tiny_clip.pt"
    torch.save(clip.state_dict(), path)
    again = build_clip("cocoer-tiny-ViT", weights_path=str(path))
    for (k, a), (_, b) in zip(clip.state_dict().items(), again.state_dict().items(), strict=True):
        torch.testing.assert_close(a, b, msg=k)
    with pytest.raises(FileNotFoundError, match=r"missing\.pt"):
        build_clip("cocoer-tiny-ViT", weights_path=str(tmp_path / "missing.pt"))
    with pytest.raises(ValueError, match="unknown CLIP"):
        build_clip("RN51")


def test_paper_clip_encoders_are_known_to_open_clip() -> None:
    import open_clip

    for name in ("RN50", "RN50x16", "RN50x64", "ViT-B-16", "ViT-B-32"):
        assert name in open_clip.list_models()
        assert "openai" in open_clip.list_pretrained_tags_by_model(name)

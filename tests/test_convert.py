"""Conversion of the authors' model_GWT weights (assumed layout, see cocoer.convert)."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from cocoer.convert import (
    build_target_model,
    convert_authors_state_dict,
    save_converted_checkpoint,
)

#: a small net whose shapes follow the authors' layout (p = 1, heads 4, mlp x4, V-I repeat)
CFG = {
    "num_classes": 26,
    "multi_label": True,
    "d": 8,
    "hfe": {
        "backbone": "resnet18",
        "image_size": 64,
        "patch_size": 1,
        "d_h": 16,
        "heads": 4,
        "mlp_ratio": 4.0,
        "depth": 2,
    },
    "vi": {"clip_name": "cocoer-tiny-RN", "feature": "repeat", "hidden_ratio": 0.25},
}
RESNET_CHILD = {"conv1": 0, "bn1": 1, "layer1": 4, "layer2": 5, "layer3": 6, "layer4": 7}


def authors_state_dict(k: int = 26, d: int = 8, d_h: int = 16, D: int = 64) -> dict:
    """A state dict in the authors' model_GWT layout, written key by key."""
    g = torch.Generator().manual_seed(0)
    r = lambda *shape: torch.randn(*shape, generator=g)
    sd: dict[str, torch.Tensor] = {}
    resnet = torchvision.models.resnet18(weights=None).state_dict()
    for level in ("head", "body", "context"):
        for key, value in resnet.items():
            child, _, rest = key.partition(".")
            if child in RESNET_CHILD:
                sd[f"backbone.{level}.{RESNET_CHILD[child]}.{rest}"] = (
                    value + r(*value.shape) if value.is_floating_point() else value
                )
        sd[f"{level}_proj.weight"] = r(d_h, 512, 1, 1)
        sd[f"{level}_proj.bias"] = r(d_h)
    sd["en_pos.row_embed.weight"] = r(7, d_h // 2)
    sd["en_pos.col_embed.weight"] = r(7, d_h // 2)
    for enc in ("encoder1", "encoder2", "encoder3"):
        for i in range(2):
            p = f"{enc}.{i}"
            for j in range(4):
                sd[f"{p}.cross_attn.linears.{j}.weight"] = r(d_h, d_h)
                sd[f"{p}.cross_attn.linears.{j}.bias"] = r(d_h)
            sd[f"{p}.feed_forward.w_1.weight"], sd[f"{p}.feed_forward.w_1.bias"] = (
                r(4 * d_h, d_h),
                r(4 * d_h),
            )
            sd[f"{p}.feed_forward.w_2.weight"], sd[f"{p}.feed_forward.w_2.bias"] = (
                r(d_h, 4 * d_h),
                r(d_h),
            )
            for n in ("norm1", "norm2", "norm3"):
                sd[f"{p}.{n}.weight"], sd[f"{p}.{n}.bias"] = r(d_h), r(d_h)
    for lvl in ("ctx", "body", "head"):
        sd[f"cls_HFE_{lvl}.1.weight"], sd[f"cls_HFE_{lvl}.1.bias"] = r(d, 4 * d_h), r(d)
        sd[f"cls_HFE_{lvl}.3.weight"], sd[f"cls_HFE_{lvl}.3.bias"] = r(d), r(d)
        sd[f"cls_HFE_{lvl}.4.weight"], sd[f"cls_HFE_{lvl}.4.bias"] = r(k, d), r(k)
    sd["W.weight"] = r(D, D)
    sd["VI_ffn.1.weight"], sd["VI_ffn.1.bias"] = r(k * D // 4, k * D), r(k * D // 4)
    sd["VI_ffn.3.weight"], sd["VI_ffn.3.bias"] = r(d, k * D // 4), r(d)
    sd["VI_ffn.5.weight"], sd["VI_ffn.5.bias"] = r(k, d), r(k)
    sd["cls_global_all.1.weight"], sd["cls_global_all.1.bias"] = r(4 * d), r(4 * d)
    sd["cls_global_all.2.weight"], sd["cls_global_all.2.bias"] = r(d, 4 * d), r(d)
    for i in (4, 7):
        sd[f"cls_global_all.{i}.weight"], sd[f"cls_global_all.{i}.bias"] = r(d), r(d)
    sd["cls_global_all.5.weight"], sd["cls_global_all.5.bias"] = r(d, d), r(d)
    sd["cls_global_all.8.weight"], sd["cls_global_all.8.bias"] = r(k, d), r(k)
    # modules the authors build but never use, and their final LayerNorm
    sd["encoder_head.0.cross_attn.linears.0.weight"] = r(d_h, d_h)
    sd["query_embedding.weight"] = r(16, d_h)
    sd["ln_after.weight"], sd["ln_after.bias"] = r(d_h), r(d_h)
    return sd


@pytest.fixture(scope="module")
def converted() -> tuple[dict, dict, object]:
    D = build_target_model(CFG).vi.D
    src = authors_state_dict(D=D)
    state, report = convert_authors_state_dict(src, CFG)
    return src, state, report


def test_values_land_where_the_table_says(converted: tuple) -> None:
    src, state, report = converted
    eq = torch.testing.assert_close
    eq(state["levels.ffn0_weight"][0], src["cls_HFE_ctx.1.weight"])
    eq(state["levels.ffn0_weight"][2], src["cls_HFE_head.1.weight"])
    eq(state["levels.theta_bias"][1], src["cls_HFE_body.4.bias"])
    eq(state["levels.ln_weight"][2], src["cls_HFE_head.3.weight"])
    eq(state["hfe.backbones.2.features.4.0.conv1.weight"], src["backbone.head.4.0.conv1.weight"])
    eq(state["hfe.backbones.0.features.1.running_var"], src["backbone.context.1.running_var"])
    eq(state["hfe.proj.1.weight"], src["body_proj.weight"].flatten(1))
    kv = torch.cat(
        [
            src["encoder1.1.cross_attn.linears.1.weight"],
            src["encoder1.1.cross_attn.linears.2.weight"],
        ]
    )
    eq(state["hfe.t_hc.1.attn.kv.weight"], kv)
    eq(state["hfe.t_cc.0.attn.q.bias"], src["encoder3.0.cross_attn.linears.0.bias"])
    eq(state["hfe.t_bc.0.norm_kv.weight"], src["encoder2.0.norm3.weight"])
    eq(state["hfe.t_bc.0.mlp.3.weight"], src["encoder2.0.feed_forward.w_2.weight"])
    table = state["hfe.pos.table"]  # [1, 16, 2, 2]
    eq(table[0, :8, 1, 0], src["en_pos.col_embed.weight"][0])
    eq(table[0, 8:, 1, 0], src["en_pos.row_embed.weight"][1])
    eq(state["vi.W.weight"], src["W.weight"])
    eq(state["vi.ffn1_hidden.2.weight"], src["VI_ffn.3.weight"])
    eq(state["vi.ffn1_out.bias"], src["VI_ffn.5.bias"])
    # FFN2 input blocks: authors [h, b, c, t] -> ours [c, b, h, t] (d = 8)
    w_src, w = src["cls_global_all.2.weight"], state["fusion.net.1.weight"]
    eq(w[:, 0:8], w_src[:, 16:24])
    eq(w[:, 8:16], w_src[:, 8:16])
    eq(w[:, 16:24], w_src[:, 0:8])
    eq(w[:, 24:32], w_src[:, 24:32])
    eq(state["fusion.net.0.bias"][0:8], src["cls_global_all.1.bias"][16:24])
    eq(state["fusion.net.5.weight"], src["cls_global_all.8.weight"])
    assert report.ok and not report.shape_mismatch


def test_report_lists_every_unused_key(converted: tuple) -> None:
    src, state, report = converted
    unmapped = report.unmapped_source
    for key in (
        "cls_global_all.4.weight",
        "cls_global_all.7.bias",
        "encoder_head.0.cross_attn.linears.0.weight",
        "query_embedding.weight",
        "ln_after.weight",
    ):
        assert key in unmapped, key
    mapped_sources = {s for m in report.mapped for s in m[0].split(" + ")}
    assert mapped_sources | set(unmapped) == set(src), "every source key is accounted for"
    kept = report.kept_from_config
    assert any(k.startswith("vi.clip.") for k in kept) and "vi.text_embeddings" in kept
    assert not any(k.startswith(("levels.", "fusion.", "hfe.t_")) for k in kept)
    assert any("CLIP" in n for n in report.notes)
    model = build_target_model(CFG)
    assert set(state) == set(model.state_dict())
    model.load_state_dict(state, strict=True)


def test_mismatch_and_unknown_keys_are_reported(converted: tuple, tmp_path: Path) -> None:
    src = copy.copy(converted[0])
    src["cls_HFE_body.4.weight"] = torch.zeros(25, 8)
    src["mystery.weight"] = torch.zeros(3)
    path = tmp_path / "GWT.pth"
    torch.save({"model": {f"module.{k}": v for k, v in src.items()}}, path)
    _, report = convert_authors_state_dict(path, CFG)
    assert ("cls_HFE_body.4.weight", "levels.theta_weight", [25, 8], [26, 8]) in [
        tuple(m) for m in report.shape_mismatch
    ]
    assert report.unmapped_source["mystery.weight"] == "no rule matches this key"
    assert "levels.theta_weight (level slices [1])" in report.kept_from_config
    assert not report.ok
    with pytest.raises(FileNotFoundError):
        convert_authors_state_dict(tmp_path / "absent.pth", CFG)


def test_converted_checkpoint_runs_in_the_predictor(converted: tuple, tmp_path: Path) -> None:
    from cocoer.infer import Predictor

    _, state, report = converted
    path = save_converted_checkpoint(state, CFG, tmp_path / "conv.ckpt", report)
    pred = Predictor.from_checkpoint(path, thresholds="calibrated")
    assert pred.image_size == 64
    np.testing.assert_allclose(pred.policy.final, np.full(26, 0.26, dtype=np.float32))
    torch.testing.assert_close(pred.net.levels.theta_weight, state["levels.theta_weight"])
    from PIL import Image

    from cocoer.detect import PersonDetection

    person = PersonDetection((10.0, 10.0, 60.0, 90.0), "t", (20.0, 12.0, 45.0, 35.0), "t", 1.0)
    result = pred.predict_image(Image.new("RGB", (100, 100), (90, 60, 30)), persons=[person])
    assert len(result.persons) == 1 and len(result.persons[0].exclusion_sequence) == 3
    assert torch.load(path, weights_only=False)["cocoer_conversion"]["mapped"]

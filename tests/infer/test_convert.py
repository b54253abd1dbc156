"""Conversion of the authors' model_GWT files (GWT.pth, w.pth, OpenAI's CLIP) at tiny widths.

The source state dict is generated key by key in the authors' layout (models_sw.py of
github bisno/CocoER), at widths small enough for a test; the target is the
``model=cocoer_authors_eval`` preset with the same widths.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest
import torch
import torchvision

from cocoer.cli.convert import compose_model_config
from cocoer.convert.authors import build_target_model, convert_authors, save_converted_checkpoint

K, D_MODEL, D_H, DEPTH, S = 26, 8, 16, 2, 64
#: the preset at tiny widths (ResNet-18 windows of 64 px: a 2 x 2 feature map)
TINY = [
    f"data.image_size={S}",
    "model.net.hfe.backbone=resnet18",
    "model.net.hfe.pretrained=false",
    f"model.net.hfe.d_h={D_H}",
    "model.net.hfe.head_dim=4",
    f"model.net.hfe.depth={DEPTH}",
    f"model.net.d={D_MODEL}",
    "model.net.vi.clip_name=cocoer-tiny-RN",
    "model.net.vi.clip_pretrained=null",
]
RESNET_CHILD = {"conv1": 0, "bn1": 1, "layer1": 4, "layer2": 5, "layer3": 6, "layer4": 7}
IMAGES = Path(__import__("insightface").__file__).parent / "data" / "images"


def authors_state_dict(D: int, k: int = K, d: int = D_MODEL, d_h: int = D_H) -> dict:
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
        sd[f"{level}_proj.weight"], sd[f"{level}_proj.bias"] = r(d_h, 512, 1, 1), r(d_h)
    sd["en_pos.row_embed.weight"], sd["en_pos.col_embed.weight"] = r(7, d_h // 2), r(7, d_h // 2)
    for enc in ("encoder1", "encoder2", "encoder3"):
        for i in range(DEPTH):
            p = f"{enc}.{i}"
            for j in range(4):
                sd[f"{p}.cross_attn.linears.{j}.weight"] = r(d_h, d_h)
                sd[f"{p}.cross_attn.linears.{j}.bias"] = r(d_h)
            sd[f"{p}.feed_forward.w_1.weight"] = r(4 * d_h, d_h)
            sd[f"{p}.feed_forward.w_1.bias"] = r(4 * d_h)
            sd[f"{p}.feed_forward.w_2.weight"] = r(d_h, 4 * d_h)
            sd[f"{p}.feed_forward.w_2.bias"] = r(d_h)
            for n in ("norm1", "norm2", "norm3"):
                sd[f"{p}.{n}.weight"], sd[f"{p}.{n}.bias"] = r(d_h), r(d_h)
    n_tok = 4  # 2 x 2 tokens at 64 px
    for lvl in ("ctx", "body", "head"):
        sd[f"cls_HFE_{lvl}.1.weight"], sd[f"cls_HFE_{lvl}.1.bias"] = r(d, n_tok * d_h), r(d)
        sd[f"cls_HFE_{lvl}.3.weight"], sd[f"cls_HFE_{lvl}.3.bias"] = r(d), r(d)
        sd[f"cls_HFE_{lvl}.4.weight"], sd[f"cls_HFE_{lvl}.4.bias"] = r(k, d), r(k)
    sd["W.weight"] = r(D, D)
    sd["VI_ffn.1.weight"], sd["VI_ffn.1.bias"] = r(k * D // 4, k * D), r(k * D // 4)
    sd["VI_ffn.3.weight"], sd["VI_ffn.3.bias"] = r(d, k * D // 4), r(d)
    sd["VI_ffn.5.weight"], sd["VI_ffn.5.bias"] = r(k, d), r(k)
    for i, shape in ((1, 4 * d), (4, d), (7, d)):  # the three LayerNorms of FFN2
        sd[f"cls_global_all.{i}.weight"], sd[f"cls_global_all.{i}.bias"] = r(shape), r(shape)
    sd["cls_global_all.2.weight"], sd["cls_global_all.2.bias"] = r(d, 4 * d), r(d)
    sd["cls_global_all.5.weight"], sd["cls_global_all.5.bias"] = r(d, d), r(d)
    sd["cls_global_all.8.weight"], sd["cls_global_all.8.bias"] = r(k, d), r(k)
    sd["ln_after.weight"], sd["ln_after.bias"] = r(d_h), r(d_h)
    # modules the authors build but never call
    sd["encoder_head.0.cross_attn.linears.0.weight"] = r(d_h, d_h)
    sd["decoder_ctx.0.norm4.bias"] = r(d_h)
    sd["query_embedding.weight"] = r(16, d_h)
    sd["shar_after.weight"] = r(3, d_h)
    return sd


def openai_layout_clip(name: str = "cocoer-tiny-RN") -> dict[str, torch.Tensor]:
    """A random CLIP state dict with the entries of OpenAI's archive (fp16, metadata)."""
    import open_clip

    from cocoer.models.vi import register_tiny_clip_configs

    register_tiny_clip_configs()
    torch.manual_seed(1)
    sd = open_clip.create_model(name).state_dict()
    sd = {k: (v.half() if v.is_floating_point() else v) for k, v in sd.items()}
    sd.update(input_resolution=torch.tensor(S), context_length=torch.tensor(77))
    return sd


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The authors' three files (GWT.pth, w.pth, CLIP) and the tiny preset config."""
    root = tmp_path_factory.mktemp("authors")
    model_cfg = compose_model_config("authors_eval", TINY)
    clip = openai_layout_clip()
    D = int(clip["text_projection"].shape[1])
    src = authors_state_dict(D)
    torch.save({"model": src}, root / "GWT.pth")
    torch.save({"model": {"W.weight": src["W.weight"].clone()}}, root / "w.pth")
    from safetensors.torch import save_file

    save_file(clip, str(root / "clip.safetensors"))
    return {"root": root, "cfg": model_cfg, "src": src, "clip": clip}


@pytest.fixture(scope="module")
def converted(files: dict) -> tuple:
    r = files["root"]
    state, report = convert_authors(
        r / "GWT.pth", files["cfg"]["net"], r / "clip.safetensors", r / "w.pth"
    )
    return state, report


def test_every_source_tensor_is_accounted_for(files: dict, converted: tuple) -> None:
    state, report = converted
    assert report.ok and not report.unexplained and not report.dropped, report.summary()
    assert not report.notes, "the preset has every authors' switch"
    sources = set(files["src"]) | {f"clip:{k}" for k in files["clip"]} | {"w.pth:W.weight"}
    mapped = {s for m in report.mapped for s in m[0].split(" + ") if not s.startswith("(")}
    assert mapped | set(report.unused) == sources and not mapped & set(report.unused)
    for key in ("ln_after.weight", "cls_global_all.4.bias", "cls_global_all.7.weight"):
        assert key in mapped, f"{key} is used by the authors' forward and must be mapped"
    for key in ("encoder_head.0.cross_attn.linears.0.weight", "clip:input_resolution"):
        assert key in report.unused
    assert not report.kept_from_config, "GWT.pth + CLIP + w.pth fill every target tensor"
    model = build_target_model(files["cfg"]["net"])
    model.load_state_dict(state, strict=True)


def test_values_land_where_the_table_says(files: dict, converted: tuple) -> None:
    src, state = files["src"], converted[0]
    eq = torch.testing.assert_close
    eq(state["levels.ffn0_weight"][0], src["cls_HFE_ctx.1.weight"])
    eq(state["levels.ffn0_weight"][2], src["cls_HFE_head.1.weight"])
    eq(state["levels.theta_bias"][1], src["cls_HFE_body.4.bias"])
    eq(state["levels.ln_weight"][2], src["cls_HFE_head.3.weight"])
    eq(state["hfe.backbones.2.features.4.0.conv1.weight"], src["backbone.head.4.0.conv1.weight"])
    eq(state["hfe.backbones.0.features.1.running_var"], src["backbone.context.1.running_var"])
    eq(state["hfe.proj.1.weight"], src["body_proj.weight"].flatten(1))
    kv = [src[f"encoder1.1.cross_attn.linears.{j}.weight"] for j in (1, 2)]
    eq(state["hfe.t_hc.1.attn.kv.weight"], torch.cat(kv))
    eq(state["hfe.t_cc.0.attn.q.bias"], src["encoder3.0.cross_attn.linears.0.bias"])
    eq(state["hfe.t_bc.0.norm_kv.weight"], src["encoder2.0.norm3.weight"])
    eq(state["hfe.t_bc.0.mlp.3.weight"], src["encoder2.0.feed_forward.w_2.weight"])
    eq(state["hfe.ln_after.bias"], src["ln_after.bias"])
    table = state["hfe.pos.table"]  # [1, 16, 2, 2]: [col_embed[x]; row_embed[y]]
    eq(table[0, :8, 1, 0], src["en_pos.col_embed.weight"][0])
    eq(table[0, 8:, 1, 0], src["en_pos.row_embed.weight"][1])
    eq(state["vi.W.weight"], src["W.weight"])
    eq(state["vi.ffn1_hidden.2.weight"], src["VI_ffn.3.weight"])
    eq(state["vi.ffn1_out.bias"], src["VI_ffn.5.bias"])
    # FFN2 input blocks: authors [h, b, c, t] -> ours [c, b, h, t] (d = 8)
    w_src, w = src["cls_global_all.2.weight"], state["fusion.net.2.weight"]
    for ours, theirs in ((0, 2), (1, 1), (2, 0), (3, 3)):
        eq(w[:, 8 * ours : 8 * ours + 8], w_src[:, 8 * theirs : 8 * theirs + 8])
    eq(state["fusion.net.1.bias"][0:8], src["cls_global_all.1.bias"][16:24])
    eq(state["fusion.net.7.weight"], src["cls_global_all.7.weight"])
    eq(state["fusion.net.8.weight"], src["cls_global_all.8.weight"])
    clip = files["clip"]
    eq(state["vi.clip.visual.conv1.weight"], clip["visual.conv1.weight"].float())


def test_text_embeddings_come_from_the_given_clip(files: dict, converted: tuple) -> None:
    """Oracle: open_clip's own model with the same weights encodes the prompts."""
    import open_clip

    from cocoer.models.vi import PROMPT_TEMPLATE

    ref = open_clip.create_model("cocoer-tiny-RN")
    clip = {k: v.float() for k, v in files["clip"].items() if k in ref.state_dict()}
    ref.load_state_dict(clip, strict=True)
    names = build_target_model(files["cfg"]["net"]).class_names
    tokens = open_clip.get_tokenizer("cocoer-tiny-RN")([PROMPT_TEMPLATE.format(c) for c in names])
    with torch.no_grad():
        want = ref.encode_text(tokens, normalize=True)
    torch.testing.assert_close(converted[0]["vi.text_embeddings"], want)


def test_w_pth_fills_W_when_gwt_lacks_it(files: dict) -> None:
    src = {k: v for k, v in files["src"].items() if k != "W.weight"}
    w = torch.randn_like(files["src"]["W.weight"])
    state, report = convert_authors(src, files["cfg"]["net"], vi_weights={"W.weight": w})
    torch.testing.assert_close(state["vi.W.weight"], w)
    _, report = convert_authors(files["src"], files["cfg"]["net"], vi_weights={"W.weight": w})
    assert "DIFFER" in report.unused["w.pth:W.weight"]  # GWT.pth's W wins, as in their code


def test_problems_are_reported_not_dropped(files: dict) -> None:
    src = copy.copy(files["src"])
    src["cls_HFE_body.4.weight"] = torch.zeros(25, D_MODEL)
    src["mystery.weight"] = torch.zeros(3)
    net = copy.deepcopy(files["cfg"]["net"])
    net["fusion_style"], net["hfe"]["ln_after"] = "cocoer", "none"
    _, report = convert_authors(src, net)
    assert ("cls_HFE_body.4.weight", "levels.theta_weight", [25, D_MODEL], [K, D_MODEL]) in [
        tuple(m) for m in report.shape_mismatch
    ]
    assert report.unexplained == {"mystery.weight": "no rule matches this key"}
    assert set(report.dropped) == {
        f"{m}.{p}" for m in ("cls_global_all.4", "cls_global_all.7", "ln_after")
        for p in ("weight", "bias")
    }  # fmt: skip
    assert "level slices [1] not in the source" in report.kept_from_config["levels.theta_weight"]
    assert any("fusion_style" in n for n in report.notes) and not report.ok


def test_weight_files_are_read_without_running_code(tmp_path: Path) -> None:
    import pickle
    import zipfile

    from cocoer.checkpoint.weight_files import WeightFileError, read_state_dict

    module = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    module.register_buffer("input_resolution", torch.tensor(224))
    module[1].running_var.uniform_(0.5, 2.0)
    torch.jit.script(module.eval()).save(str(tmp_path / "scripted.pt"))
    got = read_state_dict(tmp_path / "scripted.pt")
    want = module.state_dict()
    assert got.keys() == want.keys()
    for k in want:
        assert torch.equal(got[k], want[k]) and got[k].dtype == want[k].dtype, k

    class Evil:
        def __reduce__(self) -> tuple:
            return (print, ("code ran",))

    with zipfile.ZipFile(tmp_path / "evil.pt", "w") as zf:  # a TorchScript-like archive
        zf.writestr("evil/data.pkl", pickle.dumps({"w": Evil()}, protocol=2))
        zf.writestr("evil/constants.pkl", pickle.dumps((), protocol=2))
    with pytest.raises(WeightFileError, match=r"evil\.pt.*refusing"):
        read_state_dict(tmp_path / "evil.pt")
    torch.save({"model": Evil()}, tmp_path / "pickled.pth")
    with pytest.raises(WeightFileError, match=r"pickled\.pth"):
        read_state_dict(tmp_path / "pickled.pth")
    (tmp_path / "text.pth").write_text("not a checkpoint")
    with pytest.raises(WeightFileError, match=r"text\.pth"):
        read_state_dict(tmp_path / "text.pth")


def test_cli_checkpoint_runs_in_cocoer_infer(files: dict, tmp_path: Path) -> None:
    from cocoer.cli.convert import main as convert_main
    from cocoer.cli.infer import main as infer_main

    r, out = files["root"], tmp_path / "authors_eval.ckpt"
    argv = [str(r / "GWT.pth"), "--out", str(out), "--preset", "authors_eval",
            "--clip-weights", str(r / "clip.safetensors"), "--vi-weights", str(r / "w.pth"),
            "--report", str(tmp_path / "report.json")]  # fmt: skip
    with pytest.raises(SystemExit) as exc:
        convert_main(argv + [f"--set={o}" for o in TINY])
    assert exc.value.code == 0
    assert json.loads((tmp_path / "report.json").read_text())["unexplained"] == {}
    ckpt = torch.load(out, map_location="cpu", weights_only=True)  # plain containers only
    assert ckpt["hyper_parameters"]["net"]["hfe"]["ln_after"] == "shared"
    inp = tmp_path / "in"
    inp.mkdir()
    shutil.copy(IMAGES / "t1.jpg", inp / "t1.jpg")
    code = infer_main([str(inp), "--ckpt", str(out), "--out", str(tmp_path / "pred"),
                       "--detector", "opencv", "--no-progress", "--quiet"])  # fmt: skip
    assert code == 0
    persons = json.loads((tmp_path / "pred" / "t1.json").read_text())["persons"]
    assert persons and all(len(p["exclusion_sequence"]) == 3 for p in persons)


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cocoer.cli.convert import parse_args, run

    code = run(parse_args([str(tmp_path / "nope.pth"), "--out", "x", "--preset", "authors_demo"]))
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "nope.pth" in err
    (tmp_path / "bad.pth").write_text("garbage")
    code = run(parse_args([str(tmp_path / "bad.pth"), "--out", "x", "--preset", "authors_demo"]))
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "bad.pth" in err


def test_saved_checkpoint_starts_fine_tuning(files: dict, converted: tuple) -> None:
    """``model.init_from=OUT.ckpt`` (cocoer-train) loads every converted tensor."""
    from cocoer.training.module import CocoERLitModule

    path = save_converted_checkpoint(converted[0], files["cfg"], files["root"] / "c.ckpt")
    cfg = {k: v for k, v in files["cfg"].items() if not k.startswith("_")}
    module = CocoERLitModule(**{**cfg, "init_from": str(path)})
    assert torch.allclose(module.thresholds, torch.full((K,), 0.26))
    for k, v in module.net.state_dict().items():
        assert torch.equal(v, converted[0][k]), k

"""The model options that reproduce the authors' released code (docs/method.md section 9).

Each option is checked against an independent re-implementation, written here from the
description of the authors' code (per-image BatchNorm in train mode, their position sampling,
their ``Encoder.forward_pre``, their ``list.index(max(...))`` exclusion, their inner SGD step on
FFN0's Linear), and the defaults are checked to give the outputs of the model before the
options existed (tests/method/reference/default_model_outputs.pt, written by the code at
commit bbf5b60:
``CocoER`` below built with ``torch.manual_seed(0)``, eval mode, the stored batch).
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cocoer.data.windows import make_windows
from cocoer.models import create_model
from cocoer.models.cocoer import CocoER
from cocoer.models.heads import FusionHead, LevelMappings
from cocoer.models.hfe import HFE, PositionEmbedding2D
from cocoer.models.norms import PerSampleBatchNorm2d
from cocoer.models.preprocess import PreprocessConfig
from cocoer.workspace import Workspace, exclusion_order
from cocoer.workspace.level_losses import LevelLoss
from tests.support.level_mappings import as_generic, copy_level
from tests.support.tiny_models import TINY_HFE, TINY_PRESET, reference_net

# ---------------------------------------------------------------- M5 position sampling


def authors_point_embedding(table: Tensor, box: list[int], i: int, j: int, g: int, cell: float):
    """One token's embedding, point by point, from the authors' description.

    Sample point p = c + ((idx + 1/2) / g - 1/2) * size in float32 (their operation order:
    ((idx + 0.5) / g * size - size / 2) + (x2 + x1) / 2), index p / cell; bilinear with the
    two corners floor(p), floor(p) + 1 clamped to [0, g - 1]: 0 unless 0 <= index < g - 1.
    """
    f32 = torch.float32

    def coord(idx: int, lo: int, hi: int) -> Tensor:
        size = torch.tensor(hi - lo, dtype=f32)
        centre = torch.tensor(hi + lo, dtype=f32) / 2
        p = (torch.tensor(idx, dtype=f32) + 0.5) / g * size - size / 2
        return (p + centre) / cell

    gx, gy = coord(j, box[0], box[2]), coord(i, box[1], box[3])
    if not (0 <= gx.item() < g - 1 and 0 <= gy.item() < g - 1):
        return torch.zeros(table.shape[0])
    x0, y0 = math.floor(gx.item()), math.floor(gy.item())
    fx, fy = gx.item() - x0, gy.item() - y0
    return (
        table[:, y0, x0] * (1 - fx) * (1 - fy)
        + table[:, y0, x0 + 1] * fx * (1 - fy)
        + table[:, y0 + 1, x0] * (1 - fx) * fy
        + table[:, y0 + 1, x0 + 1] * fx * fy
    )


@pytest.mark.parametrize(("S", "g"), [(224, 7), (64, 4)])
def test_authors_position_sampling_matches_pointwise_rule(S: int, g: int) -> None:
    torch.manual_seed(0)
    pos = PositionEmbedding2D(6, g, g, 1, "authors", S, "int224")
    table = pos.table.detach()[0]
    gen = torch.Generator().manual_seed(3)
    boxes = [[0, 0, S, S], [S // 3, S // 5, S, S], [5, 7, S // 2 + 1, S - 3]]
    for _ in range(5):
        x1, x2 = sorted(torch.randint(0, S + 1, (2,), generator=gen).tolist())
        y1, y2 = sorted(torch.randint(0, S + 1, (2,), generator=gen).tolist())
        boxes.append([x1, y1, max(x2, x1 + 1), max(y2, y1 + 1)])
    norm = torch.tensor(boxes, dtype=torch.float32) / S  # what make_windows hands the model
    got = pos.at_box(norm).detach()
    cell = S / g
    n_zero = 0
    for b, box in enumerate(boxes):
        for i, j in itertools.product(range(g), range(g)):
            want = authors_point_embedding(table, box, i, j, g, cell)
            n_zero += int(not want.any())
            torch.testing.assert_close(got[b, i * g + j], want, rtol=0, atol=1e-6)
    assert n_zero > 0  # boxes reaching the right / bottom edge give zero embeddings


def test_box_quantization_rounds_to_the_pixel_grid() -> None:
    torch.manual_seed(0)
    exact = PositionEmbedding2D(6, 7, 7, 1, "authors", 224, "int224")
    box = torch.tensor([[45.0, 30.0, 200.0, 224.0]])
    jitter = box + torch.tensor([[0.3, -0.2, 0.4, -0.45]])
    torch.testing.assert_close(exact.at_box(jitter / 224), exact.at_box(box / 224), rtol=0, atol=0)
    plain = PositionEmbedding2D(6, 7, 7, 1, "authors", 224, "none")
    plain.load_state_dict(exact.state_dict())
    assert not torch.allclose(plain.at_box(jitter / 224), exact.at_box(box / 224))


# ---------------------------------------------------------------- M6-M8, M10, M13


def authors_encoder(blk: nn.Module, x: Tensor, y: Tensor, x_pos: Tensor, y_pos: Tensor):
    """The authors' ``Encoder.forward_pre`` with dropout off, from the block's parameters.

    x2 = norm1(x); y2 = norm3(y); x = x + MHA(q=x2 + x_pos, k=y2 + y_pos, v=y);
    x = x + W2 Swish(W1 norm2(x)). MHA: separate q / k / v / out linears, softmax(QK^T/sqrt(dk)).
    """
    ln = lambda m, t: F.layer_norm(t, m.normalized_shape, m.weight, m.bias, m.eps)
    attn = blk.attn
    w_k, w_v = attn.kv.weight.chunk(2, 0)
    b_k, b_v = attn.kv.bias.chunk(2, 0)
    B, N, _ = x.shape
    h, dk = attn.heads, attn.head_dim

    def heads(t: Tensor) -> Tensor:
        return t.view(B, -1, h, dk).transpose(1, 2)

    q = heads(F.linear(ln(blk.norm_q, x) + x_pos, attn.q.weight, attn.q.bias))
    k = heads(F.linear(ln(blk.norm_kv, y) + y_pos, w_k, b_k))
    v = heads(F.linear(y, w_v, b_v))
    p = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(dk), -1)
    o = (p @ v).transpose(1, 2).reshape(B, N, h * dk)
    x = x + F.linear(o, attn.out.weight, attn.out.bias)
    w1, w2 = blk.mlp[0], blk.mlp[3]
    hid = F.linear(ln(blk.norm_mlp, x), w1.weight, w1.bias)
    return x + F.linear(hid * torch.sigmoid(hid), w2.weight, w2.bias)


def test_hfe_authors_blocks_match_encoder_forward_pre() -> None:
    torch.manual_seed(0)
    opts = dict(
        pos_sampling="authors", pos_injection="qk", attn_value="raw", kv_source="initial",
        mlp_activation="silu", ln_after="shared", box_quantization="int224",
    )  # fmt: skip
    hfe = HFE(**dict(TINY_HFE, patch_size=1, depth=3), **opts).eval()  # type: ignore[arg-type]
    nn.init.normal_(hfe.ln_after.weight, 1.0, 0.2)
    nn.init.normal_(hfe.ln_after.bias, 0.0, 0.2)
    B, S, g = 2, 32, 2  # tiny_cnn: stride 16 -> 2 x 2 tokens, cell 16 px
    win = [torch.randn(B, 3, S, S) for _ in range(3)]
    body_px = [[0, 2, 30, 32], [8, 0, 32, 20]]
    head_px = [[10, 3, 20, 12], [16, 1, 28, 9]]
    body, head = torch.tensor(body_px) / S, torch.tensor(head_px) / S
    with torch.no_grad():
        got = hfe(win[0], win[1], win[2], body, head)
        table = hfe.pos.table[0]
        pos_c = hfe.pos.context()
        pos_of = lambda boxes: torch.stack([
            torch.stack([
                authors_point_embedding(table, bx, i, j, g, S / g)
                for i, j in itertools.product(range(g), range(g))
            ]) for bx in boxes
        ])  # fmt: skip
        x_c0 = hfe.tokens(win[0], 0)
        x_b, x_h = hfe.tokens(win[1], 1), hfe.tokens(win[2], 2)
        for blk in hfe.t_hc:  # encoder1: head, attends the initial context
            x_h = authors_encoder(blk, x_h, x_c0, pos_of(head_px), pos_c)
        for blk in hfe.t_bc:  # encoder2: body
            x_b = authors_encoder(blk, x_b, x_c0, pos_of(body_px), pos_c)
        x_c = x_c0
        for blk in hfe.t_cc:  # encoder3: context self-attention
            x_c = authors_encoder(blk, x_c, x_c, pos_c, pos_c)
        ln = hfe.ln_after
        want = torch.stack([ln(x_c), ln(x_b), ln(x_h)], 1).flatten(2)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert set(k for k in hfe.state_dict() if k.startswith("ln_after")) == {
        "ln_after.weight",
        "ln_after.bias",
    }


# ---------------------------------------------------------------- W2 tie break


def authors_exclusion(f_cbh: list[float]) -> list[int]:
    """The authors' rounds: ``loss_li.index(max(loss_li))`` over [head, body, context]."""
    names, losses = [2, 1, 0], [f_cbh[2], f_cbh[1], f_cbh[0]]
    order = []
    while len(names) > 1:
        i = losses.index(max(losses))
        order.append(names.pop(i))
        losses.pop(i)
    return order + names


def test_tie_break_head_first_matches_list_index_max() -> None:
    cases = [list(map(float, c)) for c in itertools.product((0, 1, 2), repeat=3)]
    f = torch.tensor(cases)
    got = exclusion_order(f, "head_first").tolist()
    assert got == [authors_exclusion(c) for c in cases]
    assert exclusion_order(torch.tensor([[1.0, 1.0, 0.0]]), "context_first").tolist() == [[0, 1, 2]]
    assert exclusion_order(torch.tensor([[1.0, 1.0, 0.0]]), "head_first").tolist() == [[1, 0, 2]]


# ---------------------------------------------------------------- W4/W5/M14 inner step


def test_inner_step_linear_equals_authors_sgd_on_linear() -> None:
    """delta_scale 0, inner_params linear, GELU input: per sample, per level, one SGD step of
    FFN0's Linear on f_m = sum_c w_c BCE(l_mc, y_c) (w from y_t) at the original parameters."""
    torch.manual_seed(0)
    B, q, D, d, k, eta = 3, 3, 12, 8, 5, 0.7
    maps = LevelMappings(q, D, d, k, input_activation="gelu").double()
    nn.init.normal_(maps.ln_weight, 1.0, 0.3)
    nn.init.normal_(maps.ln_bias, 0.0, 0.3)
    ws = Workspace(LevelLoss("bce"), delta_scale=0.0, inner_lr=eta, inner_params="linear")
    x = torch.randn(B, q, D, dtype=torch.float64)
    y_t = (torch.rand(B, k) > 0.5).double()
    z, l, cache = maps(x)
    z_hat = ws(maps, z, l, cache, y_t).z_hat
    pos_w = 1.0 / math.log(2.2)
    for b, m in itertools.product(range(B), range(q)):
        seq = nn.Sequential(nn.GELU(), nn.Linear(D, d), nn.GELU(), nn.LayerNorm(d), nn.Linear(d, k))
        seq = seq.double()
        copy_level(maps, m, seq[1], seq[3], seq[4])
        w = torch.full((k,), 1e-4, dtype=torch.float64).masked_fill(y_t[b] > 0.5, pos_w)
        loss = F.binary_cross_entropy_with_logits(seq(x[b, m]), y_t[b], weight=w, reduction="sum")
        gW, gb = torch.autograd.grad(loss, [seq[1].weight, seq[1].bias])
        with torch.no_grad():
            seq[1].weight -= eta * gW
            seq[1].bias -= eta * gb
            want = seq[:-1](x[b, m])
        torch.testing.assert_close(z_hat[b, m], want, rtol=1e-9, atol=1e-9)


def test_inner_params_linear_keeps_layer_norm_affine() -> None:
    """Against torch.func: the closed form with params=linear is SGD on W0, b0 only."""
    from torch.func import functional_call, grad, vmap

    torch.manual_seed(1)
    q, D, d = 3, 6, 4
    maps = LevelMappings(q, D, d, 2).double()
    nn.init.normal_(maps.ln_weight, 1.0, 0.3)
    x = torch.randn(4, q, D, dtype=torch.float64)
    dz = torch.randn(4, q, d, dtype=torch.float64)
    _, _, cache = maps(x)
    got = maps.inner_step(cache, dz, 0.3, "linear")
    for m in range(q):
        ffn = nn.Sequential(nn.Linear(D, d), nn.GELU(), nn.LayerNorm(d)).double()
        sd = {"0.weight": maps.ffn0_weight[m], "0.bias": maps.ffn0_bias[m],
              "2.weight": maps.ln_weight[m], "2.bias": maps.ln_bias[m]}  # fmt: skip
        sd = {k: v.detach() for k, v in sd.items()}
        lin = {k: v for k, v in sd.items() if k.startswith("0.")}

        def refined(xb: Tensor, gb: Tensor, ffn: nn.Module = ffn, sd=sd, lin=lin) -> Tensor:
            def inner(p: dict[str, Tensor]) -> Tensor:
                return (functional_call(ffn, {**sd, **p}, (xb,)) * gb).sum()

            step = grad(inner)(lin)
            new = {k: v - 0.3 * step[k] for k, v in lin.items()}
            return functional_call(ffn, {**sd, **new}, (xb,))

        want = vmap(refined)(x[:, m], dz[:, m])
        torch.testing.assert_close(got[:, m], want, rtol=1e-9, atol=1e-9)


# ---------------------------------------------------------------- V2, V6, F2/F3, P1, P5/P6


def test_vi_passthrough_and_input_gelu() -> None:
    base = reference_net().eval()
    net = reference_net(vi=dict(clip_input="passthrough", input_activation="gelu")).eval()
    ctx = torch.randn(2, 3, 64, 64)  # the tiny CLIP's input size: no resize
    with torch.no_grad():
        u = net.vi.encode_image(ctx)
        want_u = F.normalize(base.vi.clip.encode_image(ctx), dim=-1)  # the tensor as is
        torch.testing.assert_close(u, want_u)
        out = net.vi(ctx)
        z_t = net.vi.ffn1_hidden(F.gelu(net.vi.vi_feature(net.vi.W(u))))
        torch.testing.assert_close(out["z_t"], z_t)
        assert not torch.allclose(base.vi.encode_image(ctx), u)


def test_fusion_authors_layout() -> None:
    torch.manual_seed(0)
    head = FusionHead(4, 3, style="authors")
    assert {k.split(".")[1] for k in head.state_dict()} == {"1", "2", "4", "5", "7", "8"}
    z = torch.randn(2, 16)
    n = head.net
    ln = lambda m, t: F.layer_norm(t, m.normalized_shape, m.weight, m.bias)
    h = F.linear(ln(n[1], F.gelu(z)), n[2].weight, n[2].bias)
    h = F.linear(ln(n[4], F.gelu(h)), n[5].weight, n[5].bias)
    want = F.linear(ln(n[7], F.gelu(h)), n[8].weight, n[8].bias)
    torch.testing.assert_close(head(z), want)


def test_preprocess_bgr_and_authors_boxes() -> None:
    from PIL import Image

    gen = torch.Generator().manual_seed(0)
    arr = torch.randint(0, 256, (50, 70, 3), dtype=torch.uint8, generator=gen).numpy()
    img = Image.fromarray(arr)
    body, head = (10.5, 3.2, 69.6, 49.5), (30.7, 5.9, 45.2, 20.99)
    rgb = make_windows(img, body, head, 32)
    bgr = make_windows(img, body, head, 32, PreprocessConfig(channel_order="bgr"))
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    raw = rgb["context"] * std + mean  # the same pixels, channels reversed, RGB statistics
    torch.testing.assert_close(bgr["context"], (raw.flip(0) - mean) / std, rtol=0, atol=1e-5)
    auth = make_windows(img, body, head, 32, PreprocessConfig(box_rounding="authors"))
    # body: round then clamp -> (10, 3, 70, 50) [10.5 rounds to even]; head: truncated
    body_int, head_int = (10, 3, 70, 50), (30, 5, 45, 20)
    want_body = [int(v * (32 / s)) / 32 for v, s in zip(body_int, (70, 50, 70, 50), strict=True)]
    want_head = [int(v * (32 / s)) / 32 for v, s in zip(head_int, (70, 50, 70, 50), strict=True)]
    torch.testing.assert_close(auth["body_box"], torch.tensor(want_body))
    torch.testing.assert_close(auth["head_box"], torch.tensor(want_head))
    crop = make_windows(img, body_int, head_int, 32)  # integer boxes crop the same pixels
    torch.testing.assert_close(auth["head"], crop["head"], rtol=0, atol=0)
    torch.testing.assert_close(auth["body"], crop["body"], rtol=0, atol=0)


def test_unknown_option_values_are_refused() -> None:
    with pytest.raises(ValueError, match="pos_injection"):
        HFE(**TINY_HFE, pos_injection="values")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="tie_break"):
        Workspace(LevelLoss("bce"), tie_break="random")
    with pytest.raises(ValueError, match="channel_order"):
        PreprocessConfig(channel_order="rbg")


def test_generic_mapping_linear_step_matches_closed_form() -> None:
    """mapping=fc through torch.func (GenericLevelMappings) with the authors' switches."""
    torch.manual_seed(2)
    maps = LevelMappings(3, 6, 4, 3, input_activation="gelu").double()
    nn.init.normal_(maps.ln_weight, 1.0, 0.3)
    generic = as_generic(maps)
    x = torch.randn(4, 3, 6, dtype=torch.float64)
    y_t = (torch.rand(4, 3) > 0.5).double()
    ws = Workspace(LevelLoss("bce"), delta_scale=0.0, inner_lr=0.5, inner_params="linear")
    a, b = ws(maps, *maps(x), y_t), ws(generic, *generic(x), y_t)
    torch.testing.assert_close(b.z_hat, a.z_hat, atol=1e-9, rtol=1e-7)


# ---------------------------------------------------------------- presets and inference


@pytest.mark.parametrize("preset", ["cocoer_authors_eval", "cocoer_authors_demo"])
def test_authors_presets_compose_validate_and_build(tmp_path: Path, preset: str) -> None:
    from cocoer.configs.schema import validate_config
    from tests.support.helpers import compose_config

    cfg = compose_config("train", tmp_path, overrides=[f"model={preset}", *TINY_PRESET])
    validate_config(cfg)
    net = cfg.model.net
    demo = preset.endswith("demo")
    assert net.workspace.inner_lr == (1.0 if demo else 0.0)
    assert net.hfe.backbone_norm == ("per_sample" if demo else "running")
    assert net.preprocess.channel_order == ("bgr" if demo else "rgb")
    assert (net.hfe.patch_size, net.hfe.heads, net.hfe.depth, net.workspace.delta_scale) == (
        1, 4, 3, 0.0,
    )  # fmt: skip
    model: CocoER = create_model(net)
    keys = set(model.state_dict())
    assert {"hfe.ln_after.weight", "fusion.net.1.weight", "fusion.net.8.bias"} <= keys
    assert model.preprocess == PreprocessConfig(
        channel_order="bgr" if demo else "rgb", box_rounding="authors"
    )
    assert (model.workspace.tie_break, model.workspace.inner_params) == ("head_first", "linear")
    assert demo == any(isinstance(m, PerSampleBatchNorm2d) for m in model.modules())
    B = 2
    batch = {k: torch.randn(B, 3, 32, 32) for k in ("context", "body", "head")}
    batch["body_box"] = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.25, 0.1, 0.9, 0.8]])
    batch["head_box"] = torch.tensor([[0.3, 0.05, 0.6, 0.3], [0.4, 0.1, 0.6, 0.3]])
    with torch.no_grad():
        out = model.eval()(batch)
    assert torch.isfinite(out["logits_G"]).all() and out["logits_G"].shape == (B, 26)
    if not demo:  # inner_lr 0: no refinement
        torch.testing.assert_close(out["z_hat"], out["z"])


def test_invalid_authors_option_fails_validation(tmp_path: Path) -> None:
    from cocoer.configs.schema import validate_config
    from tests.support.helpers import compose_config

    cfg = compose_config(
        "train", tmp_path, overrides=["model=cocoer_tiny", "model.net.hfe.kv_source=latest"]
    )
    with pytest.raises(ValueError, match=r"model\.net\.hfe\.kv_source"):
        validate_config(cfg)


def test_predictor_applies_the_models_preprocessing() -> None:
    from PIL import Image

    from cocoer.detect.types import PersonDetection
    from cocoer.infer.predictor import Predictor

    pre = PreprocessConfig(channel_order="bgr", box_rounding="authors")
    net = reference_net(preprocess={"channel_order": "bgr", "box_rounding": "authors"})
    predictor = Predictor(net, torch.full((5,), 0.5), image_size=32)
    gen = torch.Generator().manual_seed(0)
    img = Image.fromarray(
        torch.randint(0, 256, (40, 60, 3), dtype=torch.uint8, generator=gen).numpy()
    )
    person = PersonDetection((3.4, 2.5, 50.6, 39.0), "given", (20.2, 3.7, 31.9, 15.1), "given", 1.0)
    batch = predictor.make_batch(img, [person])
    want = make_windows(img, person.body_box, person.head_box, 32, pre)
    for k, v in want.items():
        torch.testing.assert_close(batch[k][0], v, rtol=0, atol=0)
    assert not torch.equal(
        batch["context"][0], make_windows(img, person.body_box, person.head_box, 32)["context"]
    )


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_clip_fp16_on_cuda_close_to_fp32() -> None:
    """vi.clip_precision=fp16: CLIP's conv / linear weights in float16 on CUDA only."""
    net32 = reference_net(vi=dict(clip_input="passthrough")).cuda().eval()
    net16 = reference_net(vi=dict(clip_input="passthrough", clip_precision="fp16")).cuda().eval()
    ctx = torch.randn(2, 3, 64, 64, device="cuda")
    with torch.no_grad():
        u32, u16 = net32.vi.encode_image(ctx), net16.vi.encode_image(ctx)
    assert u16.dtype == torch.float32
    assert net16.vi.clip.visual.attnpool.c_proj.weight.dtype == torch.float16
    torch.testing.assert_close(u16, u32, rtol=0, atol=2e-2)
    assert not torch.equal(u16, u32)


def test_clip_fp16_is_fp32_on_cpu() -> None:
    net32 = reference_net().eval()
    net16 = reference_net(vi=dict(clip_precision="fp16")).eval()
    ctx = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(net16.vi.encode_image(ctx), net32.vi.encode_image(ctx))
    assert all(p.dtype == torch.float32 for p in net16.vi.clip.parameters())


@pytest.mark.slow
def test_authors_eval_preset_has_the_authors_sizes(tmp_path: Path) -> None:
    """Full size, random weights: the shapes of the authors' model_GWT (k = 26)."""
    from tests.support.helpers import compose_config

    cfg = compose_config(
        "train", tmp_path, overrides=["model=cocoer_authors_eval", "data=emotic_synthetic"]
    )
    model: CocoER = create_model(cfg.model.net)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    want = {
        "hfe.proj.0.weight": (256, 2048),  # their 1x1 Conv2d(2048, 256)
        "hfe.pos.table": (1, 256, 7, 7),
        "hfe.t_hc.2.attn.q.weight": (256, 256),  # 4 heads x 64, depth 3
        "hfe.t_hc.2.attn.kv.weight": (512, 256),
        "hfe.t_cc.2.mlp.0.weight": (1024, 256),  # d_ff 1024
        "hfe.ln_after.weight": (256,),
        "levels.ffn0_weight": (3, 256, 7 * 7 * 256),
        "levels.theta_weight": (3, 26, 256),
        "vi.W.weight": (1024, 1024),
        "vi.ffn1_hidden.0.weight": (6656, 26 * 1024),
        "vi.ffn1_hidden.2.weight": (256, 6656),
        "vi.ffn1_out.weight": (26, 256),
        "fusion.net.1.weight": (1024,),
        "fusion.net.2.weight": (256, 1024),
        "fusion.net.7.weight": (256,),
        "fusion.net.8.weight": (26, 256),
    }
    assert {k: shapes.get(k) for k in want} == want
    assert "hfe.t_hc.3.attn.q.weight" not in shapes

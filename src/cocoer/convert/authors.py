"""Convert the authors' released CocoER (``model_GWT``, github bisno/CocoER) to this project.

Three files make the authors' model: ``GWT.pth`` (``{"model": state_dict}``), the V-I
pre-alignment ``VI_weights/w.pth`` (``{"model": {"W.weight"}}``) and OpenAI's CLIP RN50
(``RN50.pt``, downloaded by their ``clip.load``). :func:`convert_authors` maps all three onto
:class:`~cocoer.models.cocoer.CocoER` built from a net config (the presets
``model=cocoer_authors_eval`` / ``cocoer_authors_demo`` reproduce the authors' forward pass,
docs/method.md section 9) and returns a :class:`ConversionReport` that accounts for every
source tensor: mapped, unused (with the reason), or *unexplained* (no rule: must stay empty).

Mapping (L = head / body / context, or ctx; m = 0 context, 1 body, 2 head):

==================================================  =========================================
authors' key                                        this project
==================================================  =========================================
backbone.L.{j}.* (ResNet children 0..7)             hfe.backbones.m.features.{j}.*
L_proj.weight [d_h, C, 1, 1] (1x1 conv), .bias      hfe.proj.m.weight [d_h, C] (p = 1), .bias
en_pos.col_embed, row_embed [7, d_h/2]              hfe.pos.table [1, d_h, 7, 7] (cols first)
encoder1.i (head) / encoder2.i (body) / encoder3.i  hfe.t_hc.i / t_bc.i / t_cc.i
  .norm1 / .norm3 / .norm2                            .norm_q / .norm_kv / .norm_mlp
  .cross_attn.linears.0 / (1 ; 2) / 3                 .attn.q / .attn.kv (k; v rows) / .attn.out
  .feed_forward.w_1 / w_2                             .mlp.0 / .mlp.3
ln_after (one LayerNorm shared by the levels)       hfe.ln_after
cls_HFE_L.1 (Linear 49 d_h -> d)                    levels.ffn0_weight[m], ffn0_bias[m]
cls_HFE_L.3 (LayerNorm d)                           levels.ln_weight[m], ln_bias[m]
cls_HFE_L.4 (Linear d -> k)                         levels.theta_weight[m], theta_bias[m]
W.weight (or w.pth's W.weight)                      vi.W.weight
VI_ffn.1 / VI_ffn.3 / VI_ffn.5                      vi.ffn1_hidden.0 / ffn1_hidden.2 / ffn1_out
cls_global_all.{1,2,4,5,7,8}                        fusion.net.{1,2,4,5,7,8} (fusion_style
                                                    authors); the LayerNorm(4d) and the first
                                                    Linear's inputs reordered [h,b,c,t] ->
                                                    [c,b,h,t] (exact: GELU and LayerNorm are
                                                    permutation-equivariant)
OpenAI CLIP RN50 (RN50.pt: every key)               vi.clip.<key>; vi.text_embeddings are
                                                    recomputed with that CLIP
==================================================  =========================================

Modules the authors build but never call (``encoder_head/body/ctx``, ``decoder_*``,
``query_embedding*``, ``en_pos_gwt``, ``shar_after``, ``cls_en_all``) are reported unused.
When both ``GWT.pth`` and ``w.pth`` hold ``W.weight``, GWT.pth's wins, as in the authors'
code (their constructor reads w.pth, then ``load_state_dict(GWT.pth)`` overwrites it); the
report says whether the two agree. The CLIP file is read without running code
(:mod:`cocoer.checkpoint.weight_files`: a plain state dict, ``.safetensors`` or OpenAI's TorchScript
archive; OpenAI's and open_clip's key layouts are the same).
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from cocoer.checkpoint.weight_files import read_state_dict
from cocoer.convert.report import ConversionReport
from cocoer.utils.files import atomic_write

__all__ = [
    "AUTHORS_SWITCHES",
    "ConversionReport",
    "build_target_model",
    "convert_authors",
    "save_converted_checkpoint",
]

#: net options whose value must be the authors' for the forward pass to equal model_GWT's
#: (path under model.net -> value). Sizes are checked by the tensor shapes; the mode
#: switches (backbone_norm, inner_lr, channel order) differ between the two presets.
AUTHORS_SWITCHES: dict[str, Any] = {
    "hfe.pos_sampling": "authors",
    "hfe.pos_injection": "qk",
    "hfe.attn_value": "raw",
    "hfe.kv_source": "initial",
    "hfe.mlp_activation": "silu",
    "hfe.ln_after": "shared",
    "level_input_activation": "gelu",
    "vi.feature": "repeat",
    "vi.clip_input": "passthrough",
    "vi.input_activation": "gelu",
    "fusion_style": "authors",
    "workspace.delta_scale": 0.0,
    "workspace.inner_params": "linear",
    "workspace.tie_break": "head_first",
    "box_quantization": "int224",
}

_LEVEL = {"context": 0, "ctx": 0, "body": 1, "head": 2}
_ENCODER_BLOCK = {"encoder1": "t_hc", "encoder2": "t_bc", "encoder3": "t_cc"}
_ENCODER_PARTS = {
    "norm1": "norm_q",
    "norm3": "norm_kv",
    "norm2": "norm_mlp",
    "cross_attn.linears.0": "attn.q",
    "cross_attn.linears.3": "attn.out",
    "feed_forward.w_1": "mlp.0",
    "feed_forward.w_2": "mlp.3",
}
_FFN0 = {"1": ("ffn0_weight", "ffn0_bias"), "3": ("ln_weight", "ln_bias"),
         "4": ("theta_weight", "theta_bias")}  # fmt: skip
_VI_FFN = {"1": "vi.ffn1_hidden.0", "3": "vi.ffn1_hidden.2", "5": "vi.ffn1_out"}
#: cls_global_all index -> fusion.net index when the target uses fusion_style=cocoer
_FUSION_COCOER = {"1": "0", "2": "1", "5": "3", "8": "5"}
_UNUSED = (
    (r"^(encoder_(head|body|ctx)|decoder_(head|body|ctx))\.", "built but never called"),
    (r"^(query_embedding|query_embedding_gwt|en_pos_gwt|shar_after|cls_en_all)\.",
     "built but never called"),
)  # fmt: skip
#: entries of OpenAI's archive that are not weights
_CLIP_META = {"input_resolution", "context_length", "vocab_size"}

Transform = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class Rule:
    """Target key (optionally one level slice of a stacked parameter) and a transform."""

    target: str
    index: int | None = None
    transform: Transform | None = None
    note: str = ""


def _plain(cfg: Mapping[str, Any]) -> dict[str, Any]:
    from omegaconf import DictConfig, OmegaConf

    if isinstance(cfg, DictConfig):
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    return {k: (_plain(v) if isinstance(v, Mapping) else v) for k, v in cfg.items()}


def offline_net_config(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The net config with every download / weight-file option off (weights come from the
    converted state dict)."""
    conf = copy.deepcopy(_plain(cfg))
    conf.setdefault("_target_", "cocoer.models.cocoer.CocoER")
    hfe, vi = conf.setdefault("hfe", {}), conf.setdefault("vi", {})
    hfe["pretrained"], hfe["weights_path"] = False, None
    vi["clip_pretrained"], vi["clip_weights_path"] = None, None
    return conf


def build_target_model(cfg: Mapping[str, Any]) -> torch.nn.Module:
    """CocoER from a net config (with or without ``_target_``), never downloading weights
    (the weights come from the converted state dict)."""
    from cocoer.models import create_model

    return create_model(offline_net_config(cfg), pretrained=False)


def authors_switch_notes(cfg: Mapping[str, Any]) -> list[str]:
    """One line per option of ``cfg`` that is not the authors' (see AUTHORS_SWITCHES)."""
    conf, notes = _plain(cfg), []
    for path, want in AUTHORS_SWITCHES.items():
        node: Any = conf
        for part in path.split("."):
            node = node.get(part) if isinstance(node, Mapping) else None
        if node != want:
            value = "not set (the default)" if node is None else f"= {node!r}"
            notes.append(f"model.net.{path} {value}, the authors' is {want!r}")
    return notes


# ---------------------------------------------------------------------------- rules
def _fusion_reorder(d: int) -> Transform:
    """Reorder the last axis' four d-blocks from the authors' [h, b, c, t] to [c, b, h, t]."""
    perm = torch.cat([torch.arange(i * d, (i + 1) * d) for i in (2, 1, 0, 3)])
    return lambda t: t[..., perm]


def rule_for(key: str, target: Mapping[str, Tensor]) -> Rule | str:
    """The rule of one GWT.pth key, or why it has none (``"unused: ..."``, ``"combined"``
    for keys mapped jointly, anything else = unexplained)."""
    m = re.match(r"^backbone\.(head|body|context)\.(\d+)\.(.+)$", key)
    if m:
        return Rule(f"hfe.backbones.{_LEVEL[m[1]]}.features.{m[2]}.{m[3]}")
    m = re.match(r"^(head|body|context)_proj\.(weight|bias)$", key)
    if m:
        squeeze = (lambda t: t.flatten(1)) if m[2] == "weight" else None
        return Rule(f"hfe.proj.{_LEVEL[m[1]]}.{m[2]}", transform=squeeze, note="1x1 conv")
    m = re.match(r"^(encoder[123])\.(\d+)\.(.+)\.(weight|bias)$", key)
    if m:
        if m[3] in ("cross_attn.linears.1", "cross_attn.linears.2"):
            return "combined"  # k; v -> attn.kv
        if m[3] in _ENCODER_PARTS:
            return Rule(f"hfe.{_ENCODER_BLOCK[m[1]]}.{m[2]}.{_ENCODER_PARTS[m[3]]}.{m[4]}")
        return f"no rule for this part of an encoder block ({m[3]})"
    m = re.match(r"^ln_after\.(weight|bias)$", key)
    if m:
        return Rule(f"hfe.ln_after.{m[1]}", note="shared by the three levels")
    m = re.match(r"^cls_HFE_(ctx|body|head)\.(1|3|4)\.(weight|bias)$", key)
    if m:
        name = _FFN0[m[2]][0 if m[3] == "weight" else 1]
        return Rule(f"levels.{name}", index=_LEVEL[m[1]])
    if key == "W.weight":
        return Rule("vi.W.weight")
    m = re.match(r"^VI_ffn\.(1|3|5)\.(weight|bias)$", key)
    if m:
        return Rule(f"{_VI_FFN[m[1]]}.{m[2]}")
    m = re.match(r"^cls_global_all\.([124578])\.(weight|bias)$", key)
    if m:
        return _fusion_rule(m[1], m[2], target)
    if key in ("en_pos.col_embed.weight", "en_pos.row_embed.weight"):
        return "combined"
    for pattern, reason in _UNUSED:
        if re.match(pattern, key):
            return f"unused: {reason}"
    return "no rule matches this key"


def _fusion_rule(idx: str, leaf: str, target: Mapping[str, Tensor]) -> Rule | str:
    authors_style = "fusion.net.8.weight" in target
    if not authors_style and idx not in _FUSION_COCOER:
        return "dropped: FFN2 has no LayerNorm here (model.net.fusion_style is not 'authors')"
    dst = idx if authors_style else _FUSION_COCOER[idx]
    d = int(target["levels.ln_weight"].shape[-1]) if "levels.ln_weight" in target else 0
    reorder = idx == "1" or (idx == "2" and leaf == "weight")
    return Rule(
        f"fusion.net.{dst}.{leaf}",
        transform=_fusion_reorder(d) if reorder and d else None,
        note="inputs [h,b,c,t] -> [c,b,h,t]" if reorder else "",
    )


# ---------------------------------------------------------------------------- conversion
@dataclass
class _Assigner:
    """Writes source tensors into the target state dict and records it in the report."""

    target: dict[str, Tensor]
    report: ConversionReport
    filled: dict[str, set[int] | None] = field(default_factory=dict)

    def __call__(self, src_key: str, rule: Rule, value: Tensor) -> None:
        if rule.target not in self.target:
            self.report.dropped[src_key] = (
                f"the target config has no {rule.target}: its option is not the authors'"
            )
            return
        value = rule.transform(value) if rule.transform is not None else value
        dst = self.target[rule.target]
        expected = dst[rule.index] if rule.index is not None else dst
        if tuple(value.shape) != tuple(expected.shape):
            self.report.shape_mismatch.append(
                (src_key, rule.target, list(value.shape), list(expected.shape))
            )
            return
        if rule.index is None:
            self.target[rule.target] = value.to(dst.dtype).contiguous()
            self.filled[rule.target] = None
        else:
            dst[rule.index] = value.to(dst.dtype)
            slices = self.filled.setdefault(rule.target, set())
            if slices is not None:
                slices.add(rule.index)
        where = rule.target + (f"[{rule.index}]" if rule.index is not None else "")
        self.report.mapped.append((src_key, where, rule.note))


def _map_gwt(src: Mapping[str, Tensor], put: _Assigner) -> None:
    """Every GWT.pth key: by rule, jointly (k;v, position table), or reported."""
    for key, value in src.items():
        rule = rule_for(key, put.target)
        if isinstance(rule, Rule):
            put(key, rule, value)
        elif rule.startswith("unused: "):
            put.report.unused[key] = rule[len("unused: ") :]
        elif rule.startswith("dropped: "):
            put.report.dropped[key] = rule[len("dropped: ") :]
        elif rule != "combined":
            put.report.unexplained[key] = rule
    for key in sorted(src):  # attn.kv = [k rows; v rows]
        m = re.match(r"^(encoder[123])\.(\d+)\.cross_attn\.linears\.1\.(weight|bias)$", key)
        if m:
            v_key = key.replace("linears.1", "linears.2")
            if v_key not in src:
                put.report.unexplained[key] = f"its value projection {v_key} is missing"
                continue
            target = f"hfe.{_ENCODER_BLOCK[m[1]]}.{m[2]}.attn.kv.{m[3]}"
            put(f"{key} + {v_key}", Rule(target), torch.cat([src[key], src[v_key]]))
        elif ".cross_attn.linears.2." in key and key.replace("linears.2", "linears.1") not in src:
            put.report.unexplained[key] = "its key projection (linears.1) is missing"
    _map_position(src, put)


def _map_position(src: Mapping[str, Tensor], put: _Assigner) -> None:
    """hfe.pos.table [1, d_h, gh, gw]: channels = [col_embed[x]; row_embed[y]]."""
    col, row = src.get("en_pos.col_embed.weight"), src.get("en_pos.row_embed.weight")
    names = "en_pos.col_embed.weight + en_pos.row_embed.weight"
    if col is None or row is None:
        for k in ("en_pos.col_embed.weight", "en_pos.row_embed.weight"):
            if k in src:
                put.report.unexplained[k] = "needs both en_pos.col_embed and en_pos.row_embed"
        return
    if "hfe.pos.table" not in put.target:
        put.report.dropped[names] = "the target has no hfe.pos.table"
        return
    _, d_h, gh, gw = put.target["hfe.pos.table"].shape
    if col.shape[0] < gw or row.shape[0] < gh or col.shape[1] + row.shape[1] != d_h:
        shapes = [*col.shape, *row.shape]
        put.report.shape_mismatch.append((names, "hfe.pos.table", shapes, [1, d_h, gh, gw]))
        return
    table = torch.cat(
        [col[:gw].T.unsqueeze(1).expand(-1, gh, -1), row[:gh].T.unsqueeze(2).expand(-1, -1, gw)]
    ).unsqueeze(0)
    put(names, Rule("hfe.pos.table", note="[col_embed; row_embed] grid"), table)


def _map_vi_weights(w_src: Mapping[str, Tensor], gwt: Mapping[str, Tensor], put: _Assigner) -> None:
    """w.pth: its W.weight when GWT.pth has none; else compared (GWT.pth's wins)."""
    for key, value in w_src.items():
        name = f"w.pth:{key}"
        if key != "W.weight":
            put.report.unused[name] = "the V-I pre-alignment file: only W.weight is used"
        elif "W.weight" not in gwt:
            put(name, Rule("vi.W.weight"), value)
        else:
            same = value.shape == gwt["W.weight"].shape and torch.equal(
                value.float(), gwt["W.weight"].float()
            )
            put.report.unused[name] = (
                "GWT.pth's W.weight is used (the authors' load_state_dict overwrites w.pth's); "
                + ("the two are equal" if same else "THE TWO DIFFER")
            )


def _map_clip(clip: Mapping[str, Tensor], put: _Assigner) -> None:
    """OpenAI / open_clip CLIP keys -> vi.clip.<key>."""
    for key, value in clip.items():
        name = f"clip:{key}"
        if key in _CLIP_META:
            put.report.unused[name] = "metadata of OpenAI's archive, not a weight"
        elif key.endswith("attn_mask") and f"vi.clip.{key}" not in put.target:
            put.report.unused[name] = "causal attention mask (open_clip builds its own)"
        elif f"vi.clip.{key}" in put.target:
            put(name, Rule(f"vi.clip.{key}"), value)
        else:
            put.report.unexplained[name] = "not a key of the configured CLIP (vi.clip_name)"


def convert_authors(
    gwt: Mapping[str, Tensor] | str | os.PathLike[str],
    cfg: Mapping[str, Any],
    clip_weights: Mapping[str, Tensor] | str | os.PathLike[str] | None = None,
    vi_weights: Mapping[str, Tensor] | str | os.PathLike[str] | None = None,
) -> tuple[dict[str, Tensor], ConversionReport]:
    """Map the authors' GWT.pth (+ OpenAI's CLIP RN50, + w.pth) onto CocoER built from ``cfg``.

    Args:
        gwt / clip_weights / vi_weights: state dicts or files (read safely, see
            :mod:`cocoer.checkpoint.weight_files`).
        cfg: the net config (``model.net`` of a preset).
    Returns:
        ``(state_dict, report)``: a complete CocoER state dict (no ``net.`` prefix): every
        target the sources fill is filled, the rest keeps the value of the model built from
        ``cfg`` (listed in ``report.kept_from_config``).
    """
    read = lambda s: read_state_dict(s) if isinstance(s, (str, os.PathLike)) else dict(s)
    src = read(gwt)
    model = build_target_model(cfg)
    target = dict(model.state_dict())  # detached; the model is discarded afterwards
    notes = authors_switch_notes(cfg)
    if notes:
        notes.append("so the converted model is not numerically equal to the authors'")
    report = ConversionReport(notes=notes)
    put = _Assigner(target, report)
    _map_gwt(src, put)
    if vi_weights is not None:
        _map_vi_weights(read(vi_weights), src, put)
    if clip_weights is not None:
        _map_clip(read(clip_weights), put)
    if any(k.startswith("vi.clip.") for k in put.filled):
        clip_name = str(_plain(cfg).get("vi", {}).get("clip_name", "RN50"))
        _refresh_text_embeddings(model, target, clip_name)
        put.filled["vi.text_embeddings"] = None
        report.mapped.append(("(CLIP text tower)", "vi.text_embeddings", "recomputed"))
    for key in target:
        got = put.filled.get(key, "absent")
        if got == "absent":
            report.kept_from_config[key] = _kept_reason(key)
        elif isinstance(got, set) and len(got) < target[key].shape[0]:
            missing = sorted(set(range(target[key].shape[0])) - got)
            report.kept_from_config[key] = f"level slices {missing} not in the source"
    return target, report


def _kept_reason(key: str) -> str:
    if key.startswith("vi.clip.") or key == "vi.text_embeddings":
        return "CLIP is not in GWT.pth: give OpenAI's RN50 file (--clip-weights); RANDOM now"
    return "not in the source: keeps the config's initial value"


def _refresh_text_embeddings(
    model: torch.nn.Module, target: dict[str, Tensor], clip_name: str
) -> None:
    """vi.text_embeddings from the converted CLIP (the prompts of VIModule)."""
    import open_clip

    from cocoer.models.vi import PROMPT_TEMPLATE

    vi: Any = model.vi  # type: ignore[union-attr]
    clip_state = {k[len("vi.clip.") :]: v for k, v in target.items() if k.startswith("vi.clip.")}
    vi.clip.load_state_dict(clip_state, strict=True)
    tokenizer = open_clip.get_tokenizer(clip_name)
    prompts = [PROMPT_TEMPLATE.format(c.lower()) for c in model.class_names]  # type: ignore[union-attr]
    with torch.no_grad():
        w = vi.clip.encode_text(tokenizer(prompts), normalize=True).float()
    target["vi.text_embeddings"] = w.to(target["vi.text_embeddings"].dtype)


def lit_hyperparameters(model_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The ``hyper_parameters`` a :class:`CocoERLitModule` built from ``model_cfg`` saves
    (``net`` and every option of :class:`~cocoer.training.config.TrainingOptions`, defaults
    filled in from that dataclass), as plain containers."""
    from cocoer.training.config import training_hparams

    conf = _plain(model_cfg)
    if "net" not in conf:
        conf = {"net": conf}
    hp = {"net": offline_net_config(conf["net"]), **training_hparams(conf)}
    hp["init_from"] = None
    return _plain(hp)


def save_converted_checkpoint(
    state_dict: Mapping[str, Tensor],
    model_cfg: Mapping[str, Any],
    path: str | os.PathLike[str],
    report: ConversionReport | None = None,
    thresholds: float | None = None,
) -> Path:
    """Write a checkpoint that ``cocoer-infer``, ``cocoer-eval`` and ``model.init_from`` read.

    The Lightning checkpoint of :class:`~cocoer.training.module.CocoERLitModule` (``net.*``
    weights and the per-class ``thresholds``), written without building the module again.

    Args:
        state_dict: a complete CocoER state dict (from :func:`convert_authors`).
        model_cfg: the LightningModule config (``model`` of a preset: ``net``, ``loss``, ...)
            or a bare net config. Hyper-parameters are stored as plain containers only.
        thresholds: per-class decision threshold (default: the authors' demo value 0.26
            for multi-label, as the authors' weights come with no calibration).
    """
    import lightning

    from cocoer.constants import DEMO_FINAL

    hp = lit_hyperparameters(model_cfg)
    k = int(hp["net"]["num_classes"])
    weights = {f"net.{key}": value.detach().contiguous() for key, value in state_dict.items()}
    weights["thresholds"] = torch.full((k,), DEMO_FINAL if thresholds is None else thresholds)
    ckpt = {
        "state_dict": weights,
        "hyper_parameters": hp,
        "pytorch-lightning_version": lightning.__version__,
        "cocoer_conversion": report.to_json() if report is not None else None,
    }
    return atomic_write(path, lambda f: torch.save(ckpt, f))

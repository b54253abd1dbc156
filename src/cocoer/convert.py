"""Convert the authors' released CocoER weights (``model_GWT`` state dict) to this project.

ASSUMED source layout. The released weight file could not be inspected here; the layout is
the module tree of ``model_GWT`` in the authors' public ``models_sw.py`` (bisno/CocoER), as
read in a code index: a dict ``{"model": state_dict}`` (a bare state dict and a ``module.``
prefix are accepted too). Keys are mapped by name pattern and every value is shape-checked;
nothing is dropped silently: every source key is either mapped or listed with a reason, and
every target key not filled from the source is listed (it keeps the value of ``cfg``).

Mapping (L = head / body / context, or ctx; m = 0 context, 1 body, 2 head; target keys are
those of :class:`CocoER`, i.e. the checkpoint's keys without ``net.``):

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
cls_HFE_L.1 (Linear 49 d_h -> d)                    levels.ffn0_weight[m], ffn0_bias[m]
cls_HFE_L.3 (LayerNorm d)                           levels.ln_weight[m], ln_bias[m]
cls_HFE_L.4 (Linear d -> k)                         levels.theta_weight[m], theta_bias[m]
W.weight                                            vi.W.weight
VI_ffn.1 / VI_ffn.3 / VI_ffn.5                      vi.ffn1_hidden.0 / ffn1_hidden.2 / ffn1_out
cls_global_all.1 (LayerNorm 4d) / .2 (Linear)       fusion.net.0 / fusion.net.1, input blocks
                                                    reordered [h, b, c, t] -> [c, b, h, t]
cls_global_all.5 / .8                               fusion.net.3 / fusion.net.5
==================================================  =========================================

Not mapped (reported): ``cls_global_all.4`` / ``.7`` (extra LayerNorms), ``ln_after``
(LayerNorm after the cross-level blocks), and modules built but unused by the authors'
forward pass (``encoder_head/body/ctx``, ``decoder_*``, ``query_embedding*``,
``en_pos_gwt``, ``shar_after``, ``cls_en_all``). The frozen CLIP is not in the authors' file
(they load OpenAI's RN50 separately): give ``vi.clip_weights_path`` in ``cfg``.

The architectures are close, not identical (see :data:`SEMANTIC_NOTES`): a converted model is
a starting point for fine-tuning, not a bit-exact port. :data:`AUTHORS_NET_OVERRIDES` is the
net configuration whose shapes match the authors' model.
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

#: Net config values whose shapes match the authors' model_GWT (merge into a paper config).
AUTHORS_NET_OVERRIDES: dict[str, Any] = {
    "d": 256,
    "hfe": {
        "backbone": "resnet50",
        "image_size": 224,
        "patch_size": 1,
        "d_h": 256,
        "heads": 4,
        "mlp_ratio": 4.0,
        "depth": 3,
    },
    "vi": {"clip_name": "RN50", "feature": "repeat", "hidden_ratio": 0.25},
}

SEMANTIC_NOTES: tuple[str, ...] = (
    "authors' cross-attention takes the values from the un-normalised context tokens and "
    "adds the position embedding to queries/keys only; here the position embedding is added "
    "to the tokens and values are normalised",
    "authors' attention MLP uses Swish, this project GELU",
    "authors' level mapping applies GELU before FFN0's linear layer; this project does not",
    "authors' FFN2 has two extra LayerNorms (cls_global_all.4, .7) that are not mapped",
    "authors' V-I FFN starts with a GELU on the V-I feature; this project does not",
    "the converted model is therefore not numerically equivalent to the authors' model",
)

#: authors' level names -> level index (context, body, head)
_LEVEL = {"context": 0, "ctx": 0, "body": 1, "head": 2}
_ENCODER_LEVEL = {"encoder1": 2, "encoder2": 1, "encoder3": 0}
_BLOCK_NAME = {0: "t_cc", 1: "t_bc", 2: "t_hc"}
_UNUSED = (
    (r"^(encoder_(head|body|ctx)|decoder_(head|body|ctx))\.", "built but unused by the forward"),
    (r"^(query_embedding|query_embedding_gwt|en_pos_gwt|shar_after|cls_en_all)\.", "unused"),
    (r"^ln_after\.", "LayerNorm after the cross-level blocks: no counterpart here"),
    (r"^cls_global_all\.(4|7)\.", "extra LayerNorm of the authors' FFN2: no counterpart here"),
)


@dataclass
class ConversionReport:
    """What the conversion did, key by key.

    Attributes:
        mapped: ``(source key(s), target key, note)`` per assignment.
        unmapped_source: source key -> reason it was not used.
        shape_mismatch: ``(source key, target key, source shape, expected shape)``.
        kept_from_config: target keys not filled from the source (they keep cfg's value).
        notes: semantic differences and advice.
    """

    mapped: list[tuple[str, str, str]] = field(default_factory=list)
    unmapped_source: dict[str, str] = field(default_factory=dict)
    shape_mismatch: list[tuple[str, str, list[int], list[int]]] = field(default_factory=list)
    kept_from_config: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No shape mismatch and no unexplained source key."""
        return not self.shape_mismatch and not any(
            r.startswith("no rule") for r in self.unmapped_source.values()
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "mapped": [{"source": s, "target": t, "note": n} for s, t, n in self.mapped],
            "unmapped_source": dict(self.unmapped_source),
            "shape_mismatch": [
                {"source": s, "target": t, "source_shape": a, "expected_shape": b}
                for s, t, a, b in self.shape_mismatch
            ],
            "kept_from_config": list(self.kept_from_config),
            "notes": list(self.notes),
        }

    def summary(self) -> str:
        """A few lines for the terminal."""
        lines = [
            f"mapped assignments: {len(self.mapped)}",
            f"unmapped source keys: {len(self.unmapped_source)}",
            f"shape mismatches: {len(self.shape_mismatch)}",
            f"target keys kept from the config: {len(self.kept_from_config)}",
        ]
        lines += [f"  mismatch {s} -> {t}: {a} vs {b}" for s, t, a, b in self.shape_mismatch[:10]]
        reasons: dict[str, int] = {}
        for r in self.unmapped_source.values():
            reasons[r] = reasons.get(r, 0) + 1
        lines += [f"  unmapped ({n}): {r}" for r, n in sorted(reasons.items())]
        return "\n".join(lines)


def load_source_state_dict(src: Mapping[str, Tensor] | str | os.PathLike[str]) -> dict[str, Tensor]:
    """The authors' state dict from a file or a mapping (``model`` / ``state_dict``
    wrappers and a ``module.`` prefix removed). Raises FileNotFoundError / ValueError."""
    if isinstance(src, (str, os.PathLike)):
        path = Path(src)
        if not path.is_file():
            raise FileNotFoundError(f"authors' weight file not found: {path}")
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ValueError(f"cannot read {path} as a torch state dict: {exc}") from exc
    else:
        obj = src
    for key in ("model", "state_dict"):
        if isinstance(obj, Mapping) and key in obj and isinstance(obj[key], Mapping):
            obj = obj[key]
    if not isinstance(obj, Mapping) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise ValueError("the source is not a state dict of tensors")
    return {(k[7:] if k.startswith("module.") else k): v for k, v in obj.items()}


def build_target_model(cfg: Mapping[str, Any]) -> torch.nn.Module:
    """CocoER from a net config (with or without ``_target_``), never downloading weights:
    ``pretrained`` flags are switched off (local ``*weights_path`` files are honoured)."""
    from cocoer.models import create_model

    return create_model(cfg, pretrained=False)


def _plain(cfg: Mapping[str, Any]) -> dict[str, Any]:
    try:
        from omegaconf import DictConfig, OmegaConf

        if isinstance(cfg, DictConfig):
            return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    except ImportError:  # pragma: no cover
        pass
    return {k: (_plain(v) if isinstance(v, Mapping) else v) for k, v in cfg.items()}


# ---------------------------------------------------------------------------- rules
Transform = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class _Rule:
    """Target key (optionally one level slice of a stacked parameter) and a transform."""

    target: str
    index: int | None = None
    transform: Transform | None = None
    note: str = ""


def _rule_for(key: str, fusion_d: int | None) -> _Rule | str:
    """The rule of one source key, or the reason it is not mapped."""
    m = re.match(r"^backbone\.(head|body|context)\.(\d+)\.(.+)$", key)
    if m:
        return _Rule(f"hfe.backbones.{_LEVEL[m[1]]}.features.{m[2]}.{m[3]}")
    m = re.match(r"^(head|body|context)_proj\.(weight|bias)$", key)
    if m:
        squeeze = (lambda t: t.flatten(1)) if m[2] == "weight" else None
        return _Rule(f"hfe.proj.{_LEVEL[m[1]]}.{m[2]}", transform=squeeze, note="1x1 conv")
    m = re.match(r"^(encoder[123])\.(\d+)\.(.+)$", key)
    if m:
        blk = f"hfe.{_BLOCK_NAME[_ENCODER_LEVEL[m[1]]]}.{m[2]}"
        names = {
            "norm1": "norm_q",
            "norm3": "norm_kv",
            "norm2": "norm_mlp",
            "cross_attn.linears.0": "attn.q",
            "cross_attn.linears.3": "attn.out",
            "feed_forward.w_1": "mlp.0",
            "feed_forward.w_2": "mlp.3",
        }
        part, _, leaf = m[3].rpartition(".")
        if part in names:
            return _Rule(f"{blk}.{names[part]}.{leaf}")
        if part in ("cross_attn.linears.1", "cross_attn.linears.2"):
            return "merged into attn.kv"  # handled by the k/v concatenation below
        return f"no rule for this part of an encoder block ({part})"
    m = re.match(r"^cls_HFE_(ctx|body|head)\.(\d+)\.(weight|bias)$", key)
    if m:
        level, idx, leaf = _LEVEL[m[1]], m[2], m[3]
        table = {
            "1": {"weight": "levels.ffn0_weight", "bias": "levels.ffn0_bias"},
            "3": {"weight": "levels.ln_weight", "bias": "levels.ln_bias"},
            "4": {"weight": "levels.theta_weight", "bias": "levels.theta_bias"},
        }
        if idx in table:
            return _Rule(table[idx][leaf], index=level)
        return f"no rule for cls_HFE layer {idx}"
    if key == "W.weight":
        return _Rule("vi.W.weight")
    m = re.match(r"^VI_ffn\.(\d+)\.(weight|bias)$", key)
    if m:
        target = {"1": "vi.ffn1_hidden.0", "3": "vi.ffn1_hidden.2", "5": "vi.ffn1_out"}
        if m[1] in target:
            return _Rule(f"{target[m[1]]}.{m[2]}")
        return f"no rule for VI_ffn layer {m[1]}"
    m = re.match(r"^cls_global_all\.(1|2|5|8)\.(weight|bias)$", key)
    if m:
        dst = {"1": "fusion.net.0", "2": "fusion.net.1", "5": "fusion.net.3", "8": "fusion.net.5"}
        reorder = None
        if fusion_d is not None and (m[1] == "1" or (m[1] == "2" and m[2] == "weight")):
            reorder = _fusion_reorder(fusion_d)
        return _Rule(
            f"{dst[m[1]]}.{m[2]}",
            transform=reorder,
            note="inputs [h,b,c,t]->[c,b,h,t]" if reorder else "",
        )
    for pattern, reason in _UNUSED:
        if re.match(pattern, key):
            return reason
    if key.startswith("en_pos."):
        return "combined into hfe.pos.table"
    return "no rule matches this key"


def _fusion_reorder(d: int) -> Transform:
    """Reorder the last axis' four d-blocks from the authors' [h, b, c, t] to [c, b, h, t]."""
    perm = torch.cat([torch.arange(i * d, (i + 1) * d) for i in (2, 1, 0, 3)])
    return lambda t: t[..., perm]


def convert_authors_state_dict(
    state_dict_or_path: Mapping[str, Tensor] | str | os.PathLike[str], cfg: Mapping[str, Any]
) -> tuple[dict[str, Tensor], ConversionReport]:
    """Map the authors' weights onto CocoER built from ``cfg`` (a net config).

    Returns:
        ``(state_dict, report)``: a COMPLETE state dict of :class:`CocoER` (keys without the
        Lightning ``net.`` prefix) in which every target the source could fill is filled and
        the rest keeps the value of the model built from ``cfg``; the report lists both
        sides (see :class:`ConversionReport`).
    """
    src = load_source_state_dict(state_dict_or_path)
    model = build_target_model(cfg)
    target = {k: v.detach().clone() for k, v in model.state_dict().items()}
    filled: dict[str, set[int] | None] = {}  # key -> filled level slices (None = whole)
    report = ConversionReport(notes=list(SEMANTIC_NOTES))
    fusion_w = target.get("fusion.net.1.weight")
    fusion_d = int(fusion_w.shape[0]) if fusion_w is not None else None

    def assign(src_key: str, rule: _Rule, value: Tensor) -> None:
        if rule.target not in target:
            report.unmapped_source[src_key] = f"no target key {rule.target} in this config"
            return
        value = rule.transform(value) if rule.transform is not None else value
        dst = target[rule.target]
        expected = dst[rule.index] if rule.index is not None else dst
        if tuple(value.shape) != tuple(expected.shape):
            report.shape_mismatch.append(
                (src_key, rule.target, list(value.shape), list(expected.shape))
            )
            return
        if rule.index is None:
            target[rule.target] = value.to(dst.dtype).clone()
            filled[rule.target] = None
        else:
            dst[rule.index] = value.to(dst.dtype)
            slices = filled.setdefault(rule.target, set())
            if slices is not None:
                slices.add(rule.index)
        where = rule.target + (f"[{rule.index}]" if rule.index is not None else "")
        report.mapped.append((src_key, where, rule.note))

    for key, value in src.items():
        rule = _rule_for(key, fusion_d)
        if isinstance(rule, str):
            if rule not in ("merged into attn.kv", "combined into hfe.pos.table"):
                report.unmapped_source[key] = rule
            continue
        assign(key, rule, value)

    # attn.kv = [k rows; v rows] from linears.1 (k) and linears.2 (v)
    for key in sorted(src):
        m = re.match(r"^(encoder[123])\.(\d+)\.cross_attn\.linears\.1\.(weight|bias)$", key)
        if not m:
            continue
        v_key = key.replace("linears.1", "linears.2")
        blk = f"hfe.{_BLOCK_NAME[_ENCODER_LEVEL[m[1]]]}.{m[2]}"
        if v_key not in src:
            report.unmapped_source[key] = f"its value projection {v_key} is missing"
            continue
        assign(
            f"{key} + {v_key}", _Rule(f"{blk}.attn.kv.{m[3]}"), torch.cat([src[key], src[v_key]])
        )
    for key in src:  # a value projection without its key projection
        if (
            re.search(r"cross_attn\.linears\.2\.", key)
            and key.replace("linears.2", "linears.1") not in src
        ):
            report.unmapped_source[key] = "its key projection (linears.1) is missing"

    # position table [1, d_h, gh, gw]: channels = [col_embed[x]; row_embed[y]]
    col, row = src.get("en_pos.col_embed.weight"), src.get("en_pos.row_embed.weight")
    if col is not None and row is not None and "hfe.pos.table" in target:
        _, d_h, gh, gw = target["hfe.pos.table"].shape
        if col.shape[0] >= gw and row.shape[0] >= gh and col.shape[1] + row.shape[1] == d_h:
            table = torch.cat(
                [
                    col[:gw].T.unsqueeze(1).expand(-1, gh, -1),
                    row[:gh].T.unsqueeze(2).expand(-1, -1, gw),
                ]
            ).unsqueeze(0)
            target["hfe.pos.table"] = table.to(target["hfe.pos.table"].dtype).contiguous()
            filled["hfe.pos.table"] = None
            report.mapped.append(
                ("en_pos.col_embed.weight + en_pos.row_embed.weight", "hfe.pos.table", "")
            )
        else:
            report.shape_mismatch.append(
                (
                    "en_pos.col_embed.weight + en_pos.row_embed.weight",
                    "hfe.pos.table",
                    [*col.shape, *row.shape],
                    list(target["hfe.pos.table"].shape),
                )
            )
    elif col is not None or row is not None:
        for k in ("en_pos.col_embed.weight", "en_pos.row_embed.weight"):
            if k in src:
                report.unmapped_source[k] = "needs both en_pos.col_embed and en_pos.row_embed"

    for key in target:
        got = filled.get(key, "absent")
        if got == "absent":
            report.kept_from_config.append(key)
        elif isinstance(got, set) and len(got) < target[key].shape[0]:
            missing = sorted(set(range(target[key].shape[0])) - got)
            report.kept_from_config.append(f"{key} (level slices {missing})")
    if any(k.startswith("vi.clip.") for k in report.kept_from_config):
        report.notes.append(
            "CLIP weights are not in the authors' file: they come from the config "
            "(set vi.clip_weights_path to OpenAI's RN50 file)"
        )
    return target, report


def save_converted_checkpoint(
    state_dict: Mapping[str, Tensor],
    cfg: Mapping[str, Any],
    path: str | os.PathLike[str],
    report: ConversionReport | None = None,
    thresholds: float | None = None,
) -> Path:
    """Write a checkpoint that ``CocoERLitModule.load_from_checkpoint`` (and
    ``cocoer-infer --ckpt``) reads: the converted weights, the net config, and per-class
    thresholds (default: the authors' demo value 0.26 for multi-label, as the authors'
    weights come with no calibration)."""
    import lightning

    from cocoer.infer.thresholds import DEMO_FINAL
    from cocoer.lit_module import CocoERLitModule

    conf = _plain(cfg)
    build_conf = copy.deepcopy(conf)
    build_conf.setdefault("hfe", {})["pretrained"] = False
    build_conf.setdefault("vi", {})["clip_pretrained"] = None
    module = CocoERLitModule(net=build_conf)
    module.net.load_state_dict(dict(state_dict), strict=True)
    k = module.net.num_classes
    module.thresholds.copy_(torch.full((k,), DEMO_FINAL if thresholds is None else thresholds))
    ckpt = {
        "state_dict": module.state_dict(),
        "hyper_parameters": dict(module.hparams),
        "pytorch-lightning_version": lightning.__version__,
        "cocoer_conversion": report.to_json() if report is not None else None,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, path)
    return path

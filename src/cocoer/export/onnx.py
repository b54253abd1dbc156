"""Export a trained CocoER to ONNX: the whole model, workspace included, as one tensor graph.

The workspace is closed-form (docs/method.md section 4: the exclusion order is the descending
order of f, the simplex QP is solved face by face, the inner step of FFN0 has a closed form),
so the graph from the three windows and the two boxes to every output ``cocoer-infer``
reports has no solver loop and no autograd.

Inputs (float32, dynamic batch axis ``batch``):

- ``context``, ``body``, ``head`` [B, 3, S, S]: RGB windows, channels first, scaled to
  [0, 1] and normalised with the ImageNet mean / std (:mod:`cocoer.data.window_arrays`);
- ``body_box``, ``head_box`` [B, 4]: ``(x1, y1, x2, y2)`` in the context frame, in [0, 1].

Outputs: see :data:`OUTPUTS` (and :data:`VAD_OUTPUTS` with the VAD head). The file's
``metadata_props`` (JSON strings, keys ``cocoer.*``) hold the class names, the thresholds
and the preprocessing, so the ``.onnx`` file alone is enough for
:class:`cocoer.infer.onnx_engine.OnnxPredictor`.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from cocoer.constants import (
    DEMO_FINAL,
    DEMO_LEVEL,
    DEMO_VI,
    IMAGENET_MEAN,
    IMAGENET_STD,
    LEVELS,
    UNCALIBRATED_LEVEL,
)
from cocoer.errors import InputError, check_choice
from cocoer.export import DEFAULT_OPSET
from cocoer.models.cocoer import CocoER
from cocoer.models.heads import LevelMappings
from cocoer.utils.files import atomic_save_as

#: Layout version of the metadata written below.
METADATA_VERSION = 1
#: protobuf's limit: larger models keep their weights in ``<out>.data`` next to the file.
PROTOBUF_LIMIT = 2**31 - 1
QUANTIZE_KINDS = ("int8",)
#: Ops kept in float32 in the fp16 model (no float16 kernel in ONNX Runtime).
FP32_OPS = ("IsInf", "IsNaN")

INPUTS: dict[str, str] = {
    "context": "float32 [B,3,S,S] whole image resized to S x S, normalised",
    "body": "float32 [B,3,S,S] body crop resized to S x S, normalised",
    "head": "float32 [B,3,S,S] head crop resized to S x S, normalised",
    "body_box": "float32 [B,4] (x1,y1,x2,y2) in the context frame, in [0,1]",
    "head_box": "float32 [B,4] (x1,y1,x2,y2) in the context frame, in [0,1]",
}
OUTPUTS: dict[str, str] = {
    "logits_G": "float32 [B,k] final logits (FFN2 on z_G)",
    "logits_t": "float32 [B,k] V-I logits l_t",
    "y_t": "float32 [B,k] V-I pseudo label (0/1 multi-label, one-hot single-label)",
    "logits_levels": "float32 [B,3,k] level logits l_m, levels context, body, head",
    "f": "float32 [B,3] level losses f_m = L_hier(l_m, y_t)",
    "order": "int64 [B,3] exclusion sequence, level indices, first excluded first",
    "delta_sq": "float32 [B] |delta|^2 = mu^T K mu",
}
#: Further outputs of a model with the VAD head (docs/method.md section 10).
VAD_OUTPUTS: dict[str, str] = {
    "vad_G": "float32 [B,3] valence, arousal, dominance (1..10) from z_G",
    "vad_t": "float32 [B,3] valence, arousal, dominance from the V-I feature z_t",
    "vad_levels": "float32 [B,3,3] valence, arousal, dominance from z_m, levels c, b, h",
}


def outputs_of(net: CocoER) -> dict[str, str]:
    """The outputs of ``net``'s export: :data:`OUTPUTS`, and :data:`VAD_OUTPUTS` when it has
    the VAD head."""
    return {**OUTPUTS, **(VAD_OUTPUTS if net.vad is not None else {})}


class ExportedCocoER(nn.Module):
    """CocoER with positional inputs and a tuple of its outputs (:func:`outputs_of`, what
    the exporter traces); shapes as in :data:`INPUTS` / :data:`OUTPUTS`."""

    def __init__(self, net: CocoER) -> None:
        super().__init__()
        self.net = net
        self.output_keys = tuple(outputs_of(net))

    def forward(
        self, context: Tensor, body: Tensor, head: Tensor, body_box: Tensor, head_box: Tensor
    ) -> tuple[Tensor, ...]:
        batch = {
            "context": context,
            "body": body,
            "head": head,
            "body_box": body_box,
            "head_box": head_box,
        }
        out = self.net(batch)
        return tuple(out[k] for k in self.output_keys)


@dataclass
class ExportReport:
    """What :func:`export_onnx` wrote: the model file(s), its size and options."""

    path: Path
    bytes: int
    opset: int
    external_data: bool
    quantize: str | None
    fp16: bool
    extra_files: list[Path] = field(default_factory=list)


def check_exportable(net: CocoER, where: str = "model") -> None:
    """Refuse what is not a plain tensor graph (a one-line :class:`InputError`)."""
    if not isinstance(net.levels, LevelMappings):
        raise InputError(
            where,
            f"level mapping {getattr(net.levels, 'kind', 'mlp')!r} computes its inner "
            "step with torch.func autograd at inference and cannot be exported to ONNX; "
            "only mapping=fc (closed-form inner step) can",
        )
    if net.workspace.qp_method != "closed_form":
        raise InputError(
            where,
            f"workspace.qp_method={net.workspace.qp_method!r} is an iterative solver; "
            "only closed_form exports to ONNX",
        )


def build_metadata(
    net: CocoER,
    thresholds: Tensor,
    image_size: int,
    net_config: dict[str, Any] | None = None,
    source: str = "",
    variant: str = "fp32",
) -> dict[str, str]:
    """The ``cocoer.*`` metadata_props (every value a JSON string)."""
    meta: dict[str, Any] = {
        "cocoer.format_version": METADATA_VERSION,
        "cocoer.class_names": list(net.class_names),
        "cocoer.multi_label": bool(net.multi_label),
        "cocoer.levels": list(LEVELS),
        "cocoer.infer.thresholds": {
            "calibrated": [float(v) for v in thresholds.tolist()],
            "uncalibrated_level": UNCALIBRATED_LEVEL,
            "demo": {"final": DEMO_FINAL, "level": DEMO_LEVEL, "vi": DEMO_VI},
        },
        "cocoer.preprocessing": {
            "image_size": int(image_size),
            "channel_order": net.preprocess.channel_order,
            "box_rounding": net.preprocess.box_rounding,
            "layout": "NCHW",
            "scale": 1.0 / 255.0,
            "mean": list(IMAGENET_MEAN),
            "std": list(IMAGENET_STD),
            "resize": "crop to the box widened to whole pixels, PIL bilinear to S x S",
            "context": "whole image resized to S x S (aspect ratio not kept)",
            "box_format": "x1,y1,x2,y2 in the context frame normalised to [0,1]",
        },
        "cocoer.inputs": INPUTS,
        "cocoer.outputs": outputs_of(net),
        "cocoer.variant": variant,
        "cocoer.source_checkpoint": Path(source).name if source else "",
        "cocoer.net_config": net_config or {},
    }
    return {k: json.dumps(v) for k, v in meta.items()}


def example_inputs(image_size: int, batch: int = 2) -> tuple[Tensor, ...]:
    """Deterministic example inputs for tracing: 3 windows [B,3,S,S], 2 boxes [B,4]."""
    gen = torch.Generator().manual_seed(0)
    wins = [torch.randn(batch, 3, image_size, image_size, generator=gen) for _ in range(3)]
    body = torch.tensor([[0.1, 0.1, 0.7, 0.9]]).repeat(batch, 1)
    head = torch.tensor([[0.3, 0.1, 0.5, 0.3]]).repeat(batch, 1)
    return (*wins, body, head)


def trace_to_onnx(net: CocoER, image_size: int, out_path: Path, opset: int) -> None:
    """Export ``net`` (fp32, eval) with a dynamic batch axis; no metadata yet."""
    wrapper = ExportedCocoER(net).eval()
    batch = torch.export.Dim("batch", min=1, max=4096)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            wrapper,
            example_inputs(image_size),
            dynamo=True,
            input_names=list(INPUTS),
            output_names=list(wrapper.output_keys),
            dynamic_shapes={name: {0: batch} for name in INPUTS},
            opset_version=opset,
            external_data=False,
            verbose=False,
        )
    if program is None:  # pragma: no cover - dynamo=True always returns a program
        raise RuntimeError("torch.onnx.export returned no program")
    program.save(str(out_path), external_data=None)


def finalize(path: Path, metadata: dict[str, str], out_path: Path) -> tuple[bool, list[Path]]:
    """Write ``path``'s model with ``metadata`` to ``out_path`` (external data when the model
    is over protobuf's 2 GB) and check it with ``onnx.checker``. Returns (external, files)."""
    import onnx

    model = onnx.load(str(path))
    keep = [p for p in model.metadata_props if p.key not in metadata]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=value)
    external = model.ByteSize() > PROTOBUF_LIMIT - 2**20
    data_name = out_path.name + ".data"
    atomic_save_as(  # an external weights file is written first, beside the temporary file
        out_path,
        lambda tmp: onnx.save_model(
            model,
            str(tmp),
            save_as_external_data=external,
            all_tensors_to_one_file=True,
            location=data_name,
        ),
    )
    onnx.checker.check_model(str(out_path), full_check=False)
    return external, ([out_path.parent / data_name] if external else [])


def quantize_int8(src: Path, dst: Path) -> None:
    """Dynamic int8 quantisation of the weights of MatMul / Gemm / Conv (activations
    quantised at run time); MatMuls between two activations (the workspace's Gram matrices,
    attention scores) stay in float32 (``MatMulConstBOnly``)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # The exporter's value_info can disagree with onnx's shape inference, which the
    # quantiser runs first: drop it (shapes are inferred again).
    model = onnx.load(str(src))
    del model.graph.value_info[:]
    plain = src.with_name(src.stem + ".noinfo.onnx")
    onnx.save_model(model, str(plain))
    quantize_dynamic(
        str(plain),
        str(dst),
        weight_type=QuantType.QInt8,
        extra_options={"MatMulConstBOnly": True},
    )


def convert_fp16(src: Path, dst: Path) -> None:
    """float16 weights and activations (inputs / outputs stay float32), for the CUDA provider."""
    import onnx
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16
    from onnxscript import ir

    model = convert_float_to_float16(
        onnx.load(str(src)),
        keep_io_types=True,
        op_block_list=[*DEFAULT_OP_BLOCK_LIST, *FP32_OPS],
    )
    # the converter can insert the same Cast twice (one per blocked consumer): keep the first
    produced: set[str] = set()
    nodes = []
    for node in model.graph.node:
        if node.op_type == "Cast" and node.output and all(o in produced for o in node.output):
            continue
        produced.update(node.output)
        nodes.append(node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    ir_model = ir.from_proto(model)
    ir_model.graph.sort()  # the converter appends its input casts after their users
    onnx.save_model(ir.to_proto(ir_model), str(dst))


def export_net(
    net: CocoER,
    thresholds: Tensor,
    image_size: int,
    out_path: str | os.PathLike[str],
    *,
    opset: int = DEFAULT_OPSET,
    quantize: str | None = None,
    fp16: bool = False,
    net_config: dict[str, Any] | None = None,
    source: str = "",
) -> ExportReport:
    """Export an in-memory model (see :func:`export_onnx`)."""
    if quantize is not None:
        check_choice("quantisation", quantize, QUANTIZE_KINDS)
    if quantize and fp16:
        raise InputError("quantize and fp16", "choose int8 quantisation or fp16, not both")
    check_exportable(net, source or "model")
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    variant = quantize or ("fp16" if fp16 else "fp32")
    meta = build_metadata(net, thresholds, image_size, net_config, source, variant)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".onnx-export-") as tmp:
        raw = Path(tmp) / "fp32.onnx"
        trace_to_onnx(net.eval(), image_size, raw, opset)
        if quantize == "int8":
            converted = Path(tmp) / "int8.onnx"
            quantize_int8(raw, converted)
            raw = converted
        elif fp16:
            converted = Path(tmp) / "fp16.onnx"
            convert_fp16(raw, converted)
            raw = converted
        external, extra = finalize(raw, meta, out)
    size = out.stat().st_size + sum(p.stat().st_size for p in extra)
    return ExportReport(out, size, opset, external, quantize, fp16, extra)


def export_onnx(
    ckpt_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    opset: int = DEFAULT_OPSET,
    quantize: str | None = None,
    fp16: bool = False,
    image_size: int | None = None,
    overwrite: bool = False,
) -> ExportReport:
    """Export the checkpoint's model to ``out_path`` (checked with ``onnx.checker``).

    Args:
        ckpt_path: a CocoER Lightning checkpoint (read with ``weights_only=True``).
        out_path: the ``.onnx`` file (plus ``<out>.data`` when the model is over 2 GB).
        opset: ONNX opset (>= 18).
        quantize: None (float32) or ``int8`` (dynamic quantisation, CPU).
        fp16: float16 model (for the CUDA provider; inputs / outputs stay float32).
        image_size: S when the checkpoint does not record it.
        overwrite: replace an existing ``out_path`` (never the checkpoint itself).
    Raises:
        cocoer.errors.InputError: unreadable checkpoint, an output that exists or is
            the input, or a model that cannot be exported (``mapping=mlp``, an iterative QP
            solver).
    """
    from cocoer.export.safetensors import input_files
    from cocoer.utils.files import refuse_overwrite

    out = Path(out_path)
    refuse_overwrite([out, out.with_name(out.name + ".data")], overwrite, input_files(ckpt_path))
    from cocoer.checkpoint.model import load_model

    loaded = load_model(ckpt_path)
    size = image_size or loaded.image_size
    if size is None:
        raise InputError(ckpt_path, "the window size is not recorded; pass image_size")
    return export_net(
        loaded.net,
        loaded.thresholds,
        size,
        out_path,
        opset=opset,
        quantize=quantize,
        fp16=fp16,
        net_config=loaded.net_config,
        source=str(ckpt_path),
    )

"""Options of the model's parts (the ``model.net`` node of the Hydra config) and their
allowed choices, next to the modules they configure (:mod:`~cocoer.models.hfe`,
:mod:`~cocoer.models.vi`, :mod:`~cocoer.models.vad`, :mod:`~cocoer.models.cocoer`), kept
torch-free so that the Hydra schema and the console scripts' help read them without
importing torch. Each dataclass checks its own fields (``check()``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from omegaconf import MISSING

from cocoer.errors import ConfigError, check_choice
from cocoer.models.preprocess import PreprocessConfig
from cocoer.workspace.config import LOSS_KINDS, WorkspaceConfig

#: name -> (torchvision constructor, weights enum name, output channels)
TORCHVISION_BACKBONES: dict[str, tuple[str, str, int]] = {
    "resnet18": ("resnet18", "ResNet18_Weights", 512),
    "resnet34": ("resnet34", "ResNet34_Weights", 512),
    "resnet50": ("resnet50", "ResNet50_Weights", 2048),
    "resnet101": ("resnet101", "ResNet101_Weights", 2048),
    "resnet152": ("resnet152", "ResNet152_Weights", 2048),
    "vgg16": ("vgg16", "VGG16_Weights", 512),
    "densenet161": ("densenet161", "DenseNet161_Weights", 2208),
}
BACKBONES: tuple[str, ...] = (*TORCHVISION_BACKBONES, "tiny_cnn")
BACKBONE_NORMS = ("running", "per_sample")
POS_SAMPLINGS = ("cocoer", "authors")
POS_INJECTIONS = ("tokens", "qk")
ATTN_VALUES = ("normed", "raw")
KV_SOURCES = ("updated", "initial")
MLP_ACTIVATIONS = ("gelu", "silu")
LN_AFTER = ("none", "shared")
BOX_QUANTIZATIONS = ("none", "int224")
VI_FEATURES = ("product", "repeat")
CLIP_INPUTS = ("renormalize", "passthrough")
VI_INPUT_ACTIVATIONS = ("none", "gelu")
CLIP_PRECISIONS = ("fp32", "fp16")
INPUT_ACTIVATIONS = ("none", "gelu")
FUSION_STYLES = ("cocoer", "authors")
MAPPINGS = ("fc", "mlp")


@dataclass
class HFEConfig:
    """Options of :class:`HFE` (the ``model.net.hfe`` node of the Hydra config).

    backbone: backbone name (one network per level, not shared); pretrained /
    weights_path: ImageNet weights (download) or a local file; image_size: S of the
    windows (fixes the feature map size); patch_size: p; d_h: token width; heads /
    head_dim / mlp_ratio / depth / dropout: the cross-level attention blocks;
    tiny_width: channel width of the project's ``tiny_cnn`` backbone.

    The options after ``tiny_width`` reproduce the authors' released code (docs/method.md
    section 9; defaults: the paper's method): backbone_norm ``running`` | ``per_sample``
    (every BatchNorm uses each image's own statistics, M2); pos_sampling ``cocoer`` |
    ``authors`` (M5, see :class:`PositionEmbedding2D`); pos_injection ``tokens`` | ``qk``,
    attn_value ``normed`` | ``raw``, mlp_activation ``gelu`` | ``silu`` (M6, M7, M10, see
    :class:`CrossLevelBlock`); kv_source ``updated`` | ``initial`` (body and head attend the
    projected context before any block at every depth, M8); ln_after ``none`` | ``shared``
    (one LayerNorm(d_h) ``hfe.ln_after`` on the three levels' tokens after the blocks, M13).
    """

    backbone: str = "resnet50"
    pretrained: bool = False
    weights_path: str | None = None
    image_size: int = 224
    patch_size: int = 2
    d_h: int = 1024
    heads: int = 3
    head_dim: int | None = None
    mlp_ratio: float = 2.0
    depth: int = 1
    dropout: float = 0.0
    tiny_width: int = 16
    backbone_norm: str = "running"  # running | per_sample (M2)
    pos_sampling: str = "cocoer"  # cocoer | authors (M5)
    pos_injection: str = "tokens"  # tokens | qk (M6)
    attn_value: str = "normed"  # normed | raw (M7)
    kv_source: str = "updated"  # updated | initial (M8)
    mlp_activation: str = "gelu"  # gelu | silu (M10)
    ln_after: str = "none"  # none | shared (M13)

    def check(self, where: str = "") -> None:
        """Raise :class:`~cocoer.errors.ConfigError` naming the field (``where`` + name) when
        a size is < 1 or a choice is unknown."""
        for name in ("image_size", "patch_size", "d_h", "heads", "depth"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{where}{name} = {getattr(self, name)} must be >= 1")
        for name, choices in (
            ("backbone", BACKBONES),
            ("backbone_norm", BACKBONE_NORMS),
            ("pos_sampling", POS_SAMPLINGS),
            ("pos_injection", POS_INJECTIONS),
            ("attn_value", ATTN_VALUES),
            ("kv_source", KV_SOURCES),
            ("mlp_activation", MLP_ACTIVATIONS),
            ("ln_after", LN_AFTER),
        ):
            check_choice(f"{where}{name}", getattr(self, name), choices)


@dataclass
class VIConfig:
    """Options of :class:`VIModule` (the ``model.net.vi`` node of the Hydra config).

    clip_name / clip_pretrained / clip_weights_path: which CLIP and its weights (an
    open_clip pretrained tag, downloaded, or a local file); tau: the multi-label
    pseudo-label threshold; feature: ``product`` (rows w_j * U, the paper) or ``repeat``
    (U repeated k times, the authors' released code, docs/method.md section 9); hidden_ratio:
    FFN1's hidden width as a fraction of k*D.

    The authors' released code (docs/method.md section 9): clip_input ``renormalize`` (the
    ImageNet-normalised window is mapped back to [0, 1] and normalised with CLIP's
    statistics) or ``passthrough`` (it goes to CLIP as is, V2); input_activation ``none`` |
    ``gelu`` (a GELU on the V-I feature before FFN1, the authors' ``VI_ffn.0``, V6);
    clip_precision ``fp32`` | ``fp16`` (CLIP's weights in float16 on CUDA, as the authors'
    ``clip.load`` does on a GPU, V3; on the CPU CLIP always runs in float32; the weights are
    converted on the first CUDA forward, so a state dict saved afterwards holds CLIP in
    float16).
    """

    clip_name: str = "RN50"
    clip_pretrained: str | None = None
    clip_weights_path: str | None = None
    tau: float = 0.3
    feature: str = "product"
    hidden_ratio: float = 0.25
    clip_input: str = "renormalize"  # renormalize | passthrough (V2)
    input_activation: str = "none"  # none | gelu (V6)
    clip_precision: str = "fp32"  # fp32 | fp16 (V3; CUDA only, the CPU stays fp32)

    def check(self, where: str = "") -> None:
        """Raise :class:`~cocoer.errors.ConfigError` naming the field (``where`` + name) when
        tau is outside (0, 1) or a choice is unknown."""
        if not 0 < self.tau < 1:
            raise ConfigError(f"{where}tau = {self.tau} must be in (0, 1)")
        for name, choices in (
            ("feature", VI_FEATURES),
            ("clip_input", CLIP_INPUTS),
            ("input_activation", VI_INPUT_ACTIVATIONS),
            ("clip_precision", CLIP_PRECISIONS),
        ):
            check_choice(f"{where}{name}", getattr(self, name), choices)


@dataclass
class VADConfig:
    """Options of :class:`VADHead` (``model.net.vad``).

    enabled: build the head and return ``vad_G``, ``vad_t`` and ``vad_levels`` (default off:
    the paper's model).
    """

    enabled: bool = False


@dataclass
class CocoERConfig:
    """Options of :class:`CocoER` (the ``model.net`` node of the Hydra config).

    num_classes: k (required). multi_label: EMOTIC-style (True) or single-label (False),
    required. class_names: prompt vocabulary (defaults by k). d: width of z_m, z_t.
    loss_kind: ``bce`` | ``l2`` (multi-label) or ``ce`` (single-label): L_hier (default by
    multi_label). mapping: structure of FFN0 in the level mappings: ``fc`` (the paper's;
    closed-form inner step) or ``mlp`` (deeper, per-sample autograd inner step; Fig. 3).
    hfe / vi / workspace: the options of the parts. vad: the optional valence / arousal /
    dominance head (:class:`~cocoer.models.vad.VADConfig`, off: the paper's model).

    The authors' released code (docs/method.md section 9): level_input_activation ``none``
    | ``gelu`` (a GELU before FFN0's Linear, as the authors' ``cls_HFE_*.0``; the inner step
    then uses |GELU(x)|^2, M14); fusion_style ``cocoer`` | ``authors`` (FFN2 with a leading
    GELU and two more LayerNorms, F2/F3, see :class:`FusionHead`); box_quantization ``none``
    | ``int224`` (body / head boxes rounded to integers of the S x S frame before the
    position embedding, P6); preprocess: how inference windows are made for this model
    (channel order, box rounding: :class:`cocoer.models.preprocess.PreprocessConfig`, kept as
    ``model.preprocess`` and applied by ``cocoer-infer``, P1/P5).

    Build a model with :func:`cocoer.models.create_model`, which also takes a preset name
    or a plain mapping (e.g. the ``net`` hyper-parameters of a checkpoint).
    """

    num_classes: int = MISSING
    multi_label: bool = MISSING
    class_names: list[str] | None = None
    d: int = 256
    loss_kind: str | None = None
    mapping: str = "fc"
    hfe: HFEConfig = field(default_factory=HFEConfig)
    vi: VIConfig = field(default_factory=VIConfig)
    workspace: WorkspaceConfig = field(default_factory=WorkspaceConfig)
    level_input_activation: str = "none"  # none | gelu (M14)
    fusion_style: str = "cocoer"  # cocoer | authors (F2/F3)
    box_quantization: str = "none"  # none | int224 (P6)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)  # P1, P5
    vad: VADConfig = field(default_factory=VADConfig)  # cocoer extension, off in the paper

    def check(self, where: str = "") -> None:
        """Raise :class:`~cocoer.errors.ConfigError` naming the field (``where`` + its path)
        when a value of this node or of ``hfe`` / ``vi`` / ``workspace`` / ``preprocess`` is
        out of range or not one of its choices (each node checks its own fields)."""
        if self.d < 1:
            raise ConfigError(f"{where}d = {self.d} must be >= 1")
        check_choice(f"{where}mapping", self.mapping, MAPPINGS)
        if self.loss_kind is not None:
            check_choice(f"{where}loss_kind", self.loss_kind, LOSS_KINDS)
        check_choice(
            f"{where}level_input_activation", self.level_input_activation, INPUT_ACTIVATIONS
        )
        check_choice(f"{where}fusion_style", self.fusion_style, FUSION_STYLES)
        check_choice(f"{where}box_quantization", self.box_quantization, BOX_QUANTIZATIONS)
        self.hfe.check(f"{where}hfe.")
        self.vi.check(f"{where}vi.")
        self.workspace.check(f"{where}workspace.")
        PreprocessConfig.from_any(self.preprocess).check(f"{where}preprocess.")

"""Options of the workspace (:class:`cocoer.workspace.core.Workspace`, docs/method.md
section 4) and their allowed choices: torch-free, so that the Hydra schema and the console
scripts' help read them without importing torch."""

from __future__ import annotations

from dataclasses import dataclass

from cocoer.errors import ConfigError, check_choice

QP_METHODS: tuple[str, ...] = ("closed_form", "qpth", "pgd")
UPDATE_TYPES = ("all", "eliminated")
SAMPLE_WEIGHTS = ("pseudo", "uniform")
TIE_BREAKS = ("context_first", "head_first")
INNER_PARAMS = ("all", "linear")
LOSS_KINDS = ("bce", "l2", "ce")


@dataclass
class WorkspaceConfig:
    """Options of :class:`Workspace` (the ``model.net.workspace`` node of the config).

    qp_method: one of ``QP_METHODS``; update: ``all`` (type one) or ``eliminated`` (type
    two: the survivor keeps z_m); delta_scale: s in theta~ = theta + s delta; inner_lr: eta
    of FFN0's inner step; sample_weights: ``pseudo`` (EMOTIC weights from y_t of the
    sample) or ``uniform``; inner_params: ``all`` (FFN0's Linear and LayerNorm are
    stepped) or ``linear`` (the Linear only, the LayerNorm's gamma / beta stay: the authors'
    code, W5); tie_break: ``context_first`` or ``head_first`` (exact ties in f, W2).

    With ``delta_scale=0``, ``inner_params=linear`` and the level mappings'
    ``input_activation=gelu`` the refined features are those of the authors' released code
    (docs/method.md section 9): there delta never reaches the outputs.
    """

    qp_method: str = "closed_form"
    update: str = "all"
    delta_scale: float = 1.0
    inner_lr: float = 1.0
    sample_weights: str = "pseudo"
    inner_params: str = "all"  # all | linear (W5)
    tie_break: str = "context_first"  # context_first | head_first (W2)

    def check(self, where: str = "workspace.") -> None:
        """Raise :class:`~cocoer.errors.ConfigError` (a ValueError) naming the field
        (``where`` + name) when a choice is unknown or a value < 0."""
        for name, choices in (
            ("qp_method", QP_METHODS),
            ("update", UPDATE_TYPES),
            ("sample_weights", SAMPLE_WEIGHTS),
            ("inner_params", INNER_PARAMS),
            ("tie_break", TIE_BREAKS),
        ):
            check_choice(f"{where}{name}", getattr(self, name), choices)
        if self.inner_lr < 0 or self.delta_scale < 0:
            raise ConfigError(f"{where}inner_lr and {where}delta_scale must be >= 0")

"""Level mappings g_m = (FFN0_m, theta_m) and the fusion head FFN2 (docs/method.md sections 2, 4).

The three level mappings are stored stacked along a level axis (q = 3, order c, b, h), so
every level is computed in one einsum: no loop over levels, none over samples.

FFN0_m: x [B, N*d_h] -> Linear -> GELU -> LayerNorm -> z_m [B, d]
theta_m: z_m -> l_m = W_m z_m + b_m  [B, k]

Options of the authors' released code (docs/method.md section 9): ``input_activation=gelu``
(a GELU before FFN0's Linear, M14), ``inner_step(params="linear")`` (the inner step moves the
Linear only, W5) and the fusion head's ``style=authors`` (F2/F3).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cocoer.errors import check_choice
from cocoer.models.config import FUSION_STYLES, INPUT_ACTIVATIONS, MAPPINGS

LN_EPS = 1e-5


@dataclass
class FFN0Cache:
    """Intermediate values of FFN0 kept for the closed-form inner step.

    x: [B, q, D_in] input of FFN0's Linear (GELU(x) with ``input_activation=gelu``);
    pre: [B, q, d] pre-activation; h_hat: [B, q, d] normalised activation;
    sigma: [B, q, 1] LayerNorm standard deviation.
    """

    x: Tensor
    pre: Tensor | None = None
    h_hat: Tensor | None = None
    sigma: Tensor | None = None


def gelu_grad(x: Tensor) -> Tensor:
    """Derivative of the exact GELU, Phi(x) + x phi(x)."""
    cdf = 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))
    pdf = torch.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
    return cdf + x * pdf


def layer_norm_stats(h: Tensor) -> tuple[Tensor, Tensor]:
    """(h_hat, sigma) of a LayerNorm without affine over the last axis (biased variance)."""
    mean = h.mean(-1, keepdim=True)
    var = (h - mean).square().mean(-1, keepdim=True)
    sigma = torch.sqrt(var + LN_EPS)
    return (h - mean) / sigma, sigma


class LevelMappings(nn.Module):
    """q stacked level mappings (FFN0_m and prediction layer theta_m).

    Args:
        num_levels: q (3: context, body, head).
        in_dim: N * d_h, the flattened cross-level tokens.
        d: representation width.
        num_classes: k.
        input_activation: ``none`` or ``gelu``: FFN0_m(x) = LN(GELU(W0 GELU(x) + b0)).
    """

    def __init__(
        self, num_levels: int, in_dim: int, d: int, num_classes: int, input_activation: str = "none"
    ) -> None:
        super().__init__()
        check_choice("level_input_activation", input_activation, INPUT_ACTIVATIONS)
        self.num_levels, self.in_dim, self.d, self.num_classes = num_levels, in_dim, d, num_classes
        self.input_activation = input_activation
        self.ffn0_weight = nn.Parameter(torch.empty(num_levels, d, in_dim))
        self.ffn0_bias = nn.Parameter(torch.empty(num_levels, d))
        self.ln_weight = nn.Parameter(torch.ones(num_levels, d))
        self.ln_bias = nn.Parameter(torch.zeros(num_levels, d))
        self.theta_weight = nn.Parameter(torch.empty(num_levels, num_classes, d))
        self.theta_bias = nn.Parameter(torch.empty(num_levels, num_classes))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """nn.Linear's default initialisation, level by level."""
        for w, b in ((self.ffn0_weight, self.ffn0_bias), (self.theta_weight, self.theta_bias)):
            bound = 1.0 / math.sqrt(w.shape[-1])
            nn.init.uniform_(w, -bound, bound)
            nn.init.uniform_(b, -bound, bound)

    def ffn0(self, x: Tensor) -> tuple[Tensor, FFN0Cache]:
        """z_m = LN(GELU(W0_m x_m + b0_m)).  x [B, q, D_in] -> z [B, q, d]."""
        if self.input_activation == "gelu":
            x = F.gelu(x)
        pre = torch.einsum("bqi,qoi->bqo", x, self.ffn0_weight) + self.ffn0_bias
        h_hat, sigma = layer_norm_stats(F.gelu(pre))
        z = h_hat * self.ln_weight + self.ln_bias
        return z, FFN0Cache(x=x, pre=pre, h_hat=h_hat, sigma=sigma)

    def predict(self, z: Tensor) -> Tensor:
        """l_m = theta_m z_m.  z [B, q, d] -> l [B, q, k]."""
        return torch.einsum("bqd,qkd->bqk", z, self.theta_weight) + self.theta_bias

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, FFN0Cache]:
        """x [B, q, D_in] -> (z [B, q, d], l [B, q, k], cache)."""
        z, cache = self.ffn0(x)
        return z, self.predict(z), cache

    def inner_step(self, cache: FFN0Cache, dz: Tensor, eta: float, params: str = "all") -> Tensor:
        """One gradient step of every FFN0_m parameter, per sample, in closed form.

        Given dz = d f_m / d z_m [B, q, d] (through the updated prediction layer), take
        W0 <- W0 - eta dW0, b0 <- b0 - eta db0, gamma <- gamma - eta dgamma,
        beta <- beta - eta dbeta for each sample's own loss and return FFN0's new output.
        For the linear layer the new pre-activation is pre - eta (|x|^2 + 1) d f / d pre,
        so no per-sample weight copies are made (docs/method.md section 4, coordination).
        ``params="linear"``: only W0, b0 are stepped, the LayerNorm's gamma and beta stay.

        Returns:
            z_hat [B, q, d], the refined level representations.
        """
        assert cache.pre is not None and cache.h_hat is not None and cache.sigma is not None, (
            "LevelMappings.inner_step needs the cache of LevelMappings.ffn0"
        )
        gamma = self.ln_weight  # [q, d]
        d_gamma = dz * cache.h_hat  # [B, q, d]
        d_beta = dz
        d_hhat = dz * gamma
        d_h = (
            d_hhat
            - d_hhat.mean(-1, keepdim=True)
            - cache.h_hat * (d_hhat * cache.h_hat).mean(-1, keepdim=True)
        ) / cache.sigma
        d_pre = d_h * gelu_grad(cache.pre)  # [B, q, d]
        x_sq = cache.x.square().sum(-1, keepdim=True)  # [B, q, 1]
        pre_new = cache.pre - eta * (x_sq + 1.0) * d_pre
        h_hat_new, _ = layer_norm_stats(F.gelu(pre_new))
        if params == "linear":
            return h_hat_new * gamma + self.ln_bias
        return h_hat_new * (gamma - eta * d_gamma) + (self.ln_bias - eta * d_beta)


class PerSampleLayerNorm(nn.LayerNorm):
    """nn.LayerNorm (same parameters and state-dict keys) written with elementary ops via
    :func:`layer_norm_stats`: the inner step of :class:`GenericLevelMappings` differentiates
    ``torch.func.grad`` of it under ``vmap``, where the fused layer-norm kernel's double
    backward gives a wrong d/dx of the LayerNorm weights' gradient (torch 2.x)."""

    def forward(self, h: Tensor) -> Tensor:
        """h [..., d] -> LN(h) [..., d] (eps = LN_EPS, biased variance)."""
        h_hat, _ = layer_norm_stats(h)
        return h_hat * self.weight + self.bias


def build_ffn0(kind: str, in_dim: int, d: int) -> nn.Sequential:
    """One level's hidden mapping FFN0 as an nn.Module (for :class:`GenericLevelMappings`).

    ``fc``: Linear -> GELU -> LayerNorm (the paper's linear mapping); ``mlp``: Linear ->
    GELU -> Linear -> GELU -> LayerNorm (a deeper mapping, for the Fig. 3 ablation).
    """
    check_choice("level mapping", kind, MAPPINGS)
    if kind == "fc":
        return nn.Sequential(nn.Linear(in_dim, d), nn.GELU(), PerSampleLayerNorm(d, eps=LN_EPS))
    return nn.Sequential(
        nn.Linear(in_dim, d),
        nn.GELU(),
        nn.Linear(d, d),
        nn.GELU(),
        PerSampleLayerNorm(d, eps=LN_EPS),
    )


class GenericLevelMappings(nn.Module):
    """Level mappings with any FFN0 module; the inner step uses per-sample autograd.

    Same interface as :class:`LevelMappings` (stacked prediction layers ``theta_weight``
    [q, k, d] / ``theta_bias`` [q, k]), but FFN0_m is an arbitrary module and its inner
    step is computed with ``torch.func``: per sample b, g_b = J_P(FFN0(x_b))^T dz_b and
    z^_b = FFN0(x_b; P - eta g_b), vectorised with ``vmap`` (no Python loop over samples;
    the per-sample parameters exist only inside the vectorised call). Slower and heavier
    than the closed form: meant for mapping ablations (Fig. 3). Needs autograd at
    evaluation time, so run it with ``trainer.inference_mode=false``.
    """

    def __init__(
        self,
        num_levels: int,
        in_dim: int,
        d: int,
        num_classes: int,
        kind: str,
        input_activation: str = "none",
    ) -> None:
        super().__init__()
        check_choice("level_input_activation", input_activation, INPUT_ACTIVATIONS)
        self.num_levels, self.in_dim, self.d, self.num_classes = num_levels, in_dim, d, num_classes
        self.input_activation = input_activation
        self.ffn0 = nn.ModuleList(build_ffn0(kind, in_dim, d) for _ in range(num_levels))
        self.theta_weight = nn.Parameter(torch.empty(num_levels, num_classes, d))
        self.theta_bias = nn.Parameter(torch.empty(num_levels, num_classes))
        bound = 1.0 / math.sqrt(d)
        nn.init.uniform_(self.theta_weight, -bound, bound)
        nn.init.uniform_(self.theta_bias, -bound, bound)

    def predict(self, z: Tensor) -> Tensor:
        """l_m = theta_m z_m.  z [B, q, d] -> l [B, q, k]."""
        return torch.einsum("bqd,qkd->bqk", z, self.theta_weight) + self.theta_bias

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, FFN0Cache]:
        """x [B, q, D_in] -> (z [B, q, d], l [B, q, k], cache)."""
        if self.input_activation == "gelu":
            x = F.gelu(x)
        z = torch.stack([m(x[:, i]) for i, m in enumerate(self.ffn0)], 1)
        return z, self.predict(z), FFN0Cache(x=x)

    def inner_step(self, cache: FFN0Cache, dz: Tensor, eta: float, params: str = "all") -> Tensor:
        """Per-sample SGD step of FFN0_m's parameters along J^T dz; returns z_hat [B,q,d].

        ``params="all"``: every parameter; ``"linear"``: the Linear layers' only.
        """
        from torch.func import functional_call, grad, vmap

        out = []
        with torch.enable_grad():
            for i, module in enumerate(self.ffn0):  # over the 3 levels, not over samples
                weights: dict[str, Tensor] = dict(module.named_parameters())
                stepped = {
                    f"{n}.{k}"
                    for n, sub in module.named_children()
                    for k, _ in sub.named_parameters()
                    if params == "all" or isinstance(sub, nn.Linear)
                }

                def inner(p: dict[str, Tensor], x: Tensor, g: Tensor, m: nn.Module = module):
                    return (functional_call(m, p, (x.unsqueeze(0),))[0] * g).sum()

                def refined(
                    x: Tensor,
                    g: Tensor,
                    p: dict[str, Tensor] = weights,
                    m: nn.Module = module,
                    stepped: set[str] = stepped,
                ) -> Tensor:
                    step = grad(inner)(p, x, g)
                    new = {k: v - eta * step[k] if k in stepped else v for k, v in p.items()}
                    return functional_call(m, new, (x.unsqueeze(0),))[0]

                out.append(vmap(refined)(cache.x[:, i], dz[:, i]))
        return torch.stack(out, 1)


class FusionHead(nn.Module):
    """FFN2 on z_G = [z^_c; z^_b; z^_h; z_t] (4d) -> l_G [B, k].

    ``style=cocoer``: LN -> Linear -> GELU -> Linear -> GELU -> Linear.
    ``style=authors`` (the released code's ``cls_global_all``): GELU -> LN(4d) -> Linear ->
    GELU -> LN(d) -> Linear -> GELU -> LN(d) -> Linear; its parameters are ``net.{1,2,4,5,7,8}``.
    """

    def __init__(
        self, d: int, num_classes: int, num_inputs: int = 4, style: str = "cocoer"
    ) -> None:
        super().__init__()
        check_choice("fusion_style", style, FUSION_STYLES)
        D = num_inputs * d
        if style == "authors":
            self.net = nn.Sequential(
                nn.GELU(),
                nn.LayerNorm(D),
                nn.Linear(D, d),
                nn.GELU(),
                nn.LayerNorm(d),
                nn.Linear(d, d),
                nn.GELU(),
                nn.LayerNorm(d),
                nn.Linear(d, num_classes),
            )
        else:
            self.net = nn.Sequential(
                nn.LayerNorm(D),
                nn.Linear(D, d),
                nn.GELU(),
                nn.Linear(d, d),
                nn.GELU(),
                nn.Linear(d, num_classes),
            )

    def forward(self, z_G: Tensor) -> Tensor:
        """z_G [B, 4d] -> l_G [B, k]."""
        return self.net(z_G)

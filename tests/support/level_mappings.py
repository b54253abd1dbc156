"""The closed-form level mappings' parameters copied into other modules: the ``fc``
:class:`~cocoer.models.heads.GenericLevelMappings` (the same function through torch.func), or
one level's FFN0 Linear, LayerNorm and theta into stand-alone ``nn`` layers."""

from __future__ import annotations

import torch
from torch import nn

from cocoer.models.heads import GenericLevelMappings, LevelMappings


@torch.no_grad()
def copy_level(
    maps: LevelMappings, m: int, linear: nn.Linear, norm: nn.LayerNorm, out: nn.Linear | None
) -> None:
    """Level ``m`` of ``maps`` into layers: FFN0's Linear, its LayerNorm and (``out``) theta."""
    linear.weight.copy_(maps.ffn0_weight[m])
    linear.bias.copy_(maps.ffn0_bias[m])
    norm.weight.copy_(maps.ln_weight[m])
    norm.bias.copy_(maps.ln_bias[m])
    if out is not None:
        out.weight.copy_(maps.theta_weight[m])
        out.bias.copy_(maps.theta_bias[m])


@torch.no_grad()
def as_generic(maps: LevelMappings) -> GenericLevelMappings:
    """The ``fc`` generic mappings holding the parameters of ``maps`` (dtype included)."""
    generic = GenericLevelMappings(
        maps.num_levels, maps.in_dim, maps.d, maps.num_classes, "fc", maps.input_activation
    ).to(maps.theta_weight.dtype)
    for m, ffn0 in enumerate(generic.ffn0):
        copy_level(maps, m, ffn0[0], ffn0[2], None)
    generic.theta_weight.copy_(maps.theta_weight)
    generic.theta_bias.copy_(maps.theta_bias)
    return generic

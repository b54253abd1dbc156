"""BatchNorm with per-sample statistics (``hfe.backbone_norm: per_sample``, docs/method.md 9).

The authors' ``inference.py`` never calls ``.eval()``: every BatchNorm of the three backbones
normalises with the statistics of its batch, and it runs one person per batch. For one image,
BatchNorm in train mode is

    BN(x) = gamma (x - mean_HW(x)) / sqrt(var_HW(x) + eps) + beta   (biased variance over H, W)

which is ``F.instance_norm`` with the BatchNorm's affine parameters. :class:`PerSampleBatchNorm2d`
computes exactly that for every sample of a batch at once, in train and eval mode alike, and
never reads nor updates the running statistics (they stay in the state dict unchanged).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class PerSampleBatchNorm2d(nn.BatchNorm2d):
    """A BatchNorm2d normalised with each sample's own statistics over (H, W).

    Same parameters and buffers (and state-dict keys) as :class:`torch.nn.BatchNorm2d`.
    x [B, C, H, W] -> [B, C, H, W].
    """

    def forward(self, x: Tensor) -> Tensor:
        return F.instance_norm(
            x, weight=self.weight, bias=self.bias, use_input_stats=True, eps=self.eps
        )


def use_per_sample_batchnorm(module: nn.Module) -> nn.Module:
    """Make every BatchNorm2d inside ``module`` a :class:`PerSampleBatchNorm2d`, in place.

    The parameters and buffers are moved over (shared, not copied), so loading a state dict
    works as before. Returns ``module``.
    """
    for name, child in module.named_children():
        if type(child) is nn.BatchNorm2d:
            new = PerSampleBatchNorm2d(
                child.num_features,
                child.eps,
                child.momentum,
                child.affine,
                child.track_running_stats,
            )
            new._parameters = child._parameters
            new._buffers = child._buffers
            new.train(child.training)
            setattr(module, name, new)
        else:
            use_per_sample_batchnorm(child)
    return module

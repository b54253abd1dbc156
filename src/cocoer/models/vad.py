"""Continuous emotions: valence, arousal and dominance from every level (a cocoer extension,
docs/method.md section 10; not part of the paper's model).

The head reads the representations CocoER already computes (sections 2-4) and predicts the
three EMOTIC dimensions (1..10) from each of them, so that a user sees what every level
thinks of the valence too:

- ``vad_G`` [B, 3] from the fused feature z_G = [z_hat_c; z_hat_b; z_hat_h; z_t] [B, 4d];
- ``vad_levels`` [B, 3, 3] from each level's own representation z_m [B, 3, d] (levels in the
  order c, b, h; one stacked linear map per level, a single einsum);
- ``vad_t`` [B, 3] from the V-I feature z_t [B, d].

Every map is linear on the scale's own units: v = 5.5 + 4.5 (W z + b), the middle of 1..10
plus half its width times a linear map, so that the unit-scale features reach the ends of the
scale with unit-scale weights. W and b start at 0: an untrained head predicts the middle of the
scale. Off by default (``enabled: false``): the
paper presets then build no extra parameter and return no extra output.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from cocoer.constants import VAD_NAMES, VAD_RANGE

#: Outputs of the head, in the order of :data:`cocoer.constants.HEAD_NAMES` (G, t, c, b, h).
VAD_OUTPUTS = ("vad_G", "vad_t", "vad_levels")


class VADHead(nn.Module):
    """Linear valence / arousal / dominance predictors on z_G, z_m and z_t.

    Args:
        d: representation width (z_m, z_t [.., d]; z_G [.., 4d]).
        num_levels: q (3: context, body, head).
    """

    def __init__(self, d: int, num_levels: int = 3) -> None:
        super().__init__()
        n = len(VAD_NAMES)
        self.middle = 0.5 * (VAD_RANGE[0] + VAD_RANGE[1])  # 5.5
        self.radius = 0.5 * (VAD_RANGE[1] - VAD_RANGE[0])  # 4.5
        self.fused = nn.Linear(4 * d, n)
        self.vi = nn.Linear(d, n)
        self.W_levels = nn.Parameter(torch.zeros(num_levels, n, d))  # [q, 3, d]
        self.b_levels = nn.Parameter(torch.zeros(num_levels, n))  # [q, 3]
        for lin in (self.fused, self.vi):
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)

    def forward(self, z_G: Tensor, z: Tensor, z_t: Tensor) -> dict[str, Tensor]:
        """z_G [B, 4d], z [B, q, d], z_t [B, d] -> ``vad_G`` [B, 3], ``vad_t`` [B, 3],
        ``vad_levels`` [B, q, 3] (valence, arousal, dominance)."""
        levels = torch.einsum("bqd,qnd->bqn", z, self.W_levels) + self.b_levels  # [B, q, 3]
        raw = {"vad_G": self.fused(z_G), "vad_t": self.vi(z_t), "vad_levels": levels}
        return {k: self.middle + self.radius * r for k, r in raw.items()}

"""Pairwise interaction term of the JEPA predictor: contact as a function of where keypoints are relative to
each other (an interaction network, Battaglia et al. 2016, over the keypoint encoder's latent).

The frame-level predictor sees the 80-value latent through one linear map and has to learn from it that a
block moves only when the pusher moves *into* it; measured in closed-loop planning it does not (docs/jepa.md,
"Contact geometry"): it moves the block when the pusher passes beside it. This term gives that decision the
right inputs. For every ordered keypoint pair ``(i, j)`` it forms three numbers ``r_ij``: the distance
``|p_j - p_i|`` and the projections of the relative motion and of the action on the unit offset, and sums one
hidden layer over the senders ``j``::

    E_i = sum_{j != i} gelu(U n_i + V n_j + R r_ij)        (n: keypoint values + identity embedding + action)
    dz_i = node_mlp([n_i, E_i])                            (change of keypoint i's 5 latent values)

Terms linear in the offset or the relative motion need no pair features: ``U n_i + V n_j`` already holds
them (``n`` carries positions and motion). So a pair costs a few passes over ``H`` values (300 planning
candidates x 256 pairs stay affordable at ``H = 16``). The output layer starts at zero, so the term starts as
"no interaction" and the predictor as before.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

PAIR_FEATURES = 3  # |p_j - p_i|, (motion_j - motion_i) . unit offset, action . unit offset


class KeypointInteraction(nn.Module):
    """``(z_t, a_t) -> dz`` for a keypoint latent ``[xy (2K), f (K), motion (2K)]``."""

    def __init__(
        self, keypoints: int, action_dim: int, hidden: int, offset_scale: float = 8.0, id_dim: int = 8
    ) -> None:
        super().__init__()
        self.k = keypoints
        self.offset_scale = offset_scale  # keypoint coordinates are in [-1, 1]: contact distances ~0.2
        self.ids = nn.Parameter(torch.randn(keypoints, id_dim) * 0.5)
        node_in = 5 + id_dim + action_dim
        self.receiver = nn.Linear(node_in, hidden)
        self.sender = nn.Linear(node_in, hidden, bias=False)
        self.pair = nn.Linear(PAIR_FEATURES, hidden, bias=False)
        self.node = nn.Sequential(
            nn.Linear(node_in + hidden, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU()
        )
        self.out = nn.Linear(hidden, 5)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def split(self, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(..., 5K)`` -> positions ``(..., K, 2)``, features ``(..., K)``, motion ``(..., K, 2)``."""
        k = self.k
        if z.shape[-1] != 5 * k:
            raise ValueError(f"a {k}-keypoint latent has {5 * k} values, got {z.shape[-1]}")
        lead = z.shape[:-1]
        return (
            z[..., : 2 * k].reshape(*lead, k, 2),
            z[..., 2 * k : 3 * k],
            z[..., 3 * k :].reshape(*lead, k, 2),
        )

    def forward(self, z: Tensor, action: Tensor) -> Tensor:
        """Latents ``(..., 5K)`` and normalised actions ``(..., A)`` -> latent change ``(..., 5K)``."""
        xy, f, motion = self.split(z)
        lead = z.shape[:-1]
        act = action.unsqueeze(-2).expand(*lead, self.k, action.shape[-1])
        node = torch.cat((xy, f.unsqueeze(-1), motion, self.ids.expand(*lead, -1, -1), act), dim=-1)
        d = (xy.unsqueeze(-3) - xy.unsqueeze(-2)) * self.offset_scale  # (..., K_i, K_j, 2): p_j - p_i
        dist = d.norm(dim=-1, keepdim=True)
        unit = d / (dist + 1e-3)
        rel = motion.unsqueeze(-3) - motion.unsqueeze(-2)  # motion_j - motion_i
        pair = torch.cat(
            (dist, (rel * unit).sum(-1, keepdim=True), (unit @ action.unsqueeze(-1).unsqueeze(-3))), dim=-1
        )
        recv, send = self.receiver(node), self.sender(node)  # (..., K, H)
        h = self.pair(pair)  # (..., K_i, K_j, H)
        h = h + recv.unsqueeze(-2)
        h += send.unsqueeze(-3)
        # sum over the senders j != i: all of them, minus the pair (i, i) (distance 0, no relative motion)
        self_pair = recv + send + self.pair(torch.zeros_like(pair[..., 0, :]))
        effect = F.gelu(h).sum(-2) - F.gelu(self_pair)  # (..., K, H)
        dz = self.out(self.node(torch.cat((node, effect), dim=-1)))  # (..., K, 5)
        return torch.cat(
            (dz[..., :2].flatten(-2), dz[..., 2], dz[..., 3:].flatten(-2)), dim=-1
        )  # back to the latent layout

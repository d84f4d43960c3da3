"""RL-ready output heads read from a model's per-frame hidden tokens: reward, termination and object state.

The object-state head has one learned query per identity slot that attention-pools the frame's tokens and
reads out that identity's full state row (``gedanken.worlds.state.STATE_FIELDS``: presence as a logit, the
other fields normalised by statistics stored in buffers and set from data with :meth:`WorldHeads.calibrate`).
Shared by any family that has per-frame tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gedanken.worlds.state import PRESENT


@dataclass(frozen=True)
class HeadsConfig:
    """Which heads to build."""

    slots: int = 0  # K identity slots of the object-state head (0 = no state head)
    fields: int = 10  # F state fields (gedanken.worlds.state.STATE_FIELDS)
    reward: bool = True  # reward head
    termination: bool = True  # termination head


@dataclass
class HeadOutputs:
    """Raw head outputs for ``T`` frames."""

    reward: Tensor | None  # (B, T)
    termination_logit: Tensor | None  # (B, T)
    state: Tensor | None  # (B, T, K, F) in physical units, presence in {0, 1}
    state_raw: Tensor | None  # (B, T, K, F) presence logit + normalised fields (for the loss)


class _Pool(nn.Module):
    """``q`` learned queries attention-pool ``N`` tokens: (B, T, N, D) -> (B, T, q, D)."""

    def __init__(self, dim: int, queries: int) -> None:
        super().__init__()
        self.q = nn.Parameter(torch.randn(queries, dim) * dim**-0.5)
        self.kv = nn.Linear(dim, 2 * dim)
        self.norm = nn.LayerNorm(dim)

    def forward(self, h: Tensor) -> Tensor:
        k, v = self.kv(self.norm(h)).chunk(2, dim=-1)  # (B, T, N, D)
        att = torch.einsum("qd,btnd->btqn", self.q, k) * k.shape[-1] ** -0.5
        return torch.einsum("btqn,btnd->btqd", att.softmax(dim=-1), v)


class WorldHeads(nn.Module):
    """Reward, termination and object-state heads over per-frame tokens (B, T, N, D)."""

    def __init__(self, cfg: HeadsConfig, dim: int) -> None:
        super().__init__()
        self.cfg = cfg
        n_scalar = int(cfg.reward) + int(cfg.termination)
        self.scalar_pool = _Pool(dim, 1) if n_scalar else None
        self.scalar = (
            nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, n_scalar)) if n_scalar else None
        )
        self.state_pool = _Pool(dim, cfg.slots) if cfg.slots else None
        self.state = (
            nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, cfg.fields)) if cfg.slots else None
        )
        self.register_buffer("state_mean", torch.zeros(cfg.fields))
        self.register_buffer("state_std", torch.ones(cfg.fields))

    @torch.no_grad()
    def calibrate(self, states: Tensor) -> None:
        """Normalisation of state fields from data states (..., K, F) (present objects only)."""
        flat = states.reshape(-1, states.shape[-1])
        flat = flat[flat[:, PRESENT] > 0]
        if len(flat) > 1:
            self.state_mean.copy_(flat.mean(0))
            self.state_std.copy_(flat.std(0).clamp_min(1e-3))
        self.state_mean[PRESENT] = 0.0
        self.state_std[PRESENT] = 1.0

    def forward(self, h: Tensor) -> HeadOutputs:
        reward = term = state = raw = None
        if self.scalar is not None and self.scalar_pool is not None:
            s = self.scalar(self.scalar_pool(h)[:, :, 0])  # (B, T, n_scalar)
            j = 0
            if self.cfg.reward:
                reward, j = s[..., 0], 1
            if self.cfg.termination:
                term = s[..., j]
        if self.state is not None and self.state_pool is not None:
            raw = self.state(self.state_pool(h))  # (B, T, K, F)
            state = raw * self.state_std + self.state_mean
            present = (raw[..., PRESENT] > 0).float()
            state = torch.cat(
                [present[..., None], state[..., 1:] * present[..., None]], dim=-1
            )  # PRESENT == 0
        return HeadOutputs(reward, term, state, raw)

    def loss(
        self, out: HeadOutputs, rewards: Tensor, terminated: Tensor, states: Tensor | None
    ) -> tuple[Tensor, dict[str, float]]:
        """Targets (B, T), (B, T) bool, (B, T, K, F) or None -> summed loss and logs."""
        total = rewards.new_zeros(())
        logs: dict[str, float] = {}
        if out.reward is not None:
            lr = F.mse_loss(out.reward, rewards)
            total, logs["head_reward"] = total + lr, float(lr.detach())
        if out.termination_logit is not None:
            lt = F.binary_cross_entropy_with_logits(out.termination_logit, terminated.float())
            total, logs["head_term"] = total + lt, float(lt.detach())
        if out.state_raw is not None and states is not None:
            k = min(states.shape[-2], out.state_raw.shape[-2])
            raw, st = out.state_raw[..., :k, :], states[..., :k, :]
            present = st[..., PRESENT]
            lp = F.binary_cross_entropy_with_logits(raw[..., PRESENT], (present > 0).float())
            target = (st - self.state_mean) / self.state_std
            err = (raw - target).pow(2)[..., 1:].mean(-1)  # (B, T, K)
            ls = (err * present).sum() / present.sum().clamp_min(1.0)
            total = total + lp + ls
            logs["head_present"], logs["head_state"] = float(lp.detach()), float(ls.detach())
        return total, logs

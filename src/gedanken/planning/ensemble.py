"""Ensembles of world models and risk-averse planning costs.

A planner searching a learned model finds the model's errors: action sequences whose predicted outcome is
good because the prediction is wrong (docs/planning.md: a pusher predicted to slide past a block the real
one hits). Models trained alike but from different seeds tend to disagree exactly where the data did not
pin the prediction down. :class:`Ensemble` runs several models of one world behind the protocol;
:class:`RiskAverse` scores a candidate by the mean of its per-member costs (PETS, Chua et al. 2018) plus
``spread`` times the members' disagreement on the predicted object positions (MOPO's uncertainty penalty,
Yu et al. 2020), so the planner prefers plans whose outcome every member agrees on. The disagreement is
measured on states rather than on costs: members that err symmetrically about the goal cost the same and
would look certain.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from gedanken.models.protocol import Prediction, Rollout, WorldModel
from gedanken.planning.base import RepeatableContext
from gedanken.planning.objectives import LatentEncoder, Objective, PlanningError
from gedanken.worlds.state import PRESENT, X, Y


@dataclass
class EnsembleRollout(Rollout):
    """A rollout whose fields are the members' mean (where every member gives them), plus each member's."""

    members: tuple[Rollout, ...] = ()


def _mean(values: list[Tensor | None]) -> Tensor | None:
    if any(v is None for v in values):
        return None
    first = values[0]
    assert first is not None
    if not first.is_floating_point():
        return first  # pictures: the first member's (means of uint8 frames are not pictures)
    return torch.stack([v for v in values if v is not None]).mean(0)


class Ensemble:
    """Several world models of one world, stepped together (see the module docstring)."""

    def __init__(self, members: Sequence[WorldModel], name: str | None = None) -> None:
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least 2 members, got {len(members)}")
        self.members = tuple(members)
        self.name = name or "+".join(str(getattr(m, "name", type(m).__name__)) for m in self.members)
        self.card = getattr(self.members[0], "card", None)

    def observe(
        self, frames: Tensor, actions: Tensor | None = None, text: list[str] | None = None
    ) -> tuple[Any, ...]:
        return tuple(m.observe(frames, actions, text) for m in self.members)

    def repeat_context(self, ctx: tuple[Any, ...], n: int) -> tuple[Any, ...]:
        """Broadcast each member's batch-of-one context (members without ``repeat_context`` are refused)."""
        out = []
        for m, c in zip(self.members, ctx, strict=True):
            if not isinstance(m, RepeatableContext):
                raise TypeError(f"ensemble member {getattr(m, 'name', m)!r} cannot repeat a context")
            out.append(m.repeat_context(c, n))
        return tuple(out)

    def rollout(self, ctx: tuple[Any, ...], actions: Tensor, *, seed: int = 0) -> EnsembleRollout:
        rs = tuple(
            m.rollout(c, actions, seed=seed + i)
            for i, (m, c) in enumerate(zip(self.members, ctx, strict=True))
        )
        return EnsembleRollout(
            frames=_mean([r.frames for r in rs]),
            latents=None,  # members' latent spaces need not be the same space
            rewards=_mean([r.rewards for r in rs]),
            terminated=None,
            states=_mean([r.states for r in rs]),
            members=rs,
        )

    def step(self, ctx: tuple[Any, ...], action: Tensor) -> tuple[tuple[Any, ...], Prediction]:
        """One step of every member; the prediction is the first member's, its state the members' mean."""
        steps = [m.step(c, action) for m, c in zip(self.members, ctx, strict=True)]
        first = steps[0][1]
        state = _mean([p.state for _, p in steps])
        return tuple(c for c, _ in steps), Prediction(frame=first.frame, state=state)

    def encode(self, frames: Tensor) -> Tensor:
        """The first member's encoding (goal pictures), when it has one."""
        m = self.members[0]
        if not isinstance(m, LatentEncoder):
            raise TypeError(f"ensemble member {getattr(m, 'name', m)!r} does not encode pictures")
        return m.encode(frames)


def disagreement(members: tuple[Rollout, ...]) -> Tensor:
    """Members' spread on predicted positions, ``(B,)``: per step and identity the norm of the std over
    members of (x, y), summed over identities present in any member, averaged over the horizon."""
    if any(r.states is None for r in members):
        raise PlanningError("the ensemble's disagreement needs states from every member")
    s = torch.stack([r.states.float() for r in members if r.states is not None])  # (M, B, H, K, F)
    spread = s[..., [X, Y]].std(0, unbiased=False).norm(dim=-1)  # (B, H, K)
    present = (s[..., PRESENT] > 0.5).any(0)
    return (spread * present).sum(-1).mean(-1)


@dataclass
class RiskAverse:
    """``mean_m cost_m + spread * disagreement`` over an ensemble's members; plain ``cost`` otherwise."""

    objective: Objective
    spread: float = 1.0  # weight of the members' disagreement in world units (0 = mean cost)

    def __post_init__(self) -> None:
        if self.spread < 0:
            raise ValueError(f"spread must be >= 0, got {self.spread}")

    def cost(self, rollout: Rollout, model: WorldModel) -> Tensor:
        if not isinstance(model, Ensemble) or not isinstance(rollout, EnsembleRollout):
            return self.objective.cost(rollout, model)
        costs = torch.stack(
            [self.objective.cost(r, m) for r, m in zip(rollout.members, model.members, strict=True)]
        )  # (M, B)
        if self.spread == 0:
            return costs.mean(0)
        return costs.mean(0) + self.spread * disagreement(rollout.members).to(costs)

"""The check every model applies to the actions it is driven with (play loop, rollout, audit, planners)."""

from __future__ import annotations

import torch
from torch import Tensor


def check_actions(actions: Tensor, action_dim: int, action_classes: int) -> Tensor:
    """``actions`` (..., A) as given; ``ValueError`` unless A is the model's, every value is finite and, for a
    discrete action space of ``action_classes`` n > 0, every value is a whole index in ``[0, n)``.

    Without it a NaN would run through the network into a frame of NaNs, and an index out of range would be
    clamped to a valid one (or fail deep inside an embedding), so a wrong action would silently drive the model.
    """
    a = max(action_dim, 1)
    if actions.ndim == 0 or actions.shape[-1] != a:
        raise ValueError(f"actions must end in A={a}, got shape {tuple(actions.shape)}")
    if not bool(torch.isfinite(actions).all()):
        raise ValueError("actions hold NaN or infinite values")
    if action_classes > 0:
        bad = (actions != actions.round()) | (actions < 0) | (actions >= action_classes)
        if bool(bad.any()):
            raise ValueError(
                f"discrete actions must be whole indices in [0, {action_classes}), got "
                f"{actions[bad].flatten()[:4].tolist()}"
            )
    return actions

"""The check every model applies to the actions it is driven with (play loop, rollout, audit, planners)."""

from __future__ import annotations

import logging

import torch
from torch import Tensor

log = logging.getLogger(__name__)


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


def driving_actions(model: object) -> tuple[int, int]:
    """(width, number of discrete actions or 0) of the actions ``model`` takes now: its config's, except that an
    autoregressive model in ``LATENT`` mode takes indices of its latent actions."""
    cfg = getattr(model, "cfg", None)
    if getattr(getattr(model, "action_mode", None), "value", None) == "latent":
        return 1, int(cfg.lam.num_actions)  # type: ignore[union-attr]
    return max(int(getattr(cfg, "action_dim", 1)), 1), int(getattr(cfg, "action_classes", 0))


def _describe(dim: int, classes: int) -> str:
    return f"{classes} discrete actions" if classes else f"{dim}-wide continuous actions"


def check_model_world(model: object, world: str, name: str = "") -> None:
    """``ValueError`` when ``model`` cannot be driven by the built-in ``world``'s actions (another action width,
    or discrete against continuous), so that a command fails before it records or rolls out anything.

    Models without an action config (baselines) and Gymnasium ids (checked when their actions arrive) pass.
    """
    from gedanken.worlds import WORLDS, make_world

    cfg = getattr(model, "cfg", None)
    if world not in WORLDS or not hasattr(cfg, "action_dim"):
        return
    spec = make_world(world).action_spec()
    dim, classes = max(spec.dim, 1), (spec.n if spec.kind == "discrete" else 0)
    m_dim = max(int(cfg.action_dim), 1)  # type: ignore[union-attr]
    m_classes = int(getattr(cfg, "action_classes", classes))  # JEPA embeds every action as a vector
    trained = getattr(getattr(model, "card", None), "world", "") or "another world"
    label = name or getattr(model, "name", "the model")
    if (m_dim, m_classes) == (dim, classes):
        if trained not in (world, "another world"):  # it runs, but on scenes it has never seen
            log.warning(
                "%s was trained on %s and now runs on %s (the same actions, other scenes)",
                label,
                trained,
                world,
            )
        return
    raise ValueError(
        f"{label} was trained on {trained} ({_describe(m_dim, m_classes)}); {world} gives "
        f"{_describe(dim, classes)}, so it cannot drive this model. Pick the model's world or another model."
    )

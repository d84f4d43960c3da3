"""Model resolution for the audit: a baseline by name, or a checkpoint by path."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from gedanken.audit.baselines import ConstantVelocity, CopyLastFrame, GroundTruth, NoiseFloor
from gedanken.models.protocol import WorldModel

log = logging.getLogger(__name__)

BASELINES: dict[str, Callable[[], WorldModel]] = {
    "ground_truth": GroundTruth,
    "copy_last": CopyLastFrame,
    "constant_velocity": ConstantVelocity,
    "noise": NoiseFloor,
}


class ModelSpecError(ValueError):
    """A ``--model`` value that is neither a baseline name nor a loadable checkpoint."""


def check_world(world: str) -> str:
    """Return ``world`` if it is a built-in world or a registered Gymnasium id, else raise a ValueError."""
    from gedanken.worlds import WORLDS
    from gedanken.worlds.external import check_env_id

    if world in WORLDS:
        return world
    try:
        return check_env_id(world)
    except ValueError as e:
        raise ValueError(
            f"unknown world {world!r}; valid worlds: {', '.join(WORLDS)}, or a Gymnasium id ({e})"
        ) from None


def load_model(spec: str, world: str) -> WorldModel:
    """A model to audit on ``world``: a baseline name (see :data:`BASELINES`), a checkpoint directory or the name
    of a shipped checkpoint.

    Checkpoints are loaded through ``gedanken.models.load_checkpoint``; a checkpoint trained on another world
    is loaded all the same, with a warning (auditing a model off its world is a legitimate question), unless
    that world's actions cannot drive it (``ValueError``).
    """
    if spec in BASELINES:
        return BASELINES[spec]()
    path = Path(spec)
    if not path.exists():
        from gedanken.models import CHECKPOINT_ROOT

        shipped = CHECKPOINT_ROOT / spec
        if spec and "/" not in spec and (shipped / "checkpoint.json").is_file():
            path = shipped  # a shipped model by name (diffusion_push), as rollout, play and plan take it
        else:
            names = sorted(p.name for p in CHECKPOINT_ROOT.iterdir() if (p / "checkpoint.json").is_file())
            raise ModelSpecError(
                f"unknown model {spec!r}: not a baseline ({', '.join(BASELINES)}), a shipped model "
                f"({', '.join(names)}) or a checkpoint at that path"
            )
    try:
        from gedanken.models import load_checkpoint
    except ImportError as e:  # the model families provide it; an older tree may lack it
        raise ModelSpecError(
            f"cannot load checkpoint {spec!r}: gedanken.models.load_checkpoint is not available ({e})"
        ) from e
    model = load_checkpoint(path)
    card = getattr(model, "card", None)
    trained_on = getattr(card, "world", "")
    if trained_on and trained_on != world:
        from gedanken.models.actions import check_model_world

        check_model_world(model, world, spec)  # another world is fine, if its actions fit the model
        log.warning("model %s was trained on %r, audited on %r", spec, trained_on, world)
    return model

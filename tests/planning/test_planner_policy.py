"""A planner as a behaviour policy (``collect --policy plan:<checkpoint>``): it heads for the block, is
reproducible under the collect seed, and bad names are refused before anything is recorded."""

from __future__ import annotations

import numpy as np
import pytest

from gedanken.data.collect import make_spec
from gedanken.models import CHECKPOINT_ROOT
from gedanken.planning.policy import PlannerPolicy, make_planner_policy
from gedanken.worlds.policies import make_policy
from gedanken.worlds.record import record_episode
from gedanken.worlds.state import X, Y

needs_jepa = pytest.mark.skipif(not (CHECKPOINT_ROOT / "jepa_push").is_dir(), reason="no shipped jepa_push")


@needs_jepa
def test_planner_policy_drives_the_pusher_to_the_block_and_is_seeded() -> None:
    ep = record_episode("push", "train", 3, 10, policy="plan:jepa_push")
    again = record_episode("push", "train", 3, 10, policy="plan:jepa_push")
    np.testing.assert_array_equal(ep.actions, again.actions)
    gap = np.hypot(*(ep.states[:, 0, [X, Y]] - ep.states[:, 1, [X, Y]]).T)
    random = record_episode("push", "train", 3, 10, policy="random")
    gap_random = np.hypot(*(random.states[:, 0, [X, Y]] - random.states[:, 1, [X, Y]]).T)
    # the planner closes in on the block (the shaping term), random actions do not
    assert gap[-1] < gap[0] - 8.0 and gap[-1] < gap_random[-1]


@needs_jepa
def test_planner_frames_are_the_recorded_frames() -> None:
    from gedanken.worlds import make_world

    env = make_world("push", split="train")
    frame, _ = env.reset(seed=1)
    np.testing.assert_array_equal(env.render_state(env.state_array()), frame)
    frame, *_ = env.step(np.array([0.5, -0.3], np.float32))
    np.testing.assert_array_equal(env.render_state(env.state_array()), frame)


def test_planner_policy_names_are_checked() -> None:
    assert isinstance(make_policy("plan:jepa_push"), PlannerPolicy)
    with pytest.raises(ValueError, match="plan:<checkpoint>"):
        make_planner_policy("plan:")
    with pytest.raises(ValueError, match="neither a checkpoint directory"):
        make_spec("push", policy="plan:no_such_model")
    with pytest.raises(ValueError, match="Push episodes only"):
        make_spec("bounce", policy="plan:jepa_push")
    with pytest.raises(ValueError, match="plan:<checkpoint>"):
        make_spec("push", policy="nonsense")

"""Recording Gymnasium environments (CartPole, Atari, Box2D) into the episode format."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from gedanken.worlds.external import Resizer, UnknownEnvError, action_spec_of, check_env_id, record_external


def _check(ep, env_id: str, steps: int) -> None:
    ep.validate()
    assert 2 <= len(ep) <= steps
    assert ep.frames.shape[1:] == (64, 64, 3)
    assert ep.states is None and ep.contacts is None and ep.caption == ""
    assert ep.meta.world == env_id and ep.meta.split == "external" and ep.meta.policy == "random"
    assert ep.frames.std() > 0  # something was drawn
    assert not ep.actions[-1].any() and ep.rewards[0] == 0 and not ep.terminated[0]


def test_cartpole_discrete_actions_and_determinism() -> None:
    ep = record_external("CartPole-v1", seed=3, steps=30)
    _check(ep, "CartPole-v1", 30)
    assert ep.meta.action_space.kind == "discrete" and ep.meta.action_space.n == 2
    assert set(np.unique(ep.actions[:-1])) <= {0.0, 1.0}
    if len(ep) < 30:  # CartPole under a random policy usually falls over: the last step terminates
        assert ep.terminated[-1]
    again = record_external("CartPole-v1", seed=3, steps=30)
    np.testing.assert_array_equal(ep.frames, again.frames)
    np.testing.assert_array_equal(ep.actions, again.actions)


def test_atari_pong() -> None:
    ep = record_external("ALE/Pong-v5", seed=0, steps=12)
    _check(ep, "ALE/Pong-v5", 12)
    assert ep.meta.action_space.n == 6 and ep.meta.params["source_size"] == [210, 160]


def test_lunar_lander_box2d() -> None:
    ep = record_external("LunarLander-v3", seed=0, steps=12)
    _check(ep, "LunarLander-v3", 12)
    assert ep.meta.action_space.kind == "discrete" and ep.meta.action_space.n == 4


def test_box_action_space_is_a_vector() -> None:
    spec = action_spec_of(gym.spaces.Box(-2.0, 2.0, shape=(3,)))
    assert spec.kind == "box" and spec.dim == 3 and spec.low == (-2.0,) * 3
    with pytest.raises(ValueError, match="unsupported action space"):
        action_spec_of(gym.spaces.MultiBinary(3))


def test_unknown_id_lists_valid_ones() -> None:
    with pytest.raises(UnknownEnvError) as err:
        check_env_id("CartPol-v1")
    msg = str(err.value)
    assert "CartPole-v1" in msg and "push" in msg and "gedanken data envs" in msg


def test_area_resize() -> None:
    frame = np.zeros((4, 6, 3), dtype=np.uint8)
    frame[:2, :3] = 200  # top-left quarter
    out = Resizer.make((4, 6), (2, 2))(frame)
    np.testing.assert_array_equal(out[..., 0], [[200, 0], [0, 0]])
    odd = Resizer.make((210, 160), (64, 64))(np.full((210, 160, 3), 77, dtype=np.uint8))
    assert odd.shape == (64, 64, 3) and (odd == 77).all()
    up = Resizer.make((2, 2), (4, 4))(frame[:2, :2] * 0 + np.array([[[1], [2]], [[3], [4]]], dtype=np.uint8))
    np.testing.assert_array_equal(up[..., 0], np.repeat(np.repeat([[1, 2], [3, 4]], 2, 0), 2, 1))


def test_box_env_records_action_vectors() -> None:
    ep = record_external("Pendulum-v1", seed=0, steps=8)
    _check(ep, "Pendulum-v1", 8)
    assert ep.meta.action_space.kind == "box" and ep.actions.shape == (8, 1)
    assert np.all(np.abs(ep.actions) <= 2.0) and np.abs(ep.actions[:-1]).sum() > 0

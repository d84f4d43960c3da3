"""Every registered gedanken world: Gymnasium compliance, determinism, snapshots, palette identities."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from gedanken.worlds import WORLDS, gym_ids, make_world
from gedanken.worlds.palette import classify_pixels
from gedanken.worlds.policies import make_policy
from gedanken.worlds.state import PRESENT, F, W, X, Y, world_to_pixel

NAMES = list(WORLDS)


def _actions(env, n, seed):
    rng = np.random.default_rng(seed)
    pol = make_policy("mixed")
    out = []
    for _ in range(n):
        a = pol(env, rng)
        out.append(a)
        env.step(a)
    return out


@pytest.mark.parametrize("gym_id", gym_ids())
def test_check_env(gym_id):
    env = gym.make(gym_id)
    check_env(env.unwrapped, skip_render_check=False)
    obs, info = env.reset(seed=0)
    assert obs.shape == (64, 64, 3) and obs.dtype == np.uint8
    assert info["state"].shape == (env.unwrapped.max_objects, F) and info["state"].dtype == np.float32
    assert info["contacts"].dtype == np.int32


def test_registry_covers_every_world():
    assert set(NAMES) == {"bounce", "push", "push_discrete", "occlude", "grasp"}
    ids = set(gym_ids())
    assert ids == {f"gedanken/{n}-v0" for n in ("Bounce", "Push", "PushDiscrete", "Occlude", "Grasp")}
    assert all(i in gym.registry for i in ids)
    registered = {i for i in gym.registry if i.startswith("gedanken/")}
    assert registered == ids  # the check_env test above covers every registered gedanken env
    assert gym.make("gedanken/PushDiscrete-v0").unwrapped.world_name == "push_discrete"
    assert isinstance(make_world("push_discrete").action_space, gym.spaces.Discrete)


def test_unknown_world_lists_valid_ones():
    with pytest.raises(ValueError, match="valid worlds: .*bounce"):
        make_world("bounc")


@pytest.mark.parametrize("name", NAMES)
def test_seeded_determinism(name):
    runs = []
    for _ in range(2):
        env = make_world(name)
        obs, info = env.reset(seed=11)
        frames, states = [obs], [info["state"]]
        rng = np.random.default_rng(0)
        pol = make_policy("mixed")
        for _ in range(30):
            obs, _, term, _, info = env.step(pol(env, rng))
            frames.append(obs)
            states.append(info["state"])
            if term:
                break
        runs.append((np.stack(frames), np.stack(states), env.params))
    assert np.array_equal(runs[0][0], runs[1][0]) and np.array_equal(runs[0][1], runs[1][1])
    assert runs[0][2] == runs[1][2]
    other = make_world(name).reset(seed=12)[1]["state"]
    assert not np.array_equal(other, runs[0][1][0])


@pytest.mark.parametrize("name", NAMES)
def test_get_set_state_is_bit_identical_and_branches(name):
    env = make_world(name, max_steps=10_000)
    env.reset(seed=5)
    _actions(env, 8, seed=1)
    snap = env.get_state()
    frozen = snap.sim.rows.copy(), [None if b is None else tuple(b.position) for b in snap.sim.bodies]
    env.action_space.seed(3)
    acts = [env.action_space.sample() for _ in range(25)]

    def roll(actions):
        out = [env.step(a) for a in actions]
        return np.stack([o[0] for o in out]), np.stack([o[4]["state"] for o in out]), env.get_state().step

    fa, sa, ta = roll(acts)
    # the snapshot is unaffected by the env running on
    assert [None if b is None else tuple(b.position) for b in snap.sim.bodies] == frozen[1]
    for _ in range(2):
        env.set_state(snap)
        fb, sb, tb = roll(acts)
        assert np.array_equal(fa, fb) and np.array_equal(sa, sb) and ta == tb
    if env.action_spec().kind != "none":  # different actions from the same moment: a different future
        env.set_state(snap)
        other = [env.action_space.sample() for _ in range(25)]
        _, sc, _ = roll(other)
        assert not np.array_equal(sa, sc)
        env.set_state(snap)
        _, sd, _ = roll(acts)
        assert np.array_equal(sa, sd)
    with pytest.raises(ValueError, match="WorldSnapshot"):
        env.set_state("not a snapshot")


@pytest.mark.parametrize("name", NAMES)
def test_palette_identities_exact_on_frames(name):
    env = make_world(name)
    obs, info = env.reset(seed=2)
    rng = np.random.default_rng(2)
    pol = make_policy("mixed")
    checked = 0
    for _ in range(40):
        state = info["state"]
        colours = {tuple(c) for c in obs.reshape(-1, 3)}
        assert colours <= {tuple(c) for c in env.palette}, "frame has colours outside the palette"
        labels = classify_pixels(obs, env.palette)
        vis = info["visible_fraction"]
        for i in np.nonzero(state[:, PRESENT] > 0)[0]:
            if vis[i] == 1.0:  # fully visible: every own pixel shows, centroid at the true position
                rr, cc = np.nonzero(labels == i + 1)
                assert len(rr) > 0
                if state[i, W] > 0:  # all shapes are point-symmetric about their centre
                    px, py = world_to_pixel(state[i, X], state[i, Y], 64, 64)
                    assert abs(cc.mean() + 0.5 - px) <= 0.5 and abs(rr.mean() + 0.5 - py) <= 0.5
                    checked += 1
        obs, _, term, _, info = env.step(pol(env, rng))
        if term:
            break
    assert checked > 0


@pytest.mark.parametrize("name", NAMES)
def test_any_render_size_and_antialias_flag(name):
    env = make_world(name, render_size=(48, 80))
    obs, info = env.reset(seed=0)
    assert obs.shape == (48, 80, 3) and env.observation_space.contains(obs)
    assert np.array_equal(env.render(), obs)
    assert np.array_equal(env.render_state(info["state"]), obs)  # the env renders through render_state
    soft = make_world(name, antialias=True).reset(seed=0)[0]
    assert soft.shape == (64, 64, 3) and len({tuple(c) for c in soft.reshape(-1, 3)}) > len(env.palette)

"""record_episode alignment, captions and policies."""

import numpy as np
import pytest

from gedanken.data.episode import EpisodeMeta
from gedanken.worlds import WORLDS, make_world
from gedanken.worlds.captions import caption_episode
from gedanken.worlds.palette import colour_name
from gedanken.worlds.policies import NoisyExpertPolicy, RandomPolicy, make_policy
from gedanken.worlds.record import record_episode
from gedanken.worlds.state import PRESENT


@pytest.mark.parametrize("name", list(WORLDS))
def test_record_episode_is_valid_and_aligned(name):
    ep = record_episode(name, "train", seed=3, steps=24)
    ep.validate()
    t = len(ep)
    assert 2 <= t <= 24 and ep.frames.shape[1:] == (64, 64, 3)
    assert ep.rewards[0] == 0 and not ep.terminated[0] and (ep.actions[-1] == 0).all()
    assert ep.states.shape == (t, make_world(name).max_objects, 10)
    assert ep.meta.world == name and ep.meta.action_space.dim == ep.actions.shape[1]
    assert len(ep.meta.palette) == ep.states.shape[1] + 1 and len(ep.meta.kinds) == ep.states.shape[1]
    assert ep.caption
    # re-simulate the recording: same seed, split and actions -> the same frames
    env = make_world(name, split="train")
    obs, _ = env.reset(seed=3)
    assert np.array_equal(obs, ep.frames[0])
    for k in range(t - 1):
        a = ep.actions[k] if ep.meta.action_space.kind != "discrete" else int(ep.actions[k, 0])
        obs, r, *_ = env.step(a)
        assert np.array_equal(obs, ep.frames[k + 1]) and np.float32(r) == ep.rewards[k + 1]
    same = record_episode(name, "train", seed=3, steps=24)
    assert np.array_equal(same.frames, ep.frames) and same.caption == ep.caption


def test_terminated_push_episode_stops_at_the_terminal_frame():
    for seed in range(40):
        ep = record_episode("push", "train", seed=seed, steps=200, policy="expert")
        if len(ep) < 200:
            assert ep.terminated[-1] and not ep.terminated[:-1].any()
            assert ep.rewards.sum() > 0 and ep.caption.count("into the goal") >= 1
            return
    pytest.fail("the expert never solved Push in 40 episodes")


def test_record_rejects_bad_arguments():
    with pytest.raises(ValueError, match="valid worlds"):
        record_episode("pong", "train", 0, 10)
    with pytest.raises(ValueError, match="valid policies"):
        record_episode("push", "train", 0, 10, policy="smart")
    with pytest.raises(ValueError, match="steps"):
        record_episode("push", "train", 0, 0)


@pytest.mark.parametrize("name", list(WORLDS))
def test_captions_name_the_present_colours(name):
    ep = record_episode(name, "train", seed=1, steps=40)
    present = np.nonzero(ep.states[0, :, PRESENT] > 0)[0]
    for i in present:
        if ep.meta.kinds[i] in ("ball", "block", "object", "cup", "occluder"):
            assert colour_name(ep.meta.palette[i + 1]) in ep.caption, (ep.caption, i)
    absent = [i for i in range(ep.states.shape[1]) if i not in present]
    for i in absent:
        assert colour_name(ep.meta.palette[i + 1]) not in ep.caption


def test_bounce_caption_counts_bounces_and_weight():
    ep = record_episode("bounce", "train", seed=4, steps=96, policy="noop")
    assert "red ball" in ep.caption and "falls" in ep.caption and "bounces" in ep.caption
    meta = ep.meta
    with pytest.raises(ValueError, match="valid"):
        caption_episode("pong", ep.states, ep.contacts, meta)
    heavy = ep.states.copy()
    heavy[:, 0, 9] = 3.0
    assert caption_episode("bounce", heavy, ep.contacts, meta).startswith("a heavy")
    assert isinstance(meta, EpisodeMeta)


def test_grasp_caption_says_lift_or_slip():
    lifted = record_episode("grasp", "train", seed=0, steps=96, policy="expert")
    assert "lifts" in lifted.caption and "slips" not in lifted.caption
    slips = [record_episode("grasp", "ood", seed=s, steps=96, policy="expert").caption for s in range(4)]
    assert any("slip" in c for c in slips), slips


def test_policies():
    env = make_world("push")
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    a = RandomPolicy(hold=3)
    acts = [a(env, rng) for _ in range(6)]
    assert np.array_equal(acts[0], acts[2]) and not np.array_equal(acts[0], acts[3])
    assert env.action_space.contains(NoisyExpertPolicy(0.5)(env, rng))
    d = make_world("push_discrete")
    d.reset(seed=0)
    assert d.action_space.contains(make_policy("mixed")(d, rng))
    assert d.action_space.contains(make_policy("noisy_expert")(d, rng))
    b = make_world("bounce")
    b.reset(seed=0)
    assert (make_policy("random")(b, rng) == 0).all()


def _block_moving_share(policy: str, episodes: int = 8) -> float:
    moved = total = 0
    for seed in range(episodes):
        s = record_episode("push", "train", seed=seed, steps=64, policy=policy).states
        step = np.abs(np.diff(s[:, 1:4, :2], axis=0)).sum(-1)  # (T-1, 3) block motion per step
        moved += int((step > 0.05).any(-1).sum())
        total += len(step)
    return moved / total


def test_poke_policy_pushes_blocks_more_often_than_mixed():
    assert _block_moving_share("poke") > _block_moving_share("mixed")
    rng = np.random.default_rng(0)
    for name in ("push_discrete", "grasp", "bounce"):  # discrete, expert without a target, no expert
        env = make_world(name)
        env.reset(seed=0)
        pol = make_policy("poke")
        assert all(env.action_space.contains(pol(env, rng)) for _ in range(30)), name


def test_poke_walls_draws_targets_up_to_the_walls():
    """``poke`` keeps its targets 6 units off the walls, ``poke_walls`` draws them anywhere inside,
    ``poke_into_walls`` up to 8 units beyond."""
    env = make_world("push")
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    edge = {}
    for name in ("poke", "poke_walls", "poke_into_walls"):
        pol = make_policy(name)
        targets = []
        for _ in range(40 * pol.segment):
            pol(env, rng)
            if pol._target is not None:
                targets.append(pol._target.copy())
        t = np.stack(targets)
        edge[name] = float(np.minimum(t, 64.0 - t).min())
    assert edge["poke"] >= 6.0 and 0.0 <= edge["poke_walls"] < 2.0 and -8.0 <= edge["poke_into_walls"] < -6.0


def _pusher_over_goal(frames):
    """Share of frames in which a pusher pixel (red) lies inside the goal square's (magenta) bounding box."""
    red, mag = (frames == [255, 0, 0]).all(-1), (frames == [255, 0, 255]).all(-1)
    ys, xs = np.where(mag.any(0))
    return float(red[:, ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].any((1, 2)).mean())


def test_cross_goal_drives_the_pusher_over_the_goal_far_more_than_the_default_policy():
    share = {}
    for name in ("mixed", "cross_goal"):
        eps = [record_episode("push", "train", seed, 64, policy=name) for seed in range(6)]
        share[name] = float(np.mean([_pusher_over_goal(e.frames) for e in eps]))
    assert share["cross_goal"] > 0.3 and share["cross_goal"] > 3 * share["mixed"], share


@pytest.mark.parametrize("name", ["push_discrete", "bounce"])
def test_cross_goal_gives_valid_actions_with_discrete_actions_or_without_a_goal(name):
    env = make_world(name)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    pol = make_policy("cross_goal")
    assert all(env.action_space.contains(pol(env, rng)) for _ in range(40)), name

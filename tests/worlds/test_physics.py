"""The worlds' physics does what docs/worlds.md says."""

import numpy as np

from gedanken.worlds import make_world
from gedanken.worlds.bounce import BounceParams
from gedanken.worlds.grasp import CUP_SLOT, GraspParams
from gedanken.worlds.occlude import OccludeParams
from gedanken.worlds.push import GOAL_SLOT, PushParams
from gedanken.worlds.state import VX, VY, X, Y


def test_bounce_free_flight_has_the_set_gravity_and_floor_contacts():
    p = BounceParams(radii=(3.0,), masses=(1.0,), speeds=(0.0,), gravity=40.0, restitution=0.9)
    env = make_world("bounce", params=p)
    _, info = env.reset(seed=0)
    states, contacts = [info["state"]], [info["contacts"]]
    for _ in range(60):
        _, _, _, _, info = env.step(np.zeros(1, np.float32))
        states.append(info["state"])
        contacts.append(info["contacts"])
    s, c = np.stack(states), np.stack(contacts)
    free = np.nonzero(c[:, 0] == 0)[0]
    free = free[free > 0][:4]  # first contact-free transitions
    dv = (s[free, 0, VY] - s[free - 1, 0, VY]) * env.fps
    assert np.allclose(dv, -40.0, rtol=1e-3)
    assert (c[:, 0] & 1).any()  # it reaches the floor
    bounce_t = int(np.argmax(c[:, 0] & 1))
    assert s[bounce_t, 0, VY] > 0 > s[bounce_t - 1, 0, VY]
    assert s[:, 0, Y].min() >= 3.0 - 0.5  # never sinks into the floor


def test_bounce_ball_contacts_are_symmetric():
    p = BounceParams(radii=(3.0, 3.0), masses=(1.0, 1.0), speeds=(30.0, 30.0), gravity=0.0, restitution=1.0)
    env = make_world("bounce", params=p)
    env.reset(seed=1)
    seen = False
    for _ in range(300):
        _, _, _, _, info = env.step(np.zeros(1, np.float32))
        c = info["contacts"]
        assert bool(c[0] >> 2 & 1) == bool(c[1] >> 1 & 1)
        seen |= bool(c[0] >> 2 & 1)
    assert seen


def test_push_action_drives_the_pusher_and_reward_is_progress():
    env = make_world("push", params=PushParams(sides=(6.0,), masses=(1.0,), friction=0.5, pusher_speed=20.0))
    _, info = env.reset(seed=0)
    s0 = info["state"]
    _, _, _, _, info = env.step(np.array([1.0, 0.0], np.float32))
    _, _, _, _, info = env.step(np.array([1.0, 0.0], np.float32))
    assert info["state"][0, VX] > 15.0 and abs(info["state"][0, VY]) < 2.0
    total = 0.0
    for _ in range(150):
        obs, r, term, _, info = env.step(env.expert_action())
        total += r
        if term:
            break
    assert term and info["blocks_in_goal"].all()
    d0 = np.hypot(*(s0[1, [X, Y]] - s0[GOAL_SLOT, [X, Y]]))
    d1 = np.hypot(*(info["state"][1, [X, Y]] - info["state"][GOAL_SLOT, [X, Y]]))
    assert np.isclose(total, d0 - d1, atol=1e-3)


def test_push_block_stops_under_ground_friction():
    env = make_world("push", params=PushParams(sides=(6.0,), masses=(1.0,), friction=0.5))
    env.reset(seed=0)
    env._sim.bodies[1].velocity = (20.0, 0.0)  # launch the block, then let friction act
    for _ in range(30):
        _, _, _, _, info = env.step(np.zeros(2, np.float32))
    assert abs(info["state"][1, VX]) < 1e-3


def test_occlude_object_disappears_and_reemerges():
    p = OccludeParams(sizes=(6.0,), speeds=(20.0,), occluder_width=16.0)
    env = make_world("occlude", params=p)
    _, info = env.reset(seed=0)
    hidden, vis = [], []
    for _ in range(120):
        _, _, _, _, info = env.step(np.zeros(1, np.float32))
        hidden.append(info["hidden"][0])
        vis.append(info["visible_fraction"][0])
        assert info["state"][0, 0] == 1.0  # present in the state even when hidden
    hidden = np.array(hidden)
    assert hidden.any() and (~hidden[np.argmax(hidden) :]).any()  # hidden, then visible again
    assert np.all(np.array(vis)[hidden] == 0.0)


def test_grasp_weak_grip_slips_strong_grip_lifts():
    p = GraspParams(cup_mass=1.0, friction=0.5, gravity=30.0, grip_force=100.0)
    assert np.isclose(p.min_grip(), 0.3)
    env = make_world("grasp", params=p)
    env.reset(seed=0)
    for _ in range(60):  # expert: descend, close
        a = env.expert_action()
        if a[0] > 0:
            break
        env.step(a)
    snap = env.get_state()
    floor = {}
    for grip in (0.6, 0.15):  # counterfactual branches from one moment
        env.set_state(snap)
        for _ in range(25):
            _, _, _, _, info = env.step(np.array([1.0, grip], np.float32))
        floor[grip] = info["cup_height_above_floor"]
    assert floor[0.6] > 15.0  # holds: 2 * 0.5 * 60 = 60 > 30
    assert floor[0.15] < 1.0  # slips: 2 * 0.5 * 15 = 15 < 30
    assert env.state_array()[CUP_SLOT, Y] < 10.0


def test_push_expert_with_a_target_pushes_the_block_there():
    env = make_world("push", params=PushParams(sides=(6.0,), masses=(1.0,), friction=0.5, pusher_speed=20.0))
    _, info = env.reset(seed=1)
    block = info["state"][1, [X, Y]].astype(np.float64)
    target = np.clip(block + np.array([-12.0, 10.0]), 8.0, 56.0)  # somewhere that is not the goal
    d0 = np.hypot(*(block - target))
    for _ in range(120):
        _, _, _, _, info = env.step(env.expert_action(target=target))
    d1 = np.hypot(*(info["state"][1, [X, Y]] - target))
    assert d1 < 0.5 * d0, (d0, d1)

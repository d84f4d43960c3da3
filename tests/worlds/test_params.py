"""Parameter validation and the named splits (ranges as documented in docs/worlds.md)."""

import numpy as np
import pytest

from gedanken.worlds import WORLDS, bounce, grasp, make_world, occlude, push
from gedanken.worlds.bounce import BounceParams
from gedanken.worlds.grasp import GraspParams
from gedanken.worlds.occlude import OccludeParams
from gedanken.worlds.push import PushParams
from gedanken.worlds.splits import SPLITS, uniform_outside

N = 200  # samples per split


def _samples(name, split):
    cls = WORLDS[name]
    rng = np.random.default_rng(0)
    return [cls.sample_params(split, rng) for _ in range(N)]


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: BounceParams(radii=(), masses=(), speeds=()), "1..6 balls"),
        (lambda: BounceParams(radii=(3.0,) * 7, masses=(1.0,) * 7, speeds=(1.0,) * 7), "1..6 balls"),
        (lambda: BounceParams(radii=(3.0,), masses=(-1.0,), speeds=(1.0,)), "mass"),
        (lambda: BounceParams(radii=(1.0,), masses=(1.0,), speeds=(1.0,)), "radius"),
        (lambda: BounceParams(radii=(3.0, 3.0), masses=(1.0,), speeds=(1.0, 1.0)), "2 entries"),
        (lambda: BounceParams(radii=(3.0,), masses=(1.0,), speeds=(1.0,), restitution=1.5), "restitution"),
        (lambda: BounceParams(radii=(3.0,), masses=(1.0,), speeds=(float("nan"),)), "speed"),
        (lambda: PushParams(sides=(5.0,) * 4, masses=(1.0,) * 4), "1..3 blocks"),
        (lambda: PushParams(sides=(5.0,), masses=(0.0,)), "block mass"),
        (lambda: PushParams(sides=(2.0,), masses=(1.0,)), "block side"),
        (lambda: PushParams(sides=(5.0,), masses=(1.0,), friction=-0.1), "friction"),
        (lambda: OccludeParams(sizes=(5.0,), speeds=(-1.0,)), "speed"),
        (lambda: OccludeParams(sizes=(5.0,) * 5, speeds=(1.0,) * 5), "1..4 objects"),
        (lambda: GraspParams(cup_mass=-2.0), "cup_mass"),
        (lambda: GraspParams(grip_force=0.0), "grip_force"),
    ],
)
def test_invalid_params_are_refused_with_the_reason(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_env_validates_params_split_and_options():
    with pytest.raises(ValueError, match="valid splits"):
        make_world("bounce", split="validation")
    with pytest.raises(ValueError, match="1..6 balls"):
        make_world("bounce", params={"radii": [], "masses": [], "speeds": []})
    with pytest.raises(ValueError, match="unknown BounceParams fields"):
        make_world("bounce", params={"radius": [3.0]})
    env = make_world("bounce", params={"radii": [3.0, 4.0], "masses": [1, 2], "speeds": [5, 6]})
    _, info = env.reset(seed=0)
    assert int(info["state"][:, 0].sum()) == 2 and env.params.masses == (1.0, 2.0)
    _, info = env.reset(seed=0, options={"params": BounceParams(radii=(3.0,), masses=(1.0,), speeds=(0.0,))})
    assert int(info["state"][:, 0].sum()) == 1
    with pytest.raises(ValueError, match="unknown reset options"):
        env.reset(seed=0, options={"gravity": 3})


@pytest.mark.parametrize("name", ["bounce", "push", "occlude", "grasp"])
def test_every_split_samples_valid_params_and_json_round_trips(name):
    cls = WORLDS[name]
    for split in SPLITS:
        p = _samples(name, split)[0]
        assert cls.params_type(**p.to_json()) == p


def test_split_name_changes_the_episode_under_equal_seeds():
    a = make_world("bounce", split="train").reset(seed=4)[1]["state"]
    b = make_world("bounce", split="test").reset(seed=4)[1]["state"]
    assert not np.array_equal(a, b)


def test_uniform_outside_avoids_the_band():
    rng = np.random.default_rng(0)
    v = np.array([uniform_outside(rng, 0.0, 30.0, 15.0, 20.0) for _ in range(2000)])
    assert v.min() >= 0 and v.max() <= 30 and not ((v > 15) & (v < 20)).any()
    assert (v > 20).any() and (v < 15).any()


def test_bounce_splits():
    train = _samples("bounce", "train")
    speeds = np.concatenate([p.speeds for p in train])
    radii = np.concatenate([p.radii for p in train])
    assert not ((speeds > bounce.SPEED_GAP[0]) & (speeds < bounce.SPEED_GAP[1])).any()
    assert not ((radii >= bounce.BIG_RADIUS) & (speeds >= bounce.FAST_SPEED)).any()  # combo held out
    assert (radii >= bounce.BIG_RADIUS).any() and (speeds >= bounce.FAST_SPEED).any()  # parts are seen
    assert max(p.n_balls for p in train) <= 4
    ood = _samples("bounce", "ood")
    assert min(min(p.speeds) for p in ood) > speeds.max()
    assert min(min(p.masses) for p in ood) > max(max(p.masses) for p in train)
    assert min(p.n_balls for p in ood) > 4
    gap = np.concatenate([p.speeds for p in _samples("bounce", "gap")])
    assert ((gap >= bounce.SPEED_GAP[0]) & (gap <= bounce.SPEED_GAP[1])).all()
    combo = _samples("bounce", "combo")
    assert all(min(p.radii) >= bounce.BIG_RADIUS and min(p.speeds) >= bounce.FAST_SPEED for p in combo)


def test_push_splits():
    train = _samples("push", "train")
    fr = np.array([p.friction for p in train])
    assert not ((fr > push.FRICTION_GAP[0]) & (fr < push.FRICTION_GAP[1])).any()
    sides = np.concatenate([p.sides for p in train])
    masses = np.concatenate([p.masses for p in train])
    assert not ((sides >= push.BIG_SIDE) & (masses >= push.HEAVY_MASS)).any()
    ood = _samples("push", "ood")
    assert all(p.n_blocks > max(q.n_blocks for q in train) for p in ood)
    assert min(min(p.masses) for p in ood) > masses.max() and min(p.friction for p in ood) > fr.max()
    assert min(p.pusher_speed for p in ood) > max(p.pusher_speed for p in train)
    gap = np.array([p.friction for p in _samples("push", "gap")])
    assert ((gap >= push.FRICTION_GAP[0]) & (gap <= push.FRICTION_GAP[1])).all()
    combo = _samples("push", "combo")
    assert all(min(p.sides) >= push.BIG_SIDE and min(p.masses) >= push.HEAVY_MASS for p in combo)


def test_occlude_splits():
    train = _samples("occlude", "train")
    w = np.array([p.occluder_width for p in train])
    assert not ((w > occlude.WIDTH_GAP[0]) & (w < occlude.WIDTH_GAP[1])).any()
    sizes = np.concatenate([p.sizes for p in train])
    speeds = np.concatenate([p.speeds for p in train])
    assert not ((sizes <= occlude.SMALL_SIZE) & (speeds >= occlude.FAST_SPEED)).any()
    ood = _samples("occlude", "ood")
    assert min(min(p.speeds) for p in ood) > speeds.max() and min(p.occluder_width for p in ood) > w.max()
    assert min(p.n_objects for p in ood) > max(p.n_objects for p in train)
    gap = np.array([p.occluder_width for p in _samples("occlude", "gap")])
    assert ((gap >= occlude.WIDTH_GAP[0]) & (gap <= occlude.WIDTH_GAP[1])).all()
    combo = _samples("occlude", "combo")
    assert all(max(p.sizes) <= occlude.SMALL_SIZE and min(p.speeds) >= occlude.FAST_SPEED for p in combo)


def test_grasp_splits():
    train = _samples("grasp", "train")
    m = np.array([p.cup_mass for p in train])
    mu = np.array([p.friction for p in train])
    assert not ((m > grasp.MASS_GAP[0]) & (m < grasp.MASS_GAP[1])).any()
    assert not ((m >= grasp.HEAVY_MASS) & (mu <= grasp.SLIPPERY)).any()
    ood = _samples("grasp", "ood")
    assert min(p.cup_mass for p in ood) > m.max() and min(p.gravity for p in ood) > max(
        p.gravity for p in train
    )
    gap = np.array([p.cup_mass for p in _samples("grasp", "gap")])
    assert ((gap >= grasp.MASS_GAP[0]) & (gap <= grasp.MASS_GAP[1])).all()
    combo = _samples("grasp", "combo")
    assert all(p.cup_mass >= grasp.HEAVY_MASS and p.friction <= grasp.SLIPPERY for p in combo)

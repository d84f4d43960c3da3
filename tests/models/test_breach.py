"""Breach forcing (models/breach.py): recorded states redrawn with objects pressed into what they touch, here as
the DiT's context (FlowConfig.breach_forcing); the autoregressive dynamics' use is in
tests/models/autoregressive/test_breach_forcing.py."""

from dataclasses import replace

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from gedanken.models.breach import breach_context, pressed_states
from gedanken.models.diffusion.config import FlowConfig, Target
from gedanken.worlds.state import ANGLE, PRESENT, H, W, X, Y, empty_state


@pytest.fixture(scope="module")
def push(tmp_path_factory):  # noqa: ANN001, ANN201
    from gedanken.data.collect import collect
    from gedanken.models.diffusion.data import load_data

    path = tmp_path_factory.mktemp("push")
    collect("push", path / "data", 2, steps=12, seed=0, workers=1)
    return path / "data", load_data(path / "data")


def _scene(*objects: tuple[float, float, float]) -> np.ndarray:
    """A (1, K, F) state of discs at (x, y) with radius r."""
    st = empty_state(len(objects))
    for i, (x, y, r) in enumerate(objects):
        st[i, PRESENT], st[i, X], st[i, Y], st[i, W], st[i, H] = 1, x, y, 2 * r, 2 * r
    return st[None]


def _pressed_always(
    states: np.ndarray, shapes, kinds, depth: float = 1.5, walls_only: bool = False
) -> np.ndarray:  # noqa: ANN001
    """pressed_states with every object drawn as stuck (tries seeds until all are)."""
    for seed in range(200):
        rng = np.random.default_rng(seed)
        if (rng.random(states.shape[1]) < 0.5).all():
            return pressed_states(states, shapes, kinds, depth, np.random.default_rng(seed), walls_only)
    raise AssertionError("no seed draws every object")


def test_a_ball_at_the_floor_is_pressed_into_it_and_one_in_free_space_is_not() -> None:
    st = _scene((20.0, 4.5, 4.0), (44.0, 32.0, 4.0))  # 0.5 above the floor; far from everything
    out = _pressed_always(st, ("circle", "circle"), ("ball", "ball"))
    below = 4.0 - out[0, 0, Y]  # how far past the floor (y = 0)
    assert 0 < below <= 1.5 and out[0, 0, X] == st[0, 0, X]
    np.testing.assert_array_equal(out[0, 1], st[0, 1])


def test_touching_balls_are_pressed_together_and_goals_never_move() -> None:
    st = _scene((20.0, 32.0, 4.0), (28.5, 32.0, 4.0), (50.0, 50.0, 4.0))  # 0.5 apart; a goal nearby-free
    out = _pressed_always(st, ("circle", "circle", "box"), ("ball", "ball", "goal"))
    gap = abs(out[0, 1, X] - out[0, 0, X]) - 8.0
    assert gap < 0 and gap >= -3.0  # each pressed in by at most 1.5
    np.testing.assert_array_equal(out[0, :, Y], st[0, :, Y])  # along the line between them
    np.testing.assert_array_equal(out[0, 2], st[0, 2])
    near_goal = _scene((20.0, 32.0, 4.0), (28.5, 32.0, 4.0))
    out = _pressed_always(near_goal, ("circle", "box"), ("pusher", "goal"))
    np.testing.assert_array_equal(out, near_goal)  # a goal is passed over, not pressed against


def test_walls_only_presses_into_walls_and_never_balls_together() -> None:
    st = _scene(
        (20.0, 32.0, 4.0), (28.5, 32.0, 4.0), (40.0, 4.5, 4.0)
    )  # a touching pair; a ball at the floor
    out = _pressed_always(st, ("circle",) * 3, ("ball",) * 3, walls_only=True)
    np.testing.assert_array_equal(out[0, :2], st[0, :2])  # the pair stays apart
    assert 0 < 4.0 - out[0, 2, Y] <= 1.5  # the ball at the floor is pressed in
    both = _pressed_always(st, ("circle",) * 3, ("ball",) * 3)
    assert abs(both[0, 1, X] - both[0, 0, X]) < 8.0  # without walls_only the pair is pressed together


def test_a_rotated_box_is_pressed_by_its_extent() -> None:
    st = _scene((32.0, 6.0, 4.0))
    st[0, 0, ANGLE] = np.pi / 4  # an 8x8 box at 45 degrees reaches 5.66 down: 0.34 into the floor already
    out = _pressed_always(st, ("box",), ("block",))
    assert out[0, 0, Y] < st[0, 0, Y] and 5.66 - out[0, 0, Y] <= 1.5 + 1e-5


def test_no_recorded_frame_changes_when_nothing_is_stuck(push) -> None:  # noqa: ANN001
    from gedanken.worlds.render import render_state

    _, data = push
    pal = np.asarray(data.palette, dtype=np.uint8)
    states = data.states[0].numpy()
    rng = np.random.default_rng(0)
    same = np.stack([render_state(s, data.shapes[0], pal, kinds=data.kinds[0]) for s in states])
    np.testing.assert_array_equal(same, data.frames[0].numpy())  # the redraw is the recording
    moved = pressed_states(states, data.shapes[0], data.kinds[0], 1.5, rng)
    assert moved.shape == states.shape
    assert np.abs(moved - states).max() <= 1.5 + 2 * 1.5 + 1e-4  # gap (< depth) + depth, at most


def test_bad_input_is_refused() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="T, K, F"):
        pressed_states(empty_state(1), ("circle",), ("ball",), 1.0, rng)
    with pytest.raises(ValueError, match="depth_px"):
        pressed_states(empty_state(1)[None], ("circle",), ("ball",), float("nan"), rng)
    with pytest.raises(ValueError, match="shape and kind"):
        pressed_states(empty_state(1)[None], ("circle", "box"), ("ball",), 1.0, rng)
    with pytest.raises(ValueError, match="no states"):
        breach_context(0.5, 1.0, None, (), (), (), lambda f: f, 0)
    with pytest.raises(ValueError, match="palette"):
        breach_context(
            0.5,
            1.0,
            [torch.zeros(2, 2, 10)],
            [("circle", "circle")],
            [("", "")],
            ((0, 0, 0),),
            lambda f: f,
            0,
        )
    with pytest.raises(ValueError, match="kinds of every episode"):
        breach_context(
            0.5, 1.0, [torch.zeros(2, 1, 10)], [("circle",)], [], ((0, 0, 0), (9, 9, 9)), lambda f: f, 0
        )
    assert breach_context(0.0, 1.0, None, (), (), (), lambda f: f, 0) is None  # off: nothing is checked


@pytest.mark.parametrize(
    ("kwargs", "said"),
    [
        ({"target": Target.RESIDUAL, "breach_forcing": 1.5}, "breach_forcing"),
        ({"target": Target.RESIDUAL, "breach_forcing": 0.5, "breach_px": 0.0}, "breach_px"),
        ({"breach_forcing": 0.5}, "velocity"),
        ({"target": Target.RESIDUAL, "breach_walls_only": True}, "breach_forcing is 0"),
    ],
)
def test_flow_config_refuses_bad_breach_forcing(kwargs: dict, said: str) -> None:
    with pytest.raises(ValueError, match=said):
        FlowConfig(**kwargs)


def test_context_replaces_the_drawn_windows_only_and_is_reproducible() -> None:
    states = [torch.from_numpy(np.repeat(_scene((20.0, 4.5, 4.0), (44.0, 32.0, 4.0)), 8, axis=0))] * 2
    palette = ((0, 0, 0), (255, 0, 0), (0, 0, 255))
    shapes, kinds = ("circle", "circle"), ("ball", "ball")

    def encode(f: torch.Tensor) -> torch.Tensor:  # (B, T, H, W, 3) uint8 -> a fake "latent" per frame
        return f.float().mean(-1)[:, :, None, ::4, ::4]

    ctx_of = breach_context(0.5, 1.5, states, [shapes] * 2, [kinds] * 2, palette, encode, 7)
    assert ctx_of is not None
    from gedanken.worlds.render import render_state

    frame = torch.from_numpy(render_state(states[0][0].numpy(), shapes, np.array(palette, dtype=np.uint8)))
    pairs = [(0, 0), (1, 2), (0, 1), (1, 0), (0, 2), (1, 1)]
    clean = encode(frame[None, None].expand(len(pairs), 6, -1, -1, -1).contiguous())
    changed_any = 0
    for step in range(8):
        drawn = np.random.default_rng([7, step, 2]).random(len(pairs)) < 0.5
        ctx = ctx_of(pairs, clean, step)
        if ctx is None:
            assert not drawn.any()
            continue
        assert ctx.shape == clean.shape
        changed = np.array([not torch.equal(ctx[i], clean[i]) for i in range(len(pairs))])
        assert not (changed & ~drawn).any()  # windows that were not drawn keep their latents
        torch.testing.assert_close(ctx, ctx_of(pairs, clean, step))  # same step, same context
        changed_any += int(changed.sum())
    assert changed_any > 0


def test_each_episode_is_redrawn_with_its_own_slots() -> None:
    from gedanken.worlds.render import render_state

    one = np.repeat(_scene((20.0, 32.0, 4.0), (0.0, 0.0, 0.0)), 4, axis=0)
    one[:, 1, PRESENT] = 0  # episode 0: one ball; episode 1: two, both in free space (nothing is pressed)
    two = np.repeat(_scene((20.0, 32.0, 4.0), (44.0, 32.0, 4.0)), 4, axis=0)
    shapes, kinds = [("circle", ""), ("circle", "circle")], [("ball", ""), ("ball", "ball")]
    palette = np.array([[0, 0, 0], [255, 0, 0], [0, 0, 255]], dtype=np.uint8)

    def encode(f: torch.Tensor) -> torch.Tensor:
        return f.float()

    ctx_of = breach_context(
        1.0, 1.5, [torch.from_numpy(one), torch.from_numpy(two)], shapes, kinds, palette, encode, 0
    )
    assert ctx_of is not None
    clean = torch.stack(
        [
            torch.from_numpy(np.stack([render_state(s, shapes[e], palette) for s in st])).float()
            for e, st in enumerate((one, two))
        ]
    )
    ctx = ctx_of([(0, 0), (1, 0)], clean, 0)
    assert ctx is not None
    torch.testing.assert_close(ctx, clean)  # the second ball of episode 1 is drawn (it once was not)


def test_the_loss_predicts_the_true_frames_from_the_given_context() -> None:
    from gedanken.models.diffusion.model import DiffusionWorldModel, LatentBatch
    from gedanken.models.diffusion.recipe import tiny

    cfg = tiny().model
    cfg = replace(cfg, flow=replace(cfg.flow, target=Target.RESIDUAL, action_dropout=0.0, text_dropout=0.0))
    model = DiffusionWorldModel(cfg)
    c, h = cfg.tokenizer.latent_channels, cfg.height // model.tokenizer.stride
    x = torch.randn(2, cfg.window, c, h, h)
    batch = LatentBatch(
        latents=x,
        actions=torch.zeros(2, cfg.window, cfg.action_dim),
        rewards=torch.zeros(2, cfg.window),
        terminated=torch.zeros(2, cfg.window, dtype=torch.bool),
    )

    def loss(b: LatentBatch) -> float:
        torch.manual_seed(0)
        return float(model.loss(b)[0].detach())

    assert loss(batch) == loss(replace(batch, context=x.clone()))  # the latents themselves: the same loss
    assert loss(batch) != loss(replace(batch, context=x + 0.5))  # another context: another loss


def test_training_runs_with_breach_forcing(push, tmp_path) -> None:  # noqa: ANN001
    from gedanken.models.checkpoint import read_checkpoint
    from gedanken.models.diffusion.recipe import tiny, train_diffusion

    path, data = push
    r = tiny()
    flow = FlowConfig(
        target=Target.RESIDUAL, change_weight=8.0, breach_forcing=1.0, breach_px=2.0, breach_walls_only=True
    )
    r = replace(r, model=replace(r.model, flow=flow))
    res = train_diffusion(r, path, tmp_path / "run", device="cpu", progress=False)
    assert len(data.shapes) == len(data.kinds) == len(data.frames)  # one entry per episode
    saved = read_checkpoint(res.model_dir).model_config["flow"]
    assert saved["breach_forcing"] == 1.0 and saved["breach_px"] == 2.0 and saved["breach_walls_only"] is True
    cont = train_diffusion(r, path, tmp_path / "more", device="cpu", progress=False, init=res.model_dir)
    assert "breach_forcing 1, breach_px 2, walls only" in read_checkpoint(cont.model_dir).card.notes


def test_cli_refuses_breach_forcing_out_of_range_before_recording(tmp_path) -> None:  # noqa: ANN001
    from gedanken.cli import app

    args = ["train", "diffusion", "--preset", "tiny", "--world", "push", "--data", str(tmp_path / "d")]
    res = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "run"), "--breach-forcing", "2"])
    assert res.exit_code == 2 and "breach_forcing" in " ".join(res.output.split())
    assert not (tmp_path / "run").exists() and not (tmp_path / "d").exists()
    res = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "run"), "--breach-walls-only"])
    assert res.exit_code == 2 and "breach_forcing is 0" in " ".join(res.output.split())
    assert not (tmp_path / "run").exists() and not (tmp_path / "d").exists()

"""Baselines under the harness, and model resolution."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from audit_helpers import PALETTE, TinyDrift, make_truth

from gedanken.audit.baselines import ConstantVelocity, CopyLastFrame, GroundTruth, NoiseFloor
from gedanken.audit.harness import EpisodeInfo, derangement, rollout
from gedanken.audit.judge import judge_frames
from gedanken.audit.registry import BASELINES, ModelSpecError, check_world, load_model
from gedanken.models.protocol import WorldModel


def _line_tracks(t: int = 12) -> np.ndarray:
    """(1, T, K, 2): ball 0 moves at (1.5, -0.5) per frame, ball 1 at (0, 1), slot 2 absent."""
    h = np.arange(t)[:, None]
    out = np.full((1, t, 3, 2), np.nan)
    out[0, :, 0] = (10, 40) + h * (1.5, -0.5)
    out[0, :, 1] = (40, 10) + h * (0.0, 1.0)
    return out


def test_every_baseline_speaks_the_protocol() -> None:
    for name, make in BASELINES.items():
        model = make()
        assert isinstance(model, WorldModel) and model.name == name and model.card.family == "baseline"


def test_constant_velocity_extrapolates_exactly() -> None:
    truth = make_truth(_line_tracks(), context=3)
    out = rollout(ConstantVelocity(), truth, truth.actions, seed=0, batch_size=4)
    j_pred, j_true = judge_frames(out.frames, PALETTE), judge_frames(truth.frames, PALETTE)
    assert np.array_equal(j_pred.visible, j_true.visible)
    err = np.hypot(j_pred.col - j_true.col, j_pred.row - j_true.row)[j_true.visible]
    assert err.max() < 0.5


def test_ground_truth_replays_and_steps(bounce_truth) -> None:
    model = GroundTruth()
    idx = np.arange(2)
    model.prepare(EpisodeInfo(truth=bounce_truth, episodes=idx))
    ctx = model.observe(torch.from_numpy(bounce_truth.context_frames[idx]))
    acts = torch.from_numpy(bounce_truth.actions[idx])
    full = model.rollout(ctx, acts)
    assert np.array_equal(full.frames.numpy(), bounce_truth.frames[idx])
    ctx, pred = model.step(ctx, acts[:, 0])  # interactive stepping agrees with the rollout
    assert np.array_equal(pred.frame.numpy(), bounce_truth.frames[idx, 0])
    rest = model.rollout(ctx, acts[:, 1:])
    assert np.array_equal(rest.frames.numpy(), bounce_truth.frames[idx, 1:])


def test_ground_truth_needs_prepare() -> None:
    with pytest.raises(RuntimeError, match="prepare"):
        GroundTruth().observe(torch.zeros(1, 2, 8, 8, 3, dtype=torch.uint8))


def test_copy_last_and_noise_floor() -> None:
    frames = torch.randint(0, 256, (2, 3, 16, 16, 3), dtype=torch.uint8)
    acts = torch.zeros(2, 5, 1)
    copy = CopyLastFrame()
    out = copy.rollout(copy.observe(frames), acts).frames
    assert out.shape == (2, 5, 16, 16, 3) and (out == frames[:, -1:]).all()
    noise = NoiseFloor()
    a = noise.rollout(noise.observe(frames), acts, seed=3).frames
    b = noise.rollout(noise.observe(frames), acts, seed=3).frames
    c = noise.rollout(noise.observe(frames), acts, seed=4).frames
    assert a.dtype == torch.uint8 and torch.equal(a, b) and not torch.equal(a, c)


def test_derangement_moves_everything() -> None:
    rng = np.random.default_rng(0)
    for n in (2, 3, 10):
        p = derangement(n, rng)
        assert sorted(p) == list(range(n)) and (p != np.arange(n)).all()


def test_load_model_errors(tmp_path) -> None:
    assert load_model("copy_last", "bounce").name == "copy_last"
    with pytest.raises(ModelSpecError, match="ground_truth, copy_last, constant_velocity, noise"):
        load_model("gpt5", "bounce")
    with pytest.raises(Exception, match="checkpoint"):  # exists, but is not a checkpoint
        load_model(str(tmp_path), "bounce")
    with pytest.raises(ValueError, match="valid worlds: .*bounce"):
        check_world("mars")
    with pytest.raises(ModelSpecError, match="a shipped model .*diffusion_push"):
        load_model("diffusion_pushh", "push")


def test_load_model_takes_a_shipped_name_and_refuses_a_world_it_cannot_act_in() -> None:
    assert load_model("jepa_push", "push").card.world == "push"
    with pytest.raises(ValueError, match="cannot drive this model"):
        load_model("jepa_push", "bounce")


def test_external_env_is_audited_on_pixels() -> None:
    from gedanken.audit import AuditConfig, run_audit

    cfg = AuditConfig(branches=2, branch_episodes=1)
    r = run_audit(["copy_last"], "CartPole-v1", episodes=2, horizon=3, context=2, config=cfg, baselines=True)
    assert r.splits == ["external"] and [m.name for m in r.models] == ["copy_last", "ground_truth", "noise"]
    gt = r.model("ground_truth").splits["external"].scalars
    assert gt["psnr"] == 100.0 and gt["delta_psnr"] > 0 and gt["branch_psnr"] == 100.0
    blind = r.model("copy_last").splits["external"].scalars
    assert blind["ctrl_ratio_mse"] == 1.0 and blind["delta_psnr"] == 0.0 and "pos_err" not in blind
    assert r.model("noise").splits["external"].scalars["branch_spread_ratio"] == 0.0  # same seed, same noise
    with pytest.raises(ValueError, match="split 'external'"):
        run_audit(["copy_last"], "CartPole-v1", ["test"], episodes=1, horizon=2)
    with pytest.raises(ValueError, match="built-in world"):
        run_audit(["constant_velocity"], "CartPole-v1", episodes=1, horizon=2)


def test_checkpoint_path_goes_through_the_model_registry(tmp_path) -> None:
    from gedanken.audit import run_audit
    from gedanken.models import ModelCard, register_family, save_checkpoint

    register_family("audit_test_drift", lambda cfg: TinyDrift(**cfg))
    card = ModelCard(
        name="tiny_drift", family="audit_test_drift", world="bounce", steps=12, train_seconds=3.5
    )
    path = save_checkpoint(
        tmp_path / "ckpt", TinyDrift(), family="audit_test_drift", model_config={"shift": 1}, card=card
    )
    model = load_model(str(path), "bounce")
    assert model.card.steps == 12
    r = run_audit([str(path)], "bounce", episodes=2, horizon=4, context=2, baselines=True)
    audit = r.model("tiny_drift")
    assert audit.card.train_seconds == 3.5 and audit.sentence.startswith("tiny_drift:")
    assert audit.splits["test"].scalars["psnr"] < 100.0


def test_two_checkpoints_of_one_card_are_told_apart_by_their_paths(tmp_path) -> None:
    from gedanken.audit import run_audit
    from gedanken.models import ModelCard, register_family, save_checkpoint

    register_family("audit_test_drift", lambda cfg: TinyDrift(**cfg))
    card = ModelCard(name="tiny_drift", family="audit_test_drift", world="bounce")
    paths = [
        str(
            save_checkpoint(
                tmp_path / d, TinyDrift(), family="audit_test_drift", model_config={"shift": s}, card=card
            )
        )
        for d, s in (("a", 1), ("b", 2))
    ]
    r = run_audit(paths, "bounce", episodes=1, horizon=3, context=2, baselines=False)
    names = [m.name for m in r.models]
    assert names == [f"tiny_drift ({paths[0]})", f"tiny_drift ({paths[1]})"]
    assert r.model(names[0]).splits["test"].scalars != r.model(names[1]).splits["test"].scalars
    with pytest.raises(ValueError, match="share a name"):  # the same checkpoint twice cannot be told apart
        run_audit([paths[0], paths[0]], "bounce", episodes=1, horizon=3, context=2, baselines=False)


def test_recording_reports_progress_and_batching_does_not_change_the_episodes(monkeypatch) -> None:
    import gedanken.audit.harness as harness

    calls: list[tuple[int, int]] = []
    monkeypatch.setattr(harness, "RECORD_BATCH", 3)
    small = harness.collect_truth("bounce", "test", 7, 2, 4, progress=lambda d, t: calls.append((d, t)))
    assert len(calls) >= 2 and calls[-1] == (7, 7)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)  # it only counts up
    monkeypatch.setattr(harness, "RECORD_BATCH", 1000)
    whole = harness.collect_truth("bounce", "test", 7, 2, 4)
    assert small.seeds == whole.seeds and np.array_equal(small.frames, whole.frames)


@pytest.mark.parametrize("workers", [1, 2])
def test_each_audited_model_is_said_as_it_finishes(workers) -> None:
    from gedanken.audit import run_audit

    said: list[str] = []
    run_audit(
        ["copy_last", "noise"],
        "bounce",
        episodes=2,
        horizon=3,
        context=2,
        workers=workers,
        progress=said.append,
    )
    done = [s for s in said if "audited" in s]
    assert done == ["test: copy_last audited (1/2)", "test: noise audited (2/2)"]

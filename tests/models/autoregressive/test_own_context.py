"""Training against the model's own drift (own_context.py, AutoregressiveRecipe.rollout_context) and the
unconditional dynamics (DynamicsConfig.action_dropout == 1)."""

from dataclasses import replace

import pytest
import torch
from typer.testing import CliRunner

from gedanken.models import load_checkpoint
from gedanken.models.autoregressive import AutoregressiveWorldModel
from gedanken.models.autoregressive.config import ActionMode, Stage
from gedanken.models.autoregressive.config import tiny as tiny_config
from gedanken.models.autoregressive.dynamics import DynamicsConfig
from gedanken.models.autoregressive.maskgit import MaskGITConfig
from gedanken.models.autoregressive.own_context import own_past
from gedanken.models.autoregressive.recipe import tiny, train_autoregressive

PALETTE = ((0, 0, 0), (255, 0, 0), (0, 255, 0))


def _model(**dyn: object) -> AutoregressiveWorldModel:
    cfg = tiny_config(action_classes=5)
    cfg = replace(cfg, dynamics=replace(cfg.dynamics, window=5, **dyn), action_mode=ActionMode.LATENT)
    torch.manual_seed(0)
    return AutoregressiveWorldModel(cfg).eval()


def _balls(b: int, t: int) -> torch.Tensor:
    """Flat-coloured clips (B, T, 64, 64, 3): a red and a green square moving right on black."""
    frames = torch.zeros(b, t, 64, 64, 3, dtype=torch.uint8)
    for i in range(b):
        for j in range(t):
            x = 8 + 3 * j + 5 * i
            frames[i, j, 10:18, x : x + 8, 0] = 255
            frames[i, j, 40:48, 50 - x // 2 : 58 - x // 2, 1] = 255
    return frames


def test_the_own_past_is_what_a_rollout_from_the_same_frames_draws() -> None:
    m = _model()
    frames = _balls(3, 5)
    tb = m.encode(frames)
    emb = m._clip_action_emb(m.latent_emb(tb.latent_actions))
    rows = torch.tensor([True, False, True])
    for s in (1, 2, 3):
        out = own_past(m, tb.tokens, emb, rows, start=s)
        assert torch.equal(out[~rows], tb.tokens[~rows])  # windows not flagged keep their own tokens
        assert torch.equal(out[:, :s], tb.tokens[:, :s]) and torch.equal(out[:, -1], tb.tokens[:, -1])
        with torch.no_grad():
            ctx = m.observe(frames[rows, :s])
            ro = m.rollout(ctx, tb.latent_actions[rows, s - 1 : 3, None].float())
        assert torch.equal(out[rows, s:4], ro.latents.flatten(-2))
    changed = own_past(m, tb.tokens, emb, torch.ones(3, dtype=torch.bool), start=1)
    assert not torch.equal(changed[:, 1:4], tb.tokens[:, 1:4])  # an untrained model drifts at once
    with pytest.raises(ValueError, match="starts at a frame"):
        own_past(m, tb.tokens, emb, rows, start=4)
    for _ in range(8):  # at most one own frame: always the one before the last
        out = own_past(m, tb.tokens, emb, rows, most=1)
        assert torch.equal(out[:, :3], tb.tokens[:, :3]) and not torch.equal(out[rows, 3], tb.tokens[rows, 3])
    assert m.training is False


def test_the_own_past_goes_through_the_samplers_projection() -> None:
    m = _model()
    m.cfg = replace(m.cfg, palette=PALETTE)
    tb = m.encode(_balls(2, 5))
    emb = m._clip_action_emb(m.latent_emb(tb.latent_actions))
    rows = torch.ones(2, dtype=torch.bool)
    plain = own_past(m, tb.tokens, emb, rows, start=1)
    m.set_sampler(MaskGITConfig(steps=2, keep_area=0.5))
    held, project = [], m._project
    m._project = lambda frame, ctx: held.append(project(frame, ctx)) or held[-1]  # type: ignore[method-assign]
    projected = own_past(m, tb.tokens, emb, rows, start=1)
    assert len(held) == 3  # frames 1, 2 and 3, each projected as a rollout projects it
    for i, frame in enumerate(held, start=1):
        assert set(map(tuple, frame.reshape(-1, 3).tolist())) <= set(PALETTE)
        assert torch.equal(projected[:, i], m.tokenizer.encode(frame).flatten(-2))
    assert not torch.equal(plain[:, 1:4], projected[:, 1:4])


def test_a_window_flagged_last_only_is_trained_on_its_last_frame_alone() -> None:
    m = _model()
    m.set_stage(Stage.DYNAMICS)
    tb = m.encode(_balls(2, 5))
    emb = m._clip_action_emb(m.latent_emb(tb.latent_actions))
    other = tb.tokens.clone()
    other[:, 1:4] = (other[:, 1:4] + 1) % m.dynamics.vocab  # other targets in the past frames only
    flags = torch.ones(2, dtype=torch.bool)
    losses = []
    for targets, last_only in ((tb.tokens, flags), (other, flags), (tb.tokens, None), (other, None)):
        torch.manual_seed(5)
        losses.append(float(m._token_loss(targets, emb, tb.tokens, None, last_only)[0].detach()))
    assert losses[0] == pytest.approx(losses[1])  # the past is shown, not predicted
    assert losses[2] != pytest.approx(losses[3])


def test_a_model_trained_with_rollout_context_learns_and_says_so(episode_data, tmp_path) -> None:  # noqa: ANN001
    data = episode_data()
    with pytest.raises(ValueError, match="rollout_context"):
        replace(tiny(), rollout_context=1.5)
    with pytest.raises(ValueError, match="rollout_frames"):
        replace(tiny(), rollout_frames=-1)
    recipe = replace(tiny(), rollout_context=1.0, rollout_frames=1)
    recipe = replace(recipe, dynamics_train=replace(recipe.dynamics_train, steps=6))
    res = train_autoregressive(recipe, data, tmp_path / "a", device="cpu")
    m = load_checkpoint(res.model_dir)
    assert "rollout context 1 (own frames at most 1)" in m.card.notes and res.stages["dynamics"].step == 6
    assert m.rollout_context == 0.0  # a training setting: the loaded model rolls out as any other


def test_an_unconditional_dynamics_never_embeds_an_action() -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        DynamicsConfig(action_dropout=1.1)
    assert (
        DynamicsConfig(action_dropout=1.0).unconditional
        and not DynamicsConfig(action_dropout=0.99).unconditional
    )
    cfg = tiny_config(action_classes=5)
    with pytest.raises(ValueError, match="unconditional"):
        replace(
            cfg,
            dynamics=replace(cfg.dynamics, action_dropout=1.0),
            sampler=replace(cfg.sampler, action_guidance=2.0),
        )
    m = _model(action_dropout=1.0)
    with torch.no_grad():
        m.latent_embed.weight.normal_()
    emb = m.latent_emb(torch.tensor([[0, 3], [2, 1]]))
    assert torch.equal(emb, m.dynamics.no_action.expand(2, 2, -1))
    frames = _balls(2, 3)
    with torch.no_grad():
        a = m.rollout(m.observe(frames), torch.zeros(2, 3, 1))
        b = m.rollout(m.observe(frames), torch.full((2, 3, 1), 3.0))
    assert torch.equal(a.latents, b.latents)  # the latent action it is driven with changes nothing
    m.set_stage(Stage.DYNAMICS)
    tb = m.encode(frames)
    torch.manual_seed(1)
    one = m.loss(tb)[0].detach()
    tb.latent_actions = (tb.latent_actions + 2) % 4
    torch.manual_seed(1)
    assert float(m.loss(tb)[0].detach()) == pytest.approx(float(one))


def test_cli_rollout_context_out_of_range_is_refused(tmp_path, tiny_cli_args) -> None:  # noqa: ANN001
    app, args = tiny_cli_args
    res = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "x"), "--rollout-context", "2"])
    assert res.exit_code == 2 and "rollout_context" in res.output
    res = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "x"), "--rollout-frames", "1"])
    assert res.exit_code == 2 and "--rollout-context" in res.output
    assert not (tmp_path / "x").exists() and not (tmp_path / "data").exists()


def test_an_unconditional_model_trains_through_every_stage_and_ignores_real_actions(
    episode_data, tmp_path
) -> None:  # noqa: ANN001
    recipe = tiny()
    recipe = replace(
        recipe, model=replace(recipe.model, dynamics=replace(recipe.model.dynamics, action_dropout=1.0))
    )
    res = train_autoregressive(recipe, episode_data(), tmp_path / "u", device="cpu")
    m = load_checkpoint(res.model_dir)
    assert "unconditional dynamics" in m.card.notes and m.action_mode is ActionMode.ADAPTER
    frames = _balls(2, 3)
    with torch.no_grad():
        a = m.rollout(m.observe(frames, torch.zeros(2, 3, 2)), torch.zeros(2, 3, 2))
        b = m.rollout(m.observe(frames, torch.ones(2, 3, 2)), torch.full((2, 3, 2), 0.7))
    assert torch.equal(a.latents, b.latents)  # driven through the adapter path, the actions change nothing
    with pytest.raises(ValueError, match="A=2"):
        m.real_action_embedding(torch.zeros(2, 3))  # still checked: the data's actions have two components

import dataclasses

import pytest
import torch

from gedanken.data.batch import Batch
from gedanken.data.synthetic import synthetic_episode
from gedanken.models import load_checkpoint, save_checkpoint
from gedanken.models.diffusion import DiffusionWorldModel, SamplerConfig, tiny_config
from gedanken.models.diffusion.config import DiTConfig, FlowConfig, Target
from gedanken.models.heads import HeadsConfig
from gedanken.models.protocol import ModelCard, WorldModel


def _batch(n=3, t=4, caption="three squares drift"):
    eps = [synthetic_episode(i, steps=t, caption=caption) for i in range(n)]
    st = lambda name: torch.stack([torch.from_numpy(getattr(e, name)) for e in eps])  # noqa: E731
    return Batch(
        frames=st("frames"),
        actions=st("actions"),
        rewards=st("rewards"),
        terminated=st("terminated"),
        states=st("states"),
        captions=[caption] * n,
    )


def _model(**kw):
    torch.manual_seed(0)
    return DiffusionWorldModel(tiny_config(heads=HeadsConfig(slots=4), **kw))


def test_speaks_the_protocol():
    assert isinstance(_model(), WorldModel)


def test_loss_backward_reaches_dit_and_heads_not_frozen_tokenizer():
    m = _model()
    m.freeze_tokenizer()
    loss, logs = m.loss(_batch())
    loss.backward()
    assert torch.isfinite(loss)
    assert {"diffusion", "head_reward", "head_term", "head_present", "head_state"} <= set(logs)
    assert m.dit.blocks[0].ada[1].weight.grad is not None
    assert m.heads.state[0].weight.grad is not None
    assert all(p.grad is None for p in m.tokenizer.parameters())


def test_a_few_steps_reduce_the_loss():
    m = _model()
    b = _batch()
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3)
    losses = []
    for i in range(15):
        torch.manual_seed(i % 3)
        loss, _ = m.loss(b)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert sum(losses[-3:]) < sum(losses[:3])


@pytest.mark.parametrize("target", [Target.VELOCITY, Target.RESIDUAL])
def test_residual_and_velocity_targets_train(target):
    m = _model(
        flow=FlowConfig(target=target),
        dit=DiTConfig(width=32, depth=2, heads=2, patch=2, context=2, prev_frame=True),
    )
    m.freeze_tokenizer()
    loss, _ = m.loss(_batch())
    loss.backward()
    assert torch.isfinite(loss) and m.dit.embed_prev.weight.grad is not None


def test_untrained_residual_model_copies_the_last_frame():
    """AdaLN-Zero starts every output at 0, so a RESIDUAL model starts as copy-last: nothing fades."""
    m = _model(flow=FlowConfig(target=Target.RESIDUAL)).eval()
    m.set_sampler(SamplerConfig(steps=3, context_noise=0.2))  # the DiT sees noised context, the base is clean
    b = _batch(n=2, t=4)
    ctx = m.observe(b.frames[:, :3], b.actions[:, :3])
    roll = m.rollout(ctx, b.actions[:, 2:4], seed=1)
    last = m.tokenizer.encode(b.frames[:, 2:3])[:, 0]
    for h in range(2):
        torch.testing.assert_close(roll.latents[:, h], last, atol=1e-5, rtol=1e-5)
    velocity = _model(flow=FlowConfig(target=Target.VELOCITY)).eval()
    velocity.set_sampler(SamplerConfig(steps=3, context_noise=0.0))
    v_roll = velocity.rollout(velocity.observe(b.frames[:, :3], b.actions[:, :3]), b.actions[:, 2:4], seed=1)
    assert (v_roll.latents[:, 0] - last).abs().mean() > 0.1  # the velocity target starts from the noise


def test_rollout_shapes_and_determinism_under_seed():
    m = _model().eval()
    b = _batch(2, 6)
    ctx = m.observe(b.frames[:, :3], b.actions[:, :3], b.captions)
    r1 = m.rollout(ctx, b.actions[:, 2:5], seed=7)
    r2 = m.rollout(ctx, b.actions[:, 2:5], seed=7)
    r3 = m.rollout(ctx, b.actions[:, 2:5], seed=8)
    assert r1.frames.shape == (2, 3, 64, 64, 3) and r1.frames.dtype == torch.uint8
    assert r1.latents.shape == (2, 3, 4, 8, 8)
    assert r1.rewards.shape == (2, 3) and r1.terminated.dtype == torch.bool
    assert r1.states.shape == (2, 3, 4, 10)
    assert torch.equal(r1.latents, r2.latents)
    assert not torch.equal(r1.latents, r3.latents)


def test_temperature_scales_the_starting_noise_and_is_checked():
    """Temperature 0 (no context noise) samples the same frames whatever the seed; a low temperature draws
    samples nearer them than temperature 1 does; a negative or NaN temperature is refused."""
    from dataclasses import replace

    m = _model().eval()
    b = _batch(2, 6)
    ctx = m.observe(b.frames[:, :3], b.actions[:, :3], b.captions)

    def latents(temperature: float, seed: int) -> torch.Tensor:
        m.set_sampler(replace(m.sampler.cfg, temperature=temperature, context_noise=0.0))
        return m.rollout(ctx, b.actions[:, 2:5], seed=seed).latents

    cold = latents(0.0, 7)
    assert torch.equal(cold, latents(0.0, 8))
    far = [(latents(t, s) - cold).abs().mean() for t in (0.25, 1.0) for s in (7, 8)]
    assert max(far[:2]) < min(far[2:])
    for bad in (-0.5, float("nan")):
        with pytest.raises(ValueError, match="temperature"):
            m.set_sampler(SamplerConfig(temperature=bad))


def test_step_matches_rollout_and_does_not_mutate_context():
    m = _model().eval()
    b = _batch(1, 5)
    ctx = m.observe(b.frames[:, :2], b.actions[:, :2])
    t0 = ctx.t
    roll = m.rollout(ctx, b.actions[:, 1:3], seed=3)
    assert ctx.t == t0
    c = dataclasses.replace(ctx, generator=torch.Generator().manual_seed(3))
    c, p1 = m.step(c, b.actions[:, 1])
    c, p2 = m.step(c, b.actions[:, 2])
    assert torch.equal(p2.frame, roll.frames[:, 1])


def test_generate_from_text_alone_and_guidance():
    m = _model().eval()
    m.set_sampler(SamplerConfig(steps=2, text_guidance=2.0, action_guidance=1.5))
    r = m.rollout(m.start(2, ["a red square", "a blue square"]), None, horizon=3)
    assert r.frames.shape == (2, 3, 64, 64, 3)
    for bad in (SamplerConfig(action_guidance=-0.5), SamplerConfig(text_guidance=float("nan"))):
        with pytest.raises(ValueError, match="guidance"):
            m.set_sampler(bad)
    with pytest.raises(ValueError, match="steps"):
        m.set_sampler(SamplerConfig(steps=0))


def test_discrete_actions():
    torch.manual_seed(0)
    m = DiffusionWorldModel(tiny_config(action_dim=1, action_classes=3)).eval()
    f = torch.zeros(1, 2, 32, 48, 3, dtype=torch.uint8)
    m2 = DiffusionWorldModel(tiny_config(action_dim=1, action_classes=3, height=32, width=48)).eval()
    r = m2.rollout(m2.observe(f, torch.tensor([[[1.0], [2.0]]])), torch.tensor([[0, 2]]), seed=0)
    assert r.frames.shape == (1, 2, 32, 48, 3)
    with pytest.raises(ValueError, match="actions must end"):
        m.observe(torch.zeros(1, 2, 64, 64, 3, dtype=torch.uint8), torch.zeros(1, 2, 4))


def test_observe_rejects_float_frames():
    with pytest.raises(ValueError, match="uint8"):
        _model().observe(torch.zeros(1, 2, 64, 64, 3))


def test_checkpoint_round_trip(tmp_path):
    m = _model().eval()
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.01 * torch.randn_like(p))
    card = ModelCard(name="t", family="diffusion", world="synthetic")
    path = save_checkpoint(tmp_path / "ck", m, family="diffusion", model_config=m.cfg, card=card)
    loaded = load_checkpoint(path)
    assert isinstance(loaded, DiffusionWorldModel) and loaded.cfg == m.cfg and loaded.card == card
    b = _batch(1, 4)
    r1 = m.rollout(m.observe(b.frames[:, :2], b.actions[:, :2]), b.actions[:, 1:3], seed=1)
    r2 = loaded.rollout(loaded.observe(b.frames[:, :2], b.actions[:, :2]), b.actions[:, 1:3], seed=1)
    assert torch.equal(r1.frames, r2.frames)


def test_reencode_puts_the_decoded_frame_into_the_context():
    m = _model().eval()
    b = _batch(n=1, t=3)
    ctx = m.observe(b.frames[:, :2], b.actions[:, :2])
    m.set_sampler(SamplerConfig(steps=2, context_noise=0.0, reencode=True))
    new, pred = m.step(ctx, b.actions[:, 1])
    torch.testing.assert_close(new.prev, m.tokenizer.encode(pred.frame[:, None])[:, 0])
    m.set_sampler(SamplerConfig(steps=2, context_noise=0.0, reencode=False))
    new, pred = m.step(ctx, b.actions[:, 1])
    torch.testing.assert_close(new.prev, pred.latent)


def test_snap_puts_the_palette_projection_of_the_frame_into_the_context():
    from gedanken.models.projection import snap_to_palette

    palette = ((0, 0, 0), (255, 0, 0), (0, 255, 0), (0, 0, 255))
    m = _model(palette=palette).eval()
    b = _batch(n=1, t=3)
    ctx = m.observe(b.frames[:, :2], b.actions[:, :2])
    m.set_sampler(SamplerConfig(steps=2, context_noise=0.0, reencode=True, snap=True))
    new, pred = m.step(ctx, b.actions[:, 1])
    snapped = snap_to_palette(pred.frame, torch.tensor(palette), 0.85)
    assert not torch.equal(snapped, pred.frame)  # an untrained model's frame is not flat: the snap changes it
    torch.testing.assert_close(new.prev, m.tokenizer.encode(snapped[:, None])[:, 0])
    colours = {tuple(c) for c in snapped.reshape(-1, 3).tolist()}
    assert colours <= set(palette)


def test_snap_needs_reencode_and_a_palette():
    with pytest.raises(ValueError, match="palette"):
        _model(sampler=SamplerConfig(reencode=True, snap=True))
    m = _model(palette=((0, 0, 0), (255, 255, 255)))
    with pytest.raises(ValueError, match="reencode"):
        m.set_sampler(SamplerConfig(reencode=False, snap=True))


def _varied_model() -> tuple[DiffusionWorldModel, torch.Tensor]:
    """A tiny model on a 3-colour palette whose samples differ (an untrained DiT outputs nothing: AdaLN-Zero)."""
    palette = ((0, 0, 0), (255, 0, 0), (0, 255, 0), (0, 0, 255))
    m = _model(palette=palette).eval()
    for p in m.dit.parameters():
        torch.nn.init.normal_(p, std=0.2)
    return m, torch.tensor(palette)


def test_candidates_keep_the_sample_whose_colour_areas_change_least():
    from gedanken.models.projection import colour_areas, snap_to_palette

    m, pal = _varied_model()
    b = _batch(n=3, t=3)
    last = colour_areas(snap_to_palette(b.frames[:, 1], pal, 0.85), pal)

    def distance(n: int) -> torch.Tensor:
        m.set_sampler(SamplerConfig(steps=2, context_noise=0.0, reencode=True, snap=True, candidates=n))
        ctx = m.observe(b.frames[:, :2], b.actions[:, :2])  # the same generator state every time
        new, pred = m.step(ctx, b.actions[:, 1])
        areas = colour_areas(snap_to_palette(pred.frame, pal, 0.85), pal)
        if n > 1:
            torch.testing.assert_close(ctx.areas, last)
            torch.testing.assert_close(new.areas, areas)
        return (areas - last).abs().sum(1)  # (B,)

    one, four = distance(1), distance(4)
    assert (four <= one + 1e-6).all()  # candidate 0 is the one-sample draw, so the pick is never worse
    assert (four < one).any()  # an untrained model's samples differ: the pick is a different one somewhere
    with pytest.raises(ValueError, match="candidates"):
        _model(sampler=SamplerConfig(candidates=2))  # no palette to compare areas on


def test_a_colour_far_from_where_it_was_is_not_snapped_to():
    from gedanken.models.projection import nearby_colours, snap_to_palette

    pal = torch.tensor([[0, 0, 0], [255, 0, 0], [0, 0, 255], [255, 0, 255]])
    previous = torch.zeros(1, 16, 16, 3, dtype=torch.uint8)
    previous[0, 2:4, 2:4] = torch.tensor([255, 0, 0])  # red object at the top left
    previous[0, 12:14, 12:14] = torch.tensor([255, 0, 255])  # magenta object at the bottom right
    allowed = nearby_colours(previous, pal, radius=2)  # (1, 16, 16, 4)
    assert allowed[0, 3, 5].tolist() == [True, True, False, False]  # 2 px right of red: black or red
    assert allowed[0, 8, 8].tolist() == [True, False, False, False]  # far from everything: background only
    frame = torch.zeros(1, 16, 16, 3, dtype=torch.uint8)
    frame[0, 3, 4] = torch.tensor([200, 0, 200])  # a red-blue blend next to the red object
    frame[0, 13, 11] = torch.tensor([200, 0, 200])  # the same colour next to the magenta object
    out = snap_to_palette(frame, pal, allowed=allowed)
    assert out[0, 3, 4].tolist() == [255, 0, 0] and out[0, 13, 11].tolist() == [255, 0, 255]
    assert snap_to_palette(frame, pal)[0, 3, 4].tolist() == [255, 0, 255]  # unrestricted: a stray magenta
    with pytest.raises(ValueError, match="snap_radius"):
        _model(palette=((0, 0, 0), (255, 0, 0)), sampler=SamplerConfig(reencode=True, snap_radius=2))


def test_snap_radius_keeps_the_projected_frame_in_the_context():
    palette = ((0, 0, 0), (255, 0, 0), (0, 255, 0), (0, 0, 255))
    m = _model(palette=palette).eval()
    m.set_sampler(SamplerConfig(steps=2, context_noise=0.0, reencode=True, snap=True, snap_radius=2))
    b = _batch(n=1, t=3)
    ctx = m.observe(b.frames[:, :2], b.actions[:, :2])
    assert ctx.seen is not None and ctx.seen.shape == b.frames[:, 1].shape
    new, _ = m.step(ctx, b.actions[:, 1])
    torch.testing.assert_close(
        new.prev, m.tokenizer.encode(new.seen[:, None])[:, 0]
    )  # the context is the projection
    assert {tuple(c) for c in new.seen.reshape(-1, 3).tolist()} <= set(palette)


def test_snap_to_palette_takes_the_nearest_colour():
    from gedanken.models.projection import snap_to_palette

    frames = torch.tensor([[[[200, 30, 20], [10, 10, 10]], [[180, 0, 190], [0, 0, 250]]]], dtype=torch.uint8)
    pal = torch.tensor([[0, 0, 0], [255, 0, 0], [255, 0, 255], [0, 0, 255]])
    out = snap_to_palette(frames, pal)
    assert out.dtype == torch.uint8 and out.shape == frames.shape
    assert out[0, 0, 0].tolist() == [255, 0, 0] and out[0, 0, 1].tolist() == [0, 0, 0]
    assert out[0, 1, 0].tolist() == [255, 0, 255] and out[0, 1, 1].tolist() == [0, 0, 255]
    rim = torch.tensor([[[[135, 0, 0]]]], dtype=torch.uint8)  # a red rim pixel, nearer red than black
    assert snap_to_palette(rim, pal)[0, 0, 0].tolist() == [255, 0, 0]
    assert snap_to_palette(rim, pal, background=0.85)[0, 0, 0].tolist() == [0, 0, 0]  # dropped, not grown


def test_context_keeps_the_older_frames_nearest_first():
    from gedanken.models.diffusion import DiTConfig

    m = _model(dit=DiTConfig(width=32, depth=2, heads=2, patch=2, context=2, prev_frame=True, prev_frames=3))
    m = m.eval()
    b = _batch(n=1, t=5)
    ctx = m.observe(b.frames[:, :3], b.actions[:, :3])
    assert ctx.older is not None and ctx.older.shape[1] == 2
    new, _ = m.step(ctx, b.actions[:, 2])
    torch.testing.assert_close(new.older[:, 0], ctx.prev)
    torch.testing.assert_close(new.older[:, 1], ctx.older[:, 0])
    one = m.observe(b.frames[:, :1], None)  # a one-frame context has no older frames yet
    assert one.older is not None and one.older.shape[1] == 0
    assert m.step(one, b.actions[:, 0])[0].older.shape[1] == 1


def test_self_forcing_trains_on_the_models_own_context():
    """With self_forcing=1 the context (and the residual base) come from the model's one-step predictions."""
    flow = FlowConfig(target=Target.RESIDUAL, self_forcing=1.0)
    m = _model(flow=flow)
    for p in m.dit.final.parameters():  # a non-zero output so predictions differ from the truth
        torch.nn.init.normal_(p, std=0.1)
    b = _batch()
    lat = m.encode_batch(b)
    t = lat.latents.shape[1]
    c = m.dit.condition(torch.zeros(3, t), torch.zeros(3, t, 32), m.dit.text_embedding(None, None, 3))
    pred = m._one_step_predictions(
        lat.latents, torch.zeros(3, t), c, torch.zeros(3, t, 32), torch.zeros(3, 1, 32)
    )
    torch.testing.assert_close(pred[:, 0], lat.latents[:, 0])
    assert (pred[:, 1:] - lat.latents[:, 1:]).abs().mean() > 1e-3
    torch.manual_seed(0)
    loss_sf, _ = m.loss(lat)
    loss_sf.backward()
    assert torch.isfinite(loss_sf) and m.dit.blocks[0].ada[1].weight.grad is not None


def test_rollout_forcing_trains_on_the_models_own_multi_frame_rollout():
    """rollout_forcing=1: the first k context latents are true, the rest are the model's own rollout (the real
    sampler, the true actions, re-encoded), frame for frame what ``observe`` + ``rollout`` would make."""
    flow = FlowConfig(target=Target.RESIDUAL, rollout_forcing=1.0)
    m = _model(flow=flow, sampler=SamplerConfig(steps=2, reencode=True, context_noise=0.0))
    for p in m.dit.final.parameters():  # a non-zero output so the rollout drifts from the truth
        torch.nn.init.normal_(p, std=0.1)
    m.eval()
    b = _batch(t=4)
    lat = m.encode_batch(b)
    prev = torch.cat([torch.zeros_like(lat.actions[:, :1]), lat.actions[:, :-1]], dim=1)
    torch.manual_seed(3)
    win = m._rollout_window(lat, prev)
    assert win.shape == lat.latents.shape
    torch.manual_seed(3)
    k = int(torch.randint(1, min(m.cfg.dit.context, 3) + 1, ()))  # the same draw as inside
    seed = int(torch.randint(2**31 - 1, ()))
    torch.testing.assert_close(win[:, :k], lat.latents[:, :k])
    assert (win[:, k:] - lat.latents[:, k:]).abs().mean() > 1e-3  # drifted
    ctx = m.observe(b.frames[:, :k], b.actions[:, : k - 1], b.captions)
    ro = m.rollout(ctx, b.actions[:, k - 1 : 3], seed=seed)
    torch.testing.assert_close(win[:, k:], m.tokenizer.encode(ro.frames), atol=1e-4, rtol=1e-4)
    m.train()
    loss, _ = m.loss(lat)
    loss.backward()
    assert torch.isfinite(loss) and m.dit.blocks[0].ada[1].weight.grad is not None


def test_set_flow_changes_the_training_knobs_but_not_the_target():
    m = DiffusionWorldModel(tiny_config(heads=HeadsConfig(slots=2), action_dim=2))
    m.set_flow(dataclasses.replace(m.cfg.flow, change_weight=3.0, self_forcing=0.5))
    assert m.flow.cfg.change_weight == 3.0 and m.cfg.flow.self_forcing == 0.5  # the loss reads both
    other = Target.RESIDUAL if m.cfg.flow.target is Target.VELOCITY else Target.VELOCITY
    with pytest.raises(ValueError, match="flow target is part of the network"):
        m.set_flow(FlowConfig(target=other))


def test_hold_areas_redraws_a_fading_object_from_its_faint_pixels_and_trims_a_grown_one():
    from gedanken.models.projection import hold_areas, snap_to_palette

    pal = torch.tensor([[0, 0, 0], [255, 0, 0], [0, 0, 255]])
    frame = torch.zeros(1, 12, 12, 3, dtype=torch.uint8)
    frame[0, 4:6, 4:6] = torch.tensor([200, 0, 0])  # what is left of a 3x3 red object: 4 pixels
    frame[0, 4:7, 6] = torch.tensor([90, 0, 0])  # its faded column, nearer black than red
    frame[0, 6, 4:6] = torch.tensor([60, 0, 0])  # its faded row, fainter still
    frame[0, 0:3, 9:12] = torch.tensor([0, 0, 230])  # a blue object grown to 15 pixels ...
    frame[0, 3:5, 9:12] = torch.tensor([0, 0, 150])  # ... by a paler rim
    frame[0, 1, 1] = torch.tensor([40, 0, 0])  # a faint red speck far from where red was
    snapped = snap_to_palette(frame, pal)
    allowed = torch.ones(1, 12, 12, 3, dtype=torch.bool)
    allowed[0, :3, :3, 1] = False  # red may not appear in the top-left corner
    reference = torch.tensor([[7.0, 9.0]])  # observed: red 7 pixels, blue 9
    out = hold_areas(snapped, frame, pal, reference, allowed, keep=1.0)
    red, blue = (out[0] == pal[1]).all(-1), (out[0] == pal[2]).all(-1)
    assert red.sum() == 7 and blue.sum() == 9
    assert red[4:7, 6].all() and not red[6, 4:6].any()  # the 3 pixels nearest red, not the fainter row
    assert not red[1, 1]  # not allowed there, however red it is
    full = hold_areas(snapped, frame, pal, torch.tensor([[9.0, 9.0]]), allowed, keep=1.0)
    assert (full[0, 4:7, 4:7] == pal[1]).all()  # with 9 to fill, the fainter row too
    assert blue[0:3, 9:12].all()  # trimmed back to the 9 pixels nearest blue: the rim goes
    loose = hold_areas(snapped, frame, pal, reference, allowed, keep=0.5)  # within [4.5, 18]: nothing to do
    assert torch.equal(loose, snapped)
    gone = hold_areas(snapped, frame, pal, torch.tensor([[0.0, 0.0]]), allowed, keep=1.0)
    assert torch.equal(gone, snapped)  # colours that were not observed are left alone


def test_keep_area_holds_the_context_colours_at_their_observed_areas():
    from gedanken.models.projection import colour_areas

    palette = ((0, 0, 0), (255, 0, 0), (0, 255, 0), (0, 0, 255))
    m = _model(palette=palette).eval()
    m.set_sampler(
        SamplerConfig(steps=2, context_noise=0.0, reencode=True, snap=True, snap_radius=3, keep_area=1.0)
    )
    b = _batch(n=2, t=4)
    ctx = m.observe(b.frames[:, :2], b.actions[:, :2])
    assert ctx.reference is not None and (ctx.reference > 0).any()
    for j in (1, 2):
        ctx, _ = m.step(ctx, b.actions[:, j])
        assert ctx.seen is not None
        torch.testing.assert_close(colour_areas(ctx.seen, torch.tensor(palette)), ctx.reference)
    with pytest.raises(ValueError, match="keep_area"):
        m.set_sampler(SamplerConfig(reencode=True, snap=True, keep_area=0.9))  # no snap_radius
    with pytest.raises(ValueError, match="keep_area"):
        m.set_sampler(SamplerConfig(reencode=True, snap=True, snap_radius=2, keep_area=1.5))


def test_show_projected_shows_the_frame_the_context_carries():
    palette = ((0, 0, 0), (255, 0, 0), (0, 255, 0), (0, 0, 255))
    m = _model(palette=palette).eval()
    base = SamplerConfig(steps=2, context_noise=0.0, reencode=True, snap=True, snap_radius=2)
    m.set_sampler(base)
    b = _batch(n=1, t=3)
    _, plain = m.step(m.observe(b.frames[:, :2], b.actions[:, :2]), b.actions[:, 1])
    m.set_sampler(dataclasses.replace(base, show_projected=True))
    new, shown = m.step(m.observe(b.frames[:, :2], b.actions[:, :2]), b.actions[:, 1])
    assert new.seen is not None and torch.equal(shown.frame, new.seen)  # what it shows is what it carries
    assert torch.equal(shown.latent, plain.latent)  # the same sample; only the frame shown differs
    assert not torch.equal(shown.frame, plain.frame)
    assert {tuple(c) for c in shown.frame.reshape(-1, 3).tolist()} <= set(palette)
    with pytest.raises(ValueError, match="show_projected"):
        m.set_sampler(SamplerConfig(reencode=True, show_projected=True))  # nothing projected to show


def test_the_solidity_verifier_resamples_only_what_breaks_solidity_and_keeps_the_least_penetrating():
    from gedanken.models.verifier import object_sizes, solidity_penalty

    m, pal = _varied_model()
    b = _batch(n=4, t=3)
    sizes = object_sizes(b.frames[:, :2], pal)

    def penalty(**kw) -> tuple[torch.Tensor, torch.Tensor]:
        m.set_sampler(SamplerConfig(steps=2, context_noise=0.0, **kw))
        ctx = m.observe(b.frames[:, :2], b.actions[:, :2])  # the same generator state every time
        _, pred = m.step(ctx, b.actions[:, 1])
        return solidity_penalty(pred.frame, pal, sizes), pred.frame

    one, first = penalty()
    strict, frames = penalty(candidates=4, verifier="solidity", verifier_tolerance=0.0)
    assert (one > 0).any()  # an untrained model draws overlapping blobs: there is something to fix
    assert (strict <= one + 0.25).all()  # the first sample is a candidate; ties within 0.25 px
    assert (strict < one - 0.25).any()
    loose, same = penalty(candidates=4, verifier="solidity", verifier_tolerance=1e9)
    torch.testing.assert_close(same, first)  # nothing above the tolerance: the one sample is kept
    for bad in (
        SamplerConfig(verifier="physics", candidates=4),
        SamplerConfig(verifier="solidity"),  # one candidate: nothing to choose from
        SamplerConfig(verifier="solidity", candidates=4, verifier_tolerance=float("nan")),
        SamplerConfig(verifier="solidity", candidates=4, verifier_solid=(3,)),  # 3 identities: 0-2
    ):
        with pytest.raises(ValueError, match="verifier"):
            m.set_sampler(bad)
    with pytest.raises(ValueError, match="palette"):
        _model(sampler=SamplerConfig(verifier="solidity", candidates=4))


def test_the_verifier_without_a_context_to_size_objects_by_samples_once_per_frame():
    m, _ = _varied_model()
    m.set_sampler(SamplerConfig(steps=2, context_noise=0.0, candidates=4, verifier="solidity"))
    draws: list[int] = []
    draw = m._draw

    def counted(ctx, action, n):  # noqa: ANN001, ANN202
        draws.append(n)
        return draw(ctx, action, n)

    m._draw = counted
    m.rollout(m.start(1, None, seed=0), None, seed=0, horizon=3)
    assert draws == [1, 1, 1]  # not silently the colour-area best of 4, four times the cost


def test_rollout_calls_on_frame_after_each_frame_without_changing_it():
    m = _model().eval()
    b = _batch(n=2, t=4)
    ctx = m.observe(b.frames[:, :2], b.actions[:, :2])
    seen: list[int] = []
    plain = m.rollout(ctx, b.actions[:, 1:4], seed=3)
    told = m.rollout(ctx, b.actions[:, 1:4], seed=3, on_frame=seen.append)
    assert seen == [1, 2, 3] and torch.equal(plain.frames, told.frames)

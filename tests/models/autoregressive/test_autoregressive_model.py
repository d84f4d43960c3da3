from dataclasses import replace

import pytest
import torch

from gedanken.data.batch import Batch
from gedanken.models import load_checkpoint, save_checkpoint
from gedanken.models.autoregressive import ActionMode, AutoregressiveWorldModel, Stage, TokenBatch, tiny
from gedanken.models.autoregressive.maskgit import MaskGITConfig, MaskGITSampler, random_mask
from gedanken.models.protocol import ModelCard, WorldModel


def _batch(b: int = 2, t: int = 4, classes: int = 5, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    frames = torch.randint(0, 256, (b, t, 64, 64, 3), dtype=torch.uint8, generator=g)
    actions = torch.randint(0, classes, (b, t, 1), generator=g).float()
    return Batch(
        frames=frames,
        actions=actions,
        rewards=torch.zeros(b, t),
        terminated=torch.zeros(b, t, dtype=torch.bool),
    )


def _model(seed: int = 0, **kw: object) -> AutoregressiveWorldModel:
    torch.manual_seed(seed)
    return AutoregressiveWorldModel(tiny(action_classes=5, **kw))


@pytest.mark.parametrize("stage", list(Stage))
def test_every_stage_trains_only_its_part(stage: Stage) -> None:
    m = _model()
    m.set_stage(stage)
    loss, logs = m.loss(_batch())
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    owners = {
        Stage.TOKENIZER: "tokenizer.",
        Stage.LAM: "lam.",
        Stage.DYNAMICS: ("dynamics.", "latent_embed."),
        Stage.ADAPTER: "adapter.",
    }[stage]
    for name, p in m.named_parameters():
        if name.startswith(owners):
            assert p.requires_grad
        else:
            assert not p.requires_grad and p.grad is None, name
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.parameters())


def test_protocol_shapes() -> None:
    m = _model().eval()
    assert isinstance(m, WorldModel)
    b = _batch(b=3, t=3)
    ctx = m.observe(b.frames, b.actions)
    ctx2, pred = m.step(ctx, torch.tensor([[1.0], [2.0], [0.0]]))
    assert pred.frame is not None and pred.frame.shape == (3, 64, 64, 3) and pred.frame.dtype == torch.uint8
    assert pred.latent is not None and pred.latent.shape == (3, 8, 8)
    assert ctx2.cache.t == ctx.cache.t + 1 == 4
    roll = m.rollout(ctx, torch.zeros(3, 6, 1), seed=0)
    assert roll.frames is not None and roll.frames.shape == (3, 6, 64, 64, 3)
    with pytest.raises(ValueError, match="uint8"):
        m.observe(b.frames.float())
    with pytest.raises(ValueError, match="64, 64"):
        m.observe(torch.zeros(1, 2, 32, 32, 3, dtype=torch.uint8))


def test_determinism_under_seed() -> None:
    b = _batch(t=3)
    outs = []
    for _ in range(2):
        m = _model(seed=3)
        m.set_stage(Stage.DYNAMICS)
        torch.manual_seed(1)
        outs.append(m.loss(b)[0].item())
    assert outs[0] == outs[1]
    m = _model(seed=3).eval()
    m.set_sampler(MaskGITConfig(steps=3, temperature=1.0))
    acts = torch.randint(0, 5, (2, 5, 1)).float()
    r1 = m.rollout(m.observe(b.frames), acts, seed=7).frames
    r2 = m.rollout(m.observe(b.frames), acts, seed=7).frames
    r3 = m.rollout(m.observe(b.frames), acts, seed=8).frames
    assert torch.equal(r1, r2)
    assert not torch.equal(r1, r3)  # temperature > 0: another seed samples other tokens


@pytest.mark.parametrize("factorized", [False, True])
def test_cached_step_matches_full_forward_beyond_window(factorized: bool) -> None:
    m = (_factorized_model() if factorized else _model()).eval()
    dyn = m.dynamics
    t = dyn.cfg.window + 2  # past the window: the cache must slide exactly like the training mask
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, m.tokenizer.vocab_size, (2, t, 64), generator=g)
    tokens[:, -1, ::3] = -1  # a partly masked last frame
    emb = torch.randn(2, t, dyn.cfg.dim, generator=g)
    with torch.no_grad():
        full = dyn(tokens, emb)[:, -1]
        cache = dyn.empty_cache()
        for i in range(t - 1):
            cache = dyn.commit(tokens[:, i], emb[:, i], cache)
        step = dyn.step_logits(tokens[:, -1], emb[:, -1], cache)
    assert cache.layers[0] is not None and cache.layers[0].k.shape[2] == dyn.cfg.window - 1
    assert torch.allclose(full, step, atol=1e-4)


@pytest.mark.parametrize("steps", [1, 4])
def test_maskgit_fills_every_token(steps: int) -> None:
    vocab, n = 11, 16
    calls: list[int] = []

    def logits_fn(tok: torch.Tensor) -> torch.Tensor:
        calls.append(int((tok < 0).sum()))
        out = torch.zeros(tok.shape[0], n, vocab)
        out[..., 3] = 5.0  # a clear favourite
        return out

    tokens = MaskGITSampler(MaskGITConfig(steps=steps)).sample(logits_fn, 2, n)
    assert tokens.shape == (2, n) and (tokens == 3).all()
    assert len(calls) == steps and calls[0] == 2 * n
    assert calls == sorted(calls, reverse=True) and (steps == 1 or calls[-1] < calls[0])
    with pytest.raises(ValueError, match="steps"):
        MaskGITConfig(steps=0)


def test_random_mask_masks_at_least_one_token_per_frame() -> None:
    mask = random_mask((4, 3, 10), generator=torch.Generator().manual_seed(0))
    assert mask.dtype == torch.bool and (mask.sum(-1) >= 1).all()


def test_save_load_round_trip(tmp_path) -> None:  # noqa: ANN001
    m = _model(seed=5).eval()
    m.latent_counts.fill_(1.0)
    m.real_to_latent.copy_(torch.tensor([0, 1, 2, 3, 0]))
    cfg = replace(m.cfg, world="push_discrete")
    path = save_checkpoint(
        tmp_path / "ar",
        m,
        family="autoregressive",
        model_config=cfg,
        card=ModelCard(name="t", family="autoregressive"),
    )
    loaded = load_checkpoint(path)
    assert isinstance(loaded, AutoregressiveWorldModel)
    b = _batch(t=3)
    acts = torch.randint(0, 5, (2, 4, 1)).float()
    for mode in ActionMode:
        m.action_mode = loaded.action_mode = mode
        a = acts.clamp(max=3) if mode is ActionMode.LATENT else acts
        r1 = m.rollout(m.observe(b.frames, b.actions), a, seed=0).frames
        r2 = loaded.rollout(loaded.observe(b.frames, b.actions), a, seed=0).frames
        assert torch.equal(r1, r2), mode


def test_token_batch_and_window_check() -> None:
    m = _model()
    m.set_stage(Stage.DYNAMICS)
    w = m.cfg.dynamics.window
    tb = TokenBatch(
        tokens=torch.randint(0, 125, (2, w + 1, 64)), latent_actions=torch.zeros(2, w, dtype=torch.long)
    )
    with pytest.raises(ValueError, match="window"):
        m.loss(tb)
    m.set_stage(Stage.ADAPTER)
    with pytest.raises(ValueError, match="real actions"):
        m.loss(TokenBatch(tokens=tb.tokens[:, :w], latent_actions=tb.latent_actions[:, : w - 1]))


def _factorized_model() -> AutoregressiveWorldModel:
    torch.manual_seed(0)
    cfg = tiny(action_classes=5)
    return AutoregressiveWorldModel(replace(cfg, dynamics=replace(cfg.dynamics, factorized=True)))


def test_factorized_head_is_a_distribution_over_the_vocab() -> None:
    dyn = _factorized_model().dynamics
    h = torch.randn(7, dyn.cfg.dim)
    logp = dyn.logits(h)  # (7, V) log-probabilities: product of one softmax per FSQ channel
    assert logp.shape == (7, dyn.vocab)
    assert torch.allclose(logp.logsumexp(-1), torch.zeros(7), atol=1e-5)
    assert torch.equal(dyn.predict(h), logp.argmax(-1))
    target = torch.randint(0, dyn.vocab, (7,))
    assert torch.allclose(dyn.token_loss(h, target), -logp.gather(-1, target[:, None])[:, 0], atol=1e-5)


def test_factorized_embedding_shares_digits_and_keeps_a_mask_vector() -> None:
    dyn = _factorized_model().dynamics
    levels = (5, 5, 5)  # tiny's FSQ
    a, b, c = (
        torch.tensor([0]),
        torch.tensor([1]),
        torch.tensor([levels[0]]),
    )  # b, c differ from a in one digit
    e = dyn.embed
    tables = e.tables
    assert torch.allclose(e(b) - e(a), tables[0].weight[1] - tables[0].weight[0])
    assert torch.allclose(e(c) - e(a), tables[1].weight[1] - tables[1].weight[0])
    assert torch.equal(e(torch.tensor([dyn.vocab]))[0], e.mask)


def test_factorized_rollout_shapes() -> None:
    m = _factorized_model().eval()
    b = _batch(b=2, t=3)
    with torch.no_grad():
        roll = m.rollout(m.observe(b.frames, b.actions), torch.zeros(2, 3, 1))
    assert roll.frames.shape == (2, 3, 64, 64, 3)


def test_change_weight_reweights_only_tokens_that_changed() -> None:
    cfg = tiny(action_classes=5)
    losses = {}
    for w in (1.0, 10.0):
        torch.manual_seed(0)
        m = AutoregressiveWorldModel(replace(cfg, dynamics=replace(cfg.dynamics, change_weight=w)))
        tok = torch.randint(0, m.tokenizer.vocab_size, (2, 3, 64))
        still = TokenBatch(
            tokens=tok[:, :1].expand(-1, 3, -1).clone(), latent_actions=torch.zeros(2, 2).long()
        )
        moving = TokenBatch(tokens=tok, latent_actions=torch.zeros(2, 2).long())
        for name, tb in (("still", still), ("moving", moving)):
            torch.manual_seed(1)  # the same training mask for both weights
            loss, logs = m.loss(tb)
            losses[name, w] = float(loss.detach())
            assert 0.0 <= logs["changed_acc"] <= 1.0
    assert losses["still", 1.0] == pytest.approx(losses["still", 10.0])  # nothing changed: weights cancel
    assert losses["moving", 1.0] != pytest.approx(losses["moving", 10.0])


def test_factorized_greedy_shortcut_decodes_the_same_tokens(cached_past) -> None:  # noqa: ANN001
    """At temperature 0 the per-channel argmax must pick what the full (B, N, V) logits would."""
    m = _factorized_model().eval()
    dyn = m.dynamics
    cache, g = cached_past(dyn)
    emb = torch.randn(3, dyn.cfg.dim, generator=g)
    sampler = MaskGITSampler(MaskGITConfig(steps=4, temperature=0.0))
    with torch.no_grad():
        full = sampler.sample(lambda tok: dyn.step_logits(tok, emb, cache), 3, 64)
        fast = sampler.sample(
            lambda tok: dyn.step_logits(tok, emb, cache),
            3,
            64,
            greedy_fn=lambda tok: dyn.step_greedy(tok, emb, cache),
        )
        tokens = torch.randint(0, dyn.vocab, (3, 64), generator=g)
        idx, logp = dyn.step_greedy(tokens, emb, cache)
        logits = dyn.step_logits(tokens, emb, cache)
    assert torch.equal(full, fast)
    assert torch.equal(idx, logits.argmax(-1))
    assert torch.allclose(logp, logits.max(-1).values, atol=1e-5)


def test_keep_area_puts_the_projected_frame_with_held_areas_into_the_context() -> None:
    from gedanken.data.synthetic import synthetic_episode
    from gedanken.models.projection import colour_areas

    ep = synthetic_episode(0, steps=4)
    palette = tuple(tuple(int(v) for v in c) for c in ep.meta.palette)
    m = _model(palette=palette).eval()
    frames = torch.from_numpy(ep.frames)[None, :2]
    plain, _ = m.step(m.observe(frames), torch.zeros(1, 1))
    assert plain.seen is None  # off by default: the context holds the sampled tokens
    m.set_sampler(MaskGITConfig(steps=2, keep_area=1.0))
    ctx = m.observe(frames)
    pal = torch.tensor(palette)
    assert ctx.seen is not None and ctx.reference is not None and (ctx.reference > 0).any()
    for _ in range(2):
        ctx, pred = m.step(ctx, torch.zeros(1, 1))
        assert ctx.seen is not None
        assert {tuple(c) for c in ctx.seen.reshape(-1, 3).tolist()} <= set(palette)
        torch.testing.assert_close(colour_areas(ctx.seen, pal), ctx.reference)  # areas held in the context
        torch.testing.assert_close(
            pred.frame, m.tokenizer.decode(pred.latent)
        )  # the output is the model's own
    roll = m.rollout(m.observe(frames), torch.zeros(1, 3, 1), seed=0)
    assert roll.frames.shape == (1, 3, 64, 64, 3)


def test_keep_area_needs_a_palette_and_valid_settings() -> None:
    with pytest.raises(ValueError, match="palette"):
        _model().set_sampler(MaskGITConfig(keep_area=0.8))
    with pytest.raises(ValueError, match="keep_area"):
        MaskGITConfig(keep_area=1.5)
    with pytest.raises(ValueError, match="snap_radius"):
        MaskGITConfig(keep_area=0.8, snap_radius=0)


def test_the_loss_reads_unmasked_tokens_from_shown() -> None:
    m = _model().train()
    m.set_stage(Stage.DYNAMICS)
    n = m.grid[0] * m.grid[1]
    tokens = torch.randint(0, m.tokenizer.vocab_size, (2, 3, n))
    lat = torch.zeros(2, 2, dtype=torch.long)

    def loss(shown: torch.Tensor | None) -> float:
        torch.manual_seed(0)  # the same mask
        return float(m.loss(TokenBatch(tokens, lat, shown=shown))[0].detach())

    assert loss(tokens.clone()) == loss(None)  # shown = tokens is the plain loss
    other = torch.randint(0, m.tokenizer.vocab_size, tokens.shape)
    assert loss(other) != loss(None)  # the context tokens are read from shown, the targets are not
    moved = TokenBatch(tokens, lat, shown=other).to("cpu")
    assert moved.shown is not None and torch.equal(moved.shown, other)


def test_projected_tokens_are_the_tokens_of_the_held_projection() -> None:
    from gedanken.data.synthetic import synthetic_episode
    from gedanken.models.projection import colour_areas

    ep = synthetic_episode(0, steps=4)
    palette = tuple(tuple(int(v) for v in c) for c in ep.meta.palette)
    m = _model(palette=palette).eval()
    frames = torch.from_numpy(ep.frames)
    tokens = m.encode(frames[None]).tokens[0]
    with pytest.raises(ValueError, match="keep_area"):
        m.projected_tokens(frames, tokens)
    m.set_sampler(MaskGITConfig(keep_area=1.0))
    shown = m.projected_tokens(frames, tokens)
    assert shown.shape == tokens.shape and shown.dtype == tokens.dtype
    held = m.projected_frames(frames, tokens)
    assert torch.equal(shown, m.tokenizer.encode(held).flatten(-2))
    assert {tuple(c) for c in held.reshape(-1, 3).tolist()} <= set(palette)
    pal = torch.tensor(palette)
    first = colour_areas(frames[:1], pal)
    assert (first > 0).any()
    torch.testing.assert_close(colour_areas(held, pal), first.expand(len(frames), -1))  # areas held


@pytest.mark.parametrize("guidance", [1.0, 2.0])
def test_factorized_sampling_draws_what_the_full_tempered_softmax_would(cached_past, guidance) -> None:  # noqa: ANN001
    """Above temperature 0, one channel at a time: the same distribution and log-probabilities as the full logits."""
    m = _factorized_model().eval()
    dyn = m.dynamics
    cache, g = cached_past(dyn)
    emb = torch.randn(3, dyn.cfg.dim, generator=g)
    tokens = torch.full((3, 64), -1, dtype=torch.long)
    temp = 0.7
    with torch.no_grad():
        full = (dyn.step_logits(tokens, emb, cache, guidance) / temp).log_softmax(-1)  # (3, 64, V)
        idx, logp = dyn.step_sample(tokens, emb, cache, temp, torch.Generator().manual_seed(0), guidance)
        assert torch.allclose(logp, full.gather(-1, idx[..., None])[..., 0], atol=1e-4)
        # many draws of one token position: the frequencies of its likeliest tokens match the full softmax
        draws = torch.stack(
            [
                dyn.step_sample(tokens, emb, cache, temp, torch.Generator().manual_seed(s), guidance)[0][0, 5]
                for s in range(400)
            ]
        )
    probs = full[0, 5].exp()
    for token in probs.topk(3).indices:
        share = (draws == token).float().mean()
        assert abs(float(share) - float(probs[token])) < 4 * (float(probs[token]) / 400) ** 0.5 + 0.01


def test_factorized_sampling_needs_a_factorized_head(cached_past) -> None:  # noqa: ANN001
    m = AutoregressiveWorldModel(tiny(action_classes=5)).eval()
    assert not m.dynamics.cfg.factorized  # the tiny preset's head is one softmax over the vocab
    with pytest.raises(ValueError, match="factorized"):
        m.dynamics.step_sample(
            torch.zeros(1, 64, dtype=torch.long),
            torch.zeros(1, m.dynamics.cfg.dim),
            m.dynamics.empty_cache(),
            1.0,
        )

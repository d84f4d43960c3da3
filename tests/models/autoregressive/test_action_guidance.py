"""Action dropout in training and classifier-free action guidance in the MaskGIT sampler."""

from dataclasses import replace

import pytest
import torch

from gedanken.models.autoregressive import AutoregressiveWorldModel, Stage, TokenBatch, tiny
from gedanken.models.autoregressive.dynamics import DynamicsConfig
from gedanken.models.autoregressive.maskgit import MaskGITConfig


def _model(dropout: float = 0.1, factorized: bool = True, seed: int = 0) -> AutoregressiveWorldModel:
    cfg = tiny(action_classes=5)
    torch.manual_seed(seed)
    dyn = replace(cfg.dynamics, factorized=factorized, action_dropout=dropout)
    return AutoregressiveWorldModel(replace(cfg, dynamics=dyn))


def _cache_and_tokens(m: AutoregressiveWorldModel, cached_past):  # noqa: ANN001, ANN202
    dyn = m.dynamics
    cache, g = cached_past(dyn)
    tokens = torch.randint(0, dyn.vocab, (3, 64), generator=g)
    tokens[:, ::2] = dyn.vocab  # half of them masked, as in the middle of a MaskGIT decode
    return cache, tokens, torch.randn(3, dyn.cfg.dim, generator=g)


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="action_dropout"):
        DynamicsConfig(action_dropout=1.01)
    with pytest.raises(ValueError, match="action_guidance"):
        MaskGITConfig(action_guidance=0.5)
    with pytest.raises(ValueError, match="action_dropout"):  # guidance against "no action" it never learned
        _model(dropout=0.0).set_sampler(MaskGITConfig(action_guidance=2.0))
    with pytest.raises(ValueError, match="action_dropout"):
        replace(tiny(), sampler=MaskGITConfig(action_guidance=2.0))
    with pytest.raises(ValueError, match="unconditional"):  # no action to guide on
        _model(dropout=1.0).set_sampler(MaskGITConfig(action_guidance=2.0))
    _model(dropout=0.1).set_sampler(MaskGITConfig(action_guidance=2.0))


@pytest.mark.parametrize("factorized", [False, True])
def test_guided_logits_follow_the_guidance_formula(factorized: bool, cached_past) -> None:  # noqa: ANN001
    m = _model(factorized=factorized).eval()
    dyn = m.dynamics
    cache, tokens, emb = _cache_and_tokens(m, cached_past)
    none = dyn.no_action.expand_as(emb)
    with torch.no_grad():
        c = dyn.step_logits(tokens, emb, cache).log_softmax(-1)
        u = dyn.step_logits(tokens, none, cache).log_softmax(-1)
        guided = dyn.step_logits(tokens, emb, cache, 3.0)
        same = dyn.step_logits(tokens, none, cache, 3.0)  # the action is "no action": nothing to amplify
    torch.testing.assert_close(same.log_softmax(-1), u, atol=1e-5, rtol=0)
    assert not torch.allclose(guided.log_softmax(-1), c, atol=1e-3)
    if not factorized:  # one softmax over the vocabulary: exactly c + (g - 1)(c - u)
        torch.testing.assert_close(guided, c + 2.0 * (c - u))
    else:  # per FSQ channel, renormalised; the greedy shortcut picks the same tokens
        h, free = dyn._guided_pair(tokens, emb, cache)
        cp = [p.log_softmax(-1) for p in dyn.head.proj(h).split(dyn.head.levels, -1)]
        up = [p.log_softmax(-1) for p in dyn.head.proj(free).split(dyn.head.levels, -1)]
        for got, a, b in zip(dyn.head.parts(h, free, 3.0), cp, up, strict=True):
            torch.testing.assert_close(got, (a + 2.0 * (a - b)).log_softmax(-1))
        idx, logp = dyn.step_greedy(tokens, emb, cache, 3.0)
        assert torch.equal(idx, guided.argmax(-1))
        torch.testing.assert_close(logp, guided.max(-1).values, atol=1e-5, rtol=0)


def test_guided_rollout_is_deterministic_and_differs_from_plain() -> None:
    m = _model().eval()
    frames = torch.randint(0, 256, (1, 2, 64, 64, 3), dtype=torch.uint8)
    actions = torch.randint(0, 5, (1, 3, 1)).float()
    with torch.no_grad():
        plain = m.rollout(m.observe(frames), actions, seed=0).latents
        m.set_sampler(MaskGITConfig(steps=2, action_guidance=4.0))
        a = m.rollout(m.observe(frames), actions, seed=0).latents
        b = m.rollout(m.observe(frames), actions, seed=0).latents
    assert torch.equal(a, b) and not torch.equal(a, plain)


def test_action_dropout_hides_the_action_from_a_share_of_training_transitions() -> None:
    n = 64
    tokens = torch.randint(0, 100, (2, 3, n), generator=torch.Generator().manual_seed(1))
    lat_a, lat_b = torch.zeros(2, 2, dtype=torch.long), torch.ones(2, 2, dtype=torch.long)

    def losses(m: AutoregressiveWorldModel) -> tuple[float, float]:
        out = []
        for lat in (lat_a, lat_b):
            torch.manual_seed(0)  # the same dropout draw and training mask for both
            out.append(float(m.loss(TokenBatch(tokens, lat))[0].detach()))
        return out[0], out[1]

    plain, hidden = _model(dropout=0.0).train(), _model(dropout=0.99).train()
    for m in (plain, hidden):
        m.set_stage(Stage.DYNAMICS)
        with torch.no_grad():
            m.latent_embed.weight[1] += 1.0
    a, b = losses(plain)
    assert a != pytest.approx(b)  # the latent action is read
    a, b = losses(hidden)
    assert a == pytest.approx(b)  # every transition (this seed) got "no action" instead
    hidden.loss(TokenBatch(tokens, lat_a))[0].backward()
    assert hidden.dynamics.no_action.grad is not None and hidden.dynamics.no_action.grad.abs().sum() > 0
    a, b = losses(hidden.eval())
    assert a != pytest.approx(b)  # no dropout outside training

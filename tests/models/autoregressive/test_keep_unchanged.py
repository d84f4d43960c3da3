"""``MaskGITConfig.keep_unchanged``: patches whose tokens the dynamics left unchanged keep the shown pixels."""

from dataclasses import replace

import torch

from gedanken.models.autoregressive import AutoregressiveWorldModel, tiny
from gedanken.models.autoregressive.maskgit import MaskGITConfig


def _model() -> AutoregressiveWorldModel:
    torch.manual_seed(0)
    return AutoregressiveWorldModel(tiny(action_classes=5)).eval()


def _frames(t: int = 3) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.randint(0, 256, (2, t, 64, 64, 3), dtype=torch.uint8, generator=g)


def test_off_by_default_and_observe_records_the_last_frame_and_tokens() -> None:
    m = _model()
    frames = _frames()
    assert not m.cfg.sampler.keep_unchanged
    assert m.observe(frames).shown is None
    m.set_sampler(replace(m.cfg.sampler, keep_unchanged=True))
    ctx = m.observe(frames)
    assert ctx.shown is not None and torch.equal(ctx.shown, frames[:, -1])
    assert ctx.last_tokens is not None
    assert torch.equal(ctx.last_tokens, m.encode(frames[:, -1:]).tokens[:, 0])


def test_unchanged_tokens_show_the_last_frame_and_a_changed_one_redraws_its_neighbourhood() -> None:
    m = _model()
    m.set_sampler(replace(m.cfg.sampler, keep_unchanged=True))
    ctx = m.observe(_frames())
    assert ctx.last_tokens is not None and ctx.shown is not None
    decoded = torch.zeros_like(
        ctx.shown
    )  # stands for a decoded frame that differs from the shown one everywhere
    same = ctx.last_tokens.clone()
    assert torch.equal(m._keep_unchanged(decoded, same, ctx), ctx.shown)  # nothing changed: the frame is kept
    h, w = m.grid
    p = m.cfg.height // h
    changed = same.view(2, h, w).clone()
    changed[0, 3, 4] = (
        changed[0, 3, 4] + 1
    ) % m.tokenizer.vocab_size  # one token of the first sample changes
    out = m._keep_unchanged(decoded, changed.flatten(1), ctx)
    redrawn = torch.zeros(h, w, dtype=torch.bool)
    redrawn[2:5, 3:6] = True  # the changed patch and its 8 neighbours
    pix = redrawn.repeat_interleave(p, 0).repeat_interleave(p, 1)
    assert torch.equal(out[0][pix], decoded[0][pix])
    assert torch.equal(out[0][~pix], ctx.shown[0][~pix])
    assert torch.equal(out[1], ctx.shown[1])  # the other sample is untouched


def test_a_step_changes_the_frame_only_where_the_dynamics_changed_tokens() -> None:
    m = _model()
    frames = _frames()
    action = torch.tensor([[1.0], [2.0]])
    _, plain = m.step(m.observe(frames), action)
    m.set_sampler(MaskGITConfig(steps=m.cfg.sampler.steps, keep_unchanged=True))
    ctx = m.observe(frames)
    ctx2, kept = m.step(ctx, action)
    assert torch.equal(kept.latent, plain.latent)  # the same tokens are sampled
    assert kept.frame is not None and plain.frame is not None
    expect = m._keep_unchanged(plain.frame, plain.latent.flatten(1), ctx)
    assert torch.equal(kept.frame, expect)
    assert ctx2.shown is not None and torch.equal(ctx2.shown, kept.frame)
    assert ctx2.last_tokens is not None and torch.equal(ctx2.last_tokens, kept.latent.flatten(1))
    roll = m.rollout(m.observe(frames), torch.zeros(2, 3, 1), seed=0)
    assert roll.frames.shape == (2, 3, 64, 64, 3)


def test_show_projected_shows_the_frame_the_context_holds() -> None:
    import pytest

    palette = ((0, 0, 0), (255, 0, 0), (0, 255, 0), (0, 0, 255))
    torch.manual_seed(0)
    m = AutoregressiveWorldModel(tiny(action_classes=5, palette=palette)).eval()
    g = torch.Generator().manual_seed(1)
    frames = torch.tensor(palette, dtype=torch.uint8)[torch.randint(0, 4, (2, 3, 64, 64), generator=g)]
    action = torch.tensor([[1.0], [2.0]])
    base = MaskGITConfig(steps=m.cfg.sampler.steps, keep_area=0.9)
    m.set_sampler(base)
    _, plain = m.step(m.observe(frames), action)
    m.set_sampler(replace(base, show_projected=True))
    ctx, shown = m.step(m.observe(frames), action)
    assert ctx.seen is not None and shown.frame is not None
    assert torch.equal(shown.frame, ctx.seen) and torch.equal(shown.latent, plain.latent)
    assert {tuple(c) for c in shown.frame.reshape(-1, 3).tolist()} <= set(palette)
    with pytest.raises(ValueError, match="show_projected"):
        MaskGITConfig(show_projected=True)  # keep_area 0: nothing projected to show

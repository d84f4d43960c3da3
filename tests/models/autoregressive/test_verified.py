"""The solidity verifier in the autoregressive sampler (``MaskGITConfig.verifier``, ``verified.py``)."""

from dataclasses import replace

import pytest
import torch

from gedanken.data.synthetic import synthetic_episode
from gedanken.models.autoregressive import AutoregressiveWorldModel, tiny
from gedanken.models.autoregressive.verified import cache_rows
from gedanken.models.verifier import object_sizes, solidity_penalty

PALETTE = ((0, 0, 0), (255, 0, 0), (0, 255, 0), (0, 0, 255))


def _model() -> AutoregressiveWorldModel:
    torch.manual_seed(0)
    m = AutoregressiveWorldModel(tiny(action_classes=5, palette=PALETTE)).eval()
    # untrained, the dynamics predicts near-uniform tokens and the decoder draws every token alike: make the
    # decodings differ
    for p in [*m.dynamics.parameters(), *m.tokenizer.parameters()]:
        torch.nn.init.normal_(p, std=0.3)
    return m


def _frames() -> torch.Tensor:
    return torch.stack([torch.from_numpy(synthetic_episode(i, steps=3).frames) for i in range(4)])


def test_narrowed_cache_rows_decode_as_the_whole_batch_does() -> None:
    m = _model()
    ctx = m.observe(_frames())
    emb = m.real_action_embedding(torch.zeros(4, 1))
    tokens, frame = m.decode_frame(ctx, emb, m.sampler)  # greedy: deterministic
    rows = torch.tensor([2, 0, 2])
    sub = replace(ctx, cache=cache_rows(ctx.cache, rows, tokens.shape[1]), batch=3)
    sub_tokens, sub_frame = m.decode_frame(sub, emb[rows], m.sampler)
    assert torch.equal(sub_tokens, tokens[rows]) and torch.equal(sub_frame, frame[rows])


def test_rejected_frames_are_decoded_again_and_the_least_penetrating_kept() -> None:
    m = _model()
    frames = _frames()
    sizes = object_sizes(frames, torch.tensor(PALETTE))
    action = torch.zeros(4, 1)

    def penalty(**kw) -> tuple[torch.Tensor, torch.Tensor]:
        m.set_sampler(replace(m.cfg.sampler, **kw))
        _, pred = m.step(m.observe(frames), action)
        return solidity_penalty(pred.frame, torch.tensor(PALETTE), sizes), pred.frame

    one, first = penalty()
    strict, _ = penalty(verifier="solidity", candidates=6, verifier_tolerance=0.0)
    assert (one > 0).any()
    assert (strict <= one + 0.25).all()  # the greedy decoding is a candidate; ties within 0.25 px keep it
    assert (strict < one - 0.25).any()
    _, same = penalty(verifier="solidity", candidates=6, verifier_tolerance=1e9)
    assert torch.equal(same, first)  # nothing rejected: the sampler's own frame


def test_the_verifier_needs_a_palette_and_candidates() -> None:
    m = _model()
    with pytest.raises(ValueError, match="picks among candidates"):
        m.set_sampler(replace(m.cfg.sampler, verifier="solidity"))
    with pytest.raises(ValueError, match="verifier_temperature"):
        replace(m.cfg.sampler, verifier_temperature=0.0)
    plain = AutoregressiveWorldModel(tiny(action_classes=5))
    with pytest.raises(ValueError, match="palette"):
        plain.set_sampler(replace(plain.cfg.sampler, verifier="solidity", candidates=4))

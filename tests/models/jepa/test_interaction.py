"""The predictor's keypoint interaction term: layout, pair symmetry, what it can see, config errors."""

from __future__ import annotations

import pytest
import torch

from gedanken.models.jepa import JepaWorldModel, tiny
from gedanken.models.jepa.config import PredictorConfig
from gedanken.models.jepa.interaction import KeypointInteraction

K = 4


def _latent(xy: torch.Tensor, f: torch.Tensor, motion: torch.Tensor) -> torch.Tensor:
    return torch.cat((xy.flatten(-2), f, motion.flatten(-2)), dim=-1)


def _net(seed: int = 0) -> KeypointInteraction:
    torch.manual_seed(seed)
    net = KeypointInteraction(K, 2, 16)
    with torch.no_grad():
        net.out.weight.normal_(0, 0.5)  # it starts at zero: "no interaction"
    return net


def test_starts_as_no_interaction_and_splits_the_latent_layout() -> None:
    net = KeypointInteraction(K, 2, 16)
    z, a = torch.randn(5, 3, 5 * K), torch.randn(5, 3, 2)
    assert torch.equal(net(z, a), torch.zeros_like(z))
    xy, f, motion = net.split(z)
    assert torch.equal(_latent(xy, f, motion), z)


def test_a_keypoint_feels_a_neighbour_only_through_the_pair_terms_that_move() -> None:
    net = _net()
    g = torch.Generator().manual_seed(1)
    xy, f, motion = torch.rand(1, K, 2, generator=g), torch.rand(1, K, generator=g), torch.zeros(1, K, 2)
    a = torch.tensor([[0.5, -0.5]])
    base = net(_latent(xy, f, motion), a)
    moved = xy.clone()
    moved[0, 3] += 0.3  # move keypoint 3 only
    out = net(_latent(moved, f, motion), a).view(1, -1)
    changed = (out - base).abs() > 1e-6
    # every keypoint's change depends on where keypoint 3 is (through the summed pair terms)
    for i in range(K):
        assert changed[0, [2 * i, 2 * i + 1]].any(), f"keypoint {i} does not feel keypoint 3"


def test_same_offsets_same_effect_whatever_the_sender_order_but_ids_differ() -> None:
    net = _net()
    with torch.no_grad():
        net.ids.zero_()  # without identity embeddings the term is a function of the set of senders
    g = torch.Generator().manual_seed(2)
    xy, f, motion = (
        torch.rand(1, K, 2, generator=g),
        torch.rand(1, K, generator=g),
        torch.rand(1, K, 2, generator=g),
    )
    a = torch.tensor([[0.2, 0.9]])
    perm = torch.tensor([0, 3, 1, 2])  # permute the senders of keypoint 0
    out = net(_latent(xy, f, motion), a)
    out_p = net(_latent(xy[:, perm], f[:, perm], motion[:, perm]), a)
    x0 = lambda o: o[..., :2]  # noqa: E731 - keypoint 0's position change
    torch.testing.assert_close(x0(out), x0(out_p), atol=1e-5, rtol=1e-5)


def test_interaction_needs_the_keypoint_latent() -> None:
    with pytest.raises(ValueError, match="interaction must be >= 0"):
        PredictorConfig(interaction=-1)
    from gedanken.models.jepa import EncoderKind

    with pytest.raises(ValueError, match="keypoint encoder's latent"):
        JepaWorldModel(tiny(kind=EncoderKind.VIT, predictor=PredictorConfig(interaction=8)))
    with pytest.raises(ValueError, match="has 20 values"):
        KeypointInteraction(K, 2, 8)(torch.zeros(2, 21), torch.zeros(2, 2))

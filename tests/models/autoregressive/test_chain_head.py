"""The chained digit head (DynamicsConfig.chained, heads.ChainHead): each FSQ digit given the digits before it."""

from dataclasses import replace

import pytest
import torch
from typer.testing import CliRunner

from gedanken.models import load_checkpoint, save_checkpoint
from gedanken.models.autoregressive import AutoregressiveWorldModel
from gedanken.models.autoregressive.config import tiny as tiny_config
from gedanken.models.autoregressive.dynamics import DynamicsConfig
from gedanken.models.autoregressive.heads import ChainHead, FactorHead
from gedanken.models.autoregressive.recipe import tiny, train_autoregressive
from gedanken.models.protocol import ModelCard

LEVELS = (5, 3, 4)


def _scrambled(head: ChainHead, seed: int = 0) -> ChainHead:
    """The chain's output layers drawn away from zero, so that the digits depend on each other."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in head.mix:
            m[-1].weight.copy_(torch.randn(m[-1].weight.shape, generator=g))
    return head


def test_a_chain_grown_from_a_factorized_head_computes_what_it_did() -> None:
    torch.manual_seed(0)
    factor = FactorHead(LEVELS, 16)
    chain = ChainHead.from_factor(factor)
    h, u, t = torch.randn(9, 16), torch.randn(9, 16), torch.randint(0, 60, (9,))
    with torch.no_grad():
        torch.testing.assert_close(chain.log_probs(h), factor.log_probs(h))
        torch.testing.assert_close(chain.log_probs(h, u, 2.0), factor.log_probs(h, u, 2.0))
        torch.testing.assert_close(chain.loss(h, t), factor.loss(h, t))
        assert torch.equal(chain.greedy(h)[0], factor.greedy(h)[0])
        assert torch.equal(chain.greedy(h, u, 1.5)[0], factor.greedy(h, u, 1.5)[0])


@pytest.mark.parametrize("guidance", [1.0, 2.0])
def test_the_chain_is_one_distribution_that_loss_greedy_and_sampling_agree_on(guidance: float) -> None:
    torch.manual_seed(1)
    head = _scrambled(ChainHead(LEVELS, 16))
    h, u = torch.randn(6, 16), torch.randn(6, 16)
    free = u if guidance != 1.0 else None
    with torch.no_grad():
        logp = head.log_probs(h, free, guidance)  # (6, 60)
        assert logp.shape == (6, 60)
        torch.testing.assert_close(logp.logsumexp(-1), torch.zeros(6), atol=1e-5, rtol=0)
        t = torch.randint(0, 60, (6,))
        if free is None:
            torch.testing.assert_close(head.loss(h, t), -logp.gather(-1, t[:, None])[:, 0])
        idx, lg = head.greedy(h, free, guidance)
        torch.testing.assert_close(lg, logp.gather(-1, idx[:, None])[:, 0], atol=1e-5, rtol=0)
        idx, lg = head.sample(h, 1.0, torch.Generator().manual_seed(0), free, guidance)
        torch.testing.assert_close(lg, logp.gather(-1, idx[:, None])[:, 0], atol=1e-5, rtol=0)
        # at temperature 1 the draws follow the joint distribution
        draws = torch.stack(
            [
                head.sample(
                    h[:1], 1.0, torch.Generator().manual_seed(s), None if free is None else u[:1], guidance
                )[0][0]
                for s in range(600)
            ]
        )
    probs = logp[0].exp()
    for token in probs.topk(3).indices:
        share = float((draws == token).float().mean())
        assert abs(share - float(probs[token])) < 4 * (float(probs[token]) / 600) ** 0.5 + 0.01


def _fit(head: FactorHead, h: torch.Tensor, targets: torch.Tensor) -> FactorHead:
    opt = torch.optim.Adam(head.parameters(), lr=0.05)
    for _ in range(300):
        opt.zero_grad()
        head.loss(h.expand(len(targets), -1), targets).mean().backward()
        opt.step()
    return head


def test_where_the_future_goes_two_ways_the_chain_picks_a_token_of_one_of_them() -> None:
    """Three outcomes for one patch: digits (0, 0) 40 %, (1, 1) 30 %, (1, 2) 30 %. Each digit's own argmax is
    1 and 0, so a factorized head picks (1, 0), a token of none of them; the chain picks digit 1, then 1 or 2."""
    fsq = FactorHead(LEVELS, 8).fsq
    digits = torch.tensor([[0, 0, 0]] * 40 + [[1, 1, 0]] * 30 + [[1, 2, 0]] * 30)
    targets = fsq.digits_to_indices(digits)
    h = torch.randn(1, 8, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    factor = _fit(FactorHead(LEVELS, 8), h, targets)
    torch.manual_seed(0)
    chain = _fit(ChainHead(LEVELS, 8), h, targets)
    support = set(targets.tolist())
    with torch.no_grad():
        assert fsq.digits(factor.greedy(h)[0])[0].tolist() == [1, 0, 0]  # a mix of two outcomes
        assert int(factor.greedy(h)[0]) not in support
        assert int(chain.greedy(h)[0]) in support
        entropy = -(0.4 * torch.tensor(0.4).log() + 0.6 * torch.tensor(0.3).log())
        nll_factor = factor.loss(h.expand(100, -1), targets).mean()
        nll_chain = chain.loss(h.expand(100, -1), targets).mean()
    assert float(nll_chain) == pytest.approx(float(entropy), abs=0.02)  # the chain fits the joint
    assert float(nll_factor) > float(entropy) + 0.2  # independent digits cannot


def test_a_chained_head_needs_digits_and_grows_once() -> None:
    with pytest.raises(ValueError, match="factorized"):
        DynamicsConfig(chained=True)
    cfg = tiny_config(action_classes=5)
    plain = AutoregressiveWorldModel(cfg)
    with pytest.raises(ValueError, match="factorized"):
        plain.dynamics.chain_head()
    m = AutoregressiveWorldModel(replace(cfg, dynamics=replace(cfg.dynamics, factorized=True, chained=True)))
    assert isinstance(m.dynamics.head, ChainHead)
    with pytest.raises(ValueError, match="not chained yet"):
        m.dynamics.chain_head()


def test_a_chained_model_rolls_out_and_round_trips_its_checkpoint(tmp_path) -> None:  # noqa: ANN001
    cfg = tiny_config(action_classes=5)
    cfg = replace(cfg, dynamics=replace(cfg.dynamics, factorized=True, chained=True))
    torch.manual_seed(0)
    m = AutoregressiveWorldModel(cfg).eval()
    _scrambled(m.dynamics.head)
    frames = torch.randint(0, 255, (2, 3, 64, 64, 3), dtype=torch.uint8)
    with torch.no_grad():
        a = m.rollout(m.observe(frames, torch.zeros(2, 3, 1)), torch.zeros(2, 3, 1), seed=3)
    path = save_checkpoint(
        tmp_path / "m",
        m,
        family="autoregressive",
        model_config=cfg,
        card=ModelCard(name="chain", family="autoregressive"),
    )
    back = load_checkpoint(path).eval()
    assert back.dynamics.cfg.chained and isinstance(back.dynamics.head, ChainHead)
    with torch.no_grad():
        b = back.rollout(back.observe(frames, torch.zeros(2, 3, 1)), torch.zeros(2, 3, 1), seed=3)
    assert torch.equal(a.latents, b.latents) and torch.equal(a.frames, b.frames)


def test_a_fine_tune_grows_the_chain_from_the_checkpoints_head(episode_data, tmp_path) -> None:  # noqa: ANN001
    data = episode_data()
    factored = replace(
        tiny(), model=replace(tiny().model, dynamics=replace(tiny().model.dynamics, factorized=True))
    )
    first = train_autoregressive(factored, data, tmp_path / "a", device="cpu")
    chained = replace(
        factored, model=replace(factored.model, dynamics=replace(factored.model.dynamics, chained=True))
    )
    res = train_autoregressive(chained, data, tmp_path / "b", device="cpu", init=first.model_dir)
    before, after = load_checkpoint(first.model_dir), load_checkpoint(res.model_dir)
    assert not before.dynamics.cfg.chained and after.dynamics.cfg.chained
    assert isinstance(after.dynamics.head, ChainHead) and "chained digit head" in after.card.notes
    assert res.stages["dynamics"].step == 4


def test_cli_chained_head_is_refused_for_a_head_without_digits(tmp_path, tiny_cli_args) -> None:  # noqa: ANN001
    app, args = tiny_cli_args
    res = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "x"), "--chained-head"])
    assert res.exit_code == 2 and "factorized" in res.output  # the tiny preset's head is one softmax
    assert not (tmp_path / "x").exists() and not (tmp_path / "data").exists()

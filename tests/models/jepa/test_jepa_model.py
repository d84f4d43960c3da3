"""JEPA family: shapes, gradients, determinism, cached == parallel predictor, save/load round trip."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from gedanken.data.batch import Batch
from gedanken.models import load_checkpoint, save_checkpoint
from gedanken.models.jepa import AntiCollapse, EncoderKind, JepaWorldModel, LatentBatch, Stage, tiny
from gedanken.models.protocol import WorldModel
from gedanken.worlds.state import PRESENT, F, X

S = 32  # tiny frames are 32x32


def _frames(b: int, t: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (b, t, S, S, 3), generator=g, dtype=torch.uint8)


def _batch(b: int = 3, t: int = 4) -> Batch:
    z = torch.zeros(b, t)
    return Batch(frames=_frames(b, t), actions=torch.zeros(b, t, 2), rewards=z, terminated=z.bool())


def _model(**kw: object) -> JepaWorldModel:
    torch.manual_seed(0)
    return JepaWorldModel(tiny(**kw))


def test_encoder_stage_shapes_and_gradients() -> None:
    for kind in EncoderKind:
        for ac in AntiCollapse:
            cfg = tiny(kind=kind)
            cfg = replace(cfg, encoder=replace(cfg.encoder, anti_collapse=ac))
            torch.manual_seed(0)
            m = JepaWorldModel(cfg)
            m.set_stage(Stage.ENCODER)
            m.train()
            loss, logs = m.loss(_batch())
            loss.backward()
            assert loss.ndim == 0 and torch.isfinite(loss), (kind, ac)
            assert ("sigreg" in logs) == (ac is AntiCollapse.SIGREG)
            assert ("cov" in logs) == (ac is AntiCollapse.VICREG)
            enc_grads = [p.grad for p in m.encoder.parameters()]
            assert all(g is not None for g in enc_grads), (kind, ac)
            assert any(float(g.abs().sum()) > 0 for g in enc_grads if g is not None), (kind, ac)
            assert all(p.grad is not None for p in m.ssl_predictor.parameters() if p.requires_grad)
            assert m.predictor.out.weight.grad is None  # frozen in this stage
            assert (m.target is not None) == (ac is AntiCollapse.EMA)


def test_frame_latents_and_protocol_shapes() -> None:
    m = _model().eval()
    d = m.cfg.encoder.latent_dim
    frames = _frames(2, 3)
    z = m.encode(frames)
    assert z.shape == (2, 3, d)
    ctx = m.observe(frames, torch.zeros(2, 3, 2))
    ctx2, pred = m.step(ctx, torch.zeros(2, 2))
    assert pred.latent is not None and pred.latent.shape == (2, d) and pred.frame is None
    roll = m.rollout(ctx, torch.rand(2, 5, 2) * 2 - 1)
    assert roll.latents is not None and roll.latents.shape == (2, 5, d)
    assert roll.states is None  # probe not fitted yet
    assert isinstance(m, WorldModel)
    many = m.rollout(m.repeat_context(m.observe(frames[:1]), 4), torch.zeros(4, 2, 2))
    assert many.latents is not None and many.latents.shape == (4, 2, d)


def test_predictor_stage_trains_only_the_predictor() -> None:
    torch.manual_seed(0)
    base = tiny()
    m = JepaWorldModel(replace(base, predictor=replace(base.predictor, loss="l1", probe_weight=0.0)))
    m.set_stage(Stage.PREDICTOR)
    m.train()
    d = m.cfg.encoder.latent_dim
    loss, logs = m.loss(LatentBatch(torch.randn(4, 5, d), torch.rand(4, 5, 2)))
    loss.backward()
    assert set(logs) == {"teacher", "rollout", "copy_first"}
    assert m.predictor.out.weight.grad is not None
    assert all(p.grad is None for p in m.encoder.parameters())
    cfg = replace(m.cfg, predictor=replace(m.cfg.predictor, loss="mse"))
    m2 = JepaWorldModel(cfg)
    m2.load_state_dict(m.state_dict())
    m2.set_stage(Stage.PREDICTOR)
    batch = LatentBatch(torch.randn(4, 5, d), torch.rand(4, 5, 2))
    l1, logs1 = m.loss(batch)
    l2, logs2 = m2.loss(batch)
    # At initialisation the predictor is the identity: teacher loss = distance between consecutive latents.
    diff = batch.latents[:, 1:] - batch.latents[:, :-1]
    assert abs(logs1["teacher"] - float(diff.abs().mean())) < 1e-5
    assert abs(logs2["teacher"] - float(diff.pow(2).mean())) < 1e-5
    with pytest.raises(ValueError, match="'l1' or 'mse'"):
        replace(m.cfg.predictor, loss="huber")


@pytest.mark.parametrize("interaction", [0, 8])
def test_cached_steps_match_parallel_forward(interaction: int) -> None:
    m = _model(predictor=replace(tiny().predictor, interaction=interaction))
    with torch.no_grad():
        m.predictor.out.weight.normal_(0, 0.1)  # not the identity it starts as
        if interaction:
            m.predictor.interaction.out.weight.normal_(0, 0.1)
    d = m.cfg.encoder.latent_dim
    z, a = torch.randn(2, 9, d), torch.rand(2, 9, 2) * 2 - 1  # longer than max_frames=6: the window slides
    with torch.no_grad():
        par = m.predictor(z, a)  # (B, T, d): output t predicts z_{t+1}
        state = m.predictor.start(z[:, :3], a[:, :3])
        outs = []
        for t in range(2, 8):
            state, nxt = m.predictor.step(state, a[:, t])
            outs.append(nxt)
            state.latent = z[:, t + 1]  # teacher forcing: continue from the true latent
    torch.testing.assert_close(torch.stack(outs, 1), par[:, 2:8], atol=1e-5, rtol=1e-4)


def test_determinism_under_seed() -> None:
    for kind in EncoderKind:
        a, b = _model(kind=kind), _model(kind=kind)
        for (na, pa), (_, pb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
            assert torch.equal(pa, pb), na
        for m in (a, b):
            m.set_stage(Stage.ENCODER)
        torch.manual_seed(5)
        la, _ = a.loss(_batch())
        torch.manual_seed(5)
        lb, _ = b.loss(_batch())
        assert torch.equal(la, lb)
        if kind is EncoderKind.VIT:
            torch.manual_seed(6)
            lc, _ = b.loss(_batch())
            assert not torch.equal(la, lc)  # the masks depend on the seed


def test_save_load_round_trip(tmp_path) -> None:
    m = _model()
    d = m.cfg.encoder.latent_dim
    with torch.no_grad():
        m.predictor.out.weight.normal_(0, 0.1)
    m.probe.fit(torch.randn(64, d), torch.randn(64, m.cfg.max_objects, 10), 1e-2)
    path = save_checkpoint(tmp_path / "jepa", m, family="jepa", model_config=m.cfg, card=m.card)
    m2 = load_checkpoint(path)
    assert isinstance(m2, JepaWorldModel)
    frames, acts = _frames(1, 2), torch.rand(1, 4, 2)
    m.eval()
    r1 = m.rollout(m.observe(frames), acts)
    r2 = m2.rollout(m2.observe(frames), acts)
    assert r1.states is not None and r2.states is not None
    torch.testing.assert_close(r1.latents, r2.latents)
    torch.testing.assert_close(r1.states, r2.states)


def test_bad_inputs_name_the_problem() -> None:
    m = _model()
    try:
        m.encode(torch.zeros(1, 1, 16, 16, 3, dtype=torch.uint8))
    except ValueError as e:
        assert "32x32" in str(e)
    else:
        raise AssertionError("wrong frame size accepted")
    try:
        m.normalise_actions(torch.zeros(1, 3))
    except ValueError as e:
        assert "A=2" in str(e)
    else:
        raise AssertionError("wrong action width accepted")


def test_probe_metric_term_counts_only_what_the_probe_reads() -> None:
    m = _model()  # tiny: MSE + probe_weight 1
    m.set_stage(Stage.PREDICTOR)
    d, k = m.cfg.encoder.latent_dim, m.cfg.max_objects
    still = torch.zeros(2, 4, d)
    with pytest.raises(ValueError, match="fit the probe before the predictor"):
        m.loss(LatentBatch(still, torch.zeros(2, 4, 2)))
    # a probe that reads identity 0's x from latent value 0 and nothing from the others
    g = torch.Generator().manual_seed(0)
    z = torch.randn(256, d, generator=g)
    states = torch.zeros(256, k, F)
    states[:, 0, PRESENT] = 1
    states[:, 0, X] = 10 * z[:, 0]
    m.probe.fit(z, states, ridge=1e-8)
    m.probe_metric = m.probe.metric(states)
    assert m.probe_metric.shape == (d, k * 4)

    def probe_term(moving: int) -> float:
        lat = torch.zeros(2, 4, d)
        lat[:, 2:, moving] = 1.0  # the identity predictor misses one jump of this value
        return m.loss(LatentBatch(lat, torch.zeros(2, 4, 2)))[1]["probe"]

    # x of identity 0 jumps by 10 (its std): error ~1 in one of k * 4 columns, on 1 of 3 teacher-forced steps
    # and 2 of 3 rollout steps -> (1 + 2) / (3 * 4k)
    assert abs(probe_term(0) - 3 / (12 * k)) < 0.2 * 3 / (12 * k)
    assert probe_term(3) < 1e-3 * probe_term(0)  # a value the probe ignores costs (almost) nothing there

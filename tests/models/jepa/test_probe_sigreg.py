"""Probe R^2 on constructed cases; SIGReg and the collapse diagnostics."""

from __future__ import annotations

import math

import torch

from gedanken.models.jepa.probe import LinearProbe, probe_report, r2_score
from gedanken.models.jepa.sigreg import collapse_stats, sigreg
from gedanken.worlds.state import PRESENT, VX, F, X, Y


def test_r2_matches_its_definition() -> None:
    true = torch.tensor([[1.0, 5.0], [2.0, 5.0], [3.0, 5.0], [4.0, 5.0]])
    pred = torch.tensor([[1.5, 5.0], [2.0, 5.0], [2.5, 5.0], [4.0, 5.0]])
    r2 = r2_score(pred, true)
    assert math.isclose(float(r2[0]), 1 - 0.5 / 5.0, rel_tol=1e-9)  # ss_res 0.5, ss_tot 5
    assert math.isnan(float(r2[1]))  # constant column: undefined, not 1


def _constructed(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Latents that are an exact linear image of (x, y, vx) of slot 0, slot 1 present on half the frames."""
    g = torch.Generator().manual_seed(seed)
    states = torch.zeros(n, 2, F)
    states[:, 0, PRESENT] = 1
    states[:, 0, [X, Y, VX]] = torch.rand(n, 3, generator=g) * 60
    states[: n // 2, 1, PRESENT] = 1
    states[: n // 2, 1, X] = torch.rand(n // 2, generator=g) * 60
    mix = torch.randn(8, 16, generator=torch.Generator().manual_seed(99))
    feats = torch.cat(
        [states[:, 0, [X, Y, VX]], states[:, 1, [PRESENT, X]], torch.randn(n, 3, generator=g)], 1
    )
    return feats @ mix, states


def test_probe_recovers_a_linear_code_on_held_out_data() -> None:
    z_tr, s_tr = _constructed(400, 0)
    z_te, s_te = _constructed(200, 1)
    probe = LinearProbe(16, 2)
    probe.fit(z_tr, s_tr, ridge=1e-8)
    rep = probe_report(probe.raw(z_te), s_te)
    assert rep.r2["id0"]["x"] > 0.999 and rep.r2["id0"]["vx"] > 0.999
    assert rep.r2["id1"]["x"] > 0.999  # fitted on the frames where slot 1 is present only
    assert math.isnan(rep.r2["id0"]["vy"])  # never varies
    assert rep.samples == 200
    out = probe(z_te)  # rounded presence
    assert set(out[..., PRESENT].unique().tolist()) <= {0.0, 1.0}


def test_probe_on_noise_scores_about_zero() -> None:
    g = torch.Generator().manual_seed(0)
    z_tr, z_te = torch.randn(500, 8, generator=g), torch.randn(500, 8, generator=g)
    _, s_tr = _constructed(500, 2)
    _, s_te = _constructed(500, 3)
    probe = LinearProbe(8, 2)
    probe.fit(z_tr, s_tr, ridge=1e-2)
    rep = probe_report(probe.raw(z_te), s_te)
    assert abs(rep.position_r2) < 0.1


def test_sigreg_prefers_gaussian_to_collapsed() -> None:
    g = torch.Generator().manual_seed(0)
    gauss = torch.randn(256, 16, generator=g)
    collapsed = torch.zeros(256, 16) + 0.01 * torch.randn(256, 16, generator=g)
    low_rank = torch.randn(256, 2, generator=g) @ torch.randn(2, 16, generator=g)
    s = {
        name: float(sigreg(z, 64, torch.Generator().manual_seed(1)))
        for name, z in {"gauss": gauss, "collapsed": collapsed, "low_rank": low_rank}.items()
    }
    assert s["gauss"] < s["low_rank"] and s["gauss"] < s["collapsed"]
    z = torch.randn(64, 16, requires_grad=True)
    sigreg(z, 32).backward()
    assert z.grad is not None and torch.isfinite(z.grad).all()


def test_collapse_stats() -> None:
    g = torch.Generator().manual_seed(0)
    full = collapse_stats(torch.randn(2000, 8, generator=g))
    assert full.effective_rank > 7.5 and abs(full.mean_std - 1) < 0.05
    rank1 = collapse_stats(torch.randn(500, 1, generator=g) * torch.ones(1, 8))
    assert rank1.effective_rank < 1.01
    point = collapse_stats(torch.ones(100, 8))
    assert point.mean_std == 0.0 and point.effective_rank == 0.0

"""A model and a baseline are compared on the objects both draw, not each on its own survivors."""

from __future__ import annotations

import numpy as np
import pytest

from gedanken.audit.config import MetricSet
from gedanken.audit.objects import paired_position
from gedanken.audit.summary import sentence


def _errors(per_object: list[list[float]]) -> MetricSet:
    """A MetricSet whose per-object errors are (1 episode, Hz, K) from per-object lists over the horizon."""
    arr = np.asarray(per_object, np.float64).T[None]  # (1, Hz, K)
    m = MetricSet(objects={"pos_err_px": arr})
    seen = np.isfinite(arr)
    m.curves["pos_err"] = np.where(seen, arr, 0).sum((0, 2)) / seen.sum((0, 2))
    return m


def test_a_baseline_that_loses_the_hard_object_is_compared_on_the_easy_one() -> None:
    nan = float("nan")
    # object 0 easy (model 1 px, baseline 2 px); object 1 hard (model 5 px, baseline 6 px, then gone from h3)
    model = _errors([[1, 1, 1, 1, 1], [5, 5, 5, 5, 5]])
    base = _errors([[2, 2, 2, 2, 2], [6, 6, nan, nan, nan]])
    # each on its own survivors, the baseline "wins" from horizon 3: 2 px against the model's 3
    assert base.curves["pos_err"][2] < model.curves["pos_err"][2]
    p = paired_position(model, base)
    np.testing.assert_allclose(p["model_px"], [3, 3, 1, 1, 1])
    np.testing.assert_allclose(p["base_px"], [4, 4, 2, 2, 2])
    np.testing.assert_allclose(p["objects"], [2, 2, 1, 1, 1])
    for key, curve in p.items():
        model.curves[f"paired_constant_velocity_{key}"] = curve
    s = sentence("m", {"test": model}, "test", {"constant_velocity": base})
    assert "beats constant-velocity at every horizon (position error on the objects both draw)" in s


def test_the_paired_comparison_still_finds_a_real_loss() -> None:
    model = _errors([[1, 1, 3, 3], [1, 1, 3, 3]])
    base = _errors([[2, 2, 2, 2], [2, 2, 2, 2]])
    for key, curve in paired_position(model, base).items():
        model.curves[f"paired_copy_last_{key}"] = curve
    s = sentence("m", {"test": model}, "test", {"copy_last": base})
    assert (
        "beats copy-last only at some horizons, not at the last (position error on the objects both draw)"
        in s
    )


def test_paired_position_needs_the_same_episodes() -> None:
    a = _errors([[1, 1], [1, 1]])
    b = _errors([[1, 1, 1], [1, 1, 1]])
    with pytest.raises(ValueError, match="different episodes"):
        paired_position(a, b)
    assert paired_position(MetricSet(), b) == {}


def test_run_audit_adds_paired_curves_and_writes_no_per_object_arrays() -> None:
    from gedanken.audit import AuditConfig, run_audit

    cfg = AuditConfig(branches=0, batch_size=4)
    r = run_audit(["ground_truth"], "bounce", episodes=2, horizon=4, context=2, config=cfg, baselines=True)
    gt = r.model("ground_truth").splits["test"]
    for base in ("copy_last", "constant_velocity"):
        assert gt.curves[f"paired_{base}_model_px"].shape == (4,)
        assert (gt.curves[f"paired_{base}_objects"] > 0).all()
    # the simulator replayed is exact: zero error on every shared object
    np.testing.assert_allclose(gt.curves["paired_copy_last_model_px"], 0.0, atol=1e-9)
    assert "paired_copy_last_model_px" not in r.model("copy_last").splits["test"].curves
    assert "paired_constant_velocity_base_px" in r.model("copy_last").splits["test"].curves
    # two episodes, both perfect: the interval over episodes is the point itself
    assert gt.scalars["identity_persistence_lo"] == gt.scalars["identity_persistence_hi"] == 1.0
    assert gt.scalars["interpenetration_lo"] == gt.scalars["interpenetration_hi"] == 0.0
    js = r.to_json()
    row = next(m for m in js["models"] if m["name"] == "ground_truth")["splits"]["test"]
    assert "paired_constant_velocity_base_px" in row["curves"] and "objects" not in row


def test_report_plots_each_learned_model_against_the_baselines_on_shared_objects() -> None:
    from gedanken.audit.report import _paired_plots

    curves = {
        "paired_constant_velocity_model_px": [1.0, 2.0],
        "paired_constant_velocity_base_px": [1.5, None],
    }
    data = {
        "models": [
            {"name": "mine", "card": {"family": "diffusion"}, "splits": {"test": {"curves": curves}}},
            {"name": "copy_last", "card": {"family": "baseline"}, "splits": {"test": {"curves": curves}}},
        ]
    }
    figs = _paired_plots(data, "test")
    assert len(figs) == 1 and "<svg" in figs[0]
    assert "mine vs constant_velocity on the objects both draw" in figs[0]


def _survival(curve: list[float], persistence: float = 0.9) -> MetricSet:
    m = MetricSet(
        curves={"identity_survival": np.asarray(curve)}, scalars={"identity_persistence": persistence}
    )
    return m


def test_the_identity_sentence_reports_the_measured_share_and_frame() -> None:
    s = sentence(
        "m", {"test": _survival([1.0, 0.6, 0.4, 0.1]), "ood": _survival([0.0, 0.0, 0.0, 0.0])}, "test", {}
    )
    assert "half its episodes have broken an identity by frame 1 on ood (100% by the last)" in s
    s = sentence("m", {"test": _survival([1.0, 0.6, 0.4, 0.25])}, "test", {})
    assert "by frame 3 on test (75% by the last)" in s
    s = sentence("m", {"test": _survival([1.0, 0.9, 0.5]), "ood": _survival([1.0, 1.0, 0.8])}, "test", {})
    assert "keeps every identity over the whole horizon in at least 50% of episodes on every split" in s

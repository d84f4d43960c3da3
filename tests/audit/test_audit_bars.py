"""The bars read off an audit: thresholds, both readings of the position bars, refusal of foreign JSON."""

from __future__ import annotations

import pytest

from gedanken.audit.bars import _spans, markdown, read_bars


def _audit(model_curves: dict, model_scalars: dict, cv: list[float], cl: list[float]) -> dict:
    def row(name: str, family: str, curves: dict, scalars: dict) -> dict:
        return {
            "name": name,
            "card": {"family": family},
            "splits": {"test": {"curves": curves, "scalars": scalars}},
        }

    return {
        "format": "gedanken.audit",
        "reference_split": "test",
        "seed": 0,
        "models": [
            row("mine", "autoregressive", model_curves, model_scalars),
            row("copy_last", "baseline", {"pos_err_px": cl}, {}),
            row("constant_velocity", "baseline", {"pos_err_px": cv}, {}),
        ],
    }


HZ = 40
GOOD = {
    "identity_persistence": 0.99,
    "interpenetration": 0.0002,
    "interpenetration_truth": 0.0003,
    "ctrl_ratio": 2.5,
}


def test_every_bar_met() -> None:
    bars = read_bars(_audit({"pos_err_px": [1.0] * HZ}, GOOD, [2.0] * HZ, [3.0] * HZ))["mine"]
    assert [b.met for b in bars] == [True] * 5
    assert bars[-1].measured == "0.400"  # true / shuffled = 1 / ctrl_ratio


def test_each_bar_can_fail() -> None:
    own = [1.0] * HZ
    own[9] = 2.5  # above constant velocity at horizon 10, above copy-last at none
    own[35] = 3.5  # above both at horizon 36: copy-last's bar stops at 32
    bad = {
        "identity_persistence": 0.97,
        "interpenetration": 0.001,
        "interpenetration_truth": 0.0003,
        "ctrl_ratio": 1.5,
    }
    bars = {b.name: b for b in read_bars(_audit({"pos_err_px": own}, bad, [2.0] * HZ, [3.0] * HZ))["mine"]}
    assert bars["below copy-last at h1-32"].met is True
    cv = bars["below constant-velocity from h8"]
    assert cv.met is False and "h10, h36" in cv.measured
    assert bars["identity >= 0.98"].met is False
    assert bars["interpenetration <= 2x simulator"].met is False
    assert bars["true / shuffled <= 0.5"].met is False


def test_position_bars_report_both_readings() -> None:
    curves = {
        "pos_err_px": [3.0] * HZ,  # above constant velocity's own-objects curve everywhere from 8
        "paired_constant_velocity_model_px": [1.0] * HZ,
        "paired_constant_velocity_base_px": [2.0] * HZ,
    }
    bars = {b.name: b for b in read_bars(_audit(curves, GOOD, [2.0] * HZ, [4.0] * HZ))["mine"]}
    cv = bars["below constant-velocity from h8"]
    assert cv.met is True and cv.met_own_objects is False
    assert cv.verdict() == "yes on the shared objects, **no** each on its own"
    assert "worst margin -1.00 px" in cv.measured
    table = markdown([("x", _audit(curves, GOOD, [2.0] * HZ, [4.0] * HZ))])
    assert table.count("| x (seed 0) | mine |") == 5
    assert "| copy_last |" not in table and "| constant_velocity |" not in table  # baselines get no rows


def test_spans_and_foreign_json() -> None:
    assert _spans([]) == "none" and _spans([3, 4, 5, 9]) == "h3-5, h9"
    with pytest.raises(ValueError, match="not a gedanken audit"):
        read_bars({"format": "something else"})
    passive = dict(GOOD)
    passive.pop("ctrl_ratio")
    bars = read_bars(_audit({"pos_err_px": [1.0] * HZ}, passive, [2.0] * HZ, [3.0] * HZ))["mine"]
    assert len(bars) == 4  # no control bar on a passive world


def test_a_horizon_too_short_for_a_bar_is_not_judged() -> None:
    bars = {
        b.name: b for b in read_bars(_audit({"pos_err_px": [1.0] * 4}, GOOD, [2.0] * 4, [3.0] * 4))["mine"]
    }
    assert bars["below constant-velocity from h8"].met is None
    assert bars["below constant-velocity from h8"].measured == "horizon 4 is shorter than h8"
    # h1-4 of h1-32: a pass there does not meet the bar (not judged), a loss there fails it
    assert bars["below copy-last at h1-32"].met is None and bars["below copy-last at h1-32"].verdict() == "-"
    assert bars["below copy-last at h1-32"].measured.startswith("(only h1-4 audited)")
    worse = read_bars(_audit({"pos_err_px": [1.0, 1.0, 3.5, 1.0]}, GOOD, [2.0] * 4, [3.0] * 4))["mine"]
    assert next(b for b in worse if b.name == "below copy-last at h1-32").met is False


def test_bars_show_the_episode_interval_when_the_audit_has_it() -> None:
    sc = dict(GOOD, identity_persistence_lo=0.97, identity_persistence_hi=0.995)
    bars = {
        b.name: b for b in read_bars(_audit({"pos_err_px": [1.0] * HZ}, sc, [2.0] * HZ, [3.0] * HZ))["mine"]
    }
    assert bars["identity >= 0.98"].measured == "0.9900 (95 % CI 0.9700-0.9950)"
    assert bars["interpenetration <= 2x simulator"].measured == "0.0002 (simulator 0.0003)"  # none recorded

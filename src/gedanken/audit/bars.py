"""The project's audit bars (issues #4 and #5), read off an ``audit.json`` the same way every time.

    read_bars(json.loads(Path("reports/x/audit.json").read_text()))  # {model: [Bar, ...]}

Per learned model, on the reference split (``test``):

* position error below copy-last at every horizon 1-32 and below constant velocity at every horizon >= 8, each
  read two ways: every curve over its own objects (``pos_err_px``), and on the objects both draw (the
  ``paired_<base>_*`` curves, docs/audit.md "Paired comparisons");
* identity persistence >= 0.98;
* interpenetration <= 2x the simulator's own rate on the same episodes;
* on controllable worlds, position error under the true actions over that under shuffled ones <= 0.5.

``python benchmarks/audit_bars.py <audit.json> ...`` prints them as one table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

COPY_LAST_HORIZONS = (1, 32)
CONSTANT_VELOCITY_FROM = 8
NO_END = 10**9  # a bar that runs to the audit's last horizon
IDENTITY_MIN = 0.98
INTERPENETRATION_FACTOR = 2.0
CONTROL_MAX = 0.5
BASELINE_FAMILY = "baseline"


@dataclass(frozen=True)
class Bar:
    """One bar for one model: what was measured, whether it holds, and where it fails."""

    name: str
    measured: str
    met: bool | None  # None: the bar does not apply or the audit lacks what it needs
    met_own_objects: bool | None = None  # position bars: the reading with each curve over its own objects

    def verdict(self) -> str:
        """'yes', '**no**', '-', or both readings of a position bar when they disagree."""
        word = {None: "-", True: "yes", False: "**no**"}
        if self.met_own_objects is None or self.met_own_objects == self.met:
            return word[self.met]
        return f"{word[self.met]} on the shared objects, {word[self.met_own_objects]} each on its own"


def _curve(values: list | None) -> np.ndarray | None:
    return None if values is None else np.array([np.nan if v is None else v for v in values], np.float64)


def _losses(model: np.ndarray, base: np.ndarray, lo: int, hi: int) -> list[int]:
    """Horizons (1-based) in ``[lo, hi]`` where the model is not strictly below the baseline (NaN is a loss)."""
    hi = min(hi, len(model), len(base))
    return [h for h in range(lo, hi + 1) if not model[h - 1] < base[h - 1]]


def _spans(hs: list[int]) -> str:
    """[3, 4, 5, 9] -> 'h3-5, h9'."""
    if not hs:
        return "none"
    out, start, prev = [], hs[0], hs[0]
    for h in [*hs[1:], None]:
        if h is not None and h == prev + 1:
            prev = h
            continue
        out.append(f"h{start}" if start == prev else f"h{start}-{prev}")
        if h is not None:
            start = prev = h
    return ", ".join(out)


def _position(model: dict, models: dict[str, dict], base: str, lo: int, hi: int) -> Bar:
    label = base.replace("_", "-")
    title = f"below {label} at h{lo}-{hi}" if hi < NO_END else f"below {label} from h{lo}"
    own, theirs = _curve(model["curves"].get("pos_err_px")), None
    if base in models:
        theirs = _curve(models[base]["curves"].get("pos_err_px"))
    pm = _curve(model["curves"].get(f"paired_{base}_model_px"))
    pb = _curve(model["curves"].get(f"paired_{base}_base_px"))
    if own is None or theirs is None:
        return Bar(title, "not audited beside it", None)
    if len(own) < lo:
        return Bar(title, f"horizon {len(own)} is shorter than h{lo}", None)
    unpaired = _losses(own, theirs, lo, hi)
    text = f"each on its own objects: fails {_spans(unpaired)}"
    partial = (
        hi < NO_END and len(own) < hi
    )  # a loss inside the audited part fails; a pass there proves nothing

    def met(losses: list[int]) -> bool | None:
        return False if losses else (None if partial else True)

    if partial:
        text = f"(only h{lo}-{len(own)} audited) " + text
    if pm is None or pb is None:
        return Bar(title, text, met(unpaired))
    paired = _losses(pm, pb, lo, hi)
    end = min(hi, len(pm))
    gap = pm[lo - 1 : end] - pb[lo - 1 : end]
    worst = float(np.nanmax(gap)) if np.isfinite(gap).any() else float("nan")
    text += f"; on the objects both draw: fails {_spans(paired)} (worst margin {worst:+.2f} px)"
    return Bar(title, text, met(paired), met_own_objects=met(unpaired))


def _ci(scalars: dict, key: str) -> str:
    """' (95 % CI lo-hi)' over episodes when the audit has it (audits before session 26 do not)."""
    lo, hi = scalars.get(f"{key}_lo"), scalars.get(f"{key}_hi")
    return "" if lo is None or hi is None else f" (95 % CI {lo:.4f}-{hi:.4f})"


def model_bars(model: dict, models: dict[str, dict], controllable: bool) -> list[Bar]:
    """Every bar for one model's split (``model``: its ``{"curves", "scalars"}``; ``models``: all of them)."""
    sc = model["scalars"]
    bars = [
        _position(model, models, "copy_last", *COPY_LAST_HORIZONS),
        _position(model, models, "constant_velocity", CONSTANT_VELOCITY_FROM, NO_END),
    ]
    ident = sc.get("identity_persistence")
    bars.append(
        Bar(
            f"identity >= {IDENTITY_MIN}",
            "-" if ident is None else f"{ident:.4f}{_ci(sc, 'identity_persistence')}",
            None if ident is None else ident >= IDENTITY_MIN,
        )
    )
    ip, it = sc.get("interpenetration"), sc.get("interpenetration_truth")
    if ip is None or it is None:
        bars.append(Bar("interpenetration <= 2x simulator", "-", None))
    else:
        bars.append(
            Bar(
                "interpenetration <= 2x simulator",
                f"{ip:.4f}{_ci(sc, 'interpenetration')} (simulator {it:.4f})",
                ip <= INTERPENETRATION_FACTOR * it,
            )
        )
    ratio = sc.get("ctrl_ratio")
    if controllable and ratio:
        bars.append(Bar(f"true / shuffled <= {CONTROL_MAX}", f"{1 / ratio:.3f}", 1 / ratio <= CONTROL_MAX))
    return bars


def read_bars(audit: dict) -> dict[str, list[Bar]]:
    """Bars of every learned model (baselines skipped) on the audit's reference split."""
    if audit.get("format") != "gedanken.audit":
        raise ValueError("not a gedanken audit.json (its 'format' is not 'gedanken.audit')")
    split = audit["reference_split"]
    models = {m["name"]: m["splits"][split] for m in audit["models"] if split in m["splits"]}
    controllable = any("ctrl_ratio" in s["scalars"] for s in models.values())
    return {
        m["name"]: model_bars(models[m["name"]], models, controllable)
        for m in audit["models"]
        if m["card"].get("family") != BASELINE_FAMILY and m["name"] in models
    }


def markdown(audits: list[tuple[str, dict]]) -> str:
    """One markdown table: a row per (file, model, bar)."""
    lines = ["| audit | model | bar | measured | met |", "|---|---|---|---|---|"]
    for label, audit in audits:
        for name, bars in read_bars(audit).items():
            for b in bars:
                lines.append(
                    f"| {label} (seed {audit.get('seed', 0)}) | {name} | {b.name} | {b.measured} | {b.verdict()} |"
                )
    return "\n".join(lines) + "\n"

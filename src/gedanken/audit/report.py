"""Write an audit as ``audit.json`` (for machines) and one self-contained ``index.html`` (for people).

The page has no script and fetches nothing: plots are inline SVG, clips are GIF data URIs. Every number in
the leaderboard carries its exact JSON value in a ``data-value`` attribute next to its rounded text, so a
test (or a reader) can check the page against the JSON.

Writes are atomic: both files are written into a temporary sibling directory that then replaces
``out_dir``; a failure leaves no half-written report behind.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from gedanken import __version__
from gedanken.audit.bars import BASELINE_FAMILY, read_bars
from gedanken.audit.media import gif_data_uri, line_plot, side_by_side
from gedanken.audit.objects import PAIRED_BASELINES
from gedanken.audit.run import AuditResult
from gedanken.audit.summary import GENERALIZATION, LEADERBOARD, METRICS

JSON_NAME = "audit.json"
HTML_NAME = "index.html"

PLOTS: tuple[tuple[str, str, str], ...] = (
    ("pos_err", "position error vs horizon", "world units"),
    ("identity_survival", "identity persistence (episodes with no break yet)", "share"),
    ("vel_err", "velocity error vs horizon", "world units / s"),
    ("interpenetration", "interpenetration rate", "share of frames"),
    ("area_ratio", "object size (judged area / true area)", "ratio"),
    ("psnr", "PSNR vs horizon", "dB"),
    ("ssim", "SSIM vs horizon", ""),
    ("delta_psnr", "delta-PSNR (true minus random actions)", "dB"),
)

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#222;max-width:1400px}
table{border-collapse:collapse;margin:8px 0 20px}th,td{border:1px solid #ccc;padding:3px 7px;font-size:13px}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}td.best{font-weight:bold}
.plots{display:flex;flex-wrap:wrap;gap:8px}.clips{display:flex;flex-wrap:wrap;gap:14px}
.clip{text-align:center;font-size:12px}.clip img{image-rendering:pixelated;width:390px}
.sentence{margin:4px 0}.muted{color:#777;font-size:12px}
"""


def fmt(v: float | None) -> str:
    """How the page prints a number (``-`` for undefined)."""
    if v is None or not math.isfinite(v):
        return "-"
    if v != 0 and (abs(v) >= 1000 or abs(v) < 0.001):
        return f"{v:.3g}"
    return f"{v:.3f}" if abs(v) < 10 else f"{v:.2f}"


def _e(s: object) -> str:
    return html.escape(str(s))


def _leaderboard(data: dict) -> str:
    splits = data["splits"]
    present = [
        k
        for k in LEADERBOARD
        if any(m["splits"][s]["scalars"].get(k) is not None for m in data["models"] for s in splits)
    ]
    head = "".join(f'<th title="{_e(METRICS[k].doc)}">{_e(METRICS[k].label)}</th>' for k in present)
    rows = []
    for split in splits:
        best = {}
        for k in present:
            vals = [
                m["splits"][split]["scalars"].get(k)
                for m in data["models"]
                if m["card"]["family"] != "baseline"
            ]
            vals = [v for v in vals if v is not None]
            if vals and METRICS[k].better:
                best[k] = min(vals) if METRICS[k].better == "lower" else max(vals)
        for m in data["models"]:
            cells = []
            for k in present:
                v = m["splits"][split]["scalars"].get(k)
                cls = "num best" if v is not None and best.get(k) == v else "num"
                cells.append(
                    f'<td class="{cls}" data-model="{_e(m["name"])}" data-split="{_e(split)}" '
                    f'data-metric="{k}" data-value="{"null" if v is None else repr(float(v))}">{fmt(v)}</td>'
                )
            rows.append(f"<tr><td>{_e(split)}</td><td>{_e(m['name'])}</td>{''.join(cells)}</tr>")
    return f"<table><tr><th>split</th><th>model</th>{head}</tr>{''.join(rows)}</table>"


def _bars(data: dict) -> str:
    """The project's bars (``gedanken.audit.bars``) for every learned model on the reference split."""
    rows = []
    for name, bars in read_bars(data).items():
        for b in bars:
            verdict = html.escape(b.verdict()).replace("**no**", "<b>no</b>")
            rows.append(
                f"<tr><td>{_e(name)}</td><td>{_e(b.name)}</td><td>{_e(b.measured)}</td>"
                f'<td data-bar-met="{"null" if b.met is None else str(b.met).lower()}">{verdict}</td></tr>'
            )
    if not rows:
        return '<p class="muted">No learned model audited: no bars to read.</p>'
    return (
        f'<p class="muted">On {_e(data["reference_split"])}; position bars read on each curve\'s own objects '
        "and on the objects both draw.</p><table><tr><th>model</th><th>bar</th><th>measured</th><th>met</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _generalization(data: dict) -> str:
    splits = [s for s in data["splits"] if s != data["reference_split"]]
    if not splits:
        return '<p class="muted">One split audited: no generalization ratios.</p>'
    head = "".join(
        f"<th>{_e(METRICS[k].label)} {_e(s)}/{_e(data['reference_split'])}</th>"
        for s in splits
        for k in GENERALIZATION
    )
    rows = []
    for m in data["models"]:
        cells = "".join(
            f'<td class="num" data-model="{_e(m["name"])}" data-split="{_e(s)}" data-ratio="{k}">'
            f"{fmt(m['generalization'].get(s, {}).get(k))}</td>"
            for s in splits
            for k in GENERALIZATION
        )
        rows.append(f"<tr><td>{_e(m['name'])}</td>{cells}</tr>")
    return f"<table><tr><th>model</th>{head}</tr>{''.join(rows)}</table>"


def _plots(data: dict) -> str:
    parts = []
    for split in data["splits"]:
        figs = []
        for key, title, unit in PLOTS:
            series = {
                m["name"]: m["splits"][split]["curves"][key]
                for m in data["models"]
                if key in m["splits"][split]["curves"]
            }
            if series:
                ys = {n: [math.nan if v is None else v for v in c] for n, c in series.items()}
                figs.append(line_plot(ys, f"{title} ({split})", ylabel=unit))
        figs += _paired_plots(data, split)
        parts.append(f"<h3>{_e(split)}</h3><div class='plots'>{''.join(figs)}</div>")
    return "".join(parts)


def _paired_plots(data: dict, split: str) -> list[str]:
    """Each learned model against copy-last and constant velocity on the objects both draw (a baseline's own
    curve above averages over the objects it still shows, and constant velocity loses some off-frame)."""
    figs = []
    for m in data["models"]:
        if m["card"].get("family") == BASELINE_FAMILY:
            continue
        curves = m["splits"][split]["curves"]
        for base in PAIRED_BASELINES:
            a, b = curves.get(f"paired_{base}_model_px"), curves.get(f"paired_{base}_base_px")
            if a is None or b is None:
                continue
            ys = {m["name"]: a, f"{base} (same objects)": b}
            ys = {n: [math.nan if v is None else v for v in c] for n, c in ys.items()}
            title = f"{m['name']} vs {base} on the objects both draw ({split})"
            figs.append(line_plot(ys, title, ylabel="pixels"))
    return figs


def _clips(result: AuditResult) -> str:
    parts = []
    pal = None
    for split in result.splits:
        items = []
        for m in result.models:
            clip = result.clips.get(m.name, {}).get(split)
            if clip is None or clip.pred is None or len(clip.truth) == 0:
                continue
            if pal is None:
                pal = _palette(clip.truth)
            frames = side_by_side(clip.truth[0], clip.pred[0])
            uri = gif_data_uri(frames, fps=15.0, exact=pal)
            items.append(
                f"<div class='clip'><img src='{uri}' alt='{_e(m.name)} on {_e(split)}'>"
                f"<br>{_e(m.name)}: truth | prediction</div>"
            )
        if items:
            parts.append(f"<h3>{_e(split)}</h3><div class='clips'>{''.join(items)}</div>")
    return "".join(parts) or '<p class="muted">No model decoded pixels.</p>'


def _palette(frames: np.ndarray) -> list[tuple[int, int, int]]:
    """Up to 40 most frequent colours of the true frames (kept exact in the GIFs)."""
    flat = frames.reshape(-1, 3)
    colours, counts = np.unique(flat, axis=0, return_counts=True)
    order = np.argsort(-counts)[:40]
    return [tuple(int(c) for c in colours[i]) for i in order]  # type: ignore[misc]


def _cards(data: dict) -> str:
    fields = ["family", "world", "dataset", "preset", "steps", "train_seconds", "params", "notes"]
    head = "".join(f"<th>{f}</th>" for f in fields)
    rows = "".join(
        f"<tr><td>{_e(m['name'])}</td>"
        + "".join(f"<td>{_e(m['card'].get(f, ''))}</td>" for f in fields)
        + "</tr>"
        for m in data["models"]
    )
    return f"<table><tr><th>model</th>{head}</tr>{rows}</table>"


def render_html(result: AuditResult, data: dict | None = None) -> str:
    """The report page as one string."""
    data = data if data is not None else result.to_json()
    sentences = "".join(f"<p class='sentence'>{_e(m['sentence'])}</p>" for m in data["models"])
    glossary = "".join(
        f"<tr><td>{_e(k)}</td><td>{_e(v.better or 'info')}</td><td>{_e(v.doc)}</td></tr>"
        for k, v in METRICS.items()
    )
    notes = "".join(
        f"<li>{_e(m['name'])} / {_e(s)}: {_e(n)}</li>"
        for m in data["models"]
        for s, ns in m["notes"].items()
        for n in ns
    )
    cfg = _e(json.dumps(data["config"]))
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>gedanken audit: {_e(data["world"])}</title>
<style>{_CSS}</style></head><body>
<h1>gedanken audit: {_e(data["world"])}</h1>
<p class="muted">splits {_e(", ".join(data["splits"]))}; {data["episodes"]} episodes per split; context {data["context"]},
horizon {data["horizon"]}; seed {data["seed"]}; {data["seconds"]:.1f} s; gedanken {__version__}; {stamp}</p>
<h2>In one sentence</h2>{sentences}
<h2>Leaderboard</h2>
<p class="muted">Bold: best learned model per column (baselines are references). Hover a header for its meaning.</p>
{_leaderboard(data)}
<h2>Bars</h2>{_bars(data)}
<h2>Generalization (ratio to {_e(data["reference_split"])})</h2>{_generalization(data)}
<h2>Error vs horizon</h2>{_plots(data)}
<h2>Ground truth vs prediction</h2><p class="muted">First episode of each split; left truth, right model.</p>
{_clips(result)}
<h2>Model cards</h2>{_cards(data)}
<h2>Notes</h2><ul>{notes or "<li>none</li>"}</ul>
<h2>Metrics</h2><table><tr><th>metric</th><th>better</th><th>meaning</th></tr>{glossary}</table>
<p class="muted">config: {cfg}</p>
</body></html>
"""


def check_report_dir(out_dir: str | Path) -> Path:
    """``out_dir`` as a path; ``ValueError`` if it is a file, or a non-empty folder that holds no audit (a report
    replaces only an earlier report)."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"report output {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / JSON_NAME).exists():
        raise ValueError(
            f"report output {out} is a non-empty directory that holds no audit; choose another --out"
        )
    return out


def write_report(result: AuditResult, out_dir: str | Path) -> Path:
    """Write ``audit.json`` and ``index.html`` into ``out_dir`` (replaced atomically); return ``out_dir``."""
    out = check_report_dir(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    data = result.to_json()
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private; a report is as readable as any new directory
        (tmp / JSON_NAME).write_text(json.dumps(data, indent=1, allow_nan=False))
        (tmp / HTML_NAME).write_text(render_html(result, data))
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def load_report(out_dir: str | Path) -> dict:
    """The JSON of a written report."""
    return json.loads((Path(out_dir) / JSON_NAME).read_text())

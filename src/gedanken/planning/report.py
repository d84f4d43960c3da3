"""Planning reports: ``plan.json`` for machines, ``index.html`` + mp4 clips for people."""

from __future__ import annotations

import html
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from gedanken.planning.evaluate import ModelResult

log = logging.getLogger(__name__)


def _clip(executed: np.ndarray, imagined: np.ndarray | None, goal: np.ndarray | None) -> np.ndarray:
    """Side by side ``executed | imagined | goal`` frames ``(T, H, 3 W + 4, 3)``."""
    t, h, w, _ = executed.shape
    gap = np.full((t, h, 2, 3), 255, np.uint8)
    parts = [executed]
    if imagined is not None:
        parts += [gap, imagined[:t]]
    if goal is not None:
        parts += [gap, np.broadcast_to(goal, (t, h, w, 3))]
    return np.ascontiguousarray(np.concatenate(parts, axis=2))


def write_report(
    results: list[ModelResult],
    out: str | Path,
    *,
    task: dict[str, Any],
    config: dict[str, Any],
    fps: float = 15.0,
) -> Path:
    """Write ``plan.json``, ``index.html`` and ``clips/<model>_<i>.mp4`` under ``out``; returns the JSON path."""
    from gedanken.data.video import write_mp4

    out = Path(out)
    (out / "clips").mkdir(parents=True, exist_ok=True)
    for old in (out / "clips").glob("*.mp4"):  # a re-used report folder: only this run's clips stay
        old.unlink()
    rows, clips = [], {}
    for r in results:
        rows.append(r.summary())
        for e in r.episodes:
            if e.executed is None:
                continue
            name = f"clips/{_slug(r.model)}_{r.planner}_{e.index}.mp4"
            write_mp4(_clip(e.executed, e.imagined, e.goal_frame), out / name, fps=fps)
            clips.setdefault(r.model, []).append((e.index, e.success, name))
    ceiling = next((r.success_rate for r in results if r.model == "simulator"), None)
    floor = next((r.success_rate for r in results if r.model == "random"), None)
    for row in rows:
        row["vs_simulator"] = None if not ceiling else row["success_rate"] / ceiling
        row["vs_random"] = None if not floor else row["success_rate"] / floor
    path = out / "plan.json"
    path.write_text(json.dumps({"task": task, "config": config, "results": rows}, indent=1))
    (out / "index.html").write_text(_html(rows, clips, task))
    log.info("wrote %s", path)
    return path


def _slug(s: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in s)


def _fmt(v: Any, pct: bool = False) -> str:
    if v is None:
        return "-"
    if pct:
        return f"{100 * v:.0f}%"
    return f"{v:.1f}" if isinstance(v, float) else str(v)


def _html(
    rows: list[dict[str, Any]], clips: dict[str, list[tuple[int, bool, str]]], task: dict[str, Any]
) -> str:
    head = (
        "<tr><th>model</th><th>family</th><th>planner</th><th>goal</th><th>success</th><th>steps to success"
        "</th><th>final distance</th><th>plan ms (p50 / p95)</th></tr>"
    )
    body = "".join(
        f"<tr><td>{html.escape(r['model'])}</td><td>{html.escape(str(r['family']))}</td><td>{r['planner']}</td>"
        f"<td>{r['goal']}</td><td>{_fmt(r['success_rate'], pct=True)} ({r['successes']}/{r['episodes']})</td>"
        f"<td>{_fmt(r['steps_to_success_mean'])}</td><td>{_fmt(r['final_distance_mean'])}</td>"
        f"<td>{_fmt(r['plan_ms_p50'])} / {_fmt(r['plan_ms_p95'])}</td></tr>"
        for r in rows
    )
    vids = "".join(
        f"<h3>{html.escape(m)}</h3><div class=row>"
        + "".join(
            f"<figure><video src='{n}' controls loop muted autoplay width=400></video><figcaption>episode {i}: "
            f"{'solved' if ok else 'not solved'}</figcaption></figure>"
            for i, ok, n in items
        )
        + "</div>"
        for m, items in clips.items()
    )
    return f"""<!doctype html><meta charset=utf-8><title>gedanken plan</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;
padding:4px 8px}}.row{{display:flex;gap:1em;flex-wrap:wrap}}</style>
<h1>Goal reaching on {html.escape(str(task.get("world", "push")))}</h1>
<p>{html.escape(json.dumps(task))}</p><table>{head}{body}</table>
<h2>Clips</h2><p>Left: executed (real world). Middle: what the model expected at the end of each plan (its
decoded picture, or its predicted poses drawn with the true shapes). Right: the goal.</p>{vids}
"""

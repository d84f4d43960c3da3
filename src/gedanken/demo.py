"""The main job behind ``make demo``: record every world, load (or train) models, audit them, write reports.

Everything it writes goes under one output folder:

* ``data/<world>/``       a small dataset per built-in world (resumable, re-running reuses it);
* ``previews/<world>.mp4`` the first recorded episode of each world, upscaled for viewing;
* ``audit/<world>/``      the audit report (``audit.json`` + ``index.html``) of every model that exists for the
                          world, side by side with the baselines;
* ``index.html``          one page linking all of the above.
"""

from __future__ import annotations

import html
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gedanken.data.collect import collect
from gedanken.data.store import EpisodeDataset
from gedanken.data.video import write_mp4
from gedanken.worlds import WORLD_ENTRIES

log = logging.getLogger(__name__)

FAMILIES: tuple[str, ...] = ("diffusion", "autoregressive", "jepa")
AUDITED_WORLDS: tuple[str, ...] = ("bounce", "push")
BASELINE_NAMES: tuple[str, ...] = ("ground_truth", "copy_last", "constant_velocity", "noise")


@dataclass(frozen=True)
class DemoConfig:
    """What ``gedanken demo`` does; the defaults finish in a few minutes on 2 CPU cores."""

    out: Path  # output folder
    episodes: int = 8  # episodes recorded per world
    steps: int = 96  # steps per recorded episode
    audit_episodes: int = 24  # held-out episodes per split in each audit
    horizon: int = 64  # predicted frames per audited episode
    splits: tuple[str, ...] = ("test", "ood")  # audited splits
    worlds: tuple[str, ...] = AUDITED_WORLDS  # worlds that get an audit report
    workers: int = 2  # collection processes


@dataclass
class DemoResult:
    datasets: dict[str, Path] = field(default_factory=dict)
    previews: dict[str, Path] = field(default_factory=dict)
    reports: dict[str, Path] = field(default_factory=dict)
    models: dict[str, list[str]] = field(default_factory=dict)  # world -> audited model names
    sentences: dict[str, list[str]] = field(default_factory=dict)  # world -> one plain sentence per model
    seconds: float = 0.0


def shipped_models(world: str) -> list[str]:
    """Checkpoint directories that ship in the package for ``world`` (any family)."""
    from gedanken.models import CHECKPOINT_ROOT

    return [
        str(CHECKPOINT_ROOT / f"{f}_{world}") for f in FAMILIES if (CHECKPOINT_ROOT / f"{f}_{world}").is_dir()
    ]


def run_demo(cfg: DemoConfig, progress: Callable[[str], None] = lambda _msg: None) -> DemoResult:
    """Record, preview, audit; see the module docstring for what lands where."""
    from gedanken.audit.report import write_report
    from gedanken.audit.run import run_audit

    t0 = time.perf_counter()
    res = DemoResult()
    for world in WORLD_ENTRIES:
        progress(f"recording {cfg.episodes} {world} episodes")
        path = cfg.out / "data" / world
        collect(world, path, cfg.episodes, steps=cfg.steps, workers=cfg.workers)
        res.datasets[world] = path
        ep = EpisodeDataset.open(path).episode(0)
        res.previews[world] = cfg.out / "previews" / f"{world}.mp4"
        write_mp4(ep.frames, res.previews[world], fps=ep.meta.fps, scale=4)
    for world in cfg.worlds:
        models = shipped_models(world)
        if not models:
            log.warning("no shipped checkpoint for %s: auditing the baselines only", world)
        progress(f"auditing {len(models)} model(s) and the baselines on {world}")
        result = run_audit(
            [*models, *BASELINE_NAMES],
            world,
            list(cfg.splits),
            episodes=cfg.audit_episodes,
            horizon=cfg.horizon,
            progress=progress,
        )
        res.reports[world] = write_report(result, cfg.out / "audit" / world)
        res.models[world] = [m.name for m in result.models]
        res.sentences[world] = [m.sentence for m in result.models]
    res.seconds = time.perf_counter() - t0
    _write_index(cfg, res)
    return res


def _write_index(cfg: DemoConfig, res: DemoResult) -> None:
    def rel(p: Path) -> str:
        return html.escape(str(p.relative_to(cfg.out)))

    previews = "".join(
        f'<figure><video src="{rel(p)}" autoplay loop muted playsinline width="256"></video>'
        f"<figcaption>{html.escape(w)}</figcaption></figure>"
        for w, p in res.previews.items()
    )
    reports = "".join(
        f'<li><a href="{rel(p)}/index.html">{html.escape(w)}</a>: '
        + "<ul>"
        + "".join(f"<li>{html.escape(s)}</li>" for s in res.sentences[w])
        + "</ul></li>"
        for w, p in res.reports.items()
    )
    page = (
        "<!doctype html><meta charset='utf-8'><title>gedanken demo</title>"
        "<style>body{font-family:sans-serif;max-width:70em;margin:2em auto}figure{display:inline-block}"
        "video{image-rendering:pixelated}</style>"
        f"<h1>gedanken demo</h1><p>Finished in {res.seconds:.0f} s.</p>"
        f"<h2>Worlds (one recorded episode each)</h2>{previews}<h2>Audits</h2><ul>{reports}</ul>"
    )
    tmp = cfg.out / ".index.html.tmp"
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(cfg.out / "index.html")

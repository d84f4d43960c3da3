"""The main job behind ``make demo``, on a tiny budget."""

from __future__ import annotations

from pathlib import Path

from gedanken.data.store import EpisodeDataset
from gedanken.data.video import read_mp4
from gedanken.demo import DemoConfig, run_demo
from gedanken.worlds import WORLD_ENTRIES


def test_demo_records_every_world_and_audits(tmp_path: Path) -> None:
    cfg = DemoConfig(
        out=tmp_path / "demo",
        episodes=1,
        steps=12,
        audit_episodes=2,
        horizon=4,
        splits=("test",),
        worlds=("bounce",),
        workers=1,
    )
    res = run_demo(cfg)
    assert set(res.datasets) == set(WORLD_ENTRIES)
    for world, path in res.datasets.items():
        assert len(EpisodeDataset.open(path)) == 1, world
        assert read_mp4(res.previews[world]).shape[0] == 12
    report = res.reports["bounce"]
    assert (report / "audit.json").is_file() and (report / "index.html").is_file()
    assert {"ground_truth", "copy_last", "constant_velocity", "noise"} <= set(res.models["bounce"])
    index = (cfg.out / "index.html").read_text()
    assert "audit/bounce/index.html" in index and "previews/push.mp4" in index

    again = run_demo(cfg)  # re-running reuses the datasets and replaces the reports
    assert again.models == res.models

"""run_audit + write_report: the page renders, is self-contained, and its numbers are the JSON's."""

from __future__ import annotations

import base64
import json
import math
import re
from html.parser import HTMLParser

import pytest

from gedanken.audit.config import tiny
from gedanken.audit.report import HTML_NAME, JSON_NAME, fmt, load_report, write_report
from gedanken.audit.run import run_audit


class _Cells(HTMLParser):
    """Collects leaderboard cells (data-metric) and their text, and every img src."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[tuple[dict[str, str | None], str]] = []
        self.images: list[str] = []
        self._open: dict[str, str | None] | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "td" and "data-metric" in a:
            self._open, self._text = a, ""
        if tag == "img":
            self.images.append(a["src"] or "")

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._open is not None:
            self.cells.append((self._open, self._text))
            self._open = None


@pytest.fixture(scope="module")
def result():
    return run_audit(
        ["constant_velocity"],
        "bounce",
        ["test", "ood"],
        episodes=2,
        horizon=8,
        context=3,
        config=tiny(),
        baselines=True,
    )


def test_report_numbers_equal_the_json(result, tmp_path) -> None:
    out = write_report(result, tmp_path / "rep")
    data = load_report(out)
    assert data == json.loads(json.dumps(result.to_json()))
    page = (out / HTML_NAME).read_text()
    parser = _Cells()
    parser.feed(page)
    by_name = {m["name"]: m for m in data["models"]}
    assert set(by_name) == {"constant_velocity", "ground_truth", "copy_last", "noise"}
    assert len(parser.cells) >= 4 * 2 * 8  # models x splits x (at least 8 leaderboard metrics)
    for attrs, text in parser.cells:
        want = by_name[attrs["data-model"]]["splits"][attrs["data-split"]]["scalars"][attrs["data-metric"]]
        got = attrs["data-value"]
        if want is None:
            assert got == "null" and text == "-"
        else:
            assert float(got) == want and text == fmt(want)
    gt = [
        c for c in parser.cells if c[0]["data-model"] == "ground_truth" and c[0]["data-metric"] == "pos_err"
    ]
    assert gt and all(float(a["data-value"]) == 0.0 for a, _ in gt)


def test_report_is_self_contained(result, tmp_path) -> None:
    out = write_report(result, tmp_path / "rep")
    page = (out / HTML_NAME).read_text()
    assert "<svg" in page and "<script" not in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page), "the page must fetch nothing"
    parser = _Cells()
    parser.feed(page)
    assert len(parser.images) == 4 * 2  # one clip per model per split
    for src in parser.images:
        assert src.startswith("data:image/gif;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:6] == b"GIF89a"
    for m in result.models:
        assert m.sentence and m.sentence.startswith(m.name) and m.sentence in page
    assert "ood/test" in page  # generalization ratios
    assert "No learned model audited: no bars to read." in page


def test_json_has_curves_per_horizon_and_generalization(result) -> None:
    data = result.to_json()
    cv = next(m for m in data["models"] if m["name"] == "constant_velocity")
    assert len(cv["splits"]["ood"]["curves"]["pos_err"]) == 8
    assert len(cv["splits"]["test"]["curves"]["identity_survival"]) == 8
    ratio = cv["generalization"]["ood"]["pos_err"]
    assert math.isclose(
        ratio, cv["splits"]["ood"]["scalars"]["pos_err"] / cv["splits"]["test"]["scalars"]["pos_err"]
    )
    assert cv["card"]["family"] == "baseline"


def test_write_is_atomic_and_refuses_foreign_dirs(result, tmp_path) -> None:
    out = write_report(result, tmp_path / "rep")
    write_report(result, out)  # replacing an earlier report is fine
    assert sorted(p.name for p in out.iterdir()) == [JSON_NAME, HTML_NAME]
    assert [p.name for p in tmp_path.iterdir()] == ["rep"]  # no temporary leftovers
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="holds no audit"):
        write_report(result, foreign)
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_workers_do_not_change_results() -> None:
    kw = dict(episodes=3, horizon=6, context=2, config=tiny(), baselines=True)
    one = run_audit(["copy_last"], "push", ["test"], workers=1, **kw).to_json()
    two = run_audit(["copy_last"], "push", ["test"], workers=2, **kw).to_json()
    for a, b in zip(one["models"], two["models"], strict=True):
        assert a["name"] == b["name"] and a["splits"] == b["splits"]
    gt = next(m for m in two["models"] if m["name"] == "ground_truth")["splits"]["test"]["scalars"]
    assert gt["psnr"] == 100.0 and gt["pos_err"] == 0.0 and gt["branch_pos_err"] == 0.0

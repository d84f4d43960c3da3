import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gedanken.models.protocol import ModelCard
from gedanken.train import TrainConfig, fit
from gedanken.train.ddp_smoke import TinyRegressor, synthetic_batches


def _cfg(tmp: Path, **kw) -> TrainConfig:
    base = dict(steps=10, lr=1e-2, warmup=2, out_dir=str(tmp), device="cpu", progress=False, log_every=1)
    return TrainConfig(**(base | kw))


def _fit(tmp: Path, model, source, **kw):
    return fit(
        model,
        source,
        _cfg(tmp, **kw),
        card=ModelCard(name="t", family="smoke"),
        family="smoke",
        model_config={},
    )


def test_fit_reduces_loss_and_writes_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = TinyRegressor()
    res = _fit(tmp_path, model, synthetic_batches, steps=30)
    assert res.step == 30
    assert res.history[-1]["loss"] < res.history[0]["loss"]
    assert (res.checkpoint / "model.safetensors").is_file() and (res.checkpoint / "checkpoint.json").is_file()
    meta = json.loads((res.checkpoint / "checkpoint.json").read_text())
    assert meta["family"] == "smoke" and meta["card"]["steps"] == 30 and meta["card"]["params"] > 0
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 30


def test_resume_is_exact(tmp_path):
    torch.manual_seed(0)
    straight = TinyRegressor()
    _fit(tmp_path / "a", straight, synthetic_batches)

    class Crash(Exception):
        pass

    def crashing(start):
        for i, b in enumerate(synthetic_batches(start)):
            if start + i == 7:
                raise Crash
            yield b

    torch.manual_seed(0)
    first = TinyRegressor()
    with pytest.raises(Crash):
        _fit(tmp_path / "b", first, crashing, ckpt_every=5)
    torch.manual_seed(123)  # a different init: everything must come from the checkpoint
    second = TinyRegressor()
    res = _fit(tmp_path / "b", second, synthetic_batches, ckpt_every=5)
    assert res.resumed_from == 5 and res.step == 10
    for p, q in zip(straight.parameters(), second.parameters(), strict=True):
        assert torch.equal(p, q)


def test_resume_with_plain_iterable_skips_consumed_batches(tmp_path):
    data = [b for _, b in zip(range(10), synthetic_batches(0), strict=False)]
    torch.manual_seed(0)
    straight = TinyRegressor()
    _fit(tmp_path / "a", straight, data)

    def crashing():
        for i, b in enumerate(data):
            if i == 6:
                raise KeyboardInterrupt
            yield b

    torch.manual_seed(0)
    with pytest.raises(KeyboardInterrupt):  # interrupted between steps: saves a checkpoint at step 6
        _fit(tmp_path / "b", TinyRegressor(), crashing())
    resumed = TinyRegressor()
    res = _fit(tmp_path / "b", resumed, data)
    assert res.resumed_from == 6
    for p, q in zip(straight.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(p, q)


def test_ddp_two_ranks_agree(tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",  # rendezvous on a free local port: no clash with another run on a fixed one
        "--nproc_per_node=2",
        "-m",
        "gedanken.train.ddp_smoke",
        "--out",
        str(tmp_path),
        "--steps",
        "3",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    # the ranks' own errors come first in torchrun's stderr, its summary last
    assert proc.returncode == 0, proc.stderr[:3000] + "\n...\n" + proc.stderr[-1500:]
    r0 = json.loads((tmp_path / "rank0.json").read_text())
    r1 = json.loads((tmp_path / "rank1.json").read_text())
    assert r0["world_size"] == r1["world_size"] == 2
    assert r0["step"] == r1["step"] == 3
    assert r0["checksum"] == pytest.approx(r1["checksum"], abs=0, rel=0)


def test_off_a_terminal_progress_is_logged_as_lines(tmp_path, caplog):
    import logging

    torch.manual_seed(0)
    with caplog.at_level(logging.INFO, logger="gedanken.train.trainer"):
        _fit(tmp_path / "a", TinyRegressor(), synthetic_batches, steps=6, log_every=3, progress=True)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("train smoke: step")]
    assert len(lines) == 2, lines  # pytest's capture is not a terminal
    assert lines[0].startswith("train smoke: step 3/6 (50 %), loss ") and "s left" in lines[0]
    assert lines[1].startswith("train smoke: step 6/6 (100 %)") and "left" not in lines[1]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="gedanken.train.trainer"):
        _fit(tmp_path / "b", TinyRegressor(), synthetic_batches, steps=6, log_every=3, progress=False)
    assert not [r for r in caplog.records if "train smoke: step" in r.getMessage()]  # asked for no progress


def test_resume_refuses_a_run_on_other_data(tmp_path, monkeypatch):
    from gedanken.models.checkpoint import CheckpointError

    monkeypatch.chdir(tmp_path)

    def run(dataset: str, steps: int, **kw):  # noqa: ANN202
        return fit(
            TinyRegressor(),
            synthetic_batches,
            _cfg(tmp_path / "out", steps=steps, **kw),
            card=ModelCard(name="t", family="smoke", dataset=dataset),
            family="smoke",
            model_config={},
        )

    run("data/a+data/b", 3)
    assert run("./data/a+data/b", 5).resumed_from == 3  # the same datasets, however written
    with pytest.raises(CheckpointError, match=r"is a run on \./data/a\+data/b, this one trains on data/c"):
        run("data/c", 8)
    assert run("data/c", 2, resume=False).resumed_from == 0  # --no-resume starts it over
    assert run("", 4).resumed_from == 2  # data in memory (no name): nothing to compare


class _InterruptedAt(TinyRegressor):
    """Sends itself SIGINT in the middle of the update of one step, as a Ctrl-C nearly always lands."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at, self.calls = at, 0

    def loss(self, batch):  # noqa: ANN001, ANN201
        import os
        import signal

        if self.calls == self.at:
            os.kill(os.getpid(), signal.SIGINT)
        self.calls += 1
        return super().loss(batch)


def test_ctrl_c_inside_an_update_finishes_the_step_saves_it_and_resumes_exactly(tmp_path):
    torch.manual_seed(0)
    straight = TinyRegressor()
    _fit(tmp_path / "a", straight, synthetic_batches)
    torch.manual_seed(0)
    interrupted = _InterruptedAt(4)
    with pytest.raises(KeyboardInterrupt):
        _fit(tmp_path / "b", interrupted, synthetic_batches)
    saved = json.loads((tmp_path / "b" / "last" / "trainer.json").read_text())
    assert saved["step"] == 5  # the step under way when Ctrl-C came was finished, then saved
    torch.manual_seed(123)
    resumed = TinyRegressor()
    res = _fit(tmp_path / "b", resumed, synthetic_batches)
    assert res.resumed_from == 5 and res.step == 10
    for p, q in zip(straight.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(p, q)


def test_a_later_stage_is_clipped_on_its_own_gradients(tmp_path):
    """Stage 2 of a model trained in stages gives the same weights whether stage 1 ran in this process (its
    frozen parameters keep stale gradients) or the model was loaded from stage 1's checkpoint (a resume)."""
    torch.manual_seed(0)
    model = TinyRegressor()
    _fit(tmp_path / "s1", model, synthetic_batches, grad_clip=0.05)
    fresh = TinyRegressor()
    fresh.load_state_dict(model.state_dict())
    for m in (model, fresh):
        m.net[0].requires_grad_(False)  # stage 2 trains the last layer only
    a = _fit(tmp_path / "s2a", model, synthetic_batches, grad_clip=0.05)
    b = _fit(tmp_path / "s2b", fresh, synthetic_batches, grad_clip=0.05)
    assert a.history[0]["grad_norm"] == b.history[0]["grad_norm"]
    for p, q in zip(model.parameters(), fresh.parameters(), strict=True):
        assert torch.equal(p, q)


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: (d / "trainer.json").write_text((d / "trainer.json").read_text()[:40]),  # truncated JSON
        lambda d: (d / "trainer.safetensors").write_bytes((d / "trainer.safetensors").read_bytes()[:100]),
        lambda d: (d / "trainer.json").write_text('{"step": 3}'),  # keys missing
    ],
)
def test_damaged_trainer_state_is_named_not_a_traceback(tmp_path, damage):
    from gedanken.models.checkpoint import CheckpointError

    _fit(tmp_path, TinyRegressor(), synthetic_batches, steps=4)
    damage(tmp_path / "last")
    with pytest.raises(CheckpointError, match=r"last: damaged trainer state .*--no-resume"):
        _fit(tmp_path, TinyRegressor(), synthetic_batches, steps=8)


def test_non_finite_optimizer_state_is_damage(tmp_path):
    from safetensors.torch import load_file, save_file

    from gedanken.models.checkpoint import CheckpointError

    _fit(tmp_path, TinyRegressor(), synthetic_batches, steps=4)
    path = tmp_path / "last" / "trainer.safetensors"
    t = load_file(str(path))
    key = next(k for k in t if k.startswith("optim."))
    t[key] = torch.full_like(t[key], float("nan"))
    save_file(t, str(path))
    with pytest.raises(CheckpointError, match="non-finite values"):
        _fit(tmp_path, TinyRegressor(), synthetic_batches, steps=8)


def test_resuming_a_run_of_another_configuration_says_so(tmp_path):
    from gedanken.models.checkpoint import CheckpointError

    _fit(tmp_path, TinyRegressor(), synthetic_batches, steps=4)
    wider = TinyRegressor()
    wider.net[0] = torch.nn.Linear(3, 32)
    wider.net[2] = torch.nn.Linear(32, 3)
    with pytest.raises(CheckpointError, match="another configuration.*--no-resume"):
        _fit(tmp_path, wider, synthetic_batches, steps=8)


def test_metrics_hold_one_row_per_step_after_a_restart_or_a_resume(tmp_path):
    def rows() -> list[float]:
        return [json.loads(x)["step"] for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]

    _fit(tmp_path, TinyRegressor(), synthetic_batches, steps=6)
    _fit(tmp_path, TinyRegressor(), synthetic_batches, steps=4, resume=False)  # --no-resume: starts over
    assert rows() == [1, 2, 3, 4]
    (tmp_path / "metrics.jsonl").write_text(
        (tmp_path / "metrics.jsonl").read_text() + '{"kind": "train", "step": 5}\n'  # logged, never saved
    )
    _fit(tmp_path, TinyRegressor(), synthetic_batches, steps=6)  # resumes at 4: step 5 is trained again
    assert rows() == [1, 2, 3, 4, 5, 6]

from collections.abc import Callable, Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Small models on a shared 2-core machine: one intra-op thread avoids oversubscription stalls."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def cached_past() -> Callable:
    """``f(dynamics) -> (cache, generator)``: a cache holding two random frames of 3 clips, and the generator
    that drew them (seed 0), to draw the next frame's tokens and action embeddings from."""

    def make(dyn):  # noqa: ANN001, ANN202
        g = torch.Generator().manual_seed(0)
        cache = dyn.empty_cache()
        for _ in range(2):
            cache = dyn.commit(
                torch.randint(0, dyn.vocab, (3, 64), generator=g), torch.randn(3, dyn.cfg.dim), cache
            )
        return cache, g

    return make


@pytest.fixture
def tiny_cli_args(tmp_path) -> tuple:  # noqa: ANN001
    """``(app, common)``: the CLI app and the arguments of a tiny ``train autoregressive`` run reading (or, when
    absent, collecting) the dataset ``tmp_path / "data"``; nothing is created yet."""
    from gedanken.cli import app

    common = [
        "train",
        "autoregressive",
        "--preset",
        "tiny",
        "--data",
        str(tmp_path / "data"),
        "--device",
        "cpu",
    ]
    return app, common


@pytest.fixture
def tiny_cli_run(tmp_path, tiny_cli_args) -> tuple:  # noqa: ANN001
    """``(app, common)`` of :func:`tiny_cli_args` on a 3-episode synthetic dataset in ``tmp_path / "data"``,
    already trained once into ``tmp_path / "a"``."""
    from typer.testing import CliRunner

    from gedanken.data.store import EpisodeDataset
    from gedanken.data.synthetic import synthetic_episode

    EpisodeDataset.create(tmp_path / "data").extend([synthetic_episode(seed=i, steps=12) for i in range(3)])
    app, common = tiny_cli_args
    first = CliRunner().invoke(app, [*common, "--out", str(tmp_path / "a")])
    assert first.exit_code == 0, first.output
    return app, common


@pytest.fixture
def episode_data() -> Callable:
    """``f(n=4, steps=12) -> EpisodeData``: ``n`` synthetic episodes of ``steps`` steps held in memory, with
    continuous 2-d actions (the recipe's input without a dataset on disk)."""
    from gedanken.data.synthetic import synthetic_episode
    from gedanken.models.autoregressive.recipe import EpisodeData

    def make(n: int = 4, steps: int = 12) -> EpisodeData:
        eps = [synthetic_episode(seed=i, steps=steps) for i in range(n)]
        return EpisodeData(
            frames=[torch.from_numpy(e.frames) for e in eps],
            actions=[torch.from_numpy(e.actions) for e in eps],
            world="synthetic",
            action_dim=2,
            action_classes=0,
            has_actions=True,
        )

    return make

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

import logging

import pytest
import torch

from gedanken.data.synthetic import synthetic_episode
from gedanken.models.autoregressive import AutoregressiveWorldModel
from gedanken.models.autoregressive import config as presets
from gedanken.models.autoregressive.context_cache import cache_dir, cache_key, projected_context
from gedanken.models.autoregressive.maskgit import MaskGITConfig


def _model_and_data() -> tuple[AutoregressiveWorldModel, list[torch.Tensor], list[torch.Tensor]]:
    eps = [synthetic_episode(seed=i, steps=6) for i in range(3)]
    palette = tuple(tuple(int(v) for v in c) for c in eps[0].meta.palette)
    torch.manual_seed(0)
    model = AutoregressiveWorldModel(presets.tiny(action_classes=5, palette=palette)).eval()
    model.set_sampler(MaskGITConfig(keep_area=0.8))
    frames = [torch.from_numpy(e.frames) for e in eps]
    tokens = [model.encode(f[None]).tokens[0] for f in frames]
    return model, frames, tokens


def test_the_second_run_reads_the_projection_from_the_cache() -> None:
    model, frames, tokens = _model_and_data()
    fresh, hit = projected_context(model, frames, tokens, progress=False)
    assert not hit and len(list(cache_dir().glob("*.safetensors"))) == 1
    again, hit = projected_context(model, frames, tokens, progress=False)
    assert hit and all(torch.equal(a, b) and a.dtype == b.dtype for a, b in zip(fresh, again, strict=True))
    assert all(
        torch.equal(a, model.projected_tokens(f, t)) for a, f, t in zip(fresh, frames, tokens, strict=True)
    )


def test_the_key_changes_with_weights_settings_and_frames() -> None:
    model, frames, _ = _model_and_data()
    key = cache_key(model, frames)
    assert cache_key(model, frames) == key
    assert cache_key(model, frames[:2]) != key
    changed = [f.clone() for f in frames]
    changed[1][0, 0, 0, 0] ^= 1
    assert cache_key(model, changed) != key
    model.set_sampler(MaskGITConfig(keep_area=0.5))
    assert cache_key(model, frames) != key
    model.set_sampler(MaskGITConfig(keep_area=0.8))
    with torch.no_grad():
        next(model.tokenizer.parameters()).add_(1e-3)
    assert cache_key(model, frames) != key


def test_a_damaged_cache_file_is_recomputed(caplog: pytest.LogCaptureFixture) -> None:
    model, frames, tokens = _model_and_data()
    fresh, _ = projected_context(model, frames, tokens, progress=False)
    (path,) = cache_dir().glob("*.safetensors")
    path.write_bytes(path.read_bytes()[:40])  # truncated
    with caplog.at_level(logging.WARNING):
        again, hit = projected_context(model, frames, tokens, progress=False)
    assert not hit and "unreadable" in caplog.text
    assert all(torch.equal(a, b) for a, b in zip(fresh, again, strict=True))
    _, hit = projected_context(model, frames, tokens, progress=False)  # rewritten whole
    assert hit


def test_encoded_episodes_are_cached_by_weights_and_frames(caplog: pytest.LogCaptureFixture) -> None:
    from gedanken.models.autoregressive.context_cache import encoded_episodes, encoded_key

    model, frames, tokens = _model_and_data()
    toks, lats, hit = encoded_episodes(model, frames, progress=False)
    assert not hit and len(list(cache_dir("encoded").glob("*.safetensors"))) == 1
    assert all(torch.equal(a, b) for a, b in zip(toks, tokens, strict=True))
    assert all(
        torch.equal(x, model.encode(f[None]).latent_actions[0]) for x, f in zip(lats, frames, strict=True)
    )
    again_t, again_l, hit = encoded_episodes(model, frames, progress=False)
    assert hit and all(torch.equal(a, b) and a.dtype == b.dtype for a, b in zip(toks, again_t, strict=True))
    assert all(torch.equal(a, b) and a.dtype == b.dtype for a, b in zip(lats, again_l, strict=True))
    # the key follows the LAM's weights too (the projection's does not need them)
    key = encoded_key(model, frames)
    assert encoded_key(model, frames[:2]) != key
    weight = next(model.lam.parameters())
    kept = weight.detach().clone()
    with torch.no_grad():
        weight.add_(1e-3)
    assert encoded_key(model, frames) != key
    with torch.no_grad():
        weight.copy_(kept)
    assert encoded_key(model, frames) == key
    # a damaged file is recomputed and rewritten
    (path,) = cache_dir("encoded").glob("*.safetensors")
    path.write_bytes(path.read_bytes()[:40])
    with caplog.at_level(logging.WARNING):
        _, _, hit = encoded_episodes(model, frames, progress=False)
    assert not hit and "unreadable" in caplog.text
    assert encoded_episodes(model, frames, progress=False)[2]


def test_a_flipped_value_or_an_unwritable_cache_costs_only_time(
    caplog: pytest.LogCaptureFixture, tmp_path, monkeypatch
) -> None:  # noqa: ANN001
    from safetensors.torch import load_file, save_file

    from gedanken.models.autoregressive.context_cache import encoded_episodes

    model, frames, tokens = _model_and_data()
    encoded_episodes(model, frames, progress=False)
    (path,) = cache_dir("encoded").glob("*.safetensors")
    stored = load_file(path)
    stored["tokens_0"][0, 0] += 1  # a value changed, the header still valid
    save_file(stored, path, {"key": path.stem, "sha256": "0" * 64})
    with caplog.at_level(logging.WARNING):
        toks, _, hit = encoded_episodes(model, frames, progress=False)
    assert not hit and "damaged" in caplog.text
    assert all(torch.equal(a, b) for a, b in zip(toks, tokens, strict=True))  # recomputed, not read
    # a cache root that is a file: the run goes on without a cache
    (tmp_path / "afile").write_text("x")
    monkeypatch.setenv("GEDANKEN_CACHE", str(tmp_path / "afile"))
    with caplog.at_level(logging.WARNING):
        _, _, hit = encoded_episodes(model, frames, progress=False)
    assert not hit and "could not write the cache" in caplog.text

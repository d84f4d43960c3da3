import pytest
import torch

from gedanken.models.diffusion import DiTConfig
from gedanken.models.diffusion.dit import DiT


def _dit(context: int = 2, prev_frame: bool = False, edge: int = 0, prev_frames: int = 1) -> DiT:
    torch.manual_seed(0)
    cfg = DiTConfig(
        width=32,
        depth=2,
        heads=2,
        patch=2,
        context=context,
        prev_frame=prev_frame,
        edge_embedding=edge,
        prev_frames=prev_frames,
    )
    dit = DiT(cfg, 4, 2, 0, 8)
    for p in dit.parameters():  # AdaLN-Zero starts as identity; randomise so the check is not trivial
        torch.nn.init.normal_(p, std=0.2)
    return dit.eval()


@pytest.mark.parametrize(
    ("prev_frame", "edge", "prev_frames"), [(False, 0, 1), (True, 0, 1), (True, 2, 1), (True, 0, 3)]
)
def test_cached_rollout_matches_training_forward(prev_frame: bool, edge: int, prev_frames: int):
    """Frame-by-frame with a sliding KV cache gives exactly what the masked training pass computes."""
    dit = _dit(context=2, prev_frame=prev_frame, edge=edge, prev_frames=prev_frames)
    assert dit.older_frames == prev_frames - 1
    b, t = 2, 5
    clean = torch.randn(b, t, 4, 6, 8)  # odd latent grid: 6x8 with patch 2 -> 3x4 tokens
    noisy = torch.randn(b, t, 4, 6, 8)
    act = torch.randn(b, t, dit.cfg.width)
    txt = dit.text_embedding(torch.randn(b, 8), None, b)
    cc = dit.condition(torch.full((b, t), 0.05), act, txt)
    cn = dit.condition(torch.rand(b, t), act, txt)
    with torch.no_grad():
        v_train, h_train = dit.forward_train(clean, noisy, cc, cn)
        cache = None
        for j in range(t):
            prev = clean[:, j - 1] if j > 0 and prev_frame else None
            older = clean[:, : max(j - 1, 0)].flip(1)  # frames j-2, j-3, ... (the DiT takes what it needs)
            v = dit.noisy_pass(noisy[:, j], cn[:, j : j + 1], j, cache, prev, older)
            torch.testing.assert_close(v, v_train[:, j], atol=1e-4, rtol=1e-3)
            cache, h = dit.clean_pass(clean[:, j : j + 1], cc[:, j : j + 1], j, cache)
            torch.testing.assert_close(h[:, 0], h_train[:, j], atol=1e-4, rtol=1e-3)
            assert cache[0].k.shape[2] == min(j + 1, dit.cfg.context) * 12


def test_observe_chunk_equals_frame_by_frame():
    dit = _dit(context=3)
    b, k = 1, 3
    lat = torch.randn(b, k, 4, 8, 8)
    c = dit.condition(torch.zeros(b, k), torch.randn(b, k, 32), dit.text_embedding(None, None, b))
    with torch.no_grad():
        cache_all, h_all = dit.clean_pass(lat, c, 0, None)
        cache = None
        for j in range(k):
            cache, h = dit.clean_pass(lat[:, j : j + 1], c[:, j : j + 1], j, cache)
            torch.testing.assert_close(h[:, 0], h_all[:, j], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(cache[1].k, cache_all[1].k, atol=1e-5, rtol=1e-4)


def test_rope_is_relative_in_time():
    """Shifting every frame index by 200 changes nothing (attention sees offsets only)."""
    dit = _dit(context=2)
    lat = torch.randn(1, 2, 4, 8, 8)
    x = torch.randn(1, 4, 8, 8)
    c = dit.condition(torch.zeros(1, 2), torch.zeros(1, 2, 32), dit.text_embedding(None, None, 1))
    with torch.no_grad():
        cache0, _ = dit.clean_pass(lat, c, 0, None)
        cache1, _ = dit.clean_pass(lat, c, 200, None)
        v0 = dit.noisy_pass(x, c[:, :1], 2, cache0)
        v1 = dit.noisy_pass(x, c[:, :1], 202, cache1)
    torch.testing.assert_close(v0, v1, atol=1e-4, rtol=1e-3)


def test_prev_frame_path_reads_the_previous_latent():
    """With prev_frame on, the velocity of frame j depends on frame j-1's latent through its own patch."""
    dit = _dit(context=1, prev_frame=True)
    x = torch.randn(1, 4, 8, 8)
    lat = torch.randn(1, 1, 4, 8, 8)
    c = dit.condition(torch.zeros(1, 1), torch.zeros(1, 1, 32), dit.text_embedding(None, None, 1))
    with torch.no_grad():
        cache, _ = dit.clean_pass(lat, c, 0, None)
        v_a = dit.noisy_pass(x, c, 1, cache, lat[:, 0])
        v_b = dit.noisy_pass(x, c, 1, cache, lat[:, 0] + 1.0)
        v_none = dit.noisy_pass(x, c, 1, cache, None)
    assert (v_a - v_b).abs().max() > 1e-3
    assert (v_a - v_none).abs().max() > 1e-3


def test_edge_embedding_sees_only_clamped_border_distances():
    """Tokens as far from every border (beyond the clamp) share one embedding; border tokens differ."""
    from gedanken.nn import PatchGrid

    dit = _dit(edge=2)
    g = PatchGrid(t=1, h=5, w=6, height=10, width=12, frames=1)
    e = dit._edge_embedding(g, torch.device("cpu")).reshape(5, 6, -1)
    torch.testing.assert_close(e[1, 1], e[2, 3])  # both at distance >= 1 from every border
    torch.testing.assert_close(e[0, 2], e[0, 3])  # top row, away from the side borders
    assert not torch.allclose(e[0, 2], e[1, 2]) and not torch.allclose(e[0, 0], e[0, 2])
    assert not torch.allclose(e[4, 2], e[0, 2])  # top and bottom are told apart


def _saved_push_model(tmp_path, **dit):  # noqa: ANN001, ANN202
    """A tiny diffusion model fitted to a recorded Push episode, randomised and saved at tmp_path/old."""
    from dataclasses import replace

    from gedanken.data.collect import collect
    from gedanken.models.checkpoint import save_checkpoint
    from gedanken.models.diffusion import DiffusionWorldModel
    from gedanken.models.diffusion.data import fit_config_to_data, load_data
    from gedanken.models.diffusion.recipe import tiny
    from gedanken.models.protocol import ModelCard

    collect("push", tmp_path / "push", 1, steps=8, seed=0, workers=1)
    cfg = fit_config_to_data(tiny().model, load_data(tmp_path / "push"))
    assert cfg.palette[:2] == ((0, 0, 0), (255, 0, 0))  # the world's colours, background first
    cfg = replace(cfg, dit=replace(cfg.dit, **dit))
    torch.manual_seed(0)
    old = DiffusionWorldModel(cfg).eval()
    for p in old.dit.parameters():
        torch.nn.init.normal_(p, std=0.1)
    card = ModelCard(name="m", family="diffusion", world="push")
    save_checkpoint(tmp_path / "old", old, family="diffusion", model_config=cfg, card=card, step=0)
    return cfg, old, card


def _same_forward(grown, old, cfg, frames: int):  # noqa: ANN001, ANN202
    """The grown DiT computes exactly what ``old`` does on random latents; returns them and the condition."""
    lat = torch.randn(1, frames, cfg.tokenizer.latent_channels, 16, 16)
    c = old.dit.condition(
        torch.zeros(1, frames), torch.zeros(1, frames, cfg.dit.width), old.dit.text_embedding(None, None, 1)
    )
    with torch.no_grad():
        torch.testing.assert_close(
            grown.dit.forward_train(lat, lat, c, c)[0], old.dit.forward_train(lat, lat, c, c)[0]
        )
    return lat, c


def test_init_adds_the_edge_embedding_at_zero(tmp_path):
    """A checkpoint without the border embedding, trained on with a recipe that has one, starts unchanged."""
    from dataclasses import replace

    from gedanken.models.checkpoint import save_checkpoint
    from gedanken.models.diffusion.recipe import _initial_model
    from gedanken.models.protocol import ModelCard

    cfg, old, _ = _saved_push_model(tmp_path)
    want = replace(cfg, dit=replace(cfg.dit, edge_embedding=3))
    grown = _initial_model(tmp_path / "old", want).eval()
    assert grown.cfg.dit.edge_embedding == 3 and grown.dit.edge is not None
    _same_forward(grown, old, cfg, 2)
    with pytest.raises(ValueError, match="border levels"):
        save_checkpoint(
            tmp_path / "edge",
            grown,
            family="diffusion",
            model_config=grown.cfg,
            card=ModelCard(name="m", family="diffusion", world="push"),
            step=0,
        )
        _initial_model(tmp_path / "edge", replace(cfg, dit=replace(cfg.dit, edge_embedding=2)))


def test_older_frames_are_read_and_refused_without_prev_frame():
    """With prev_frames 3 the velocity depends on frame j-2 too, and a missing frame is not a zero frame."""
    dit = _dit(context=1, prev_frame=True, prev_frames=3)
    x, prev = torch.randn(1, 4, 8, 8), torch.randn(1, 4, 8, 8)
    older = torch.randn(1, 2, 4, 8, 8)
    c = dit.condition(torch.zeros(1, 1), torch.zeros(1, 1, 32), dit.text_embedding(None, None, 1))
    with torch.no_grad():
        v_a = dit.noisy_pass(x, c, 2, None, prev, older)
        v_b = dit.noisy_pass(x, c, 2, None, prev, older + torch.tensor([1.0, 0.0])[None, :, None, None, None])
        v_c = dit.noisy_pass(x, c, 2, None, prev, older + torch.tensor([0.0, 1.0])[None, :, None, None, None])
        v_zero = dit.noisy_pass(x, c, 2, None, prev, torch.zeros(1, 1, 4, 8, 8))
        v_missing = dit.noisy_pass(x, c, 2, None, prev, older[:, :0])
    assert (v_a - v_b).abs().max() > 1e-3 and (v_a - v_c).abs().max() > 1e-3
    assert (v_zero - v_missing).abs().max() > 1e-3
    with pytest.raises(ValueError, match="prev_frames"):
        _dit(prev_frame=False, prev_frames=2)
    with pytest.raises(ValueError, match="prev_frames"):
        _dit(prev_frame=True).add_older_frames(1)


def test_init_adds_older_frames_at_zero(tmp_path):
    """A one-past-frame checkpoint trained on with prev_frames 3 starts unchanged; fewer frames keep its own."""
    from dataclasses import replace

    from gedanken.models.checkpoint import save_checkpoint
    from gedanken.models.diffusion.recipe import _initial_model

    cfg, old, card = _saved_push_model(tmp_path, prev_frame=True)
    grown = _initial_model(tmp_path / "old", replace(cfg, dit=replace(cfg.dit, prev_frames=3))).eval()
    assert grown.cfg.dit.prev_frames == 3 and grown.dit.older_frames == 2
    _same_forward(grown, old, cfg, 4)
    save_checkpoint(tmp_path / "grown", grown, family="diffusion", model_config=grown.cfg, card=card, step=0)
    assert _initial_model(tmp_path / "grown", cfg).dit.older_frames == 2


def test_init_adds_blocks_at_identity(tmp_path):
    """A depth-2 checkpoint trained on with depth 4 starts unchanged (the new blocks' gates are zero), and the
    grown blocks then train; fewer blocks keep the checkpoint's; growing to fewer is refused."""
    from dataclasses import replace

    from gedanken.models.checkpoint import save_checkpoint
    from gedanken.models.diffusion.recipe import _initial_model

    cfg, old, card = _saved_push_model(tmp_path, prev_frame=True)
    grown = _initial_model(tmp_path / "old", replace(cfg, dit=replace(cfg.dit, depth=4))).eval()
    assert grown.cfg.dit.depth == 4 and len(grown.dit.blocks) == 4
    lat, c = _same_forward(grown, old, cfg, 4)
    grown.train()
    grown.dit.forward_train(lat, lat, c, c)[0].square().mean().backward()
    gate = grown.dit.blocks[-1].ada[1].weight.grad
    assert gate is not None and gate.abs().max() > 0  # the new block is not frozen at identity
    save_checkpoint(tmp_path / "grown", grown, family="diffusion", model_config=grown.cfg, card=card, step=0)
    assert len(_initial_model(tmp_path / "grown", cfg).dit.blocks) == 4
    with pytest.raises(ValueError, match="grows the DiT"):
        grown.dit.add_blocks(3)

import pytest
import torch

from gedanken.nn import DiTBlock, RopeConfig, SpacetimePatchifier, SpacetimeRope


@pytest.mark.parametrize("shape", [(2, 3, 4, 8, 8), (1, 5, 3, 7, 9), (1, 1, 2, 1, 1)])
@pytest.mark.parametrize("patch,tubelet", [(1, 1), (2, 1), (2, 2), (3, 2)])
def test_patchify_round_trip_any_size(shape, patch, tubelet):
    p = SpacetimePatchifier(patch=patch, tubelet=tubelet)
    x = torch.randn(*shape)
    tok, g = p.patchify(x)
    assert tok.shape == (shape[0], g.t * g.h * g.w, p.dim(shape[2]))
    assert g.h == -(-shape[3] // patch) and g.w == -(-shape[4] // patch)
    torch.testing.assert_close(p.unpatchify(tok, g, shape[2]), x)
    pos = p.positions(g, t0=5)
    assert pos.shape == (tok.shape[1], 3) and pos[:, 0].min() == 5


def test_patchify_rejects_wrong_rank():
    with pytest.raises(ValueError, match=r"\(B, T, C, H, W\)"):
        SpacetimePatchifier().patchify(torch.zeros(2, 3, 4, 4))


def test_rope_preserves_norm_and_is_relative():
    rope = SpacetimeRope(RopeConfig(head_dim=16))
    q, k = torch.randn(1, 1, 1, 16), torch.randn(1, 1, 1, 16)

    def score(pq, pk):
        cq, sq = rope.tables(torch.tensor([pq], dtype=torch.float32))
        ck, sk = rope.tables(torch.tensor([pk], dtype=torch.float32))
        return (rope.apply(q, cq, sq) * rope.apply(k, ck, sk)).sum()

    torch.testing.assert_close(
        score([3, 1, 2], [1, 0, 0]), score([10, 5, 6], [8, 4, 4]), atol=1e-4, rtol=1e-4
    )
    assert not torch.allclose(score([3, 1, 2], [1, 0, 0]), score([3, 1, 2], [0, 0, 0]))
    c, s = rope.tables(torch.randn(5, 3))
    x = torch.randn(2, 1, 5, 16)
    torch.testing.assert_close(rope.apply(x, c, s).norm(dim=-1), x.norm(dim=-1))


def test_rope_rejects_odd_head_dim():
    with pytest.raises(ValueError, match="even"):
        SpacetimeRope(RopeConfig(head_dim=7))


def test_adaln_zero_block_starts_as_identity_and_trains():
    blk = DiTBlock(16, 2)
    x, c = torch.randn(2, 6, 16), torch.randn(2, 3, 16)  # 3 groups (frames) of 2 tokens
    rope = SpacetimeRope(RopeConfig(head_dim=8)).tables(torch.zeros(6, 3))
    y, kv = blk(x, c, rope)
    torch.testing.assert_close(y, x)
    assert kv.k.shape == (2, 2, 6, 8)
    y.pow(2).sum().backward()
    assert blk.ada[1].weight.grad is not None and blk.ada[1].weight.grad.abs().sum() > 0

import pytest
import torch

from gedanken.tokenizers.discrete import DiscreteTokenizer, DiscreteTokenizerConfig, psnr
from gedanken.tokenizers.fsq import FSQ, FSQConfig, codebook_usage


def test_codes_in_range_and_indices_round_trip() -> None:
    fsq = FSQ(FSQConfig((8, 5, 3)))
    assert fsq.codebook_size == 120 and fsq.dim == 3
    z = torch.randn(4, 7, 3) * 5
    q = fsq(z)
    assert q.codes.shape == (4, 7, 3) and q.indices.shape == (4, 7)
    assert q.codes.min() >= -1 and q.codes.max() <= 1
    assert q.indices.min() >= 0 and q.indices.max() < 120
    # every code value lies on its channel's grid of ``levels`` points
    for c, lv in enumerate((8, 5, 3)):
        grid = (q.codes[..., c] + 1) * (lv - 1) / 2
        assert torch.allclose(grid, grid.round(), atol=1e-5)
    assert torch.equal(fsq.codes_to_indices(q.codes), q.indices)
    assert torch.allclose(fsq.indices_to_codes(q.indices), q.codes, atol=1e-6)


def test_every_index_is_a_distinct_code() -> None:
    fsq = FSQ(FSQConfig((4, 3)))
    idx = torch.arange(fsq.codebook_size)
    codes = fsq.indices_to_codes(idx)
    assert len({tuple(c.tolist()) for c in codes}) == 12
    assert torch.equal(fsq.codes_to_indices(codes), idx)


def test_straight_through_gradient() -> None:
    fsq = FSQ(FSQConfig((5, 5)))
    z = torch.randn(16, 2, requires_grad=True)
    fsq(z).codes.sum().backward()
    assert z.grad is not None
    # the gradient is that of the smooth bound (tanh), not zero as rounding alone would give
    expected = (1 - torch.tanh(z.detach()) ** 2) * 2 / 2  # d/dz of (tanh + 1) * half / half
    assert torch.allclose(z.grad, expected, atol=1e-5)


def test_bad_input_is_rejected() -> None:
    with pytest.raises(ValueError, match="levels"):
        FSQ(FSQConfig((1, 4)))
    fsq = FSQ(FSQConfig((4, 4)))
    with pytest.raises(ValueError, match="2 channels"):
        fsq(torch.zeros(3, 3))
    with pytest.raises(ValueError, match=r"\[0, 16\)"):
        fsq.indices_to_codes(torch.tensor([16]))


def test_codebook_usage() -> None:
    u = codebook_usage(torch.tensor([0, 1, 1, 3]), 8)
    assert u["usage"] == pytest.approx(3 / 8)
    assert 1 < u["perplexity"] < 3


def test_tokenizer_shapes_and_learns() -> None:
    torch.manual_seed(0)
    tok = DiscreteTokenizer(
        DiscreteTokenizerConfig(patch=4, channels=(8, 8), res_blocks=0, fsq=FSQConfig((5, 5, 5)))
    )
    frames = torch.full((2, 1, 16, 16, 3), 30, dtype=torch.uint8)
    frames[0, 0, 4:10, 4:10] = torch.tensor([230, 60, 60], dtype=torch.uint8)
    frames[1, 0, 8:14, 2:8] = torch.tensor([60, 200, 90], dtype=torch.uint8)
    assert tok.encode(frames).shape == (2, 1, 4, 4)
    before = psnr(tok.decode(tok.encode(frames)), frames)
    opt = torch.optim.Adam(tok.parameters(), 3e-3)
    for _ in range(150):
        out = tok(frames)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    after = psnr(tok.decode(tok.encode(frames)), frames)
    assert out.recon.shape == (2, 1, 3, 16, 16)
    assert after > before + 5
    with pytest.raises(ValueError, match="divisible"):
        tok.encode(torch.zeros(1, 18, 16, 3, dtype=torch.uint8))


def test_digits_round_trip_and_agree_with_codes() -> None:
    fsq = FSQ(FSQConfig((7, 5, 3)))
    idx = torch.arange(fsq.codebook_size)
    d = fsq.digits(idx)
    assert d.shape == (fsq.codebook_size, 3) and int(d[:, 0].max()) == 6 and int(d[:, 2].max()) == 2
    assert torch.equal(fsq.digits_to_indices(d), idx)
    assert torch.equal(d[1], torch.tensor([1, 0, 0]))  # channel 0 varies fastest
    half = (torch.tensor([7, 5, 3]) - 1) / 2
    assert torch.allclose(fsq.indices_to_codes(idx), d / half - 1)

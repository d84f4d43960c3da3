import pytest
import torch

from gedanken.models.checkpoint import config_from_json, config_to_json
from gedanken.tokenizers.discrete import (
    DiscreteTokenizer,
    DiscreteTokenizerConfig,
    TokenizerArchitecture,
    foreground_mask,
    frames_to_float,
)
from gedanken.tokenizers.fsq import FSQConfig

PATCH = TokenizerArchitecture.PATCH


def _scenes(n: int, g: torch.Generator, size: int = 32) -> torch.Tensor:
    """Black frames with one 3x3 square of one of three colours at a random place: ~1 % foreground."""
    colours = torch.tensor([[255, 0, 0], [0, 255, 0], [0, 0, 255]], dtype=torch.uint8)
    frames = torch.zeros(n, 1, size, size, 3, dtype=torch.uint8)
    for i in range(n):
        y, x = (int(v) for v in torch.randint(0, size - 3, (2,), generator=g))
        frames[i, 0, y : y + 3, x : x + 3] = colours[int(torch.randint(0, 3, (1,), generator=g))]
    return frames


def _small(**loss: float) -> DiscreteTokenizerConfig:
    """A few-hundred-parameter patch tokenizer with the given loss weights."""
    return DiscreteTokenizerConfig(
        patch=4, architecture=PATCH, width=8, res_blocks=0, fsq=FSQConfig((5, 5)), **loss
    )


def test_foreground_mask_marks_exactly_the_object() -> None:
    frames = torch.full((1, 16, 16, 3), 40, dtype=torch.uint8)
    frames[0, 2:5, 3:7] = torch.tensor([200, 40, 40], dtype=torch.uint8)
    frames[0, 10, 10] = torch.tensor([44, 40, 40], dtype=torch.uint8)  # 4/255 < 0.05 off: background
    m = foreground_mask(frames_to_float(frames))  # (1, 1, 16, 16)
    assert m.shape == (1, 1, 16, 16)
    assert int(m.sum()) == 12 and bool(m[0, 0, 2:5, 3:7].all())
    # against another frame's background: a light frame has everything off a grey background
    light = frames_to_float(torch.full((1, 16, 16, 3), 200, dtype=torch.uint8))
    assert int(foreground_mask(light, reference=frames_to_float(frames)).sum()) == 256
    with pytest.raises(ValueError, match="shape"):
        foreground_mask(light, reference=light[..., :8])


def test_patch_tokenizer_shapes_and_grid() -> None:
    tok = DiscreteTokenizer(
        DiscreteTokenizerConfig(patch=8, architecture=PATCH, width=16, res_blocks=1, fsq=FSQConfig((5, 5)))
    )
    frames = torch.randint(0, 256, (2, 3, 32, 48, 3), dtype=torch.uint8)
    tokens = tok.encode(frames)
    assert tokens.shape == (2, 3, 4, 6) and tokens.dtype == torch.int64
    assert int(tokens.min()) >= 0 and int(tokens.max()) < tok.vocab_size == 25
    assert tok.decode(tokens).shape == frames.shape
    with pytest.raises(ValueError, match="divisible"):
        tok.encode(torch.zeros(1, 36, 32, 3, dtype=torch.uint8))


def test_foreground_weight_scales_the_loss_on_object_pixels() -> None:
    """loss = mean(err * (1 + w * fg)), err = squared + 0.5 * absolute error, fg = object pixels dilated by
    ``foreground_dilate`` px (so halos painted next to objects cost as much as misses)."""
    g = torch.Generator().manual_seed(0)
    frames = _scenes(4, g)
    losses, recons = {}, {}
    for w, r in ((0.0, 0), (8.0, 0), (8.0, 1)):
        torch.manual_seed(0)
        out = DiscreteTokenizer(_small(foreground_weight=w, foreground_dilate=r))(frames)
        losses[w, r], recons[w, r] = float(out.loss.detach()), out.recon.detach()
    rec = recons[0.0, 0]
    assert torch.equal(rec, recons[8.0, 0]) and torch.equal(rec, recons[8.0, 1])  # only the loss differs
    x = frames_to_float(frames)
    err = (rec - x).pow(2) + 0.5 * (rec - x).abs()
    m = foreground_mask(x)  # (4, 1, 1, H, W): the 3x3 squares
    assert float(m.sum()) == 4 * 9
    dil = torch.nn.functional.max_pool2d(m.flatten(0, 1), 3, stride=1, padding=1).view_as(m)
    assert 4 * 9 < float(dil.sum()) <= 4 * 25  # 5x5 around each square (less at the border)
    assert losses[0.0, 0] == pytest.approx(float(err.mean()), rel=1e-5)
    assert losses[8.0, 0] == pytest.approx(float((err * (1 + 8 * m)).mean()), rel=1e-5)
    assert losses[8.0, 1] == pytest.approx(float((err * (1 + 8 * dil)).mean()), rel=1e-5)
    assert losses[8.0, 1] > losses[8.0, 0] > losses[0.0, 0] * 1.05


def test_config_validation_and_old_configs_load() -> None:
    with pytest.raises(ValueError, match="foreground_weight"):
        DiscreteTokenizerConfig(foreground_weight=-1.0)
    with pytest.raises(ValueError, match="foreground_dilate"):
        DiscreteTokenizerConfig(foreground_dilate=-1)
    with pytest.raises(ValueError, match="width"):
        DiscreteTokenizerConfig(architecture=PATCH, width=0)
    with pytest.raises(ValueError, match="conv width per stride-2 stage"):
        DiscreteTokenizerConfig(patch=8, channels=(8, 8))
    # PATCH needs no per-stage widths
    assert DiscreteTokenizerConfig(patch=8, channels=(8, 8), architecture=PATCH).patch == 8
    # a config saved before the architecture/width/foreground keys existed still loads, as the old CONV design
    old = config_to_json(DiscreteTokenizerConfig(patch=4, channels=(8, 8)))
    for k in ("architecture", "width", "foreground_weight", "foreground_dilate"):
        old.pop(k)
    cfg = config_from_json(DiscreteTokenizerConfig, old)
    assert cfg.architecture is TokenizerArchitecture.CONV and cfg.foreground_weight == 0.0
    assert isinstance(DiscreteTokenizer(cfg).encoder[1], torch.nn.SiLU)


def test_halo_weight_charges_background_the_reconstruction_paints() -> None:
    g = torch.Generator().manual_seed(0)
    frames = _scenes(4, g)
    outs = {}
    for halo in (0.0, 4.0):
        torch.manual_seed(0)
        outs[halo] = DiscreteTokenizer(_small(foreground_weight=8.0, halo_weight=halo))(frames)
    x = frames_to_float(frames)
    rec = outs[0.0].recon.detach()
    err = (rec - x).pow(2) + 0.5 * (rec - x).abs()
    fg = foreground_mask(x)
    painted = foreground_mask(rec, reference=x) * (1 - fg)  # background pixels drawn off the background
    assert float(painted.sum()) > 0
    expect = (err * (1 + 8 * fg + 4 * painted)).mean()
    assert float(outs[4.0].loss.detach()) == pytest.approx(float(expect), rel=1e-5)
    with pytest.raises(ValueError, match="halo_weight"):
        DiscreteTokenizerConfig(halo_weight=-1.0)


def test_refine_stage_starts_as_the_identity_and_then_learns_sharper_edges() -> None:
    """The full-resolution refine stage adds ``f(x)`` to the patch decoder's image; its last conv starts at
    zero, so a new tokenizer decodes exactly as without it, and training moves it off the identity."""
    g = torch.Generator().manual_seed(0)
    frames = _scenes(8, g)
    torch.manual_seed(0)
    plain = DiscreteTokenizer(_small(foreground_weight=8.0))
    torch.manual_seed(0)
    refined = DiscreteTokenizer(_small(foreground_weight=8.0, refine=8))
    assert len(refined.decoder) == len(plain.decoder) + 1
    refined.load_state_dict({**refined.state_dict(), **plain.state_dict()})
    tokens = plain.encode(frames)
    assert torch.equal(refined.encode(frames), tokens)
    assert torch.equal(refined.decode_float(tokens), plain.decode_float(tokens))
    opt = torch.optim.Adam(refined.decoder[-1].parameters(), lr=1e-2)
    first = float(refined(frames).loss.detach())
    for _ in range(30):
        loss = refined(frames).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(refined(frames).loss.detach()) < first * 0.95
    assert not torch.equal(refined.decode_float(tokens), plain.decode_float(tokens))
    with pytest.raises(ValueError, match="refine"):
        DiscreteTokenizerConfig(architecture=PATCH, refine=-1)
    with pytest.raises(ValueError, match="refine"):
        DiscreteTokenizerConfig(patch=4, channels=(8, 8), refine=8)

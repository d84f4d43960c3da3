from dataclasses import replace

import pytest
import torch

from gedanken.data.batch import Batch
from gedanken.data.synthetic import synthetic_episode
from gedanken.tokenizers import VideoAutoencoder, VideoTokenizer
from gedanken.tokenizers.continuous import Architecture, AutoencoderConfig, tiny

_PATCH = AutoencoderConfig(architecture=Architecture.PATCH, patch=4, width=16, blocks=1, latent_channels=4)


def _frames(n=2, t=3, size=32):
    return torch.stack([torch.from_numpy(synthetic_episode(i, steps=t, size=size).frames) for i in range(n)])


@pytest.mark.parametrize("hw", [(64, 64), (40, 56), (17, 23)])
@pytest.mark.parametrize(("cfg", "stride"), [(tiny(), 8), (_PATCH, 4)])
def test_shapes_any_size(hw, cfg, stride):
    ae = VideoAutoencoder(cfg)
    f = torch.randint(0, 256, (1, 2, *hw, 3), dtype=torch.uint8)
    z = ae.encode(f)
    assert z.shape == (1, 2, *ae.latent_shape(*hw))
    assert ae.stride == stride
    assert z.shape[-2:] == (-(-hw[0] // stride), -(-hw[1] // stride))
    out = ae.decode(z, *hw)
    assert out.shape == f.shape and out.dtype == torch.uint8
    assert isinstance(ae, VideoTokenizer)


@pytest.mark.parametrize("cfg", [tiny(), _PATCH])
def test_training_improves_reconstruction(cfg):
    torch.manual_seed(0)
    ae = VideoAutoencoder(cfg)
    f = _frames()
    b = Batch(
        frames=f, actions=torch.zeros(2, 3, 1), rewards=torch.zeros(2, 3), terminated=torch.zeros(2, 3).bool()
    )
    before = ae.psnr(f)
    opt = torch.optim.Adam(ae.parameters(), lr=3e-3)
    for _ in range(25):
        loss, logs = ae.loss(b)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert ae.psnr(f) > before + 2.0
    assert set(logs) == {"rec", "psnr", "z2"}


def test_calibrate_normalises_latents():
    torch.manual_seed(0)
    ae = VideoAutoencoder(tiny())
    f = _frames(4, 4)
    ae.calibrate(f)
    z = ae.encode(f)
    torch.testing.assert_close(z.mean(dim=(0, 1, 3, 4)), torch.zeros(4), atol=1e-4, rtol=0)
    torch.testing.assert_close(z.std(dim=(0, 1, 3, 4)), torch.ones(4), atol=0.05, rtol=0)


def test_rejects_channel_first_frames():
    with pytest.raises(ValueError, match=r"\(B, T, H, W, 3\)"):
        VideoAutoencoder(tiny()).encode(torch.zeros(1, 2, 3, 8, 8, dtype=torch.uint8))


def _batch(f):
    b, t = f.shape[:2]
    return Batch(
        frames=f, actions=torch.zeros(b, t, 1), rewards=torch.zeros(b, t), terminated=torch.zeros(b, t).bool()
    )


def test_halo_weight_charges_painted_background():
    # An untrained decoder paints grey everywhere: with the halo weight, those background pixels cost more.
    f = _frames()
    losses = []
    for halo in (0.0, 8.0):
        torch.manual_seed(0)
        ae = VideoAutoencoder(replace(_PATCH, halo_weight=halo, latent_noise=0.0))
        losses.append(float(ae.loss(_batch(f))[0].detach()))
    assert losses[1] > 2 * losses[0]


def test_hard_weight_charges_only_the_pixels_reconstructed_in_the_wrong_colour():
    # A decoder whose output is exactly the input but for one wrongly coloured pixel: the hard weight
    # multiplies that pixel's cost (and the cycle's), and changes nothing on a perfect reconstruction.
    f = _frames()
    x = f.reshape(-1, *f.shape[2:]).permute(0, 3, 1, 2).float() / 255.0
    for wrong in (False, True):
        losses = []
        for hard in (0.0, 8.0):
            ae = VideoAutoencoder(replace(_PATCH, hard_weight=hard, latent_noise=0.0, latent_penalty=0.0))
            y = x.clone()
            if wrong:
                y[0, 2, 3, 3] = 1.0 - y[0, 2, 3, 3]  # one pixel, one channel: a colour the judge reads apart
            ae._decode_raw = lambda z, h, w, y=y: y  # type: ignore[method-assign]
            losses.append(float(ae.loss(_batch(f))[0].detach()))
        if wrong:
            assert losses[1] > 5 * losses[0] > 0
        else:
            assert losses == [0.0, 0.0]


@pytest.mark.parametrize("steps", [1, 3])
def test_cycle_loss_trains_the_second_round_trip(steps):
    torch.manual_seed(0)
    ae = VideoAutoencoder(replace(_PATCH, cycle_weight=1.0, cycle_steps=steps))
    loss, logs = ae.loss(_batch(_frames()))
    assert set(logs) == {"rec", "psnr", "z2", "cycle"} and logs["cycle"] > 0
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in ae.encoder.parameters() if p.ndim > 1)


@pytest.mark.parametrize(
    "bad", [{"cycle_weight": -1.0}, {"halo_weight": -0.5}, {"hard_weight": -1.0}, {"cycle_steps": 0}]
)
def test_config_rejects_negative_weights_and_no_cycle_steps(bad):
    with pytest.raises(ValueError, match="cycle_steps >= 1"):
        replace(_PATCH, **bad)

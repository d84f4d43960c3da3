"""Object loss weights (FlowConfig.size_weight, edge_weight, contact_weight): the maps, the loss, and the training
plumbing."""

from dataclasses import replace

import pytest
import torch
from typer.testing import CliRunner

from gedanken.models.diffusion.config import FlowConfig, Target
from gedanken.models.diffusion.sampling import FlowMatching
from gedanken.models.object_weights import edge_object_weights, small_object_weights

PALETTE = ((0, 0, 0), (255, 0, 0), (0, 0, 255))


def _frames() -> torch.Tensor:
    f = torch.zeros(2, 16, 16, 3, dtype=torch.uint8)
    f[0, 0:4, 0:4] = torch.tensor([255, 0, 0])  # a small red object, 16 px
    f[:, 6:16, 6:16] = torch.tensor([0, 0, 255])  # a large blue one, 100 px
    f[1, 0:4, 4:8] = torch.tensor([255, 0, 0])  # red moved one cell right
    return f


def test_small_objects_weigh_more_where_they_are_and_were() -> None:
    w = small_object_weights(_frames(), PALETTE, reference=48.0, cap=4.0, cell=4)
    assert w.shape == (2, 1, 4, 4) and w.dtype == torch.float32
    assert w[0, 0, 0, 0] == 4.0  # (48 / 16)^2 = 9, capped at 4
    assert w[0, 0, 2, 2] == 1.0 and w[0, 0, 3, 3] == 1.0  # the large object: (48 / 100)^2 < 1
    assert w[0, 0, 0, 1] == 1.0  # background
    assert w[1, 0, 0, 1] == 4.0 and w[1, 0, 0, 0] == 4.0  # where it is now, and where it was
    assert float(small_object_weights(_frames(), PALETTE, 8.0, 4.0, 4).max()) == 1.0  # all objects large
    with pytest.raises(ValueError, match="palette"):
        small_object_weights(_frames(), (), 48.0, 4.0, 4)
    with pytest.raises(ValueError, match="divisible"):
        small_object_weights(_frames(), PALETTE, 48.0, 4.0, 3)


def test_objects_at_the_border_weigh_more_where_they_are_and_were() -> None:
    w = edge_object_weights(_frames(), PALETTE, band=2, weight=8.0, cell=4)
    assert w.shape == (2, 1, 4, 4) and w.dtype == torch.float32
    assert w[0, 0, 0, 0] == 8.0  # red touches the top and left border
    assert w[0, 0, 0, 1] == 1.0  # background
    assert w[0, 0, 3, 3] == 8.0  # blue reaches the bottom-right corner
    assert w[0, 0, 2, 2] == 1.0  # blue's inner cell is 4 px from every border
    assert w[1, 0, 0, 1] == 8.0 and w[1, 0, 0, 0] == 8.0  # where red is now, and where it was
    assert float(edge_object_weights(_frames()[:, 4:12, 4:12], PALETTE, 1, 8.0, 4).max()) == 8.0
    inner = torch.zeros(1, 16, 16, 3, dtype=torch.uint8)
    inner[0, 6:10, 6:10] = torch.tensor([255, 0, 0])
    assert float(edge_object_weights(inner, PALETTE, 4, 8.0, 4).max()) == 1.0  # nothing within 4 px of a wall
    assert float(edge_object_weights(inner, PALETTE, 7, 8.0, 4).max()) == 8.0
    with pytest.raises(ValueError, match="palette"):
        edge_object_weights(_frames(), (), 2, 8.0, 4)


def test_the_loss_weighs_positions_and_keeps_its_scale() -> None:
    flow = FlowMatching(FlowConfig(target=Target.RESIDUAL, change_weight=8.0))
    g = torch.Generator().manual_seed(0)
    x, out, base = (torch.randn(2, 3, 4, 4, 4, generator=g) for _ in range(3))
    plain = flow.loss(out, x, x, base)
    ones = torch.ones(2, 3, 1, 4, 4)
    torch.testing.assert_close(flow.loss(out, x, x, base, ones), plain)
    torch.testing.assert_close(flow.loss(out, x, x, base, 3 * ones), plain)  # divided by the mean weight
    more = ones.clone()
    more[..., 0, 0] = 4.0
    assert not torch.allclose(flow.loss(out, x, x, base, more), plain)


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="size_weight"):
        FlowConfig(target=Target.RESIDUAL, size_weight=0.5)
    with pytest.raises(ValueError, match="velocity"):
        FlowConfig(size_weight=2.0)  # the velocity target has no per-position loss to weigh
    FlowConfig(target=Target.RESIDUAL, size_weight=2.0)
    for kind in ("edge", "contact"):
        weight, band = f"{kind}_weight", f"{kind}_band"
        with pytest.raises(ValueError, match=weight):
            FlowConfig(target=Target.RESIDUAL, **{weight: 0.5})
        with pytest.raises(ValueError, match=band):
            FlowConfig(target=Target.RESIDUAL, **{weight: 2.0, band: 0})
        with pytest.raises(ValueError, match="velocity"):
            FlowConfig(**{weight: 2.0})
        FlowConfig(target=Target.RESIDUAL, **{weight: 2.0})


def test_training_batches_carry_the_weights(tmp_path) -> None:  # noqa: ANN001
    from gedanken.data.collect import collect
    from gedanken.models.diffusion.data import load_data, object_weights, window_batches
    from gedanken.models.diffusion.recipe import tiny, train_diffusion

    collect("bounce", tmp_path / "data", 2, steps=10, seed=0, workers=1)
    data = load_data(tmp_path / "data")
    r = tiny()
    flow = FlowConfig(target=Target.RESIDUAL, change_weight=8.0, size_weight=4.0)
    r = replace(r, model=replace(r.model, flow=flow, palette=data.palette))
    weight_of = object_weights(r.model, data, 4)
    assert weight_of is not None and object_weights(tiny().model, data, 4) is None
    lat = [torch.zeros(len(f), 4, 16, 16) for f in data.frames]
    text = [None] * len(lat)
    batch = next(window_batches(lat, data, text, [0, 1], 3, 4, 0, weight_of)(0))
    assert batch.weights is not None and batch.weights.shape == (3, 4, 1, 16, 16)
    assert float(batch.weights.min()) >= 1.0
    edge = replace(r.model, flow=replace(flow, size_weight=1.0, edge_weight=6.0))
    edge_of = object_weights(edge, data, 4)
    assert edge_of is not None
    both_of = object_weights(replace(r.model, flow=replace(flow, edge_weight=6.0)), data, 4)
    assert both_of is not None
    for e in range(2):  # the larger of the two weights, cell by cell
        torch.testing.assert_close(both_of(e), torch.maximum(weight_of(e), edge_of(e)))
    touch = replace(r.model, flow=replace(flow, size_weight=1.0, contact_weight=5.0, contact_band=40))
    touch_of = object_weights(touch, data, 4)
    assert touch_of is not None
    # the band spans the frame: every cell covering a ball weighs 5 wherever another ball is drawn too
    many = [e for e in range(2) if len(set(map(tuple, data.frames[e][0].reshape(-1, 3).tolist()))) > 2]
    assert many  # at least one episode with two balls
    for e in many:
        assert float(touch_of(e).max()) == 5.0 and float(touch_of(e).min()) == 1.0
    near_of = object_weights(replace(touch, flow=replace(touch.flow, contact_band=3)), data, 4)
    all_of = object_weights(
        replace(r.model, flow=replace(flow, edge_weight=6.0, contact_weight=5.0)), data, 4
    )
    assert near_of is not None and all_of is not None
    for e in range(2):  # the largest of the three, cell by cell
        torch.testing.assert_close(all_of(e), torch.maximum(both_of(e), near_of(e)))
    with pytest.raises(ValueError, match="flat-coloured"):
        object_weights(replace(r.model, palette=()), data, 4)
    res = train_diffusion(r, tmp_path / "data", tmp_path / "run", device="cpu", progress=False)
    assert res.model_dir.is_dir()


@pytest.mark.parametrize("option", ["--size-weight", "--edge-weight", "--contact-weight"])
def test_cli_refuses_object_weights_with_the_velocity_target(tmp_path, option: str) -> None:  # noqa: ANN001
    from gedanken.cli import app

    res = CliRunner().invoke(
        app,
        [
            "train",
            "diffusion",
            "--preset",
            "tiny",
            "--world",
            "bounce",
            "--data",
            str(tmp_path / "d"),
            "--out",
            str(tmp_path / "run"),
            option,
            "2",
        ],
    )
    assert res.exit_code != 0 and "velocity" in res.output
    assert not (tmp_path / "run").exists() and not (tmp_path / "d").exists()  # nothing collected or written

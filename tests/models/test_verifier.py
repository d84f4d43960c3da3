import math

import pytest
import torch

from gedanken.models.verifier import object_sizes, solidity_penalty

PALETTE = torch.tensor([[0, 0, 0], [255, 0, 0], [0, 0, 255]])


def _frame(*discs: tuple[float, float, float], size: int = 64) -> torch.Tensor:
    """(H, W, 3) uint8 with each (col, row, radius) disc drawn in colour 1, 2, ... (later ones on top)."""
    f = torch.zeros(size, size, 3, dtype=torch.uint8)
    yy, xx = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    for i, (c, r, rad) in enumerate(discs):
        f[(xx - c) ** 2 + (yy - r) ** 2 <= rad**2] = PALETTE[i + 1].to(torch.uint8)
    return f


def _sizes(*radii: float) -> torch.Tensor:
    return object_sizes(
        torch.stack([_frame(*[(32.0 + 16 * i - 8, 32.0, r) for i, r in enumerate(radii)])])[None], PALETTE
    )


def test_apart_and_inside_is_no_penalty():
    pen = solidity_penalty(_frame((20, 30, 5), (40, 30, 5))[None], PALETTE, _sizes(5, 5))
    assert pen.item() < 0.05


def test_an_overlapping_pair_is_penalised_by_about_its_depth():
    shallow = solidity_penalty(_frame((28, 30, 5), (37, 30, 5))[None], PALETTE, _sizes(5, 5)).item()
    deep = solidity_penalty(_frame((28, 30, 5), (34, 30, 5))[None], PALETTE, _sizes(5, 5)).item()
    # centres 9 and 6 apart, radii 5 + 5: 1 and 4 deep; the blue disc hides part of the red one, whose
    # centroid then lies further away, so the reading is shallower than the truth but grows with it
    assert 0.2 < shallow < 1.2
    assert 1.5 < deep < 4.2
    assert deep > shallow + 1


@pytest.mark.parametrize(("col", "depth"), [(5.0, 0.0), (4.0, 1.0), (3.0, 2.0), (2.0, 3.0)])
def test_a_disc_cut_by_the_wall_is_placed_from_its_cut_centroid(col, depth):
    sizes = _sizes(5, 5)
    pen = solidity_penalty(_frame((col, 30, 5), (40, 30, 5))[None], PALETTE, sizes).item()
    assert pen == pytest.approx(depth, abs=0.3)
    right = solidity_penalty(_frame((64 - col, 30, 5), (20, 30, 5))[None], PALETTE, sizes).item()
    bottom = solidity_penalty(_frame((30, 64 - col, 5), (20, 20, 5))[None], PALETTE, sizes).item()
    assert right == pytest.approx(pen, abs=1e-6) and bottom == pytest.approx(pen, abs=1e-6)


def test_only_the_solid_colours_and_the_objects_of_the_episode_count():
    overlap = _frame((28, 30, 5), (34, 30, 5))[None]
    assert solidity_penalty(overlap, PALETTE, _sizes(5, 5), torch.tensor([True, False])).item() == 0.0
    absent = torch.tensor([[_sizes(5, 5)[0, 0].item(), 0.0]])  # colour 2 never seen in the context
    assert solidity_penalty(overlap, PALETTE, absent).item() == 0.0


def test_sizes_are_the_largest_area_seen_in_the_context():
    cut, whole = _frame((2, 30, 5)), _frame((30, 30, 5))
    sizes = object_sizes(torch.stack([cut, whole, cut])[None], PALETTE)
    assert sizes[0, 0].item() == pytest.approx(math.pi * 25, rel=0.08)
    assert sizes[0, 1].item() == 0.0


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="uint8"):
        solidity_penalty(torch.zeros(1, 64, 64, 3), PALETTE, torch.zeros(1, 2))
    with pytest.raises(ValueError, match="sizes"):
        solidity_penalty(_frame((30, 30, 5))[None], PALETTE, torch.zeros(1, 3))


def test_use_verifier_checks_what_the_world_says_is_solid():
    from gedanken.models import load_checkpoint, shipped_checkpoint
    from gedanken.models.verifier import use_verifier, world_solidity

    assert world_solidity("push") == (
        (0, 1, 2, 3),
        (1, 2, 3, 4),
    )  # the goal is passed over; blocks are squares
    assert world_solidity("gedanken/Bounce-v0") == ((0, 1, 2, 3, 4, 5), ())
    assert world_solidity("my_dataset") == ((), ())  # unknown: every colour a solid disc
    m = load_checkpoint(shipped_checkpoint("diffusion", "push"))
    use_verifier(m, 6)
    cfg = m.sampler.cfg
    assert (cfg.candidates, cfg.verifier, cfg.verifier_solid, cfg.verifier_boxes) == (
        6,
        "solidity",
        (0, 1, 2, 3),
        (1, 2, 3, 4),
    )
    with pytest.raises(ValueError, match="at least 2"):
        use_verifier(m, 1)
    with pytest.raises(ValueError, match="no solidity verifier"):
        use_verifier(object(), 4)


def test_a_model_that_recorded_no_palette_takes_its_worlds():
    from gedanken.models import load_checkpoint
    from gedanken.models.verifier import use_verifier
    from gedanken.worlds.palette import palette_for

    m = load_checkpoint(shipped_checkpoint_path("autoregressive_push_discrete"))
    assert m.cfg.palette == ()  # trained before palettes were recorded
    use_verifier(m, 4, "push_discrete")
    assert m.cfg.palette == tuple(tuple(int(c) for c in rgb) for rgb in palette_for(5))
    assert m.sampler.cfg.verifier == "solidity" and m.sampler.cfg.verifier_solid == (0, 1, 2, 3)
    plain = load_checkpoint(shipped_checkpoint_path("autoregressive_push_discrete"))
    with pytest.raises(ValueError, match="has none"):  # no world to take colours from
        use_verifier(plain, 4, "my_dataset", label="mine")


def shipped_checkpoint_path(name: str):
    from gedanken.models import CHECKPOINT_ROOT

    return CHECKPOINT_ROOT / name

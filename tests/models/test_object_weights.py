"""The object loss-weight maps shared by the families (models/object_weights.py): objects in contact."""

import pytest
import torch

from gedanken.models.object_weights import contact_object_weights

PALETTE = ((0, 0, 0), (255, 0, 0), (0, 0, 255), (0, 255, 0))
RED, BLUE, GREEN = (torch.tensor(c, dtype=torch.uint8) for c in PALETTE[1:])


def _frames() -> torch.Tensor:
    """Frame 0: red and blue 2 px apart at the top left, green alone; frame 1: red moved away, nothing touches;
    frame 2: nothing touches either."""
    f = torch.zeros(3, 16, 16, 3, dtype=torch.uint8)
    f[0, 0:4, 0:4] = RED
    f[0, 0:4, 5:8] = BLUE  # 2 px apart (one background column between): within a band of 2, not of 1
    f[:, 12:16, 12:16] = GREEN  # far from everything
    f[1:, 8:12, 0:4] = RED
    f[1:, 0:4, 5:8] = BLUE
    return f


def test_objects_near_another_weigh_more_where_they_are_and_were() -> None:
    w = contact_object_weights(_frames(), PALETTE, band=2, weight=5.0, cell=4)
    assert w.shape == (3, 1, 4, 4) and w.dtype == torch.float32
    assert w[0, 0, 0, 0] == 5.0 and w[0, 0, 0, 1] == 5.0  # red's and blue's cells facing each other
    assert w[0, 0, 3, 3] == 1.0  # green, alone
    assert w[0, 0, 2, 0] == 1.0 and w[0, 0, 1, 1] == 1.0  # background
    assert w[1, 0, 0, 0] == 5.0  # the frame after a contact keeps it (where it was)
    assert float(w[2].max()) == 1.0  # two frames on: no contact now or before
    # a band narrower than the distance: no contact anywhere
    assert float(contact_object_weights(_frames(), PALETTE, band=1, weight=5.0, cell=4).max()) == 1.0


def test_one_object_alone_never_touches_itself() -> None:
    f = torch.zeros(2, 8, 8, 3, dtype=torch.uint8)
    f[:, 2:6, 2:6] = RED
    assert float(contact_object_weights(f, PALETTE, band=3, weight=9.0, cell=4).max()) == 1.0


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="band"):
        contact_object_weights(_frames(), PALETTE, band=0, weight=5.0, cell=4)
    with pytest.raises(ValueError, match="palette"):
        contact_object_weights(_frames(), (), band=2, weight=5.0, cell=4)
    with pytest.raises(ValueError, match="divisible"):
        contact_object_weights(_frames(), PALETTE, band=2, weight=5.0, cell=3)

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from gedanken.models import CheckpointError, families, load_checkpoint, register_family, save_checkpoint
from gedanken.models.diffusion import DiffusionWorldModel, tiny_config
from gedanken.models.protocol import ModelCard


@pytest.fixture
def ckpt(tmp_path):
    torch.manual_seed(0)
    m = DiffusionWorldModel(tiny_config())
    return save_checkpoint(
        tmp_path / "ck",
        m,
        family="diffusion",
        model_config=m.cfg,
        card=ModelCard(name="x", family="diffusion"),
    )


def test_loads_by_family(ckpt):
    assert isinstance(load_checkpoint(ckpt), DiffusionWorldModel)
    assert "diffusion" in families()


def _edit_json(ckpt, **changes):
    meta = json.loads((ckpt / "checkpoint.json").read_text())
    meta.update(changes)
    (ckpt / "checkpoint.json").write_text(json.dumps(meta))


def _edit_tensors(ckpt, fn):
    t = load_file(str(ckpt / "model.safetensors"))
    fn(t)
    save_file(t, str(ckpt / "model.safetensors"))


@pytest.mark.parametrize(
    "breakage,message",
    [
        (lambda c: (c / "checkpoint.json").unlink(), "missing checkpoint.json"),
        (lambda c: (c / "model.safetensors").unlink(), "missing model.safetensors"),
        (lambda c: (c / "checkpoint.json").write_text("{not json"), "not valid JSON"),
        (lambda c: _edit_json(c, format="pytorch"), "format tag"),
        (lambda c: _edit_json(c, version=99), "format version"),
        (
            lambda c: _edit_json(c, family="nosuchfamily"),
            "unknown model family .nosuchfamily.; known: .*autoregressive, diffusion, jepa",
        ),
        (lambda c: (c / "model.safetensors").write_bytes(b"garbage" * 10), "unreadable safetensors"),
        (lambda c: _edit_tensors(c, lambda t: t.pop("dit.null_action")), "disagree"),
        (
            lambda c: _edit_tensors(
                c, lambda t: t.__setitem__("dit.null_action", torch.full((32,), float("nan")))
            ),
            "NaN",
        ),
    ],
)
def test_corrupt_checkpoints_raise_clear_errors(ckpt, breakage, message):
    breakage(ckpt)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(ckpt)


def _rewrite_consistently(ckpt, fn):
    """Change the tensors and the JSON's tensor list together: only the model can tell."""
    _edit_tensors(ckpt, fn)
    t = load_file(str(ckpt / "model.safetensors"))
    _edit_json(ckpt, tensors={k: list(v.shape) for k, v in t.items()})


@pytest.mark.parametrize(
    "fn,message",
    [
        (lambda t: t.pop("dit.null_action"), "missing"),
        (lambda t: t.__setitem__("extra.weight", torch.zeros(2)), "unexpected"),
        (lambda t: t.__setitem__("dit.null_action", torch.zeros(5)), "mis-shaped"),
    ],
)
def test_weights_that_do_not_fit_the_config(ckpt, fn, message):
    _rewrite_consistently(ckpt, fn)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(ckpt)


def test_bad_config_is_a_checkpoint_error(ckpt):
    meta = json.loads((ckpt / "checkpoint.json").read_text())
    meta["model_config"]["no_such_field"] = 1
    (ckpt / "checkpoint.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="unknown config keys"):
        load_checkpoint(ckpt)


def test_register_family_validates_name():
    with pytest.raises(ValueError, match="identifier"):
        register_family("not a name", lambda cfg: torch.nn.Linear(1, 1))


def test_atomic_overwrite_keeps_a_valid_checkpoint(ckpt):
    torch.manual_seed(1)
    m = DiffusionWorldModel(tiny_config())
    save_checkpoint(
        ckpt, m, family="diffusion", model_config=m.cfg, card=ModelCard(name="y", family="diffusion")
    )
    loaded = load_checkpoint(ckpt)
    assert loaded.card.name == "y"
    assert not [p for p in ckpt.parent.iterdir() if p.name.startswith(".")]


def test_checkpoint_files_get_the_modes_a_plain_write_would(ckpt):
    import os

    umask = os.umask(0o022)
    try:
        m = DiffusionWorldModel(tiny_config())
        save_checkpoint(
            ckpt, m, family="diffusion", model_config=m.cfg, card=ModelCard(name="z", family="diffusion")
        )
    finally:
        os.umask(umask)
    assert (ckpt.stat().st_mode & 0o777) == 0o755  # not mkdtemp's 0700
    for name in ("checkpoint.json", "model.safetensors"):
        assert ((ckpt / name).stat().st_mode & 0o777) == 0o644

import json
from dataclasses import replace

import pytest
import torch
from typer.testing import CliRunner

from gedanken.data.store import EpisodeDataset
from gedanken.data.synthetic import synthetic_episode
from gedanken.models import load_checkpoint
from gedanken.models.autoregressive import ActionMode, AutoregressiveWorldModel
from gedanken.models.autoregressive.recipe import EpisodeData, tiny, train_autoregressive


def _data(n: int = 4, steps: int = 12) -> EpisodeData:
    eps = [synthetic_episode(seed=i, steps=steps) for i in range(n)]
    return EpisodeData(
        frames=[torch.from_numpy(e.frames) for e in eps],
        actions=[torch.from_numpy(e.actions) for e in eps],
        world="synthetic",
        action_dim=2,
        action_classes=0,
        has_actions=True,
    )


def test_tiny_recipe_trains_every_stage_and_exports(tmp_path) -> None:  # noqa: ANN001
    res = train_autoregressive(tiny(), _data(), tmp_path / "run", device="cpu")
    assert set(res.stages) == {"tokenizer", "lam", "dynamics", "adapter"}
    assert all(r.step == 4 for r in res.stages.values())
    assert 0 < res.labelled_steps <= tiny().labelled_steps
    assert res.action_map is not None and res.action_map.steps > 0 and res.action_map.mse >= 0
    assert 0 < res.codebook["usage"] <= 1 and res.tokenizer_psnr > 0
    assert res.fidelity == {}  # no palette: the judge is not run
    m = load_checkpoint(res.model_dir)
    assert isinstance(m, AutoregressiveWorldModel) and m.action_mode is ActionMode.ADAPTER and m.map_fitted
    roll = m.rollout(
        m.observe(torch.from_numpy(synthetic_episode(9, steps=3).frames)[None]), torch.zeros(1, 3, 2)
    )
    assert roll.frames is not None and roll.frames.shape == (1, 3, 64, 64, 3)
    # resuming a finished run trains nothing more and reproduces the same weights
    again = train_autoregressive(tiny(), _data(), tmp_path / "run", device="cpu")
    assert all(r.resumed_from == 4 for r in again.stages.values())


def test_tokenizer_metrics_judge_with_a_palette() -> None:
    from gedanken.models.autoregressive import tiny as tiny_model
    from gedanken.models.autoregressive.recipe import tokenizer_metrics

    palette = ((0, 0, 0), (255, 0, 0))
    frames = torch.zeros(6, 64, 64, 3, dtype=torch.uint8)
    frames[:, 20:26, 30:36, 0] = 255  # one red object per frame
    torch.manual_seed(0)
    m = AutoregressiveWorldModel(tiny_model()).eval()
    p, usage, fid = tokenizer_metrics(m, [frames], max_frames=4, palette=palette)
    assert p > 0 and 0 < usage["usage"] <= 1
    assert set(fid) >= {"identity_accuracy", "objects_kept", "position_error_px", "psnr"}
    assert 0 <= fid["identity_accuracy"] <= 1 and fid["psnr"] == pytest.approx(p, abs=0.5)


def test_action_free_data_gives_a_latent_driven_model(tmp_path) -> None:  # noqa: ANN001
    data = replace(_data(n=3), has_actions=False)
    res = train_autoregressive(tiny(), data, tmp_path / "run", device="cpu")
    assert "adapter" not in res.stages and res.action_map is None and res.labelled_steps == 0
    m = load_checkpoint(res.model_dir)
    assert m.action_mode is ActionMode.LATENT  # type: ignore[attr-defined]


def test_cli_smoke(tmp_path) -> None:  # noqa: ANN001
    from gedanken.cli import app

    EpisodeDataset.create(tmp_path / "data").extend([synthetic_episode(seed=i, steps=12) for i in range(2)])
    EpisodeDataset.create(tmp_path / "more").extend([synthetic_episode(seed=i, steps=12) for i in (2, 3)])
    result = CliRunner().invoke(
        app,
        [
            "train",
            "autoregressive",
            "--preset",
            "tiny",
            "--data",
            str(tmp_path / "data"),
            "--add-data",
            str(tmp_path / "more"),
            "--out",
            str(tmp_path / "run"),
            "--device",
            "cpu",
            "--export",
            str(tmp_path / "exported"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "exported" / "checkpoint.json").is_file()
    meta = json.loads((tmp_path / "exported" / "checkpoint.json").read_text())
    assert meta["family"] == "autoregressive" and meta["card"]["preset"] == "tiny"
    assert meta["card"]["dataset"] == f"{tmp_path / 'data'}+{tmp_path / 'more'}"  # both datasets trained on
    # The summary is strict JSON: continuous actions report the map's error, not a NaN accuracy.
    summary = json.loads(" ".join(result.output[result.output.index("done") + 4 :].splitlines()))
    assert "NaN" not in result.output and "latent_to_real_accuracy" not in summary
    assert summary["latent_to_real_mse"] >= 0.0


def test_the_config_records_the_datas_palette() -> None:
    from dataclasses import replace

    from gedanken.models.autoregressive.recipe import fit_config_to_data

    palette = ((0, 0, 0), (255, 0, 0))
    assert fit_config_to_data(tiny().model, replace(_data(), palette=palette)).palette == palette
    assert fit_config_to_data(tiny().model, _data()).palette == ()

"""Training recipe of the JEPA family: encoder (self-supervised), then predictor on frozen latents, then probe.

``train_jepa(recipe, data, out)`` reads a recorded dataset, and

1. pre-trains the encoder on unlabeled clips with the shared trainer (``<out>/encoder/last``);
2. encodes every frame once with the frozen encoder, fits the linear probe in closed form on training
   latents and measures its R^2 on held-out episodes;
3. trains the action-conditioned predictor on random latent windows with the shared trainer
   (``<out>/predictor/last``), optionally with the probe-metric term (``PredictorConfig.probe_weight``);
4. optionally trains the pixel decoder on frozen latents (``<out>/decoder/last``);
5. exports the model without trainer state to ``<out>/model`` and a JSON report to ``<out>/report.json``.

Every stage resumes exactly from its ``last`` checkpoint.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from gedanken.data.batch import Batch
from gedanken.data.combine import read_episodes
from gedanken.data.windows import draw_windows, long_enough
from gedanken.models.checkpoint import config_to_json, save_checkpoint
from gedanken.models.jepa import config as presets
from gedanken.models.jepa.config import JepaConfig
from gedanken.models.jepa.model import JepaWorldModel, LatentBatch, Stage
from gedanken.models.jepa.probe import ProbeReport, probe_report
from gedanken.models.jepa.sigreg import CollapseStats, collapse_stats
from gedanken.models.protocol import ModelCard
from gedanken.train.trainer import TrainConfig, TrainResult, fit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JepaRecipe:
    """A model preset plus how to train it (and how much data to collect when there is none)."""

    name: str  # preset name, recorded in the model card
    model: JepaConfig  # sizes; frame size, actions and state slots are filled in from the data
    encoder_train: TrainConfig  # stage 1; batch_size counts clips of clip_tubelets * tubelet frames
    predictor_train: TrainConfig  # stage 2; batch_size counts latent windows
    decoder_train: TrainConfig | None  # optional stage 4 (pictures only); None skips it
    window: int = 9  # frames per predictor training window (1 context + window - 1 predicted)
    episodes: int = 240  # episodes to collect when the dataset does not exist yet
    episode_steps: int = 64  # steps per collected episode
    policy: str | None = None  # behaviour policy of a collected dataset (None: the collector's default)
    holdout: float = 0.05  # share of episodes (at least 1) kept out of training for evals and the probe R^2


def tiny() -> JepaRecipe:
    """Seconds on a laptop CPU: for tests and smoke runs (32x32 frames)."""
    quiet = {"warmup": 1, "log_every": 2, "progress": False}
    return JepaRecipe(
        name="tiny",
        model=presets.tiny(),
        encoder_train=TrainConfig(steps=4, batch_size=4, lr=1e-3, **quiet),  # type: ignore[arg-type]
        predictor_train=TrainConfig(steps=4, batch_size=4, lr=1e-3, **quiet),  # type: ignore[arg-type]
        decoder_train=TrainConfig(steps=2, batch_size=2, lr=1e-3, **quiet),  # type: ignore[arg-type]
        window=5,
        episodes=4,
        episode_steps=12,
    )


def default() -> JepaRecipe:
    """The shipped checkpoint: about 20 minutes on 2 CPU cores (see docs/jepa.md for measured times)."""
    return JepaRecipe(
        name="default",
        model=presets.default(),
        encoder_train=TrainConfig(
            steps=300,  # longer loses the pusher's keypoint (docs/jepa.md: 800 steps -> pusher R^2 0.6-0.9)
            batch_size=32,
            lr=1e-3,
            warmup=60,
            log_every=50,
            eval_every=150,
            ckpt_every=100,
            num_threads=2,
        ),
        predictor_train=TrainConfig(
            steps=9000,  # 3000 -> 9000 (MSE): 8-step block error on contact 3.27 -> 3.08 (docs/jepa.md)
            batch_size=64,
            lr=1e-3,
            warmup=100,
            log_every=100,
            eval_every=1000,
            ckpt_every=500,
            num_threads=2,
        ),
        decoder_train=TrainConfig(
            steps=400, batch_size=8, lr=2e-3, warmup=20, log_every=50, ckpt_every=200, num_threads=2
        ),
        episodes=960,
        policy="poke",  # contact-rich Push data (docs/jepa.md, "Contact"; docs/planning.md)
    )


RECIPES = {"tiny": tiny, "default": default}


@dataclass
class JepaData:
    """A dataset held in memory (per-episode tensors)."""

    frames: list[torch.Tensor]  # (T, H, W, 3) uint8 per episode
    actions: list[torch.Tensor]  # (T, A) float32
    states: list[torch.Tensor] | None  # (T, K, F) float32
    world: str
    action_low: tuple[float, ...]
    action_high: tuple[float, ...]


def load_data(path: str | Path, *more: str | Path) -> JepaData:
    """A dataset in memory; ``more`` datasets of the same world, frame size, action space and state slots
    are appended (e.g. episodes recorded with ``collect --policy plan:<checkpoint>``)."""
    eps = read_episodes(path, more)
    spec = eps[0].meta.action_space
    if spec.kind == "discrete":
        raise ValueError(
            "the JEPA family embeds continuous actions; this dataset has a discrete action space"
        )
    dim = max(spec.dim, 1)
    low = tuple(spec.low) if len(spec.low) == dim else (-1.0,) * dim
    high = tuple(spec.high) if len(spec.high) == dim else (1.0,) * dim
    has_states = all(e.states is not None for e in eps)
    return JepaData(
        frames=[torch.from_numpy(e.frames) for e in eps],
        actions=[torch.from_numpy(e.actions) for e in eps],
        states=[torch.from_numpy(e.states) for e in eps] if has_states else None,  # type: ignore[arg-type]
        world=eps[0].meta.world,
        action_low=low,
        action_high=high,
    )


def fit_config_to_data(cfg: JepaConfig, data: JepaData) -> JepaConfig:
    """Frame size, action width/bounds and state slots from the data."""
    h, w = data.frames[0].shape[1:3]
    if h != w:
        raise ValueError(f"the JEPA encoder needs square frames, got {h}x{w}")
    k = data.states[0].shape[1] if data.states is not None else cfg.max_objects
    return replace(
        cfg,
        encoder=replace(cfg.encoder, image_size=int(h)),
        action_dim=len(data.action_low),
        action_low=data.action_low,
        action_high=data.action_high,
        max_objects=int(k),
    )


def split_episodes(n: int, holdout: float) -> tuple[list[int], list[int]]:
    k = max(1, int(round(n * holdout))) if n > 1 else 0
    return list(range(n - k)), list(range(n - k, n)) or list(range(n))


def clip_batches(data: JepaData, idx: list[int], size: int, length: int, seed: int):
    """Resumable source of frame-clip Batches for stage 1 (actions unused: unlabeled video)."""
    lengths = [len(f) for f in data.frames]
    idx = long_enough(lengths, idx, length, "frames an encoder clip")

    def source(start: int) -> Iterator[Batch]:
        step = start
        while True:
            pairs = draw_windows(np.random.default_rng([seed, step, 0]), idx, lengths, size, length)
            frames = torch.stack([data.frames[e][s : s + length] for e, s in pairs])  # (B, T, H, W, 3)
            z = torch.zeros(size, length)
            yield Batch(frames=frames, actions=torch.zeros(size, length, 1), rewards=z, terminated=z.bool())
            step += 1

    return source


def latent_batches(
    lat: list[torch.Tensor],
    data: JepaData,
    idx: list[int],
    size: int,
    window: int,
    seed: int,
    with_frames: bool = False,
):
    """Resumable source of LatentBatches (windows of ``window`` steps) for stages 2 and 4."""
    lengths = [len(x) for x in lat]
    idx = long_enough(lengths, idx, window, "steps a training window")

    def source(start: int) -> Iterator[LatentBatch]:
        step = start
        while True:
            pairs = draw_windows(np.random.default_rng([seed, step, 1]), idx, lengths, size, window)

            def cut(arrs: list[torch.Tensor], pairs: list = pairs) -> torch.Tensor:
                return torch.stack([arrs[e][s : s + window] for e, s in pairs])

            yield LatentBatch(
                latents=cut(lat), actions=cut(data.actions), frames=cut(data.frames) if with_frames else None
            )
            step += 1

    return source


@torch.no_grad()
def encode_all(model: JepaWorldModel, frames: list[torch.Tensor]) -> list[torch.Tensor]:
    """Frame latents ``(T, d_z)`` of every episode, with the (frozen) encoder."""
    model.eval()
    dev = model.device
    return [model.encoder.encode_frames(f[None].to(dev))[0].cpu() for f in frames]


def rollout_error(
    model: JepaWorldModel,
    lat: list[torch.Tensor],
    data: JepaData,
    idx: list[int],
    horizon: int = 8,
    windows: int = 64,
    seed: int = 0,
) -> dict[str, float]:
    """Held-out latent L1 error of open-loop rollouts at horizon 1 and ``horizon`` (and copy-first baseline)."""
    eps = [i for i in idx if len(lat[i]) > horizon]
    if not eps:
        return {}
    rng = np.random.default_rng(seed)
    picks = [(e, int(rng.integers(len(lat[e]) - horizon))) for e in rng.choice(eps, size=windows)]
    z = torch.stack([lat[e][s : s + horizon + 1] for e, s in picks]).to(model.device)
    a = torch.stack([data.actions[e][s : s + horizon + 1] for e, s in picks]).to(model.device)
    model.eval()
    with torch.no_grad():
        state = model.predictor.start(z[:, :1], None)
        pred = model.predictor.rollout(state, model.normalise_actions(a[:, :horizon]))
    err = (pred - z[:, 1:]).abs().mean(dim=(0, 2))  # (H,)
    copy = (z[:, :1] - z[:, 1:]).abs().mean(dim=(0, 2))
    out = {"l1_h1": float(err[0]), f"l1_h{horizon}": float(err[-1]), f"copy_h{horizon}": float(copy[-1])}
    if bool(model.probe.fitted) and data.states is not None:
        # The probe read on *predicted* latents: what a planner with a state goal sees.
        s = torch.stack([data.states[e][st + 1 : st + horizon + 1] for e, st in picks])  # (W, H, K, F)
        with torch.no_grad():
            ps = model.probe.raw(pred).cpu()  # (W, H, K, F)
        for h in (0, horizon - 1):
            out[f"probe_pos_r2_h{h + 1}"] = probe_report(ps[:, h], s[:, h]).position_r2
    return out


@dataclass
class JepaTrainResult:
    encoder: TrainResult | None  # None when the encoder came from another checkpoint (``encoder_from``)
    predictor: TrainResult
    decoder: TrainResult | None
    model_dir: Path  # exported checkpoint (no trainer state)
    probe: ProbeReport  # R^2 on held-out episodes
    collapse: CollapseStats  # of held-out frame latents
    seconds: dict[str, float]  # wall time per stage


def load_encoder(model: JepaWorldModel, path: str | Path, world: str = "") -> None:
    """Copy the trained encoder of the JEPA checkpoint at ``path`` into ``model`` (same encoder config); an
    encoder trained on another world than ``world`` is allowed (transfer), and said."""
    from gedanken.models import load_checkpoint

    src = load_checkpoint(path)
    if not isinstance(src, JepaWorldModel):
        raise ValueError(
            f"{path} is a {getattr(src, 'family', type(src).__name__)} checkpoint, not a JEPA one"
        )
    theirs, ours = config_to_json(src.cfg.encoder), config_to_json(model.cfg.encoder)
    diff = {k: (theirs.get(k), v) for k, v in ours.items() if theirs.get(k) != v}
    if diff:
        shown = ", ".join(f"{k}: {a} there, {b} here" for k, (a, b) in diff.items())
        raise ValueError(f"the encoder of {path} is configured differently from this recipe's ({shown})")
    model.encoder.load_state_dict(src.encoder.state_dict())
    trained = src.card.world if src.card is not None else ""
    if world and trained and trained != world:
        log.warning("the encoder of %s was trained on %s; this run's data is %s", path, trained, world)


def train_jepa(
    recipe: JepaRecipe,
    data_path: str | Path,
    out: str | Path,
    *,
    device: str = "auto",
    resume: bool = True,
    progress: bool = True,
    seed: int = 0,
    encoder_from: str | Path | None = None,
    more_data: tuple[str | Path, ...] = (),
) -> JepaTrainResult:
    """Run every stage on the dataset at ``data_path``; checkpoints under ``out``.

    ``encoder_from``: a JEPA checkpoint whose trained encoder is used as is (stage 1 is skipped; its encoder
    config must equal this recipe's), e.g. to retrain only the predictor. ``more_data``: datasets appended
    to ``data_path``'s episodes (the held-out episodes are the last ones, so they come from the last dataset).
    """
    out = Path(out)
    data = load_data(data_path, *more_data)
    cfg = fit_config_to_data(recipe.model, data)
    train_idx, held_idx = split_episodes(len(data.frames), recipe.holdout)
    torch.manual_seed(seed)
    model = JepaWorldModel(cfg)
    seconds: dict[str, float] = {}
    enc = cfg.encoder

    def stage_cfg(tc: TrainConfig, name: str) -> TrainConfig:
        return replace(
            tc,
            out_dir=str(out / name),
            device=device,
            resume=resume,
            progress=progress and tc.progress,
            seed=seed,
        )

    def held_collapse(m: JepaWorldModel) -> dict[str, float]:
        z = torch.cat(encode_all(m, [data.frames[i] for i in held_idx]))
        st = collapse_stats(z)
        return {"z_std": st.mean_std, "effective_rank": st.effective_rank}

    # ------------------------------------------------------------------------------ stage 1: encoder
    t0 = time.perf_counter()
    card = ModelCard(
        name=f"jepa-{data.world}",
        family="jepa",
        world=data.world,
        dataset="+".join(str(p) for p in (data_path, *more_data)),
        preset=recipe.name,
    )
    enc_res: TrainResult | None = None
    if encoder_from is not None:
        load_encoder(model, encoder_from, data.world)
    else:
        ec = stage_cfg(recipe.encoder_train, "encoder")
        model.set_stage(Stage.ENCODER)
        model.ema_total_steps = ec.steps
        enc_res = fit(
            model,
            clip_batches(data, train_idx, ec.batch_size, enc.clip_frames, seed),
            ec,
            evaluate=held_collapse,
            card=card,
            family="jepa",
            model_config=cfg,
        )  # type: ignore[arg-type]
    seconds["encoder"] = time.perf_counter() - t0

    # ------------------------------------------------------------------------------ stage 2: probe
    # Fitted on the frozen encoder's latents before the predictor: the predictor's probe-metric term
    # (PredictorConfig.probe_weight) needs it, and it does not depend on the predictor.
    t0 = time.perf_counter()
    lat = encode_all(model, data.frames)
    seconds["encode"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    if data.states is None:
        raise ValueError(
            "the dataset has no object states; the probe (and the audit's state metrics) need them"
        )
    z_tr = torch.cat([lat[i] for i in train_idx])
    s_tr = torch.cat([data.states[i] for i in train_idx])
    model.probe.fit(z_tr.to(model.device), s_tr.to(model.device), cfg.probe_ridge)
    model.probe_metric = model.probe.metric(s_tr.to(model.device))
    z_ho = torch.cat([lat[i] for i in held_idx]).to(model.device)
    s_ho = torch.cat([data.states[i] for i in held_idx]).to(model.device)
    with torch.no_grad():
        raw = ((z_ho - model.probe.mean) / model.probe.std) @ model.probe.weight + model.probe.bias
    report = probe_report(raw.view(s_ho.shape).cpu(), s_ho.cpu())
    collapse = collapse_stats(z_ho.cpu())
    seconds["probe"] = time.perf_counter() - t0
    log.info(
        "probe R^2 on held-out episodes: position %.3f velocity %.3f", report.position_r2, report.velocity_r2
    )

    # ------------------------------------------------------------------------------ stage 3: predictor
    t0 = time.perf_counter()
    pc = stage_cfg(recipe.predictor_train, "predictor")
    model.set_stage(Stage.PREDICTOR)
    pred_res = fit(
        model,
        latent_batches(lat, data, train_idx, pc.batch_size, recipe.window, seed),
        pc,
        evaluate=lambda m: rollout_error(m, lat, data, held_idx),  # type: ignore[arg-type]
        card=card,
        family="jepa",
        model_config=cfg,
    )
    seconds["predictor"] = time.perf_counter() - t0

    # ------------------------------------------------------------------------------ stage 4: decoder
    dec_res = None
    if recipe.decoder_train is not None:
        t0 = time.perf_counter()
        dc = stage_cfg(recipe.decoder_train, "decoder")
        model.set_stage(Stage.DECODER)
        dec_res = fit(
            model,
            latent_batches(lat, data, train_idx, dc.batch_size, 4, seed, with_frames=True),
            dc,
            card=card,
            family="jepa",
            model_config=cfg,
        )
        model.decoder.fitted.fill_(True)
        seconds["decoder"] = time.perf_counter() - t0

    model.eval().requires_grad_(False)
    final = dec_res or pred_res
    notes = (
        f"probe R2 pos {report.position_r2:.3f} vel {report.velocity_r2:.3f} (held-out); "
        f"{enc.anti_collapse.value} encoder, erank {collapse.effective_rank:.1f}/{collapse.dims}"
    )
    card = replace(
        final.card,
        steps=(enc_res.step if enc_res else 0) + pred_res.step + (dec_res.step if dec_res else 0),
        train_seconds=round(sum(seconds.values()), 1),
        notes=notes,
    )
    model_dir = save_checkpoint(
        out / "model", model.cpu(), family="jepa", model_config=cfg, card=card, step=card.steps
    )
    (out / "report.json").write_text(
        json.dumps(
            {
                "recipe": recipe.name,
                "world": data.world,
                "episodes": {"train": len(train_idx), "heldout": len(held_idx)},
                "probe_heldout": report.to_json(),
                "collapse_heldout": config_to_json(collapse),
                "rollout_heldout": rollout_error(model, lat, data, held_idx),
                "seconds": seconds,
                "model_config": config_to_json(cfg),
            },
            indent=1,
        )
    )
    return JepaTrainResult(enc_res, pred_res, dec_res, model_dir, report, collapse, seconds)


__all__ = [
    "RECIPES",
    "JepaData",
    "JepaRecipe",
    "JepaTrainResult",
    "default",
    "load_data",
    "tiny",
    "train_jepa",
]

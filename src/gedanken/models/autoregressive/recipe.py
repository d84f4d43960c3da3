"""Training recipe: tokenizer, latent action model, dynamics (all on frames alone), then action post-training.

``train_autoregressive(recipe, data, out)`` reads any recorded dataset (built-in worlds or Gymnasium envs,
with or without actions) and trains each stage with the shared trainer into ``<out>/<stage>/last`` (every
stage resumes exactly). Frames are tokenized and latent actions inferred once, after their stages, so the
dynamics trains on cached tokens. When the dataset has actions, at most ``recipe.labelled_steps`` of them
are used: to fit the latent <-> real action map and to train the adapter. The final model is exported
without trainer state to ``<out>/model``, a checkpoint :func:`gedanken.models.load_checkpoint` opens.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from gedanken.data.combine import read_episodes
from gedanken.models import source_name
from gedanken.models.autoregressive import config as presets
from gedanken.models.autoregressive.batches import clip_batches, contact_weights, token_batches
from gedanken.models.autoregressive.config import ActionMode, AutoregressiveConfig, Stage
from gedanken.models.autoregressive.context_cache import encode_all, encoded_episodes, projected_context
from gedanken.models.autoregressive.decoder import decoder_stage
from gedanken.models.autoregressive.model import AutoregressiveWorldModel
from gedanken.models.autoregressive.posttrain import (
    ActionMapEval,
    evaluate_action_map,
    fit_action_map,
    init_adapter_from_map,
    labelled_segments,
)
from gedanken.models.breach import breach_context, check_breach_data, check_breach_settings
from gedanken.models.checkpoint import read_checkpoint, save_checkpoint
from gedanken.models.protocol import ModelCard
from gedanken.tokenizers.discrete import psnr
from gedanken.tokenizers.fsq import codebook_usage
from gedanken.train.decoder_tune import DecoderTuneConfig
from gedanken.train.trainer import TrainConfig, TrainResult, fit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AutoregressiveRecipe:
    """A model preset plus how to train each stage (and how much data to collect when there is none)."""

    name: str  # preset name, recorded in the model card
    model: AutoregressiveConfig  # sizes; frame size and action space are filled in from the data
    tokenizer_train: TrainConfig  # stage 1; batch_size counts frames
    lam_train: TrainConfig  # stage 2; batch_size counts 3-frame clips
    dynamics_train: TrainConfig  # stage 3; batch_size counts windows of ``model.dynamics.window`` frames
    adapter_train: TrainConfig  # stage 4 (post-training); batch_size counts labelled windows
    labelled_steps: int = 100  # labelled transitions (real actions) post-training may use
    labelled_segment: int = 26  # frames per labelled segment (one segment from the start of each episode)
    episodes: int = 200  # episodes to collect when the dataset does not exist yet
    episode_steps: int = 64  # steps per collected episode
    holdout: float = 0.1  # share of episodes (at least 1) kept out of training, for evaluation
    # share of the dynamics' training frames whose unmasked tokens are the frame as the sampler's keep_area
    # projection hands it back (AutoregressiveWorldModel.projected_tokens); needs model.sampler.keep_area > 0
    projected_context: float = 0.0
    # share of the dynamics' training windows whose past, from a random frame on, the model rolls out itself
    # with its sampler, the last frame (true) the only target: scheduled sampling against drift (own_context.py)
    rollout_context: float = 0.0
    # at most this many frames of such a past are the model's own (0: up to window - 2)
    rollout_frames: int = 0
    # dynamics loss weight (a multiplier) on the tokens that cover an object within contact_band px of another
    # object, in the target frame or the one before (object_weights.contact_object_weights; palette data; 1 = off)
    contact_weight: float = 1.0
    contact_band: int = 3
    # share of the dynamics' training windows redrawn from the recorded states with objects at a contact pressed
    # up to breach_px world units into what they touch, shown as the past of a true last frame (models/breach.py,
    # batches._pressed; built-in worlds' recordings; 0 = off); breach_walls_only presses into the walls only
    breach_forcing: float = 0.0
    breach_px: float = 1.5
    breach_walls_only: bool = False
    # stage 5, the decoder fine-tuned on the dynamics' one-step predictions (None: off;
    # models/autoregressive/decoder.decoder_train_config); what it trains on:
    decoder_train: TrainConfig | None = None
    decoder_tune: DecoderTuneConfig = field(default_factory=lambda: DecoderTuneConfig(foreground_weight=16.0))

    def __post_init__(self) -> None:
        if not 0.0 <= self.projected_context <= 1.0:
            raise ValueError(f"projected_context must be in [0, 1], got {self.projected_context}")
        if not 0.0 <= self.rollout_context <= 1.0:
            raise ValueError(f"rollout_context must be in [0, 1], got {self.rollout_context}")
        if self.rollout_frames < 0:
            raise ValueError(f"rollout_frames must be >= 0, got {self.rollout_frames}")
        if self.projected_context > 0 and self.model.sampler.keep_area <= 0:
            raise ValueError(
                "projected_context trains on the sampler's projection: set model.sampler.keep_area"
            )
        if not (1 <= self.contact_weight < math.inf) or self.contact_band < 1:
            raise ValueError(
                f"need contact_weight >= 1 and contact_band >= 1, got {self.contact_weight}, {self.contact_band}"
            )
        check_breach_settings(self.breach_forcing, self.breach_px, self.breach_walls_only)


def tiny() -> AutoregressiveRecipe:
    """Seconds on a laptop CPU: for tests and smoke runs."""
    tc = TrainConfig(steps=4, batch_size=4, lr=2e-3, warmup=1, log_every=2, progress=False)
    return AutoregressiveRecipe(
        name="tiny",
        model=presets.tiny(),
        tokenizer_train=tc,
        lam_train=tc,
        dynamics_train=tc,
        adapter_train=tc,
        labelled_steps=12,
        labelled_segment=5,
        episodes=4,
        episode_steps=12,
        holdout=0.25,
    )


def default() -> AutoregressiveRecipe:
    """The shipped checkpoints: about 20 minutes on 2 CPU cores (one torch thread: two thrash on a shared
    machine). Tokenizer and LAM train on 32 frames / clips per step, as the measured runs in
    docs/history/autoregressive.md did."""
    common = {"log_every": 50, "ckpt_every": 200, "num_threads": 1}
    return AutoregressiveRecipe(
        name="default",
        model=presets.default(),
        tokenizer_train=TrainConfig(
            steps=2000, batch_size=32, lr=2e-3, warmup=50, weight_decay=0.0, **common
        ),
        lam_train=TrainConfig(steps=800, batch_size=32, lr=2e-3, warmup=50, weight_decay=0.0, **common),
        dynamics_train=TrainConfig(steps=3000, batch_size=8, lr=1e-3, warmup=100, **common),
        adapter_train=TrainConfig(steps=100, batch_size=8, lr=3e-3, warmup=10, **common),
    )


RECIPES: dict[str, Callable[[], AutoregressiveRecipe]] = {"tiny": tiny, "default": default}


@dataclass
class EpisodeData:
    """A recorded dataset held in memory, per episode."""

    frames: list[torch.Tensor]  # (T, H, W, 3) uint8
    actions: list[torch.Tensor]  # (T, A) float32
    world: str
    action_dim: int
    action_classes: int  # n for discrete action spaces, 0 otherwise
    has_actions: bool  # False for action-free video ("none" action space)
    palette: tuple[tuple[int, int, int], ...] = ()  # the world's colours (built-in worlds), for the judge
    states: list[torch.Tensor] | None = None  # (T, K, F) per episode when recorded from a built-in world
    shapes: list[tuple[str, ...]] = field(default_factory=list)  # per episode and slot
    kinds: list[tuple[str, ...]] = field(default_factory=list)


def load_episodes(path: str | Path, *more: str | Path) -> EpisodeData:
    """Read every episode of a dataset into memory, then those of ``more`` datasets of the same world,
    frame size, action space and state slots (:func:`gedanken.data.combine.read_episodes`)."""
    eps = read_episodes(path, more)
    spec = eps[0].meta.action_space
    return EpisodeData(
        frames=[torch.from_numpy(e.frames) for e in eps],
        actions=[torch.from_numpy(e.actions) for e in eps],
        world=eps[0].meta.world,
        action_dim=max(spec.dim, 1),
        action_classes=spec.n if spec.kind == "discrete" else 0,
        has_actions=spec.kind != "none",
        palette=tuple(eps[0].meta.palette),
        states=[torch.from_numpy(e.states) for e in eps] if all(e.states is not None for e in eps) else None,  # type: ignore[arg-type]
        shapes=[tuple(e.meta.shapes) for e in eps],
        kinds=[tuple(e.meta.kinds) for e in eps],
    )


def fit_config_to_data(cfg: AutoregressiveConfig, data: EpisodeData) -> AutoregressiveConfig:
    h, w = data.frames[0].shape[1:3]
    return replace(
        cfg,
        height=int(h),
        width=int(w),
        action_dim=data.action_dim,
        action_classes=data.action_classes,
        world=data.world,
        action_mode=ActionMode.ADAPTER if data.has_actions else ActionMode.LATENT,
        palette=data.palette,
    )


def split_episodes(n: int, holdout: float) -> tuple[list[int], list[int]]:
    """Train / held-out episode indices (the held-out ones are the last ``holdout`` share, at least one)."""
    k = max(1, int(round(n * holdout))) if n > 1 else 0
    return list(range(n - k)), list(range(n - k, n)) or list(range(n))


@dataclass
class ARTrainResult:
    """What :func:`train_autoregressive` did and measured."""

    model_dir: Path  # exported checkpoint (no trainer state)
    stages: dict[str, TrainResult]  # per stage name
    tokenizer_psnr: float  # reconstruction PSNR (dB) on held-out frames
    codebook: dict[str, float]  # usage share and perplexity of the tokens of held-out frames
    fidelity: dict[str, float]  # the judge on held-out reconstructions (empty without a palette)
    labelled_steps: int  # labelled transitions used in post-training (0 when the data has no actions)
    action_map: ActionMapEval | None  # latent -> real accuracy on held-out episodes
    seconds: float  # wall time of this call
    extra: dict[str, float] = field(default_factory=dict)


@torch.no_grad()
def tokenizer_metrics(
    model: AutoregressiveWorldModel,
    frames: list[torch.Tensor],
    max_frames: int = 512,
    palette: tuple[tuple[int, int, int], ...] = (),
) -> tuple[float, dict[str, float], dict[str, float]]:
    """Reconstruction PSNR (dB), codebook usage and (given the world's ``palette``) the judge's
    :func:`~gedanken.audit.fidelity.reconstruction_fidelity` over up to ``max_frames`` frames, taken evenly
    from every episode."""
    model.eval()
    f = torch.cat(frames)
    f = f[torch.linspace(0, len(f) - 1, min(max_frames, len(f))).long()].to(model.device)
    tok = model.tokenizer.encode(f)
    rec = model.tokenizer.decode(tok)
    fid: dict[str, float] = {}
    if palette:
        from gedanken.audit.fidelity import reconstruction_fidelity

        fid = reconstruction_fidelity(f.cpu().numpy(), rec.cpu().numpy(), palette)
    return float(psnr(rec, f)), codebook_usage(tok, model.tokenizer.vocab_size), fid


def _initial_model(init: str | Path, cfg: AutoregressiveConfig) -> AutoregressiveWorldModel:
    """The autoregressive checkpoint at ``init``, checked against the data (``cfg`` fitted to it); the palette is
    filled in when it predates recorded palettes; its sampler stays, with ``cfg``'s ``keep_area``,
    ``action_guidance`` and ``keep_unchanged`` when they are set (before session 31 a ``keep_area`` replaced the
    whole sampler, steps and ``keep_unchanged`` included). A factorized head is grown into a chained one
    (``heads.ChainHead.from_factor``) when ``cfg`` asks for it."""
    from gedanken.models import load_initial

    model = load_initial(init, AutoregressiveWorldModel, cfg)
    sampler = model.cfg.sampler  # the checkpoint's, with only the settings the recipe sets changed
    if cfg.sampler.keep_area > 0:
        sampler = replace(sampler, keep_area=cfg.sampler.keep_area)
    if cfg.sampler.action_guidance != 1.0:
        sampler = replace(sampler, action_guidance=cfg.sampler.action_guidance)
    if cfg.sampler.keep_unchanged:
        sampler = replace(sampler, keep_unchanged=True)
    if cfg.dynamics.chained and not model.dynamics.cfg.chained:  # grown at identity, then trained
        model.dynamics.chain_head()
    model.cfg = replace(
        model.cfg,
        palette=model.cfg.palette or cfg.palette,
        action_mode=cfg.action_mode,
        sampler=sampler,
        dynamics=replace(
            model.cfg.dynamics, action_dropout=cfg.dynamics.action_dropout, chained=model.dynamics.cfg.chained
        ),
    )
    model.set_sampler(model.cfg.sampler)
    model.action_mode = model.cfg.action_mode
    return model.train()


def _dynamics_and_posttrain(
    model: AutoregressiveWorldModel,
    ep: EpisodeData,
    recipe: AutoregressiveRecipe,
    train_idx: list[int],
    held: list[int],
    run: Callable[[Stage, TrainConfig, Callable], None],
    use_labels: bool,
    seed: int,
) -> tuple[int, ActionMapEval | None]:
    """Stages 3 and 4: the dynamics on the episodes' tokens and latent actions, then (with action labels) the
    latent <-> real map and the adapter. Returns the labelled steps used and the map's held-out evaluation."""
    dt, at, cfg = recipe.dynamics_train, recipe.adapter_train, model.cfg
    tokens, latents, _ = encoded_episodes(model, ep.frames, dt.progress)
    shown = None
    if recipe.projected_context > 0:
        shown, _ = projected_context(
            model, [ep.frames[i] for i in train_idx], [tokens[i] for i in train_idx], dt.progress
        )
        differ = [(a != tokens[i]).flatten() for a, i in zip(shown, train_idx, strict=True)]
        moved = float(torch.cat(differ).float().mean())
        log.info("projected context: %.3f of the tokens differ from the frames' own", moved)
    weights = contact_weights(recipe, ep, tokens, train_idx, dt.progress)
    redraw = breach_context(
        recipe.breach_forcing,
        recipe.breach_px,
        None if ep.states is None else [ep.states[i] for i in train_idx],
        [ep.shapes[i] for i in train_idx] if ep.shapes else [],
        [ep.kinds[i] for i in train_idx] if ep.kinds else [],
        cfg.palette,
        lambda f: model.tokenizer.encode(f.to(model.device)).flatten(-2),
        seed + 5,
        (cfg.height, cfg.width),
        recipe.breach_walls_only,
    )
    window = cfg.dynamics.window
    model.rollout_context, model.rollout_frames = recipe.rollout_context, recipe.rollout_frames
    try:
        run(
            Stage.DYNAMICS,
            dt,
            token_batches(
                [tokens[i] for i in train_idx],
                [latents[i] for i in train_idx],
                None,
                dt.batch_size,
                window,
                seed + 2,
                shown,
                recipe.projected_context,
                weights,
                redraw,
            ),
        )
    finally:  # a training setting: the model rolls out, and trains its adapter, without it
        model.rollout_context, model.rollout_frames = 0.0, 0
    used, amap = 0, None
    if ep.has_actions and use_labels:
        seg_f, seg_a = labelled_segments(
            [ep.frames[i] for i in train_idx],
            [ep.actions[i] for i in train_idx],
            recipe.labelled_steps,
            recipe.labelled_segment,
        )
        used = sum(len(a) - 1 for a in seg_a)
        model.eval()
        fit_action_map(model, seg_f, seg_a)
        init_adapter_from_map(model)
        amap = evaluate_action_map(model, [ep.frames[i] for i in held], [ep.actions[i] for i in held])
        if (
            amap.accuracy == amap.accuracy
        ):  # discrete actions; continuous ones have no accuracy (NaN), an error
            log.info(
                "latent -> real action map: held-out accuracy %.3f over %d steps", amap.accuracy, amap.steps
            )
        else:
            log.info(
                "latent -> real action map: held-out mean squared error %.4f over %d steps",
                amap.mse,
                amap.steps,
            )
        if cfg.dynamics.unconditional:  # the dynamics never reads an action: nothing for an adapter to learn
            log.info("unconditional dynamics: no adapter to train")
            return used, amap
        seg_tok, seg_lat = encode_all(model, seg_f)
        length = min(window, min(len(t) for t in seg_tok))
        run(Stage.ADAPTER, at, token_batches(seg_tok, seg_lat, seg_a, at.batch_size, length, seed + 3))
    return used, amap


def train_autoregressive(
    recipe: AutoregressiveRecipe,
    data: str | Path | EpisodeData,
    out: str | Path,
    *,
    device: str = "auto",
    resume: bool = True,
    seed: int = 0,
    use_labels: bool = True,
    more_data: tuple[str | Path, ...] = (),
    init: str | Path | None = None,
    train_dynamics: bool = True,
) -> ARTrainResult:
    """Train every stage on ``data`` into ``out``; see the module docstring (``use_labels=False``: no post-training,
    the model is driven by latent actions). ``more_data``: datasets whose episodes follow ``data``'s (a path).

    With ``init`` (an autoregressive checkpoint trained on data of the same shape) its tokenizer and latent
    action model are kept, its dynamics trains on (``recipe.dynamics_train``, a fresh schedule) and
    post-training runs again; the checkpoint's sampler stays, with the recipe's ``keep_area`` and
    ``action_guidance`` when set (the dynamics trains with the recipe's ``action_dropout``).

    ``recipe.decoder_train`` adds a last stage that fine-tunes the tokenizer's decoder on the dynamics' one-step
    predictions (:mod:`gedanken.models.autoregressive.decoder`); ``train_dynamics=False`` (with ``init`` only)
    skips the dynamics and post-training, to fine-tune a trained model's decoder alone."""
    t0 = time.perf_counter()
    out = Path(out)
    if not train_dynamics and init is None:
        raise ValueError("train_dynamics=False fine-tunes a trained model's decoder: it needs init")
    if more_data and isinstance(data, EpisodeData):
        raise ValueError("more_data needs data given as a dataset path, not episodes in memory")
    ep = data if isinstance(data, EpisodeData) else load_episodes(data, *more_data)
    if recipe.contact_weight > 1 and not ep.palette:  # refused before any stage runs, not after the first two
        raise ValueError("contact_weight reads objects as palette colours; this data is not flat-coloured")
    cfg = fit_config_to_data(recipe.model, ep)
    if recipe.breach_forcing > 0 and train_dynamics:  # likewise
        check_breach_data(ep.states, ep.shapes, ep.kinds, cfg.palette)
    if not use_labels:
        cfg = replace(cfg, action_mode=ActionMode.LATENT)
    torch.manual_seed(seed)
    if init is not None and not train_dynamics:  # decoder only: the checkpoint as it is, sampler included
        from gedanken.models import load_initial

        model = load_initial(init, AutoregressiveWorldModel, cfg)
        cfg = model.cfg
    elif init is not None:
        model = _initial_model(init, cfg)
        cfg = model.cfg
    else:
        model = AutoregressiveWorldModel(cfg)
    prior = model.card if init is not None else None  # the loaded checkpoint's card: its history is kept
    train_idx, held = split_episodes(len(ep.frames), recipe.holdout)
    card = ModelCard(
        name=f"autoregressive-{ep.world}",
        family="autoregressive",
        world=ep.world,
        dataset="+".join(str(p) for p in (data, *more_data)) if not isinstance(data, EpisodeData) else "",
        preset=recipe.name,
    )
    stages: dict[str, TrainResult] = {}

    def run(stage: Stage, tc: TrainConfig, batches) -> None:  # noqa: ANN001
        model.set_stage(stage)
        tc = replace(tc, out_dir=str(out / stage.value), device=device, resume=resume, seed=seed)
        stages[stage.value] = fit(model, batches, tc, card=card, family="autoregressive", model_config=cfg)
        done = stages[stage.value]
        if done.history:
            log.info("stage %s: %d steps, last loss %.4f", stage.value, done.step, done.history[-1]["loss"])
        else:  # resumed from a finished checkpoint: nothing was trained, so there is no loss to show
            log.info("stage %s: %d steps, already trained", stage.value, done.step)

    tt, lt = recipe.tokenizer_train, recipe.lam_train
    if init is None:
        run(Stage.TOKENIZER, tt, clip_batches(ep.frames, train_idx, tt.batch_size, 1, seed))
        run(Stage.LAM, lt, clip_batches(ep.frames, train_idx, lt.batch_size, 3, seed + 1))
    tok_psnr, usage, fid = tokenizer_metrics(model, [ep.frames[i] for i in held], palette=ep.palette)
    log.info("tokenizer: held-out PSNR %.2f dB, codebook usage %.3f, %s", tok_psnr, usage["usage"], fid)
    used, amap = 0, None
    if train_dynamics:
        used, amap = _dynamics_and_posttrain(model, ep, recipe, train_idx, held, run, use_labels, seed)
    note = ""
    if recipe.decoder_train is not None:
        eps = np.random.default_rng([seed, 5]).choice(
            train_idx, size=min(recipe.decoder_tune.episodes, len(train_idx)), replace=False
        )
        held_frames = torch.cat([ep.frames[i] for i in held])[:512]
        dtc = replace(
            recipe.decoder_train, out_dir=str(out / "decoder"), device=device, resume=resume, seed=seed
        )
        stages["decoder"], note = decoder_stage(
            model,
            [ep.frames[i] for i in eps],
            [ep.actions[i] for i in eps],
            held_frames,
            recipe.decoder_tune,
            dtc,
            ModelCard(name=f"decoder-{ep.world}", family="tokenizer", world=ep.world, preset=recipe.name),
            seed,
        )
    model.eval()
    step = 0
    if train_dynamics:
        # trained on from a checkpoint: its card's steps, seconds and notes stay, this run's are added
        final_card = replace(
            card,
            steps=sum(r.step for r in stages.values()),
            train_seconds=round(sum(r.seconds for r in stages.values()), 1),
            params=sum(p.numel() for p in model.parameters()),
            notes=f"labelled steps {used}; tokenizer PSNR {tok_psnr:.2f} dB"
            + (f"; projected context {recipe.projected_context}" if recipe.projected_context > 0 else "")
            + (f"; contact weight {recipe.contact_weight:g}" if recipe.contact_weight > 1 else "")
            + ("; chained digit head" if cfg.dynamics.chained else "")
            + ("; unconditional dynamics" if cfg.dynamics.unconditional else "")
            + (
                f"; rollout context {recipe.rollout_context:g}"
                + (f" (own frames at most {recipe.rollout_frames})" if recipe.rollout_frames else "")
                if recipe.rollout_context > 0
                else ""
            )
            + (
                f"; breach forcing {recipe.breach_forcing:g}, breach_px {recipe.breach_px:g}"
                + (", walls only" if recipe.breach_walls_only else "")
                if recipe.breach_forcing > 0
                else ""
            )
            + note,
        ).continued_from(prior, f"then dynamics trained on from {source_name(init)}" if init else "")
    else:  # decoder only: the checkpoint's card and step, with the stage noted
        assert init is not None
        before = read_checkpoint(init)
        final_card, step = replace(before.card, notes=before.card.notes + note), before.step
    model_dir = save_checkpoint(
        out / "model", model, family="autoregressive", model_config=cfg, card=final_card, step=step
    )
    return ARTrainResult(
        model_dir=model_dir,
        stages=stages,
        tokenizer_psnr=tok_psnr,
        codebook=usage,
        fidelity=fid,
        labelled_steps=used,
        action_map=amap,
        seconds=time.perf_counter() - t0,
    )

"""Training recipe: tokenizer first, then the DiT on cached latents with the tokenizer frozen.

``train_diffusion(recipe, data, out)`` reads a recorded dataset (any: built-in worlds or Gymnasium envs),
fits the autoencoder with the shared trainer, calibrates its latent scale, encodes every frame once, embeds
every caption once, and fits the DiT (+ heads) on random windows of those latents. Both stages resume
exactly (``<out>/tokenizer/last``, ``<out>/dit/last``); the final model is exported without trainer state to
``<out>/model``, a checkpoint that :func:`gedanken.models.load_checkpoint` opens.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from gedanken.audit.fidelity import reconstruction_fidelity
from gedanken.models import source_name
from gedanken.models.breach import breach_context
from gedanken.models.checkpoint import read_checkpoint, save_checkpoint
from gedanken.models.diffusion import config as presets
from gedanken.models.diffusion.config import DiffusionConfig
from gedanken.models.diffusion.data import (
    DiffusionData,
    fit_config_to_data,
    frame_batches,
    load_data,
    object_weights,
    split_episodes,
    window_batches,
)
from gedanken.models.diffusion.decoder import DecoderTuneConfig, decoder_stage
from gedanken.models.diffusion.model import DiffusionWorldModel
from gedanken.models.protocol import ModelCard
from gedanken.train.decoder_tune import decoder_train_config
from gedanken.train.trainer import TrainConfig, TrainResult, fit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DiffusionRecipe:
    """A model preset plus how to train it (and how much data to collect when there is none)."""

    name: str  # preset name, recorded in the model card
    model: DiffusionConfig  # sizes; frame size, actions and state slots are filled in from the data
    tokenizer_train: TrainConfig  # stage 1 (autoencoder); batch_size counts frames
    dit_train: TrainConfig  # stage 2 (DiT + heads); batch_size counts windows
    episodes: int = 200  # episodes to collect when the dataset does not exist yet
    episode_steps: int = 64  # steps per collected episode
    holdout: float = 0.05  # share of episodes (at least 1) kept out of training for the quick evals
    tokenizer_finetune_steps: int = 0  # with init: fine-tune its tokenizer this many steps before the DiT
    tokenizer_finetune_lr: float = 3e-4  # peak learning rate of that fine-tune
    # stage 3, the decoder fine-tuned on the DiT's one-step predictions (None: off)
    decoder_train: TrainConfig | None = None
    decoder_tune: DecoderTuneConfig = field(default_factory=DecoderTuneConfig)  # what stage 3 trains on


def tiny() -> DiffusionRecipe:
    """Seconds on a laptop CPU: for tests and smoke runs."""
    return DiffusionRecipe(
        name="tiny",
        model=presets.tiny(),
        tokenizer_train=TrainConfig(steps=6, batch_size=8, lr=2e-3, warmup=1, log_every=3, progress=False),
        dit_train=TrainConfig(steps=6, batch_size=4, lr=1e-3, warmup=1, log_every=3, progress=False),
        episodes=4,
        episode_steps=12,
    )


def default() -> DiffusionRecipe:
    """The shipped checkpoints: about 20 minutes on 2 CPU cores."""
    return DiffusionRecipe(
        name="default",
        model=presets.default(),
        tokenizer_train=TrainConfig(
            steps=1000, batch_size=32, lr=2e-3, warmup=30, log_every=50, ckpt_every=200, num_threads=2
        ),
        dit_train=TrainConfig(
            steps=1500,
            batch_size=16,
            lr=6e-4,
            warmup=100,
            log_every=50,
            eval_every=500,
            ckpt_every=250,
            num_threads=2,
        ),
        episodes=240,
        episode_steps=64,
    )


RECIPES = {"tiny": tiny, "default": default}


def decoder_preset(steps: int, threads: int = 0, progress: bool = True) -> TrainConfig:
    """The decoder fine-tune's training config (stage 3): ``steps`` at a peak learning rate of 1e-4."""
    return decoder_train_config(steps, 1e-4, threads, progress)


@dataclass
class DiffusionTrainResult:
    tokenizer: TrainResult | None  # None when the run started from ``init`` (its tokenizer is kept)
    dit: TrainResult | None  # None when an ``init`` run skipped the DiT stage (``train_dit=False``)
    decoder: TrainResult | None  # stage 3, None when off
    model_dir: Path  # exported checkpoint (no trainer state)
    tokenizer_psnr: float  # reconstruction PSNR (dB) on held-out frames
    tokenizer_fidelity: dict[str, float]  # the judge on held-out reconstructions (empty without a palette)


def _quick_eval(
    model: DiffusionWorldModel, data: DiffusionData, held: list[int], windows: int = 4, horizon: int = 6
):
    ctx_len = min(model.cfg.dit.context, 4)
    eps = [i for i in held if len(data.frames[i]) >= ctx_len + horizon][:windows]
    if not eps:
        return dict[str, float]()
    frames = torch.stack([data.frames[i][: ctx_len + horizon] for i in eps])
    actions = torch.stack([data.actions[i][: ctx_len + horizon] for i in eps])
    ctx = model.observe(frames[:, :ctx_len], actions[:, :ctx_len], [data.captions[i] for i in eps])
    roll = model.rollout(ctx, actions[:, ctx_len - 1 : ctx_len - 1 + horizon], seed=0)
    assert roll.frames is not None
    mse = (
        (roll.frames.cpu().float() - frames[:, ctx_len:].float())
        .pow(2)
        .mean(dim=(0, 2, 3, 4))
        .clamp_min(1e-6)
    )
    psnr = 10 * torch.log10(255.0**2 / mse)
    return {"psnr_h1": float(psnr[0]), f"psnr_h{horizon}": float(psnr[-1])}


def _stage(
    tc: TrainConfig, out_dir: Path, device: str, resume: bool, progress: bool, seed: int
) -> TrainConfig:
    """A stage's training config with this run's directory, device, resume, progress and seed."""
    return replace(
        tc, out_dir=str(out_dir), device=device, resume=resume, progress=progress and tc.progress, seed=seed
    )


def _initial_model(init: str | Path, cfg: DiffusionConfig) -> DiffusionWorldModel:
    """The diffusion checkpoint at ``init``, checked against the data's frame size, actions and world."""
    from gedanken.models import load_initial

    model = load_initial(init, DiffusionWorldModel, cfg)
    edge, have_edge = cfg.dit.edge_embedding, model.cfg.dit.edge_embedding
    if edge and have_edge and edge != have_edge:
        raise ValueError(f"--init {init}: its DiT embeds {have_edge} border levels, the recipe {edge}")
    if edge and not have_edge:  # added at zero: the model computes what it did
        model.dit.add_edge_embedding(edge)
    if cfg.dit.prev_frames > model.cfg.dit.prev_frames:  # more past frames: added at zero (fewer: kept)
        model.dit.add_older_frames(cfg.dit.prev_frames)
    if cfg.dit.depth > model.cfg.dit.depth:  # more blocks: added last, gates at zero (fewer: kept)
        model.dit.add_blocks(cfg.dit.depth)
    model.cfg = replace(model.cfg, dit=model.dit.cfg)
    return model.train()


def train_diffusion(
    recipe: DiffusionRecipe,
    data_path: str | Path,
    out: str | Path,
    *,
    device: str = "auto",
    resume: bool = True,
    progress: bool = True,
    seed: int = 0,
    init: str | Path | None = None,
    more_data: tuple[str | Path, ...] = (),
    train_dit: bool = True,
) -> DiffusionTrainResult:
    """Run both stages on the dataset at ``data_path``; checkpoints under ``out``.

    With ``init`` (a diffusion checkpoint trained on data of the same shape) the run starts from its weights:
    its config, tokenizer, latent scale and head calibration are kept and only the DiT stage trains (a fresh
    warmup/cosine schedule of ``recipe.dit_train``), to train a shipped model longer or fine-tune it. The
    recipe's training knobs replace the checkpoint's: ``flow`` (all but its ``target``); a border embedding
    (``dit.edge_embedding``), more past frames (``dit.prev_frames``) or more blocks (``dit.depth``, appended
    with their gates at zero) than the checkpoint has are added at zero, fewer keep the checkpoint's. With
    ``recipe.tokenizer_finetune_steps`` the checkpoint's tokenizer is first trained on that many steps (its
    latent scale kept; the recipe's ``hard_weight``), and the DiT then trains on its new latents. ``more_data``:
    datasets whose episodes follow ``data_path``'s (the held-out episodes are the last ones, so they come from
    the last dataset). With ``recipe.decoder_train`` a third stage fine-tunes the decoder on the DiT's one-step
    predictions (:mod:`gedanken.models.diffusion.decoder`); ``train_dit=False`` (with ``init`` only) skips the
    DiT stage, to fine-tune a trained model's decoder alone.
    """
    if not train_dit and init is None:
        raise ValueError(
            "train_dit=False needs init: a model without a trained DiT has nothing to predict with"
        )
    out = Path(out)
    data = load_data(data_path, *more_data)
    dataset = "+".join(str(p) for p in (data_path, *more_data))  # on every stage's card: resume checks it
    cfg = fit_config_to_data(recipe.model, data)
    train_idx, held_idx = split_episodes(len(data.frames), recipe.holdout)
    torch.manual_seed(seed)
    if init is not None:
        model = _initial_model(init, cfg)
        model.set_flow(replace(cfg.flow, target=model.cfg.flow.target))  # the recipe's training knobs
        if not model.cfg.palette:  # a checkpoint from before palettes were recorded
            model.cfg = replace(model.cfg, palette=cfg.palette)
        cfg = model.cfg
    else:
        model = DiffusionWorldModel(cfg)
    tok = model.tokenizer
    weight_of = object_weights(cfg, data, tok.stride)  # checked before anything is written
    flow = cfg.flow
    context_of = breach_context(
        flow.breach_forcing, flow.breach_px, data.states, data.shapes, data.kinds, cfg.palette,
        lambda f: tok.encode(f.to(next(tok.parameters()).device)), seed, (cfg.height, cfg.width),
        flow.breach_walls_only,
    )  # fmt: skip
    held_frames = torch.cat([data.frames[i][:: max(1, len(data.frames[i]) // 8)] for i in held_idx])[None]
    tok_res = None
    tune = init is not None and recipe.tokenizer_finetune_steps > 0
    if init is None or tune:
        # ------------------------------------------------------------------------------ stage 1: tokenizer
        train = recipe.tokenizer_train
        if tune:  # the checkpoint's tokenizer, trained on with the recipe's losses; its latent scale is kept
            train = replace(train, steps=recipe.tokenizer_finetune_steps, lr=recipe.tokenizer_finetune_lr)
            tok.cfg = replace(tok.cfg, hard_weight=recipe.model.tokenizer.hard_weight)
            model.cfg = cfg = replace(cfg, tokenizer=tok.cfg)
            for p in tok.parameters():
                p.requires_grad_(True)
        tc = _stage(train, out / "tokenizer", device, resume, progress, seed)
        tok_res = fit(
            tok,
            frame_batches(data, train_idx, tc.batch_size, seed),
            tc,
            evaluate=lambda m: {"psnr": m.psnr(held_frames.to(next(m.parameters()).device))},  # type: ignore[attr-defined]
            card=ModelCard(
                name=f"tokenizer-{data.world}",
                family="tokenizer",
                world=data.world,
                dataset=dataset,
                preset=recipe.name,
            ),
            family="tokenizer",
            model_config=cfg.tokenizer,
        )
        if not tune:
            rng = np.random.default_rng(seed)
            sample = torch.stack(
                [data.frames[i][rng.integers(len(data.frames[i]))] for i in rng.choice(train_idx, 256)]
            )
            tok.calibrate(sample[None].to(next(tok.parameters()).device))
    dev = next(tok.parameters()).device
    with torch.no_grad():
        rec = tok.decode(tok.encode(held_frames.to(dev)), cfg.height, cfg.width).cpu()
    mse = (rec.float() - held_frames.float()).pow(2).mean().clamp_min(1e-10)
    psnr = float(10 * torch.log10(255.0**2 / mse))
    log.info("tokenizer: held-out reconstruction PSNR %.2f dB", psnr)
    fidelity: dict[str, float] = {}
    if data.palette:
        fidelity = reconstruction_fidelity(held_frames[0].numpy(), rec[0].numpy(), data.palette)
        log.info("tokenizer: judge on held-out reconstructions %s", fidelity)
    model.freeze_tokenizer()

    # ---------------------------------------------------------------------------------- stage 2: DiT
    dit_res = None
    if train_dit:
        with torch.no_grad():
            tok.eval()
            lat = [
                torch.cat([tok.encode(f[None, s : s + 64].to(dev))[0].cpu() for s in range(0, len(f), 64)])
                for f in data.frames
            ]
        if data.states is not None and init is None:
            model.heads.calibrate(torch.cat([data.states[i] for i in train_idx]))
        text: list[torch.Tensor | None] = [None] * len(data.frames)
        if model.text_encoder is not None and any(data.captions):
            emb = model.text_encoder.embed(data.captions)
            text = [emb[i] if data.captions[i] else None for i in range(len(data.captions))]
        dc = _stage(recipe.dit_train, out / "dit", device, resume, progress, seed)
        measured = f"tokenizer PSNR {psnr:.2f} dB on held-out frames" + "".join(
            f"; reconstruction {k} {v:.3g}"
            for k, v in fidelity.items()
            if k != "psnr" and v == v  # not NaN
        )
        card = ModelCard(
            name=f"diffusion-{data.world}",
            family="diffusion",
            world=data.world,
            dataset=dataset,
            preset=recipe.name,
            notes=measured + (f"; DiT trained on from {source_name(init)}" if init is not None else ""),
        )
        dit_res = fit(
            model,
            window_batches(
                lat, data, text, train_idx, dc.batch_size, cfg.window, seed, weight_of, context_of
            ),
            dc,
            evaluate=lambda m: _quick_eval(m, data, held_idx),  # type: ignore[arg-type]
            card=card,
            family="diffusion",
            model_config=cfg,
        )
        card, step = dit_res.card, dit_res.step
        if (
            init is not None
        ):  # trained on: the checkpoint's steps, seconds and notes stay, this run's are added
            # each knob's "off"
            on = {"size_weight": 1, "edge_weight": 1, "contact_weight": 1, "breach_forcing": 0}
            weights = [f"{k} {getattr(flow, k):g}" for k, off in on.items() if getattr(flow, k) > off]
            if flow.breach_forcing > 0:
                weights.append(
                    f"breach_px {flow.breach_px:g}" + (", walls only" if flow.breach_walls_only else "")
                )
            how = f"then the DiT trained {card.steps} steps more from {source_name(init)}" + (
                f" ({', '.join(weights)})" if weights else ""
            )
            # the tokenizer's figures again only when this run fine-tuned it (else the prior notes hold them)
            card = replace(card, notes=measured if tune else "").continued_from(
                read_checkpoint(init).card, how
            )
    else:  # the DiT as trained: its card (steps, seconds) and step
        assert init is not None
        before = read_checkpoint(init)
        card, step = before.card, before.step
    dec_res = None
    if recipe.decoder_train is not None:
        eps = np.random.default_rng([seed, 3]).choice(
            train_idx, size=min(recipe.decoder_tune.episodes, len(train_idx)), replace=False
        )
        dec_res, note = decoder_stage(
            model,
            [data.frames[i] for i in eps],
            [data.actions[i] for i in eps],
            held_frames,
            recipe.decoder_tune,
            _stage(recipe.decoder_train, out / "decoder", device, resume, progress, seed),
            ModelCard(
                name=f"decoder-{data.world}",
                family="tokenizer",
                world=data.world,
                dataset=dataset,
                preset=recipe.name,
            ),
            seed,
        )
        card = replace(card, notes=card.notes + note)
        cfg = model.cfg  # now with its display decoder
    model_dir = save_checkpoint(
        out / "model", model.cpu(), family="diffusion", model_config=cfg, card=card, step=step
    )
    return DiffusionTrainResult(
        tokenizer=tok_res,
        dit=dit_res,
        decoder=dec_res,
        model_dir=model_dir,
        tokenizer_psnr=psnr,
        tokenizer_fidelity=fidelity,
    )


__all__ = ["RECIPES", "DiffusionRecipe", "DiffusionTrainResult", "train_diffusion"]

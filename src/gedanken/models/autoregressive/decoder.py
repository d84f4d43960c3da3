"""Decoder fine-tuning on the dynamics' own predictions (an optional fifth training stage).

The discrete tokenizer's decoder learns to draw the tokens its encoder gives true frames. The tokens a MaskGIT
step predicts are a different mix: where the dynamics is unsure where a small object went, it commits tokens
that no true frame encodes to, and the decoder draws them as blurred blobs, smears or a faint second copy of
the object, which the audit's judge then counts as a duplicate (docs/history/autoregressive.md, "Session 21").

This stage keeps the encoder, the latent action model and the dynamics fixed and trains the decoder (patch
decoder and refine stage) on pairs (the model's one-step prediction of a frame from the true frames before it,
the true frame), recorded once on training episodes by :func:`gedanken.train.decoder_tune.predicted_pairs`.
A share ``1 - mix`` of each step reconstructs true frames from their own tokens, so what the tokenizer drew
well stays drawn. The loss is the tokenizer's (MSE + 0.5 L1, object pixels weighing ``1 + foreground_weight``).

The same decoder draws the frames a rollout shows and, under the sampler's ``keep_area``, the frames it
projects and re-encodes into its context, so both change. There is no separate display decoder here
(``DecoderTuneConfig.display`` is refused).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from gedanken.models.protocol import ModelCard
from gedanken.tokenizers.discrete import DiscreteTokenizer, foreground_mask, frames_to_float, psnr
from gedanken.train.decoder_tune import DecoderTuneConfig, LatentPairs, pair_batches, predicted_pairs
from gedanken.train.decoder_tune import decoder_train_config as shared_train_config
from gedanken.train.trainer import TrainConfig, TrainResult, fit

if TYPE_CHECKING:
    from gedanken.models.autoregressive.model import AutoregressiveWorldModel

log = logging.getLogger(__name__)


def decoder_train_config(steps: int, threads: int = 0, progress: bool = True) -> TrainConfig:
    """The decoder stage's optimisation: ``steps`` of 32 pairs at a peak learning rate of 5e-4."""
    return shared_train_config(steps, 5e-4, threads, progress)


class TokenDecoderTuner(nn.Module):
    """The tokenizer's decoder trained with its encoder frozen; ``loss`` on a :class:`LatentPairs` batch of
    token grids (N, h, w)."""

    def __init__(self, tokenizer: DiscreteTokenizer, cfg: DecoderTuneConfig) -> None:
        super().__init__()
        if cfg.display:
            raise ValueError(
                "the autoregressive family has no display decoder: DecoderTuneConfig.display=False"
            )
        self.tokenizer = tokenizer
        self.cfg = cfg
        for p in tokenizer.parameters():
            p.requires_grad_(False)
        for p in tokenizer.decoder.parameters():
            p.requires_grad_(True)

    def _error(self, tokens: Tensor, x: Tensor, weight: Tensor) -> Tensor:
        rec = self.tokenizer.decode_float(tokens)  # (N, 3, H, W)
        return (((rec - x).pow(2) + 0.5 * (rec - x).abs()) * weight).mean()

    def loss(self, batch: LatentPairs) -> tuple[Tensor, dict[str, float]]:
        x = frames_to_float(batch.frames)  # (N, 3, H, W)
        weight = self.cfg.pixel_weight(foreground_mask(x))
        pred = self._error(batch.latents, x, weight)
        logs = {"predicted": float(pred.detach())}
        loss = self.cfg.mix * pred
        if self.cfg.mix < 1.0:
            true = self._error(batch.truth, x, weight)
            logs["true"] = float(true.detach())
            loss = loss + (1.0 - self.cfg.mix) * true
        return loss, logs


@torch.no_grad()
def reconstruction_psnr(tokenizer: DiscreteTokenizer, frames: Tensor) -> float:
    """PSNR (dB) of the tokenizer's reconstructions of uint8 frames ``(N, H, W, 3)``."""
    was = tokenizer.training
    tokenizer.eval()
    rec = tokenizer.decode(tokenizer.encode(frames))
    tokenizer.train(was)
    return float(psnr(rec, frames))


def decoder_stage(
    model: AutoregressiveWorldModel,
    frames: list[Tensor],
    actions: list[Tensor],
    held_frames: Tensor,
    cfg: DecoderTuneConfig,
    tc: TrainConfig,
    card: ModelCard,
    seed: int,
) -> tuple[TrainResult, str]:
    """Train ``model``'s tokenizer decoder (in place) on its dynamics' one-step predictions of the training
    episodes ``frames`` / ``actions``; ``held_frames`` (N, H, W, 3) uint8 measure its reconstruction PSNR before
    and after. Returns the trainer's result and a note for the model card."""
    if tc.num_threads > 0:
        torch.set_num_threads(tc.num_threads)
    tok = model.tokenizer
    pairs = predicted_pairs(model, frames, actions, cfg, lambda f: tok.encode(f.to(model.device)))
    agree = float((pairs.latents == pairs.truth).float().mean())
    log.info(
        "decoder: %d one-step predictions of %d training episodes, %.3f of their tokens the true frame's",
        len(pairs),
        len(frames),
        agree,
    )
    held = held_frames.to(model.device)
    before = reconstruction_psnr(tok, held)
    res = fit(
        TokenDecoderTuner(tok, cfg),
        pair_batches(pairs, tc.batch_size, seed),
        tc,
        evaluate=lambda m: {"psnr": reconstruction_psnr(tok, held)},
        card=card,
        family="tokenizer",
        model_config=tok.cfg,
    )
    model.eval()
    after = reconstruction_psnr(tok, held)
    log.info("decoder: held-out reconstruction PSNR %.2f dB -> %.2f dB", before, after)
    note = (
        f"; decoder fine-tuned {tc.steps} steps on the dynamics' one-step predictions of {len(frames)} "
        f"training episodes (foreground weight {cfg.foreground_weight:g}, edge weight {cfg.edge_weight:g}, "
        f"mix {cfg.mix:g}; reconstruction PSNR {before:.2f} -> {after:.2f} dB)"
    )
    return res, note


__all__ = ["TokenDecoderTuner", "decoder_stage", "decoder_train_config", "reconstruction_psnr"]

"""Decoder fine-tuning on the DiT's own predictions (a third, optional training stage).

The tokenizer's decoder is trained on encoder latents of true frames. The DiT's predicted latents are close to
those but not on them: a small object whose position the network is a little unsure of comes out as a weaker
latent, and the decoder draws it dim. The judge then does not see the object (session 18 found every identity
the shipped Bounce model lost was such a dim small ball, one step from the true past as often as in a rollout).

This stage keeps the encoder and the DiT fixed and trains the decoder on pairs of (the DiT's one-step
prediction of a frame from the true past, the true frame), recorded on training episodes. A share of each batch
(``1 - mix``) reconstructs true frames from their encoder latents, so frames the DiT predicts well are drawn
as before. Object pixels weigh ``1 + foreground_weight``: more weight draws uncertain objects brighter and
also larger, which the audit's ``area_ratio`` shows (see docs/history/diffusion.md, "Session 19").

By default the tokenizer's own decoder is trained, so the frames a rollout re-encodes into its context are
drawn by it too; that is where most of the gain comes from (Bounce, 48 test episodes: identity 1.000 against
0.964; with ``display=True`` 0.968). It also means the tokenizer alone is no longer a round-trip fixed point:
at foreground weight 8, 8 round trips grew Bounce's balls to 2.0-2.3x their area (the sampler's area hold,
``SamplerConfig.keep_area``, keeps a rollout's context at the observed sizes). With ``display=True`` a second
decoder (``DiffusionWorldModel.display``, a copy of the tokenizer's to start from) is trained instead and
draws only the frames the model shows; the context, the latents and the round trip stay exactly as they were.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from gedanken.models.protocol import ModelCard
from gedanken.tokenizers.continuous import VideoAutoencoder
from gedanken.tokenizers.discrete import foreground_mask
from gedanken.train.decoder_tune import DecoderTuneConfig, LatentPairs, pair_batches, predicted_pairs
from gedanken.train.trainer import TrainConfig, TrainResult, fit

if TYPE_CHECKING:
    from gedanken.models.diffusion.model import DiffusionWorldModel

log = logging.getLogger(__name__)


def one_step_pairs(
    model: DiffusionWorldModel,
    frames: list[Tensor],
    actions: list[Tensor],
    cfg: DecoderTuneConfig,
    batch: int = 32,
) -> LatentPairs:
    """The DiT's one-step predictions of frames ``context, context + stride, ...`` of each episode from the true
    frames before them, with the true frames and their encoder latents
    (:func:`gedanken.train.decoder_tune.predicted_pairs`)."""

    def encode(f: Tensor) -> Tensor:
        return model.tokenizer.encode(f[:, None].to(model.device))[:, 0]

    return predicted_pairs(model, frames, actions, cfg, encode, batch)


class DecoderTuner(nn.Module):
    """``decoder`` (the tokenizer's own or a display decoder) trained with the rest of the tokenizer frozen;
    ``loss`` on a :class:`LatentPairs` batch."""

    def __init__(self, tokenizer: VideoAutoencoder, decoder: nn.Module, cfg: DecoderTuneConfig) -> None:
        super().__init__()
        self.tokenizer = tokenizer
        self.decoder = decoder
        self.cfg = cfg
        for p in tokenizer.parameters():
            p.requires_grad_(False)
        for p in decoder.parameters():
            p.requires_grad_(True)

    def loss(self, batch: LatentPairs) -> tuple[Tensor, dict[str, float]]:
        tok = self.tokenizer
        tok.eval()  # frozen
        h, w = batch.frames.shape[1:3]
        x = batch.frames.permute(0, 3, 1, 2).float() / 255.0
        weight = self.cfg.pixel_weight(foreground_mask(x, 0.05))

        def raw(z: Tensor) -> Tensor:  # normalised -> the decoder's input scale
            return z * tok.latent_std[:, None, None] + tok.latent_mean[:, None, None]

        pred = ((tok._decode_raw(raw(batch.latents), h, w, self.decoder) - x).pow(2) * weight).mean()
        logs = {"predicted": float(pred.detach())}
        loss = self.cfg.mix * pred
        if self.cfg.mix < 1.0:  # true frames from their encoder latents, drawn as before
            true = ((tok._decode_raw(raw(batch.truth), h, w, self.decoder) - x).pow(2) * weight).mean()
            logs["true"] = float(true.detach())
            loss = loss + (1.0 - self.cfg.mix) * true
        return loss, logs


def decoder_stage(
    model: DiffusionWorldModel,
    frames: list[Tensor],
    actions: list[Tensor],
    held_frames: Tensor,
    cfg: DecoderTuneConfig,
    tc: TrainConfig,
    card: ModelCard,
    seed: int,
) -> tuple[TrainResult, str]:
    """Train the diffusion ``model``'s decoder (in place) on its DiT's one-step predictions of the training
    episodes ``frames`` / ``actions``; ``held_frames`` (1, N, H, W, 3) uint8 measure its reconstruction PSNR.
    Returns the trainer's result and a note for the model card."""
    if tc.num_threads > 0:
        torch.set_num_threads(tc.num_threads)
    pairs = one_step_pairs(model, frames, actions, cfg)
    log.info("decoder: %d one-step predictions of %d training episodes", len(pairs), len(frames))
    tok = model.tokenizer
    display = model.add_display_decoder() if cfg.display else tok.decoder
    res = fit(
        DecoderTuner(tok, display, cfg),
        pair_batches(pairs, tc.batch_size, seed),
        tc,
        evaluate=lambda m: {"psnr": tok.psnr(held_frames.to(tok.latent_mean.device), display)},
        card=card,
        family="tokenizer",
        model_config=tok.cfg,
    )
    model.freeze_tokenizer()
    display.eval()
    psnr = tok.psnr(held_frames.to(tok.latent_mean.device), display)
    log.info("decoder: held-out reconstruction PSNR %.2f dB after the fine-tune", psnr)
    which = "display decoder" if cfg.display else "decoder"
    note = (
        f"; {which} fine-tuned {tc.steps} steps on the DiT's one-step predictions of {len(frames)} "
        f"training episodes (foreground weight {cfg.foreground_weight:g}, edge weight {cfg.edge_weight:g}, "
        f"mix {cfg.mix:g}; reconstruction PSNR {psnr:.2f} dB after)"
    )
    return res, note


__all__ = [
    "DecoderTuneConfig",
    "DecoderTuner",
    "LatentPairs",
    "decoder_stage",
    "one_step_pairs",
    "pair_batches",
]

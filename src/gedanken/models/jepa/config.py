"""Configuration of the JEPA family: one frozen dataclass per part, and the model presets ``tiny``/``default``.

Training budgets (steps, batch sizes, data) live with the training recipe in :mod:`gedanken.models.jepa.train`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class AntiCollapse(str, Enum):
    """What keeps the self-supervised encoder from collapsing to a constant (the ablation in docs/jepa.md)."""

    EMA = "ema"  # targets from an exponential moving average of the encoder, stop-gradient (V-JEPA)
    SIGREG = (
        "sigreg"  # targets from the encoder itself (stop-gradient) + SIGReg towards N(0, I) (LeJEPA / LeWM)
    )
    NONE = "none"  # targets from the encoder itself (stop-gradient), nothing else: the collapse control


@dataclass(frozen=True)
class EncoderConfig:
    """Tubelet ViT encoder and its masked-prediction pre-training (stage 1)."""

    image_size: int = 64  # H == W of the frames it encodes
    patch: int = 8  # spatial patch side in pixels -> (image_size / patch)^2 tokens per tubelet
    tubelet: int = 2  # frames per tubelet; a frame's latent encodes the tubelet (previous frame, frame)
    dim: int = 64  # token width D
    depth: int = 3  # transformer blocks
    heads: int = 4  # attention heads
    slots: int = 8  # S: queries of the attentive pooler
    latent_channels: int = 16  # c: width of each slot; a frame latent has S * c values
    clip_tubelets: int = 1  # tubelets the encoder attends across at once (1: every latent is one tubelet)
    predict_tubelets: int = 2  # pre-training targets: the encoded tubelet and the next ones (masked entirely)
    mask_ratio: float = 0.5  # share of the target tokens queried per sample and step
    pred_dim: int = 48  # width of the masked-token predictor (narrower than the encoder, as in V-JEPA)
    pred_depth: int = 2  # blocks of the masked-token predictor
    anti_collapse: AntiCollapse = AntiCollapse.SIGREG  # see AntiCollapse and docs/jepa.md
    ema_momentum: tuple[float, float] = (
        0.99,
        0.999,
    )  # EMA momentum, linearly from first to second over training
    sigreg_weight: float = 0.05  # weight of SIGReg against the prediction loss
    sigreg_slices: int = 128  # random 1-D projections per SIGReg evaluation

    @property
    def grid(self) -> int:
        return self.image_size // self.patch

    @property
    def latent_dim(self) -> int:
        return self.slots * self.latent_channels

    def __post_init__(self) -> None:
        if self.image_size % self.patch:
            raise ValueError(f"image_size {self.image_size} is not a multiple of patch {self.patch}")
        if not 0.0 < self.mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must be in (0, 1), got {self.mask_ratio}")
        if self.tubelet < 1 or self.clip_tubelets < 1 or self.predict_tubelets < 1:
            raise ValueError("tubelet, clip_tubelets and predict_tubelets must be >= 1")


@dataclass(frozen=True)
class PredictorConfig:
    """Action-conditioned, frame-causal transformer over frame latents (stage 2)."""

    dim: int = 64  # token width (one token per frame: latent + action)
    depth: int = 2  # transformer blocks
    heads: int = 4  # attention heads
    mlp_ratio: float = 4.0  # MLP hidden width / dim
    max_frames: int = 8  # attention window in frames (older keys are dropped; positions are relative, RoPE)
    teacher_weight: float = 1.0  # weight of the teacher-forced one-step loss
    rollout_weight: float = 1.0  # weight of the autoregressive rollout loss over the training window


@dataclass(frozen=True)
class DecoderConfig:
    """Optional pixel decoder, trained on frozen latents for pictures only (never used by planners)."""

    channels: int = 16  # conv width


@dataclass(frozen=True)
class JepaConfig:
    """Everything needed to rebuild a JEPA world model (the checkpoint's ``model_config``)."""

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    predictor: PredictorConfig = field(default_factory=PredictorConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    action_dim: int = 2  # A
    action_low: tuple[float, ...] = (-1.0, -1.0)  # actions are mapped from [low, high] to [-1, 1] inside
    action_high: tuple[float, ...] = (1.0, 1.0)
    max_objects: int = 5  # K of the probed state (B, K, F); set from the data by the recipe
    probe_ridge: float = 1e-2  # ridge penalty of the closed-form linear probe (on standardised latents)

    def __post_init__(self) -> None:
        if len(self.action_low) != self.action_dim or len(self.action_high) != self.action_dim:
            raise ValueError(
                f"action_low/high must have action_dim={self.action_dim} entries, got "
                f"{len(self.action_low)}/{len(self.action_high)}"
            )


def tiny(**kw: object) -> JepaConfig:
    """Seconds-scale model for tests: 32x32 frames, 2 blocks of width 32."""
    enc = EncoderConfig(
        image_size=32,
        patch=8,
        dim=32,
        depth=2,
        heads=2,
        slots=4,
        latent_channels=4,
        pred_dim=32,
        pred_depth=1,
        sigreg_slices=32,
    )
    pred = PredictorConfig(dim=32, depth=1, heads=2, max_frames=6)
    return JepaConfig(encoder=enc, predictor=pred, decoder=DecoderConfig(channels=8), **kw)  # type: ignore[arg-type]


def default(**kw: object) -> JepaConfig:
    """The shipped model: 64x64 frames, 8x8 tubelet tokens of width 64, 8x16 latent, a 2-block predictor."""
    return JepaConfig(**kw)  # type: ignore[arg-type]

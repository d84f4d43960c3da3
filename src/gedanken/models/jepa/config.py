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
    VICREG = "vicreg"  # targets from the encoder itself (stop-gradient) + variance/covariance terms (VICReg)
    NONE = "none"  # targets from the encoder itself (stop-gradient), nothing else: the collapse control


class EncoderKind(str, Enum):
    """Which encoder turns frames into latents (docs/jepa.md says why the default changed)."""

    KEYPOINTS = "keypoints"  # conv net + spatial-softmax keypoints, next-latent prediction (keypoints.py)
    VIT = "vit"  # tubelet ViT + attentive pooler, masked prediction of token features (encoder.py)


@dataclass(frozen=True)
class EncoderConfig:
    """Frame encoder and its self-supervised pre-training (stage 1): keypoints (default) or a tubelet ViT."""

    kind: EncoderKind = EncoderKind.KEYPOINTS
    image_size: int = 64  # H == W of the frames it encodes
    # -- keypoint encoder (kind=keypoints)
    keypoints: int = 16  # K spatial-softmax keypoints; a frame latent has 5 K values (x, y, feature, dx, dy)
    conv_channels: int = 32  # width of the conv net
    softmax_temperature: float = 3.0  # initial sharpness of the spatial softmax (on standardised heat maps)
    velocity_scale: float = 8.0  # the motion part of the latent is (xy_t - xy_{t-1}) * this
    pred_hidden: int = 128  # hidden width of the action-free next-latent predictor
    pred_weight: float = 1.0  # weight of the next-latent prediction loss (MSE)
    var_weight: float = 1.0  # VICReg variance hinge on keypoint coordinates
    var_target: float = 0.3  # ... every coordinate's std across the batch should reach this
    cov_weight: float = 1.0  # mean squared off-diagonal correlation of keypoint coordinates
    # -- tubelet ViT encoder (kind=vit)
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
    anti_collapse: AntiCollapse = AntiCollapse.VICREG  # see AntiCollapse and docs/jepa.md
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
    def clip_frames(self) -> int:
        """Frames per stage-1 training clip."""
        return 3 if self.kind is EncoderKind.KEYPOINTS else self.predict_tubelets * self.tubelet

    @property
    def latent_dim(self) -> int:
        if self.kind is EncoderKind.KEYPOINTS:
            return 5 * self.keypoints
        return self.slots * self.latent_channels

    def __post_init__(self) -> None:
        if self.image_size % self.patch:
            raise ValueError(f"image_size {self.image_size} is not a multiple of patch {self.patch}")
        if not 0.0 < self.mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must be in (0, 1), got {self.mask_ratio}")
        if self.tubelet < 1 or self.clip_tubelets < 1 or self.predict_tubelets < 1:
            raise ValueError("tubelet, clip_tubelets and predict_tubelets must be >= 1")
        if self.kind is EncoderKind.KEYPOINTS and (self.keypoints < 1 or self.image_size % 2):
            raise ValueError(
                f"the keypoint encoder needs keypoints >= 1 and an even image_size, got "
                f"{self.keypoints} and {self.image_size}"
            )


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
    loss: str = (
        "l1"  # "l1" (V-JEPA 2-AC: a median, so rare contact motion is predicted as none) | "mse" (a mean)
    )
    # Weight of the same prediction errors measured in the probe's metric: the latent error mapped through
    # the fitted linear probe to object positions and velocities (each field divided by its std), squared.
    # The targets stay the encoder's latents; the probe only says which latent directions are objects
    # (docs/jepa.md, "Predictor loss"). 0 = off; needs the probe fitted before this stage.
    probe_weight: float = 0.0
    # Hidden width of the pairwise keypoint interaction term (interaction.py; keypoint encoder only): the next
    # latent gets a per-keypoint change computed from every other keypoint's offset and relative motion.
    # 0 = off (the frame-level transformer alone).
    interaction: int = 0

    def __post_init__(self) -> None:
        if self.interaction < 0:
            raise ValueError(f"interaction must be >= 0 (0 = off), got {self.interaction}")
        if self.loss not in ("l1", "mse"):
            raise ValueError(f"predictor loss must be 'l1' or 'mse', got {self.loss!r}")
        if self.probe_weight < 0:
            raise ValueError(f"probe_weight must be >= 0, got {self.probe_weight}")


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
    """Seconds-scale model for tests: 32x32 frames, 4 keypoints (or a 2-block ViT of width 32), 1 block."""
    kind = kw.pop("kind", EncoderKind.KEYPOINTS)
    enc = EncoderConfig(
        kind=EncoderKind(kind),  # type: ignore[arg-type]
        image_size=32,
        keypoints=4,
        conv_channels=8,
        pred_hidden=16,
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
    kw.setdefault(
        "predictor", PredictorConfig(dim=32, depth=1, heads=2, max_frames=6, loss="mse", probe_weight=1.0)
    )
    return JepaConfig(encoder=enc, decoder=DecoderConfig(channels=8), **kw)  # type: ignore[arg-type]


def default(**kw: object) -> JepaConfig:
    """The shipped model: 64x64 frames, 16 keypoints (80-value latent), a 2-block predictor of width 64
    trained with MSE plus the probe-metric term (docs/jepa.md: contact prediction and planning)."""
    kw.setdefault("predictor", PredictorConfig(loss="mse", probe_weight=1.0))
    return JepaConfig(**kw)  # type: ignore[arg-type]

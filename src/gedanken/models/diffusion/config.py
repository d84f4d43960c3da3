"""Configuration of the diffusion world model: one frozen dataclass per part, presets as functions."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from enum import Enum

from gedanken.models.breach import check_breach_settings
from gedanken.models.heads import HeadsConfig
from gedanken.models.verifier import check_verifier
from gedanken.tokenizers import continuous as tokenizer_presets
from gedanken.tokenizers.continuous import AutoencoderConfig


class TextEncoderKind(str, Enum):
    """Which text encoder turns captions/prompts into the conditioning vector."""

    MINILM = "minilm"  # the packaged all-MiniLM-L6-v2 sentence encoder (384-d, offline)
    HASH = "hash"  # bag of hashed words; no download, no semantics (tests)
    NONE = "none"  # no text conditioning


@dataclass(frozen=True)
class DiTConfig:
    """The Diffusion Transformer over latent patches."""

    width: int = 128  # D: token width
    depth: int = 4  # transformer blocks
    heads: int = 4  # attention heads (head width D / heads, must be even for RoPE)
    mlp_ratio: float = 4.0  # MLP hidden width / D
    patch: int = 2  # spatial patch side on the latent grid (tokens per frame = (h / patch) * (w / patch))
    context: int = 4  # W: clean context frames each frame attends to (sliding window, cached at rollout)
    rope_theta: float = 100.0  # RoPE base wavelength
    prev_frame: bool = False  # noisy tokens also embed the previous clean frame's latent at their position
    prev_frames: int = 1  # with prev_frame: how many past frames each noisy token embeds at its position
    edge_embedding: int = (
        0  # > 0: embed each token's distance to the 4 frame borders (clamped to this many levels)
    )


class Target(str, Enum):
    """What the network's output means (the flow, schedule and sampler are the same for both)."""

    VELOCITY = "velocity"  # v = eps - x, rectified flow's usual target
    RESIDUAL = "residual"  # x0 = previous frame's latent + output; v = (x_s - x0) / sigma at sampling


@dataclass(frozen=True)
class FlowConfig:
    """Flow-matching training: x_s = (1 - s) x + s eps, the network predicts v = eps - x."""

    logit_mean: float = 0.0  # sigma ~ sigmoid(N(logit_mean, logit_std)) for target frames
    logit_std: float = 1.0
    context_noise: float = 0.3  # clean context frames get sigma ~ U(0, context_noise) (drift augmentation)
    action_dropout: float = 0.1  # probability that a window's actions are replaced by the null action (CFG)
    text_dropout: float = 0.1  # probability that a window's text is replaced by the null text (CFG)
    head_weight: float = 0.1  # weight of the reward/termination/state head losses
    target: Target = Target.VELOCITY  # RESIDUAL: predict the clean frame as a change of the previous one
    change_weight: float = 0.0  # RESIDUAL: extra loss weight on latent positions that change between frames
    self_forcing: float = 0.0  # RESIDUAL: share of batches trained on the model's one-step predictions
    rollout_forcing: float = 0.0  # RESIDUAL: share of batches whose context is the model's own rollout
    # RESIDUAL, palette data: latent cells covering an object of area a px (this frame or the previous) weigh
    # clamp((size_reference / a)^2, 1, size_weight), so small objects are not drawn dim (1 = off)
    size_weight: float = 1.0
    size_reference: float = 48.0
    # RESIDUAL, palette data: latent cells covering an object within edge_band px of the frame's border (the
    # walls), this frame or the previous, weigh edge_weight, so objects at a wall are placed exactly (1 = off)
    edge_weight: float = 1.0
    edge_band: int = 8
    # RESIDUAL, palette data: latent cells covering an object within contact_band px of another object, this
    # frame or the previous, weigh contact_weight, so colliding objects are placed exactly (1 = off)
    contact_weight: float = 1.0
    contact_band: int = 3
    # RESIDUAL, recorded states: share of windows whose context shows objects at a contact pressed up to
    # breach_px world units into the wall or object they touch (models/breach.py), so the DiT learns
    # to push a drifted object back out instead of copying it
    breach_forcing: float = 0.0
    breach_px: float = 1.5
    breach_walls_only: bool = False  # press objects into walls only, never into each other

    def __post_init__(self) -> None:
        if self.size_weight < 1 or self.size_reference <= 0:
            raise ValueError(
                f"need size_weight >= 1 and size_reference > 0, got {self.size_weight}, {self.size_reference}"
            )
        if self.size_weight > 1 and self.target is not Target.RESIDUAL:
            raise ValueError("size_weight weighs the residual target's loss; this flow predicts velocity")
        if self.edge_weight < 1 or self.edge_band < 1:
            raise ValueError(
                f"need edge_weight >= 1 and edge_band >= 1, got {self.edge_weight}, {self.edge_band}"
            )
        if self.edge_weight > 1 and self.target is not Target.RESIDUAL:
            raise ValueError("edge_weight weighs the residual target's loss; this flow predicts velocity")
        if not 1 <= self.contact_weight < math.inf or self.contact_band < 1:
            raise ValueError(
                f"need contact_weight >= 1 and contact_band >= 1, got {self.contact_weight}, {self.contact_band}"
            )
        if self.contact_weight > 1 and self.target is not Target.RESIDUAL:
            raise ValueError("contact_weight weighs the residual target's loss; this flow predicts velocity")
        check_breach_settings(self.breach_forcing, self.breach_px, self.breach_walls_only)
        if self.breach_forcing > 0 and self.target is not Target.RESIDUAL:
            raise ValueError(
                "breach_forcing trains the residual target's corrections; this flow predicts velocity"
            )


@dataclass(frozen=True)
class SamplerConfig:
    """How frames are sampled at rollout (the sampler is a separate object; see ``sampling.py``)."""

    steps: int = 4  # Euler steps per frame
    shift: float = 1.0  # timestep shift of the flow-matching schedule (>1 spends more steps at high noise)
    context_noise: float = 0.05  # sigma given to (and added to) generated frames before they become context
    temperature: float = 1.0  # starting-noise scale (< 1: nearer the conditional mean; 0: the ODE from 0)
    action_guidance: float = 1.0  # CFG scale on actions (1 = off, no extra pass; < 1 damps the actions)
    text_guidance: float = 1.0  # classifier-free guidance scale on text (1 = off)
    reencode: bool = False  # context gets the generated frame's pixels encoded again (tokenizer manifold)
    snap: bool = False  # with reencode: each pixel of that frame first takes the palette's nearest colour
    snap_background: float = 0.85  # scales the distance to the background colour (< 1: rims are not grown)
    candidates: int = 1  # > 1: that many samples per frame; keeps the one whose colour areas change least
    snap_radius: int = 0  # > 0: with snap, a colour may only appear within that many pixels of where it was
    keep_area: float = 0.0  # > 0, with snap_radius: each colour's area held in [k, 1/k] x the observed one
    show_projected: bool = False  # with snap: the frame shown is the projected one the context carries
    # "solidity": best-of-N with a verifier (models/verifier.py): a frame whose objects overlap or reach past
    # the border by more than verifier_tolerance px gets candidates - 1 more samples, and the least
    # penetrating is kept; verifier_solid lists the identities it checks (empty: all; Push leaves out its goal)
    # and verifier_boxes those drawn as squares (models/verifier.world_solidity gives both for a built-in world)
    verifier: str = "none"
    verifier_tolerance: float = 0.5
    verifier_solid: tuple[int, ...] = ()
    verifier_boxes: tuple[int, ...] = ()

    def check(self, colours: int) -> None:
        """Raise ``ValueError`` if a model whose data has ``colours`` palette colours (0: not flat-coloured)
        cannot sample with these settings (snap without a palette, ...)."""
        if self.steps < 1:
            raise ValueError(f"sampler.steps must be >= 1, got {self.steps}")
        if not (math.isfinite(self.temperature) and self.temperature >= 0):
            raise ValueError(f"sampler.temperature must be a finite number >= 0, got {self.temperature}")
        for name in ("action_guidance", "text_guidance"):
            g = getattr(self, name)
            if not (math.isfinite(g) and g >= 0):
                raise ValueError(f"sampler.{name} must be a finite number >= 0 (1 = no guidance), got {g}")
        if self.snap and not (self.reencode and colours):
            raise ValueError(
                "sampler.snap projects the re-encoded context onto the model's palette: it needs "
                f"reencode=True (got {self.reencode}) and a palette (this model has {colours} colours)"
            )
        if self.show_projected and not self.snap:
            raise ValueError(
                "sampler.show_projected shows the palette-projected context frame: it needs snap=True"
            )
        if self.snap_radius < 0 or (self.snap_radius > 0 and not self.snap):
            raise ValueError(f"sampler.snap_radius must be >= 0 and needs snap=True, got {self.snap_radius}")
        if not 0.0 <= self.keep_area <= 1.0 or (self.keep_area > 0 and self.snap_radius <= 0):
            raise ValueError(
                f"sampler.keep_area must be in [0, 1] and needs snap_radius > 0, got {self.keep_area}"
            )
        if self.candidates < 1 or (self.candidates > 1 and not colours):
            raise ValueError(
                f"sampler.candidates must be >= 1 and, above 1, needs a palette to compare colour areas (got "
                f"{self.candidates} candidates, {colours} colours)"
            )
        check_verifier(self, colours)


@dataclass(frozen=True)
class DiffusionConfig:
    """Everything needed to rebuild a :class:`~gedanken.models.diffusion.model.DiffusionWorldModel`."""

    height: int = 64  # H: frame height in pixels
    width: int = 64  # W: frame width in pixels
    action_dim: int = 2  # A: width of the action vector (1 for discrete)
    action_classes: int = 0  # n for a discrete action space (0 = continuous)
    window: int = 8  # T: frames per training window
    text: TextEncoderKind = TextEncoderKind.MINILM
    text_dim: int = 384  # width of the text encoder's output
    tokenizer: AutoencoderConfig = field(default_factory=AutoencoderConfig)
    dit: DiTConfig = field(default_factory=DiTConfig)
    flow: FlowConfig = field(default_factory=FlowConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    heads: HeadsConfig = field(default_factory=HeadsConfig)
    world: str = ""  # the world (or dataset) it was trained on, for cards and reports
    palette: tuple[tuple[int, int, int], ...] = ()  # the data's flat colours (empty: not flat-coloured)
    # a second decoder draws the frames it shows (decoder.py); the tokenizer's own still draws the frames that
    # are re-encoded into the context
    display_decoder: bool = False


def tiny(**overrides: object) -> DiffusionConfig:
    """Tests: trains in seconds; text through the hash encoder so nothing heavy loads."""
    cfg = DiffusionConfig(
        window=4,
        text=TextEncoderKind.HASH,
        text_dim=16,
        tokenizer=AutoencoderConfig(channels=(8, 8, 8), latent_channels=4),
        dit=DiTConfig(width=32, depth=2, heads=2, patch=2, context=2),
        sampler=SamplerConfig(steps=2),
    )
    return replace(cfg, **overrides)  # type: ignore[arg-type]


def default(**overrides: object) -> DiffusionConfig:
    """The shipped models: the default patch tokenizer (64x64 -> 16x16x8), 4x4 latent patches = 16 tokens per
    frame, width 128, depth 4, previous-frame embedding, residual target, re-encoded context, 4 sampler steps
    shifted toward high noise (shift 6: identities survive longer, ``benchmarks/diffusion_sampler.py``)."""
    cfg = DiffusionConfig(
        tokenizer=tokenizer_presets.default(),
        dit=DiTConfig(patch=4, prev_frame=True),
        flow=FlowConfig(target=Target.RESIDUAL, change_weight=8.0),
        sampler=SamplerConfig(reencode=True, shift=6.0),
    )
    return replace(cfg, **overrides)  # type: ignore[arg-type]

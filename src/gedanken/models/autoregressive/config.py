"""Configuration of the autoregressive (Genie-style) world model: one frozen dataclass per part, presets as functions."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import Enum

from gedanken.models.autoregressive.dynamics import DynamicsConfig
from gedanken.models.autoregressive.lam import LAMArchitecture, LAMConfig
from gedanken.models.autoregressive.maskgit import MaskGITConfig
from gedanken.tokenizers.discrete import DiscreteTokenizerConfig, TokenizerArchitecture
from gedanken.tokenizers.fsq import FSQConfig


class ActionMode(str, Enum):
    """How the protocol's ``actions`` are turned into the dynamics model's action embedding."""

    LATENT = "latent"  # actions are latent action indices (A == 1), as the LAM inferred them
    MAPPED = "mapped"  # real actions -> the latent action fitted to them on the labelled set
    ADAPTER = "adapter"  # real actions -> the adapter's embedding, trained on the labelled set


class Stage(str, Enum):
    """Which part :meth:`AutoregressiveWorldModel.loss` trains (the others are frozen)."""

    TOKENIZER = "tokenizer"
    LAM = "lam"
    DYNAMICS = "dynamics"
    ADAPTER = "adapter"


@dataclass(frozen=True)
class AutoregressiveConfig:
    """Everything needed to rebuild an :class:`~gedanken.models.autoregressive.model.AutoregressiveWorldModel`."""

    height: int = 64  # H: frame height in pixels
    width: int = 64  # W: frame width in pixels
    action_dim: int = 1  # A: width of the real action vector (1 for discrete)
    action_classes: int = 0  # n for a discrete real action space (0 = continuous)
    tokenizer: DiscreteTokenizerConfig = field(default_factory=DiscreteTokenizerConfig)
    lam: LAMConfig = field(default_factory=LAMConfig)
    dynamics: DynamicsConfig = field(default_factory=DynamicsConfig)
    sampler: MaskGITConfig = field(default_factory=MaskGITConfig)
    adapter_hidden: int = 64  # hidden width of the continuous-action adapter MLP
    action_mode: ActionMode = ActionMode.ADAPTER  # how step/rollout read actions (see ActionMode)
    world: str = ""  # the world (or dataset) it was trained on, for cards and reports
    palette: tuple[tuple[int, int, int], ...] = ()  # the world's flat colours (sampler.keep_area needs them)

    def __post_init__(self) -> None:
        if self.action_classes < 0 or self.action_dim < 1:
            raise ValueError(
                f"need action_dim >= 1 and action_classes >= 0, got {self.action_dim}, {self.action_classes}"
            )
        if self.sampler.action_guidance > 1 and self.dynamics.action_dropout <= 0:
            raise ValueError(
                "sampler.action_guidance compares each action with 'no action', which the dynamics only learns "
                "with dynamics.action_dropout > 0 (--action-dropout)"
            )
        if self.sampler.action_guidance > 1 and self.dynamics.unconditional:
            raise ValueError("sampler.action_guidance needs actions, and an unconditional dynamics has none")
        if self.action_classes and self.action_dim != 1:
            raise ValueError(
                f"a discrete action space stores one index per step (action_dim 1), got {self.action_dim}"
            )


def tiny(**overrides: object) -> AutoregressiveConfig:
    """Tests: a few thousand parameters per part, trains in seconds."""
    cfg = AutoregressiveConfig(
        tokenizer=DiscreteTokenizerConfig(
            patch=8,
            architecture=TokenizerArchitecture.PATCH,
            width=16,
            res_blocks=1,
            fsq=FSQConfig((5, 5, 5)),
            foreground_weight=8.0,
            refine=4,
        ),
        lam=LAMConfig(
            num_actions=4, embed=8, architecture=LAMArchitecture.PATCH, patch=4, width=16, blocks=1
        ),
        dynamics=DynamicsConfig(dim=32, depth=2, heads=2, mlp_ratio=2.0, window=4),
        sampler=MaskGITConfig(steps=2),
        adapter_hidden=16,
    )
    return replace(cfg, **overrides)  # type: ignore[arg-type]


def default(**overrides: object) -> AutoregressiveConfig:
    """The shipped models: 64x64 frames -> 8x8 tokens of a 4375-code FSQ ``(7, 5, 5, 5, 5)`` (patch tokenizer,
    foreground-weighted loss, a full-resolution refine stage after the patch decoder); 8 latent actions from a
    patch LAM whose encoder and decoder both see the previous frame; dynamics width 96, depth 3, with a
    per-FSQ-channel (factorized) head and the tokens that change weighted 10x."""
    cfg = AutoregressiveConfig(
        tokenizer=DiscreteTokenizerConfig(
            patch=8,
            architecture=TokenizerArchitecture.PATCH,
            width=128,
            res_blocks=2,
            fsq=FSQConfig((7, 5, 5, 5, 5)),
            foreground_weight=16.0,
            refine=32,
        ),
        lam=LAMConfig(
            num_actions=8,
            embed=16,
            decoder_past=True,
            encoder_past=True,
            architecture=LAMArchitecture.PATCH,
            patch=4,
            width=64,
            blocks=2,
        ),
        dynamics=DynamicsConfig(
            dim=96, depth=3, heads=4, mlp_ratio=3.0, window=6, factorized=True, change_weight=10.0
        ),
        sampler=MaskGITConfig(steps=4, temperature=0.0),
    )
    return replace(cfg, **overrides)  # type: ignore[arg-type]

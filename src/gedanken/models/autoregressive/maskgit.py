"""MaskGIT decoding (Chang et al., 2022) of one frame of tokens, and the masking schedule used in training.

Decoding starts from an all-masked frame. At each of ``steps`` iterations the network predicts every masked
token; the most confident predictions are kept and the rest re-masked, so that after iteration ``s`` only
``N * cos(pi/2 * (s + 1) / steps)`` tokens stay masked (none after the last). With ``temperature == 0`` the
choice is the argmax and decoding is deterministic; otherwise tokens are sampled at that temperature and the
confidences get Gumbel noise annealed to zero (MaskGIT's randomised re-masking).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class MaskGITConfig:
    """Sampler settings."""

    steps: int = 4  # decoding iterations per frame (1 = predict every token in one pass)
    temperature: float = 0.0  # sampling temperature; 0 = greedy (deterministic)
    # > 0: the context gets the decoded frame projected onto the model's palette, each colour only within
    # snap_radius px of where it was and its area held in [k, 1/k] x its observed area, then re-tokenized
    keep_area: float = 0.0
    snap_radius: int = 3  # with keep_area: how far (px) a colour may appear from where it was
    snap_background: float = 1.0  # with keep_area: scale of the distance to the background colour
    # > 1: classifier-free guidance on the action, log p(x | a) + (g - 1) (log p(x | a) - log p(x | no action));
    # one extra pass per iteration; needs dynamics trained with action_dropout
    action_guidance: float = 1.0
    # True: a patch whose token the dynamics left as it was in the last context frame, and whose 8 neighbours'
    # tokens too, is shown with the last shown frame's pixels instead of being decoded again (the previous-frame
    # compositing of pixel-copying video predictors, CDNA-style); the frame changes only where a token changed
    keep_unchanged: bool = False
    show_projected: bool = False  # with keep_area: the frame shown is the projected one the context holds
    # "solidity": best-of-N with a verifier (models/verifier.py), as the diffusion sampler's: a frame whose
    # objects overlap or reach past the border by more than verifier_tolerance px is decoded candidates - 1
    # more times at verifier_temperature (the first decoding may be greedy) and the least penetrating kept
    verifier: str = "none"
    candidates: int = 1
    verifier_tolerance: float = 0.5
    verifier_temperature: float = 1.0
    verifier_solid: tuple[int, ...] = ()
    verifier_boxes: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"MaskGIT needs steps >= 1, got {self.steps}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if self.action_guidance < 1.0:
            raise ValueError(f"action_guidance must be >= 1, got {self.action_guidance}")
        if not 0.0 <= self.keep_area <= 1.0 or self.snap_radius < 1 or self.snap_background <= 0:
            raise ValueError(
                "need keep_area in [0, 1], snap_radius >= 1 and snap_background > 0, got "
                f"{self.keep_area}, {self.snap_radius}, {self.snap_background}"
            )
        if self.show_projected and self.keep_area <= 0:
            raise ValueError(
                "show_projected shows the palette-projected context frame: it needs keep_area > 0"
            )
        if self.candidates < 1 or not (
            math.isfinite(self.verifier_temperature) and self.verifier_temperature > 0
        ):
            raise ValueError(
                f"need candidates >= 1 and a finite verifier_temperature > 0, got {self.candidates}, "
                f"{self.verifier_temperature}"
            )


def mask_schedule(r: Tensor) -> Tensor:
    """Share of tokens masked for uniform ``r`` in [0, 1) (cosine schedule)."""
    return torch.cos(math.pi / 2 * r)


def random_mask(
    shape: tuple[int, ...], generator: torch.Generator | None = None, device: str | torch.device = "cpu"
) -> Tensor:
    """Training mask ``shape = (B, T, N)`` bool: per frame a cosine-scheduled share of tokens, at least one."""
    b, t, n = shape
    ratio = mask_schedule(torch.rand(b, t, 1, generator=generator, device=device))  # (B, T, 1)
    scores = torch.rand(b, t, n, generator=generator, device=device)
    k = (ratio * n).ceil().clamp(min=1)  # tokens to mask per frame
    ranks = scores.argsort(-1).argsort(-1)
    return ranks < k


class MaskGITSampler:
    """Decodes one frame of ``N`` tokens from ``logits_fn(tokens) -> (B, N, V)`` (``-1`` = masked)."""

    def __init__(self, cfg: MaskGITConfig = MaskGITConfig()) -> None:
        self.cfg = cfg

    def sample(
        self,
        logits_fn: Callable[[Tensor], Tensor],
        batch: int,
        n: int,
        *,
        generator: torch.Generator | None = None,
        device: torch.device | str = "cpu",
        greedy_fn: Callable[[Tensor], tuple[Tensor, Tensor]] | None = None,
        sample_fn: Callable[[Tensor], tuple[Tensor, Tensor]] | None = None,
    ) -> Tensor:
        """Tokens ``(B, N)`` int64 after ``cfg.steps`` iterations. ``greedy_fn(tokens) -> (argmax (B, N), its
        log-probability (B, N))`` is an optional shortcut for ``temperature == 0`` that need not build the
        ``(B, N, V)`` logits (a factorized head takes the argmax per channel); ``sample_fn(tokens) -> (draw at
        the temperature (B, N), its tempered log-probability)`` is the same for ``temperature > 0`` (a
        factorized head draws one channel at a time), drawing from ``generator``."""
        tokens = torch.full((batch, n), -1, dtype=torch.long, device=device)
        steps, temp = self.cfg.steps, self.cfg.temperature
        for s in range(steps):
            masked = tokens < 0  # (B, N)
            if temp == 0 and greedy_fn is not None:
                choice, conf = greedy_fn(tokens)
                conf = conf.float().clamp(min=math.log(1e-12))
            elif temp > 0 and sample_fn is not None:
                choice, conf = sample_fn(tokens)
                conf = conf.float().clamp(min=math.log(1e-12))
            else:
                logits = logits_fn(tokens).float()  # (B, N, V)
                if temp > 0:
                    probs = (logits / temp).softmax(-1)
                    choice = torch.multinomial(probs.flatten(0, 1), 1, generator=generator).view(batch, n)
                else:
                    probs = logits.softmax(-1)
                    choice = probs.argmax(-1)
                conf = probs.gather(-1, choice[..., None])[..., 0].clamp(min=1e-12).log()  # (B, N)
            if temp > 0:
                u = torch.rand(conf.shape, generator=generator, device=conf.device).clamp(1e-9, 1 - 1e-9)
                conf = conf + temp * (1 - (s + 1) / steps) * -torch.log(-torch.log(u))
            conf = torch.where(masked, conf, torch.full_like(conf, math.inf))  # committed tokens stay
            keep_masked = int(math.floor(n * math.cos(math.pi / 2 * (s + 1) / steps)))
            proposal = torch.where(masked, choice, tokens)
            if keep_masked > 0:
                order = conf.argsort(-1)  # least confident first
                remask = torch.zeros_like(masked)
                remask.scatter_(1, order[:, :keep_masked], True)
                proposal = torch.where(remask & masked, torch.full_like(proposal, -1), proposal)
            tokens = proposal
        return tokens

"""Latent action model (Genie): one of ``|A|`` discrete actions per transition, learned from frames alone.

The *encoder* sees a pair of consecutive frames ``(x_t, x_{t+1})`` and picks a latent action ``a_t``; the
*decoder* sees only the past ``(x_{t-1}, x_t)`` plus ``a_t`` and must predict ``x_{t+1}``. Two past frames
already tell the decoder where everything was heading, so the few bits of ``a_t`` are spent on what the past
cannot predict: what the agent chose to do. The choice is quantized with FSQ (levels whose product is
``|A|``, e.g. ``(2, 2, 2)`` for 8), so gradients flow straight through and no codebook can collapse.

Shapes: frames ``(B, T, H, W, 3)`` uint8; latent actions ``(B, T - 1)`` int64, ``a[:, t]`` leads from frame
``t`` to ``t + 1`` (the same alignment as recorded actions).

Two architectures (:class:`LAMArchitecture`): ``CONV`` (strided convs at full resolution, the original) and
``PATCH`` (pixel-unshuffle by ``patch``, residual 3x3 blocks on the patch grid, as the tokenizers do): a one-pixel
displacement of a small object stays inside the channels of its patch instead of being blurred by strided
downsampling, and every conv runs at ``H / patch``, so it is several times cheaper.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import torch
from torch import Tensor, nn

from gedanken.nn.conv import ResBlock
from gedanken.tokenizers.discrete import frames_to_float
from gedanken.tokenizers.fsq import FSQ, FSQConfig, Quantized


class LAMArchitecture(str, Enum):
    """How the latent action model's encoder and decoder see frames."""

    PATCH = "patch"  # pixel-unshuffle + residual blocks on the patch grid (the presets)
    CONV = "conv"  # strided convs at full resolution (the original design; older checkpoints)


@dataclass(frozen=True)
class LAMConfig:
    """Architecture and regularisation of :class:`LatentActionModel`."""

    num_actions: int = 8  # |A|, the number of latent actions (4-8 in Genie's spirit)
    channels: tuple[int, int, int] = (24, 48, 64)  # conv widths of the three stride-2 stages
    embed: int = 32  # width of a latent action's embedding in the decoder
    change_weight: float = 20.0  # extra loss weight on pixels that change between x_t and x_{t+1}
    noise: float = 0.0  # share of training rows quantized by additive noise instead of rounding (0: pure STE)
    decoder_past: bool = True  # decoder also sees x_{t-1}; False: x_t only, so the latent carries all motion
    encoder_past: bool = (
        False  # encoder also sees x_{t-1} (and x_t - x_{t-1}): it can tell braking from a choice
    )
    architecture: LAMArchitecture = LAMArchitecture.CONV  # CONV keeps older checkpoints loading unchanged
    patch: int = 4  # PATCH: pixel patch side
    width: int = 64  # PATCH: channels of the residual trunks
    blocks: int = 2  # PATCH: residual blocks in the encoder and in the decoder

    def __post_init__(self) -> None:
        if not 2 <= self.num_actions <= 64:
            raise ValueError(f"num_actions must be in [2, 64], got {self.num_actions}")
        if self.patch < 1 or self.width < 1 or self.blocks < 0:
            raise ValueError(
                f"need patch >= 1, width >= 1, blocks >= 0; got {self.patch}, {self.width}, {self.blocks}"
            )

    @property
    def levels(self) -> tuple[int, ...]:
        """FSQ levels whose product is ``num_actions`` (prime factors, largest first)."""
        n, out, f = self.num_actions, [], 2
        while n > 1:
            while n % f == 0:
                out.append(f)
                n //= f
            f += 1
        return tuple(sorted(out, reverse=True))


@dataclass
class LAMOutput:
    """One training pass of the latent action model over ``B`` windows of ``T`` frames."""

    loss: Tensor  # () change-weighted next-frame reconstruction loss
    actions: Tensor  # (B, T - 2) int64 latent actions of the transitions 1 -> 2, ..., T-2 -> T-1


def _film_block(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 4 if stride == 2 else 3, stride=stride, padding=1), nn.SiLU())


class LatentActionModel(nn.Module):
    """Pair encoder -> latent action; past frames + latent action -> next frame."""

    def __init__(self, cfg: LAMConfig = LAMConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        self.fsq = FSQ(FSQConfig(levels=cfg.levels))
        if cfg.architecture is LAMArchitecture.PATCH:
            self._build_patch(cfg)
            return
        c1, c2, c3 = cfg.channels
        self.encoder = nn.Sequential(
            _film_block(self._enc_channels, c1, 2),
            _film_block(c1, c2, 2),
            _film_block(c2, c3, 2),
            nn.Conv2d(c3, c3, 3, padding=1),
        )
        # Batch norm spreads the pre-quantization values from the first step, so that the decoder sees distinct
        # latent actions before it has learned to use them (otherwise both sit at a useless fixed point).
        self.head = nn.Sequential(
            nn.Linear(2 * c3, c3), nn.SiLU(), nn.Linear(c3, self.fsq.dim), nn.BatchNorm1d(self.fsq.dim)
        )
        self.embed = nn.Linear(self.fsq.dim, cfg.embed)
        self.dec_in = nn.Sequential(
            _film_block(6 + cfg.embed, c1, 2), _film_block(c1, c2, 2)
        )  # (N, c2, H/4, W/4)
        self.film = nn.Linear(cfg.embed, 2 * c2)
        self.dec_mid = nn.Sequential(
            nn.Conv2d(c2, c2, 3, padding=1), nn.SiLU(), nn.Conv2d(c2, c2, 3, padding=1), nn.SiLU()
        )
        self.dec_out = nn.Sequential(
            nn.ConvTranspose2d(c2, c1, 4, stride=2, padding=1),
            nn.SiLU(),
            nn.ConvTranspose2d(c1, c1, 4, stride=2, padding=1),
            nn.SiLU(),
            nn.Conv2d(c1, 3, 3, padding=1),
        )

    def _build_patch(self, cfg: LAMConfig) -> None:
        p, w = cfg.patch, cfg.width
        self.encoder = nn.Sequential(
            nn.PixelUnshuffle(p),
            nn.Conv2d(self._enc_channels * p * p, w, 1),
            *[ResBlock(w) for _ in range(cfg.blocks)],
            nn.SiLU(),
        )  # (N, w, H/p, W/p)
        self.head = nn.Sequential(
            nn.Linear(2 * w, w), nn.SiLU(), nn.Linear(w, self.fsq.dim), nn.BatchNorm1d(self.fsq.dim)
        )
        self.embed = nn.Linear(self.fsq.dim, cfg.embed)
        self.dec_in = nn.Sequential(nn.PixelUnshuffle(p), nn.Conv2d(6 * p * p + cfg.embed, w, 1))
        self.film = nn.Linear(cfg.embed, 2 * w)
        self.dec_mid = nn.Sequential(*[ResBlock(w) for _ in range(cfg.blocks)])
        self.dec_out = nn.Sequential(nn.SiLU(), nn.Conv2d(w, 3 * p * p, 1), nn.PixelShuffle(p))

    @property
    def _enc_channels(self) -> int:
        return 15 if self.cfg.encoder_past else 9

    def quantized(self, x0: Tensor, x1: Tensor, noise: float = 0.0, past: Tensor | None = None) -> Quantized:
        """Quantized latent actions (codes ``(N, d)``, indices ``(N,)``) of float frame pairs ``(N, 3, H, W)``;
        ``past`` is ``x_{t-1}`` (used when ``cfg.encoder_past``; ``x0`` itself when absent)."""
        x = [x0, x1, x1 - x0]
        if self.cfg.encoder_past:
            past = x0 if past is None else past
            x += [past, x0 - past]
        h = self.encoder(torch.cat(x, dim=1))  # (N, c, h, w)
        pooled = torch.cat([h.mean((2, 3)), h.amax((2, 3))], dim=1)  # (N, 2 c)
        return self.fsq(self.head(pooled), noise=noise)

    def infer(self, frames: Tensor) -> Tensor:
        """Latent actions ``(B, T - 1)`` (argmax) of uint8 frames ``(B, T, H, W, 3)``, ``T >= 2``."""
        if frames.ndim != 5 or frames.shape[1] < 2:
            raise ValueError(f"infer needs frames (B, T>=2, H, W, 3), got {tuple(frames.shape)}")
        x = frames_to_float(frames)  # (B, T, 3, H, W)
        b, t = x.shape[:2]
        past = torch.cat([x[:, :1], x[:, :-2]], dim=1)  # x_{t-1}; the first transition has no past: x_0
        q = self.quantized(x[:, :-1].flatten(0, 1), x[:, 1:].flatten(0, 1), past=past.flatten(0, 1))
        return q.indices.view(b, t - 1)

    def action_embedding(self, index: Tensor) -> Tensor:
        """Decoder embedding ``(..., E)`` of latent action indices ``(...)``."""
        return self.embed(self.fsq.indices_to_codes(index))

    def predict(self, prev: Tensor, cur: Tensor, action_embed: Tensor) -> Tensor:
        """Next float frame ``(N, 3, H, W)`` from ``x_{t-1}``, ``x_t`` and an action embedding ``(N, E)``."""
        if self.cfg.architecture is LAMArchitecture.PATCH:
            p = self.cfg.patch
            e = action_embed[:, :, None, None].expand(-1, -1, cur.shape[-2] // p, cur.shape[-1] // p)
            h = self.dec_in[1](
                torch.cat([self.dec_in[0](torch.cat([prev, cur], 1)), e], dim=1)
            )  # (N, w, h, w)
        else:
            e = action_embed[:, :, None, None].expand(-1, -1, *cur.shape[-2:])  # (N, E, H, W)
            h = self.dec_in(torch.cat([prev, cur, e], dim=1))  # (N, c2, H/4, W/4)
        scale, shift = self.film(action_embed)[:, :, None, None].chunk(2, dim=1)
        h = self.dec_mid(h * (1 + scale) + shift)
        return cur + self.dec_out(h)

    def forward(self, frames: Tensor) -> LAMOutput:
        """Training pass over uint8 frames ``(B, T, H, W, 3)`` with ``T >= 3``."""
        if frames.ndim != 5 or frames.shape[1] < 3:
            raise ValueError(
                f"the latent action model trains on windows of T >= 3 frames, got {tuple(frames.shape)}"
            )
        x = frames_to_float(frames)  # (B, T, 3, H, W)
        prev, cur, nxt = (
            x[:, :-2].flatten(0, 1),
            x[:, 1:-1].flatten(0, 1),
            x[:, 2:].flatten(0, 1),
        )  # (N, 3, H, W)
        q = self.quantized(cur, nxt, self.cfg.noise if self.training else 0.0, past=prev)  # codes (N, d)
        if not self.cfg.decoder_past:
            prev = cur  # same shapes; the decoder gets no velocity from the past
        pred = self.predict(prev, cur, self.embed(q.codes))  # (N, 3, H, W)
        changed = ((nxt - cur).abs().amax(1, keepdim=True) > 1e-3).float()  # (N, 1, H, W)
        weight = 1 + self.cfg.change_weight * changed
        loss = (weight * (pred - nxt) ** 2).mean() / weight.mean()
        b, t = frames.shape[:2]
        return LAMOutput(loss=loss, actions=q.indices.view(b, t - 2))

"""Tubelet ViT encoder and the masked-token predictor used to pre-train it (stage 1, V-JEPA style).

A clip ``(B, T, H, W, 3)`` uint8 is cut into tubelets of ``tubelet`` frames x ``patch`` x ``patch`` pixels; each
becomes one token. The ViT returns per-token features ``(B, N, D)``; an attentive pooler (``slots`` learned
queries, values carrying the tokens' positions) summarises them into the latent ``(B, slots, c)``. A *frame
latent* ``(B, slots * c)`` is the pooled latent of one tubelet: the frame and the one before it.

Why pooling with attention: softmax weights are normalised, so a query that attends to the tokens of one
colour returns the *centroid* of their positions whatever the object's size, which keeps positions linearly
readable (a per-patch code would need a division by the object's area).

Pre-training (V-JEPA with a bottleneck): from the latent of tubelet ``t`` alone, the predictor must recover the
target encoder's features of the tokens of tubelet ``t`` (hidden behind the bottleneck) and of the *future*
tubelet ``t + 1`` (masked entirely), at query positions. It never sees a token directly, so everything it
needs (where each object is, how it moves) has to pass through the latent.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gedanken.models.jepa.blocks import Block, init_weights, sincos_2d
from gedanken.models.jepa.config import EncoderConfig


def frames_to_float(frames: Tensor) -> Tensor:
    """uint8 ``(..., H, W, 3)`` -> float ``(..., 3, H, W)`` in ``[-1, 1]``."""
    if frames.dtype != torch.uint8:
        raise ValueError(f"frames must be uint8 (..., H, W, 3), got {frames.dtype}")
    return frames.movedim(-1, -3).float().div(127.5).sub(1.0)


class TubeletEncoder(nn.Module):
    """ViT over tubelet tokens with fixed 2-D sincos positions plus a learned embedding per tubelet index."""

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Conv3d(
            3,
            cfg.dim,
            kernel_size=(cfg.tubelet, cfg.patch, cfg.patch),
            stride=(cfg.tubelet, cfg.patch, cfg.patch),
        )
        self.register_buffer("pos_space", sincos_2d(cfg.grid, cfg.grid, cfg.dim), persistent=False)
        self.pos_time = nn.Parameter(torch.zeros(cfg.clip_tubelets, cfg.dim))
        self.blocks = nn.ModuleList(Block(cfg.dim, cfg.heads) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.dim)
        self.queries = nn.Parameter(torch.zeros(cfg.slots, cfg.dim))
        self.pool = nn.MultiheadAttention(cfg.dim, cfg.heads, batch_first=True)
        self.pos_value = nn.Linear(cfg.dim, cfg.dim, bias=False)
        self.head = nn.Sequential(nn.LayerNorm(cfg.dim), nn.Linear(cfg.dim, cfg.latent_channels))
        init_weights(self)
        nn.init.trunc_normal_(self.pos_time, std=0.02)
        nn.init.trunc_normal_(self.queries, std=0.02)
        # Unit-scale latents from the start: at z = 0 every characteristic-function term of SIGReg is flat,
        # so a latent that starts (or falls) near a point gets no gradient back out.
        nn.init.normal_(self.head[1].weight, std=cfg.dim**-0.5)

    def positions(self, tubelets: int) -> Tensor:
        """Position embeddings ``(tubelets * grid^2, D)`` of all tokens of a clip."""
        return (self.pos_space[None] + self.pos_time[:tubelets, None]).flatten(0, 1)

    def tokens(self, frames: Tensor) -> Tensor:
        """uint8 clip ``(B, T, H, W, 3)`` -> embedded tokens ``(B, N, D)``, ``N = T / tubelet * grid^2``."""
        b, t, h, w, _ = frames.shape
        c = self.cfg
        if h != c.image_size or w != c.image_size:
            raise ValueError(f"encoder expects {c.image_size}x{c.image_size} frames, got {h}x{w}")
        if t % c.tubelet:
            raise ValueError(f"clip length {t} is not a multiple of the tubelet length {c.tubelet}")
        nt = t // c.tubelet
        if nt > c.clip_tubelets:
            raise ValueError(f"clip of {nt} tubelets exceeds clip_tubelets={c.clip_tubelets}")
        x = frames_to_float(frames).transpose(1, 2)  # (B, 3, T, H, W)
        x = self.embed(x).flatten(3).permute(0, 2, 3, 1).flatten(1, 2)  # (B, N, D)
        return x + self.positions(nt)[None]

    def features(self, tokens: Tensor) -> Tensor:
        """Run the blocks over (possibly a subset of) tokens ``(B, n, D)`` -> normalised features ``(B, n, D)``."""
        for blk in self.blocks:
            tokens, _ = blk(tokens)
        return self.norm(tokens)

    def latent(self, feats: Tensor, idx: Tensor | None, tubelets: int) -> Tensor:
        """Pool features ``(B, n, D)`` of the tokens at indices ``idx`` ``(B, n)`` (all when None) -> ``(B, S, c)``."""
        pos = self.positions(tubelets)  # (N, D)
        pos = pos[None].expand(feats.shape[0], -1, -1) if idx is None else pos[idx]  # (B, n, D)
        q = self.queries[None].expand(feats.shape[0], -1, -1)
        pooled, _ = self.pool(q, feats + pos, feats + self.pos_value(pos), need_weights=False)  # (B, S, D)
        return self.head(pooled)

    def forward(self, frames: Tensor) -> Tensor:
        """uint8 clip ``(B, T, H, W, 3)`` -> latents ``(B, S, c)`` of the whole clip."""
        nt = frames.shape[1] // self.cfg.tubelet
        return self.latent(self.features(self.tokens(frames)), None, nt)

    def encode_frames(self, frames: Tensor, chunk: int = 512) -> Tensor:
        """Frame latents ``(B, T, d_z)`` of a uint8 sequence ``(B, T, H, W, 3)``.

        The latent of frame ``t`` encodes the tubelet (frame ``t - 1``, frame ``t``); frame 0 is paired with
        itself (at rest), as V-JEPA 2-AC does for single images.
        """
        b, t = frames.shape[:2]
        k = self.cfg.tubelet
        idx = torch.arange(t, device=frames.device)[:, None] + torch.arange(-k + 1, 1, device=frames.device)
        tubes = frames[:, idx.clamp(min=0)].flatten(0, 1)  # (B * T, k, H, W, 3)
        out = [self(tubes[i : i + chunk]).flatten(1) for i in range(0, tubes.shape[0], chunk)]
        return torch.cat(out).view(b, t, -1)  # (B, T, S * c)


class MaskedPredictor(nn.Module):
    """Predicts the target features of masked tokens from the masked view's latent (the JEPA predictor)."""

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.inp = nn.Linear(cfg.latent_channels, cfg.pred_dim)
        self.slot_embed = nn.Parameter(torch.zeros(cfg.slots, cfg.pred_dim))
        self.mask_token = nn.Parameter(torch.zeros(cfg.pred_dim))
        self.register_buffer("pos_space", sincos_2d(cfg.grid, cfg.grid, cfg.pred_dim), persistent=False)
        self.pos_time = nn.Parameter(torch.zeros(cfg.predict_tubelets, cfg.pred_dim))
        self.blocks = nn.ModuleList(
            Block(cfg.pred_dim, max(1, cfg.pred_dim // 16)) for _ in range(cfg.pred_depth)
        )
        self.norm = nn.LayerNorm(cfg.pred_dim)
        self.out = nn.Linear(cfg.pred_dim, cfg.dim)
        init_weights(self)
        for p in (self.slot_embed, self.mask_token, self.pos_time):
            nn.init.trunc_normal_(p, std=0.02)

    def forward(self, latent: Tensor, masked: Tensor) -> Tensor:
        """Latent ``(B, S, c)`` -> features ``(B, n, D)`` at token indices ``masked`` ``(B, n)`` of the
        ``predict_tubelets x grid^2`` target tokens (tubelet-major)."""
        pos = (self.pos_space[None] + self.pos_time[:, None]).flatten(0, 1)  # (N, Dp)
        ctx = self.inp(latent) + self.slot_embed  # (B, S, Dp)
        qry = self.mask_token + pos[masked]  # (B, n_mask, Dp)
        x = torch.cat((ctx, qry), dim=1)
        for blk in self.blocks:
            x, _ = blk(x)
        return self.out(self.norm(x[:, ctx.shape[1] :]))


def query_positions(batch: int, tokens: int, ratio: float, device: torch.device | str = "cpu") -> Tensor:
    """Random subsets ``(B, n)`` of ``n = round(ratio * tokens)`` target token indices, one per sample."""
    n = max(1, min(tokens, round(ratio * tokens)))
    return torch.rand(batch, tokens, device=device).argsort(dim=1)[:, :n].sort(dim=1).values


def gather_tokens(x: Tensor, idx: Tensor) -> Tensor:
    """``x`` ``(B, N, D)`` at per-sample indices ``idx`` ``(B, n)`` -> ``(B, n, D)``."""
    return torch.gather(x, 1, idx[..., None].expand(-1, -1, x.shape[-1]))

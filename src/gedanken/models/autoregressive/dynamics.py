"""The dynamics model: a spatio-temporal transformer over frame tokens plus per-frame action embeddings.

Each block attends *within a frame* (all ``N = h * w`` tokens of one time step, bidirectional), then *across
frames* (each spatial position attends to itself in the current and the previous ``window - 1`` frames,
causally), then applies an MLP. Positions enter through spacetime RoPE on ``(t, y, x)``, so only relative
offsets matter: a model trained on ``window``-frame clips rolls out for any number of frames with a sliding
window of cached keys and values.

The action that leads from frame ``t`` to ``t + 1`` is embedded and added to every token of frame ``t + 1``
(frame 0 of a clip gets a learned "no action" embedding). Masked tokens are replaced by a learned mask
embedding; the head predicts logits over the tokenizer's vocabulary for every token (MaskGIT training).

With ``factorized=True`` (FSQ tokenizers) a token is read and predicted through its per-channel FSQ digits:
the input embedding is the sum of one small embedding per channel, and the head is one softmax per channel
(``sum(levels)`` outputs instead of ``prod(levels)``), whose log-probabilities add up to the token's. Codes
that differ in one digit then share most of their parameters, so a patch whose content shifts by a pixel (one
digit moves one level) is a small, learnable step instead of a jump to an unrelated class of 4375.

Shapes: tokens ``(B, T, N)`` int64 (``-1`` or ``vocab`` = masked), action embeddings ``(B, T, D)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gedanken.models.autoregressive.heads import ChainHead, FactorHead
from gedanken.nn.attention import KV, Attention
from gedanken.nn.rope import RopeConfig, SpacetimeRope
from gedanken.tokenizers.fsq import FSQ, FSQConfig


@dataclass(frozen=True)
class DynamicsConfig:
    """Architecture of :class:`DynamicsTransformer`."""

    dim: int = 128  # token width D
    depth: int = 4  # number of spatio-temporal blocks
    heads: int = 4  # attention heads (dim / heads must be even, for RoPE)
    mlp_ratio: float = 3.0  # MLP hidden width as a multiple of dim
    window: int = 8  # frames each token attends to (itself + window - 1 past frames); also the training clip
    factorized: bool = False  # per-FSQ-channel embeddings and softmaxes instead of one table over the vocab
    chained: bool = False  # factorized only: each digit's softmax also reads the digits before it (heads.py)
    change_weight: float = 1.0  # training loss weight of tokens that differ from the previous frame's
    # share of training transitions whose action embedding is replaced by the learned "no action" one, so
    # that the sampler can guide on actions (MaskGITConfig.action_guidance); 1 = unconditional: every
    # transition, in training and rollout, is "no action" (passive video, where a latent action read off the
    # true next frame would carry what the rollout has to predict)
    action_dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.dim % self.heads or (self.dim // self.heads) % 2:
            raise ValueError(f"dim {self.dim} must split into {self.heads} heads of even width")
        if self.window < 2:
            raise ValueError(f"window must be >= 2 frames, got {self.window}")
        if self.change_weight <= 0:
            raise ValueError(f"change_weight must be > 0, got {self.change_weight}")
        if self.chained and not self.factorized:
            raise ValueError("a chained head predicts FSQ digits: it needs factorized=True")
        if not 0.0 <= self.action_dropout <= 1.0:
            raise ValueError(f"action_dropout must be in [0, 1], got {self.action_dropout}")

    @property
    def unconditional(self) -> bool:
        """Whether every transition is embedded as "no action" (``action_dropout == 1``)."""
        return self.action_dropout >= 1.0


@dataclass
class DynamicsCache:
    """Keys/values of the committed past frames, per block, for the temporal attention of the next frame."""

    layers: list[KV | None]  # per block: k, v of shape (B N, heads, M, dh), M <= window - 1 past frames
    t: int = 0  # absolute index of the next frame to be generated (RoPE time coordinate)


class _Block(nn.Module):
    def __init__(self, cfg: DynamicsConfig) -> None:
        super().__init__()
        d = cfg.dim
        self.norm_s, self.norm_t, self.norm_m = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)
        self.spatial = Attention(d, cfg.heads)
        self.temporal = Attention(d, cfg.heads)
        hidden = int(d * cfg.mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(d, hidden), nn.GELU(), nn.Linear(hidden, d))

    def forward(
        self,
        x: Tensor,
        rope_s: tuple[Tensor, Tensor],
        rope_t: tuple[Tensor, Tensor],
        t_mask: Tensor | None,
        prefix: KV | None = None,
    ) -> tuple[Tensor, KV]:
        """``x`` (B, T, N, D); spatial rope tables over N, temporal over T. Returns x and this call's temporal KV."""
        b, t, n, d = x.shape
        h, _ = self.spatial(self.norm_s(x).reshape(b * t, n, d), rope_s)
        x = x + h.view(b, t, n, d)
        xt = self.norm_t(x).transpose(1, 2).reshape(b * n, t, d)  # (B N, T, D)
        h, own = self.temporal(xt, rope_t, mask=t_mask, prefix=prefix)
        x = x + h.view(b, n, t, d).transpose(1, 2)
        return x + self.mlp(self.norm_m(x)), own


class _FactorEmbedding(nn.Module):
    """Sum of one embedding per FSQ channel; index ``vocab`` is the mask token (its own learned vector)."""

    def __init__(self, levels: tuple[int, ...], dim: int) -> None:
        super().__init__()
        self.fsq = FSQ(FSQConfig(tuple(levels)))  # the index <-> per-channel digit split
        self.vocab = math.prod(levels)
        self.tables = nn.ModuleList(nn.Embedding(lv, dim) for lv in levels)
        self.mask = nn.Parameter(torch.zeros(dim))

    def forward(self, tokens: Tensor) -> Tensor:
        masked = tokens >= self.vocab
        d = self.fsq.digits(tokens.clamp(max=self.vocab - 1))  # (*S, c)
        x = sum(table(d[..., i]) for i, table in enumerate(self.tables))
        return torch.where(masked[..., None], self.mask.to(x.dtype), x)


class DynamicsTransformer(nn.Module):
    """Masked token prediction over clips of frames; see the module docstring."""

    def __init__(
        self, cfg: DynamicsConfig, vocab: int, grid: tuple[int, int], levels: tuple[int, ...] = ()
    ) -> None:
        super().__init__()
        self.cfg, self.vocab, self.grid = cfg, vocab, grid
        if cfg.factorized and math.prod(levels) != vocab:
            raise ValueError(
                f"a factorized head needs FSQ levels whose product is the vocab {vocab}, got {levels}"
            )
        self.embed: nn.Module = (
            _FactorEmbedding(levels, cfg.dim) if cfg.factorized else nn.Embedding(vocab + 1, cfg.dim)
        )  # index ``vocab`` is the mask token
        self.no_action = nn.Parameter(torch.zeros(cfg.dim))
        self.blocks = nn.ModuleList(_Block(cfg) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.dim)
        head = ChainHead if cfg.chained else FactorHead
        self.head: nn.Module = head(levels, cfg.dim) if cfg.factorized else nn.Linear(cfg.dim, vocab)
        self.rope = SpacetimeRope(RopeConfig(head_dim=cfg.dim // cfg.heads))
        gh, gw = grid
        yy, xx = torch.meshgrid(torch.arange(gh), torch.arange(gw), indexing="ij")
        self.register_buffer("_yx", torch.stack([yy.flatten(), xx.flatten()], -1).float(), persistent=False)

    def chain_head(self) -> None:
        """Replace the factorized head by a :class:`ChainHead` that starts out computing exactly what it did."""
        if not self.cfg.factorized or self.cfg.chained:
            raise ValueError("chain_head grows a factorized head that is not chained yet")
        self.head = ChainHead.from_factor(self.head)
        self.cfg = replace(self.cfg, chained=True)

    @property
    def mask_id(self) -> int:
        """Token id that marks a masked position."""
        return self.vocab

    def _ropes(self, t0: int, t: int) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]:
        n = self._yx.shape[0]
        zeros = torch.zeros(n, 1, device=self._yx.device)
        rope_s = self.rope.tables(torch.cat([zeros, self._yx], -1))  # (N, dh/2); time cancels within a frame
        times = torch.arange(t0, t0 + t, device=self._yx.device, dtype=torch.float32)[:, None]
        rope_t = self.rope.tables(torch.cat([times, torch.zeros(t, 2, device=times.device)], -1))  # (T, dh/2)
        return rope_s, rope_t

    def _inputs(self, tokens: Tensor, action_emb: Tensor) -> Tensor:
        tok = torch.where(tokens < 0, torch.full_like(tokens, self.mask_id), tokens)
        return self.embed(tok) + action_emb[:, :, None, :]  # (B, T, N, D)

    def temporal_mask(self, t: int, device: torch.device) -> Tensor:
        """(T, T) bool: frame i may attend to frame j iff ``i - window < j <= i``."""
        i = torch.arange(t, device=device)
        diff = i[:, None] - i[None, :]
        return (diff >= 0) & (diff < self.cfg.window)

    def features(self, tokens: Tensor, action_emb: Tensor) -> Tensor:
        """Final normed features ``(B, T, N, D)`` for a whole clip (training); ``action_emb`` (B, T, D)."""
        b, t, n = tokens.shape
        if n != self._yx.shape[0]:
            raise ValueError(f"expected {self._yx.shape[0]} tokens per frame (grid {self.grid}), got {n}")
        x = self._inputs(tokens, action_emb)
        rope_s, rope_t = self._ropes(0, t)
        mask = self.temporal_mask(t, tokens.device)
        for blk in self.blocks:
            x, _ = blk(x, rope_s, rope_t, mask)
        return self.norm(x)

    def logits(self, h: Tensor) -> Tensor:
        """Features ``(*S, D)`` -> logits ``(*S, vocab)`` (log-probabilities for a factorized head)."""
        return self.head.log_probs(h) if self.cfg.factorized else self.head(h)

    def predict(self, h: Tensor) -> Tensor:
        """Most likely token indices ``(*S,)`` of features ``(*S, D)`` (per digit for a factorized head)."""
        return self.head.greedy(h)[0] if self.cfg.factorized else self.head(h).argmax(-1)

    def token_loss(self, h: Tensor, target: Tensor) -> Tensor:
        """Per-token cross-entropy ``(*S,)`` of features ``(*S, D)`` against token indices ``(*S,)``."""
        if self.cfg.factorized:
            return self.head.loss(h, target)
        return F.cross_entropy(self.head(h), target, reduction="none")

    def forward(self, tokens: Tensor, action_emb: Tensor) -> Tensor:
        """Logits ``(B, T, N, vocab)`` for a whole clip; ``action_emb`` (B, T, D)."""
        return self.logits(self.features(tokens, action_emb))

    def empty_cache(self) -> DynamicsCache:
        """A cache with no past frames."""
        return DynamicsCache(layers=[None] * len(self.blocks), t=0)

    def step_logits(
        self, tokens: Tensor, action_emb: Tensor, cache: DynamicsCache, guidance: float = 1.0
    ) -> Tensor:
        """Logits ``(B, N, vocab)`` for one frame ``tokens`` (B, N) given the cached past; cache untouched.
        With ``guidance`` > 1, log-probabilities guided against the same frame under no action."""
        if guidance == 1.0:
            return self._frame(tokens, action_emb, cache)[0]
        h, free = self._guided_pair(tokens, action_emb, cache)
        if self.cfg.factorized:
            return self.head.log_probs(h, free, guidance)
        c, u = self.head(h).log_softmax(-1), self.head(free).log_softmax(-1)
        return c + (guidance - 1) * (c - u)

    def step_greedy(
        self, tokens: Tensor, action_emb: Tensor, cache: DynamicsCache, guidance: float = 1.0
    ) -> tuple[Tensor, Tensor]:
        """Most likely tokens ``(B, N)`` and their log-probabilities for one frame (factorized heads only:
        the argmax of each channel, without building the ``(B, N, vocab)`` logits); cache untouched."""
        if not self.cfg.factorized:
            raise ValueError("step_greedy needs a factorized head; use step_logits")
        if guidance == 1.0:
            x, _ = self._frame(tokens, action_emb, cache, need_logits=False)
            return self.head.greedy(self.norm(x))
        return self.head.greedy(*self._guided_pair(tokens, action_emb, cache), guidance)

    def step_sample(
        self,
        tokens: Tensor,
        action_emb: Tensor,
        cache: DynamicsCache,
        temperature: float,
        generator: torch.Generator | None = None,
        guidance: float = 1.0,
    ) -> tuple[Tensor, Tensor]:
        """Tokens ``(B, N)`` drawn at ``temperature`` and their tempered log-probabilities for one frame
        (factorized heads only: one channel at a time, see :meth:`heads.FactorHead.sample`); cache untouched."""
        if not self.cfg.factorized:
            raise ValueError("step_sample needs a factorized head; use step_logits")
        if guidance == 1.0:
            x, _ = self._frame(tokens, action_emb, cache, need_logits=False)
            return self.head.sample(self.norm(x), temperature, generator)
        h, free = self._guided_pair(tokens, action_emb, cache)
        return self.head.sample(h, temperature, generator, free, guidance)

    def _guided_pair(self, tokens: Tensor, action_emb: Tensor, cache: DynamicsCache) -> tuple[Tensor, Tensor]:
        """Normalised features of one frame under ``action_emb`` and under the learned "no action"."""
        x, _ = self._frame(tokens, action_emb, cache, need_logits=False)
        free, _ = self._frame(tokens, self.no_action.expand_as(action_emb), cache, need_logits=False)
        return self.norm(x), self.norm(free)

    def commit(self, tokens: Tensor, action_emb: Tensor, cache: DynamicsCache) -> DynamicsCache:
        """Append a finished frame ``tokens`` (B, N) to the cache (keeps the last ``window - 1`` frames)."""
        _, kvs = self._frame(tokens, action_emb, cache, need_logits=False)
        keep = self.cfg.window - 1
        layers: list[KV | None] = []
        for old, new in zip(cache.layers, kvs, strict=True):
            k = new.k if old is None else torch.cat([old.k, new.k], dim=2)
            v = new.v if old is None else torch.cat([old.v, new.v], dim=2)
            layers.append(KV(k[:, :, -keep:], v[:, :, -keep:]))
        return DynamicsCache(layers=layers, t=cache.t + 1)

    def _frame(
        self, tokens: Tensor, action_emb: Tensor, cache: DynamicsCache, need_logits: bool = True
    ) -> tuple[Tensor, list[KV]]:
        x = self._inputs(tokens[:, None], action_emb[:, None])  # (B, 1, N, D)
        rope_s, rope_t = self._ropes(cache.t, 1)
        kvs = []
        for blk, prefix in zip(self.blocks, cache.layers, strict=True):
            x, own = blk(x, rope_s, rope_t, None, prefix)
            kvs.append(own)
        logits = self.logits(self.norm(x[:, 0])) if need_logits else x[:, 0]
        return logits, kvs

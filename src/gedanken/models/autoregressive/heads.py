"""Output heads that predict an FSQ token through its digits (``DynamicsConfig.factorized``).

:class:`FactorHead` has one softmax per FSQ channel and takes the digits as independent: a token's
log-probability is the sum of its digits'. That is cheap (``sum(levels)`` outputs instead of ``prod(levels)``) and
lets codes that differ in one digit share parameters, but where the next frame could go two ways (a ball that
may or may not rebound) each digit is predicted from its own marginal, and the token picked or drawn can mix
digits of both outcomes: a code of neither.

:class:`ChainHead` (``DynamicsConfig.chained``) predicts the digits one after another, channel 0 first: channel
``c``'s softmax also reads the digits before it, through one embedding table per earlier channel and a small MLP
whose output is added to the factorized logits. The MLP's last layer starts at zero, so a chain head grown from a
factorized one (:meth:`ChainHead.from_factor`) computes exactly what it did, and training can then learn how the
digits of one token go together. Greedy decoding takes the argmax of each channel given the digits already chosen
(not the joint argmax, which would cost ``prod(levels)`` evaluations); sampling draws each channel from its
tempered conditional (at temperature 1 exactly the joint distribution of :meth:`ChainHead.log_probs`).

Guidance (``unguided`` features: the same frame under no action) is applied per channel, to the channel's
conditional given the same earlier digits: ``c + (g - 1) (c - u)``, renormalised.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gedanken.tokenizers.fsq import FSQ, FSQConfig


def _guide(c: Tensor, u: Tensor | None, guidance: float) -> Tensor:
    """Log-probabilities ``c`` guided against ``u`` (``None``: unguided), renormalised."""
    return c if u is None else (c + (guidance - 1) * (c - u)).log_softmax(-1)


def _pick(logp: Tensor, temperature: float, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
    """Digits ``(*S,)`` of log-probabilities ``(*S, L)`` (argmax at temperature 0, else a tempered draw) and their
    log-probability at that temperature."""
    if temperature == 0:
        best = logp.max(-1)
        return best.indices, best.values
    q = (logp / temperature).log_softmax(-1)
    d = torch.multinomial(q.exp().flatten(0, -2), 1, generator=generator).view(q.shape[:-1])
    return d, q.gather(-1, d[..., None])[..., 0]


class FactorHead(nn.Module):
    """One softmax per FSQ channel; a token's log-probability is the sum of its digits'."""

    def __init__(self, levels: tuple[int, ...], dim: int) -> None:
        super().__init__()
        self.fsq = FSQ(FSQConfig(tuple(levels)))  # the index <-> per-channel digit split
        self.levels = tuple(int(v) for v in levels)
        self.proj = nn.Linear(dim, sum(self.levels))

    def parts(self, h: Tensor, unguided: Tensor | None = None, guidance: float = 1.0) -> list[Tensor]:
        """Per-channel log-probabilities ``(*S, L_c)`` of features ``h`` (guided when ``unguided`` is given)."""
        parts = [p.log_softmax(-1) for p in self.proj(h).split(self.levels, -1)]
        if unguided is None:
            return parts
        free = [p.log_softmax(-1) for p in self.proj(unguided).split(self.levels, -1)]
        return [_guide(c, u, guidance) for c, u in zip(parts, free, strict=True)]

    def log_probs(self, h: Tensor, unguided: Tensor | None = None, guidance: float = 1.0) -> Tensor:
        """``(*S, D)`` -> ``(*S, V)`` token log-probabilities (guided as in :meth:`parts`)."""
        parts = self.parts(h, unguided, guidance)
        # Outer sum, last channel outermost: flattening puts channel 0 fastest, as FSQ's mixed-radix index
        # does (broadcast adds; indexing a (V, c) table is ~10x slower on CPU).
        out = parts[-1]
        for p in reversed(parts[:-1]):
            out = (out[..., :, None] + p[..., None, :]).flatten(-2)
        return out

    def greedy(
        self, h: Tensor, unguided: Tensor | None = None, guidance: float = 1.0
    ) -> tuple[Tensor, Tensor]:
        """Most likely token indices ``(*S,)`` and their log-probabilities: the argmax of each channel."""
        return self.sample(h, 0.0, None, unguided, guidance)

    def sample(
        self,
        h: Tensor,
        temperature: float,
        generator: torch.Generator | None = None,
        unguided: Tensor | None = None,
        guidance: float = 1.0,
    ) -> tuple[Tensor, Tensor]:
        """Token indices ``(*S,)`` drawn at ``temperature`` (0: the argmax) and their log-probabilities at that
        temperature, one channel at a time. A token's probability is the product of its digits', so its tempered
        distribution is the product of the channels' tempered ones: this draws exactly what a draw from the
        ``(*S, V)`` tempered softmax of :meth:`log_probs` would, without building it."""
        digits, logp = [], torch.zeros(h.shape[:-1], device=h.device)
        for p in self.parts(h, unguided, guidance):
            d, lp = _pick(p, temperature, generator)
            digits.append(d)
            logp = logp + lp
        return self.fsq.digits_to_indices(torch.stack(digits, -1)), logp

    def loss(self, h: Tensor, target: Tensor) -> Tensor:
        """Per-token negative log-likelihood ``(*S,)`` of ``target`` indices."""
        d = self.fsq.digits(target)
        parts = self.proj(h).split(self.levels, -1)
        return sum(F.cross_entropy(p, d[..., i], reduction="none") for i, p in enumerate(parts))


class ChainHead(FactorHead):
    """FSQ digits predicted one after another: channel ``c`` also reads the digits of channels ``< c``."""

    def __init__(self, levels: tuple[int, ...], dim: int) -> None:
        super().__init__(levels, dim)
        later = self.levels[1:]
        # prev[c - 1][j]: embedding of channel j's digit, read by channel c (j < c)
        self.prev = nn.ModuleList(
            nn.ModuleList(nn.Embedding(lv, dim) for lv in self.levels[:c]) for c in range(1, len(self.levels))
        )
        self.mix = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, lv))
            for lv in later
        )
        for m in self.mix:
            nn.init.zeros_(m[-1].weight)  # starts as the factorized head: the chain adds nothing yet
            nn.init.zeros_(m[-1].bias)

    @classmethod
    def from_factor(cls, head: FactorHead) -> ChainHead:
        """A chain head that computes exactly what the factorized ``head`` does, ready to learn the rest."""
        dim = head.proj.in_features
        chain = cls(head.levels, dim).to(head.proj.weight.device)
        chain.proj.load_state_dict(head.proj.state_dict())
        return chain

    def parts(self, h: Tensor, unguided: Tensor | None = None, guidance: float = 1.0) -> list[Tensor]:
        """Not defined for a chain: its channels' distributions depend on the digits before them."""
        raise ValueError("a chained head has no per-channel marginals: use log_probs, sample or greedy")

    def _conditional(self, base: list[Tensor], h: Tensor, c: int, before: list[Tensor]) -> Tensor:
        """Channel ``c``'s log-probabilities ``(*S, L_c)`` given the digits ``before`` (one ``(*S,)`` per channel
        ``< c``); ``base`` holds the factorized logits per channel."""
        if c == 0:
            return base[0].log_softmax(-1)
        z = h + sum(table(d) for table, d in zip(self.prev[c - 1], before, strict=True))
        return (base[c] + self.mix[c - 1](z)).log_softmax(-1)

    def sample(
        self,
        h: Tensor,
        temperature: float,
        generator: torch.Generator | None = None,
        unguided: Tensor | None = None,
        guidance: float = 1.0,
    ) -> tuple[Tensor, Tensor]:
        """Token indices ``(*S,)`` and their log-probabilities at ``temperature``, one channel at a time, each
        picked (argmax at 0, else drawn from its tempered conditional) given the digits already picked."""
        base = self.proj(h).split(self.levels, -1)
        free = None if unguided is None else self.proj(unguided).split(self.levels, -1)
        digits: list[Tensor] = []
        logp = torch.zeros(h.shape[:-1], device=h.device)
        for c in range(len(self.levels)):
            p = self._conditional(base, h, c, digits)
            u = None if free is None else self._conditional(free, unguided, c, digits)
            d, lp = _pick(_guide(p, u, guidance), temperature, generator)
            digits.append(d)
            logp = logp + lp
        return self.fsq.digits_to_indices(torch.stack(digits, -1)), logp

    def log_probs(self, h: Tensor, unguided: Tensor | None = None, guidance: float = 1.0) -> Tensor:
        """``(*S, D)`` -> ``(*S, V)`` token log-probabilities: every channel's conditional for every combination
        of the digits before it (``prod(levels[:c])`` of them; for analysis and tests, not the sampler's path)."""
        base = self.proj(h).split(self.levels, -1)
        free = None if unguided is None else self.proj(unguided).split(self.levels, -1)
        out = _guide(base[0].log_softmax(-1), None if free is None else free[0].log_softmax(-1), guidance)
        for c in range(1, len(self.levels)):
            n = math.prod(self.levels[:c])  # prefixes, channel 0 fastest (FSQ's mixed radix)
            before = list(self.fsq.digits(torch.arange(n, device=h.device))[:, :c].unbind(-1))
            hx = h[..., None, :].expand(*h.shape[:-1], n, h.shape[-1])
            bx = [b[..., None, :].expand(*b.shape[:-1], n, b.shape[-1]) for b in base]
            p = self._conditional(bx, hx, c, before)  # (*S, n, L_c)
            if free is not None:
                ux = unguided[..., None, :].expand_as(hx)
                fx = [b[..., None, :].expand(*b.shape[:-1], n, b.shape[-1]) for b in free]
                p = _guide(p, self._conditional(fx, ux, c, before), guidance)
            out = (out[..., None, :] + p.transpose(-1, -2)).flatten(-2)  # index = prefix + n * digit
        return out

    def loss(self, h: Tensor, target: Tensor) -> Tensor:
        """Per-token negative log-likelihood ``(*S,)`` of ``target`` indices (each channel given the true digits
        before it)."""
        d = self.fsq.digits(target)
        base = self.proj(h).split(self.levels, -1)
        before = list(d.unbind(-1))
        nll = torch.zeros(h.shape[:-1], device=h.device)
        for c in range(len(self.levels)):
            p = self._conditional(base, h, c, before[:c])
            nll = nll - p.gather(-1, d[..., c, None])[..., 0]
        return nll

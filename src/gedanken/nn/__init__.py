"""Shared neural blocks: residual conv block, spacetime RoPE, attention with a KV prefix, AdaLN-Zero DiT blocks, spacetime patches."""

from gedanken.nn.adaln import DiTBlock, FinalLayer, TimeEmbedder, timestep_embedding
from gedanken.nn.attention import KV, Attention
from gedanken.nn.conv import ResBlock
from gedanken.nn.patchify import PatchGrid, SpacetimePatchifier
from gedanken.nn.rope import RopeConfig, SpacetimeRope

__all__ = [
    "KV",
    "Attention",
    "DiTBlock",
    "FinalLayer",
    "PatchGrid",
    "ResBlock",
    "RopeConfig",
    "SpacetimePatchifier",
    "SpacetimeRope",
    "TimeEmbedder",
    "timestep_embedding",
]

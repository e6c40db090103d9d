"""A preallocated key/value cache that can drop finished rows."""

from __future__ import annotations

import torch


class KVCache:
    """Keys and values of every layer, ``[layers, batch, heads, max_len, head_dim]``, allocated once.

    ``append`` writes a layer's new keys/values at the current position and returns the filled part;
    ``advance`` moves the position once every layer has appended; ``keep`` drops rows.
    """

    def __init__(self, layers: int, batch: int, heads: int, max_len: int, head_dim: int,
                 dtype=torch.float32, device=None):
        self.k = torch.empty(layers, batch, heads, max_len, head_dim, dtype=dtype, device=device)
        self.v = torch.empty_like(self.k)
        self.pos = 0

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        end = self.pos + k.shape[2]
        self.k[layer, :, :, self.pos:end] = k
        self.v[layer, :, :, self.pos:end] = v
        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]

    def advance(self, steps: int) -> None:
        self.pos += steps

    def keep(self, rows: torch.Tensor) -> None:
        # Copies only the filled prefix: the rest is overwritten before it is read.
        k = torch.empty(self.k.shape[0], len(rows), *self.k.shape[2:], dtype=self.k.dtype, device=self.k.device)
        v = torch.empty_like(k)
        k[:, :, :, : self.pos] = self.k[:, rows, :, : self.pos]
        v[:, :, :, : self.pos] = self.v[:, rows, :, : self.pos]
        self.k, self.v = k, v

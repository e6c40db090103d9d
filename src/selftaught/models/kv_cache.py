"""A preallocated key/value cache that can drop finished rows."""

from __future__ import annotations

import torch


class KVCache:
    """Keys and values of every layer, ``[layers, batch, heads, max_len, head_dim]``, allocated once.

    ``append`` writes a layer's new keys/values at the current position and returns the filled part;
    ``advance`` moves the position once every layer has appended; ``keep`` drops rows.

    ``whole``: a one-token decoding step (once ``decoding`` is set, after the prompts are in) reads
    the whole buffer, zeros past the position included (the step's mask must then cover every
    position; a one-token prompt's prefill reads only the filled part, as its mask does).
    oneDNN's bf16 batched matmul copies a strided operand, and the filled part of a preallocated
    buffer is strided: decoding SmolLM2 in bf16 spent a quarter of its time copying the cache
    (LOG.md); fp32 matmuls read the strided part in place.
    """

    def __init__(self, layers: int, batch: int, heads: int, max_len: int, head_dim: int,
                 dtype=torch.float32, device=None, whole: bool = False):
        make = torch.zeros if whole else torch.empty  # read whole, unwritten values weigh 0 x 0, never NaN
        self.k = make(layers, batch, heads, max_len, head_dim, dtype=dtype, device=device)
        self.v = make(layers, batch, heads, max_len, head_dim, dtype=dtype, device=device)
        self.pos = 0
        self.whole = whole
        self.decoding = False

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        end = self.pos + k.shape[2]
        self.k[layer, :, :, self.pos:end] = k
        self.v[layer, :, :, self.pos:end] = v
        if self.whole and self.decoding and k.shape[2] == 1:
            return self.k[layer], self.v[layer]
        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]

    def advance(self, steps: int) -> None:
        self.pos += steps

    def keep(self, rows: torch.Tensor) -> None:
        # Copies only the filled prefix: the rest is overwritten before it is read.
        make = torch.zeros if self.whole else torch.empty
        k = make(self.k.shape[0], len(rows), *self.k.shape[2:], dtype=self.k.dtype, device=self.k.device)
        v = make(self.k.shape[0], len(rows), *self.k.shape[2:], dtype=self.k.dtype, device=self.k.device)
        k[:, :, :, : self.pos] = self.k[:, rows, :, : self.pos]
        v[:, :, :, : self.pos] = self.v[:, rows, :, : self.pos]
        self.k, self.v = k, v

"""Our decoder-only transformer: one readable file, Llama-shaped (RMSNorm, SwiGLU, no biases).

Positional encoding is ``none`` (NoPE, which extends to longer inputs in the SIT paper) or
``rope``. Sampling dominates a self-improvement loop, so ``generate`` keeps a preallocated
key/value cache and drops finished rows from the batch as they finish.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from selftaught.models.kv_cache import KVCache


@dataclass
class TransformerConfig:
    vocab_size: int
    n_layers: int = 4
    d_model: int = 128
    n_heads: int = 4
    d_ff: int = 512  # SwiGLU hidden width
    max_len: int = 256
    positional: Literal["none", "rope"] = "none"
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5
    tie_embeddings: bool = True
    # What pretrained Llama-family checkpoints need (``models.hf_decoder``); the defaults are our own model.
    n_kv_heads: int = 0  # grouped-query attention: heads of keys and values (0 = n_heads)
    head_dim: int = 0  # 0 = d_model // n_heads
    qkv_bias: bool = False  # Qwen2
    qk_norm: bool = False  # Qwen3: RMSNorm of each head's queries and keys before rope
    # Gemma 3: embeddings scaled by sqrt(width), norms that multiply by (1 + weight) in fp32, a norm on
    # each branch's output too, GELU (tanh) gating, its own query scale, and local layers with a
    # rope table of their own
    embed_scale: float = 1.0
    norm_offset: float = 0.0
    sandwich_norms: bool = False
    activation: Literal["silu", "gelu_tanh"] = "silu"
    attn_scale: float = 0.0  # 0 = head_width ** -0.5
    local_layers: list[int] = field(default_factory=list)  # layers that read the local rope table

    def __post_init__(self):
        if not self.head_dim and self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})")
        if self.n_heads % self.kv_heads:
            raise ValueError(f"n_heads ({self.n_heads}) must be a multiple of n_kv_heads ({self.n_kv_heads})")
        if self.positional not in ("none", "rope"):
            raise ValueError(f"positional must be 'none' or 'rope', got {self.positional!r}")

    @property
    def kv_heads(self) -> int:
        return self.n_kv_heads or self.n_heads

    @property
    def head_width(self) -> int:
        return self.head_dim or self.d_model // self.n_heads


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class Rotary(nn.Module):
    """Rotary embedding in the non-interleaved ("rotate half") layout that Llama uses."""

    def __init__(self, head_dim: int, max_len: int, theta: float):
        super().__init__()
        self.max_len = max_len
        self.set_frequencies(1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))

    def set_frequencies(self, inv_freq: torch.Tensor, scale: float = 1.0) -> None:
        """Per-pair frequencies and an amplitude ``scale``: what a checkpoint's rope scaling
        (linear, llama3, yarn, ...) comes down to once positions are fixed."""
        freqs = torch.outer(torch.arange(self.max_len, dtype=torch.float32), inv_freq.float().cpu())
        emb = torch.cat((freqs, freqs), dim=-1)
        like = self.cos if hasattr(self, "cos") else emb  # keep the device and dtype the module was moved to
        self.register_buffer("cos", (emb.cos() * scale).to(like.device, like.dtype), persistent=False)
        self.register_buffer("sin", (emb.sin() * scale).to(like.device, like.dtype), persistent=False)

    def forward(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """cos and sin for ``positions`` [B, T], shaped to broadcast over [B, H, T, D]; computed
        once per forward and shared by every layer."""
        return self.cos[positions].unsqueeze(1), self.sin[positions].unsqueeze(1)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    return x * cos + _rotate_half(x) * sin


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float, offset: float = 0.0) -> torch.Tensor:
    """RMSNorm; with an ``offset``, Gemma's: in fp32, times (offset + weight), cast back."""
    if not offset:
        return F.rms_norm(x, (x.shape[-1],), weight, eps)
    return (F.rms_norm(x.float(), (x.shape[-1],), None, eps) * (offset + weight.float())).type_as(x)


class Packing:
    """Where the real tokens of a right-padded batch are, so that every per-token layer (norms,
    projections, MLP, head) runs on real tokens only; only attention sees a padded layout.

    ``groups``: the batch's rows as consecutive groups of these sizes (rows sorted by length), each
    attended at its own longest length, so that the per-token layers multiply the whole batch's
    tokens at once while attention wastes little on padding."""

    def __init__(self, valid: torch.Tensor, groups: Sequence[int] | None = None):
        self.B, self.T = valid.shape
        flat = valid.reshape(-1)
        self.index = flat.nonzero().squeeze(1)
        if groups is not None and sum(groups) != self.B:
            raise ValueError(f"groups {list(groups)} do not add up to the batch's {self.B} rows")
        # Each group's padded layout, gathered from the real tokens: a padding position takes token 0,
        # harmlessly, since causal attention never lets a real token read a later position.
        token = (flat.cumsum(0) - 1).clamp(min=0).view(self.B, self.T)
        longest = valid.sum(1)
        self.shapes: list[tuple[int, int]] = []
        take, real, start = [], [], 0
        for n in groups or [self.B]:
            rows = slice(start, start + n)
            t = int(longest[rows].max()) if n else 0
            self.shapes.append((n, t))
            take.append(token[rows, :t].reshape(-1))
            real.append(valid[rows, :t].reshape(-1))
            start += n
        is_real = torch.cat(real)
        self.take = torch.cat(take).where(is_real, 0)
        self.real = is_real.nonzero().squeeze(1)

    def unpad(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(self.B * self.T, -1).index_select(0, self.index)

    def attend(self, x: torch.Tensor, attention: Callable[[torch.Tensor, slice], torch.Tensor]) -> torch.Tensor:
        """``attention(padded rows [n, t, ...], which rows)`` over each group's padded layout, for the real
        tokens ``x``; its output for the real tokens."""
        padded = x.index_select(0, self.take).split([n * t for n, t in self.shapes])
        out, start = [], 0
        for part, (n, t) in zip(padded, self.shapes, strict=True):
            y = attention(part.view(n, t, -1), slice(start, start + n))
            out.append(y.reshape(n * t, -1))
            start += n
        return (out[0] if len(out) == 1 else torch.cat(out)).index_select(0, self.real)


class Block(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.n_heads, self.n_kv = cfg.n_heads, cfg.kv_heads
        self.head_dim = cfg.head_width
        self.eps = cfg.norm_eps
        self.attn_norm = nn.Parameter(torch.ones(cfg.d_model))
        self.qkv = nn.Linear(cfg.d_model, (self.n_heads + 2 * self.n_kv) * self.head_dim, bias=cfg.qkv_bias)
        self.out = nn.Linear(self.n_heads * self.head_dim, cfg.d_model, bias=False)
        if cfg.qk_norm:
            self.q_norm = nn.Parameter(torch.ones(self.head_dim))
            self.k_norm = nn.Parameter(torch.ones(self.head_dim))
        self.mlp_norm = nn.Parameter(torch.ones(cfg.d_model))
        self.gate_up = nn.Linear(cfg.d_model, 2 * cfg.d_ff, bias=False)
        self.down = nn.Linear(cfg.d_ff, cfg.d_model, bias=False)
        if cfg.sandwich_norms:
            self.post_attn_norm = nn.Parameter(torch.ones(cfg.d_model))
            self.post_mlp_norm = nn.Parameter(torch.ones(cfg.d_model))
        self.norm_offset = cfg.norm_offset
        self.scale = cfg.attn_scale or None  # None: SDPA's own 1 / sqrt(head width)
        self.act = F.silu if cfg.activation == "silu" else partial(F.gelu, approximate="tanh")

    def norm(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return rms_norm(x, weight, self.eps, self.norm_offset)

    def forward(self, x, rope: tuple[torch.Tensor, torch.Tensor] | None, cache: KVCache | None, layer: int,
                attn_mask, packed: Packing | None = None):
        qkv = self.qkv(self.norm(x, self.attn_norm))
        if packed is None:
            y = self.attend(qkv, rope, cache, layer, attn_mask)
        else:  # real tokens only so far; attention needs a padded [B, T] layout
            y = packed.attend(qkv, lambda part, rows: self.attend(
                part, None if rope is None else tuple(r[rows, :, :part.shape[1]] for r in rope), cache, layer,
                attn_mask))
        a = self.out(y)
        x = x + (self.norm(a, self.post_attn_norm) if hasattr(self, "post_attn_norm") else a)
        gate, up = self.gate_up(self.norm(x, self.mlp_norm)).chunk(2, dim=-1)
        m = self.down(self.act(gate) * up)
        return x + (self.norm(m, self.post_mlp_norm) if hasattr(self, "post_mlp_norm") else m)

    def attend(self, qkv: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None, cache: KVCache | None,
               layer: int, attn_mask) -> torch.Tensor:
        """Attention of the projected queries, keys and values ``qkv`` [B, T, ...]: [B, T, heads x head width]."""
        B, T = qkv.shape[:2]
        H, G, D = self.n_heads, self.n_kv, self.head_dim
        if G == H:
            q, k, v = qkv.view(B, T, 3, H, D).permute(2, 0, 3, 1, 4)
        else:
            q, k, v = (t.view(B, T, -1, D).transpose(1, 2) for t in qkv.split([H * D, G * D, G * D], dim=-1))
        if hasattr(self, "q_norm"):
            q, k = self.norm(q, self.q_norm), self.norm(k, self.k_norm)
        if rope is not None:
            q, k = apply_rotary(q, *rope), apply_rotary(k, *rope)
        if cache is not None:
            k, v = cache.append(layer, k, v)
        if T == 1 and cache is not None:
            # One new query against the cache: two batched matmuls beat SDPA's CPU kernel here and
            # read the cache views in place instead of copying them. The query heads that share a
            # key/value head are its rows (head h reads key head h // (H / G), as Llama's repeat_kv).
            qg = q.reshape(B, G, H // G, D)
            scores = (qg @ k.transpose(-1, -2)) * (self.scale or D**-0.5)
            if attn_mask is not None:
                scores = scores.masked_fill(~attn_mask, float("-inf"))
            y = (torch.softmax(scores, dim=-1) @ v).view(B, H, 1, D)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=attn_mask is None and T > 1,
                                               enable_gqa=G != H, scale=self.scale)
        return y.transpose(1, 2).reshape(B, T, H * D)


class Transformer(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.final_norm = nn.Parameter(torch.ones(cfg.d_model))
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.head.weight = self.embed.weight
        self.rotary = Rotary(cfg.head_width, cfg.max_len, cfg.rope_theta) if cfg.positional == "rope" else None
        self.local_rotary = Rotary(cfg.head_width, cfg.max_len, cfg.rope_theta) if cfg.local_layers else None
        self.apply(self._init)
        # GPT-2 style: shrink residual-branch outputs so depth does not blow up the residual stream.
        for name, p in self.named_parameters():
            if name.endswith(("out.weight", "down.weight")):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * cfg.n_layers))

    @staticmethod
    def _init(m: nn.Module):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(
        self,
        idx: torch.Tensor,
        positions: torch.Tensor | None = None,
        cache: KVCache | None = None,
        attn_mask: torch.Tensor | None = None,
        valid: torch.Tensor | None = None,
        groups: Sequence[int] | None = None,
    ) -> torch.Tensor:
        """Logits for every position. Without ``attn_mask`` attention is plain causal, which is
        right for right-padded training batches (padding only ever follows real tokens).

        ``valid`` ([B, T] bool, right-padded batches only): return logits ``[n_valid, vocab]`` for
        the real tokens in row-major order, computing nothing per token for the padding; ``groups``:
        with rows sorted by length, attend to them in groups of these sizes (``Packing``).
        """
        return self.head(self.features(idx, positions, cache, attn_mask, valid, groups))

    def features(
        self,
        idx: torch.Tensor,
        positions: torch.Tensor | None = None,
        cache: KVCache | None = None,
        attn_mask: torch.Tensor | None = None,
        valid: torch.Tensor | None = None,
        groups: Sequence[int] | None = None,
    ) -> torch.Tensor:
        """The normalised final states that the head turns into logits (same arguments as ``forward``)."""
        B, T = idx.shape
        if positions is None and self.rotary is not None:
            positions = torch.arange(T, device=idx.device).expand(B, T)
        rope = self.rotary(positions) if self.rotary is not None else None
        local = self.local_rotary(positions) if self.local_rotary is not None else None
        if valid is not None and (cache is not None or attn_mask is not None):
            raise ValueError("valid (packed real tokens) is for right-padded batches under plain causal attention: "
                             "it takes no cache and no attn_mask")
        packed = Packing(valid, groups) if valid is not None else None
        x = self.embed(idx if packed is None else packed.unpad(idx[..., None]).squeeze(-1))
        if self.cfg.embed_scale != 1.0:  # in the weights' dtype, as Gemma scales
            x = x * torch.tensor(self.cfg.embed_scale, dtype=x.dtype)
        for i, block in enumerate(self.blocks):
            x = block(x, local if i in self.cfg.local_layers else rope, cache, i, attn_mask, packed)
        return rms_norm(x, self.final_norm, self.cfg.norm_eps, self.cfg.norm_offset)

    # ---- persistence -------------------------------------------------------------------------

    def save(self, directory: str | Path) -> None:
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.contiguous() for k, v in self.state_dict().items()}
        if self.cfg.tie_embeddings:
            state.pop("head.weight")  # safetensors refuses shared storage; it is embed.weight
        save_file(state, str(directory / "model.safetensors"))
        (directory / "config.json").write_text(json.dumps(asdict(self.cfg), indent=2))

    @classmethod
    def load(cls, directory: str | Path) -> Transformer:
        directory = Path(directory)
        model = cls(TransformerConfig(**json.loads((directory / "config.json").read_text())))
        model.load_weights(directory)
        return model

    def load_weights(self, directory: str | Path) -> None:
        """Weights saved by ``save`` into this model (whose config must match)."""
        from safetensors.torch import load_file

        state = load_file(str(Path(directory) / "model.safetensors"), device=str(self.embed.weight.device))
        if self.cfg.tie_embeddings:
            state["head.weight"] = state["embed.weight"]
        self.load_state_dict(state)

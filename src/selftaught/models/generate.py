"""Batched decoding and scoring for our transformer.

Prompts of different lengths are left-padded; padded keys are masked out, and positions are
counted from each row's first real token, so a row decodes exactly as it would alone. Rows that
emit EOS (or reach their token limit) stop; when enough have stopped, the batch and its cache are
compacted so that finished rows cost nothing more.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from selftaught.models.kv_cache import KVCache
from selftaught.models.transformer import Transformer
from selftaught.tasks.tokenizer import EOS, PAD


def _left_pad(prompts: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(p) for p in prompts)
    tokens = torch.full((len(prompts), width), PAD, dtype=torch.long)
    valid = torch.zeros((len(prompts), width), dtype=torch.bool)
    for i, p in enumerate(prompts):  # each has a token: generate checks
        tokens[i, width - len(p):] = torch.as_tensor(p, dtype=torch.long)
        valid[i, width - len(p):] = True
    return tokens, valid


def _own_attention(valid: torch.Tensor) -> torch.Tensor:
    """[B, T, T]: which of a left-padded row's tokens each one attends to (causal, real tokens
    only; a pad sees itself, so that no softmax row is empty)."""
    T = valid.shape[1]
    causal = torch.ones(T, T, dtype=torch.bool, device=valid.device).tril()
    return (causal & valid[:, None, :]) | torch.eye(T, dtype=torch.bool, device=valid.device)


def _pick(logits: torch.Tensor, temperature: float, top_k: int | None, generator,
          banned: torch.Tensor | None = None, with_logp: bool = False, top_p: float = 1.0, draw: str = "multinomial"
          ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The next token of each row and, ``with_logp``, its log-probability under the distribution
    it was drawn from (greedy: the model's own, without the banned tokens). ``draw``: see ``generate``."""
    if banned is not None:
        logits = logits.index_fill(-1, banned, float("-inf"))
    if temperature <= 0:
        tok = logits.argmax(-1)
        return tok, _logp_of(logits, tok) if with_logp else None
    if temperature != 1.0:
        logits = logits / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        logits = nucleus(logits, top_p)
    probs = torch.softmax(logits.float(), dim=-1)
    if draw == "inverse-cdf":
        cdf = probs.cumsum(-1)
        u = torch.rand((len(probs), 1), generator=generator, device=probs.device) * cdf[:, -1:]
        # the first token whose cumulative mass passes u: a token of mass 0 never is
        tok = torch.searchsorted(cdf, u, right=True).squeeze(1).clamp_(max=probs.shape[-1] - 1)
        return tok, probs.gather(-1, tok[:, None]).squeeze(1).log() if with_logp else None
    tok = torch.multinomial(probs, 1, generator=generator).squeeze(1)
    return tok, _logp_of(logits, tok) if with_logp else None


def nucleus(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """``logits`` with every token outside the nucleus masked: the fewest most likely tokens whose
    probabilities sum to at least ``top_p`` (the most likely one always stays)."""
    probs, order = torch.softmax(logits.float(), dim=-1).sort(dim=-1, descending=True)
    before = probs.cumsum(-1) - probs  # mass of the tokens more likely than each one
    drop = (before >= top_p).scatter(-1, order, before >= top_p)
    return logits.masked_fill(drop, float("-inf"))


def _logp_of(logits: torch.Tensor, tok: torch.Tensor) -> torch.Tensor:
    return F.log_softmax(logits.float(), dim=-1).gather(-1, tok[:, None]).squeeze(1)


def _step_mask(cache: KVCache, key_valid: torch.Tensor | None) -> torch.Tensor | None:
    """[B or 1, 1, 1, keys]: what a one-token step attends to: the filled positions that are not
    padding, over the whole buffer where the cache reads it whole."""
    if not cache.whole:
        return key_valid[:, None, None, : cache.pos + 1] if key_valid is not None else None
    filled = torch.arange(cache.k.shape[3], device=cache.k.device) <= cache.pos
    keys = filled[None] if key_valid is None else key_valid & filled
    return keys[:, None, None, :]


@dataclass(frozen=True)
class StopAt:
    """Strings that end a reply once it has written one (kept in it, unlike EOS): ``tokens``, every
    token whose text may complete one, and ``reached``, whether a reply's tokens so far hold one.
    Only a row that has just drawn one of ``tokens`` is checked, so the check costs little."""

    tokens: tuple[int, ...]
    reached: Callable[[list[int]], bool]


def stop_at(strings: Sequence[str], decode: Callable[[list[int]], str], vocab_size: int) -> StopAt | None:
    """``StopAt`` for ``strings`` under a tokenizer's ``decode``: a token may complete a string
    only if its text holds the string's last character. None when there are no strings."""
    strings = tuple(s for s in strings if s)
    if not strings:
        return None
    last = {s[-1] for s in strings}
    tokens = tuple(t for t in range(vocab_size) if any(c in decode([t]) for c in last))
    return StopAt(tokens, lambda ids: any(s in decode(ids) for s in strings))


@dataclass
class _Prefilled:
    """A batch with its prompts in the cache: the logits of each row's next token, where it reads
    keys from (None: everywhere, no padding) and the position its next token takes."""

    logits: torch.Tensor
    cache: KVCache
    key_valid: torch.Tensor | None
    pos: torch.Tensor


def _prefill(model: Transformer, prompts: Sequence[Sequence[int]], steps: int) -> _Prefilled:
    """Every prompt left-padded in one batch."""
    cfg, device = model.cfg, model.embed.weight.device
    tokens, valid = _left_pad(prompts)
    tokens, valid = tokens.to(device), valid.to(device)
    B, P = tokens.shape
    dtype = model.embed.weight.dtype
    cache = KVCache(cfg.n_layers, B, cfg.kv_heads, P + steps, cfg.head_width, dtype=dtype, device=device,
                    whole=dtype == torch.bfloat16)
    start = (~valid).sum(1)  # left padding of each row; positions count from the first real token
    positions = (torch.arange(P, device=device).expand(B, P) - start[:, None]).clamp(min=0)
    mask, key_valid = None, None
    if not bool(valid.all()):
        mask = _own_attention(valid)[:, None]
        key_valid = torch.cat([valid, torch.ones(B, steps, dtype=torch.bool, device=device)], dim=1)
    logits = model(tokens, positions if model.rotary is not None else None, cache, mask)[:, -1]
    cache.advance(P)
    return _Prefilled(logits, cache, key_valid, P - start)


def _prefill_shared(model: Transformer, prompts: Sequence[Sequence[int]], steps: int) -> _Prefilled:
    """The prefix every prompt shares once, then each distinct prompt's rest once, then each row
    a copy of its prompt's cache: a self-improvement round's prompts share a chat template and
    come K times each, so this is a fraction of the work of prefilling every row."""
    cfg, device = model.cfg, model.embed.weight.device
    distinct: dict[tuple[int, ...], int] = {}
    which = torch.as_tensor([distinct.setdefault(tuple(p), len(distinct)) for p in prompts], device=device)
    unique = list(distinct)
    shared = min(len(u) for u in unique) - 1  # every prompt keeps a token of its own: its logits are the first pick
    for u in unique[1:]:
        shared = next((i for i in range(shared) if u[i] != unique[0][i]), shared)
    tokens, valid = _left_pad([u[shared:] for u in unique])
    tokens, valid = tokens.to(device), valid.to(device)
    n, S = tokens.shape
    dtype = model.embed.weight.dtype
    cache = KVCache(cfg.n_layers, n, cfg.kv_heads, shared + S + steps, cfg.head_width, dtype=dtype, device=device,
                    whole=dtype == torch.bfloat16)
    if shared:
        alone = KVCache(cfg.n_layers, 1, cfg.kv_heads, shared, cfg.head_width, dtype=dtype, device=device)
        model.features(torch.as_tensor([unique[0][:shared]], device=device),
                       torch.arange(shared, device=device)[None], alone)
        cache.k[:, :, :, :shared] = alone.k
        cache.v[:, :, :, :shared] = alone.v
        cache.advance(shared)
    start = (~valid).sum(1)
    positions = shared + (torch.arange(S, device=device).expand(n, S) - start[:, None]).clamp(min=0)
    mask = torch.cat([torch.ones(n, S, shared, dtype=torch.bool, device=device), _own_attention(valid)],
                     dim=2)[:, None]
    logits = model.head(model.features(tokens, positions, cache, mask)[:, -1])
    cache.advance(S)
    key_valid = torch.cat([torch.ones(n, shared, dtype=torch.bool, device=device), valid,
                           torch.ones(n, steps, dtype=torch.bool, device=device)], dim=1)
    cache.keep(which)
    return _Prefilled(logits[which], cache, key_valid[which], (shared + S - start)[which])


@torch.inference_mode()
def generate(
    model: Transformer,
    prompts: Sequence[Sequence[int]],
    max_new_tokens: int | Sequence[int],
    *,
    temperature: float = 0.0,
    top_k: int | None = None,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
    banned: Sequence[int] = (),
    compact_below: float = 0.75,
    with_logps: bool = False,
    eos: Sequence[int] = (EOS,),
    cut_at: Sequence[int] = (PAD,),
    share_prompts: bool = False,
    draw: Literal["multinomial", "inverse-cdf"] = "multinomial",
    stop: StopAt | None = None,
) -> list[list[int]] | tuple[list[list[int]], list[list[float]]]:
    """New tokens for each prompt, up to and excluding the first of ``eos`` (or of ``cut_at``,
    tokens a reply is cut at although they do not stop it: our padding), or up to and including
    the token that completes one of ``stop``'s strings. ``temperature=0`` is
    greedy; ``banned`` tokens are never picked. ``with_logps``: also each token's log-probability
    under the distribution it was drawn from (logits / temperature, top-k, top-p and banned tokens
    removed).

    ``compact_below``: compact the batch once fewer than this share of its rows are still running
    (copying the cache costs about one decoding step, so compacting every step would not pay).
    ``share_prompts``: compute the prefix all prompts share once and each distinct prompt once
    (``_prefill_shared``); the rows then decode exactly as they would alone, up to rounding.
    ``draw``: how a sampled token is drawn from its distribution. ``multinomial`` is torch's, which
    draws an exponential for every vocabulary entry (a quarter of a second a step for 256 rows of
    a 49k vocabulary on two cores); ``inverse-cdf`` draws one uniform number a row and finds it in
    the cumulative sum: the same distribution, another random stream.
    """
    B = len(prompts)
    if B == 0:
        return []
    if any(len(p) == 0 for p in prompts):
        raise ValueError("every prompt needs at least one token")
    limits = torch.as_tensor(
        [max_new_tokens] * B if isinstance(max_new_tokens, int) else list(max_new_tokens), dtype=torch.long
    )
    steps = int(limits.max())
    cfg = model.cfg
    device = model.embed.weight.device
    longest = max(len(p) for p in prompts)
    if longest + steps > cfg.max_len and cfg.positional == "rope":
        raise ValueError(f"prompt ({longest}) + new tokens ({steps}) exceed the model's max_len ({cfg.max_len})")
    limits = limits.to(device)
    first = (_prefill_shared if share_prompts else _prefill)(model, prompts, steps)
    logits, cache, key_valid, pos = first.logits, first.cache, first.key_valid, first.pos
    cache.decoding = True

    never = torch.as_tensor(list(banned), dtype=torch.long, device=device) if len(banned) else None
    stops = torch.as_tensor(list(eos), dtype=torch.long, device=device)
    may_stop = None if stop is None else torch.as_tensor(stop.tokens, dtype=torch.long, device=device)
    out = torch.full((B, steps), -1, dtype=torch.long, device=device)
    out_logp = torch.zeros((B, steps), dtype=torch.float32, device=device) if with_logps else None
    rows = torch.arange(B, device=device)  # original index of each row still in the batch
    running = torch.ones(B, dtype=torch.bool, device=device)
    for s in range(steps):
        tok, logp = _pick(logits, temperature, top_k, generator, never, with_logps, top_p, draw)
        out[rows[running], s] = tok[running]
        if out_logp is not None:
            out_logp[rows[running], s] = logp[running]
        running &= ~torch.isin(tok, stops) & (limits[rows] > s + 1)
        if may_stop is not None:
            for r in (running & torch.isin(tok, may_stop)).nonzero().squeeze(1).tolist():
                if stop.reached(out[rows[r], : s + 1].tolist()):
                    running[r] = False
        alive = int(running.sum())
        if alive == 0:
            break
        if alive < compact_below * len(rows):
            keep = running.nonzero().squeeze(1)
            cache.keep(keep)
            rows, tok, pos, running = rows[keep], tok[keep], pos[keep], running[keep]
            if key_valid is not None:
                key_valid = key_valid[keep]
        step_mask = _step_mask(cache, key_valid)
        rope_pos = pos[:, None] if model.rotary is not None else None
        logits = model(tok[:, None], rope_pos, cache, step_mask)[:, -1]
        cache.advance(1)
        pos = pos + 1

    ends = {-1, *eos, *cut_at}
    result = []
    for row in out.tolist():
        n = next((i for i, t in enumerate(row) if t in ends), len(row))
        result.append(row[:n])
    if out_logp is None:
        return result
    return result, [lp[: len(ids)] for ids, lp in zip(result, out_logp.tolist())]


@torch.inference_mode()
def score(model: Transformer, prompts: Sequence[Sequence[int]], continuations: Sequence[Sequence[int]]) -> list[float]:
    """Sum of log-probabilities of each continuation given its prompt (one forward pass)."""
    seqs = [list(p) + list(c) for p, c in zip(prompts, continuations, strict=True)]
    width = max(len(s) for s in seqs)
    tokens = torch.full((len(seqs), width), PAD, dtype=torch.long)
    target_mask = torch.zeros((len(seqs), width), dtype=torch.bool)
    for i, (p, s) in enumerate(zip(prompts, seqs)):
        tokens[i, : len(s)] = torch.as_tensor(s)
        target_mask[i, len(p): len(s)] = True
    device = model.embed.weight.device
    tokens, target_mask = tokens.to(device), target_mask.to(device)
    logp = F.log_softmax(model(tokens).float(), dim=-1)
    # logits at t predict token t+1
    picked = logp[:, :-1].gather(-1, tokens[:, 1:, None]).squeeze(-1)
    return (picked * target_mask[:, 1:]).sum(1).tolist()

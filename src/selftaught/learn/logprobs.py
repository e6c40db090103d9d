"""Log-probabilities of given completions under a model, token by token: what preference and
policy-gradient losses are computed from."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from selftaught.learn.sft import IGNORE, Example, collate
from selftaught.models.transformer import Transformer
from selftaught.tasks.tokenizer import PAD, CharTokenizer


def token_logps(model: Transformer, tokenizer: CharTokenizer, prompts: Sequence[str], completions: Sequence[str],
                temperature: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(logps, mask), both [batch, width]: the log-probability of each completion token (its
    characters, then EOS) at logits / ``temperature``, and where completion tokens are. Gradients
    flow unless the caller disables them."""
    inputs, labels = collate(tokenizer, [Example(p, c) for p, c in zip(prompts, completions, strict=True)])
    device = model.embed.weight.device
    inputs, labels = inputs.to(device), labels.to(device)
    mask = labels != IGNORE
    # Sampled completions differ in length far more than curated answers (a wrong one may run to
    # the length limit), so the per-token layers run on real tokens only, and the head and
    # softmax only where a completion token is predicted.
    valid = inputs != PAD
    features = model.features(inputs, valid=valid)
    scored = mask[valid]  # completion positions among the real tokens (they are all real)
    logp = F.log_softmax(model.head(features[scored]).float() / temperature, dim=-1)
    picked = logp.gather(-1, labels[mask][:, None]).squeeze(-1)
    out = torch.zeros(mask.shape, dtype=picked.dtype, device=device).masked_scatter(mask, picked)
    return out, mask

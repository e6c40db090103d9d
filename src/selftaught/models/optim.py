"""The optimizer every policy trains with, and its step: one place for both model kinds."""

from __future__ import annotations

from collections.abc import Callable

import torch


def make_optimizer(model: torch.nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW over the trainable weights (all of them, or a LoRA's adapters), with weight decay on
    matrices only."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW([{"params": [p for p in trainable if p.dim() >= 2], "weight_decay": weight_decay},
                              {"params": [p for p in trainable if p.dim() < 2], "weight_decay": 0.0}],
                             lr=lr, betas=(0.9, 0.98))


def optimizer_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer | None, lr: float,
                   backward: Callable[[], float]) -> float:
    """One step at rate ``lr`` on the gradients ``backward()`` makes, clipped to norm 1; its value."""
    if optimizer is None:
        raise RuntimeError("this policy is a frozen copy: it has no optimizer")
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.zero_grad(set_to_none=True)
    value = backward()
    torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
    optimizer.step()
    return value

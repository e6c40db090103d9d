"""Policies: the ``[model]`` section."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from selftaught.registry import register, register_role
from selftaught.settings import RecipeError, setting


@dataclass
class ModelSettings:
    type: str = setting("transformer", "the policy: 'transformer' (ours, trained from scratch) or "
                        "'package.module:ClassName'")
    members: int = setting(1, "independently seeded models; majority-vote judges vote across them", min=1)
    device: str = setting("cpu", "torch device the models live on: cpu, cuda, cuda:1, ...")


@dataclass
class TransformerSettings(ModelSettings):
    n_layers: int = setting(4, "transformer blocks", min=1)
    d_model: int = setting(128, "residual width", min=8)
    n_heads: int = setting(8, "attention heads (d_model must divide by it)", min=1)
    d_ff: int = setting(512, "SwiGLU hidden width", min=8)
    positional: Literal["none", "rope"] = setting("none", "positional encoding: none (NoPE) or rope")
    max_len: int = setting(256, "longest sequence the model handles", min=8)

    def check(self, recipe, where: str) -> None:
        if self.d_model % self.n_heads:
            raise RecipeError(f"{where}.d_model ({self.d_model}) must be divisible by {where}.n_heads ({self.n_heads})")
        if (self.d_model // self.n_heads) % 2 and self.positional == "rope":
            raise RecipeError(f"{where}: rope needs an even head width (d_model / n_heads)")


register_role("model", ModelSettings)
register("model", "transformer", TransformerSettings, "selftaught.models.char_policy:char_policies",
         "our Llama-shaped transformer with a character tokenizer, trained from scratch")

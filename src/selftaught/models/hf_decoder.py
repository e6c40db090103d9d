"""A Llama-family Hugging Face checkpoint as our transformer: the fast path of ``HFPolicy.generate``.

The reverse of ``models/llama.py``. Llama, Mistral, Qwen2 and Qwen3 (and what is built on them:
SmolLM, TinyLlama, ...) share one block: RMSNorm, rotary attention with grouped key/value heads,
SwiGLU. Their differences are settings of ``TransformerConfig``: the key/value head count, an
explicit head width, Qwen2's q/k/v biases, Qwen3's per-head query/key norms, tied or untied
embeddings, the norm's eps, and the rope frequencies, which are taken from the checkpoint's own
rotary module so that every static rope scaling (linear, llama3, yarn, ...) comes along.

A model training LoRA adapters (peft) is served too: each adapted matrix is copied with its
adapters' product merged in (W + B A · scaling), whenever the weights change.

Anything else (another architecture, rope that changes with the sequence's length, a sliding
window the sequence could reach) is refused with the reason, and the policy falls back to
transformers' ``generate``.
"""

from __future__ import annotations

import torch

from selftaught.models.transformer import Transformer, TransformerConfig

FAMILIES = ("llama", "mistral", "qwen2", "qwen3")
# Rope whose frequencies depend on how long the sequence is cannot be tabulated once.
_LENGTH_DEPENDENT_ROPE = ("dynamic", "longrope")
# Our rope table is built for this many positions at most (a 128k-position checkpoint needs no
# 128k-row table to answer short prompts); longer sequences go to transformers.
MAX_POSITIONS = 8192


class Unsupported(ValueError):
    """A model our decoder cannot stand in for; the message says why."""


def causal_lm(model):
    """The transformers model itself: under peft's wrapper (its adapted layers still in it), or as given."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def merged(linear: torch.nn.Module, name: str = "weight") -> torch.Tensor | None:
    """A linear layer's ``weight`` (or ``bias``), with the product of its active LoRA adapters
    added where peft wraps it."""
    base = getattr(linear, "base_layer", None)
    if base is None:
        return getattr(linear, name)
    if name == "bias":
        return base.bias
    w = base.weight
    for adapter in linear.active_adapters:
        if adapter in linear.lora_A:
            w = w + linear.get_delta_weight(adapter)
    return w


def why_unsupported(model) -> str | None:
    """None when ``from_hf`` can convert ``model``, else the reason."""
    model = causal_lm(model)
    cfg = model.config
    if cfg.model_type not in FAMILIES:
        return f"model_type {cfg.model_type!r} is not one of {', '.join(FAMILIES)}"
    if getattr(cfg, "hidden_act", "silu") != "silu":
        return f"hidden_act {cfg.hidden_act!r} (the family's is silu)"
    rotary = getattr(model.model, "rotary_emb", None)
    if rotary is None:
        return "no rotary embedding module found"
    if getattr(rotary, "rope_type", "default") in _LENGTH_DEPENDENT_ROPE:
        return f"rope_type {rotary.rope_type!r} changes with the sequence's length"
    attn, mlp = model.model.layers[0].self_attn, model.model.layers[0].mlp
    if merged(attn.o_proj, "bias") is not None or merged(mlp.down_proj, "bias") is not None:
        return "biases on the attention output or the MLP"
    if any(getattr(m, "lora_embedding_A", None) for m in model.modules()):
        return "LoRA adapters on the embeddings"
    return None


def from_hf(model) -> Transformer:
    """Our transformer holding a copy of ``model``'s weights, in its dtype and on its device."""
    reason = why_unsupported(model)
    if reason:
        raise Unsupported(reason)
    model = causal_lm(model)
    hf = model.config
    layers = model.model.layers
    attn = layers[0].self_attn
    weight = model.model.embed_tokens.weight
    cfg = TransformerConfig(
        vocab_size=weight.shape[0], n_layers=len(layers), d_model=hf.hidden_size,
        n_heads=hf.num_attention_heads, d_ff=hf.intermediate_size,
        max_len=min(int(hf.max_position_embeddings), MAX_POSITIONS), positional="rope",
        norm_eps=float(hf.rms_norm_eps), tie_embeddings=merged(model.lm_head).data_ptr() == weight.data_ptr(),
        n_kv_heads=hf.num_key_value_heads or hf.num_attention_heads,
        head_dim=merged(attn.q_proj).shape[0] // hf.num_attention_heads,
        qkv_bias=merged(attn.q_proj, "bias") is not None, qk_norm=hasattr(attn, "q_norm"))
    with torch.random.fork_rng(devices=[]):  # its random init is overwritten: leave torch's generator alone
        ours = Transformer(cfg).to(device=weight.device, dtype=weight.dtype).eval().requires_grad_(False)
    rotary = model.model.rotary_emb
    ours.rotary.set_frequencies(rotary.inv_freq, float(getattr(rotary, "attention_scaling", 1.0)))
    copy_weights(model, ours)
    return ours


@torch.no_grad()
def copy_weights(model, ours: Transformer) -> None:
    """``model``'s current weights into ``ours`` (built by ``from_hf`` from the same checkpoint),
    LoRA adapters merged in."""
    model = causal_lm(model)
    ours.embed.weight.copy_(model.model.embed_tokens.weight)
    ours.final_norm.copy_(model.model.norm.weight)
    if not ours.cfg.tie_embeddings:
        ours.head.weight.copy_(merged(model.lm_head))
    for block, layer in zip(ours.blocks, model.model.layers):
        a = layer.self_attn
        torch.cat([merged(a.q_proj), merged(a.k_proj), merged(a.v_proj)], out=block.qkv.weight)
        if ours.cfg.qkv_bias:
            torch.cat([merged(a.q_proj, "bias"), merged(a.k_proj, "bias"), merged(a.v_proj, "bias")],
                      out=block.qkv.bias)
        if ours.cfg.qk_norm:
            block.q_norm.copy_(a.q_norm.weight)
            block.k_norm.copy_(a.k_norm.weight)
        block.out.weight.copy_(merged(a.o_proj))
        torch.cat([merged(layer.mlp.gate_proj), merged(layer.mlp.up_proj)], out=block.gate_up.weight)
        block.down.weight.copy_(merged(layer.mlp.down_proj))
        block.attn_norm.copy_(layer.input_layernorm.weight)
        block.mlp_norm.copy_(layer.post_attention_layernorm.weight)


def window(model) -> int | None:
    """The sliding attention window, if the checkpoint uses one (positions past it need it)."""
    cfg = causal_lm(model).config
    if not getattr(cfg, "use_sliding_window", True):  # Qwen configs name a window they do not use
        return None
    return getattr(cfg, "sliding_window", None) or None

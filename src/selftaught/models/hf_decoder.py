"""A Llama-family Hugging Face checkpoint as our transformer: the fast path of ``HFPolicy.generate``.

The reverse of ``models/llama.py``. Llama, Mistral, Qwen2 and Qwen3 (and what is built on them:
SmolLM, TinyLlama, ...) share one block: RMSNorm, rotary attention with grouped key/value heads,
SwiGLU. Their differences are settings of ``TransformerConfig``: the key/value head count, an
explicit head width, Qwen2's q/k/v biases, Qwen3's per-head query/key norms, tied or untied
embeddings, the norm's eps, and the rope frequencies, which are taken from the checkpoint's own
rotary module so that every static rope scaling (linear, llama3, yarn, ...) comes along. Gemma 3's
block is the same with more settings: (1 + weight) norms in fp32, a norm on each branch's output,
GELU (tanh) gating, embeddings scaled by sqrt(width), its query scale, and local (sliding-window)
layers with a rope table of their own; sequences longer than the window go to transformers.

A model training LoRA adapters (peft) is served too: each adapted matrix is copied with its
adapters' product merged in (W + B A · scaling), whenever the weights change.

Anything else (another architecture, rope that changes with the sequence's length, a sliding
window the sequence could reach) is refused with the reason, and the policy falls back to
transformers' ``generate``.
"""

from __future__ import annotations

import torch

from selftaught.models.transformer import Transformer, TransformerConfig

FAMILIES = ("llama", "mistral", "qwen2", "qwen3", "gemma3_text")
# Gemma 3's block (four norms, (1 + weight) norms, GELU gating, scaled embeddings, its own query
# scale, local and global layers with rope tables of their own) is the same block with more settings
GEMMA = ("gemma3_text",)
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
    gemma = cfg.model_type in GEMMA
    act = getattr(cfg, "hidden_activation" if gemma else "hidden_act", "silu")
    if act != ("gelu_pytorch_tanh" if gemma else "silu"):
        return f"activation {act!r} (the family's is {'gelu_pytorch_tanh' if gemma else 'silu'})"
    if gemma and (cfg.final_logit_softcapping or cfg.attn_logit_softcapping):
        return "logit soft-capping"
    if gemma and getattr(cfg, "use_bidirectional_attention", False):
        return "bidirectional attention"
    rotary = getattr(model.model, "rotary_emb", None)
    if rotary is None:
        return "no rotary embedding module found"
    types = rotary.rope_type.values() if isinstance(rotary.rope_type, dict) else [getattr(rotary, "rope_type",
                                                                                               "default")]
    if any(t in _LENGTH_DEPENDENT_ROPE for t in types):
        return f"rope_type {', '.join(types)} changes with the sequence's length"
    attn, mlp = model.model.layers[0].self_attn, model.model.layers[0].mlp
    if merged(attn.o_proj, "bias") is not None or merged(mlp.down_proj, "bias") is not None:
        return "biases on the attention output or the MLP"
    if any(getattr(m, "lora_embedding_A", None) for m in model.modules()):
        return "LoRA adapters on the embeddings"
    return None


def _rope_tables(model) -> tuple[torch.Tensor, float, torch.Tensor | None, float, list[int]]:
    """(global inv_freq, its amplitude, local inv_freq or None, its amplitude, the local layers)."""
    rotary, cfg = model.model.rotary_emb, model.config
    if cfg.model_type not in GEMMA:
        return rotary.inv_freq, float(getattr(rotary, "attention_scaling", 1.0)), None, 1.0, []
    kinds = list(cfg.layer_types)
    local = [i for i, k in enumerate(kinds) if k == "sliding_attention"]
    glob = "full_attention" if "full_attention" in kinds else "sliding_attention"
    table = {k: (getattr(rotary, f"{k}_inv_freq"), float(getattr(rotary, f"{k}_attention_scaling")))
             for k in set(kinds)}
    if glob == "sliding_attention":  # every layer local: one table serves them all
        return *table[glob], None, 1.0, []
    return *table[glob], *(table["sliding_attention"] if local else (None, 1.0)), local


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
    gemma = hf.model_type in GEMMA
    inv_freq, scale, local_freq, local_scale, local = _rope_tables(model)
    cfg = TransformerConfig(
        vocab_size=weight.shape[0], n_layers=len(layers), d_model=hf.hidden_size,
        n_heads=hf.num_attention_heads, d_ff=hf.intermediate_size,
        max_len=min(int(hf.max_position_embeddings), MAX_POSITIONS), positional="rope",
        norm_eps=float(hf.rms_norm_eps), tie_embeddings=merged(model.lm_head).data_ptr() == weight.data_ptr(),
        n_kv_heads=hf.num_key_value_heads or hf.num_attention_heads,
        head_dim=merged(attn.q_proj).shape[0] // hf.num_attention_heads,
        qkv_bias=merged(attn.q_proj, "bias") is not None, qk_norm=hasattr(attn, "q_norm"),
        embed_scale=float(hf.hidden_size**0.5) if gemma else 1.0, norm_offset=1.0 if gemma else 0.0,
        sandwich_norms=gemma, activation="gelu_tanh" if gemma else "silu",
        attn_scale=float(hf.query_pre_attn_scalar) ** -0.5 if gemma else 0.0, local_layers=local)
    with torch.random.fork_rng(devices=[]):  # its random init is overwritten: leave torch's generator alone
        ours = Transformer(cfg).to(device=weight.device, dtype=weight.dtype).eval().requires_grad_(False)
    ours.rotary.set_frequencies(inv_freq, scale)
    if local_freq is not None:
        ours.local_rotary.set_frequencies(local_freq, local_scale)
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
        if ours.cfg.sandwich_norms:  # Gemma: post_attention_layernorm is the attention branch's own norm
            block.post_attn_norm.copy_(layer.post_attention_layernorm.weight)
            block.mlp_norm.copy_(layer.pre_feedforward_layernorm.weight)
            block.post_mlp_norm.copy_(layer.post_feedforward_layernorm.weight)
        else:
            block.mlp_norm.copy_(layer.post_attention_layernorm.weight)


def window(model) -> int | None:
    """The sliding attention window, if the checkpoint uses one (positions past it need it)."""
    cfg = causal_lm(model).config
    if not getattr(cfg, "use_sliding_window", True):  # Qwen configs name a window they do not use
        return None
    return getattr(cfg, "sliding_window", None) or None

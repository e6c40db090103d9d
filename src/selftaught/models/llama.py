"""Our transformer (rope mode) as a Hugging Face ``LlamaForCausalLM`` with the same weights.

The two share an architecture, so this is both the reference our decoder is benchmarked against
and an independent check of our numerics.
"""

from __future__ import annotations

import torch

from selftaught.models.transformer import Transformer


def to_llama(model: Transformer):
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = model.cfg
    if cfg.positional != "rope":
        raise ValueError("only rope models have a Llama equivalent")
    hf_cfg = LlamaConfig(
        vocab_size=cfg.vocab_size, hidden_size=cfg.d_model, intermediate_size=cfg.d_ff,
        num_hidden_layers=cfg.n_layers, num_attention_heads=cfg.n_heads, num_key_value_heads=cfg.n_heads,
        max_position_embeddings=cfg.max_len, rms_norm_eps=cfg.norm_eps, rope_theta=cfg.rope_theta,
        tie_word_embeddings=cfg.tie_embeddings, attention_bias=False, mlp_bias=False,
        bos_token_id=None, eos_token_id=1, pad_token_id=0,
    )
    hf = LlamaForCausalLM(hf_cfg).eval()
    d, f = cfg.d_model, cfg.d_ff
    with torch.no_grad():
        hf.model.embed_tokens.weight.copy_(model.embed.weight)
        hf.model.norm.weight.copy_(model.final_norm)
        if not cfg.tie_embeddings:
            hf.lm_head.weight.copy_(model.head.weight)
        for block, layer in zip(model.blocks, hf.model.layers):
            q, k, v = block.qkv.weight.split(d)
            layer.self_attn.q_proj.weight.copy_(q)
            layer.self_attn.k_proj.weight.copy_(k)
            layer.self_attn.v_proj.weight.copy_(v)
            layer.self_attn.o_proj.weight.copy_(block.out.weight)
            gate, up = block.gate_up.weight.split(f)
            layer.mlp.gate_proj.weight.copy_(gate)
            layer.mlp.up_proj.weight.copy_(up)
            layer.mlp.down_proj.weight.copy_(block.down.weight)
            layer.input_layernorm.weight.copy_(block.attn_norm)
            layer.post_attention_layernorm.weight.copy_(block.mlp_norm)
    return hf

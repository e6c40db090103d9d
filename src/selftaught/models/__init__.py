"""Policies: our small transformer with fast batched decoding (Hugging Face models come later)."""

from selftaught.models.generate import generate, score
from selftaught.models.kv_cache import KVCache
from selftaught.models.transformer import Transformer, TransformerConfig

__all__ = ["KVCache", "Transformer", "TransformerConfig", "generate", "score"]

"""Our transformer against an independent implementation: Hugging Face's Llama with our weights."""

import pytest
import torch

from selftaught.models import Transformer, TransformerConfig, generate

pytest.importorskip("transformers")
from selftaught.models.llama import to_llama  # noqa: E402


def test_logits_and_greedy_decoding_match_hugging_face_llama():
    model = Transformer(TransformerConfig(vocab_size=16, n_layers=2, d_model=32, n_heads=4, d_ff=64,
                                          positional="rope")).eval()
    with torch.no_grad():  # non-trivial norm weights, so a swapped norm would show
        for p in model.parameters():
            if p.dim() == 1:
                p.add_(torch.randn_like(p) * 0.3)
    hf = to_llama(model)
    x = torch.randint(2, 16, (3, 11))
    with torch.no_grad():
        torch.testing.assert_close(model(x), hf(x).logits, atol=1e-5, rtol=1e-5)
    ours = generate(model, x.tolist(), 6)
    with torch.no_grad():
        theirs = hf.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=6, do_sample=False,
                             eos_token_id=1, pad_token_id=0)[:, 11:].tolist()
    theirs = [row[: row.index(1)] if 1 in row else row for row in theirs]
    assert ours == theirs

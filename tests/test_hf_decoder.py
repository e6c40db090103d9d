"""Our decoder standing in for Llama-family Hugging Face models: tiny random configs of each family,
built here, checked against transformers' own forward and generate."""

import pytest
import torch

transformers = pytest.importorskip("transformers")

from selftaught.models.generate import generate  # noqa: E402
from selftaught.models.hf_decoder import from_hf, why_unsupported, window  # noqa: E402
from selftaught.models.hf_policy import HFPolicy  # noqa: E402
from selftaught.models.optim import make_optimizer  # noqa: E402

COMMON = dict(vocab_size=97, hidden_size=48, intermediate_size=80, num_hidden_layers=2, max_position_embeddings=256,
              pad_token_id=0, eos_token_id=1, bos_token_id=2)

FAMILIES = {
    # grouped-query attention, tied embeddings, another rope theta and norm eps
    "llama-gqa-tied": ("LlamaConfig", dict(num_attention_heads=6, num_key_value_heads=2, tie_word_embeddings=True,
                                           rope_theta=500.0, rms_norm_eps=1e-6)),
    # llama3 rope scaling (what Llama 3.1/3.2 checkpoints carry)
    "llama3-rope-scaling": ("LlamaConfig", dict(
        num_attention_heads=4, num_key_value_heads=4, tie_word_embeddings=False,
        rope_parameters={"rope_type": "llama3", "rope_theta": 10000.0, "factor": 8.0, "low_freq_factor": 1.0,
                         "high_freq_factor": 4.0, "original_max_position_embeddings": 32})),
    "llama-linear-rope": ("LlamaConfig", dict(num_attention_heads=4, num_key_value_heads=1,
                                              rope_parameters={"rope_type": "linear", "rope_theta": 10000.0,
                                                               "factor": 2.0})),
    "mistral": ("MistralConfig", dict(num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False,
                                      sliding_window=None)),
    # q/k/v biases
    "qwen2": ("Qwen2Config", dict(num_attention_heads=6, num_key_value_heads=3, tie_word_embeddings=True)),
    # per-head query/key norms and a head width of its own (not hidden / heads)
    "qwen3": ("Qwen3Config", dict(num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                                  tie_word_embeddings=False)),
    # (1 + w) norms, sandwich norms, GELU gating, scaled embeddings, its query scale, a local layer with
    # its own rope base beside a global one (sequences here stay inside the window)
    "gemma3": ("Gemma3TextConfig", dict(num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                                        query_pre_attn_scalar=24, sliding_window=64,
                                        layer_types=["sliding_attention", "full_attention"])),
}


def tiny(family: str, seed: int = 0):
    config_name, extra = FAMILIES[family]
    torch.manual_seed(seed)
    config = getattr(transformers, config_name)(**COMMON, **extra)
    model = transformers.AutoModelForCausalLM.from_config(config).eval()
    with torch.no_grad():  # weights large enough that greedy answers differ from prompt to prompt
        for p in model.parameters():
            p.normal_(0, 0.2) if p.dim() >= 2 else p.add_(0.1 * torch.randn_like(p))  # biases and norms too
    return model


def prompts(n: int, seed: int = 0, shared: int = 6) -> list[list[int]]:
    """Prompts that share a prefix (a chat template's), with tails of different lengths."""
    g = torch.Generator().manual_seed(seed)
    head = torch.randint(3, 97, (shared,), generator=g).tolist()
    return [head + torch.randint(3, 97, (int(torch.randint(1, 9, (1,), generator=g)),), generator=g).tolist()
            for _ in range(n)]


@pytest.mark.parametrize("family", list(FAMILIES))
def test_logits_equal_transformers_forward(family):
    model = tiny(family)
    assert why_unsupported(model) is None
    ours = from_hf(model)
    ids = torch.randint(3, 97, (3, 40), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        theirs = model(input_ids=ids).logits
        mine = ours(ids)
    assert theirs.abs().max() > 1.0  # logits large enough that 1e-4 means something
    torch.testing.assert_close(mine, theirs, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("family", ["llama-gqa-tied", "qwen2", "qwen3", "gemma3"])
def test_greedy_replies_equal_transformers_generate_with_and_without_shared_prompts(family):
    model = tiny(family)
    ours = from_hf(model)
    batch = prompts(6)
    plain = generate(ours, batch, 12, eos=[1], cut_at=[])
    shared = generate(ours, batch * 2, 12, eos=[1], cut_at=[], share_prompts=True)
    for p, mine, again, twice in zip(batch, plain, shared[:6], shared[6:]):
        with torch.no_grad():
            out = model.generate(input_ids=torch.tensor([p]), max_new_tokens=12, do_sample=False, eos_token_id=1,
                                 pad_token_id=0)
        theirs = out[0, len(p):].tolist()
        theirs = theirs[: theirs.index(1)] if 1 in theirs else theirs
        assert mine == again == twice == theirs
    assert len({tuple(r) for r in plain}) >= 4  # the replies differ: the comparison is not vacuous


def test_shared_prompt_sampling_reports_the_log_probs_it_drew_from():
    """Four samples of each prompt drawn with the prefix and each prompt computed once: every
    token's log-probability equals a plain full forward of the finished sequence at that temperature."""
    model = tiny("qwen2")
    ours = from_hf(model)
    batch = [p for p in prompts(5, seed=3) for _ in range(4)]
    ids, logps = generate(ours, batch, 10, temperature=0.7, top_k=20, generator=torch.Generator().manual_seed(0),
                          with_logps=True, eos=[1], cut_at=[], share_prompts=True)
    assert len({tuple(r) for r in ids}) > 10  # samples of one prompt differ
    for p, reply, lp in zip(batch, ids, logps):
        seq = torch.tensor([p + reply])
        with torch.no_grad():
            logits = model(input_ids=seq).logits[0, len(p) - 1:-1] / 0.7
        kth = logits.topk(20, -1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
        expected = torch.log_softmax(logits, -1).gather(-1, torch.tensor(reply)[:, None]).squeeze(-1)
        torch.testing.assert_close(torch.tensor(lp), expected, atol=1e-4, rtol=1e-4)


def test_the_policy_samples_with_the_weights_it_has_just_trained():
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<s>": 2} | {chr(97 + i): i + 3 for i in range(26)} | {
        str(i): 29 + i for i in range(10)}
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.BPE(vocab=vocab, merges=[])),
                                        bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    model = tiny("llama-gqa-tied")
    policy = HFPolicy(model, tokenizer, make_optimizer(model, 1e-2, 0.0))
    slow = HFPolicy(model, tokenizer, fast=False)
    asked = ["abc", "de", "fgh1", "x"]
    before = policy.generate(asked, [8] * 4)
    assert [c.ids for c in before] == [c.ids for c in slow.generate(asked, [8] * 4)]
    for _ in range(5):
        policy.step(1e-2, lambda: policy.answer_loss_backward(asked, ["zz9", "zz9", "zz9", "zz9"]))
    after = policy.generate(asked, [8] * 4)
    assert [c.ids for c in after] != [c.ids for c in before]
    assert [c.ids for c in after] == [c.ids for c in slow.generate(asked, [8] * 4)]  # the decoder was refreshed


@pytest.mark.filterwarnings("ignore::FutureWarning")  # peft calls a transformers API deprecated in 5.x
@pytest.mark.parametrize("chosen", ["fp32", "bf16-mixed"])
def test_a_lora_policy_samples_through_our_decoder_with_its_adapters_merged(chosen):
    """Greedy replies of our decoder (adapters merged into its copy) equal transformers' generate
    on the peft model, before and after the adapters train (B starts at zero: training must move
    it for the check to mean anything)."""
    peft = pytest.importorskip("peft")
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    from selftaught.models.hf_policy import with_lora

    vocab = {"<pad>": 0, "</s>": 1, "<s>": 2} | {chr(97 + i): i + 3 for i in range(26)} | {
        str(i): 29 + i for i in range(10)}
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.BPE(vocab=vocab, merges=[])),
                                        bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    model = with_lora(tiny("qwen2"), 4)
    assert isinstance(model, peft.PeftModel) and why_unsupported(model) is None
    policy = HFPolicy(model, tokenizer, make_optimizer(model, 3e-2, 0.0, fused=True), precision=chosen)
    asked = ["abc", "de", "fgh1", "x", "q9"]
    before = policy.generate(asked, [8] * 5)
    for _ in range(6):
        policy.step(3e-2, lambda: policy.answer_loss_backward(asked, ["zz9"] * 5))
    after = policy.generate(asked, [8] * 5)
    assert [c.ids for c in after] != [c.ids for c in before]
    slow = HFPolicy(policy.compute, tokenizer, fast=False)  # transformers' generate on the same weights
    agree = sum(a.ids == b.ids for a, b in zip(after, slow.generate(asked, [8] * 5)))
    assert agree == 5 if chosen == "fp32" else agree >= 4  # bf16: merged and unmerged round differently


@pytest.mark.filterwarnings("ignore::FutureWarning")  # peft calls a transformers API deprecated in 5.x
def test_other_architectures_fall_back_to_transformers_generate():
    gpt2 = transformers.GPT2LMHeadModel(transformers.GPT2Config(vocab_size=50, n_embd=16, n_layer=1, n_head=2,
                                                                bos_token_id=1, eos_token_id=1))
    assert "model_type 'gpt2'" in why_unsupported(gpt2)
    # a sliding window is only ever reached by sequences longer than it: those go to transformers
    windowed = transformers.MistralForCausalLM(transformers.MistralConfig(**COMMON, num_attention_heads=4,
                                                                          num_key_value_heads=2, sliding_window=16))
    assert window(windowed) == 16 and window(tiny("qwen2")) is None and window(tiny("llama-gqa-tied")) is None

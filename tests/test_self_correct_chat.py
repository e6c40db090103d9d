"""Self-correction on a chat model: the revision is asked in a conversation (the problem, the first
attempt as the model's reply, a user's turn asking to revise), rendered by the tokenizer's chat
template wherever a prompt is used (sampling and training); smollm2-self-correct runs on a tiny Llama."""

import copy
import pickle
from pathlib import Path

import pytest
import torch

transformers = pytest.importorskip("transformers")

from selftaught.builtin_recipes import resolve  # noqa: E402
from selftaught.conversation import Conversation, messages  # noqa: E402
from selftaught.models.hf_policy import HFPolicy, load_pretrained, similar_starts  # noqa: E402
from selftaught.models.optim import make_optimizer  # noqa: E402
from selftaught.recipe import load_recipe  # noqa: E402
from selftaught.sample.attempts import REVISE_INSTRUCTION, revision_prompt  # noqa: E402
from selftaught.store import RunStore  # noqa: E402
from selftaught.tasks.tokenizer import REVISE  # noqa: E402
from selftaught.tasks.words import WordArithmetic  # noqa: E402

# each turn written with its role; the generation prompt opens the assistant's turn
TEMPLATE = ("{% for m in messages %}<s>{{ m['role'] }} {{ m['content'] }}|{% endfor %}"
            "{% if add_generation_prompt %}<s>assistant {% endif %}")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """A tiny Llama whose character tokenizer writes word arithmetic and whose chat template
    writes each turn's role."""
    from transformers import AutoTokenizer

    from test_hf_policy import build_tiny

    directory = build_tiny(tmp_path_factory.mktemp("tiny-chat") / "model",
                           chars="".join(dict.fromkeys(WordArithmetic.alphabet + REVISE)), positions=512)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    tokenizer.chat_template = TEMPLATE
    tokenizer.save_pretrained(directory)
    return directory


def chat_policy(directory: Path, chat: bool = True) -> HFPolicy:
    model, tokenizer = load_pretrained(path=str(directory))
    return HFPolicy(model, tokenizer, make_optimizer(model, 1e-3, 0.0), chat=chat)


PROBLEM = WordArithmetic().make(7, "*", 6, 2)
FIRST = "7 * 6 = 48"


def test_the_revision_prompt_is_a_conversation_of_three_turns_whose_value_is_the_old_prompt():
    prompt = revision_prompt(PROBLEM, FIRST)
    assert isinstance(prompt, Conversation) and isinstance(prompt, str)
    assert str(prompt) == PROBLEM.prompt + FIRST + REVISE  # what the character model has always read
    assert prompt.turns == (PROBLEM.prompt, FIRST, REVISE_INSTRUCTION)
    assert [m["role"] for m in messages(prompt)] == ["user", "assistant", "user"]
    assert messages("What is 1 + 1?") == [{"role": "user", "content": "What is 1 + 1?"}]
    with pytest.raises(ValueError, match="ends on a user's turn"):
        Conversation("x", ("question", "answer"))


def test_a_conversation_survives_pickling_and_copying():
    prompt = revision_prompt(PROBLEM, FIRST)
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        back = pickle.loads(pickle.dumps([prompt], protocol=protocol))[0]
        assert type(back) is Conversation and back == prompt and back.turns == prompt.turns
    for made in (copy.copy(prompt), copy.deepcopy(prompt)):
        assert type(made) is Conversation and made.turns == prompt.turns


def test_a_chat_policy_renders_the_revision_as_the_templates_own_conversation(tiny):
    policy = chat_policy(tiny)
    prompt = revision_prompt(PROBLEM, FIRST)
    ids = policy.prompt_ids(prompt)
    conversation = [{"role": "user", "content": PROBLEM.prompt}, {"role": "assistant", "content": FIRST},
                    {"role": "user", "content": REVISE_INSTRUCTION}]
    assert ids == list(policy.tokenizer.apply_chat_template(conversation, add_generation_prompt=True, tokenize=True,
                                                            return_dict=False))
    assert policy.tokenizer.decode(ids) == (f"<s>user {PROBLEM.prompt}|<s>assistant {FIRST}|"
                                            f"<s>user {REVISE_INSTRUCTION}|<s>assistant ")
    # a plain prompt is still one user turn; without chat the conversation is its one string, as before
    assert policy.tokenizer.decode(policy.prompt_ids(PROBLEM.prompt)) == f"<s>user {PROBLEM.prompt}|<s>assistant "
    plain = chat_policy(tiny, chat=False)
    assert plain.prompt_ids(prompt) == plain.tokenizer(PROBLEM.prompt + FIRST + REVISE)["input_ids"]

    # training scores the revision after the whole conversation: a direct forward of those ids
    answer = "42"
    with torch.no_grad():
        logps, mask = policy.token_logps([prompt], [answer])
        tail = policy.tokenizer(answer, add_special_tokens=False)["input_ids"] + [policy.eos]
        logits = policy.model(input_ids=torch.tensor([ids + tail])).logits[0]
        expected = torch.log_softmax(logits.float(), -1)[torch.arange(len(ids) - 1, len(ids) + len(tail) - 1),
                                                         torch.tensor(tail)]
    assert int(mask.sum()) == len(tail)
    torch.testing.assert_close(logps[0, : len(tail)], expected, rtol=1e-4, atol=1e-4)


def test_first_turns_and_revisions_scored_in_one_batch_score_as_each_alone(tiny):
    """A batch of short prompts and long conversations is scored in parts (each keeps logits only
    about its own completions); every row's log-probabilities are those it has scored alone."""
    policy = chat_policy(tiny)
    prompts = [PROBLEM.prompt, revision_prompt(PROBLEM, FIRST), "What is 1 + 2?", revision_prompt(PROBLEM, FIRST * 3)]
    completions = ["42", "7 * 6 = 42", "3", "The answer is 42."]
    longest = max(len(policy.text_ids(c)) + 1 for c in completions)
    assert len(similar_starts([len(policy.prompt_ids(p)) for p in prompts], longest)) > 1
    logps, mask = policy.token_logps(prompts, completions)
    assert logps.requires_grad and logps.shape == mask.shape == (len(prompts), longest)
    with torch.no_grad():
        for k, (p, c) in enumerate(zip(prompts, completions)):
            alone, m = policy.token_logps([p], [c])
            n = len(policy.text_ids(c)) + 1
            assert int(m.sum()) == int(mask[k].sum()) == n and bool(mask[k, :n].all())
            torch.testing.assert_close(logps[k, :n].detach(), alone[0, :n], rtol=1e-4, atol=1e-5)
            assert not logps[k, n:].detach().any()
    assert similar_starts([30, 5, 12, 33, 7], 4) == [[1, 4], [2], [0, 3]]


RECIPE = "smollm2-self-correct"


def test_the_recipe_is_stage_one_sft_then_two_turn_rl_on_a_chat_model():
    recipe = load_recipe(resolve(RECIPE))
    assert recipe.task.chat and recipe.model.type == "hf" and recipe.sampler.type == "revise"
    assert recipe.selector.type == "revisions" and recipe.selector.shaping > 0
    assert recipe.learner.type == "grpo" and recipe.learner.sft_rounds >= 1 and recipe.learner.on_policy
    assert recipe.run.rounds > recipe.learner.sft_rounds  # RL rounds follow stage I


@pytest.mark.slow(20)
def test_the_recipe_runs_stage_one_and_two_on_a_tiny_llama_through_the_chat_template(tiny, tmp_path, monkeypatch):
    """Two rounds (SFT on correction traces, then on-policy two-turn GRPO): every revision is
    sampled and trained on after the conversation the chat template writes. A random tiny model is
    almost never right, so here a reply is right when its last number has its target's parity:
    about half of the replies with a number, so that both stages have traces and groups to learn."""
    from selftaught.engine import Run

    def parity(self, problem, reply):
        n = self.answer(reply)  # a number as written: "6.5" has no parity, and is wrong
        return n is not None and n.lstrip("-").isdigit() and int(n) % 2 == int(self.target(problem)) % 2

    monkeypatch.setattr(WordArithmetic, "check", parity)

    problems, steps, samples, revisions = 4, 2, 2, 2
    recipe = load_recipe(resolve(RECIPE), [
        'model.gguf=""', f'model.path="{tiny}"', "run.rounds=2", "learner.sft_rounds=1",
        f"curriculum.problems_per_round={problems}", f"learner.steps_per_round={steps}",
        f"sampler.samples={samples}", f"sampler.revisions={revisions}", "monitor.pass_k=2",
        "monitor.eval_per_difficulty=2", "learner.seed_batch_size=8", "learner.lr=0.001", "learner.seed_lr=0.001"])
    seen: dict[str, list[str]] = {"prompt_ids": [], "token_logps": [], "answer_loss_backward": []}
    for name in seen:
        original = getattr(HFPolicy, name)

        def spy(self, prompts, *args, name=name, original=original, **kwargs):
            seen[name] += [prompts] if isinstance(prompts, str) else list(prompts)
            return original(self, prompts, *args, **kwargs)

        monkeypatch.setattr(HFPolicy, name, spy)
    reports = Run(recipe, tmp_path / "run").execute()

    assert [r.round for r in reports] == [0, 1, 2]
    for r in reports:
        assert {"pass@1_turn2", "delta_wrong_to_right", "delta_right_to_wrong"} <= set(r.figures)
    with RunStore(tmp_path / "run") as store:
        made = {k: len(store.attempts(k, limit=10_000)) for k in (1, 2)}
    # stage I revises each first attempt once; stage II's groups revise each one ``revisions`` times
    assert made == {1: problems * samples, 2: problems * samples * revisions}

    turns = [p for p in seen["prompt_ids"] if isinstance(p, Conversation)]
    assert turns and all(p.turns[2] == REVISE_INSTRUCTION for p in turns)
    # each conversation reached the chat template whole: the rendered ids are the template's own
    policy = chat_policy(tiny)
    rendered = policy.tokenizer.decode(policy.prompt_ids(turns[-1]))
    assert rendered.count("<s>user ") == 2 and rendered.count("<s>assistant ") == 2
    # the learners trained on revisions after their conversations: stage I's SFT, then stage II's GRPO
    sft = [p for p in seen["answer_loss_backward"] if isinstance(p, Conversation)]
    scored = [p for p in seen["token_logps"] if isinstance(p, Conversation)]
    assert sft and len(scored) > len(sft) and {p.turns[0] for p in scored} <= {p.turns[0] for p in turns}

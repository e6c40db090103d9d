"""The model as its own judge (Self-Rewarding) and its own meta-judge (Meta-Rewarding): the score
parser, what an unreadable judgment costs, the verdict against transformers' own forward, the
meta-judge's win shares against a hand computation, and the two SmolLM2 recipes on a tiny Llama."""

import math

import pytest
import torch

pytest.importorskip("transformers")

from selftaught.builtin_recipes import resolve  # noqa: E402
from selftaught.judge.filters import Score  # noqa: E402
from selftaught.judge.llm_judge import META_PROMPT, LLMJudge, MetaJudging, read_score  # noqa: E402
from selftaught.learn.sft import SFTSettings  # noqa: E402
from selftaught.policy import Completion  # noqa: E402
from selftaught.recipe import RecipeError, load_recipe  # noqa: E402
from selftaught.sample.attempts import Attempt  # noqa: E402
from selftaught.select.reward import build_pairs  # noqa: E402
from selftaught.store import RunStore  # noqa: E402
from selftaught.tasks.base import Problem  # noqa: E402
from selftaught.tasks.words import WordArithmetic  # noqa: E402


@pytest.mark.parametrize("text, top, expected", [
    ("The answer is right. Score: 4", 5, (4, 5)),
    ("score 5/5", 5, (5, 5)),
    ("Score: 2 at first; on reflection, Score = 3", 5, (3, 5)),  # the last score counts
    ("The score is 10", 10, (10, 10)),
    ("Score: 0", 5, (0, 5)),
])
def test_the_score_parser_reads_the_last_score(text, top, expected):
    n, of = expected
    assert read_score(text, top) == pytest.approx(n / of)


@pytest.mark.parametrize("text", ["The answer is correct.", "Score: 7", "Score: -1", "", "Score: ", "5 out of 5"])
def test_the_score_parser_refuses_what_it_cannot_read(text):
    assert read_score(text, 5) is None


def _attempt(pid: int, text: str, sample: int = 0) -> Attempt:
    return Attempt(pid, Problem(f"What is {pid} + 1?", 1), 0, text, sample=sample)


def test_a_reply_whose_judgments_are_unreadable_is_on_neither_side_of_a_pair():
    attempts = [_attempt(0, "It is 1.", 0), _attempt(0, "It is 2.", 1), _attempt(0, "It is 3.", 2),
                _attempt(1, "It is 5.", 0), _attempt(1, "It is 2.", 1)]
    values = [0.8, math.nan, 0.2, math.nan, math.nan]
    scores = {"llm-judge": [Score("llm-judge", v, v == v and v >= 0.5, "") for v in values]}
    selection = build_pairs(attempts, scores, values, margin=0.1)
    assert [(p.chosen, p.rejected) for p in selection.pairs] == [("It is 1.", "It is 3.")]
    assert selection.kept_attempts == [True, False, True, False, False]
    assert all("no value" in selection.reasons[i] for i in (1, 3, 4))


class Canned:
    """A stand-in policy whose written judgments and A/B log-odds are fixed by the test."""

    def __init__(self, judgments: list[str], prefers: dict[str, float]):
        self.judgments, self.prefers, self.asked = judgments, prefers, []

    def generate(self, prompts, limits, **kw):
        self.asked += list(prompts)
        return [Completion(self.judgments[k % len(self.judgments)], [], []) for k in range(len(prompts))]

    def log_odds(self, texts, yes, no, prompts=False):
        assert (yes, no) == ("A", "B") and prompts
        # the log-odds that judgment A is better: its preference minus B's
        out = []
        for t in texts:
            a = t.split("Judgment A: ")[1].split("\n\nJudgment B: ")[0]
            b = t.split("\n\nJudgment B: ")[1].split("\n\nWhich")[0]
            out.append(self.prefers[a] - self.prefers[b])
        return torch.tensor(out)


def test_written_judgments_are_averaged_over_those_that_can_be_read():
    policy = Canned(["Right. Score: 5", "Hmm. Score: 2", "I cannot tell"], {})
    judge = LLMJudge([policy], "score", judgments=3)
    [score] = judge.score(WordArithmetic(), [_attempt(0, "It is 1.")])
    assert score.value == pytest.approx((5 / 5 + 2 / 5) / 2) and score.passed == (score.value >= 0.5)
    assert len(policy.asked) == 3 and "Question: What is 0 + 1?" in policy.asked[0]
    policy.judgments = ["no score", "none either", "nor here"]
    [unread] = judge.score(WordArithmetic(), [_attempt(0, "It is 1.")])
    assert math.isnan(unread.value) and not unread.passed and "no value" in unread.reason


def test_the_meta_judge_pairs_the_judgments_that_win_most_and_least(tmp_path):
    texts = ["Right. Score: 5", "Wrong. Score: 0", "Great answer!", "Maybe. Score: 3"]
    prefers = {"Right. Score: 5": 1.5, "Wrong. Score: 0": -0.5, "Great answer!": 3.0, "Maybe. Score: 3": 0.2}
    policy = Canned(texts, prefers)
    judge = LLMJudge([policy], "score", judgments=4,
                     meta=MetaJudging(replies=1, steps=0, settings=SFTSettings(), margin=0.0))
    judge.score(WordArithmetic(), [_attempt(0, "It is 1.")])

    def sigmoid(x: float) -> float:
        return 1 / (1 + math.exp(-x))

    # by hand: P(x beats y) averages the two orders, P(A) as asked and 1 - P(A) swapped
    beats = {(x, y): (sigmoid(prefers[x] - prefers[y]) + 1 - sigmoid(prefers[y] - prefers[x])) / 2
             for x in texts for y in texts if x != y}
    share = {x: sum(beats[x, y] for y in texts if y != x) / 3 for x in texts}
    readable = [x for x in texts if read_score(x, 5) is not None]

    class NoBar:
        def advance(self, n: int = 1) -> None:
            pass

    [pair] = judge._meta_pairs(judge.judged, NoBar())
    # the unreadable judgment wins most, but a judgment with no score is never the chosen side
    assert max(share, key=share.get) == "Great answer!"
    assert pair.chosen == max(readable, key=share.get) and pair.rejected == min(share, key=share.get)
    assert pair.prompt == judge.judged[0].prompt
    judge.meta = MetaJudging(replies=1, steps=0, settings=SFTSettings(), margin=1.0)  # a margin none meets
    assert judge._meta_pairs(judge.judged, NoBar()) == [None]
    assert META_PROMPT.count("{") == 4  # question, reply, a, b


def test_the_verdict_is_the_log_odds_after_the_chat_template_as_transformers_computes_it(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from test_hf_policy import build_tiny, policy_from

    directory = build_tiny(tmp_path / "tiny", chars="".join(dict.fromkeys(WordArithmetic.alphabet + "YN?:")))
    policy = policy_from(directory, chat=True)
    judge = LLMJudge([policy], "verdict", yes="Y", no="N")
    attempts = [_attempt(3, "4"), _attempt(5, "It is 9.")]
    values = [s.value for s in judge.score(WordArithmetic(), attempts)]
    model, tokenizer = AutoModelForCausalLM.from_pretrained(directory), AutoTokenizer.from_pretrained(directory)
    for a, v in zip(attempts, values):
        ids = tokenizer.apply_chat_template([{"role": "user", "content": judge.prompt(a)}], add_generation_prompt=True,
                                            tokenize=True, return_dict=False)
        with torch.no_grad():
            last = model(input_ids=torch.tensor([ids])).logits[0, -1]
        y, n = tokenizer.convert_tokens_to_ids("Y"), tokenizer.convert_tokens_to_ids("N")
        assert v == pytest.approx(torch.sigmoid(last[y] - last[n]).item(), abs=1e-5)


def test_meta_judging_needs_written_judgments():
    with pytest.raises(RecipeError, match="meta_steps"):
        load_recipe(resolve("smollm2-meta-rewarding"), ['judges.0.mode="verdict"'])


# ---- the recipes on a tiny Llama ---------------------------------------------------------------------

TINY = ['model.gguf=""', "run.rounds=2", "curriculum.problems_per_round=6", "learner.steps_per_round=2",
        "monitor.eval_per_difficulty=2"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from test_hf_policy import build_tiny

    chars = "".join(dict.fromkeys(WordArithmetic.alphabet + "YNAB?:"))
    return build_tiny(tmp_path_factory.mktemp("tiny-judge"), chars=chars, positions=512)


@pytest.mark.slow(10)
@pytest.mark.parametrize("name, extra", [
    ("smollm2-self-rewarding", ['judges.0.yes="Y"', 'judges.0.no="N"']),
    ("smollm2-meta-rewarding", ["judges.0.judgments=3", "judges.0.max_tokens=12", "judges.0.meta_steps=2",
                                "judges.0.meta_replies=4"]),
    ("smollm2-grpo", ["curriculum.problems_per_round=4", "sampler.samples=4", "monitor.pass_k=4",
                      "monitor.eval_samples=2", "learner.micro_batch=3"]),
    ("smollm2-bstar", ["selector.probe_problems=3"]),
])
def test_the_smollm2_method_recipes_run_two_rounds_on_a_tiny_llama(tiny, tmp_path, name, extra):
    """Each recipe, its model swapped for a tiny Llama: two rounds run and record the figures its
    method is judged by."""
    from selftaught.engine import Run

    recipe = load_recipe(resolve(name), [*TINY, f'model.path="{tiny}"', *extra])
    Run(recipe, tmp_path / "run").execute()
    wanted = {"smollm2-self-rewarding": ["judge_auroc/llm-judge"],
              "smollm2-meta-rewarding": ["judge_auroc/llm-judge", "meta_pairs", "judge_tokens"],
              "smollm2-grpo": ["eval_pass@1", "eval_pass@2"],
              "smollm2-bstar": ["bstar_temperature", "bstar_threshold"]}[name]
    with RunStore(tmp_path / "run") as store:
        assert store.last_round() == 2
        for figure in wanted:
            assert set(store.metric(figure)) >= {1, 2}, figure
        if name == "smollm2-grpo":
            p1, p2 = store.metric("eval_pass@1"), store.metric("eval_pass@2")
            assert all(0 <= p1[r] <= p2[r] <= 1 for r in (1, 2))
    if "rewarding" in name:
        assert not any(j.uses_ground_truth for j in recipe.judges)


def test_a_verdict_word_the_tokenizer_splits_is_refused_as_the_recipe_loads(tiny):
    with pytest.raises(RecipeError, match="one token"):
        load_recipe(resolve("smollm2-self-rewarding"), [*TINY, f'model.path="{tiny}"'])  # "Yes": three characters

"""The challenger curriculum: the model writes its own problems (self-play). Its rewards against
hand computations, the solver's band, labels by vote, and whole runs on a tiny Llama: proposals
stored, a run killed mid-round resuming to the same proposals, the report's panel, bad settings."""

import math
import os
import random
import signal
import subprocess
import sys
from contextlib import nullcontext

import pytest
import torch

from selftaught import faults
from selftaught.builtin_recipes import resolve
from selftaught.context import Tools
from selftaught.curriculum import Outcome
from selftaught.curriculum.challenger import Challenger, learnability
from selftaught.judge.filters import Score
from selftaught.learn.sft import Example, SFTSettings
from selftaught.parts.curricula import ChallengerSettings
from selftaught.policy import Completion
from selftaught.recipe import RecipeError, load_recipe
from selftaught.sample.attempts import Attempt
from selftaught.select.consensus import Selection
from selftaught.select.selectors import Batch
from selftaught.store import RunStore
from selftaught.store.fingerprint import run_fingerprint
from selftaught.tasks.words import WordArithmetic


def test_learnability_rewards_equal_hand_computations():
    # AZR: 1 - p where the solver sometimes succeeds, else 0; R-Zero: min(p, 1 - p)
    assert [learnability(p, "azr") for p in (0.0, 0.25, 0.5, 1.0)] == [0.0, 0.75, 0.5, 0.0]
    assert [learnability(p, "r-zero") for p in (0.0, 0.25, 0.5, 0.75, 1.0)] == [0.0, 0.25, 0.5, 0.25, 0.0]


class Scripted:
    """A policy that writes the given replies, in order, whatever it is asked."""

    def __init__(self, replies):
        self.replies = replies
        self.asked = []

    def generate(self, prompts, limits, **kw):
        self.asked += list(prompts)
        return [Completion(r, [], []) for r in self.replies[:len(prompts)]]


def challenger(replies, **settings) -> Challenger:
    s = ChallengerSettings(type="challenger", problems_per_round=len(replies), group=len(replies), steps=0,
                           **settings)
    return Challenger(s, WordArithmetic(), [Scripted(replies)], None, SFTSettings(lr=0.0), seed=0, frontier=6)


def outcome(problems, answers_per_problem) -> Outcome:
    """The solver's replies to each problem, judged by the task's checker."""
    task = WordArithmetic()
    attempts = [Attempt(i, p, 0, text) for i, (p, texts) in enumerate(zip(problems, answers_per_problem))
                for text in texts]
    scores = {"verifier": [Score("verifier", float(ok), ok, "") for a in attempts
                           for ok in [task.check(a.problem, a.text)]]}
    tools = Tools(1, 0, lambda name, total: nullcontext(), None, None, None, None, None)
    return Outcome(problems, Batch(attempts, scores, [s.value for s in scores["verifier"]]), {}, tools)


REPLIES = ["Sure: What is 2 + 3?", "What is 2+3?", "hello there", "What is 12 * 7?"]


def test_proposals_are_read_deduplicated_and_rewarded_as_r_zero_computes_by_hand():
    c = challenger(REPLIES)
    problems = c.propose(WordArithmetic(), random.Random(0))
    assert [p.prompt for p in problems] == ["What is 2 + 3?", "What is 12 * 7?"]
    assert [p.problem_id for p in c.round] == [0, 0, None, 1] and c.round[2].reason == "no arithmetic expression " \
        "in the reply"
    # 2 + 3 solved 3 times of 4, 12 * 7 once of 4
    figures = c.update(outcome(problems, [["5", "5", "The answer is 5.", "6"], ["84", "48", "74", "8"]]))
    # the two identical questions form one BLEU cluster (2 of the 4 proposals); 12 * 7 is alone (1 of 4):
    # BLEU("What is 2 + 3?", "What is 12 * 7?") = (2/5 * 1/4 * 0.1/3 * 0.1/2)^(1/4) = 0.114, distance 0.89 > 0.5
    assert [p.solve_rate for p in c.round[:2]] == [0.75, 0.75] and c.round[3].solve_rate == 0.25
    assert [p.reward for p in c.round] == pytest.approx([0.25 - 0.5, 0.25 - 0.5, -1.0, 0.25 - 0.25])
    assert figures["proposal_valid"] == 0.75 and figures["proposal_distinct"] == pytest.approx(2 / 3)
    assert figures["proposal_reward"] == pytest.approx((-0.25 - 0.25 - 1.0 + 0.0) / 4)
    assert figures["proposal_solve_3"] == pytest.approx(2 / 3) and figures["proposal_solve_1"] == pytest.approx(1 / 3)
    # both were sometimes solved and sometimes not: the next prompts show them as references
    assert c.buffer == ["What is 2 + 3?", "What is 12 * 7?"]
    c.propose(WordArithmetic(), random.Random(0))
    assert "What is 2 + 3?" in c.policies[0].asked[-1] and "What is 12 * 7?" in c.policies[0].asked[-1]


def test_azr_reward_and_no_repetition_penalty():
    c = challenger(REPLIES, reward="azr", repetition=0.0)
    problems = c.propose(WordArithmetic(), random.Random(0))
    c.update(outcome(problems, [["5", "5", "5", "6"], ["1", "2", "3", "4"]]))
    assert [p.reward for p in c.round] == pytest.approx([0.25, 0.25, -1.0, 0.0])  # 1 - 0.75; p = 0 earns 0


def test_the_solver_trains_only_on_problems_whose_solve_rate_is_in_the_band():
    c = challenger(REPLIES, band=[0.3, 0.8])
    problems = c.propose(WordArithmetic(), random.Random(0))
    done = outcome(problems, [["5", "5", "5", "6"], ["84", "1", "2", "3"]])
    kept = [a.text in ("5", "84") for a in done.batch.attempts]
    selection = Selection([Example(problems[0].prompt, "5"), Example(problems[1].prompt, "84")], [0, 1], kept,
                          ["kept"] * len(kept))
    admitted = c.admit(done, selection)
    # 2 + 3 at 0.75 is in [0.3, 0.8]; 12 * 7 at 0.25 is not
    assert [e.prompt for e in admitted.examples] == ["What is 2 + 3?"] and admitted.kept_problems == [0]
    assert admitted.kept_attempts[4] is False and "outside the band" in admitted.reasons[4]


def test_without_the_executor_the_label_is_the_majority_answer_and_its_precision_is_audited():
    c = challenger(REPLIES, executor=False)
    problems = c.propose(WordArithmetic(), random.Random(0))
    # the vote is right on 2 + 3 (5, 3 of 4) and wrong on 12 * 7 (48, 2 of 4)
    figures = c.update(outcome(problems, [["5", "5", "5", "6"], ["48", "48", "84", "1"]]))
    assert [p.label for p in c.round if p.problem] == ["5", "5", "48"]
    assert [p.solve_rate for p in c.round if p.problem] == [0.75, 0.75, 0.5]
    assert figures["pseudo_label_precision"] == pytest.approx(2 / 3)


def test_a_round_where_nothing_proposed_can_be_read_costs_every_proposal_its_reward():
    c = challenger(["no", "nothing here", "What is love?", "9**9**9**9"])
    assert c.propose(WordArithmetic(), random.Random(0)) == []
    figures = c.update(outcome([], []))
    assert [p.reward for p in c.round] == [-1.0] * 4 and figures["proposal_valid"] == 0.0
    assert math.isnan(figures["proposal_solve_rate"])


@pytest.mark.parametrize("overrides, message", [
    (["curriculum.band=[0.8, 0.3]"], r"curriculum.band = \[0.8, 0.3\]"),
    (["curriculum.problems_per_round=20"], r"curriculum.problems_per_round \(20\) must be a multiple of"),
    (["curriculum.executor=false"], r"curriculum.executor = false .*\['verifier'\].*majority-vote"),
    (['task.name="countdown"'], r"curriculum.type = 'challenger' .*'countdown' cannot read a written problem"),
])
def test_bad_challenger_settings_are_one_line_errors(overrides, message):
    with pytest.raises(RecipeError, match=message) as e:
        load_recipe(resolve("smollm2-self-play"), overrides)
    assert "\n" not in str(e.value)


# ---- whole runs on a tiny Llama -------------------------------------------------------------------

TINY = ['model.gguf=""', "run.rounds=2", "curriculum.problems_per_round=16", "curriculum.group=4",
        "curriculum.steps=2", "curriculum.batch_size=8", "curriculum.max_tokens=12", "sampler.samples=4",
        "learner.steps_per_round=2", "monitor.eval_per_difficulty=2", "curriculum.lr=0.001", "monitor.pass_k=4"]


@pytest.fixture(scope="module")
def tiny_recipe(tmp_path_factory):
    return tiny_challenger(tmp_path_factory.mktemp("tiny-challenger"))


def tiny_challenger(directory):
    """The self-play recipe on a tiny Llama (in ``directory``): (recipe file, overrides)."""
    from test_hf_policy import build_tiny

    # a tokenizer of arithmetic and the prompts' letters: a random model writes many readable expressions
    chars = "".join(dict.fromkeys(WordArithmetic.alphabet + "<>'"))
    build_tiny(directory / "model", chars=chars, positions=512)
    # its (tied) embeddings of digits, + and * made larger, so that a random model's replies hold
    # readable expressions as well as refused ones
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tokenizer = AutoModelForCausalLM.from_pretrained(directory / "model"), AutoTokenizer.from_pretrained(
        directory / "model")
    with torch.no_grad():
        for c in "0123456789+* ":
            model.get_input_embeddings().weight[tokenizer.convert_tokens_to_ids(c)] *= 3.0
    model.save_pretrained(directory / "model")
    path = directory / "self-play.toml"
    path.write_text(resolve("smollm2-self-play").read_text())
    return path, [*TINY, f'model.path="{directory / "model"}"']


def selftaught(*args: str, kill_at: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != faults.ENV} | ({faults.ENV: kill_at} if kill_at else {})
    return subprocess.run([sys.executable, "-m", "selftaught.cli", *args], capture_output=True, text=True, env=env,
                          timeout=300)


@pytest.mark.slow(30)
def test_a_self_play_run_stores_its_proposals_and_resumes_bitwise_after_a_kill(tiny_recipe, tmp_path):
    path, overrides = tiny_recipe
    sets = [x for o in overrides for x in ("-s", o)]
    done = selftaught("run", str(path), "--out", str(tmp_path / "reference"), *sets)
    assert done.returncode == 0, done.stderr
    expected = run_fingerprint(tmp_path / "reference")
    with RunStore(tmp_path / "reference") as store:
        rows = store.proposals(2)
        assert len(rows) == 16 and {r["group"] for r in rows} == {0, 1, 2, 3}
        valid = [r for r in rows if r["problem"] is not None]
        assert valid and all(r["executor_answer"] is not None and 0 <= r["solve_rate"] <= 1 for r in valid)
        assert all(r["reward"] == -1.0 and r["reason"] for r in rows if r["problem"] is None)
        names = set(store.metric_names())
        assert {"proposal_valid", "proposal_distinct", "proposal_solve_0", "challenger_buffer"} <= names
        # the challenger was trained (its groups' rewards differed), and its steps were timed
        assert "challenger_loss" in names and "challenger" in store.rounds()[1]["phases"]
    killed = selftaught("run", str(path), "--out", str(tmp_path / "run"), *sets, kill_at="sample:2")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    resumed = selftaught("resume", str(tmp_path / "run"))
    assert resumed.returncode == 0, resumed.stderr
    assert run_fingerprint(tmp_path / "run") == expected
    reported = selftaught("report", str(tmp_path / "run"))
    assert reported.returncode == 0, reported.stderr
    assert "Proposals" in (tmp_path / "run" / "report.html").read_text()


@pytest.mark.slow(20)
def test_a_separate_or_frozen_challenger_leaves_or_trains_its_own_weights(tiny_recipe, tmp_path):
    """A separate challenger is a copy saved with every checkpoint; a frozen one (the control)
    proposes from the starting model and never trains."""
    from selftaught.engine import Run

    path, overrides = tiny_recipe
    for model in ("separate", "frozen"):
        recipe = load_recipe(path, [*overrides, "run.rounds=1", f'curriculum.model="{model}"'])
        run = Run(recipe, tmp_path / model)
        start = {k: v.clone() for k, v in run.curriculum.own.model.state_dict().items()}
        run.execute()
        after = run.curriculum.own.model.state_dict()
        changed = any(not (start[k] == after[k]).all() for k in start)
        assert changed == (model == "separate")
        assert (tmp_path / model / "checkpoints").exists()
        saved = list((tmp_path / model).rglob("curriculum/*"))
        assert bool(saved) == (model == "separate")

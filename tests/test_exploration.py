"""The exploration bonus (RepExp): its elliptical bonus against explicit matrix inverses, its gate,
the policies' reply representations against the models' own forward passes, and a tiny GRPO run
that adds it to the verifier's reward."""

import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import torch

from learning_cases import TINY
from selftaught.engine import Run
from selftaught.engine.executors import LocalExecutor, Replicated
from selftaught.judge.exploration import ExplorationJudge, group_bonuses, rank_one, sparse_projection
from selftaught.judge.filters import Score
from selftaught.models.char_policy import CharPolicy
from selftaught.models.transformer import TransformerConfig
from selftaught.recipe import RecipeError, load_recipe
from selftaught.sample import Attempt
from selftaught.store import RunStore
from selftaught.tasks import ReversedAddition
from selftaught.tasks.base import Problem
from selftaught.tasks.tokenizer import EOS, CharTokenizer

ROOT = Path(__file__).resolve().parents[1]


def explicit_bonuses(features: np.ndarray, ridge: float, mode: str) -> np.ndarray:
    """The bonus as the paper writes it: centre the group, invert each covariance outright."""
    h = features - features.mean(0)
    out = []
    for i in range(len(h)):
        others = [j for j in range(len(h)) if mode == "leverage" or j != i]
        cov = ridge * np.eye(h.shape[1]) + sum(np.outer(h[j], h[j]) for j in others)
        out.append(h[i] @ np.linalg.inv(cov) @ h[i])
    return np.array(out)


@pytest.mark.parametrize("mode", ["leverage", "leave-one-out"])
@pytest.mark.parametrize("replies, dims", [(5, 3), (4, 6), (1, 2)])  # fewer dims than replies, more, a lone reply
def test_bonus_equals_the_explicit_inverse(mode, replies, dims):
    features = np.random.default_rng(replies * 10 + dims).normal(size=(replies, dims))
    for ridge in (0.01, 0.7):
        np.testing.assert_allclose(group_bonuses(features, ridge, mode), explicit_bonuses(features, ridge, mode),
                                   rtol=1e-9, atol=1e-12)


def test_rank_one_updates_agree_with_the_direct_inverse():
    rng = np.random.default_rng(0)
    m = rng.normal(size=(5, 5))
    a = m @ m.T + 2 * np.eye(5)
    x = rng.normal(size=5) * 0.5
    for sign in (1.0, -1.0):
        np.testing.assert_allclose(rank_one(np.linalg.inv(a), x, sign), np.linalg.inv(a + sign * np.outer(x, x)),
                                   rtol=1e-9, atol=1e-12)
    # built up one reply at a time from ridge * I, as the judge builds a group's
    hs, ridge = rng.normal(size=(7, 5)), 0.05
    inverse = np.eye(5) / ridge
    for h in hs:
        inverse = rank_one(inverse, h)
    np.testing.assert_allclose(inverse, np.linalg.inv(ridge * np.eye(5) + hs.T @ hs), rtol=1e-8, atol=1e-10)


def test_the_projection_is_sparse_seeded_and_keeps_lengths_on_average():
    width, dims = 400, 32
    p = ExplorationJudge([], dims=dims, seed=3).projection(width)
    assert np.array_equal(p, ExplorationJudge([], dims=dims, seed=3).projection(width))  # the run's seed alone
    assert not np.array_equal(p, ExplorationJudge([], dims=dims, seed=4).projection(width))
    density = 1 / np.sqrt(width)
    scale = np.sqrt(1 / density / dims)
    np.testing.assert_allclose(np.abs(p[p != 0]), scale, rtol=1e-12)
    assert abs((p != 0).mean() - density) < 0.2 * density
    assert abs((p > 0).mean() - (p < 0).mean()) < 0.2 * density
    # E[P P^T] = I: squared lengths survive the projection on average
    x = np.random.default_rng(1).normal(size=(200, width))
    many = np.stack([sparse_projection(width, dims, np.random.default_rng(s)) for s in range(20)])
    ratio = np.mean([(np.linalg.norm(x @ q, axis=1) ** 2 / np.linalg.norm(x, axis=1) ** 2).mean() for q in many])
    assert abs(ratio - 1) < 0.05


class TablePolicy:
    """A policy whose reply representation is a fixed random vector per text."""

    def __init__(self, width: int = 24, seed: int = 0):
        self.width, self.seed, self.calls = width, seed, 0

    def vector(self, text: str) -> np.ndarray:
        return np.random.default_rng([self.seed, *map(ord, text)]).normal(size=self.width)

    def reply_features(self, prompts, completions) -> torch.Tensor:
        self.calls += 1
        return torch.tensor(np.stack([self.vector(c) for c in completions]), dtype=torch.float32)


PROBLEMS = [Problem("12+3=", 2), Problem("7+45=", 2)]
TEXTS = {(0, 0): ["51", "52", "15"], (1, 0): ["25", "26", "27"], (0, 1): ["51", "99", "1"]}


def table_attempts() -> list[Attempt]:
    """Three replies each to problem 0 by members 0 and 1, and to problem 1 by member 0, interleaved."""
    rows = [(pid, m, k, t) for (pid, m), texts in TEXTS.items() for k, t in enumerate(texts)]
    rows = rows[::2] + rows[1::2]  # a group's attempts need not be together
    return [Attempt(pid, PROBLEMS[pid], m, t, sample=k) for pid, m, k, t in rows]


def verdicts(attempts: list[Attempt], right: set[str]) -> list[Score]:
    return [Score("verifier", float(a.text in right), a.text in right, "") for a in attempts]


@pytest.mark.parametrize("mode", ["leverage", "leave-one-out"])
def test_each_group_gets_its_bonus_and_a_group_without_a_right_reply_none(mode):
    members = [TablePolicy(seed=0), TablePolicy(seed=1)]
    judge = ExplorationJudge(members, mode=mode, dims=8, ridge=0.01, seed=0, batch_size=2)
    attempts = table_attempts()
    # problem 0 is right for member 0 ("15") and not for member 1; problem 1 has no right reply
    scores = judge.score_after(ReversedAddition(), attempts, {"verifier": verdicts(attempts, {"15"})})
    assert all(s.passed and s.judge == "exploration" for s in scores)  # a bonus, never a veto
    got = defaultdict(list)
    for a, s in zip(attempts, scores):
        got[a.problem_id, a.member].append((a.text, s))
    for (pid, m), texts in TEXTS.items():
        order = [t for t, _ in got[pid, m]]
        values = np.array([s.value for _, s in got[pid, m]])
        raw = np.stack([members[m].vector(t) for t in order]) @ judge.projection(members[0].width)
        bonus = explicit_bonuses(raw, 0.01, mode)
        if (pid, m) == (0, 0):
            np.testing.assert_allclose(values, bonus, rtol=1e-6)
            assert values.min() > 0 and not any("gated" in s.reason for _, s in got[pid, m])
        else:
            assert values.tolist() == [0.0] * len(texts)
            for (_, s), b in zip(got[pid, m], bonus):
                assert s.reason == f"{mode} bonus {b:.4g}, gated off: no reply of its group passes verifier"
    assert members[0].calls == 3  # six replies of member 0 in batches of two
    ungated = ExplorationJudge(members, mode=mode, dims=8, ridge=0.01, gate="", seed=0).score(
        ReversedAddition(), attempts)
    assert all(s.value > 0 for s in ungated)


def test_a_gate_that_has_not_judged_is_an_error():
    judge = ExplorationJudge([TablePolicy()], gate="verifier")
    with pytest.raises(ValueError, match="gated by 'verifier'.*list it before the exploration judge"):
        judge.score(ReversedAddition(), table_attempts()[:1])


def test_char_policy_reply_features_are_the_mean_final_state_over_the_reply():
    torch.manual_seed(0)
    tok = CharTokenizer("0123456789+=")
    policy = CharPolicy.create(TransformerConfig(vocab_size=tok.vocab_size, n_layers=2, d_model=32, n_heads=4,
                                                 d_ff=64, max_len=16, positional="rope"), tok)
    prompts, replies = ["12+3=", "7+45=", "9=", "1+1="], ["15", "25", "", "2222222222222"]
    got = policy.reply_features(prompts, replies)
    assert got.shape == (4, 32) and not got.requires_grad
    for k, (p, r) in enumerate(zip(prompts, replies)):
        seq = (tok.encode(p) + tok.encode(r) + [EOS])[:16]  # one sequence alone, no padding
        with torch.no_grad():
            states = policy.model.features(torch.tensor([seq]))[0]
        torch.testing.assert_close(got[k], states[len(tok.encode(p)):].mean(0), atol=1e-5, rtol=1e-5)
        # the state is the one the head reads: its logits are the model's own
        torch.testing.assert_close(policy.model.head(states), policy.model(torch.tensor([seq]))[0].detach())
    # the run's parts hold a Replicated: the method reaches the policy through it
    torch.testing.assert_close(Replicated(policy, 0, LocalExecutor()).reply_features(prompts, replies), got)


@pytest.mark.parametrize("chat, lora", [(False, False), (True, False), (False, True)])
def test_hf_reply_features_are_the_mean_last_hidden_state_over_the_reply(tmp_path, chat, lora):
    pytest.importorskip("transformers")
    from selftaught.models.hf_policy import HFPolicy, load_pretrained, with_lora
    from test_hf_policy import build_tiny

    model, tokenizer = load_pretrained(path=str(build_tiny(tmp_path)))
    if lora:
        pytest.importorskip("peft")
        model = with_lora(model, 4)
        with torch.no_grad():  # adapters that change the states (they start at zero)
            for name, p in model.named_parameters():
                if "lora_B" in name:
                    p.normal_(0, 0.5)
    policy = HFPolicy(model, tokenizer, chat=chat)
    prompts, replies = ["12+3=", "7+45=", "9=", "ab1 "], ["15", "25", "", "abc abc"]
    got = policy.reply_features(prompts, replies)
    assert got.shape == (4, model.config.hidden_size) and got.dtype == torch.float32
    for k, (p, r) in enumerate(zip(prompts, replies)):
        prompt = policy.prompt_ids(p)
        seq = torch.tensor([prompt + tokenizer(r, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]])
        with torch.no_grad():
            last = model(input_ids=seq, output_hidden_states=True).hidden_states[-1][0]  # transformers' own
        torch.testing.assert_close(got[k], last[len(prompt):].mean(0), atol=1e-5, rtol=1e-5)
    if lora:  # the adapters are in the states
        with model.disable_adapter():
            assert not torch.allclose(policy.reply_features(prompts, replies), got, atol=1e-3)


def grpo_recipe(tmp_path: Path, judges: str) -> Path:
    """recipes/grpo.toml with ``judges`` in place of its verifier table."""
    text = (ROOT / "recipes" / "grpo.toml").read_text()
    verifier = '[[judges]]\ntype = "verifier"\n'
    assert verifier in text
    path = tmp_path / "grpo-exploration.toml"
    path.write_text(text.replace(verifier, judges))
    return path


EXPLORATION = '[[judges]]\ntype = "exploration"\nweight = 0.01\n'
VERIFIER = '[[judges]]\ntype = "verifier"\n'


def test_the_gate_must_be_a_judge_listed_before(tmp_path):
    with pytest.raises(RecipeError, match=r"judges\[0\].gate = 'verifier' names no judge listed before it"):
        load_recipe(grpo_recipe(tmp_path, EXPLORATION + VERIFIER))
    with pytest.raises(RecipeError, match=r"judges\[1\].gate = 'self-certainty' names no judge listed before it"):
        load_recipe(grpo_recipe(tmp_path, VERIFIER + EXPLORATION), ["judges.1.gate=self-certainty"])
    with pytest.raises(RecipeError, match=r"judges\[1\].ridge = 0.0: .*ridge > 0"):
        load_recipe(grpo_recipe(tmp_path, VERIFIER + EXPLORATION), ["judges.1.ridge=0"])
    recipe = load_recipe(grpo_recipe(tmp_path, EXPLORATION + VERIFIER), ["judges.0.gate="])  # no gate: any order
    assert [j.type for j in recipe.judges] == ["exploration", "verifier"]


@pytest.mark.slow(14)
def test_a_tiny_grpo_run_adds_the_gated_bonus_to_the_verifiers_reward(tmp_path):
    recipe = load_recipe(grpo_recipe(tmp_path, VERIFIER + EXPLORATION),
                         TINY + ["run.rounds=1", "learner.steps_per_round=2", "curriculum.problems_per_round=24",
                                 "monitor.eval_per_difficulty=10"])
    reports = Run(recipe, tmp_path / "run").execute()
    assert len(reports) == 2
    with RunStore(tmp_path / "run") as store:
        attempts = store.attempts(1, limit=1000)
    assert len(attempts) == 24 * 4
    groups = defaultdict(list)
    for a in attempts:
        scores = {s["judge"]: s for s in a["scores"]}
        groups[a["problem"], a["member"]].append((scores["verifier"], scores["exploration"], a["reason"]))
    open_ = 0
    for group in groups.values():
        right = any(v["passed"] for v, _, _ in group)
        open_ += right
        for verifier, bonus, reason in group:
            assert bonus["passed"]
            assert ("gated off" in bonus["reason"]) == (not right)
            raw = float(re.match(r"leverage bonus (\S+?),? ", bonus["reason"] + " ").group(1))
            assert bonus["value"] == (pytest.approx(raw, rel=1e-3) if right else 0.0)
            # a centred reply's leverage lies in [0, 1): it never outweighs the verifier at weight 0.01
            assert 0.0 <= raw < 1.0
            shown = re.search(r"in a group with reward (\S+) ", reason)
            if shown:  # groups whose rewards differ are learned from: reward = verifier + 0.01 * bonus
                assert float(shown.group(1)) == pytest.approx(verifier["value"] + 0.01 * bonus["value"], abs=6e-4)
    assert 0 < open_ < len(groups)  # both kinds of group occur (fixed seed)

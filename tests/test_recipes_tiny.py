"""Each seed recipe, shrunk to a tiny model and a couple of rounds, moves its own figure the right
way (fixed seeds). The recipes are the real files under recipes/, with --set overrides."""

import random
from collections import Counter

import pytest

from learning_cases import (  # the settings bench/margins.py measures
    CASES,
    SEEDS_AVERAGED,
    SELF_REWARDING,
    TINY,
    mean_figures,
    meets_bars,
    multiagent,
    run,
    self_correct,
    self_rewarding_figures,
    star,
    two_turn_grpo,
)
from selftaught.builtin_recipes import resolve
from selftaught.engine import Run
from selftaught.recipe import RecipeError, load_recipe
from selftaught.store import RunStore
from selftaught.tasks.countdown import Countdown
from test_loop import _monitoring, grade_in_monitor_only


@pytest.mark.slow(16)
def test_star_raises_pass_at_1(tmp_path):
    """Four rounds of STaR on countdown raise held-out pass@1, and the verifier keeps right answers
    only. Measured (bench/margins.py, seeds 0-4) since training runs one grouped pass a step (issue
    43): 1 thread rise 0.192-0.278, mean 0.243, sd 0.035 (bar 5.5 sd below); 2 threads 0.137-0.302,
    mean 0.235, sd 0.067 (2.8 sd; every seed at least 2.7x the bar). Before: 0.167-0.275 at both,
    sd 0.044, 4.2 sd. With two rounds the rise was 0.06-0.17 (mean 0.12, sd 0.05) and the old bar
    of 0.03 only 1.9 sd below it."""
    meets_bars("star", star(tmp_path, seed=0))


def test_bstar_picks_the_best_balance_on_its_grid(tmp_path):
    reports = run("bstar", tmp_path, 0, "selector.probe_problems=30", "judges.1.rollouts=1",
                  "curriculum.problems_per_round=60", "run.rounds=1")
    r = reports[1]
    assert r.figures["bstar_temperature"] in (0.7, 1.0, 1.3) and r.figures["bstar_threshold"] in (1.0, 1.25, 1.5)
    assert 0.0 < r.figures["bstar_probe_balance"] <= 1.0


@pytest.mark.parametrize("case", [pytest.param("grpo_reused", marks=pytest.mark.slow(83)),
                                  pytest.param("grpo_fresh", marks=pytest.mark.slow(32))])
def test_grpo_raises_the_reward(tmp_path, case):
    """Two rounds of GRPO on two-number countdown raise the verifier's reward of the attempts sampled
    at temperature, fed either one round's groups reused for every step (grpo_reused) or fresh
    groups of 32 problems drawn each step (grpo_fresh). Measured (bench/margins.py, seeds 0-4, 1 and
    2 threads):
    - grpo_reused: sample accuracy rise 0.174-0.238, mean 0.210, sd 0.028 (bar 0.09, 4.3 sd below);
      greedy pass@1 rise 0.097-0.167, mean 0.130, sd 0.031 (bar 0.005, 4.1 sd below).
    - grpo_fresh: sample accuracy rise 0.136-0.212, mean 0.185, sd 0.030 (bar 0.06, 4.2 sd below);
      its greedy pass@1 rise (0.017-0.153) is too spread to assert.
    The earlier setting (both difficulties, lr 1e-4, 5 or 16 problems a step) moved both figures by
    -0.06 to +0.07: these tests had passed on their seed's luck."""
    meets_bars(case, CASES[case](tmp_path, seed=0))


def test_on_policy_grpo_samples_each_step_from_the_policy_then(tmp_path):
    """Each step samples its own share of the round's problems from the model as it is then; the
    store keeps every attempt with the step that drew it."""
    seen = []  # the sum of the sampling model's weights as each step's attempts were drawn
    recipe = load_recipe(resolve("grpo"), TINY + ["sampler.samples=8", "monitor.pass_k=8", "sampler.temperature=0.7",
                                                  "learner.steps_per_round=8", "curriculum.problems_per_round=44",
                                                  "run.rounds=1", "learner.lr=0.001"])
    r = Run(recipe, tmp_path / "g")
    sample = r.sampler.sample

    def watched(policies, *args):
        seen.append(sum(p.sum().item() for p in policies[0].model.parameters()))
        return sample(policies, *args)

    r.sampler.sample = watched
    reports = r.execute()
    with RunStore(tmp_path / "g") as store:
        attempts = store.attempts(1, limit=1000)
    assert len(attempts) == 44 * 8 == reports[1].made
    step_of = [int(a["reason"].split()[4].rstrip(";")) for a in attempts]
    assert Counter(step_of) == {k: 8 * (44 * (k + 1) // 8 - 44 * k // 8) for k in range(8)}  # 5 or 6 problems each
    assert sorted({a["problem"] for a in attempts}) == list(range(44))
    assert sum(a["kept"] for a in attempts) == reports[1].kept
    # the policy moved between two draws exactly when the earlier step had a group to learn from
    learned = [any(a["kept"] for a, k in zip(attempts, step_of) if k == step) for step in range(8)]
    assert len(seen) == 8 and sum(learned) >= 4
    assert [seen[k + 1] != seen[k] for k in range(7)] == learned[:7]


def test_multiagent_members_learn_their_own_data(tmp_path):
    """Three members taught briefly to copy up to 4 characters vote on fresh problems; each learns
    its own agreeing answers, which are mostly right, and held-out pass@1 rises. Measured (seeds 0-4,
    1 and 2 threads): rise 0.170-0.215, mean 0.194, sd 0.018; the bar of 0.1 sits 5.3 sd below. The
    members vote and do not all agree: cross-member distinct 0.93-0.95 (bars 1/6 and 1).
    The recipe's own countdown setting moved pass@1 by -0.012 to +0.022 over the same seeds: no
    effect to test (LOG.md, sessions 12 and 15)."""
    figures = multiagent(tmp_path, seed=0)
    meets_bars("multiagent", figures)
    assert figures["cross-member distinct"] < 1.0


@pytest.mark.slow(40)
def test_self_correct_learns_to_revise(tmp_path):
    """Round 0's model was never taught to revise, so its second turn loses every right answer;
    trained on correction traces it keeps them. Measured (bench/margins.py, seeds 0-4, 1 and 2
    threads): round 0 loses all of them (ratio 1.0 every run, bar 0.9) at pass@1 0.46-0.51 (bar 0.3);
    after three rounds the right answers lost are 0.06-0.17 of round 0's, mean 0.11, sd 0.044 (bar
    0.3, 4.3 sd above); turn 2 keeps 0.93-1.01 of turn 1's pass@1, mean 0.97, sd 0.034 (bar 0.8,
    5.1 sd below). It also fixes a few wrong answers (0.023-0.063 of the problems), too few to
    assert that it does on any CPU: the test no longer claims it (LOG.md, session 15)."""
    meets_bars("self_correct", self_correct(tmp_path, seed=0))


@pytest.mark.slow(140)
def test_two_turn_grpo_makes_the_revision_break_less_and_fix_more(tmp_path):
    """After one round of correction traces, one round of SCoRe's two-turn GRPO (revisions rewarded
    r2 + 10 (r2 - r1) against the other revisions of their query): the revision breaks fewer right
    answers and fixes more wrong ones than it did after the correction traces, in the mean of two
    runs (seeds 0 and 1). Measured one run at a time (bench/margins.py, seeds 0-4; figures paired on the
    same 2,000 held-out problems), 1 thread / 2 threads: right->wrong cut 0.041-0.087, mean 0.066,
    sd 0.019 / 0.041-0.082, mean 0.059, sd 0.016; wrong->right minus right->wrong gap rise
    0.048-0.109, mean 0.070, sd 0.024 / 0.051-0.116, mean 0.071, sd 0.026. One run's margin over
    a bar at 0 is 2.8-3.6 sd; the mean of two's (sd / sqrt 2) is 3.9 sd for the gap and 4.9 for the
    cut, at the weaker thread count (three runs gave 4.8 and 6.1 but cost the suite 80 s more: its
    longest test, on a VM running at 60% of its usual speed, LOG.md session 18). This setting's RL
    step (lr 2e-4) costs turn-1 pass@1 0.005-0.055; at lr 1e-4 neither figure cleared 3.1 sd (LOG.md,
    sessions 15-16)."""
    runs = [two_turn_grpo(tmp_path / f"seed-{seed}", seed) for seed in range(SEEDS_AVERAGED["two_turn_grpo"])]
    for figures in runs:
        assert figures["attempts"] == (1600 * 4, 1600 * 4 * 4)  # RL rounds revise each first attempt 4 times
    meets_bars("two_turn_grpo", mean_figures(runs))


class GuardedCountdown(Countdown):
    """Countdown whose checker answers only for the labelled seed problems (what the verdict is
    taught on) and for the monitor; anywhere else it raises."""

    labelled: set[str] = set()

    def check(self, problem, answer):
        if problem.prompt not in self.labelled and not getattr(_monitoring, "on", False):
            raise AssertionError(f"ground truth used on unlabelled problem {problem.prompt!r}")
        return super().check(problem, answer)


@pytest.mark.slow(39)
def test_self_rewarding_judges_its_own_attempts_without_ground_truth(tmp_path, monkeypatch):
    """The verdict, taught on seed problems only, learns (log 2 = 0.69 is chance) and tells the round's
    right attempts from wrong ones (an untaught verdict scores about 0.5), and pairs are built from the
    model's own judgements. Measured (bench/margins.py, seeds 0-4, 1 and 2 threads): verdict loss
    0.349-0.438, mean 0.379, sd 0.038 (bar 0.55, 4.5 sd above); AUROC 0.811-0.910, mean 0.865, sd
    0.037 (bar 0.7, 4.4 sd below); pairs 53-88, mean 71, sd 15 (bar 1, 4.6 sd below). The old bars
    (loss 0.5, AUROC 0.75, at 200 problems a round: pairs 25-45) sat 3.2, 3.7 and 3.8 sd away."""
    grade_in_monitor_only(monkeypatch)
    recipe = load_recipe(resolve("self-rewarding"), TINY + SELF_REWARDING + [
        'task.name="test_recipes_tiny:GuardedCountdown"', "run.seed=0"])
    r = Run(recipe, tmp_path / "sr")
    GuardedCountdown.labelled = {p.prompt for p in r.seed_problems()}
    meets_bars("self_rewarding", self_rewarding_figures(r.execute()))
    # and the guard bites outside the monitor
    rng = random.Random(5)
    unlabelled = next(p for p in iter(lambda: Countdown().sample(rng, 3), None)
                      if p.prompt not in GuardedCountdown.labelled)
    with pytest.raises(AssertionError, match="unlabelled"):
        GuardedCountdown().check(unlabelled, "1")


COMBINABLE = """
[task]
name = "countdown"
seed_max_difficulty = 3
[sampler]
type = "temperature"
samples = 4
[[judges]]
type = "verifier"
[selector]
type = "threshold"
[learner]
type = "sft"
[curriculum]
type = "uniform"
"""


@pytest.mark.parametrize("overrides, keys", [
    (['learner.type="dpo"'], ["learner.type = 'dpo'", "pairs", "selector.type = 'threshold'"]),
    (['selector.type="pairs"'], ["selector.type = 'pairs'", "learner.type = 'sft'"]),
    (['learner.type="grpo"', 'selector.type="groups"', 'sampler.type="greedy"'], ["sampler.type"]),
    (['selector.type="bstar"', 'judges.0.type="self-verdict"'], ["verifier"]),
    (['sampler.type="revise"'], ["sampler.type = 'revise'", "selector.type = 'revisions'"]),
    (['selector.type="revisions"'], ["selector.type = 'revisions'", "sampler.type = 'revise'"]),
    (["monitor.pass_k=16"], ["monitor.pass_k", "sampler.samples"]),
    (['selector.type="top-k"', "sampler.samples=1", "monitor.pass_k=1"], ["sampler.samples"]),
    # a key of another type: named with the type it belongs to
    (["learner.on_policy=true"], ["learner.on_policy", "learner.type = 'grpo'", "'sft'"]),
    (["sampler.revisions=4"], ["sampler.revisions", "sampler.type = 'revise'"]),
    (["learner.sft_rounds=2"], ["learner.sft_rounds", "learner.type = 'grpo'"]),
    (["selector.shaping=10.0"], ["selector.shaping", "selector.type = 'revisions'"]),
    (["judges.0.rollouts=2"], ["judges[0].rollouts", "'process-reward'", "'verifier'"]),
    # keys of the right type that the rest of the recipe cannot use
    (['sampler.type="revise"', 'selector.type="revisions"', "sampler.revisions=4"], ["sampler.revisions",
                                                                                    "learner.type"]),
    (['sampler.type="revise"', 'selector.type="revisions"', "selector.shaping=10.0"], ["selector.shaping",
                                                                                       "learner.type"]),
    (['learner.type="grpo"', 'selector.type="groups"', "learner.sft_rounds=2"], ["learner.sft_rounds",
                                                                                 "selector.type"]),
])
def test_bad_combinations_are_refused_naming_the_keys(tmp_path, overrides, keys):
    path = tmp_path / "combine.toml"
    path.write_text(COMBINABLE)
    load_recipe(path)  # the base is fine
    with pytest.raises(RecipeError) as e:
        load_recipe(path, overrides)
    assert str(path) in str(e.value)
    for key in keys:
        assert key in str(e.value)


def test_on_policy_grpo_needs_a_problem_for_every_step():
    with pytest.raises(RecipeError, match=r"curriculum.problems_per_round \(30\).*learner.steps_per_round \(48\)"):
        load_recipe(resolve("grpo"), ["curriculum.problems_per_round=30", "learner.steps_per_round=48"])
    with pytest.raises(RecipeError, match=r"learner.steps_per_round >= 1"):
        load_recipe(resolve("grpo"), ["learner.steps_per_round=0"])


def test_process_reward_needs_a_task_with_steps():
    """Refused while the recipe loads, before any run directory exists (the CLI's corpus test
    checks that nothing is written)."""
    with pytest.raises(RecipeError, match=r"judges\[1\].type = 'process-reward'.*task.name = 'reversed-addition'"):
        load_recipe(resolve("bstar"), ['task.name="reversed-addition"'])

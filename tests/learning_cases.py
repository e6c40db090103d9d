"""The configurations behind every learning test, each a function of the run seed that returns the
figures its test asserts on. Tests call them with their fixed seed; ``bench/margins.py`` calls them
over several seeds and thread counts to measure the spread each test's bar must clear.

``BARS`` holds each figure's bar (``(">=", 0.03)``: the figure must be at least 0.03), so the tests
and the margin bench read the same numbers.
"""

from __future__ import annotations

from pathlib import Path

from selftaught.builtin_recipes import resolve
from selftaught.engine import Run
from selftaught.recipe import load_recipe

TINY = ["model.n_layers=2", "model.d_model=64", "model.n_heads=4", "model.d_ff=256", "task.seed_examples=400",
        "learner.seed_steps=200", "learner.steps_per_round=60", "curriculum.problems_per_round=200",
        "monitor.eval_per_difficulty=150", "run.rounds=2"]


def run(name: str, out: Path, seed: int, *extra: str):
    return Run(load_recipe(resolve(name), TINY + list(extra) + [f"run.seed={seed}"]), out / name).execute()


def fig(report, name: str) -> float:
    return report.figures[name]


def star(out: Path, seed: int) -> dict[str, float]:
    reports = run("star", out, seed)
    return {"pass@1 rise": fig(reports[-1], "pass@1") - fig(reports[0], "pass@1")}


def grpo_reused(out: Path, seed: int) -> dict[str, float]:
    return _grpo(out, seed, "learner.on_policy=false", "learner.batch_size=1024")


def grpo_fresh(out: Path, seed: int) -> dict[str, float]:
    return _grpo(out, seed, "learner.on_policy=true", "curriculum.problems_per_round=640", "sampler.temperature=0.7")


def _grpo(out: Path, seed: int, *feed: str) -> dict[str, float]:
    reports = run("grpo", out, seed, "learner.steps_per_round=40", "run.rounds=3", "sampler.samples=8",
                  "monitor.pass_k=8", "curriculum.difficulty_weights=[]", *feed)
    return {"sample accuracy rise": fig(reports[-1], "sample_accuracy") - fig(reports[1], "sample_accuracy"),
            "pass@1 rise": fig(reports[-1], "pass@1") - fig(reports[0], "pass@1")}


def multiagent(out: Path, seed: int) -> dict[str, float]:
    reports = run("multiagent", out, seed, "model.d_model=48", "model.n_heads=4", "model.d_ff=192")
    return {"pass@1 rise": fig(reports[-1], "pass@1") - fig(reports[0], "pass@1"),
            "cross-member distinct": fig(reports[1], "cross_member_distinct")}


def self_correct(out: Path, seed: int) -> dict[str, float]:
    reports = run("self-correct", out, seed, "model.d_model=96", "model.d_ff=384", "task.seed_examples=500",
                  "learner.seed_steps=300", "learner.steps_per_round=100", "curriculum.problems_per_round=300",
                  "run.rounds=3")
    first, last = reports[0], reports[-1]
    return {"round 0 right->wrong / pass@1": fig(first, "delta_right_to_wrong") / fig(first, "pass@1"),
            "round 0 pass@1": fig(first, "pass@1"),
            "right->wrong drop ratio": fig(last, "delta_right_to_wrong") / fig(first, "delta_right_to_wrong"),
            "last wrong->right": fig(last, "delta_wrong_to_right"),
            "last turn-2 / turn-1 pass@1": fig(last, "pass@1_turn2") / fig(last, "pass@1")}


def two_turn_grpo(out: Path, seed: int) -> dict[str, float]:
    reports = run("self-correct", out, seed, "model.d_model=96", "model.d_ff=384", "task.seed_examples=500",
                  "learner.seed_steps=300", "learner.steps_per_round=100", "curriculum.problems_per_round=400",
                  "run.rounds=3", "learner.sft_rounds=2")
    sft, rl = reports[2], reports[3]

    def gap(r):
        return fig(r, "delta_wrong_to_right") - fig(r, "delta_right_to_wrong")

    return {"right->wrong cut": fig(sft, "delta_right_to_wrong") - fig(rl, "delta_right_to_wrong"),
            "gap rise": gap(rl) - gap(sft)}


def self_rewarding(out: Path, seed: int, task: str = "countdown") -> dict[str, float]:
    reports = run("self-rewarding", out, seed, f'task.name="{task}"', "run.rounds=1", "learner.seed_steps=400",
                  "judges.0.lr=0.001", "judges.0.threshold=0.5")
    return {"pairs": float(reports[1].kept), "verdict loss": fig(reports[0], "verdict_loss"),
            "verdict AUROC": fig(reports[1], "judge_auroc/self-verdict")}


LEARN = """
[run]
rounds = 4
seed = {seed}
[task]
name = "copy"
seed_max_difficulty = 3
seed_examples = 20000
[model]
n_layers = 2
d_model = 128
n_heads = 8
d_ff = 512
[[judges]]
type = "length"
[learner]
lr = 0.002
batch_size = 64
seed_steps = 1000
steps_per_round = 150
[curriculum]
problems_per_round = 1000
gate = 0.3
[monitor]
eval_per_difficulty = 512
eval_ahead = 2
"""


def loop_vs_control(out: Path, seed: int) -> dict[str, float]:
    path = out / "learn.toml"
    path.write_text(LEARN.format(seed=seed))
    reports = Run(load_recipe(path), out / "self").execute()
    control = Run(load_recipe(path, ["run.rounds=0", "learner.seed_steps=1600"]), out / "control").execute()
    seed_r, last, ctrl = reports[0], reports[-1], control[-1]
    return {"seed accuracy 1-3 (min)": min(seed_r.accuracy[d] for d in (1, 2, 3)), "frontier": float(last.frontier),
            "length-5 rise": last.accuracy[5] - seed_r.accuracy[5],
            "length-4 lead over control": last.accuracy[4] - ctrl.accuracy[4],
            "length-5 lead over control": last.accuracy[5] - ctrl.accuracy[5]}


CASES = {"star": star, "grpo_reused": grpo_reused, "grpo_fresh": grpo_fresh, "multiagent": multiagent,
         "self_correct": self_correct, "two_turn_grpo": two_turn_grpo, "self_rewarding": self_rewarding,
         "loop_vs_control": loop_vs_control}

# each figure's bar as its test asserts it
BARS = {
    "star": {"pass@1 rise": (">=", 0.03)},
    "grpo_reused": {"sample accuracy rise": (">=", 1e-9), "pass@1 rise": (">=", 1e-9)},
    "grpo_fresh": {"sample accuracy rise": (">=", 1e-9), "pass@1 rise": (">=", 1e-9)},
    "multiagent": {"pass@1 rise": (">=", 1e-9), "cross-member distinct": (">=", 1 / 6)},
    "self_correct": {"round 0 right->wrong / pass@1": (">=", 0.9), "round 0 pass@1": (">=", 0.3),
                     "right->wrong drop ratio": ("<=", 0.25), "last wrong->right": (">=", 1e-9),
                     "last turn-2 / turn-1 pass@1": (">=", 0.8)},
    "two_turn_grpo": {"right->wrong cut": (">=", 1e-9), "gap rise": (">=", 0.02)},
    "self_rewarding": {"pairs": (">=", 1), "verdict loss": ("<=", 0.5), "verdict AUROC": (">=", 0.75)},
    "loop_vs_control": {"seed accuracy 1-3 (min)": (">=", 0.95), "frontier": (">=", 5),
                        "length-5 rise": (">=", 0.03), "length-5 lead over control": (">=", 0.06)},
}

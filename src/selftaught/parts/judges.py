"""Judges: the ``[[judges]]`` tables. An attempt's reward is the weighted sum of its judges' values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from selftaught.registry import register, register_role
from selftaught.settings import RecipeError, setting


@dataclass
class JudgeSettings:
    type: str = setting("length", "which judge")
    weight: float = setting(1.0, "weight of this judge's value in an attempt's reward")

    equivalents: ClassVar[bool] = False  # needs each attempt's answers to the problem's other phrasings
    control_marks: ClassVar[bool] = False  # the model reads and writes the loop's verdict mark
    uses_ground_truth: ClassVar[bool] = False


@dataclass
class ConsistencySettings(JudgeSettings):
    equivalents: ClassVar[bool] = True


@dataclass
class MajorityVoteSettings(JudgeSettings):
    min_agreement: float = setting(0.5, "share of the votes the kept answer needs", min=0.0, max=1.0)
    min_votes: int = setting(1, "attempts that must give the kept answer", min=1)
    finished_only: bool = setting(False, "only replies that ended on their own within their budget vote (a reply "
                                  "cut off mid-sentence still has a last number, often an operand it repeated)")


@dataclass
class VerifierSettings(JudgeSettings):
    uses_ground_truth: ClassVar[bool] = True


_THRESHOLD = "value an attempt needs to pass"


@dataclass
class SelfCertaintySettings(JudgeSettings):
    threshold: float = setting(0.5, _THRESHOLD, min=0.0, max=1.0)


@dataclass
class SelfVerdictSettings(JudgeSettings):
    threshold: float = setting(0.5, _THRESHOLD, min=0.0, max=1.0)
    train_problems: int = setting(256, "labelled seed problems attempted each round to train the verdict on", min=1)
    train_steps: int = setting(100, "verdict training steps each round", min=0)
    lr: float = setting(0.0, "peak learning rate of verdict training (0 = learner.seed_lr)", min=0.0)

    control_marks: ClassVar[bool] = True


@dataclass
class ProcessRewardSettings(JudgeSettings):
    threshold: float = setting(0.5, _THRESHOLD, min=0.0, max=1.0)
    rollouts: int = setting(4, "completions sampled from each step's prefix", min=1)
    rollout_temperature: float = setting(1.0, "temperature of the rollouts", min=0.0)

    uses_ground_truth: ClassVar[bool] = True

    def check_task(self, task, where: str) -> None:
        if not getattr(task, "step_separator", None):
            raise RecipeError(f"{where}.type = 'process-reward' needs a task that writes its answer as steps; "
                              f"task.name = '{task.name}' does not")


@dataclass
class ProcessValueSettings(SelfVerdictSettings):
    targets: Literal["rest-mcts", "monte-carlo"] = setting(
        "rest-mcts", "what each step of a search tree is taught: rest-mcts (ReST-MCTS*'s V_k) or monte-carlo (the "
        "share of correct answers below it)")
    labels: Literal["checker", "verdict"] = setting(
        "checker", "what says an ended path is right: the task's checker (ground truth, as ReST-MCTS* uses known "
        "answers) or the value's own verdict (none)")
    train_problems: int = setting(256, "labelled seed problems attempted to teach the value in a round without "
                                  "search trees (the seed round)", min=1)
    model: Literal["policy", "separate"] = setting(
        "policy", "whose weights hold the value: the policy's own (its verdict, anchored by its greedy answers), or "
        "a separate copy of it made after the seed round and trained on the value alone (twice the memory)")

    uses_ground_truth: ClassVar[bool] = True  # with labels = 'checker', the default

    def check_task(self, task, where: str) -> None:
        if not getattr(task, "step_separator", None):
            raise RecipeError(f"{where}.type = 'process-value' values the steps of an answer, and task.name = "
                              f"'{task.name}' does not write its answers as steps (it has no step_separator)")


register_role("judge", JudgeSettings)
for _name, _settings, _target, _summary in (
        ("length", JudgeSettings, "filters:LengthJudge", "the answer has the length the prompt implies"),
        ("consistency", ConsistencySettings, "filters:ConsistencyJudge",
         "equivalent phrasings of the problem get the same answer"),
        ("majority-vote", MajorityVoteSettings, "filters:MajorityVoteJudge",
         "the attempts of every member and sample agree"),
        ("verifier", VerifierSettings, "verifier:VerifierJudge", "the task's checker (ground truth)"),
        ("self-verdict", SelfVerdictSettings, "self_verdict:SelfVerdictJudge",
         "the model's own Y/N verdict, taught each round on its attempts at the labelled seed problems"),
        ("self-certainty", SelfCertaintySettings, "self_certainty:SelfCertaintyJudge",
         "the model's geometric-mean probability of its own answer"),
        ("process-reward", ProcessRewardSettings, "process_reward:ProcessRewardJudge",
         "the weakest step's share of successful rollouts (ground truth)"),
        ("process-value", ProcessValueSettings, "process_value:ProcessValueJudge",
         "the model's own P(correct) after a partial or whole answer, taught on its search trees' targets")):
    register("judge", _name, _settings, f"selftaught.judge.{_target}.from_settings", _summary)

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


@dataclass
class LLMJudgeSettings(JudgeSettings):
    mode: Literal["verdict", "score"] = setting(
        "verdict", "how a judgment is read: verdict (log-odds of `yes` against `no` as the reply's first token) or "
        "score (judgments written at `temperature`, each ending 'Score: N' out of `top`, averaged)")
    threshold: float = setting(0.5, _THRESHOLD, min=0.0, max=1.0)
    judgments: int = setting(3, "written judgments of each reply (score)", min=1)
    temperature: float = setting(0.8, "temperature of the written judgments (score)", min=0.0)
    max_tokens: int = setting(48, "longest written judgment, in tokens (score)", min=1)
    top: int = setting(5, "the score of a right reply (score)", min=1)
    yes: str = setting("Yes", "the verdict's yes: one token of the model's tokenizer (verdict)")
    no: str = setting("No", "the verdict's no: one token of the model's tokenizer (verdict)")
    meta_steps: int = setting(0, "Meta-Rewarding: DPO steps each round teaching the judge from its meta-judge's "
                              "pairs of judgments (score; 0 = no meta-judging)", min=0)
    meta_replies: int = setting(64, "replies a round whose judgments are meta-judged", min=1)
    meta_margin: float = setting(0.5, "the least difference in win share between a pair's judgments", min=0.0,
                                 max=1.0)
    meta_beta: float = setting(0.1, "DPO's beta for the judge", min=0.0)
    meta_batch_size: int = setting(16, "pairs of judgments a judge DPO step", min=1)
    lr: float = setting(0.0, "peak learning rate of the judge's DPO (0 = learner.lr)", min=0.0)

    def reply_tokens(self) -> tuple[str, ...]:
        """What the model's tokenizer must write as one token each."""
        return (self.yes, self.no) if self.mode == "verdict" else ("A", "B") if self.meta_steps else ()

    def check_task(self, task, where: str) -> None:
        if self.meta_steps and self.mode != "score":
            raise RecipeError(f"{where}.meta_steps = {self.meta_steps}: meta-judging compares written judgments; "
                              f"set {where}.mode = 'score' (or meta_steps = 0)")


@dataclass
class ExplorationSettings(JudgeSettings):
    mode: Literal["leverage", "leave-one-out"] = setting(
        "leverage", "the bonus of reply h, centred on its query's group: h^T (lambda I + sum of the group's h h^T)^-1 "
        "h (leverage), or with h itself left out of the sum (leave-one-out)")
    dims: int = setting(32, "numbers a reply's representation (its mean last hidden state) is projected to, by a "
                        "sparse random projection drawn from run.seed (RepExp: 32 for MATH and GSM8K, 128 for "
                        "AIME)", min=1)
    ridge: float = setting(0.01, "lambda, the ridge the group's covariance starts from (> 0)", min=0.0)
    gate: str = setting("verifier", "the judge (its type, listed before this one) that must pass some reply of a "
                        "group for the group to get any bonus ('' = every group gets its bonus)")

    def check(self, recipe, where: str) -> None:
        if self.ridge <= 0:
            raise RecipeError(f"{where}.ridge = {self.ridge}: the covariance starts from ridge * I, which needs "
                              "ridge > 0 (RepExp uses 0.01)")
        before = [j.type for j in recipe.judges[:next(i for i, j in enumerate(recipe.judges) if j is self)]]
        if self.gate and self.gate not in before:
            raise RecipeError(f"{where}.gate = '{self.gate}' names no judge listed before it (found {before}): "
                              f"add a [[judges]] table with type = '{self.gate}' above this one, or set "
                              f"{where}.gate = '' to give every group its bonus")


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
         "the model's own P(correct) after a partial or whole answer, taught on its search trees' targets"),
        ("llm-judge", LLMJudgeSettings, "llm_judge:LLMJudge",
         "the model judges its own replies from a judge prompt (Self-Rewarding), and with meta_steps learns to "
         "judge from its own meta-judgments (Meta-Rewarding)")):
    register("judge", _name, _settings, f"selftaught.judge.{_target}.from_settings", _summary)
register("judge", "exploration", ExplorationSettings, "selftaught.judge.exploration:ExplorationJudge.from_settings",
         "a bonus for replies whose representation lies far from their group's (RepExp): add it to the task's "
         "reward with weight = 0.01, RepExp's beta")

"""A process value the model learns from its own search trees (ReST-MCTS*).

The value of a partial solution is the model's own verdict read after it: P(``Y``) against
``N`` at the verdict mark after ``prompt + steps so far``, the self-verdict's score applied to a
prefix. One scorer serves the search (a tree search sampler names this judge as its ``value``) and
the selection of traces (it scores the finished answers like any judge). Each round, after the
learner, it is taught on the targets of the trees the round's search grew (``sample.tree``:
ReST-MCTS*'s V_k or Monte-Carlo shares), whose ended paths are labelled by the task's checker
(``labels = "checker"``, as ReST-MCTS* does with known final answers) or by the value's own
verdict on them (``"verdict"``: no ground truth). A round without trees (the seed round, a
sampler that does not search) teaches it on the prefix trees of sampled attempts at labelled seed
problems.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from selftaught.engine.executors import trainable_copy
from selftaught.judge.filters import Score, each_members_own
from selftaught.judge.self_verdict import (
    SelfVerdictJudge,
    VerdictExample,
    VerdictTraining,
    verdict_probability,
    verdict_prompt,
    verdict_steps,
)
from selftaught.learn.sft import Example, tail_mean
from selftaught.monitor.measures import auroc
from selftaught.policy import Policy
from selftaught.sample.attempts import Attempt, answer, sample_attempts
from selftaught.sample.tree import TARGETS, Tree, prefix_tree
from selftaught.tasks.base import Problem, Task

if TYPE_CHECKING:
    from selftaught.context import Tools


class ProcessValueJudge:
    """Scores an attempt, whole or partial, by its member's P(correct) after it; remembers the
    trees of the attempts it scores, and ``train`` teaches each member on its own. With
    ``separate``, the value is a copy of each member made when it is first taught (after the seed
    round), trained on the targets alone: teaching a value on the policy's own weights moves how
    the policy answers (ReST-MCTS* keeps its value model apart too)."""

    name = "process-value"

    def __init__(self, members: Sequence[Policy], threshold: float, batch_size: int, training: VerdictTraining,
                 targets: str, labels: str, separate: bool = False):
        self.members, self.threshold, self.batch_size, self.training = members, threshold, batch_size, training
        self.targets, self.labels, self.separate = targets, labels, separate
        self.uses_ground_truth = labels == "checker"
        self._trees: dict[int, tuple[Problem, int, Tree]] = {}  # id(tree) -> (problem, member, tree)
        self.copies: list[Policy] = []  # the separate value models, once made

    @classmethod
    def from_settings(cls, settings, context) -> ProcessValueJudge:
        verdict = SelfVerdictJudge.from_settings(settings, context)
        return cls(context.policies, settings.threshold, verdict.batch_size, verdict.training, settings.targets,
                   settings.labels, settings.model == "separate")

    @property
    def values(self) -> Sequence[Policy]:
        """The models whose verdict is the value: the members, or their separate copies."""
        return self.copies or self.members

    def score(self, task: Task, attempts: Sequence[Attempt]) -> list[Score]:
        for a in attempts:
            if a.tree is not None:
                self._trees[id(a.tree)] = (a.problem, a.member, a.tree)
        values = each_members_own(self.values, attempts, lambda model, mine: verdict_probability(
            model, [verdict_prompt(a.problem, a.text) for a in mine], self.batch_size))
        return [Score(self.name, v, v >= self.threshold, f"process value {v:.3f}"
                      + ("" if a.finished else " (partial)")) for a, v in zip(attempts, values)]

    def train(self, task: Task, tools: Tools) -> dict[str, float]:
        """Teach each member's value on its own trees' targets (on the policy's weights, anchored
        by its greedy answers to the trees' problems; or on its separate copy, made now if it is
        not yet). Figures: the value's step AUROC and accuracy against the trees' truth (a correct
        answer lies below the step) before this teaching, and its loss."""
        t = self.training
        trees, self._trees = list(self._trees.values()), {}
        if not t.steps:
            return {}
        for p, _, tree in trees:
            label(task, p, tree, None if self.labels == "checker" else self.threshold)
        trees = trees or self._seed_trees(task, tools)
        if not trees:
            return {}
        figures = step_figures(trees) if any(tree.iterations for _, _, tree in trees) else {}
        if self.separate and not self.copies:
            self.copies = self._copied()
        rng = random.Random(f"{tools.seed}-process-value-{tools.round}")
        losses = []
        with tools.phase("value", t.steps * len(self.members)) as bar:
            for m, model in enumerate(self.values):
                mine = [(p, tree) for p, member, tree in trees if member == m]
                examples = [VerdictExample(verdict_prompt(p, tree.prefix(i)), target)
                            for p, tree in mine for i, target in TARGETS[self.targets](tree).items()]
                anchor = []
                if not self.separate:  # the policy's own greedy answers hold how it answers
                    problems = list({p.prompt: p for p, _ in mine}.values())
                    own = answer(model, task, problems, batch_size=self.batch_size)
                    anchor = [Example(p.prompt, a) for p, a in zip(problems, own)]
                losses.append(verdict_steps(model, examples, anchor, t.steps, t.settings, rng,
                                            on_step=lambda step, loss: bar.advance()))
        return figures | {"value_loss": tail_mean([(0, k, x) for k, x in enumerate(losses[0])])}

    def save(self, directory: Path) -> None:
        for m, model in enumerate(self.copies):
            model.save(directory / f"value-{m}")

    def load(self, directory: Path) -> None:
        if self.separate and (directory / "value-0").is_dir():
            self.copies = self._copied()
            for m, model in enumerate(self.copies):
                model.load(directory / f"value-{m}")

    def _copied(self) -> list[Policy]:
        """A trainable copy of each member's own policy (the driver's, not its replicas')."""
        return [trainable_copy(m) for m in self.members]

    def _seed_trees(self, task: Task, tools: Tools) -> list[tuple[Problem, int, Tree]]:
        """Prefix trees of sampled attempts at labelled seed problems (their nodes' values unknown: 0)."""
        t = self.training
        pool = tools.seed_problems()
        rng = random.Random(f"{tools.seed}-process-value-seed-{tools.round}")
        problems = [rng.choice(pool) for _ in range(t.problems)]
        attempts = sample_attempts(self.members, task, problems, samples=max(2, t.samples), equivalents=False,
                                   temperature=t.temperature, top_k=t.top_k, top_p=t.top_p,
                                   batch_size=self.batch_size, generator=t.generator)
        grouped: dict[tuple[int, int], list[str]] = {}
        for a in attempts:
            grouped.setdefault((a.problem_id, a.member), []).append(a.text)
        trees = [(problems[i], m, prefix_tree(texts, task.step_separator)) for (i, m), texts in grouped.items()]
        for p, _, tree in trees:
            label(task, p, tree, None)  # labelled problems: the checker, whatever labels the search's trees
        return trees


def label(task: Task, problem: Problem, tree: Tree, threshold: float | None) -> None:
    """Mark each ended path right or wrong: by the checker (``threshold`` None), else by whether
    its value reaches ``threshold`` (the model's own verdict)."""
    for i in tree.terminals():
        node = tree.nodes[i]
        node.correct = task.check(problem, tree.prefix(i)) if threshold is None else node.value >= threshold


def step_figures(trees: Sequence[tuple[Problem, int, Tree]]) -> dict[str, float]:
    """The search's values of the steps (terminals excluded) against the tree's truth: whether a
    correct answer lies below each step (only steps with an answer below are counted)."""
    values, truth = [], []
    for _, _, tree in trees:
        below = TARGETS["monte-carlo"](tree)
        for i, share in below.items():
            if not tree.nodes[i].terminal:
                values.append(tree.nodes[i].value)
                truth.append(share > 0)
    if not values:
        return {}
    right = sum((v >= 0.5) == y for v, y in zip(values, truth))
    return {"value_step_auroc": auroc(values, truth), "value_step_accuracy": right / len(values),
            "value_steps": float(len(values))}


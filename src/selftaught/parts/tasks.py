"""Tasks: the ``[task]`` section, named by ``name`` rather than ``type``."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from selftaught.registry import register, register_role
from selftaught.settings import RecipeError, setting


@dataclass
class TaskSettings:
    name: str = setting("reversed-addition", "the task")
    seed_min_difficulty: int = setting(1, "easiest difficulty of the ground-truth seed data", min=1)
    seed_max_difficulty: int = setting(6, "hardest difficulty of the ground-truth seed data", min=1)
    seed_examples: int = setting(50000, "size of the fixed ground-truth seed set", min=1)
    chat: bool = setting(False, "format prompts with the policy's chat template, as one user turn")
    prompt_template: str = setting("", "for a base model (no chat template): the text each prompt is written into "
                                   "at {prompt}, plain or few-shot, e.g. 'Question: {prompt}\\nAnswer:' (empty = the "
                                   "prompt as it is)")

    def check(self, recipe, where: str) -> None:
        if self.seed_min_difficulty > self.seed_max_difficulty:
            raise RecipeError(f"{where}.seed_min_difficulty ({self.seed_min_difficulty}) exceeds "
                              f"{where}.seed_max_difficulty ({self.seed_max_difficulty})")
        if self.prompt_template and self.prompt_template.count("{prompt}") != 1:
            raise RecipeError(f"{where}.prompt_template = {self.prompt_template!r} must hold {{prompt}} once, where "
                              "each problem's prompt goes")
        if self.prompt_template and self.chat:
            raise RecipeError(f"{where}.prompt_template formats prompts for a model without a chat template; "
                              f"{where}.chat = true uses the model's own: set one or the other")


@dataclass
class JsonlSettings(TaskSettings):
    path: str = setting("", "a JSONL file of problems, one JSON object a line (a path from the working directory)")
    question_field: str = setting("question", "field holding a problem's text")
    answer_field: str = setting("answer", "field holding its reference answer (GSM8K's worked answers ending in "
                                "'#### 42' count as 42)")
    difficulty_field: str = setting("", "field holding an integer difficulty >= 1 (empty = every problem is "
                                    "difficulty 1)")
    extract: Literal["last-number", "boxed", "marker"] = setting(
        "last-number", "what of a reply is its answer: the last number, the last \\boxed{...}, or the text after "
        "the last marker")
    marker: str = setting("####", "with extract = 'marker': the text after its last occurrence is the answer")
    checker: Literal["numeric", "math-verify"] = setting(
        "numeric", "how an answer is compared with the reference: as numbers (else as text), or by math-verify "
        "(LaTeX; pip install 'selftaught[math]')")
    held_out: float = setting(0.2, "share of each difficulty's problems held out for evaluation and never trained "
                              "on", min=0.0, max=0.9)
    split_seed: int = setting(0, "seed of the held-out split (its own, so that runs of every run.seed are measured "
                              "on the same problems)", min=0)
    max_answer_tokens: int = setting(256, "a reply's token budget", min=1)

    def check(self, recipe, where: str) -> None:
        super().check(recipe, where)
        if not self.path:
            raise RecipeError(f"{where}.name = 'jsonl' reads its problems from a file: set {where}.path")
        if Path(self.path).expanduser().is_dir():
            raise RecipeError(f"{where}.path = {self.path!r}: is a directory; name a JSONL file")
        if not Path(self.path).expanduser().is_file():
            where_it_is = Path(self.path).expanduser().absolute()
            raise RecipeError(f"{where}.path = {self.path!r}: no such file ({where_it_is})")
        if self.extract == "marker" and not self.marker:
            raise RecipeError(f"{where}.extract = 'marker' needs a non-empty {where}.marker")
        if self.checker == "math-verify" and importlib.util.find_spec("math_verify") is None:
            raise RecipeError(f"{where}.checker = 'math-verify' needs the math-verify package: "
                              "pip install 'selftaught[math]' (or math-verify)")

    def check_task(self, task, where: str) -> None:
        seeded = range(self.seed_min_difficulty, self.seed_max_difficulty + 1)
        missing = [d for d in seeded if d not in task.difficulties]
        if missing:
            raise RecipeError(f"{where}.seed_min_difficulty .. seed_max_difficulty ({self.seed_min_difficulty} .. "
                              f"{self.seed_max_difficulty}) asks for difficulties {self.path} has no training "
                              f"problems of: {missing} (it has {sorted(task.difficulties)})")


register_role("task", TaskSettings)
for _name, _target, _summary in (
    ("reversed-addition", "arithmetic:ReversedAddition", "a + b written and answered least significant digit "
     "first; difficulty = digits"),
    ("copy", "strings:StringCopy", "repeat a string; difficulty = its length"),
    ("reverse", "strings:StringReverse", "reverse a string; difficulty = its length"),
    ("countdown", "countdown:Countdown", "reach a target from given numbers with + - *, written step by step; "
     "difficulty = how many numbers"),
    ("modular-chain", "modular:ModularChain", "a chain of operations mod 10, every intermediate value written; "
     "difficulty = operations"),
    ("word-arithmetic", "words:WordArithmetic", "arithmetic asked in English for pretrained models ('What is 7 + "
     "5?'); difficulty = kind of problem"),
    ("word-steps", "words:WordSteps", "chains of + - * asked in English, answered one step a line (steps for a "
     "search); difficulty = operations"),
):
    register("task", _name, TaskSettings, f"selftaught.tasks.{_target}", _summary)
register("task", "jsonl", JsonlSettings, "selftaught.tasks.jsonl:JsonlTask",
         "problems from a JSONL file (GSM8K's format among others), checked on the extracted answer")

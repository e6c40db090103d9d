"""Tasks: problem generators with checkers, and the tokenizer for them."""

from __future__ import annotations

from selftaught import registry
from selftaught.parts.tasks import TaskSettings
from selftaught.settings import RecipeError
from selftaught.tasks.arithmetic import ReversedAddition
from selftaught.tasks.base import Problem, Task
from selftaught.tasks.countdown import Countdown
from selftaught.tasks.jsonl import JsonlTask
from selftaught.tasks.modular import ModularChain
from selftaught.tasks.strings import StringCopy, StringReverse
from selftaught.tasks.tokenizer import EOS, PAD, CharTokenizer
from selftaught.tasks.words import WordArithmetic


class TaskImportError(ValueError):
    """A task named as ``package.module:ClassName`` could not be imported."""


def load_task(settings: TaskSettings | str) -> Task:
    """The task a recipe's ``[task]`` names: a built-in one (``selftaught components task``) or a
    user's task class given as ``package.module:ClassName``, made from the section's settings when
    the class has ``from_settings``, else constructed without arguments. Anything that goes wrong
    on the way (the import itself raising, a name that is not a class, a constructor that needs
    arguments) is a ``TaskImportError`` that says what to fix; a task's own data that is wrong (a
    bad line of a JSONL file) is a ``RecipeError`` naming the file and line."""
    settings = TaskSettings(name=settings) if isinstance(settings, str) else settings
    name = settings.name
    try:
        cls = registry.lookup("task", name).factory()
    except registry.RegistryError as e:
        raise TaskImportError(str(e)) from None
    try:
        task = cls.from_settings(settings) if hasattr(cls, "from_settings") else cls()
    except RecipeError:
        raise
    except Exception as e:
        raise TaskImportError(f"{name}() raised {type(e).__name__}: {e}; a task class must be constructible "
                              "without arguments (give its settings defaults)") from None
    missing = [m for m in ("sample", "target", "check", "answer_length", "equivalents", "alphabet", "name")
               if not hasattr(task, m)]
    if missing:
        raise TaskImportError(f"{name} is not a Task: it lacks {', '.join(missing)}")
    return task


__all__ = ["EOS", "PAD", "CharTokenizer", "Countdown", "JsonlTask", "ModularChain", "Problem", "ReversedAddition",
           "StringCopy", "StringReverse", "Task", "TaskImportError", "WordArithmetic", "load_task"]

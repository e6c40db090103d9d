"""Tasks: problem generators with checkers, and the tokenizer for them."""

from __future__ import annotations

import importlib

from selftaught.tasks.arithmetic import ReversedAddition
from selftaught.tasks.base import Problem, Task
from selftaught.tasks.countdown import Countdown
from selftaught.tasks.modular import ModularChain
from selftaught.tasks.strings import StringCopy, StringReverse
from selftaught.tasks.tokenizer import EOS, PAD, CharTokenizer
from selftaught.tasks.words import WordArithmetic

BUILTIN_TASKS = {cls().name: cls for cls in (ReversedAddition, StringCopy, StringReverse, Countdown,
                                              ModularChain, WordArithmetic)}


class TaskImportError(ValueError):
    """A task named as ``package.module:ClassName`` could not be imported."""


def load_task(name: str) -> Task:
    """A built-in task by name, or a user's task class given as ``package.module:ClassName``.
    Anything that goes wrong on the way (the import itself raising, a name that is not a class, a
    constructor that needs arguments) is a ``TaskImportError`` that says what to fix."""
    if name in BUILTIN_TASKS:
        return BUILTIN_TASKS[name]()
    if ":" not in name:
        raise TaskImportError(
            f"unknown task {name!r}: use one of {sorted(BUILTIN_TASKS)} or 'package.module:ClassName'"
        )
    module_name, _, attr = name.partition(":")
    if not module_name or not attr:
        raise TaskImportError(f"task {name!r}: expected 'package.module:ClassName'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise TaskImportError(f"cannot import task module {module_name!r} ({e}); is it installed or on "
                              "PYTHONPATH?") from None
    except Exception as e:  # the module itself raised while importing: its author's bug, told as one line
        raise TaskImportError(f"importing task module {module_name!r} raised {type(e).__name__}: {e}") from None
    cls = getattr(module, attr, None)
    if cls is None:
        raise TaskImportError(f"module {module_name!r} has no attribute {attr!r}")
    if not callable(cls):
        raise TaskImportError(f"{name} is a {type(cls).__name__}, not a Task class")
    try:
        task = cls()
    except Exception as e:
        raise TaskImportError(f"{name}() raised {type(e).__name__}: {e}; a task class must be constructible "
                              "without arguments (give its settings defaults)") from None
    missing = [m for m in ("sample", "target", "check", "answer_length", "equivalents", "alphabet", "name")
               if not hasattr(task, m)]
    if missing:
        raise TaskImportError(f"{name} is not a Task: it lacks {', '.join(missing)}")
    return task


__all__ = ["EOS", "PAD", "CharTokenizer", "Countdown", "ModularChain", "Problem", "ReversedAddition", "StringCopy",
           "StringReverse", "Task", "TaskImportError", "WordArithmetic", "load_task"]

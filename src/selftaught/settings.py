"""What every recipe setting is made of: ``setting(...)`` declares a dataclass field with its
default, its one-line help and its bounds, so that ``docs/recipes.md``, ``selftaught components``
and every error message come from one place. Torch-free: recipes are checked before torch loads."""

from __future__ import annotations

from dataclasses import field
from typing import Any


class RecipeError(ValueError):
    """A recipe that cannot be run. The message names the file and the key."""


def setting(default: Any, help: str, *, min: float | None = None, max: float | None = None) -> Any:
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"help": help, "min": min, "max": max})
    return field(default=default, metadata={"help": help, "min": min, "max": max})

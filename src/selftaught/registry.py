"""The registry: every part a recipe can name, under its recipe name, with its settings dataclass.

A part is registered with the dataclass its recipe table validates against and the import path of
its factory, ``"package.module:attribute"``, called as ``factory(settings, context)`` when a run
starts. The built-in parts are registered in ``selftaught.parts`` without importing their
implementations, so that a recipe is validated (and its errors shown) before torch loads.

A user's part is named in a recipe by import path instead of a registered name: its class is
imported, its ``Settings`` attribute (a dataclass extending the role's common settings; the
common settings alone when it has none) validates its table, and the class itself is the factory.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, fields, is_dataclass
from typing import Any


class RegistryError(ValueError):
    """A part that cannot be found or imported; the message says what to fix."""


# role -> (the recipe section that names it, what the role does)
ROLES = {
    "model": ("[model]", "the policy: a model, its tokenizer and its optimizer"),
    "sampler": ("[sampler]", "policy + problems -> attempts"),
    "judge": ("[[judges]]", "attempts -> a value, a verdict and a reason each"),
    "selector": ("[selector]", "judged attempts -> what the learner trains on, and why"),
    "learner": ("[learner]", "updates the policy on the selection"),
    "curriculum": ("[curriculum]", "which problems come next"),
    "task": ("[task]", "problems by difficulty, their checker and the ground-truth seed set"),
}

# the methods of each role's protocol (``Sampler``, ``Judge``, ...; a test keeps them in step): a
# user's class that lacks one is refused while the recipe loads, not when a round first calls it
METHODS = {
    "sampler": ("sample", "describe", "measure"),
    "judge": ("score",),
    "selector": ("select",),
    "learner": ("for_round", "learn"),
    "curriculum": ("propose", "admit", "update", "state_dict", "load_state_dict"),
}

# the key of a part's section that names its type: `type`, except for the task, which recipes have
# always named by `name`
_TYPE_KEYS = {"task": "name"}


def type_key(role: str) -> str:
    return _TYPE_KEYS.get(role, "type")


@dataclass(frozen=True)
class Part:
    role: str
    name: str  # the recipe's `type` (a task's `name`)
    settings: type  # the dataclass its table validates against
    target: str  # "module:attribute" of the factory, or a user's "module:Class"
    summary: str

    def factory(self) -> Callable[[Any, Any], Any]:
        return _resolve(self.target)


_PARTS: dict[str, dict[str, Part]] = {role: {} for role in ROLES}
_BASES: dict[str, type] = {}


def register_role(role: str, base: type) -> None:
    """The settings every part of ``role`` shares (its ``type_key`` among them)."""
    _BASES[role] = base


def register(role: str, name: str, settings: type, target: str, summary: str) -> None:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
    if not (is_dataclass(settings) and issubclass(settings, _BASES[role])):
        raise TypeError(f"{role} {name!r}: settings must be a dataclass extending {_BASES[role].__name__}")
    _PARTS[role][name] = Part(role, name, settings, target, summary)


def base_settings(role: str) -> type:
    _load_builtins()
    return _BASES[role]


def parts(role: str) -> dict[str, Part]:
    """The registered parts of ``role``, by recipe name."""
    _load_builtins()
    return dict(_PARTS[role])


def lookup(role: str, name: str) -> Part:
    """The part a recipe's ``type`` names: a registered name or a user's ``package.module:Class``."""
    _load_builtins()
    if name in _PARTS[role]:
        return _PARTS[role][name]
    if ":" not in name:
        raise RegistryError(f"unknown {role} {type_key(role)} {name!r}: use one of "
                            f"{', '.join(map(repr, _PARTS[role]))}, or a class of "
                            "your own as 'package.module:ClassName' (`selftaught components` lists them)")
    cls = _resolve(name)
    settings = getattr(cls, "Settings", _BASES[role])
    if not (isinstance(settings, type) and is_dataclass(settings) and issubclass(settings, _BASES[role])):
        raise RegistryError(f"{name}.Settings must be a dataclass extending selftaught.parts."
                            f"{_BASES[role].__name__} (the settings every {role} has)")
    missing = [m for m in METHODS.get(role, ()) if not callable(getattr(cls, m, None))]
    if missing:
        raise RegistryError(f"{name} has no method {', '.join(missing)}: a {role} needs "
                            f"{', '.join(METHODS[role])} (the {role} protocol, docs/architecture.md)")
    doc = (cls.__doc__ or "").strip().splitlines()
    return Part(role, name, settings, name, doc[0] if doc else "")


def owners(role: str, key: str) -> list[str]:
    """The registered types of ``role`` whose settings have ``key``."""
    return [name for name, part in parts(role).items() if key in {f.name for f in fields(part.settings)}]


def build(role: str, settings: Any, context: Any, where: str = "") -> Any:
    """The part ``settings.type`` names, made from its settings. A user's class that raises while
    it is made is its author's bug, told as one line naming the recipe key ``where``."""
    name = getattr(settings, type_key(role))
    factory = lookup(role, name).factory()
    if name in _PARTS[role]:
        return factory(settings, context)
    try:
        return factory(settings, context)
    except Exception as e:  # noqa: BLE001  any error of a user's constructor
        from selftaught.settings import RecipeError

        raise RecipeError(f"{where or role}.{type_key(role)} = {name!r}: making it raised {type(e).__name__}: {e} "
                          "(--debug shows the traceback)") from e


def _resolve(path: str) -> Any:
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise RegistryError(f"{path!r}: expected 'package.module:ClassName'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as e:
        raise RegistryError(f"cannot import module {module_name!r} ({e}); is it installed or on PYTHONPATH?") from None
    except Exception as e:  # the module itself raised while importing: its author's bug, told as one line
        raise RegistryError(f"importing module {module_name!r} raised {type(e).__name__}: {e}") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise RegistryError(f"module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise RegistryError(f"{path} is a {type(obj).__name__}, not a class")
    return obj


def _load_builtins() -> None:
    import selftaught.parts  # noqa: F401  (registers the built-in parts on import)

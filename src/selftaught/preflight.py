"""Checks that need a recipe's task or its model, made before anything of a run is written.

``load_recipe`` and ``from_dict`` (a resumed run's stored recipe) both end here, so a recipe that
loads is one that can start: a task that cannot be imported or built, a judge the task cannot serve,
a device the machine does not have, a model whose files cannot serve the recipe, or Ray workers
asking for GPUs that are not there is a ``RecipeError`` naming the key, never a traceback from
inside a run that has already made its directory.
"""

from __future__ import annotations

from selftaught.recipe import Recipe, RecipeError
from selftaught.tasks import Task, TaskImportError, load_task
from selftaught.tasks.tokenizer import CONTROL, control_clash


def needs_control_marks(recipe: Recipe) -> bool:
    """Whether the recipe's model reads and writes verdict or revision marks."""
    return any(getattr(settings, "control_marks", False) for _, _, settings in recipe.parts())


def check_runnable(recipe: Recipe) -> Task:
    """The recipe's task, once everything that needs it or the model checks out."""
    name = recipe.task.name
    try:
        task = load_task(recipe.task)
    except TaskImportError as e:
        raise RecipeError(f"task.name = {name!r}: {e}") from None
    for _, where, settings in recipe.parts():
        check = getattr(settings, "check_task", None)
        if check is not None:
            check(task, where)
    clash = control_clash(task.alphabet) if needs_control_marks(recipe) and recipe.model.reserves_marks else ""
    if clash:
        who = next(f"{where}.type = '{s.type}'" for _, where, s in recipe.parts() if getattr(s, "control_marks", False))
        raise RecipeError(f"{who} marks verdicts and revisions with {CONTROL!r}, but task.name = '{name}' uses "
                          f"{clash!r} in its alphabet")
    _check_device(recipe.model.device)
    check_files = getattr(recipe.model, "check_files", None)
    if check_files is not None:  # last: it may read a tokenizer, which the cheaper checks spare a bad recipe
        check_files(recipe, "model")
    _check_engine(recipe)
    return task


def _check_engine(recipe: Recipe) -> None:
    """Ray settings the machine cannot honour: a local cluster given GPUs it lacks would leave its
    workers waiting for them forever."""
    engine = recipe.engine
    if engine.executor != "ray" or engine.num_gpus == 0 or engine.address:
        return
    import torch

    if not torch.cuda.is_available():
        raise RecipeError(f"engine.num_gpus = {engine.num_gpus}: this machine has no CUDA device for the Ray workers "
                          "it would start; set engine.num_gpus = 0, or join a cluster with GPUs (engine.address)")
    if engine.num_gpus * engine.workers > torch.cuda.device_count():
        raise RecipeError(f"engine.num_gpus = {engine.num_gpus} for {engine.workers} workers needs "
                          f"{engine.num_gpus * engine.workers:g} GPUs; this machine has {torch.cuda.device_count()}")


def _check_device(device: str) -> None:
    if device == "cpu":
        return
    import torch  # only a recipe that asks for another device pays for the import here

    try:
        d = torch.device(device)
    except (RuntimeError, ValueError):
        raise RecipeError(f"model.device = {device!r}: not a torch device (cpu, cuda, cuda:1, mps, ...)") from None
    if d.type == "cuda":
        if not torch.cuda.is_available():
            raise RecipeError(f"model.device = {device!r}: no CUDA device is available on this machine; use 'cpu'")
        if d.index is not None and d.index >= torch.cuda.device_count():
            raise RecipeError(f"model.device = {device!r}: this machine has {torch.cuda.device_count()} CUDA "
                              "device(s)")
    elif d.type == "mps" and not torch.backends.mps.is_available():
        raise RecipeError(f"model.device = {device!r}: MPS is not available on this machine; use 'cpu'")

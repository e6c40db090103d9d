"""The ``selftaught`` command."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table
from typer.core import TyperGroup

from selftaught import registry
from selftaught.builtin_recipes import builtin_recipes, resolve, summary_line
from selftaught.recipe import RecipeError, load_checked, notes
from selftaught.store import FILENAME, RunStore, StoreError
from selftaught.summary import summarize
from selftaught.tasks import TaskImportError

try:  # typer vendors click since 0.26
    from typer._click.exceptions import ClickException, NoArgsIsHelpError
except ImportError:  # pragma: no cover
    from click.exceptions import ClickException, NoArgsIsHelpError


class OneLineErrors(TyperGroup):
    """Usage errors (an unknown option, a missing argument, a bad value) as one line on stderr with
    exit code 2, like every other bad input, instead of click's boxed usage text."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except NoArgsIsHelpError as e:
            e.show()
            sys.exit(e.exit_code)
        except ClickException as e:
            ctx = getattr(e, "ctx", None)
            command = ctx.command_path if ctx is not None else "selftaught"
            err.print(f"[red]error:[/red] {escape(command)}: {escape(e.format_message())} "
                      f"(see '{escape(command)} --help')", highlight=False, soft_wrap=True)
            sys.exit(e.exit_code)
        except typer.Abort:
            err.print("aborted")
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(cls=OneLineErrors, add_completion=False, no_args_is_help=True,
                  help="selftaught: models that teach themselves, round after round.")
console = Console()
err = Console(stderr=True)

USER_ERRORS = (RecipeError, TaskImportError, StoreError)


class UsageError(ValueError):
    """A command line that cannot be carried out (options that exclude each other, a bad --out)."""


@contextmanager
def user_errors(debug: bool) -> Iterator[None]:
    """Bad input is one line on stderr and exit code 2; ``--debug`` shows the traceback."""
    try:
        yield
    except (*USER_ERRORS, UsageError) as e:
        if debug:
            raise
        err.print(f"[red]error:[/red] {escape(' '.join(str(e).split()))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def check_new_run_dir(out: Path) -> None:
    """``--out`` must be a directory this process can create, or an empty one: nothing is written yet."""
    if (out / FILENAME).exists():
        raise UsageError(f"--out {out}: already holds a run; choose another --out, or `selftaught resume {out}`")
    if out.is_file():
        raise UsageError(f"--out {out}: is a file; choose a directory")
    if out.is_dir():
        if any(out.iterdir()):
            raise UsageError(f"--out {out}: exists and is not empty; choose a new or empty directory")
        return
    parent = out.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"--out {out}: {parent} is a file, so no directory can be made below it")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"--out {out}: cannot create it in {parent} (permission denied)")


class RichReporter:
    """A progress bar per round and phase, and a table after every round."""

    def __init__(self, console: Console):
        self.console = console
        self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=True)

    @contextmanager
    def phase(self, round_: int, name: str, total: int):
        with self.progress:
            task = self.progress.add_task(f"round {round_} · {name}", total=total)

            class Bar:
                def advance(_, n: int = 1) -> None:
                    self.progress.advance(task, n)

            try:
                yield Bar()
            finally:
                self.progress.remove_task(task)

    def round_done(self, report) -> None:
        table = Table(title=f"round {report.round} · frontier {report.frontier} · reach {report.reach} · "
                            f"{report.wall_s:.0f}s", title_justify="left")
        table.add_column("difficulty", justify="right")
        table.add_column("accuracy", justify="right")
        table.add_column("kept / probed", justify="right")
        for d, acc in report.accuracy.items():
            style = "green" if acc >= 0.95 else ("yellow" if acc >= 0.5 else "red")
            rate = report.keep_rate.get(d)
            table.add_row(str(d), f"[{style}]{acc:.3f}[/{style}]", "" if rate is None else f"{rate:.2f}")
        self.console.print(table)
        if report.made:
            rejected = ", ".join(f"{k} {v}" for k, v in report.rejected_by.items())
            self.console.print(f"  self-labels: made {report.made}, kept {report.kept}, rejected by: {rejected}; "
                               f"true accuracy of kept labels {report.kept_precision:.3f}; loss {report.loss:.4f}")
        shown = [(k, v) for k, v in report.figures.items() if k in _HEADLINE and v == v]
        if shown:
            self.console.print("  " + ", ".join(f"{k} {v:.3f}" for k, v in shown))
        for alarm in report.alarms:
            self.console.print(f"  [bold red]collapse alarm:[/bold red] {alarm}")


# the figures printed under each round's table (all are in the store and the report)
_HEADLINE = ("pass@1", "sample_accuracy", "distinct_answers", "judge_auroc/self-verdict", "pass@1_turn2",
             "delta_wrong_to_right", "delta_right_to_wrong", "bstar_temperature", "bstar_threshold", "balance")


def _precision(recipe) -> str:
    """The run's first lines say which arithmetic it trains and samples in, and why."""
    from selftaught.models.precision import resolve as resolve_precision

    m = recipe.model
    chosen, why = resolve_precision(m.precision, m.device, m.type, getattr(m, "dtype", "float32"))
    return f"precision: {chosen} — {why}"


def _loading(recipe) -> str:
    """What the wait before the first round is for."""
    gguf = getattr(recipe.model, "gguf", "")
    if gguf:
        from selftaught.models.hf_policy import converted_copy
        from selftaught.parts.models import local_file

        file = local_file(gguf)
        if file is not None and not (converted_copy(file) / "config.json").is_file():
            return f"converting {file.name} (once, then cached)"
    return "loading the model"


@app.command()
def run(
    recipe: Annotated[str, typer.Argument(help="recipe file, or the name of a built-in recipe")],
    set_: Annotated[list[str] | None, typer.Option("--set", "-s", help="override a setting: key=value (the parts "
                                                   "and their settings: `selftaught components`)")] = None,
    out: Annotated[Path | None, typer.Option(help="run directory (default runs/NAME-TIME)")] = None,
    seed: Annotated[int | None, typer.Option(help="seed of the run (overrides run.seed)")] = None,
    debug: Annotated[bool, typer.Option(help="show tracebacks")] = False,
) -> None:
    """Run a recipe: seed training, then rounds of self-improvement."""
    with user_errors(debug):
        path = resolve(recipe)
        overrides = list(set_ or []) + ([f"run.seed={seed}"] if seed is not None else [])
        with console.status("checking the recipe and its model"):
            # the task is imported and checked here, and the model's files read, before anything is written
            parsed, task = load_checked(path, overrides)
        out = out or Path("runs") / f"{path.stem}-{time.strftime('%Y%m%d-%H%M%S')}"
        check_new_run_dir(out)
        from selftaught.engine import Run  # torch loads only once the input is known to be good

        with console.status(_loading(parsed)):
            try:
                job = Run(parsed, out, RichReporter(console), task)
            except RecipeError as e:  # a part of the user's that fails as it is made, a cluster not there
                raise RecipeError(f"{path}: {e}") from e
    console.print(f"[bold]{parsed.run.name}[/bold] → {out}")
    console.print(_precision(parsed), highlight=False)
    for note in notes(parsed):
        console.print(f"[yellow]note:[/yellow] {escape(note)}")
    reports = job.execute()
    console.print(f"done: reach {reports[-1].reach} after {len(reports) - 1} rounds; "
                  f"`selftaught summary {out}` for the figures")


@app.command()
def resume(
    run_dir: Annotated[Path, typer.Argument(help="the run directory to continue")],
    from_round: Annotated[int | None, typer.Option(help="continue after this round, dropping later ones")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", "-s", help="new limits for a run that stopped or "
                                                   "finished: run.rounds, run.time_budget_minutes or "
                                                   "run.stop_at_reach (key=value)")] = None,
    debug: Annotated[bool, typer.Option(help="show tracebacks")] = False,
) -> None:
    """Continue a run from its last committed round (or --from-round N), with new limits if given."""
    with user_errors(debug):
        from selftaught.engine import Run

        with console.status("loading the run"):
            run_ = Run.resume(run_dir, from_round, RichReporter(console), list(set_ or []))
        where = f"after round {run_.reports[-1].round}" if run_.reports else "from the start (no round committed)"
        console.print(f"[bold]{run_.recipe.run.name}[/bold] ← {run_dir}: resuming {where}")
        console.print(_precision(run_.recipe), highlight=False)
        for key, (old, new) in run_.limit_changes.items():
            console.print(f"  {key}: {old} → {new}")
        before = len(run_.reports)
        reports = run_.continue_run()
    if before and len(reports) == before:
        console.print(f"nothing to do: the run had already stopped at its limits; give it more with --set "
                      f"run.rounds=N (now {run_.recipe.run.rounds}) or --set run.time_budget_minutes=M")
    console.print(f"done: reach {reports[-1].reach} after {len(reports) - 1} rounds; "
                  f"`selftaught summary {run_dir}` for the figures")


@app.command()
def inspect(
    run_dir: Annotated[Path, typer.Argument(help="a run directory")],
    round_: Annotated[int | None, typer.Option("--round", help="list this round's attempts")] = None,
    kept: Annotated[bool, typer.Option("--kept", help="only attempts the selector kept")] = False,
    rejected: Annotated[bool, typer.Option("--rejected", help="only attempts the selector rejected")] = False,
    limit: Annotated[int, typer.Option(help="at most this many attempts", min=1)] = 20,
    attempt: Annotated[int | None, typer.Option(help="show one attempt: every judge's score and reason")] = None,
    debug: Annotated[bool, typer.Option(help="show tracebacks")] = False,
) -> None:
    """Why was an attempt kept? The attempts of a round, or one attempt in full."""
    with user_errors(debug):
        if (round_ is None) == (attempt is None):
            raise UsageError(f"inspect {run_dir}: give either --round N or --attempt ID")
        if kept and rejected:
            raise UsageError(f"inspect {run_dir}: --kept and --rejected exclude each other")
        with RunStore(run_dir) as store:
            if attempt is not None:
                row = store.attempt(attempt)
                if row is None:
                    raise StoreError(f"{run_dir}: no attempt {attempt}")
                _show_attempt(row)
                tree = store.tree(row["round"], row["problem"], row["member"])
                if tree:
                    _show_search(row, tree)
                return
            last = store.last_round()
            if last is None or not 0 <= round_ <= last:
                have = "no round is committed yet" if last is None else f"rounds 0..{last} are"
                raise StoreError(f"{run_dir}: --round {round_}: no such round ({have})")
            rows = store.attempts(round_, True if kept else (False if rejected else None), limit)
    which = "kept " if kept else ("rejected " if rejected else "")
    table = Table("id", "difficulty", "prompt", "answer", "judges", "kept", "why",
                  title=f"{run_dir} · round {round_} · {len(rows)} {which}attempts", title_justify="left")
    for r in rows:
        verdicts = " ".join(f"{'[green]✓' if s['passed'] else '[red]✗'}{s['judge']}[/]" for s in r["scores"])
        table.add_row(str(r["id"]), str(r["difficulty"]), r["prompt"], r["text"], verdicts,
                      "[green]yes[/]" if r["kept"] else "[red]no[/]", r["reason"])
    console.print(table)


def _drawn_by(row: dict) -> str:
    """The worker that drew an attempt and the weight version it drew it with."""
    return f"{row['worker']} · weights v{row['version']}"


def _show_attempt(row: dict) -> None:
    console.print(f"[bold]attempt {row['id']}[/bold] · round {row['round']} · problem {row['problem']} · "
                  f"difficulty {row['difficulty']} · task {row['task']} · member {row['member']} · {row['sampler']} · "
                  f"drawn by {_drawn_by(row)}")
    console.print(f"  prompt: {row['prompt']}\n  answer: {row['text']}", highlight=False)
    if row["equivalents"]:
        console.print(f"  answers to equivalent phrasings: {', '.join(row['equivalents'])}", highlight=False)
    table = Table("judge", "score", "verdict", "reason")
    for s in row["scores"]:
        table.add_row(s["judge"], "" if s["value"] is None else f"{s['value']:.3f}",
                      "[green]pass[/]" if s["passed"] else "[red]fail[/]", s["reason"])
    console.print(table)
    console.print(f"  selector {row['selector']}: {'[green]kept[/]' if row['kept'] else '[red]rejected[/]'} — "
                  f"{row['reason']}")


def search_path(tree: list[dict], text: str) -> list[int]:
    """The nodes (root excluded) of the ended path of a stored search tree that wrote ``text``."""
    prefix = [""] * len(tree)
    for n in tree[1:]:
        prefix[n["node"]] = prefix[n["parent"]] + n["step"]
    end = next((n["node"] for n in tree if n["terminal"] and prefix[n["node"]] == text), None)
    path = []
    while end:
        path.append(end)
        end = tree[end]["parent"]
    return path[::-1]


def _show_search(row: dict, tree: list[dict]) -> None:
    """The path the search took to this answer, step by step beside the siblings it passed over."""
    path = search_path(tree, row["text"])
    table = Table("depth", "step", "value", "visits", "Q", "", title=f"search tree: {len(tree) - 1} nodes; the path "
                  "to this answer (bold) and the steps beside it", title_justify="left")
    for depth, chosen in enumerate(path, 1):
        for n in tree:
            if n["node"] and n["parent"] == tree[chosen]["parent"]:
                mark = "[bold green]taken[/]" if n["node"] == chosen else "[dim]passed over[/]"
                step = n["step"] + (" ⏹" if n["terminal"] else "")
                style = "bold" if n["node"] == chosen else "dim"
                table.add_row(str(depth), f"[{style}]{escape(step)}[/]", f"{n['value']:.3f}", str(n["visits"]),
                              f"{n['q']:.3f}", mark)
    console.print(table)


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="a run directory")],
    out: Annotated[Path | None, typer.Option(help="where to write (default RUN_DIR/report.html)")] = None,
    debug: Annotated[bool, typer.Option(help="show tracebacks")] = False,
) -> None:
    """Write a self-contained HTML report of a run (plots embedded)."""
    with user_errors(debug):
        from selftaught.report import write_report

        if out is not None:
            check_out_file(out, "report.html")
        path = write_report(run_dir, out)
    console.print(f"wrote {path}")


def check_out_file(out: Path, example: str) -> None:
    """``--out`` of a page must name a file in an existing directory; checked before anything is read."""
    if out.is_dir():
        raise UsageError(f"--out {out}: is a directory; give the file's name, such as {out / example}")
    if not out.parent.is_dir():
        raise UsageError(f"--out {out}: {out.parent} is not an existing directory")


@app.command()
def compare(
    run_dirs: Annotated[list[Path], typer.Argument(help="run directories, one or more")],
    out: Annotated[Path, typer.Option(help="where to write the page")] = Path("compare.html"),
    debug: Annotated[bool, typer.Option(help="show tracebacks")] = False,
) -> None:
    """Runs side by side: held-out pass@1 by round against minutes and sampled tokens (table and HTML page)."""
    with user_errors(debug):
        from selftaught.compare import COLUMNS, cells, read_runs, write_page

        check_out_file(out, "compare.html")
        comparison = read_runs(run_dirs)
        table = Table(*COLUMNS, title=f"{comparison.title()}: held-out pass@1 by round", title_justify="left")
        for row in comparison.rows:
            table.add_row(*(escape(c) for c in cells(row)))
        console.print(table)
        for note in comparison.notes:
            console.print(f"[yellow]note:[/yellow] {escape(note)}")
        path = write_page(comparison, out)
    console.print(f"wrote {path}")


@app.command()
def components(
    role: Annotated[str | None, typer.Argument(help=f"only this role: {', '.join(registry.ROLES)}")] = None,
    debug: Annotated[bool, typer.Option(help="show tracebacks")] = False,
) -> None:
    """List the parts a recipe can name, by role, with each one's own settings."""
    with user_errors(debug):
        if role is not None and role not in registry.ROLES:
            raise UsageError(f"components {role}: no such role; one of {', '.join(registry.ROLES)}")
    for name in [role] if role else registry.ROLES:
        section, what = registry.ROLES[name]
        common = [f.name for f in fields(registry.base_settings(name))]
        table = Table("type", "what it does", "its own settings", title=f"{name} · {escape(section)} · {what}",
                      title_justify="left")
        for part in registry.parts(name).values():
            table.add_row(part.name, part.summary,
                          ", ".join(f.name for f in fields(part.settings) if f.name not in common))
        console.print(table)
        console.print(f"  every {name} takes {', '.join(common)}; a class of your own is named as type = "
                      f"\"package.module:ClassName\" (docs/recipes.md)\n", highlight=False)


@app.command()
def recipes() -> None:
    """List the built-in recipes."""
    table = Table("recipe", "what it does")
    for name, path in builtin_recipes().items():
        table.add_row(name, summary_line(path))
    console.print(table)


@app.command()
def summary(
    run_dir: Annotated[Path, typer.Argument(help="a run directory")],
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
    debug: Annotated[bool, typer.Option(help="show tracebacks")] = False,
) -> None:
    """Final and per-round figures of a run."""
    with user_errors(debug):
        s = summarize(run_dir)
    if as_json:
        print(json.dumps(s))
        return
    from selftaught.report import fmt

    table = Table("round", "reach", "frontier", "pass@1 ± s.e.", "made", "kept", "kept right", "loss", "seconds",
                  title=f"{run_dir}: reach {s['reach']}", title_justify="left")
    for r in s["rounds"]:
        se = fmt(r["pass@1_se"], ".3f")
        table.add_row(str(r["round"]), str(r["reach"]), fmt(r["frontier"], ".0f"),
                      fmt(r["pass@1"], ".3f") + (f" ± {se}" if se else ""), fmt(r["labels_made"], ".0f"),
                      fmt(r["labels_kept"], ".0f"), fmt(r["kept_label_precision"], ".3f"), fmt(r["loss"], ".4f"),
                      fmt(r["wall_s"], ".0f"))
    console.print(table)


def main() -> None:
    app(prog_name="selftaught")


if __name__ == "__main__":
    sys.exit(main())

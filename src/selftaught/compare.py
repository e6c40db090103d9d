"""``selftaught compare``: runs side by side, held-out pass@1 by round against what it cost.

Each round's pass@1 (with its standard error, as ``selftaught summary`` gives it) is set against
two costs: minutes from the run's start and tokens sampled since then. Minutes are the run's own
time, the rounds' ``wall_s`` summed as the summary and the report sum them, so a run stopped and
resumed a day later is not charged for the day. Everything comes from the runs' stores, read-only.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from selftaught.report import _legend, _nan, _pm, _png, facts_table, figure_html, fmt, html_table, page
from selftaught.store import RunStore, StoreError
from selftaught.summary import summarize  # the summary's pass@1 and standard error

COLUMNS = ["run", "round", "minutes", "sampled tokens", "pass@1 ± s.e."]

# [task] settings that shape only the seed data or how a prompt is shown: runs that differ in them
# are still measured on the same held-out problems
_NOT_HELD_OUT = ("seed_min_difficulty", "seed_max_difficulty", "seed_examples", "chat", "prompt_template")
# which held-out difficulties are drawn, how many, and how far past the frontier they are asked
_MONITOR_HELD_OUT = ("eval_per_difficulty", "eval_max_difficulty", "eval_ahead")


@dataclass(frozen=True)
class Row:
    """One round of one run: its pass@1 and what the run had spent by the end of it."""

    run: str
    round: int
    minutes: float
    tokens: float
    pass1: float | None
    se: float | None


@dataclass
class Comparison:
    runs: dict[str, Path]  # label -> run directory, in the order given
    rows: list[Row]
    notes: list[str] = field(default_factory=list)

    def title(self) -> str:
        return f"{len(self.runs)} run{'s' * (len(self.runs) != 1)} compared"

    def by_run(self) -> dict[str, list[Row]]:
        return {label: [r for r in self.rows if r.run == label] for label in self.runs}


def cells(row: Row) -> list[str]:
    """A row as the terminal table and the page both show it."""
    return [row.run, str(row.round), f"{row.minutes:.2f}", fmt(row.tokens, ",.0f"),
            _pm(_nan(row.pass1), _nan(row.se))]


def read_runs(run_dirs: Sequence[Path]) -> Comparison:
    """Every round of every run, labelled; raises ``StoreError`` naming the first directory that is
    not a readable run, before anything is written."""

    run_dirs = [Path(d) for d in run_dirs]
    seen = set()
    for d in run_dirs:
        if d.resolve() in seen:
            raise StoreError(f"{d}: given twice")
        seen.add(d.resolve())
    recipes, summaries = [], []
    for d in run_dirs:
        with RunStore(d) as store:
            recipes.append(store.run_info().get("recipe", {}))
        summaries.append(summarize(d))
    names = [str(r.get("run", {}).get("name", d.name)) for r, d in zip(recipes, run_dirs)]
    labels = run_labels(names, run_dirs)
    rows = [row for label, s in zip(labels, summaries) for row in _rows(label, s)]
    notes = [f"{label}: no round committed yet" for label, s in zip(labels, summaries) if not s["rounds"]]
    differ = held_out_differences(recipes)
    if differ:
        notes.append(f"the runs' held-out sets differ ({', '.join(differ)}), so their pass@1 are not comparable")
    return Comparison(dict(zip(labels, run_dirs)), rows, notes)


def run_labels(names: list[str], run_dirs: list[Path]) -> list[str]:
    """The recipe's name, with the directory's name where two runs share a recipe name, and the
    path as given where they share that too."""
    def clash(labels: list[str], i: int) -> bool:
        return labels.count(labels[i]) > 1

    labels = [n if not clash(names, i) else f"{n} · {run_dirs[i].name}" for i, n in enumerate(names)]
    return [n if not clash(labels, i) else f"{names[i]} · {run_dirs[i]}" for i, n in enumerate(labels)]


def _rows(label: str, summary: dict) -> list[Row]:
    """A run's rounds with their running totals: the cost of a round's pass@1 is everything spent up
    to the end of that round, where it was measured."""
    minutes = tokens = 0.0
    out = []
    for r in summary["rounds"]:
        minutes += r["wall_s"] / 60
        tokens += r["figures"].get("sampled_tokens") or 0.0  # the seed round samples nothing
        out.append(Row(label, r["round"], minutes, tokens, r["pass@1"], r["pass@1_se"]))
    return out


def held_out_differences(recipes: list[dict]) -> list[str]:
    """The recipe keys (``task.name``, ``monitor.eval_per_difficulty``, ...) that decide the held-out
    set and are not the same in every run."""
    def held_out(recipe: dict) -> dict:
        task = {f"task.{k}": v for k, v in recipe.get("task", {}).items() if k not in _NOT_HELD_OUT}
        monitor = recipe.get("monitor", {})
        return task | {f"monitor.{k}": monitor.get(k) for k in _MONITOR_HELD_OUT}

    sets = [held_out(r) for r in recipes]
    keys = sorted({k for s in sets for k in s})
    return [k for k in keys if len({repr(s.get(k)) for s in sets}) > 1]


def _panel(comparison: Comparison, x: Callable[[Row], float], xlabel: str) -> str:
    """pass@1 of every run against one cost, ±1 standard error, as a base64 PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    for i, (label, rows) in enumerate(comparison.by_run().items()):
        if rows:
            ax.errorbar([x(r) for r in rows], [_nan(r.pass1) for r in rows], yerr=[r.se or 0.0 for r in rows],
                        marker="o", capsize=3, color=f"C{i}", label=label)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("held-out pass@1")
    ax.grid(alpha=0.3)
    _legend(ax, fontsize=8)
    return _png(fig)


def write_page(comparison: Comparison, out: str | Path) -> Path:
    """The self-contained page: the runs, any note, both panels and the table. Returns its path."""
    body = [f"<h1>{comparison.title()}</h1>", facts_table([(label, str(d)) for label, d in comparison.runs.items()]),
            *(f"<p class='headline'><b>note:</b> {html.escape(n)}</p>" for n in comparison.notes),
            figure_html("Held-out pass@1 against wall time",
                        png=_panel(comparison, lambda r: r.minutes, "minutes from the run's start"),
                        caption="Greedy pass@1 on each run's held-out set at the end of each round (round 0 = seed "
                        "round); bars are ±1 standard error. Minutes are the run's own: its rounds' wall time "
                        "summed, a pause between a stop and its resume not counted."),
            figure_html("Held-out pass@1 against sampled tokens",
                        png=_panel(comparison, lambda r: r.tokens, "tokens sampled since the start"),
                        caption="The same pass@1 against every token the run's sampler drew up to that round "
                        "(the seed round draws none); bars are ±1 standard error."),
            "<h2>By round</h2>", html_table(COLUMNS, [cells(r) for r in comparison.rows])]
    path = Path(out)
    path.write_text(page("selftaught compare", body))
    return path

"""``selftaught report``: one self-contained HTML file that shows why a run improved or collapsed.

It opens with what the run is (recipe, model, task, method, machine, time) and its headline: the
held-out pass@1 of every round with its standard error, by difficulty, the readable share and the
kept labels' precision. The plots follow; reach and the curriculum's frontier only where the
curriculum moved them. Everything comes from the run's store; plots are matplotlib PNGs embedded
as data URIs, so the file can be mailed or attached to a paper's supplement as it is.
"""

from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path

from selftaught.store import RunStore

_STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { font-size: 1.15em; margin-top: 1.8em; }
.meta { color: #666; } figure { margin: 0.5em 0 1.5em; } figure img { max-width: 100%; }
figcaption { color: #555; font-size: 0.9em; }
table { border-collapse: collapse; font-size: 0.9em; } td, th { padding: 2px 10px; text-align: right; }
th { border-bottom: 1px solid #999; } tr:nth-child(even) { background: #f4f4f4; }
table.facts td { text-align: left; } table.facts td:first-child { color: #666; padding-left: 0; }
p.headline { font-size: 1.15em; margin: 0.6em 0; }
"""


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _nan(v) -> float:
    return float("nan") if v is None else v


def _legend(ax, **kw) -> None:
    """A legend where something is labelled (matplotlib warns on an empty one)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**kw)


def _moved(series: dict) -> bool:
    """Whether a per-round figure took more than one value."""
    return len({v for v in series.values() if v is not None}) > 1


def model_line(recipe: dict, parameters: int | None, precision: str | None = None) -> str:
    """'SmolLM2-135M-Instruct.Q4_1.gguf · 134.5 M parameters · bf16-mixed'."""
    m = recipe.get("model", {})
    size = _size(parameters) + " parameters" if parameters else "size not recorded"
    if m.get("type") == "hf":
        name = Path(m.get("gguf") or m.get("path") or "?").name
        lora = f" · LoRA rank {m['lora_rank']}" if m.get("lora_rank") else ""
        return f"{name} (Hugging Face) · {size} · {precision or m.get('dtype', 'float32')}{lora}"
    if m.get("type") == "transformer":
        return (f"our transformer, {m.get('n_layers')} layers × {m.get('d_model')} wide, trained from scratch · "
                f"{size} · {precision or 'fp32'}")
    return f"{m.get('type')} · {size}"


def _size(n: int) -> str:
    """134.5 M, 1.2 B, 28.4 k."""
    for scale, unit in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return str(n)


def task_line(recipe: dict) -> str:
    t = recipe.get("task", {})
    source = f" from {t['path']}" if t.get("path") else ""
    chat = " · chat template" if t.get("chat") else ""
    return f"{t.get('name')}{source} · seed data difficulties {t.get('seed_min_difficulty')}–" \
           f"{t.get('seed_max_difficulty')}{chat}"


def method_line(recipe: dict) -> str:
    """The round in one line: how attempts are made, judged, kept and learnt from."""
    s, sel, lr, cur = (recipe.get(k, {}) for k in ("sampler", "selector", "learner", "curriculum"))
    temperature = f" at T {s['temperature']}" if "temperature" in s else ""
    judges = ", ".join(j.get("type", "?") for j in recipe.get("judges", [])) or "no judge (every label kept)"
    return (f"{s.get('type')} sampling{temperature}, {s.get('samples', 1)} a problem → judged by {judges} → "
            f"{sel.get('type')} selector → {lr.get('type')} learner ({lr.get('steps_per_round')} steps a round) · "
            f"{cur.get('type')} curriculum, {cur.get('problems_per_round')} problems a round")


def pass1_by_round(store: RunStore) -> dict[int, tuple[float, float]]:
    """Per round, held-out pass@1 and its standard error (the stored pass@1 and nan where the
    store has no problem counts: a run older than them)."""
    from selftaught.monitor import pass1_with_error

    accuracy, counts = store.metric_by_difficulty("accuracy"), store.metric_by_difficulty("eval_problems")
    stored = store.metric("pass@1")
    out = {}
    for r in (r["round"] for r in store.rounds()):
        p, se = pass1_with_error(accuracy.get(r, {}), {d: int(n) for d, n in counts.get(r, {}).items()})
        out[r] = (_nan(stored.get(r)) if math.isnan(p) else p, se)
    return out


def _pm(p: float, se: float) -> str:
    if math.isnan(p):
        return ""
    return f"{p:.3f}" if math.isnan(se) else f"{p:.3f} ± {se:.3f}"


def _headline(store: RunStore, pass1: dict[int, tuple[float, float]]) -> str:
    """The sentence and tables a reader should see first: what moved, by how much, how sure."""
    from selftaught.monitor import standard_error

    rounds = store.rounds()
    measured = [r["round"] for r in rounds if not math.isnan(pass1[r["round"]][0])]
    out = []
    if len(measured) >= 2:
        (p0, se0), (p1, se1) = pass1[measured[0]], pass1[measured[-1]]
        minutes = sum(r["wall_s"] for r in rounds) / 60
        sure = "" if math.isnan(se0) or math.isnan(se1) else f" ± {100 * math.hypot(se0, se1):.1f}"
        out.append(f"<p class='headline'>Held-out pass@1 went from <b>{_pm(p0, se0)}</b> (round {measured[0]}) to "
                   f"<b>{_pm(p1, se1)}</b> (round {measured[-1]}): <b>{100 * (p1 - p0):+.1f}{sure} points</b> in "
                   f"{minutes:.1f} min.</p>")
    readable, precision = store.metric("readable"), store.metric("kept_label_precision")
    made, kept = store.metric("labels_made"), store.metric("labels_kept")
    reach, frontier = store.metric("reach"), store.metric("frontier")
    curriculum_moves = _moved(frontier) or _moved(reach)
    columns = ["round", "pass@1 ± s.e."] + (["readable"] if readable else []) + [
        "kept labels right", "kept / made"] + (["reach", "frontier"] if curriculum_moves else []) + ["seconds"]
    rows = []
    for r in rounds:
        n = r["round"]
        cells = [str(n), _pm(*pass1[n])] + ([fmt(readable.get(n), ".3f")] if readable else []) + [
            fmt(precision.get(n), ".3f"), f"{fmt(kept.get(n), '.0f')} / {fmt(made.get(n), '.0f')}"
            if made.get(n) else ""]
        if curriculum_moves:
            cells += [fmt(reach.get(n), ".0f"), fmt(frontier.get(n), ".0f")]
        cells.append(f"{r['wall_s']:.0f}")
        rows.append(cells)
    out.append(html_table(columns, rows))
    if readable:
        out.append("<p class='meta'>readable: the share of held-out replies that end within their budget with an "
                   "answer the checker can read.</p>")

    accuracy, counts = store.metric_by_difficulty("accuracy"), store.metric_by_difficulty("eval_problems")
    levels = sorted({d for acc in accuracy.values() for d in acc})
    shown = [r["round"] for r in rounds if accuracy.get(r["round"])]
    if levels and shown:
        head = "<tr><th>difficulty</th>" + "".join(f"<th>round {r}</th>" for r in shown) + "</tr>"
        body = []
        for d in levels:
            cells = []
            for r in shown:
                a, n = accuracy[r].get(d), counts.get(r, {}).get(d)
                cells.append("" if a is None else _pm(a, standard_error(a, int(n)) if n else float("nan")))
            body.append(f"<tr><td>{d}</td>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        out.append("<h3>Held-out accuracy by difficulty (± standard error)</h3><table>" + head + "".join(body) +
                   "</table>")
    return "\n".join(out)


def html_table(columns: list[str], rows: list[list[str]]) -> str:
    """A plain table: a header row, then one row of cells each."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def facts_table(facts: list[tuple[str, str]]) -> str:
    """A page's key-value facts (what the run is; which runs are compared), one row each."""
    return "<table class='facts'>" + "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>"
                                             for k, v in facts) + "</table>"


def figure_html(title: str, caption: str, png: str) -> str:
    """A titled figure with its PNG inline, so the page needs no file beside it."""
    return (f"<h2>{html.escape(title)}</h2><figure><img alt='{html.escape(title)}' "
            f"src='data:image/png;base64,{png}'><figcaption>{html.escape(caption)}</figcaption></figure>")


def page(title: str, body: list[str]) -> str:
    """A whole self-contained HTML page: our style inline, ``body``'s parts in order."""
    return "\n".join([f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
                      f"<style>{_STYLE}</style></head><body>", *body, "</body></html>"])


def fmt(v, spec: str) -> str:
    """``v`` formatted, or nothing where it was not measured (None or nan)."""
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def _figures(store: RunStore, pass1: dict[int, tuple[float, float]]) -> list[tuple[str, str, str]]:
    """(title, caption, base64 PNG) for each plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    def by_round(ax) -> None:
        ax.set_xlabel("round")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))

    rounds = [r["round"] for r in store.rounds()]
    out = []

    readable = store.metric("readable")
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ps = np.array([pass1[r][0] for r in rounds], dtype=float)
    ses = np.array([pass1[r][1] for r in rounds], dtype=float)
    ax.errorbar(rounds, ps, yerr=np.where(np.isnan(ses), 0.0, 1.96 * ses), marker="o", capsize=3,
                label="pass@1 (95% interval)")
    if readable:
        ax.plot(rounds, [_nan(readable.get(r)) for r in rounds], "s--", color="tab:gray", label="readable")
    ax.set_ylim(-0.02, 1.02)
    by_round(ax)
    ax.set_ylabel("share of held-out problems")
    _legend(ax, fontsize=8)
    ax.grid(alpha=0.3)
    out.append(("Held-out pass@1", "Greedy exact match on the held-out set each round; bars are 1.96 standard "
                "errors.", _png(fig)))

    accuracy = store.metric_by_difficulty("accuracy")
    levels = sorted({d for acc in accuracy.values() for d in acc}) or [1]
    grid = np.full((len(levels), max(1, len(rounds))), np.nan)
    for j, r in enumerate(rounds):
        for i, d in enumerate(levels):
            grid[i, j] = _nan(accuracy.get(r, {}).get(d))
    fig, ax = plt.subplots(figsize=(max(5, 0.45 * len(rounds) + 3), max(3, 0.28 * len(levels) + 1.5)))
    im = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis", vmin=0, vmax=1,
                   extent=(-0.5, len(rounds) - 0.5, levels[0] - 0.5, levels[-1] + 0.5))
    ax.set_xticks(range(len(rounds)), [str(r) for r in rounds])
    ax.set_xlabel("round")
    ax.set_ylabel("difficulty")
    fig.colorbar(im, ax=ax, label="exact-match accuracy")
    out.append(("Accuracy by difficulty", "Held-out exact match per round (blank: not evaluated).", _png(fig)))

    reach, frontier = store.metric("reach"), store.metric("frontier")
    if _moved(reach) or _moved(frontier):  # a flat frontier (a uniform curriculum) has nothing to show
        fig, ax = plt.subplots(figsize=(6, 3.2))
        ax.plot(rounds, [_nan(reach.get(r)) for r in rounds], "o-", label="reach (every level ≥ threshold)")
        ax.plot(rounds, [_nan(frontier.get(r)) for r in rounds], "s--", label="curriculum frontier")
        by_round(ax)
        ax.set_ylabel("difficulty")
        ax.legend()
        ax.grid(alpha=0.3)
        out.append(("Reach per round", "Reach trails the frontier when the model labels levels it cannot yet "
                    "solve.", _png(fig)))

    made, kept = store.metric("labels_made"), store.metric("labels_kept")
    judges = sorted(n.removeprefix("rejected_by_") for n in store.metric_names() if n.startswith("rejected_by_"))
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot(rounds, [_nan(made.get(r)) for r in rounds], "o-", label="attempts made")
    ax.plot(rounds, [_nan(kept.get(r)) for r in rounds], "o-", label="problems kept")
    for j in judges:
        series = store.metric(f"rejected_by_{j}")
        ax.plot(rounds, [_nan(series.get(r)) for r in rounds], "x:", label=f"rejected by {j}")
    by_round(ax)
    ax.set_ylabel("count")
    _legend(ax, fontsize=8)
    ax.grid(alpha=0.3)
    out.append(("Self-labels made, kept and rejected", "Rejections per judge; an attempt may fail several.",
                _png(fig)))

    precision = store.metric("kept_label_precision")
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot(rounds, [_nan(precision.get(r)) for r in rounds], "o-", color="tab:red")
    ax.set_ylim(0, 1.02)
    by_round(ax)
    ax.set_ylabel("share right")
    ax.grid(alpha=0.3)
    out.append(("True accuracy of kept labels", "Checked against ground truth for monitoring only; a falling "
                "line is an error avalanche under way.", _png(fig)))

    losses = store.losses()
    fig, ax = plt.subplots(figsize=(7, 3.2))
    offset, bounds = 0, []
    labelled = set()
    for r in rounds:
        rows = [(m, s, v) for rr, m, s, v in losses if rr == r]
        if not rows:
            continue
        for m in sorted({m for m, _, _ in rows}):
            pts = [(s, v) for mm, s, v in rows if mm == m]
            ax.plot([offset + s for s, _ in pts], [_nan(v) for _, v in pts], lw=0.8, color=f"C{m}",
                    label=None if m in labelled else f"member {m}")
            labelled.add(m)
        offset += max(s for _, s, _ in rows) + 1
        bounds.append(offset)
    for b in bounds[:-1]:
        ax.axvline(b, color="#bbb", lw=0.6)
    values = [v for *_, v in losses if v is not None and v > 0]
    if values and max(values) > 20 * min(values):  # log only where the curve spans orders of magnitude
        ax.set_yscale("log")
    ax.set_xlabel("training step (grey lines: round boundaries)")
    ax.set_ylabel("loss")
    _legend(ax, fontsize=8)
    out.append(("Training loss", "Answer-token cross-entropy of every step.", _png(fig)))

    names = store.metric_names()
    panels = [("accuracy", [n for n in names if n in ("pass@1", "sample_accuracy", "pass@1_turn2")
                            or (n.startswith("pass@") and n.endswith("_samples"))]),
              ("diversity and balance", [n for n in names if n in ("distinct_answers", "cross_member_distinct",
                                                                   "balance", "unsolved_fraction", "kept_gini")
                                         or n.startswith("exploration_")]),
              ("judges", [n for n in names if n.startswith(("judge_auroc/", "judge_accuracy/"))
                          or n in ("verdict_ece", "pair_accuracy", "kept_precision")]),
              ("self-correction", [n for n in names if n in ("delta_wrong_to_right", "delta_right_to_wrong")]),
              # a search's process value against its trees' truth (a right answer below the step)
              ("process value", [n for n in names if n in ("value_step_auroc", "value_step_accuracy")])]
    panels = [(title, series) for title, series in panels if series]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.2), squeeze=False)
    for ax, (title, series) in zip(axes[0], panels):
        for name in series:
            values = store.metric(name)
            xs = [r for r in rounds if values.get(r) is not None]
            ax.plot(xs, [values[r] for r in xs], marker="o", label=name)
        ax.set_title(title, fontsize=10)
        ax.set_ylim(-0.02, 1.02)
        by_round(ax)
        _legend(ax, fontsize=7)
    alarms = store.metric("collapse_alarm")
    fired = [r for r, v in alarms.items() if v]
    for ax in axes[0]:
        for r in fired:
            ax.axvline(r, color="red", alpha=0.3)
    out.append(("Sampling, diversity and judges",
                "pass@1 is held-out greedy exact match; the others are over each round's own samples, graded after "
                "selection. Red lines: rounds where the collapse alarm fired.", _png(fig)))

    if "proposal_valid" in names:
        out.append(_proposals_figure(store, rounds, by_round, plt, np))

    phases = {r["round"]: r["phases"] for r in store.rounds()}
    names = sorted({p for ph in phases.values() for p in ph})
    fig, ax = plt.subplots(figsize=(6, 3.2))
    bottom = np.zeros(len(rounds))
    for name in names:
        values = np.array([phases[r].get(name, 0.0) for r in rounds])
        ax.bar([str(r) for r in rounds], values, bottom=bottom, label=name)
        bottom += values
    ax.set_xlabel("round")
    ax.set_ylabel("seconds")
    _legend(ax, fontsize=8)
    out.append(("Time per phase", "Where each round's wall time went.", _png(fig)))
    return out


def _proposals_figure(store: RunStore, rounds: list[int], by_round, plt, np) -> tuple[str, str, str]:
    """A challenger's proposals per round: validity and diversity, the solver's solve rates, and the
    proposals' difficulty."""
    from selftaught.curriculum.challenger import HISTOGRAM

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    ax = axes[0]
    for name, label in (("proposal_valid", "valid"), ("proposal_distinct", "distinct (of valid)"),
                        ("proposal_repetition", "BLEU cluster share"),
                        ("proposal_ngram_repetition", "repeated bigrams"),
                        ("proposal_in_band", "in the solver's band"), ("pseudo_label_precision", "vote label right")):
        values = store.metric(name)
        xs = [r for r in rounds if values.get(r) is not None]
        if xs:
            ax.plot(xs, [values[r] for r in xs], marker="o", label=label)
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("validity and diversity", fontsize=10)
    by_round(ax)
    _legend(ax, fontsize=7)
    ax = axes[1]
    bottom = np.zeros(len(rounds))
    for b in range(HISTOGRAM):
        values = store.metric(f"proposal_solve_{b}")
        shares = np.array([_nan(values.get(r)) for r in rounds])
        shares = np.where(np.isnan(shares), 0.0, shares)
        ax.bar([str(r) for r in rounds], shares, bottom=bottom, color=plt.cm.viridis(b / (HISTOGRAM - 1)),
               label=f"{b / HISTOGRAM:.1f}-{(b + 1) / HISTOGRAM:.1f}")
        bottom += shares
    ax.set_title("solver's solve rate (share of valid proposals)", fontsize=10)
    ax.set_xlabel("round")
    _legend(ax, fontsize=7, title="solve rate", title_fontsize=7)
    ax = axes[2]
    per_round = {r: [p["difficulty"] for p in store.proposals(r) if p["difficulty"] is not None] for r in rounds}
    shown = [r for r in rounds if per_round[r]]
    if shown:
        ax.boxplot([per_round[r] for r in shown], positions=range(len(shown)))
        ax.set_xticks(range(len(shown)), [str(r) for r in shown])
    ax.set_title("difficulty of valid proposals", fontsize=10)
    ax.set_xlabel("round")
    alarms = store.metric("collapse_alarm")
    for r, v in alarms.items():
        if v and r in rounds:
            axes[0].axvline(r, color="red", alpha=0.3)
    return ("Proposals", "What the challenger wrote each round: the share the task could read and compute, how "
            "many were distinct, how often the solver solved them, and how hard they were. Red lines: rounds where "
            "an alarm fired.", _png(fig))


def write_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the report (default ``RUN_DIR/report.html``) and return its path."""
    from selftaught.machine import describe

    run_dir = Path(run_dir)
    with RunStore(run_dir) as store:
        info = store.run_info()
        pass1 = pass1_by_round(store)
        figures = _figures(store, pass1)
        headline = _headline(store, pass1)
        rounds = store.rounds()
    recipe = info.get("recipe", {})
    name = str(recipe.get("run", {}).get("name", run_dir.name))
    total = sum(r["wall_s"] for r in rounds)
    improving = [r["wall_s"] for r in rounds if r["round"] > 0]
    per_round = f" ({sum(improving) / len(improving):.0f} s a self-improvement round)" if improving else ""
    changes = "; ".join(f"after round {c['after_round']}: " + ", ".join(f"{k} = {v}" for k, v in c["set"].items())
                        for c in info.get("limit_changes", []))
    facts = [("model", model_line(recipe, info.get("parameters"), info.get("precision"))), ("task", task_line(recipe)),
             ("method", method_line(recipe)), ("seed", str(info.get("seed"))),
             ("machine", describe(info.get("machine", {}))),
             ("time", f"{len(rounds)} rounds (round 0 = seed round) in {total / 60:.1f} min{per_round}"),
             *([("resumed with new limits", changes)] if changes else []),
             ("run", f"{run_dir} · selftaught {info.get('version')}")]
    parts = [f"<h1>{html.escape(name)}</h1>",
             facts_table(facts),
             "<h2>What improved</h2>", headline, *(figure_html(*f) for f in figures)]
    path = Path(out) if out is not None else run_dir / "report.html"
    path.write_text(page(f"{name} · selftaught report", parts))
    return path

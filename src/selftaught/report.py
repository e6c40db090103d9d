"""``selftaught report``: one self-contained HTML file that shows why a run improved or collapsed.

Everything comes from the run's store; plots are matplotlib PNGs embedded as data URIs, so the
file can be mailed or attached to a paper's supplement as it is.
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
"""


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _nan(v) -> float:
    return float("nan") if v is None else v


def _figures(store: RunStore) -> list[tuple[str, str, str]]:
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
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot(rounds, [_nan(reach.get(r)) for r in rounds], "o-", label="reach (every level ≥ threshold)")
    ax.plot(rounds, [_nan(frontier.get(r)) for r in rounds], "s--", label="curriculum frontier")
    by_round(ax)
    ax.set_ylabel("difficulty")
    ax.legend()
    ax.grid(alpha=0.3)
    out.append(("Reach per round", "Reach trails the frontier when the model labels levels it cannot yet solve.",
                _png(fig)))

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
    ax.legend(fontsize=8)
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
    for r in rounds:
        rows = [(m, s, v) for rr, m, s, v in losses if rr == r]
        if not rows:
            continue
        for m in sorted({m for m, _, _ in rows}):
            pts = [(s, v) for mm, s, v in rows if mm == m]
            ax.plot([offset + s for s, _ in pts], [_nan(v) for _, v in pts], lw=0.8, color=f"C{m}",
                    label=f"member {m}" if r == rounds[0] else None)
        offset += max(s for _, s, _ in rows) + 1
        bounds.append(offset)
    for b in bounds[:-1]:
        ax.axvline(b, color="#bbb", lw=0.6)
    values = [v for *_, v in losses if v is not None and v > 0]
    if values and max(values) > 20 * min(values):  # log only where the curve spans orders of magnitude
        ax.set_yscale("log")
    ax.set_xlabel("training step (grey lines: round boundaries)")
    ax.set_ylabel("loss")
    if losses:
        ax.legend(fontsize=8)
    out.append(("Training loss", "Answer-token cross-entropy of every step.", _png(fig)))

    names = store.metric_names()
    panels = [("accuracy", [n for n in names if n in ("pass@1", "sample_accuracy", "pass@1_turn2")
                            or (n.startswith("pass@") and n.endswith("_samples"))]),
              ("diversity and balance", [n for n in names if n in ("distinct_answers", "cross_member_distinct",
                                                                   "balance", "unsolved_fraction", "kept_gini")
                                         or n.startswith("exploration_")]),
              ("judges", [n for n in names if n.startswith(("judge_auroc/", "judge_accuracy/"))
                          or n in ("verdict_ece", "pair_accuracy", "kept_precision")]),
              ("self-correction", [n for n in names if n in ("delta_wrong_to_right", "delta_right_to_wrong")])]
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
        ax.legend(fontsize=7)
    alarms = store.metric("collapse_alarm")
    fired = [r for r, v in alarms.items() if v]
    for ax in axes[0]:
        for r in fired:
            ax.axvline(r, color="red", alpha=0.3)
    out.append(("Sampling, diversity and judges",
                "pass@1 is held-out greedy exact match; the others are over each round's own samples, graded after "
                "selection. Red lines: rounds where the collapse alarm fired.", _png(fig)))

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
    if names:
        ax.legend(fontsize=8)
    out.append(("Time per phase", "Where each round's wall time went.", _png(fig)))
    return out


def _table(store: RunStore) -> str:
    names = ["reach", "frontier", "labels_made", "labels_kept", "kept_label_precision", "loss"]
    series = {n: store.metric(n) for n in names}
    head = "".join(f"<th>{h}</th>" for h in ["round", *names, "seconds"])
    rows = []
    for r in store.rounds():
        cells = [str(r["round"])]
        for n in names:
            v = series[n].get(r["round"])
            cells.append("" if v is None or (isinstance(v, float) and math.isnan(v))
                         else (f"{v:.3f}" if n in ("kept_label_precision", "loss") else f"{v:.0f}"))
        cells.append(f"{r['wall_s']:.0f}")
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def write_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the report (default ``RUN_DIR/report.html``) and return its path."""
    run_dir = Path(run_dir)
    with RunStore(run_dir) as store:
        info = store.run_info()
        figures = _figures(store)
        table = _table(store)
        rounds = store.rounds()
    name = html.escape(str(info.get("recipe", {}).get("run", {}).get("name", run_dir.name)))
    total = sum(r["wall_s"] for r in rounds)
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{name} · selftaught report</title>",
             f"<style>{_STYLE}</style></head><body>",
             f"<h1>{name}</h1><p class='meta'>{html.escape(str(run_dir))} · seed {info.get('seed')} · "
             f"selftaught {html.escape(str(info.get('version')))} · {len(rounds)} rounds · {total / 60:.1f} min</p>",
             "<h2>Rounds</h2>", table]
    for title, caption, png in figures:
        parts.append(f"<h2>{html.escape(title)}</h2><figure><img alt='{html.escape(title)}' "
                     f"src='data:image/png;base64,{png}'><figcaption>{html.escape(caption)}</figcaption></figure>")
    parts.append("</body></html>")
    path = Path(out) if out is not None else run_dir / "report.html"
    path.write_text("\n".join(parts))
    return path

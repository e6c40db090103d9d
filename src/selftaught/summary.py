"""A run's figures from its store alone: what `selftaught summary` prints and `compare` puts side by side."""

from __future__ import annotations

import math
from pathlib import Path

from selftaught.store import RunStore


def summarize(run_dir: Path) -> dict:
    """Final and per-round figures of a run, from its store alone. ``pass@1`` comes with its
    standard error (``pass@1_se``), and each difficulty's accuracy with its own (``accuracy_se``)."""
    from selftaught.monitor import reach as reach_of
    from selftaught.monitor import standard_error
    from selftaught.report import pass1_by_round

    with RunStore(run_dir) as store:
        info = store.run_info()
        pass1 = pass1_by_round(store)
        threshold = info["recipe"]["monitor"]["threshold"]
        accuracy = store.metric_by_difficulty("accuracy")
        counts = store.metric_by_difficulty("eval_problems")
        rounds = []
        names = ["frontier", "loss", "labels_made", "labels_kept", "kept_label_precision"]
        series = {n: store.metric(n) for n in names}
        # every other per-round figure (pass@1, diversity, judge quality, ...) under "figures"
        others = {n: store.metric(n) for n in store.metric_names()
                  if n not in names and n not in ("reach", "accuracy", "keep_rate", "eval_problems")}
        for r in store.rounds():
            acc, n = accuracy.get(r["round"], {}), counts.get(r["round"], {})
            se = pass1[r["round"]][1]
            row = {"round": r["round"], "reach": reach_of(acc, threshold), "wall_s": r["wall_s"],
                   "phases": r["phases"], "accuracy": {str(d): v for d, v in acc.items()},
                   "accuracy_se": {str(d): standard_error(v, int(n[d])) for d, v in acc.items() if d in n},
                   "pass@1_se": None if math.isnan(se) else se}
            row.update({n: series[n].get(r["round"]) for n in names})
            row["figures"] = {n: v[r["round"]] for n, v in others.items() if r["round"] in v}
            row["pass@1"] = row["figures"].get("pass@1")
            rounds.append(row)
    final = rounds[-1] if rounds else {}
    return {"run_dir": str(run_dir), "seed": info.get("seed"), "version": info.get("version"),
            "rounds": rounds, "reach": final.get("reach", 0), "final_accuracy": final.get("accuracy", {}),
            "pass@1": final.get("pass@1"), "pass@1_se": final.get("pass@1_se"),
            "limit_changes": info.get("limit_changes", []), "wall_s": sum(r["wall_s"] for r in rounds)}

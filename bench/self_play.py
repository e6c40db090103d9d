"""Self-play without given problems (issue 39): `smollm2-self-play` against the same run with its
challenger untrained (proposals from the starting model, `curriculum.model = "frozen"`), at the
same wall-time budget.

Per round and arm: held-out greedy pass@1 over word-arithmetic difficulties 1-6 (never shown to the
model) with its standard error, and the proposals: valid share, distinct share, share in the
solver's band, mean solve rate, the solve-rate histogram, mean reward (and, without the executor,
the vote's pseudo-label precision).

    python bench/self_play.py [--minutes 20] [--parallel] [--set KEY=VALUE ...] [--out DIR]

``--parallel`` runs both arms at once, one torch thread each (two cores: the arms then share the
machine alike); otherwise one after the other on every thread.

Targets: pass@1 +15 points within the budget; the trained challenger ahead of the control by >= 2
standard errors of their difference at the end.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from selftaught.builtin_recipes import resolve
from selftaught.store import RunStore

ARMS = {"trained": [], "control": ['curriculum.model="frozen"']}


def pass1(store: RunStore) -> dict[int, tuple[float, float]]:
    """Per round, held-out pass@1 and its standard error (binomial, over the problems measured)."""
    sizes = store.metric_by_difficulty("eval_problems")
    out = {}
    for r, p in store.metric("pass@1").items():
        n = sum(sizes.get(r, {}).values())
        out[r] = (p, math.sqrt(p * (1 - p) / n) if n else math.nan)
    return out


def table(name: str, run_dir: Path) -> dict[int, tuple[float, float]]:
    with RunStore(run_dir) as store:
        p1 = pass1(store)
        walls = {r["round"]: r["wall_s"] for r in store.rounds()}
        f = {n: store.metric(n) for n in ("proposal_valid", "proposal_distinct", "proposal_in_band",
                                          "proposal_solve_rate", "proposal_reward", "pseudo_label_precision")}
        hist = [store.metric(f"proposal_solve_{b}") for b in range(5)]
    print(f"\n### {name}\n\n| round | minutes | pass@1 ± s.e. | valid | distinct | in band | solve rate | "
          "solve-rate histogram (0-.2 … .8-1) | reward |\n|---|---|---|---|---|---|---|---|---|")
    elapsed = 0.0
    for r in sorted(p1):
        elapsed += walls.get(r, 0.0)

        def g(name: str, r: int = r) -> str:
            v = f[name].get(r)
            return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.2f}"

        shares = " ".join(f"{h.get(r):.2f}" if h.get(r) is not None else "-" for h in hist)
        print(f"| {r} | {elapsed / 60:.1f} | {100 * p1[r][0]:.1f} ± {100 * p1[r][1]:.1f} | {g('proposal_valid')} | "
              f"{g('proposal_distinct')} | {g('proposal_in_band')} | {g('proposal_solve_rate')} | {shares} | "
              f"{g('proposal_reward')} |")
    return p1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=20.0)
    ap.add_argument("--parallel", action="store_true")
    ap.add_argument("-s", "--set", action="append", default=[], help="a setting for both arms, KEY=VALUE")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="self-play-"))
    common = [f"run.time_budget_minutes={args.minutes}", "run.rounds=100", *args.set]
    procs = {}
    for name, extra in ARMS.items():
        cmd = [sys.executable, "-m", "selftaught.cli", "run", str(resolve("smollm2-self-play")), "--out",
               str(out / name), *[x for s in [*common, *extra] for x in ("-s", s)]]
        env = {"OMP_NUM_THREADS": "1"} if args.parallel else {}
        log = open(out / f"{name}.log", "w")
        procs[name] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                       env={**os.environ, **env})
        if not args.parallel:
            procs[name].wait()
    for name, proc in procs.items():
        if proc.wait() != 0:
            print(f"{name} failed: see {out / name}.log")
            return
    print(f"runs in {out}; budget {args.minutes:g} minutes an arm" + (", both at once, 1 thread each"
                                                                       if args.parallel else ""))
    results = {name: table(name, out / name) for name in ARMS}
    trained, control = results["trained"], results["control"]
    t_last, c_last = trained[max(trained)], control[max(control)]
    gain = 100 * (t_last[0] - trained[0][0])
    print(f"\nheld-out pass@1: {100 * trained[0][0]:.1f} -> {100 * t_last[0]:.1f} ({gain:+.1f} points; "
          f"target +15 within {args.minutes:g} min: {'MET' if gain >= 15 else 'MISSED'})")
    se = math.hypot(t_last[1], c_last[1])
    z = (t_last[0] - c_last[0]) / se if se else math.nan
    print(f"trained challenger {100 * t_last[0]:.1f} vs control {100 * c_last[0]:.1f}: {z:+.1f} s.e. "
          f"(target >= +2: {'MET' if z >= 2 else 'MISSED'})")


if __name__ == "__main__":
    main()

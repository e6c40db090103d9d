"""The reach benchmark runs end to end (it once broke unnoticed: only a 30-minute run exercised it)."""

import json
import math
import re
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from selftaught.cli import app

BENCH = Path(__file__).resolve().parent.parent / "bench" / "sit_reach.py"
TINY = ["learner.seed_steps=10", "learner.steps_per_round=2", "curriculum.problems_per_round=32", "model.n_layers=1",
        "model.d_model=16", "model.n_heads=2", "model.d_ff=32", "task.seed_examples=100",
        "monitor.eval_per_difficulty=8", "run.rounds=2"]


def test_reach_bench_prints_the_stored_reach_of_each_round(tmp_path):
    out = tmp_path / "run"
    args = [sys.executable, str(BENCH), "--minutes", "5", "--out", str(out)]
    for s in TINY:
        args += ["--set", s]
    printed = subprocess.run(args, capture_output=True, text=True, check=True, timeout=300).stdout
    reach = [int(m) for m in re.findall(r"^round\s+\d+\s+wall\s+\S+s\s+reach\s+(\d+)", printed, re.M)]
    summary = json.loads(CliRunner().invoke(app, ["summary", str(out), "--json"]).output)
    assert reach == [r["reach"] for r in summary["rounds"]] and len(reach) == 3
    assert f"final reach {summary['reach']}" in printed
    fall = max(a - b for a, b in zip(reach, reach[1:]))
    assert f"largest fall between rounds {max(0, fall)}" in printed


def _bench(name: str):
    """A script under bench/, imported as a module."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH.parent / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_recipes_bench_gives_pass_at_1_the_standard_error_of_its_sampling():
    """Checked by simulation: pass@1 (the mean of per-difficulty accuracies) redrawn from its held-out
    sets many times spreads as wide as the standard error the bars print."""
    import random
    import statistics
    from types import SimpleNamespace

    bench = _bench("recipes")
    accuracy, n = {2: 0.9, 3: 0.2}, 300
    se = bench.standard_error(SimpleNamespace(accuracy=accuracy), n)
    rng = random.Random(0)
    draws = [statistics.fmean(sum(rng.random() < p for _ in range(n)) / n for p in accuracy.values())
             for _ in range(2000)]
    assert abs(statistics.stdev(draws) - se) < 0.05 * se

    def report(acc):
        return SimpleNamespace(accuracy=acc, figures={"pass@1": statistics.fmean(acc.values())})

    better = {2: 0.9, 3: 0.3}
    se_better = bench.standard_error(SimpleNamespace(accuracy=better), n)
    assert bench.gap(report(better), report(accuracy), n, n) == f"+5.0 ± {math.hypot(se_better, se) * 100:.1f} points"


def test_the_recipes_bench_gives_the_self_correction_gap_the_standard_error_of_its_sampling():
    """Checked by simulation: each held-out problem is fixed, broken or left by revision; the gap
    between the fixed and broken shares, redrawn many times, spreads as wide as the printed error."""
    import random
    import statistics
    from types import SimpleNamespace

    bench = _bench("recipes")
    fix, brk, n, levels = 0.04, 0.025, 500, 2
    report = SimpleNamespace(accuracy={2: 0.9, 3: 0.3},
                             figures={"delta_wrong_to_right": fix, "delta_right_to_wrong": brk})
    printed = bench.transition_gap(report, n)
    value, se = (float(x) for x in re.fullmatch(r"([+-][0-9.]+) ± ([0-9.]+) points", printed).groups())
    assert value == 1.5
    rng = random.Random(0)

    def redraw() -> float:
        draws = [rng.random() for _ in range(n * levels)]
        return (sum(u < fix for u in draws) - sum(fix <= u < fix + brk for u in draws)) / (n * levels)

    spread = statistics.stdev(redraw() for _ in range(2000)) * 100
    assert abs(spread - se) <= 0.05 * spread + 0.05  # the printed error is rounded to 0.1 points


def test_the_margins_bench_measures_an_averaged_case_against_the_spread_of_its_mean(capsys):
    margins = _bench("margins")
    xs = [0.2, 0.4, 0.6]  # mean 0.4, sd 0.2
    rows = [{"case": c, "seed": s, "threads": 1, "figures": {"f": x}} for c in ("one", "avg") for s, x in enumerate(xs)]
    margins.table(rows, {"one": {"f": (">=", 0.1)}, "avg": {"f": (">=", 0.1)}}, {"avg": 4})
    printed = capsys.readouterr().out
    avg, one = printed.split("\none:")  # cases print in name order
    assert "1.5 sd" in one  # (0.4 - 0.1) / 0.2
    assert "mean of 4 seeds" in avg and "3.0 sd" in avg  # (0.4 - 0.1) / (0.2 / sqrt 4)

"""The reach benchmark runs end to end (it once broke unnoticed: only a 30-minute run exercised it)."""

import json
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

"""Fingerprints of tiny versions of every built-in recipe: to prove a refactor changed no behaviour.

    python bench/behaviour.py [--save FILE] [--compare FILE] [--only NAME ...] [--resume POINT:ROUND]

Each recipe runs through the command line on a tiny model for a couple of rounds; printed per run:
the sha256 of the final weights, of the final optimizer states, and of every round's metrics,
attempts, scores and losses. With ``--resume``, each is also run again, killed (SIGKILL) at that
fault point (``selftaught.faults``), resumed, and compared with its uninterrupted run. Hashes
depend on the CPU and the thread count (float rounding), so compare only runs made on one machine;
they are never committed as a test.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from selftaught import faults
from selftaught.builtin_recipes import resolve
from selftaught.recipe import to_toml

TINY = ["model.n_layers=2", "model.d_model=64", "model.n_heads=4", "model.d_ff=256", "task.seed_examples=500",
        "learner.seed_steps=400", "learner.steps_per_round=12", "curriculum.problems_per_round=60",
        "monitor.eval_per_difficulty=24", "run.rounds=2", "run.time_budget_minutes=0"]

# name: (built-in recipe, extra overrides[, keys dropped from the recipe first]). Variants beyond the
# seven recipes cover the selectors, samplers and learner feeds that no built-in recipe uses; a
# variant that changes a part's type drops the keys that only the old type has.
RUNS = {
    "sit-addition": ("sit-addition", ["task.seed_max_difficulty=3"]),
    "star": ("star", []),
    "bstar": ("bstar", ["selector.probe_problems=20", "judges.1.rollouts=1"]),
    "grpo": ("grpo", []),
    "self-rewarding": ("self-rewarding", ["judges.0.train_problems=60", "judges.0.train_steps=20",
                                          "judges.0.lr=0.001", "judges.0.threshold=0.5"]),
    "self-correct": ("self-correct", ["learner.sft_rounds=1"]),
    "multiagent": ("multiagent", ["model.n_heads=4"]),
    "grpo-reused": ("grpo", ["learner.on_policy=false", "learner.batch_size=64"]),
    "star-top-k": ("star", ['selector.type="top-k"', "selector.k=1"], ["selector.max_per_query"]),
    "star-rebalance": ("star", ['selector.type="rebalance"'], ["selector.max_per_query"]),
    "sit-span-2": ("sit-addition", ["task.seed_max_difficulty=3", "curriculum.span=2", "model.members=2",
                                    "curriculum.gate=0.3"]),
    "self-correct-sft": ("self-correct", ['learner.type="sft"', "sampler.revisions=1", "selector.shaping=0.0"],
                         ["learner.sft_rounds", "learner.on_policy", "learner.beta"]),
}


def digest(rows) -> str:
    return hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()[:16]


def fingerprint(run_dir: Path) -> dict:
    db = sqlite3.connect(f"file:{run_dir / 'run.sqlite'}?mode=ro", uri=True)
    try:
        final = db.execute("SELECT MAX(round) FROM rounds").fetchone()[0]
        out: dict = {}
        for r in range(final + 1):
            out[f"round {r}"] = {
                "metrics": digest(db.execute("SELECT name, difficulty, value FROM metrics WHERE round = ? "
                                             "ORDER BY name, difficulty", (r,)).fetchall()),
                "attempts": digest(db.execute("SELECT problem, member, prompt, text FROM attempts WHERE round = ? "
                                              "ORDER BY id", (r,)).fetchall()),
                "scores": digest(db.execute("SELECT s.judge, s.value, s.passed, s.reason FROM scores s JOIN attempts a "
                                            "ON a.id = s.attempt WHERE a.round = ? ORDER BY s.attempt, s.judge",
                                            (r,)).fetchall()),
                "selections": digest(db.execute("SELECT kept, reason FROM selections WHERE round = ? ORDER BY attempt",
                                                (r,)).fetchall()),
                "losses": digest(db.execute("SELECT member, step, value FROM losses WHERE round = ? "
                                            "ORDER BY member, step", (r,)).fetchall()),
            }
        out["trained"] = db.execute("SELECT COUNT(*) FROM losses WHERE round > 0 AND value != 0").fetchone()[0]
        out["kept"] = db.execute("SELECT COUNT(*) FROM selections WHERE kept = 1").fetchone()[0]
    finally:
        db.close()
    folder = run_dir / "checkpoints" / f"round-{final}"
    for kind, pattern in (("weights", "model.safetensors"), ("optimizer", "optimizer.pt")):
        h = hashlib.sha256()
        for p in sorted(folder.rglob(pattern)):
            h.update(p.read_bytes())
        out[kind] = h.hexdigest()
    return out


def without(recipe: str, keys: list[str], tmp: Path) -> str:
    """A copy of a built-in recipe without ``keys`` (``section.key``); returns its path."""
    data = tomllib.loads(resolve(recipe).read_text())
    for key in keys:
        section, _, name = key.partition(".")
        del data[section][name]
    path = tmp / f"{recipe}-{len(list(tmp.iterdir()))}.toml"
    path.write_text(to_toml(data))
    return str(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--save", type=Path, help="write the fingerprints here (JSON)")
    parser.add_argument("--compare", type=Path, help="compare with fingerprints saved earlier on this machine")
    parser.add_argument("--only", nargs="*", default=None, help="run only these")
    parser.add_argument("--resume", metavar="POINT:ROUND", help="also kill each run there, resume it and compare")
    args = parser.parse_args()
    results, resumed = {}, 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, (recipe, extra, *dropped) in RUNS.items():
            if args.only and name not in args.only:
                continue
            out = Path(tmp) / name
            cmd = [sys.executable, "-m", "selftaught.cli", "run", without(recipe, dropped[0], Path(tmp)) if dropped
                   else recipe, "--out", str(out)]
            for s in TINY + extra:
                cmd += ["--set", s]
            env = {k: v for k, v in os.environ.items() if k != faults.ENV}
            done = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if done.returncode != 0:
                print(f"{name}: FAILED\n{done.stderr[-2000:]}")
                results[name] = {"failed": done.stderr[-500:]}
                continue
            results[name] = fingerprint(out)
            line = (f"{name:18} weights {results[name]['weights'][:16]}  optimizer {results[name]['optimizer'][:16]}  "
                    f"kept {results[name]['kept']}  steps {results[name]['trained']}")
            if args.resume:
                again = Path(tmp) / f"{name}-killed"
                killed = subprocess.run([*cmd[:cmd.index("--out") + 1], str(again), *cmd[cmd.index("--out") + 2:]],
                                        capture_output=True, text=True, env=env | {faults.ENV: args.resume})
                finished = subprocess.run([sys.executable, "-m", "selftaught.cli", "resume", str(again)],
                                          capture_output=True, text=True, env=env)
                same = killed.returncode == -signal.SIGKILL and finished.returncode == 0 and \
                    fingerprint(again) == results[name]
                resumed += same
                line += f"  killed at {args.resume} and resumed: {'identical' if same else 'DIFFERS'}"
            print(line, flush=True)
    if args.save:
        args.save.write_text(json.dumps(results, indent=1))
    if args.compare:
        before = json.loads(args.compare.read_text())
        same = 0
        for name, now in results.items():
            then = before.get(name)
            if then == now:
                same += 1
                continue
            diffs = [k for k in sorted(set(now) | set(then or {})) if (then or {}).get(k) != now.get(k)]
            print(f"{name}: DIFFERS in {', '.join(diffs)}")
        print(f"identical: {same}/{len(results)}")
    if args.resume:
        print(f"resumed identical: {resumed}/{len(results)}")


if __name__ == "__main__":
    main()

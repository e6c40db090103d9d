"""What two runs must share to count as the same run: final weights and optimizer state (bytes),
every metric, every attempt, every search tree, every proposal and every training loss. Wall times are left out."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from selftaught.store.checkpoint import round_dir, sha256
from selftaught.store.sqlite import FILENAME


def run_fingerprint(run_dir: str | Path) -> dict:
    run_dir = Path(run_dir)
    db = sqlite3.connect(f"file:{run_dir / FILENAME}?mode=ro", uri=True)
    try:
        final = db.execute("SELECT MAX(round) FROM rounds").fetchone()[0]
        tables = {
            "metrics": "SELECT round, name, difficulty, value FROM metrics ORDER BY round, name, difficulty",
            "attempts": "SELECT round, problem, member, prompt, text FROM attempts ORDER BY id",
            "scores": "SELECT attempt, judge, value, passed FROM scores ORDER BY attempt, judge",
            "losses": "SELECT round, member, step, value FROM losses ORDER BY round, member, step",
            "nodes": "SELECT * FROM nodes ORDER BY round, problem, member, node",
            "proposals": "SELECT * FROM proposals ORDER BY round, id",
        }
        out = {name: db.execute(sql).fetchall() for name, sql in tables.items()}
    finally:
        db.close()
    folder = round_dir(run_dir, final) if final is not None else None
    out["final_round"] = final
    out["files"] = {str(p.relative_to(run_dir)): sha256(p) for p in sorted(folder.rglob("*")) if p.is_file()} \
        if folder is not None else {}
    return out

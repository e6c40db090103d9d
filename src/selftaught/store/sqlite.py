"""The run store: one SQLite file per run holding the recipe, rounds and metrics.

Every write goes through this class, and each round's results are committed in one transaction,
so a reader (``selftaught summary``) never sees half a round.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from pathlib import Path

SCHEMA_VERSION = 1
FILENAME = "run.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS run (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rounds (
    round INTEGER PRIMARY KEY, finished_at REAL NOT NULL, wall_s REAL NOT NULL, phases TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS metrics (
    round INTEGER NOT NULL, name TEXT NOT NULL, difficulty INTEGER, value REAL
);
CREATE INDEX IF NOT EXISTS metrics_by_name ON metrics (name, round);
"""


class NotARunError(ValueError):
    """A directory that holds no selftaught run."""


class RunStore:
    def __init__(self, run_dir: str | Path, *, create: bool = False):
        self.run_dir = Path(run_dir)
        path = self.run_dir / FILENAME
        if not create and not path.is_file():
            raise NotARunError(f"{self.run_dir}: not a selftaught run (no {FILENAME})")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path)
        self.db.execute("PRAGMA journal_mode=WAL")
        if create:
            with self.db:
                self.db.executescript(_SCHEMA)
                self.db.execute("INSERT OR REPLACE INTO run VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- writing -------------------------------------------------------------------------------

    def write_run(self, info: dict) -> None:
        with self.db:
            self.db.executemany("INSERT OR REPLACE INTO run VALUES (?, ?)",
                                [(k, json.dumps(v)) for k, v in info.items()])

    def commit_round(self, round_: int, metrics: list[tuple[str, int | None, float]], wall_s: float,
                     phases: dict[str, float]) -> None:
        """Metrics are (name, difficulty or None, value); all of them land or none do."""
        with self.db:
            self.db.execute("DELETE FROM metrics WHERE round = ?", (round_,))
            self.db.executemany(
                "INSERT INTO metrics VALUES (?, ?, ?, ?)",
                [(round_, n, d, None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v))
                 for n, d, v in metrics])
            self.db.execute("INSERT OR REPLACE INTO rounds VALUES (?, ?, ?, ?)",
                            (round_, time.time(), wall_s, json.dumps(phases)))

    # ---- reading -------------------------------------------------------------------------------

    def run_info(self) -> dict:
        return {k: json.loads(v) if k != "schema_version" else int(v)
                for k, v in self.db.execute("SELECT key, value FROM run")}

    def rounds(self) -> list[dict]:
        rows = self.db.execute("SELECT round, wall_s, phases FROM rounds ORDER BY round").fetchall()
        return [{"round": r, "wall_s": w, "phases": json.loads(p)} for r, w, p in rows]

    def metric(self, name: str) -> dict[int, float | None]:
        """Per-round values of a metric without difficulty."""
        rows = self.db.execute("SELECT round, value FROM metrics WHERE name = ? AND difficulty IS NULL "
                               "ORDER BY round", (name,))
        return dict(rows.fetchall())

    def metric_by_difficulty(self, name: str) -> dict[int, dict[int, float]]:
        """{round: {difficulty: value}}."""
        out: dict[int, dict[int, float]] = {}
        for r, d, v in self.db.execute("SELECT round, difficulty, value FROM metrics WHERE name = ? AND "
                                       "difficulty IS NOT NULL ORDER BY round, difficulty", (name,)):
            out.setdefault(r, {})[d] = v
        return out

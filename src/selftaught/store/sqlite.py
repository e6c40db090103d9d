"""The run store: one SQLite file per run, the single source of truth of what happened.

Tables: ``run`` (recipe as validated, seed, version), ``rounds``, ``attempts``, ``scores``,
``selections``, ``metrics``, ``losses``, ``training_data`` (what each round added to the replay
mix) and ``checkpoints`` (file, sha256). Every write goes through this class, and each round lands
in one transaction with the checksums of its checkpoint, so a run killed at any instant holds only
whole rounds. Readers open the file read-only; one writer at a time holds ``run.lock``.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

SCHEMA_VERSION = 5  # 3: attempts record the worker and the weight version that drew them; 4: search trees;
# 5: a challenger's proposals
_UPGRADABLE = (3, 4)  # older schemas this one opens (a writer adds the tables they lack)
FILENAME = "run.sqlite"
LOCKFILE = "run.lock"

_SCHEMA = """
CREATE TABLE run (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE rounds (
    round INTEGER PRIMARY KEY, finished_at REAL NOT NULL, wall_s REAL NOT NULL, phases TEXT NOT NULL
);
CREATE TABLE attempts (
    id INTEGER PRIMARY KEY, round INTEGER NOT NULL, problem INTEGER NOT NULL, difficulty INTEGER NOT NULL,
    task TEXT NOT NULL, prompt TEXT NOT NULL, text TEXT NOT NULL, member INTEGER NOT NULL,
    sampler TEXT NOT NULL, equivalents TEXT NOT NULL, worker TEXT NOT NULL, version INTEGER NOT NULL
);
CREATE INDEX attempts_by_round ON attempts (round, id);
CREATE TABLE scores (
    attempt INTEGER NOT NULL, judge TEXT NOT NULL, value REAL, passed INTEGER NOT NULL, reason TEXT NOT NULL,
    PRIMARY KEY (attempt, judge)
) WITHOUT ROWID;
CREATE TABLE selections (
    attempt INTEGER PRIMARY KEY, round INTEGER NOT NULL, selector TEXT NOT NULL, kept INTEGER NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX selections_by_round ON selections (round, kept, attempt);
CREATE TABLE metrics (round INTEGER NOT NULL, name TEXT NOT NULL, difficulty INTEGER, value REAL);
CREATE INDEX metrics_by_name ON metrics (name, round);
CREATE INDEX metrics_by_round ON metrics (round);
CREATE TABLE losses (round INTEGER NOT NULL, member INTEGER NOT NULL, step INTEGER NOT NULL, value REAL);
CREATE INDEX losses_by_round ON losses (round);
CREATE TABLE training_data (round INTEGER PRIMARY KEY, difficulties TEXT NOT NULL, examples TEXT NOT NULL);
CREATE TABLE checkpoints (
    round INTEGER NOT NULL, path TEXT NOT NULL, sha256 TEXT NOT NULL, PRIMARY KEY (round, path)
);
""" + (_ADDED := """
CREATE TABLE IF NOT EXISTS nodes (
    round INTEGER NOT NULL, problem INTEGER NOT NULL, member INTEGER NOT NULL, node INTEGER NOT NULL,
    parent INTEGER, step TEXT NOT NULL, value REAL, visits INTEGER NOT NULL, q REAL, terminal INTEGER NOT NULL,
    PRIMARY KEY (round, problem, member, node)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS proposals (
    round INTEGER NOT NULL, id INTEGER NOT NULL, grp INTEGER NOT NULL, challenge TEXT NOT NULL, text TEXT NOT NULL,
    problem TEXT, difficulty INTEGER, reason TEXT NOT NULL, executor_answer TEXT, label TEXT, solve_rate REAL,
    reward REAL, PRIMARY KEY (round, id)
) WITHOUT ROWID;
""")

_PER_ROUND = ("rounds", "metrics", "losses", "training_data", "checkpoints", "nodes", "proposals")


class StoreError(ValueError):
    """A run directory that cannot be used as asked; the message names the path and what to do."""


class NotARunError(StoreError):
    """A directory that holds no selftaught run."""


class RunInUseError(StoreError):
    """Another live process is writing the run."""


@dataclass
class AttemptRecord:
    problem: int
    difficulty: int
    task: str
    prompt: str
    text: str
    member: int
    sampler: str
    equivalents: list[str]
    scores: list[tuple[str, float, bool, str]]  # (judge, value, passed, reason)
    kept: bool
    selector: str
    reason: str
    worker: str = "local"  # the process that drew it
    version: int = 0  # the version of its member's weights that drew it
    # a search's tree of its problem, (parent, step, value, visits, q, terminal) per node; kept
    # once per problem and member however many of its answers are attempts
    tree: list[tuple] | None = None


@dataclass
class RoundRecord:
    """Everything one round adds to the store; ``RunStore.commit_round`` writes it atomically."""

    round: int
    wall_s: float
    phases: dict[str, float]
    metrics: list[tuple[str, int | None, float]]  # (name, difficulty or None, value)
    losses: list[tuple[int, int, float]] = field(default_factory=list)  # (member, step, loss)
    attempts: list[AttemptRecord] = field(default_factory=list)
    training_data: tuple[Sequence[int], list[tuple[str, str]]] | None = None  # (difficulties, [(prompt, answer)])
    checkpoint: dict[str, str] = field(default_factory=dict)  # path relative to the run -> sha256
    # a challenger's proposals: (group, challenge prompt, reply, problem prompt or None, difficulty, why refused,
    # executor's answer, the solver's majority answer, solve rate, reward)
    proposals: list[tuple] = field(default_factory=list)


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _clean(v: float | None) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


class RunStore:
    """Open a run's store. ``create`` makes a new one holding ``info`` (recipe, seed, version);
    ``write`` takes the run's lock. Without either, the file is opened read-only and nothing in
    the run directory is changed."""

    def __init__(self, run_dir: str | Path, *, create: bool = False, write: bool = False, info: dict | None = None):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / FILENAME
        self._lock_fd: int | None = None
        self.upgrade = False  # an older store without the tables it gains when first written
        if create:
            if self.path.exists():
                raise StoreError(f"{self.run_dir}: already holds a run; choose another directory")
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self._lock()
            # Built under another name and renamed: a run killed while starting leaves either a
            # whole store (resume) or none (start again), never one without its recipe.
            new = self.path.with_name(FILENAME + ".new")
            new.unlink(missing_ok=True)
            db = sqlite3.connect(new)
            db.execute("PRAGMA journal_mode=WAL")
            with db:
                db.executescript(_SCHEMA)
                db.execute("INSERT INTO run VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                db.executemany("INSERT INTO run VALUES (?, ?)", [(k, json.dumps(v)) for k, v in (info or {}).items()])
            db.close()
            fsync_path(new)
            os.replace(new, self.path)
            fsync_path(self.run_dir)
            self.db = sqlite3.connect(self.path)
            self.db.execute("PRAGMA journal_mode=WAL")
            return
        if self.run_dir.is_file():
            raise NotARunError(f"{self.run_dir}: is a file, not a run directory")
        if not self.run_dir.is_dir():
            raise NotARunError(f"{self.run_dir}: no such directory")
        if not self.path.is_file():
            raise NotARunError(f"{self.run_dir}: not a selftaught run (no {FILENAME} in it)")
        self.db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        self._check_schema()
        if write:
            self._lock()
            self.db.close()
            self.db = sqlite3.connect(self.path)
            self.db.execute("PRAGMA journal_mode=WAL")
            if self.upgrade:
                with self.db:
                    self.db.executescript(_ADDED)
                    self.db.execute("UPDATE run SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))
                self.upgrade = False

    def _check_schema(self) -> None:
        try:
            row = self.db.execute("SELECT value FROM run WHERE key = 'schema_version'").fetchone()
        except sqlite3.DatabaseError as e:
            self.db.close()
            raise StoreError(f"{self.path}: not a readable run store ({e}); the file may be truncated or "
                             "damaged: restore it from a backup, or start the run again") from None
        if row is None:
            self.db.close()
            raise StoreError(f"{self.path}: store has no schema version; it was not written by selftaught")
        found = int(row[0])
        if found > SCHEMA_VERSION:
            self.db.close()
            raise StoreError(f"{self.path}: written by a newer selftaught (store schema {found}, this version "
                             f"reads up to {SCHEMA_VERSION}); upgrade selftaught to use this run")
        self.upgrade = found in _UPGRADABLE  # a writer adds the tables it lacks; a reader finds them empty
        if found < SCHEMA_VERSION and not self.upgrade:
            self.db.close()
            raise StoreError(f"{self.path}: store schema {found} is older than this selftaught's "
                             f"({SCHEMA_VERSION}); open it with the selftaught version that wrote it")

    def _lock(self) -> None:
        fd = os.open(self.run_dir / LOCKFILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released by the kernel if we die
        except BlockingIOError:
            pid = os.read(fd, 32).decode().strip() or "?"
            os.close(fd)
            raise RunInUseError(f"{self.run_dir}: run is in use by PID {pid}; wait for it to end or stop it "
                                "first") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock_fd = fd

    def close(self) -> None:
        self.db.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- writing -------------------------------------------------------------------------------

    def commit_round(self, record: RoundRecord, before_commit: Callable[[], None] | None = None) -> None:
        """All of the round lands, or none of it. ``before_commit`` runs inside the transaction
        (the fault-injection tests kill the process there)."""
        r = record.round
        with self.db:
            self._delete_rounds_from(r)
            self.db.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?)",
                                [(r, n, d, _clean(v)) for n, d, v in record.metrics])
            self.db.executemany("INSERT INTO losses VALUES (?, ?, ?, ?)",
                                [(r, m, s, _clean(v)) for m, s, v in record.losses])
            next_id = self.db.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM attempts").fetchone()[0]
            ids = range(next_id, next_id + len(record.attempts))
            self.db.executemany(
                "INSERT INTO attempts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(i, r, a.problem, a.difficulty, a.task, a.prompt, a.text, a.member, a.sampler,
                  json.dumps(a.equivalents), a.worker, a.version) for i, a in zip(ids, record.attempts)])
            if before_commit is not None:
                before_commit()
            self.db.executemany("INSERT INTO scores VALUES (?, ?, ?, ?, ?)",
                                [(i, j, _clean(v), int(p), why) for i, a in zip(ids, record.attempts)
                                 for j, v, p, why in a.scores])
            self.db.executemany("INSERT INTO selections VALUES (?, ?, ?, ?, ?)",
                                [(i, r, a.selector, int(a.kept), a.reason) for i, a in zip(ids, record.attempts)])
            trees = {(a.problem, a.member): a.tree for a in record.attempts if a.tree is not None}
            self.db.executemany("INSERT INTO nodes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                [(r, p, m, k, parent, step, _clean(v), visits, _clean(q), int(end))
                                 for (p, m), tree in trees.items()
                                 for k, (parent, step, v, visits, q, end) in enumerate(tree)])
            self.db.executemany("INSERT INTO proposals VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                [(r, k, *row[:8], _clean(row[8]), _clean(row[9]))
                                 for k, row in enumerate(record.proposals)])
            if record.training_data is not None:
                levels, examples = record.training_data
                self.db.execute("INSERT INTO training_data VALUES (?, ?, ?)",
                                (r, json.dumps(list(levels)), json.dumps(examples)))
            self.db.executemany("INSERT INTO checkpoints VALUES (?, ?, ?)",
                                [(r, p, h) for p, h in sorted(record.checkpoint.items())])
            self.db.execute("INSERT INTO rounds VALUES (?, ?, ?, ?)",
                            (r, time.time(), record.wall_s, json.dumps(record.phases)))

    def truncate_after(self, round_: int) -> None:
        """Forget every round after ``round_`` (resuming from an earlier round)."""
        with self.db:
            self._delete_rounds_from(round_ + 1)

    def _delete_rounds_from(self, round_: int) -> None:
        for table in _PER_ROUND:
            self.db.execute(f"DELETE FROM {table} WHERE round >= ?", (round_,))
        self.db.execute("DELETE FROM scores WHERE attempt IN (SELECT id FROM attempts WHERE round >= ?)", (round_,))
        self.db.execute("DELETE FROM selections WHERE round >= ?", (round_,))
        self.db.execute("DELETE FROM attempts WHERE round >= ?", (round_,))

    def change_limits(self, recipe: dict, changes: dict, after_round: int) -> None:
        """A resumed run given new ``run.*`` limits: the stored recipe becomes the one it follows, and
        ``limit_changes`` keeps what changed, after which round and when."""
        history = self.run_info().get("limit_changes", [])
        history.append({"after_round": after_round, "set": changes, "at": time.time()})
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO run VALUES ('recipe', ?)", (json.dumps(recipe),))
            self.db.execute("INSERT OR REPLACE INTO run VALUES ('limit_changes', ?)", (json.dumps(history),))

    # ---- reading -------------------------------------------------------------------------------

    def run_info(self) -> dict:
        return {k: json.loads(v) if k != "schema_version" else int(v)
                for k, v in self.db.execute("SELECT key, value FROM run")}

    def rounds(self) -> list[dict]:
        rows = self.db.execute("SELECT round, wall_s, phases FROM rounds ORDER BY round").fetchall()
        return [{"round": r, "wall_s": w, "phases": json.loads(p)} for r, w, p in rows]

    def last_round(self) -> int | None:
        return self.db.execute("SELECT MAX(round) FROM rounds").fetchone()[0]

    def metric(self, name: str) -> dict[int, float | None]:
        """Per-round values of a metric without difficulty."""
        rows = self.db.execute("SELECT round, value FROM metrics WHERE name = ? AND difficulty IS NULL "
                               "ORDER BY round", (name,))
        return dict(rows.fetchall())

    def metric_names(self) -> list[str]:
        return [n for (n,) in self.db.execute("SELECT DISTINCT name FROM metrics ORDER BY name")]

    def metric_by_difficulty(self, name: str) -> dict[int, dict[int, float]]:
        """{round: {difficulty: value}}."""
        out: dict[int, dict[int, float]] = {}
        for r, d, v in self.db.execute("SELECT round, difficulty, value FROM metrics WHERE name = ? AND "
                                       "difficulty IS NOT NULL ORDER BY round, difficulty", (name,)):
            out.setdefault(r, {})[d] = v
        return out

    def losses(self) -> list[tuple[int, int, int, float]]:
        """(round, member, step, loss) in order."""
        return self.db.execute("SELECT round, member, step, value FROM losses ORDER BY round, member, step").fetchall()

    def training_data(self, up_to_round: int) -> list[tuple[int, tuple[int, ...], list[tuple[str, str]]]]:
        rows = self.db.execute("SELECT round, difficulties, examples FROM training_data WHERE round <= ? "
                               "ORDER BY round", (up_to_round,))
        return [(r, tuple(json.loads(d)), [tuple(e) for e in json.loads(x)]) for r, d, x in rows]

    def checkpoint_files(self, round_: int) -> dict[str, str]:
        return dict(self.db.execute("SELECT path, sha256 FROM checkpoints WHERE round = ? ORDER BY path", (round_,)))

    # ---- lineage ---------------------------------------------------------------------------------

    # Both orders come straight off an index: (round, id) on attempts, (round, kept, attempt) on
    # selections, so a page of a round with a million attempts costs what a page costs.
    _PAGE = ("id", "round", "problem", "difficulty", "prompt", "text", "member", "worker", "version", "kept", "reason")
    _SELECT = ("SELECT a.id, a.round, a.problem, a.difficulty, a.prompt, a.text, a.member, a.worker, a.version, "
               "s.kept, s.reason ")
    _ALL = _SELECT + ("FROM attempts a JOIN selections s ON s.attempt = a.id WHERE a.round = ? "
                      "ORDER BY a.id LIMIT ?")
    _BY_VERDICT = _SELECT + ("FROM selections s JOIN attempts a ON a.id = s.attempt WHERE s.round = ? "
                             "AND s.kept = ? ORDER BY s.attempt LIMIT ?")

    def attempts(self, round_: int, kept: bool | None = None, limit: int = 20) -> list[dict]:
        sql, args = self._attempts_sql(round_, kept, limit)
        rows = [dict(zip(self._PAGE, row)) for row in self.db.execute(sql, args)]
        for row in rows:
            row["kept"] = bool(row["kept"])
            row["scores"] = self._scores(row["id"])
        return rows

    def _attempts_sql(self, round_: int, kept: bool | None, limit: int) -> tuple[str, tuple]:
        if kept is None:
            return self._ALL, (round_, limit)
        return self._BY_VERDICT, (round_, int(kept), limit)

    def query_plan(self, round_: int, kept: bool | None = None) -> str:
        sql, args = self._attempts_sql(round_, kept, 10)
        return "\n".join(row[-1] for row in self.db.execute("EXPLAIN QUERY PLAN " + sql, args))

    def attempt(self, attempt_id: int) -> dict | None:
        row = self.db.execute(
            "SELECT a.id, a.round, a.problem, a.difficulty, a.task, a.prompt, a.text, a.member, a.sampler, "
            "a.equivalents, a.worker, a.version, s.selector, s.kept, s.reason FROM attempts a LEFT JOIN selections s "
            "ON s.attempt = a.id WHERE a.id = ?", (attempt_id,)).fetchone()
        if row is None:
            return None
        cols = ("id", "round", "problem", "difficulty", "task", "prompt", "text", "member", "sampler",
                "equivalents", "worker", "version", "selector", "kept", "reason")
        out = dict(zip(cols, row))
        out["equivalents"] = json.loads(out["equivalents"])
        out["kept"] = bool(out["kept"])
        out["scores"] = self._scores(attempt_id)
        return out

    def tree(self, round_: int, problem: int, member: int) -> list[dict]:
        """The search tree of a problem in a round (empty where its sampler did not search), in
        node order: the root first, each node after its parent."""
        if not self._has("nodes"):
            return []
        rows = self.db.execute("SELECT node, parent, step, value, visits, q, terminal FROM nodes WHERE round = ? "
                               "AND problem = ? AND member = ? ORDER BY node", (round_, problem, member))
        return [{"node": k, "parent": parent, "step": step, "value": v, "visits": visits, "q": q,
                 "terminal": bool(end)} for k, parent, step, v, visits, q, end in rows]

    def proposals(self, round_: int) -> list[dict]:
        """A challenger's proposals of a round with their fate (empty where the curriculum was given
        its problems)."""
        if not self._has("proposals"):
            return []
        cols = ("id", "group", "challenge", "text", "problem", "difficulty", "reason", "executor_answer", "label",
                "solve_rate", "reward")
        rows = self.db.execute("SELECT id, grp, challenge, text, problem, difficulty, reason, executor_answer, label, "
                               "solve_rate, reward FROM proposals WHERE round = ? ORDER BY id", (round_,))
        return [dict(zip(cols, row)) for row in rows]

    def _has(self, table: str) -> bool:
        """Whether the store has ``table`` (an older schema opened read-only may not)."""
        return self.db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
                               ).fetchone() is not None

    def _scores(self, attempt_id: int) -> list[dict]:
        rows = self.db.execute("SELECT judge, value, passed, reason FROM scores WHERE attempt = ? ORDER BY judge",
                               (attempt_id,))
        return [{"judge": j, "value": v, "passed": bool(p), "reason": why} for j, v, p, why in rows]

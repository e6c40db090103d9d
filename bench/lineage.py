"""Lineage queries on a store with a million attempts: ``selftaught inspect`` must stay instant.

    python bench/lineage.py [--attempts 1000000] [--rounds 10]

Fills a run store through its own ``commit_round`` (three judge scores and one selection per
attempt), then times a page of one round (all / kept / rejected) and one attempt in full, and
prints each query's plan.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time

from selftaught.store import AttemptRecord, RoundRecord, RunStore


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--attempts", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args()
    rng = random.Random(0)
    run_dir = tempfile.mkdtemp(prefix="inspect-bench-")
    per_round = args.attempts // args.rounds
    t = time.perf_counter()
    with RunStore(run_dir, create=True, info={"seed": 0}) as store:
        for r in range(1, args.rounds + 1):
            records = []
            for i in range(per_round):
                a, b = rng.randrange(10**8), rng.randrange(10**8)
                text = str(a + b)[::-1] if rng.random() < 0.7 else str(rng.randrange(10**9))
                scores = [("length", 1.0, True, "length 9, expected 9"),
                          ("consistency", 1.0, rng.random() < 0.8, "1/1 equivalent phrasings agree"),
                          ("majority-vote", 0.6, rng.random() < 0.7, "3/5 members agree")]
                kept = all(p for _, _, p, _ in scores)
                records.append(AttemptRecord(i, 8, "reversed-addition", f"{a}+{b}=", text, i % 5, "greedy", [text],
                                             scores, kept, "all-judges", "passed every judge" if kept else "rejected"))
            store.commit_round(RoundRecord(r, 0.0, {}, [("reach", None, 8.0)], attempts=records))
    fill = time.perf_counter() - t
    print(f"filled {per_round * args.rounds:,} attempts ({3 * per_round * args.rounds:,} scores) in {fill:.1f}s")

    with RunStore(run_dir) as store:
        middle = args.rounds // 2 + 1
        for label, kept in (("all", None), ("kept", True), ("rejected", False)):
            t = time.perf_counter()
            rows = store.attempts(middle, kept, limit=20)
            ms = (time.perf_counter() - t) * 1000
            print(f"round {middle}, {label:>8}, 20 rows: {ms:6.2f} ms   plan: {store.query_plan(middle, kept)!r}")
        some = rows[0]["id"]
        t = time.perf_counter()
        store.attempt(some)
        print(f"attempt {some} in full: {(time.perf_counter() - t) * 1000:.2f} ms")


if __name__ == "__main__":
    main()

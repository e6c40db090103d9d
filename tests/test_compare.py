"""``selftaught compare``: runs side by side, their pass@1 against minutes and sampled tokens."""

import json
from pathlib import Path

import pytest

from selftaught.compare import COLUMNS, cells, read_runs
from selftaught.report import html_table
from selftaught.store import RunStore
from test_bad_input import changed, invoke, one_line_exit_2, snapshot
from test_lineage_report import in_chromium

# small enough to take a second or two, trained enough that pass@1 and its standard error are not 0
TINY = ["learner.seed_steps=300", "learner.steps_per_round=5", "learner.batch_size=32", "run.rounds=2",
        "curriculum.problems_per_round=32", "model.n_layers=1", "model.d_model=32", "model.n_heads=4",
        "model.d_ff=64", "task.seed_examples=300", "task.seed_max_difficulty=2", "monitor.eval_per_difficulty=16",
        "monitor.eval_max_difficulty=3"]


def tiny_run(out: Path, seed: int, *sets: str) -> Path:
    args = ["run", "sit-addition", "--out", str(out), "--seed", str(seed)]
    for s in [*TINY, *sets]:
        args += ["--set", s]
    result = invoke(args)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> list[Path]:
    """Two runs of one recipe (seeds 3 and 4), and a third named apart with a smaller held-out set."""
    root = tmp_path_factory.mktemp("compare")
    return [tiny_run(root / "a", 3), tiny_run(root / "b", 4),
            tiny_run(root / "c", 3, "run.name=small-eval", "monitor.eval_per_difficulty=8")]


def table_rows(output: str) -> list[list[str]]:
    """The body rows of a rich table as printed: the cells of each line between │ marks."""
    return [[c.strip() for c in line.strip("│").split("│")] for line in output.splitlines() if line.startswith("│")]


def test_the_table_is_the_summary_and_the_stored_tokens(runs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the page goes to ./compare.html unless --out says otherwise
    result = invoke(["compare", *map(str, runs[:2])])
    assert result.exit_code == 0, result.output
    comparison = read_runs(runs[:2])
    assert list(comparison.runs) == ["sit-addition · a", "sit-addition · b"]  # one recipe name: the directory's too
    assert comparison.notes == []  # the same held-out set, drawn for each seed
    assert table_rows(result.stdout) == [cells(r) for r in comparison.rows]
    for label, run in comparison.runs.items():
        rows = comparison.by_run()[label]
        summary = json.loads(invoke(["summary", str(run), "--json"]).stdout)
        assert [r.round for r in rows] == [r["round"] for r in summary["rounds"]] == [0, 1, 2]
        assert [(r.pass1, r.se) for r in rows] == [(s["pass@1"], s["pass@1_se"]) for s in summary["rounds"]]
        assert any(r.pass1 and r.se for r in rows)  # figures worth comparing, not zeros
        with RunStore(run) as store:
            per_round = store.metric("sampled_tokens")
        assert 0 not in per_round and per_round[1] > 0  # the seed round samples nothing
        assert [r.tokens for r in rows] == [sum(per_round.get(k, 0.0) for k in range(r.round + 1)) for r in rows]
        walls = [s["wall_s"] for s in summary["rounds"]]
        assert [r.minutes for r in rows] == pytest.approx([sum(walls[:k + 1]) / 60 for k in range(len(walls))])
    assert "wrote compare.html" in result.stdout and (tmp_path / "compare.html").is_file()


def test_the_page_shows_both_panels_the_table_and_a_note_where_held_out_sets_differ(runs, tmp_path):
    page_file = tmp_path / "compare.html"
    result = invoke(["compare", *map(str, runs), "--out", str(page_file)])
    assert result.exit_code == 0, result.output
    note = "held-out sets differ (monitor.eval_per_difficulty)"
    assert note in " ".join(result.stdout.split())
    comparison = read_runs(runs)
    assert list(comparison.runs) == ["sit-addition · a", "sit-addition · b", "small-eval"]
    page_html = page_file.read_text()
    assert page_html.count("data:image/png;base64,") == 2
    assert "src='http" not in page_html and 'src="http' not in page_html  # self-contained
    assert html_table(COLUMNS, [cells(r) for r in comparison.rows]) in page_html and note in page_html
    shown = in_chromium(page_file)
    assert len(shown["images"]) == 2 and all(done and w > 100 and h > 100 for done, w, h in shown["images"])
    assert shown["titles"] == ["Held-out pass@1 against wall time", "Held-out pass@1 against sampled tokens",
                               "By round"]
    assert "small-eval" in shown["text"] and note in shown["text"]


def test_what_is_not_a_run_is_refused_in_one_line_and_nothing_is_written(runs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where the page would go by default
    empty = tmp_path / "empty"
    empty.mkdir()
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "run.sqlite").write_bytes(b"not a database" * 100)
    before = snapshot(tmp_path)
    for bad, words in ((empty, ["not a selftaught run"]), (tmp_path / "missing", ["no such directory"]),
                       (damaged, ["not a readable run store"])):
        one_line_exit_2(invoke(["compare", str(runs[0]), str(bad)]), str(bad), *words)
    one_line_exit_2(invoke(["compare", str(runs[0]), str(runs[0])]), str(runs[0]), "given twice")
    one_line_exit_2(invoke(["compare"]), "Missing argument")
    assert changed(before, snapshot(tmp_path)) == []

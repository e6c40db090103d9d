"""Lineage (why was an attempt kept?), the HTML report in a real browser, and TensorBoard scalars."""

import shutil
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from selftaught.cli import app
from selftaught.engine import Run
from selftaught.recipe import load_recipe
from selftaught.store import RunStore

runner = CliRunner()

RECIPE = """
[run]
rounds = 2
seed = 3
time_budget_minutes = 0
[task]
name = "reversed-addition"
seed_max_difficulty = 3
seed_examples = 300
[model]
n_layers = 1
d_model = 32
n_heads = 4
d_ff = 64
members = 2
[sampler]
type = "temperature"
temperature = 1.0
[[judges]]
type = "length"
[[judges]]
type = "majority-vote"
min_agreement = 0.5
[learner]
seed_steps = 40
steps_per_round = 10
batch_size = 32
[curriculum]
problems_per_round = 64
gate = 0.0
[monitor]
eval_per_difficulty = 8
"""


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("lineage")
    (root / "tiny.toml").write_text(RECIPE)
    Run(load_recipe(root / "tiny.toml"), root / "run").execute()
    return root / "run"


def test_every_kept_attempt_passed_every_judge_and_every_rejection_names_its_judge(run_dir):
    with RunStore(run_dir) as store:
        for round_ in (1, 2):
            kept = store.attempts(round_, kept=True, limit=10_000)
            rejected = store.attempts(round_, kept=False, limit=10_000)
            everything = store.attempts(round_, limit=10_000)
            assert kept and rejected, "the fixture must keep some attempts and reject others"
            assert len(kept) + len(rejected) == len(everything) == store.metric("labels_made")[round_]
            for a in kept:
                assert [s["judge"] for s in a["scores"]] == ["length", "majority-vote"]
                assert all(s["passed"] for s in a["scores"]) and a["reason"].startswith("passed every judge")
            for a in rejected:
                failed = [s["judge"] for s in a["scores"] if not s["passed"]]
                assert failed and a["reason"] == "rejected by " + ", ".join(failed)
            # a problem is kept (labelled) when at least one of its attempts was kept
            assert len({a["problem"] for a in kept}) == store.metric("labels_kept")[round_]
            # the length judge's verdict agrees with the stored text
            for a in everything:
                length = next(s for s in a["scores"] if s["judge"] == "length")
                want = int(length["reason"].rsplit(" ", 1)[1])
                assert length["passed"] == (len(a["text"]) == want)
            # limit and order
            assert [a["id"] for a in store.attempts(round_, limit=3)] == [a["id"] for a in everything[:3]]


def test_inspect_lists_a_round_and_explains_one_attempt(run_dir):
    result = runner.invoke(app, ["inspect", str(run_dir), "--round", "1", "--rejected", "--limit", "5"])
    assert result.exit_code == 0, result.output
    listing = " ".join(result.output.split())  # the title wraps where the run's path is long
    assert "5 rejected attempts" in listing and "rejected by" in listing
    with RunStore(run_dir) as store:
        attempt = store.attempts(2, kept=True, limit=1)[0]
    result = runner.invoke(app, ["inspect", str(run_dir), "--attempt", str(attempt["id"])])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert f"attempt {attempt['id']}" in text and "round 2" in text and attempt["prompt"] in text
    for s in attempt["scores"]:
        assert s["reason"] in text
    assert "kept" in text and "passed every judge" in text
    assert f"drawn by {attempt['worker']} · weights v{attempt['version']}" in text and attempt["version"] > 0
    missing = runner.invoke(app, ["inspect", str(run_dir), "--attempt", "999999"])
    assert missing.exit_code == 2 and "no attempt 999999" in missing.output
    both = runner.invoke(app, ["inspect", str(run_dir), "--round", "1", "--kept", "--rejected"])
    assert both.exit_code == 2


def test_lineage_queries_use_indexes_not_scans(run_dir):
    with RunStore(run_dir) as store:
        for kept in (None, True, False):
            plan = store.query_plan(1, kept)
            assert plan and all(line.startswith("SEARCH") for line in plan.splitlines()), plan


def test_report_renders_every_plot_in_a_real_browser(run_dir, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (`make test` installs it where it can)")
    playwright = pytest.importorskip("playwright.sync_api")
    result = runner.invoke(app, ["report", str(run_dir), "--out", str(tmp_path / "report.html")])
    assert result.exit_code == 0, result.output
    page_html = (tmp_path / "report.html").read_text()
    assert page_html.count("data:image/png;base64,") == 7
    assert "src='http" not in page_html and 'src="http' not in page_html  # self-contained
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto((tmp_path / "report.html").as_uri())
        page.wait_for_load_state("load")
        sizes = page.evaluate("Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight])")
        titles = page.evaluate("Array.from(document.querySelectorAll('h2')).map(h => h.textContent)")
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        browser.close()
    assert len(sizes) == 7 and all(done and w > 100 and h > 100 for done, w, h in sizes), sizes
    assert "Accuracy by difficulty" in titles and "True accuracy of kept labels" in titles
    assert (tmp_path / "report.png").stat().st_size > 20_000


def test_tensorboard_scalars_match_the_store(run_dir):
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    acc = event_accumulator.EventAccumulator(str(run_dir / "tensorboard"))
    acc.Reload()
    with RunStore(run_dir) as store:
        for name in ("reach", "labels_kept", "loss"):
            stored = {r: v for r, v in store.metric(name).items() if v is not None}
            logged = {e.step: e.value for e in acc.Scalars(name)}
            assert logged.keys() == stored.keys()
            assert all(abs(logged[r] - stored[r]) < 1e-6 * max(1, abs(stored[r])) for r in stored)
        accuracy = store.metric_by_difficulty("accuracy")
    tags = acc.Tags()["scalars"]
    levels = Counter(d for acc_r in accuracy.values() for d in acc_r)
    assert all(f"accuracy/difficulty-{d:02d}" in tags for d in levels)

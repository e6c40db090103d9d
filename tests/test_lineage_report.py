"""Lineage (why was an attempt kept?), the HTML report in a real browser, and TensorBoard scalars."""

import json
import math
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


def in_chromium(page_file: Path) -> dict:
    """The report as headless Chromium renders it: each image's (loaded, width, height), the h2
    titles, the page's text, and a screenshot beside the file."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (`make test` installs it where it can)")
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(page_file.as_uri())
        page.wait_for_load_state("load")
        shown = {"images": page.evaluate("Array.from(document.images).map(i => [i.complete, i.naturalWidth, "
                                         "i.naturalHeight])"),
                 "titles": page.evaluate("Array.from(document.querySelectorAll('h2')).map(h => h.textContent)"),
                 "text": page.evaluate("document.body.innerText")}
        page.screenshot(path=str(page_file.with_suffix(".png")), full_page=True)
        browser.close()
    return shown


def test_report_renders_every_plot_in_a_real_browser(run_dir, tmp_path):
    result = runner.invoke(app, ["report", str(run_dir), "--out", str(tmp_path / "report.html")])
    assert result.exit_code == 0, result.output
    with RunStore(run_dir) as store:  # the reach plot is there only where the curriculum moved
        moved = len(set(store.metric("frontier").values())) > 1 or len(set(store.metric("reach").values())) > 1
    plots = 8 if moved else 7
    page_html = (tmp_path / "report.html").read_text()
    assert page_html.count("data:image/png;base64,") == plots
    assert "src='http" not in page_html and 'src="http' not in page_html  # self-contained
    shown = in_chromium(tmp_path / "report.html")
    assert len(shown["images"]) == plots and all(done and w > 100 and h > 100 for done, w, h in shown["images"])
    assert "Held-out pass@1" in shown["titles"] and "True accuracy of kept labels" in shown["titles"]
    assert ("Reach per round" in shown["titles"]) == moved
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


@pytest.mark.slow(8)
def test_a_real_model_report_leads_with_pass_at_1_and_its_standard_error(tmp_path):
    """A run of the tiny Llama through the Hugging Face path: the report's header names the model
    and its size, and its headline holds pass@1 per round with standard errors computed here from
    the store's accuracies and problem counts; rendering warns of nothing (warnings are errors)."""
    pytest.importorskip("transformers")
    from test_hf_policy import RECIPE as HF_RECIPE
    from test_hf_policy import build_tiny

    model = build_tiny(tmp_path / "tiny")
    (tmp_path / "hf.toml").write_text(HF_RECIPE.format(path=model))
    Run(load_recipe(tmp_path / "hf.toml"), tmp_path / "run").execute()
    result = runner.invoke(app, ["report", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    with RunStore(tmp_path / "run") as store:
        accuracy = store.metric_by_difficulty("accuracy")
        counts = store.metric_by_difficulty("eval_problems")
        parameters, precision = store.run_info()["parameters"], store.run_info()["precision"]
    expected = {}
    for r, acc in accuracy.items():
        n = sum(counts[r][d] for d in acc)
        p = sum(acc[d] * counts[r][d] for d in acc) / n
        se = (sum(counts[r][d] * acc[d] * (1 - acc[d]) for d in acc)) ** 0.5 / n
        expected[r] = f"{p:.3f} ± {se:.3f}"
    shown = in_chromium(tmp_path / "run" / "report.html")
    text = shown["text"]
    assert shown["titles"][:2] == ["What improved", "Held-out pass@1"]
    assert parameters < 1e6  # written in thousands
    assert precision in ("fp32", "bf16-mixed")
    assert f"model\ttiny (Hugging Face) · {parameters / 1e3:.1f} k parameters · {precision}" in text
    assert "reversed-addition" in text and "majority-vote" in text and "cores" in text
    first, last = min(expected), max(expected)
    assert f"Held-out pass@1 went from {expected[first]} (round {first}) to {expected[last]} (round {last})" in text
    for r, cell in expected.items():
        assert f"{r}\t{cell}" in text  # the round's row of the headline table
    d, a = next(iter(accuracy[last].items()))
    n = counts[last][d]
    assert f"{a:.3f} ± {(a * (1 - a) / n) ** 0.5:.3f}" in text  # by difficulty, its own error
    summary = runner.invoke(app, ["summary", str(tmp_path / "run"), "--json"])
    figures = json.loads(summary.stdout)
    assert f"{figures['pass@1']:.3f} ± {figures['pass@1_se']:.3f}" == expected[last]


def test_the_pass_at_1_standard_error_is_the_spread_of_pass_at_1_over_redrawn_held_out_sets():
    """By simulation: each difficulty's held-out problems redrawn many times (accuracies and counts
    of a real report's shape); the count-weighted pass@1 spreads as wide as ``pass1_with_error``
    says, and each difficulty's accuracy as ``standard_error`` says."""
    import random
    import statistics

    from selftaught.monitor import pass1_with_error, standard_error

    accuracy, counts = {1: 0.9, 2: 0.55, 3: 0.2}, {1: 64, 2: 64, 3: 32}
    p, se = pass1_with_error(accuracy, counts)
    assert p == pytest.approx(sum(accuracy[d] * counts[d] for d in accuracy) / 160)
    rng = random.Random(0)
    draws = [sum(sum(rng.random() < accuracy[d] for _ in range(counts[d])) for d in accuracy) / 160
             for _ in range(3000)]
    assert abs(statistics.stdev(draws) - se) < 0.05 * se
    one = [sum(rng.random() < 0.55 for _ in range(64)) / 64 for _ in range(3000)]
    assert abs(statistics.stdev(one) - standard_error(0.55, 64)) < 0.05 * standard_error(0.55, 64)
    assert all(math.isnan(v) for v in pass1_with_error(accuracy, {1: 64}))  # a store without every count

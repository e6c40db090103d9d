"""The self-improvement loop. One round reads top to bottom in ``Run.improve``:
propose, sample, judge, select, learn, measure, commit."""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import torch

from selftaught import __version__
from selftaught.curriculum import EasyToHard
from selftaught.judge import build_judge
from selftaught.learn import Dataset, Example, ReplayMix, SFTSettings, make_optimizer, sft_steps
from selftaught.models import Transformer, TransformerConfig
from selftaught.monitor import accuracy_by_difficulty, held_out_set, label_precision, reach
from selftaught.recipe import Recipe, to_dict, to_toml
from selftaught.sample import sample_attempts
from selftaught.select import keep_if_all_judges_pass
from selftaught.store import RunStore
from selftaught.tasks import CharTokenizer, load_task


@dataclass
class RoundReport:
    round: int
    frontier: int
    accuracy: dict[int, float]
    reach: int
    loss: float
    made: int = 0
    kept: int = 0
    rejected_by: dict[str, int] = field(default_factory=dict)
    kept_precision: float = float("nan")
    keep_rate: dict[int, float] = field(default_factory=dict)
    phases: dict[str, float] = field(default_factory=dict)
    wall_s: float = 0.0


class Phase(Protocol):
    def advance(self, n: int = 1) -> None: ...


class Reporter(Protocol):
    """Where the loop says what it is doing (rich progress bars in the CLI, nothing in tests)."""

    def phase(self, round_: int, name: str, total: int) -> AbstractContextManager[Phase]: ...

    def round_done(self, report: RoundReport) -> None: ...


class SilentReporter:
    class _Nothing:
        def advance(self, n: int = 1) -> None:
            pass

    @contextmanager
    def phase(self, round_: int, name: str, total: int) -> Iterator[Phase]:
        yield self._Nothing()

    def round_done(self, report: RoundReport) -> None:
        pass


class Run:
    def __init__(self, recipe: Recipe, out_dir: str | Path, reporter: Reporter | None = None):
        self.recipe = recipe
        self.out_dir = Path(out_dir)
        self.reporter = reporter or SilentReporter()
        self.task = load_task(recipe.task.name)
        self.tokenizer = CharTokenizer(self.task.alphabet)
        seed = recipe.run.seed
        self.rng = random.Random(f"{seed}-loop")
        self.generator = torch.Generator().manual_seed(seed)
        m = recipe.model
        cfg = TransformerConfig(vocab_size=self.tokenizer.vocab_size, n_layers=m.n_layers, d_model=m.d_model,
                                n_heads=m.n_heads, d_ff=m.d_ff, max_len=m.max_len, positional=m.positional)
        self.members = []
        for i in range(m.members):
            torch.manual_seed(seed * 1000 + i)  # independently initialised members
            self.members.append(Transformer(cfg).to(m.device).eval())
        lr = recipe.learner
        self.sft = SFTSettings(lr=lr.lr, batch_size=lr.batch_size, weight_decay=lr.weight_decay,
                               warmup_steps=lr.warmup_steps, decay_fraction=lr.decay_fraction)
        self.optimizers = [make_optimizer(model, self.sft) for model in self.members]
        self.mixes = [ReplayMix(lr.newest_share) for _ in self.members]
        c = recipe.curriculum
        self.curriculum = EasyToHard(recipe.task.seed_max_difficulty, c.problems_per_round, c.span, c.gate)
        self.judges = [build_judge(j) for j in recipe.judges]
        mon = recipe.monitor
        self.eval_set = held_out_set(self.task, seed, mon.eval_per_difficulty, mon.eval_max_difficulty)
        self.reports: list[RoundReport] = []

    # ---- the loop --------------------------------------------------------------------------------

    def execute(self) -> list[RoundReport]:
        r = self.recipe.run
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / "recipe.toml").write_text(to_toml(to_dict(self.recipe)))
        started = time.perf_counter()
        with RunStore(self.out_dir, create=True) as store:
            store.write_run({"recipe": to_dict(self.recipe), "seed": r.seed, "version": __version__,
                             "parameters": self.members[0].num_params()})
            self._finish(store, self.seed_round())
            for round_ in range(1, r.rounds + 1):
                # A round that would end past the budget is not started: the last one predicts its length.
                projected = time.perf_counter() - started + self.reports[-1].wall_s * (round_ > 1)
                if r.time_budget_minutes and projected >= 60 * r.time_budget_minutes:
                    break
                if r.stop_at_reach and self.reports[-1].reach >= r.stop_at_reach:
                    break
                self._finish(store, self.improve(round_))
        return self.reports

    def seed_round(self) -> RoundReport:
        """Round 0: supervised training on ground-truth labels of the easy difficulties."""
        t = self.recipe.task
        phases: dict[str, float] = {}
        start = time.perf_counter()
        levels = tuple(range(t.seed_min_difficulty, t.seed_max_difficulty + 1))
        rng = random.Random(f"{self.recipe.run.seed}-seed-data")
        problems = [self.task.sample(rng, rng.choice(levels)) for _ in range(t.seed_examples)]
        seed_data = Dataset([Example(p.prompt, self.task.target(p)) for p in problems], levels)
        for mix in self.mixes:
            mix.add(seed_data)
        loss = self._learn(0, self.recipe.learner.seed_steps, phases)
        accuracy = self._measure(0, phases)
        return RoundReport(0, self.curriculum.frontier, accuracy, reach(accuracy, self.recipe.monitor.threshold),
                           loss, phases=phases, wall_s=time.perf_counter() - start)

    def improve(self, round_: int) -> RoundReport:
        """One self-improvement round. Ground truth is touched only by ``_measure`` and the audit."""
        phases: dict[str, float] = {}
        start = time.perf_counter()

        problems = self.curriculum.propose(self.task, self.rng)

        tick = time.perf_counter()
        n_prompts = len(self.members) * sum(1 + len(self.task.equivalents(p)) for p in problems)
        with self.reporter.phase(round_, "sample", n_prompts) as bar:
            attempts = sample_attempts(self.members, self.tokenizer, self.task, problems,
                                       temperature=self._temperature(), top_k=self.recipe.sampler.top_k,
                                       batch_size=self.recipe.sampler.batch_size, generator=self.generator,
                                       on_batch=bar.advance)
        phases["sample"] = time.perf_counter() - tick

        tick = time.perf_counter()
        scores = {j.name: j.score(self.task, attempts) for j in self.judges}
        selection = keep_if_all_judges_pass(attempts, scores)
        phases["judge"] = time.perf_counter() - tick

        per_level = Counter(p.difficulty for p in problems)
        kept_level = Counter(problems[i].difficulty for i in selection.kept_problems)
        keep_rate = {d: kept_level[d] / n for d, n in sorted(per_level.items())}
        levels = tuple(sorted(kept_level))
        for mix in self.mixes:
            mix.add(Dataset(selection.examples, levels))
        loss = self._learn(round_, self.recipe.learner.steps_per_round, phases) if selection.examples else float("nan")
        self.curriculum.update(keep_rate)

        accuracy = self._measure(round_, phases)
        precision = label_precision(self.task, [problems[i] for i in selection.kept_problems],
                                    [e.answer for e in selection.examples])
        return RoundReport(round_, self.curriculum.frontier, accuracy, reach(accuracy, self.recipe.monitor.threshold),
                           loss, made=len(attempts), kept=len(selection.examples), rejected_by=selection.rejected_by,
                           kept_precision=precision, keep_rate=keep_rate, phases=phases,
                           wall_s=time.perf_counter() - start)

    # ---- phases ----------------------------------------------------------------------------------

    def _temperature(self) -> float:
        s = self.recipe.sampler
        return 0.0 if s.type == "greedy" else s.temperature

    def _learn(self, round_: int, steps: int, phases: dict[str, float]) -> float:
        tick = time.perf_counter()
        losses = []
        with self.reporter.phase(round_, "learn", steps * len(self.members)) as bar:
            for i, (model, opt, mix) in enumerate(zip(self.members, self.optimizers, self.mixes)):
                rng = random.Random(f"{self.recipe.run.seed}-learn-{round_}-{i}")
                losses += sft_steps(model, opt, self.tokenizer, mix.draw, steps, self.sft, rng,
                                    on_step=lambda s, loss: bar.advance())[-max(1, steps // 10):]
        phases["learn"] = time.perf_counter() - tick
        return sum(losses) / len(losses) if losses else float("nan")

    def _measure(self, round_: int, phases: dict[str, float]) -> dict[int, float]:
        tick = time.perf_counter()
        mon = self.recipe.monitor
        top = min(mon.eval_max_difficulty, self.curriculum.frontier + mon.eval_ahead)
        problems = {d: self.eval_set[d] for d in range(1, top + 1)}
        with self.reporter.phase(round_, "evaluate", sum(len(p) for p in problems.values())) as bar:
            accuracy = accuracy_by_difficulty(self.members[0], self.tokenizer, self.task, problems,
                                              self.recipe.sampler.batch_size, on_batch=bar.advance)
        phases["evaluate"] = time.perf_counter() - tick
        return accuracy

    def _finish(self, store: RunStore, report: RoundReport) -> None:
        for i, model in enumerate(self.members):
            model.save(self.out_dir / "checkpoints" / f"round-{report.round}" / f"member-{i}")
        metrics = [("accuracy", d, a) for d, a in report.accuracy.items()]
        metrics += [("keep_rate", d, v) for d, v in report.keep_rate.items()]
        metrics += [("reach", None, report.reach), ("frontier", None, report.frontier), ("loss", None, report.loss),
                    ("labels_made", None, report.made), ("labels_kept", None, report.kept),
                    ("kept_label_precision", None, report.kept_precision)]
        metrics += [(f"rejected_by_{name}", None, n) for name, n in report.rejected_by.items()]
        store.commit_round(report.round, metrics, report.wall_s, report.phases)
        self.reports.append(report)
        self.reporter.round_done(report)

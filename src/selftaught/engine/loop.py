"""The self-improvement loop. One round reads top to bottom in ``Run.improve``: propose, sample,
judge, select, learn, measure, commit. It names no method: every stage is a part the recipe names
(``selftaught.registry``), reached through its protocol, and what a method does beyond the
round's stages lives in its parts (B-STaR's probe in its selector, the verdict's training in its
judge, SCoRe's warm-up rounds and on-policy sampling in the GRPO learner).

``Run.execute`` starts a run; ``Run.resume`` picks one up from its last committed round (or an
earlier one) with every random state restored, so that it ends exactly where an uninterrupted run
would have.
"""

from __future__ import annotations

import random
import shutil
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, closing, contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from selftaught import __version__, faults
from selftaught.context import Context, Phase, Tools
from selftaught.curriculum import Outcome, WritesProblems
from selftaught.engine.executors import Replicated, make_executor
from selftaught.judge import Score
from selftaught.judge.filters import Keeps, ReadsEarlier, Trains
from selftaught.learn import Dataset, Example, ReplayMix, SFTSettings
from selftaught.learn.learners import SFT, Learned, LearnJob
from selftaught.learn.sft import tail_mean
from selftaught.machine import machine
from selftaught.monitor import held_out_figures, held_out_set, label_precision, reach, sampled_pass_at_k
from selftaught.monitor.round_figures import collapse_alarm, sample_figures
from selftaught.monitor.tensorboard import open_writer
from selftaught.policy import Policy
from selftaught.preflight import check_runnable, needs_control_marks
from selftaught.recipe import Recipe, RecipeError, from_dict, to_dict, to_toml, with_limits
from selftaught.registry import build
from selftaught.sample.attempts import Attempt
from selftaught.sample.draws import Draws
from selftaught.sample.samplers import Request
from selftaught.select import Selection, rewards
from selftaught.select.selectors import Batch, Tunes, Tuning
from selftaught.store import FILENAME, AttemptRecord, RoundRecord, RunStore, StoreError
from selftaught.store.checkpoint import restore_rng_states, rng_states, round_dir, verify, write_checkpoint
from selftaught.tasks import Task


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
    figures: dict[str, float] = field(default_factory=dict)  # every other figure of the round, by name
    alarms: list[str] = field(default_factory=list)  # collapse alarms that fired
    # what the store keeps of the round besides its figures
    step_losses: list[tuple[int, int, float]] = field(default_factory=list, repr=False)  # (member, step, loss)
    attempts: list[AttemptRecord] = field(default_factory=list, repr=False)
    training_data: Dataset | None = field(default=None, repr=False)
    proposals: list[tuple] = field(default_factory=list, repr=False)  # a challenger's, as the store keeps them


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


class Clock:
    """Seconds spent in each phase of a round. Time in a phase entered inside another (sampling
    inside on-policy learning) is the inner phase's only."""

    def __init__(self) -> None:
        self.phases: dict[str, float] = {}
        self._stack: list[str] = []
        self._start = self._mark = time.perf_counter()

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        self._switch()
        self._stack.append(name)
        try:
            yield
        finally:
            self._switch()
            self._stack.pop()

    def _switch(self) -> None:
        now = time.perf_counter()
        if self._stack:
            self.phases[self._stack[-1]] = self.phases.get(self._stack[-1], 0.0) + now - self._mark
        self._mark = now

    def total(self) -> float:
        return time.perf_counter() - self._start


class Run:
    def __init__(self, recipe: Recipe, out_dir: str | Path, reporter: Reporter | None = None,
                 task: Task | None = None):
        """``task``: the one ``load_checked`` built while checking ``recipe``; without it, the
        same checks run here, before anything is written."""
        self.recipe = recipe
        self.out_dir = Path(out_dir)
        self.reporter = reporter or SilentReporter()
        self.task = task if task is not None else check_runnable(recipe)
        seed = recipe.run.seed
        # The global generators too: a user's task may draw from them, and a resumed run restores them.
        random.seed(seed)
        np.random.seed(seed)
        self.rng = random.Random(f"{seed}-loop")
        self.draws = Draws(seed)  # sampling randomness, keyed by (seed, round, call, shard)
        self.executor = make_executor(recipe.engine)
        lr = recipe.learner
        sft = SFTSettings(lr=lr.lr, batch_size=lr.batch_size, weight_decay=lr.weight_decay,
                          warmup_steps=lr.warmup_steps, decay_fraction=lr.decay_fraction)
        # the supervised phases (the seed round, verdict training) have their own rate and batch
        supervised = replace(sft, lr=lr.seed_lr or lr.lr, batch_size=lr.seed_batch_size or lr.batch_size)
        context = Context(recipe, self.task, needs_control_marks(recipe), [], self.draws, [], supervised)
        self.policies: list[Replicated] = context.policies
        self.policies += [Replicated(p, i, self.executor, recipe.engine.shard_size)
                          for i, p in enumerate(build("model", recipe.model, context))]
        self.replay: list[ReplayMix] = context.replay
        self.replay += [ReplayMix(lr.newest_share) for _ in self.policies]
        self.sampler = build("sampler", recipe.sampler, context, "sampler")
        self.judges = [build("judge", j, context, f"judges[{i}]") for i, j in enumerate(recipe.judges)]
        self.weights = {judge.name: j.weight for judge, j in zip(self.judges, recipe.judges)}
        self.selector = build("selector", recipe.selector, context, "selector")
        self.learner = build("learner", recipe.learner, context, "learner")
        self.curriculum = build("curriculum", recipe.curriculum, context, "curriculum")
        self.seed_learner = SFT(self.policies, self.replay, supervised, lr.seed_steps, seed)
        self.equivalents = any(j.equivalents for j in recipe.judges)
        mon = recipe.monitor
        self.eval_set = held_out_set(self.task, seed, mon.eval_per_difficulty, mon.eval_max_difficulty)
        self.reports: list[RoundReport] = []
        self.limit_changes: dict[str, tuple] = {}  # run.* limits a resume changed: key -> (old, new)

    # ---- the loop --------------------------------------------------------------------------------

    def execute(self) -> list[RoundReport]:
        """Start the run in ``out_dir`` (which must not hold one) and run it to the end."""
        info = {"recipe": to_dict(self.recipe), "seed": self.recipe.run.seed, "version": __version__,
                "parameters": self.policies[0].num_params(), "machine": machine(self.recipe.model.device),
                "precision": getattr(self.policies[0], "precision", "fp32")}
        with RunStore(self.out_dir, create=True, info=info) as store, closing(self.executor):
            (self.out_dir / "recipe.toml").write_text(to_toml(to_dict(self.recipe)))
            with open_writer(self.out_dir, 0) as board:
                self._finish(store, board, self.seed_round())
                self._rounds(store, board)
        return self.reports

    @classmethod
    def resume(cls, run_dir: str | Path, from_round: int | None = None, reporter: Reporter | None = None,
               limits: Sequence[str] = ()) -> Run:
        """A run restored to the end of its last committed round (or ``from_round``), ready to
        ``continue_run``; ``limits`` (``run.rounds=20``, ...) give a stopped or finished run new
        ones. Everything is checked before anything in the run is changed."""
        run_dir = Path(run_dir)
        with RunStore(run_dir) as store:
            data, changed = with_limits(store.run_info()["recipe"], limits)
            recipe, task = from_dict(data, str(run_dir / FILENAME))
            last = store.last_round()
            if from_round is not None and last is None:
                raise StoreError(f"{run_dir}: --from-round {from_round}: no round was committed yet")
            if from_round is not None:
                if not 0 <= from_round <= last:
                    raise StoreError(f"{run_dir}: --from-round {from_round} is not a committed round "
                                     f"(rounds 0..{last} are)")
                last = from_round
            if "run.rounds" in changed and last is not None and recipe.run.rounds < last:
                raise RecipeError(f"--set run.rounds={recipe.run.rounds}: the run has committed round {last} already; "
                                  "give it more rounds, or --from-round to go back")
            if last is None:  # killed during the seed round: start over, in the same directory
                run = cls(recipe, run_dir, reporter, task)
                run.limit_changes = changed
                return run
            verify(run_dir, store.checkpoint_files(last), last)
            history = _history(store, last)
            training = store.training_data(last)
        run = cls(recipe, run_dir, reporter, task)
        run.limit_changes = changed
        run._restore(last, training, history)
        return run

    def continue_run(self) -> list[RoundReport]:
        """Go on from the restored round; rounds after it (and their checkpoints) are dropped."""
        last = self.reports[-1].round if self.reports else -1
        with RunStore(self.out_dir, write=True) as store, closing(self.executor):
            store.truncate_after(last)
            for stale in (self.out_dir / "checkpoints").glob("round-*"):
                if not stale.name.endswith(".tmp") and int(stale.name.split("-")[1]) > last:
                    shutil.rmtree(stale)
            if self.limit_changes:  # the store's recipe is the one the run now follows
                store.change_limits(to_dict(self.recipe), {k: new for k, (_, new) in self.limit_changes.items()},
                                    last)
                (self.out_dir / "recipe.toml").write_text(to_toml(to_dict(self.recipe)))
            with open_writer(self.out_dir, last + 1) as board:
                if not self.reports:  # killed before round 0 committed, perhaps before recipe.toml
                    (self.out_dir / "recipe.toml").write_text(to_toml(to_dict(self.recipe)))
                    self._finish(store, board, self.seed_round())
                self._rounds(store, board)
        return self.reports

    def _rounds(self, store: RunStore, board) -> None:
        r = self.recipe.run
        started = time.perf_counter() - sum(rep.wall_s for rep in self.reports)
        for round_ in range(self.reports[-1].round + 1, r.rounds + 1):
            # A round that would end past the budget is not started: the last one predicts its length.
            projected = time.perf_counter() - started + self.reports[-1].wall_s * (round_ > 1)
            if r.time_budget_minutes and projected >= 60 * r.time_budget_minutes:
                break
            if r.stop_at_reach and self.reports[-1].reach >= r.stop_at_reach:
                break
            self._finish(store, board, self.improve(round_))

    def seed_problems(self) -> list:
        """The labelled seed problems (regenerated from the seed: a resumed run gets the same)."""
        t = self.recipe.task
        levels = tuple(range(t.seed_min_difficulty, t.seed_max_difficulty + 1))
        rng = random.Random(f"{self.recipe.run.seed}-seed-data")
        return [self.task.sample(rng, rng.choice(levels)) for _ in range(t.seed_examples)]

    def seed_round(self) -> RoundReport:
        """Round 0: supervised training on ground-truth labels of the easy difficulties."""
        clock = Clock()
        self.draws.start_round(0)
        tools = self._tools(0, clock)
        t = self.recipe.task
        levels = tuple(range(t.seed_min_difficulty, t.seed_max_difficulty + 1))
        seed_data = Dataset([Example(p.prompt, self.task.target(p)) for p in self.seed_problems()], levels)
        for mix in self.replay:
            mix.add(seed_data)
        steps = self.seed_learner.train(0, tools)
        taught = self._train_judges(tools)
        accuracy, figures = self._measure(tools)
        return RoundReport(0, self.curriculum.frontier, accuracy, reach(accuracy, self.recipe.monitor.threshold),
                           tail_mean(steps), phases=clock.phases, wall_s=clock.total(), figures=figures | taught,
                           step_losses=steps, training_data=seed_data)

    def improve(self, round_: int) -> RoundReport:
        """One self-improvement round. Ground truth is touched only by ``_measure``, the audit and the
        judges a recipe names as using it (verifier, process reward)."""
        clock = Clock()
        self.draws.start_round(round_)
        tools = self._tools(round_, clock)
        learner = self.learner.for_round(round_)  # the recipe's learner, or the warm-up it names for this round
        with clock("propose"):
            problems = self.curriculum.propose(self.task, self.rng)                                 # propose
        tuning = self._tune(tools, clock)  # a selector may set the round's sampling first (B-STaR)
        job = LearnJob(round_, problems, tools, tuning.temperature)
        gather = partial(self._gather, round_, clock, learner.consumes, tuning.temperature)
        if learner.gathers:  # it samples, judges and selects step by step as it learns
            learned = learner.learn(replace(job, gather=gather))                                    # learn
            batch, selection = learned.batch, learned.selection
            outcome = Outcome(problems, batch, _keep_rate(problems, selection), tools)
        else:
            batch, selection = gather(self.policies, None, problems, 0)                  # sample, judge, select
            outcome = Outcome(problems, batch, _keep_rate(problems, selection), tools)
            # the curriculum's say on what is trained on (a gate's frontier, a challenger's band)
            selection = self.curriculum.admit(outcome, selection)
            learned = learner.learn(replace(job, batch=batch, selection=selection))                 # learn
        taught = self._train_judges(tools)
        taught |= self.curriculum.update(outcome)
        accuracy, figures = self._measure(tools)                                                    # measure
        return self._report(round_, clock, problems, batch, selection, learned, outcome.keep_rate, accuracy,
                            figures | taught, tuning)

    # ---- stages ----------------------------------------------------------------------------------

    def _tools(self, round_: int, clock: Clock) -> Tools:
        return Tools(round_, self.recipe.run.seed, partial(self._phase, round_, clock),
                     lambda: self.curriculum.propose(self.task, self.rng),
                     lambda problems, t: self.sampler.sample(self.policies, self.task, problems,
                                                             self._request(round_, t, False)).attempts,
                     self._judge, lambda scores: rewards(scores, self.weights), self.seed_problems)

    @contextmanager
    def _phase(self, round_: int, clock: Clock, name: str, total: int) -> Iterator[Phase]:
        with clock(name), self.reporter.phase(round_, name, total) as bar:
            yield bar

    def _request(self, round_: int, temperature: float, compare: bool, members: Sequence[int] | None = None,
                 on_batch=None) -> Request:
        return Request(temperature, self.equivalents, compare, self._judge, partial(self.reporter.phase, round_),
                       self.draws, on_batch, members, self._judge_by)

    def _tune(self, tools: Tools, clock: Clock) -> Tuning:
        if not isinstance(self.selector, Tunes):
            return Tuning(self.sampler.temperature)
        with clock("tune"):
            return self.selector.tune(tools, self.sampler.temperature)

    def _gather(self, round_: int, clock: Clock, wants: str, temperature: float, policies: Sequence[Policy],
                members: Sequence[int] | None, problems: list, offset: int) -> tuple[Batch, Selection]:
        """Sample, judge and select: ``policies`` (the run's ``members``; default all) attempt
        ``problems``, whose ids are counted from ``offset``."""
        request = self._request(round_, temperature, wants == "groups", members,
                                lambda k: faults.point("sample", round_))
        with clock("sample"):
            sampled = self.sampler.sample(policies, self.task, problems, request)
        attempts = [replace(a, problem_id=offset + a.problem_id) for a in sampled.attempts] if offset \
            else sampled.attempts
        with clock("judge"):
            scores = self._judge(attempts)
            earlier = None if sampled.earlier is None else rewards(sampled.earlier, self.weights)
            batch = Batch(attempts, scores, rewards(scores, self.weights), earlier)
            return batch, self.selector.select(batch, wants)

    def _judge(self, attempts: list[Attempt]) -> dict[str, list[Score]]:
        """Every judge's scores, in the recipe's order: a judge that reads the earlier ones is given theirs."""
        scores: dict[str, list[Score]] = {}
        for j in self.judges:
            scores[j.name] = (j.score_after(self.task, attempts, scores) if isinstance(j, ReadsEarlier)
                              else j.score(self.task, attempts))
        return scores

    def _judge_by(self, name: str, attempts: list[Attempt]) -> list[Score]:
        """The scores of the recipe's judge ``name`` alone (a search's value)."""
        return next(j for j in self.judges if j.name == name).score(self.task, attempts)

    def _train_judges(self, tools: Tools) -> dict[str, float]:
        """Judges that are themselves taught learn after the learner: their figures, by name."""
        figures: dict[str, float] = {}
        for judge in self.judges:
            if isinstance(judge, Trains):
                figures |= judge.train(self.task, tools)
        return figures

    def _measure(self, tools: Tools) -> tuple[dict[int, float], dict[str, float]]:
        """Greedy accuracy by difficulty on the held-out set, its mean (pass@1), and the sampler's
        own figures (a revising sampler's accuracy after revision)."""
        mon = self.recipe.monitor
        top = min(mon.eval_max_difficulty, self.curriculum.frontier + mon.eval_ahead)
        problems = {d: ps for d, ps in self.eval_set.items() if d <= top}
        flat = [p for ps in problems.values() for p in ps]
        with tools.phase("evaluate", len(flat) * self.sampler.evaluation_passes) as bar:
            accuracy, figures = held_out_figures(self.policies[0], self.task, problems, self.recipe.sampler.batch_size,
                                                 on_batch=bar.advance)
            figures |= self.sampler.measure(self.policies[0], self.task, flat, bar.advance)
        figures["pass@1"] = sum(accuracy[d] * len(ps) for d, ps in problems.items()) / max(1, len(flat))
        if mon.eval_samples:
            with tools.phase("evaluate pass@k", len(flat) * mon.eval_samples) as bar:
                figures |= sampled_pass_at_k(self.policies[0], self.task, flat, mon.eval_samples,
                                             self.sampler.temperature, self.recipe.sampler.batch_size, self.draws,
                                             bar.advance)
        return accuracy, figures

    def _report(self, round_: int, clock: Clock, problems: list, batch: Batch, selection: Selection,
                learned: Learned, keep_rate: dict[int, float], accuracy: dict[int, float], figures: dict[str, float],
                tuning: Tuning) -> RoundReport:
        """The round's figures and records, as ``_finish`` commits them."""
        mon = self.recipe.monitor
        attempts = batch.attempts
        figures |= sample_figures(self.task, attempts, batch.scores, batch.reward, selection, pass_k=mon.pass_k,
                                  pass_s=mon.pass_s, balance_target=mon.balance_target)
        alarms = collapse_alarm(figures, mon.collapse_diversity, mon.collapse_entropy, mon.collapse_proposals)
        figures["collapse_alarm"] = float(bool(alarms))
        figures |= tuning.figures
        # a revision's label is its whole transcript: the audit grades answers only
        precision = float("nan") if self.sampler.revises else label_precision(
            self.task, [problems[i] for i in selection.kept_problems], [e.answer for e in selection.examples])
        sampler = self.sampler.describe(tuning.temperature)
        trees = {id(a.tree): a.tree.rows() for a in attempts if a.tree is not None}  # a search's, once each
        records = [AttemptRecord(a.problem_id, a.problem.difficulty, self.recipe.task.name, a.problem.prompt,
                                 a.transcript, a.member, sampler, a.equivalent_texts,
                                 [(name, ss[i].value, ss[i].passed, ss[i].reason) for name, ss in batch.scores.items()],
                                 selection.kept_attempts[i], self.recipe.selector.type, selection.reasons[i],
                                 a.worker, a.version, None if a.tree is None else trees[id(a.tree)])
                   for i, a in enumerate(attempts)]
        return RoundReport(round_, self.curriculum.frontier, accuracy, reach(accuracy, mon.threshold),
                           tail_mean(learned.steps), proposals=self._proposals(), made=len(attempts),
                           kept=len(selection.examples) or len(selection.pairs) or sum(selection.kept_attempts),
                           rejected_by=selection.rejected_by, kept_precision=precision, keep_rate=keep_rate,
                           phases=clock.phases, wall_s=clock.total(), figures=figures, alarms=alarms,
                           step_losses=learned.steps, attempts=records, training_data=learned.data)

    def _proposals(self) -> list[tuple]:
        """The round's proposals, if the curriculum wrote its problems, as the store keeps them."""
        if not isinstance(self.curriculum, WritesProblems):
            return []
        return [p.row(self.task) for p in self.curriculum.proposals()]

    # ---- persistence -----------------------------------------------------------------------------

    def _save_state(self, directory: Path) -> None:
        for i, policy in enumerate(self.policies):
            policy.save(directory / f"member-{i}")
        for i, judge in enumerate(self.judges):  # a judge's own weights (a separate value model)
            if isinstance(judge, Keeps):
                judge.save(directory / f"judge-{i}")
        if isinstance(self.curriculum, Keeps):  # a challenger's own model
            self.curriculum.save(directory / "curriculum")
        torch.save({"rng": rng_states(self.rng), "curriculum": self.curriculum.state_dict(),
                    "versions": [p.version for p in self.policies],
                    "selector": {}}, directory / "state.pt")  # no selector keeps state across rounds

    def _restore(self, round_: int, data: list, history: list[RoundReport]) -> None:
        directory = round_dir(self.out_dir, round_)
        for i, policy in enumerate(self.policies):
            policy.load(directory / f"member-{i}")
        for i, judge in enumerate(self.judges):
            if isinstance(judge, Keeps):
                judge.load(directory / f"judge-{i}")
        if isinstance(self.curriculum, Keeps):
            self.curriculum.load(directory / "curriculum")
        state = torch.load(directory / "state.pt", weights_only=True)
        restore_rng_states(state["rng"], self.rng)
        for policy, version in zip(self.policies, state.get("versions", [])):
            policy.version = version
        self.curriculum.load_state_dict(state["curriculum"])
        for _, levels, examples in data:
            for i, mix in enumerate(self.replay):
                mine = [Example(e[0], e[1]) for e in examples if len(e) == 2 or e[2] == i]
                mix.add(Dataset(mine, levels))
        self.reports = history

    def _finish(self, store: RunStore, board, report: RoundReport) -> None:
        files = write_checkpoint(self.out_dir, report.round, self._save_state)
        faults.point("checkpoint", report.round)
        metrics = [("accuracy", d, a) for d, a in report.accuracy.items()]
        # how many problems each accuracy is over: the report's standard errors need them
        metrics += [("eval_problems", d, len(self.eval_set[d])) for d in report.accuracy]
        metrics += [("keep_rate", d, v) for d, v in report.keep_rate.items()]
        metrics += [("reach", None, report.reach), ("frontier", None, report.frontier), ("loss", None, report.loss),
                    ("labels_made", None, report.made), ("labels_kept", None, report.kept),
                    ("kept_label_precision", None, report.kept_precision)]
        metrics += [(f"rejected_by_{name}", None, n) for name, n in report.rejected_by.items()]
        metrics += [(name, None, v) for name, v in report.figures.items()]
        data = report.training_data
        store.commit_round(
            RoundRecord(report.round, report.wall_s, report.phases, metrics, report.step_losses, report.attempts,
                        (data.difficulties, [_stored(e) for e in data.examples]) if data else None, files,
                        report.proposals),
            before_commit=lambda: faults.point("commit", report.round))
        if board is not None:
            board.round(report.round, metrics, report.phases)
        # The round is durable; the in-memory copies of its attempts are not needed any more.
        report.attempts, report.step_losses, report.training_data, report.proposals = [], [], None, []
        self.reports.append(report)
        self.reporter.round_done(report)


def _keep_rate(problems: list, selection: Selection) -> dict[int, float]:
    """Per difficulty, the share of the round's problems with an attempt kept."""
    per_level = Counter(p.difficulty for p in problems)
    kept_level = Counter(problems[i].difficulty for i in set(selection.kept_problems))
    return {d: kept_level[d] / n for d, n in sorted(per_level.items())}


def _stored(e: Example) -> tuple:
    return (e.prompt, e.answer) if e.member is None else (e.prompt, e.answer, e.member)


def _history(store: RunStore, up_to: int) -> list[RoundReport]:
    """The figures of committed rounds, as the loop's stopping rules need them after a resume."""
    accuracy = store.metric_by_difficulty("accuracy")
    series = {n: store.metric(n) for n in ("reach", "frontier", "loss", "labels_made", "labels_kept",
                                           "kept_label_precision")}
    reports = []
    for r in store.rounds():
        if r["round"] > up_to:
            break
        n = r["round"]

        def get(name: str, default: float = float("nan"), n: int = n) -> float:
            v = series[name].get(n)
            return default if v is None else v

        reports.append(RoundReport(n, int(get("frontier", 0)), accuracy.get(n, {}), int(get("reach", 0)),
                                   get("loss"), made=int(get("labels_made", 0)), kept=int(get("labels_kept", 0)),
                                   kept_precision=get("kept_label_precision"), phases=r["phases"],
                                   wall_s=r["wall_s"]))
    return reports

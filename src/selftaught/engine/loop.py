"""The self-improvement loop. One round reads top to bottom in ``Run.improve``:
propose, sample, judge, select, learn, measure, commit.

``Run.execute`` starts a run; ``Run.resume`` picks one up from its last committed round (or an
earlier one) with every random state restored, so that it ends exactly where an uninterrupted run
would have.
"""

from __future__ import annotations

import random
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from selftaught import __version__, faults
from selftaught.curriculum import EasyToHard, Uniform
from selftaught.judge import JudgeContext, Score, build_judge
from selftaught.judge.self_verdict import verdict_examples, verdict_steps
from selftaught.learn import Dataset, Example, ReplayMix, SFTSettings, sft_steps
from selftaught.learn.dpo import dpo_steps
from selftaught.learn.grpo import grpo_fresh_steps, grpo_steps
from selftaught.models.char_policy import char_policies
from selftaught.monitor import accuracy_by_difficulty, held_out_set, label_precision, reach
from selftaught.monitor.measures import correction_transitions
from selftaught.monitor.round_figures import collapse_alarm, sample_figures
from selftaught.monitor.tensorboard import open_writer
from selftaught.policy import Policy
from selftaught.preflight import check_runnable, needs_control_marks
from selftaught.recipe import Recipe, from_dict, to_dict, to_toml
from selftaught.sample import sample_attempts
from selftaught.sample.attempts import Attempt, answer, revise_attempts
from selftaught.select import (
    Selection,
    build_groups,
    build_pairs,
    drop_harder_than,
    keep_if_all_judges_pass,
    keep_own_agreeing,
    rewards,
    select_rebalanced,
    select_threshold,
    select_top_k,
)
from selftaught.select.balance import BalanceChoice, choose
from selftaught.select.consensus import rejected_counts
from selftaught.select.revision import revision_groups, select_revisions
from selftaught.store import FILENAME, AttemptRecord, RoundRecord, RunStore, StoreError
from selftaught.store.checkpoint import restore_rng_states, rng_states, round_dir, verify, write_checkpoint


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
        self.task = check_runnable(recipe)  # the same checks load_recipe made: nothing is written before them
        seed = recipe.run.seed
        # The global generators too: a user's task may draw from them, and a resumed run restores them.
        random.seed(seed)
        np.random.seed(seed)
        self.rng = random.Random(f"{seed}-loop")
        self.generator = torch.Generator().manual_seed(seed)
        lr = recipe.learner
        self.members = char_policies(recipe.model, self.task.alphabet, needs_control_marks(recipe), seed, lr.lr,
                                     lr.weight_decay)
        self.sft = SFTSettings(lr=lr.lr, batch_size=lr.batch_size, weight_decay=lr.weight_decay,
                               warmup_steps=lr.warmup_steps, decay_fraction=lr.decay_fraction)
        # the supervised phases (seed round, verdict training) have their own rate and batch
        self.seed_sft = replace(self.sft, lr=lr.seed_lr or lr.lr, batch_size=lr.seed_batch_size or lr.batch_size)
        self.mixes = [ReplayMix(lr.newest_share) for _ in self.members]
        c, t = recipe.curriculum, recipe.task
        if c.type == "uniform":
            self.curriculum = Uniform(*c.uniform_range(t), c.problems_per_round, tuple(c.difficulty_weights))
        else:
            self.curriculum = EasyToHard(t.seed_max_difficulty, c.problems_per_round, c.span, c.gate)
        context = JudgeContext(self.members, recipe.sampler.batch_size, self.generator)
        self.judges = [build_judge(j, context) for j in recipe.judges]
        self.weights = {j.type: j.weight for j in recipe.judges}
        self.verdict = next((j for j in recipe.judges if j.type == "self-verdict"), None)
        mon = recipe.monitor
        self.eval_set = held_out_set(self.task, seed, mon.eval_per_difficulty, mon.eval_max_difficulty)
        self.reports: list[RoundReport] = []

    # ---- the loop --------------------------------------------------------------------------------

    def execute(self) -> list[RoundReport]:
        """Start the run in ``out_dir`` (which must not hold one) and run it to the end."""
        info = {"recipe": to_dict(self.recipe), "seed": self.recipe.run.seed, "version": __version__,
                "parameters": self.members[0].num_params()}
        with RunStore(self.out_dir, create=True, info=info) as store:
            (self.out_dir / "recipe.toml").write_text(to_toml(to_dict(self.recipe)))
            with open_writer(self.out_dir, 0) as board:
                self._finish(store, board, self.seed_round())
                self._rounds(store, board)
        return self.reports

    @classmethod
    def resume(cls, run_dir: str | Path, from_round: int | None = None, reporter: Reporter | None = None) -> Run:
        """A run restored to the end of its last committed round (or ``from_round``), ready to
        ``continue_run``. Everything is checked before anything in the run is changed."""
        run_dir = Path(run_dir)
        with RunStore(run_dir) as store:
            recipe = from_dict(store.run_info()["recipe"], str(run_dir / FILENAME))
            last = store.last_round()
            if last is None:  # killed during the seed round: start over, in the same directory
                if from_round is not None:
                    raise StoreError(f"{run_dir}: --from-round {from_round}: no round was committed yet")
                return cls(recipe, run_dir, reporter)
            if from_round is not None:
                if not 0 <= from_round <= last:
                    raise StoreError(f"{run_dir}: --from-round {from_round} is not a committed round "
                                     f"(rounds 0..{last} are)")
                last = from_round
            verify(run_dir, store.checkpoint_files(last), last)
            history = _history(store, last)
            data = store.training_data(last)
        run = cls(recipe, run_dir, reporter)
        run._restore(last, data, history)
        return run

    def continue_run(self) -> list[RoundReport]:
        """Go on from the restored round; rounds after it (and their checkpoints) are dropped."""
        last = self.reports[-1].round if self.reports else -1
        with RunStore(self.out_dir, write=True) as store:
            store.truncate_after(last)
            for stale in (self.out_dir / "checkpoints").glob("round-*"):
                if not stale.name.endswith(".tmp") and int(stale.name.split("-")[1]) > last:
                    shutil.rmtree(stale)
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
        t = self.recipe.task
        phases: dict[str, float] = {}
        start = time.perf_counter()
        levels = tuple(range(t.seed_min_difficulty, t.seed_max_difficulty + 1))
        seed_data = Dataset([Example(p.prompt, self.task.target(p)) for p in self.seed_problems()], levels)
        for mix in self.mixes:
            mix.add(seed_data)
        steps = self._learn(0, self.recipe.learner.seed_steps, phases, supervised=True)
        verdict = self._train_verdict(0, phases)
        accuracy, figures = self._measure(0, phases)
        figures |= verdict
        return RoundReport(0, self.curriculum.frontier, accuracy, reach(accuracy, self.recipe.monitor.threshold),
                           _tail_mean(steps), phases=phases, wall_s=time.perf_counter() - start, figures=figures,
                           step_losses=steps, training_data=seed_data)

    def improve(self, round_: int) -> RoundReport:
        """One self-improvement round. Ground truth is touched only by ``_measure``, the audit and the
        judges a recipe names as using it (verifier, process reward)."""
        phases: dict[str, float] = {}
        start = time.perf_counter()
        s, sel = self.recipe.sampler, self.recipe.selector

        problems = self.curriculum.propose(self.task, self.rng)
        temperature, threshold, balance = self._temperature(), sel.threshold, None
        if sel.type == "bstar":
            tick = time.perf_counter()
            balance = self._choose_balance(round_)
            temperature, threshold = balance.temperature, balance.threshold
            phases["balance"] = time.perf_counter() - tick

        lr = self.recipe.learner
        warm_up = lr.type == "grpo" and round_ <= lr.sft_rounds  # GRPO's SFT rounds, at round 0's settings
        by_sft = lr.type == "sft" or warm_up
        revisions = 1 if by_sft else s.revisions
        first_scores, on_policy = None, lr.on_policy and not by_sft
        if on_policy:  # sample, judge, select and learn step by step
            attempts, scores, selection, steps = self._learn_on_policy(round_, problems, temperature, phases)
            reward = rewards(scores, self.weights)
        else:
            tick = time.perf_counter()
            attempts = self._sample(round_, problems, temperature, on_sample=True)
            if s.turns == 2:
                attempts, first_scores = self._second_turn(round_, attempts, temperature, revisions)
            phases["sample"] = time.perf_counter() - tick

            tick = time.perf_counter()
            scores = self._judge(attempts)
            reward = rewards(scores, self.weights)
            selection = self._select(attempts, scores, reward, threshold, first_scores, rl=not by_sft)
            phases["judge"] = time.perf_counter() - tick

        per_level = Counter(p.difficulty for p in problems)
        kept_level = Counter(problems[i].difficulty for i in set(selection.kept_problems))
        keep_rate = {d: kept_level[d] / n for d, n in sorted(per_level.items())}
        new_data = None
        if by_sft:
            selection = drop_harder_than(selection, attempts, self.curriculum.trained_up_to(keep_rate))
            kept_level = Counter(problems[i].difficulty for i in set(selection.kept_problems))
            own = selection.member_examples
            for i, mix in enumerate(self.mixes):
                mix.add(Dataset(own[i] if own is not None else selection.examples, tuple(sorted(kept_level))))
            if own is None:
                new_data = Dataset(selection.examples, tuple(sorted(kept_level)))
            else:  # each member's own data, tagged with the member
                new_data = Dataset([Example(e.prompt, e.answer, m) for m, mine in enumerate(own) for e in mine],
                                   tuple(sorted(kept_level)))
        if not on_policy:
            trains = bool(selection.examples or selection.pairs or selection.groups)
            steps = self._learn(round_, lr.steps_per_round, phases, selection, supervised=warm_up) if trains else []
        verdict = self._train_verdict(round_, phases)
        self.curriculum.update(keep_rate)

        accuracy, figures = self._measure(round_, phases)
        figures |= verdict
        mon = self.recipe.monitor
        figures |= sample_figures(self.task, attempts, scores, reward, selection, pass_k=mon.pass_k,
                                  pass_s=mon.pass_s, balance_target=sel.balance_target)
        alarms = collapse_alarm(figures, mon.collapse_diversity, mon.collapse_entropy)
        figures["collapse_alarm"] = float(bool(alarms))
        if balance is not None:
            figures |= {"bstar_temperature": balance.temperature, "bstar_threshold": balance.threshold,
                        "bstar_probe_balance": balance.balance}
        label_problems = [problems[i] for i in selection.kept_problems]
        precision = label_precision(self.task, label_problems, [e.answer for e in selection.examples]) \
            if s.turns == 1 else float("nan")
        sampler = f"{s.type} temperature={temperature:g} top_k={s.top_k}" + (f" samples={s.samples}" if s.samples > 1
                                                                               else "")
        records = [AttemptRecord(a.problem_id, a.problem.difficulty, self.recipe.task.name, a.problem.prompt,
                                 a.transcript, a.member, sampler, a.equivalent_texts,
                                 [(name, ss[i].value, ss[i].passed, ss[i].reason) for name, ss in scores.items()],
                                 selection.kept_attempts[i], sel.type, selection.reasons[i])
                   for i, a in enumerate(attempts)]
        return RoundReport(round_, self.curriculum.frontier, accuracy, reach(accuracy, self.recipe.monitor.threshold),
                           _tail_mean(steps), made=len(attempts), kept=len(selection.examples) or
                           len(selection.pairs) or sum(selection.kept_attempts),
                           rejected_by=selection.rejected_by, kept_precision=precision, keep_rate=keep_rate,
                           phases=phases, wall_s=time.perf_counter() - start, figures=figures, alarms=alarms,
                           step_losses=steps, attempts=records, training_data=new_data)

    # ---- phases ----------------------------------------------------------------------------------

    def _temperature(self) -> float:
        s = self.recipe.sampler
        return 0.0 if s.type == "greedy" else s.temperature

    def _sample(self, round_: int, problems: list, temperature: float, on_sample: bool = False) -> list[Attempt]:
        n = len(self.members) * self.recipe.sampler.samples * sum(
            1 + (len(self.task.equivalents(p)) if self._with_equivalents else 0) for p in problems)
        with self.reporter.phase(round_, "sample", n) as bar:
            def sampled(k: int) -> None:
                bar.advance(k)
                if on_sample:
                    faults.point("sample", round_)

            return self._attempts(self.members, problems, temperature, sampled)

    @property
    def _with_equivalents(self) -> bool:
        return any(j.type == "consistency" for j in self.recipe.judges)

    def _attempts(self, members: list[Policy], problems: list, temperature: float,
                  on_batch: Callable[[int], None] | None = None) -> list[Attempt]:
        s = self.recipe.sampler
        return sample_attempts(members, self.task, problems, samples=s.samples,
                               equivalents=self._with_equivalents, temperature=temperature, top_k=s.top_k,
                               batch_size=s.batch_size, generator=self.generator, on_batch=on_batch)

    def _second_turn(self, round_: int, attempts: list[Attempt], temperature: float, revisions: int,
                     ) -> tuple[list[Attempt], dict[str, list[Score]]]:
        """Each first attempt revised ``revisions`` times (its revisions follow one another), and the
        first attempts' scores, repeated to line up with them."""
        first_scores = self._judge(attempts)
        attempts = [a for a in attempts for _ in range(revisions)]
        first_scores = {name: [x for x in ss for _ in range(revisions)] for name, ss in first_scores.items()}
        return self._revise(round_, attempts, temperature), first_scores

    def _revise(self, round_: int, attempts: list[Attempt], temperature: float) -> list[Attempt]:
        s = self.recipe.sampler
        with self.reporter.phase(round_, "revise", len(attempts)) as bar:
            return revise_attempts(self.members, self.task, attempts, temperature=temperature,
                                   top_k=s.top_k, batch_size=s.batch_size, generator=self.generator,
                                   on_batch=bar.advance)

    def _judge(self, attempts: list[Attempt]) -> dict[str, list[Score]]:
        return {j.name: j.score(self.task, attempts) for j in self.judges}

    def _select(self, attempts: list[Attempt], scores: dict[str, list[Score]], reward: list[float],
                threshold: float, first_scores: dict[str, list[Score]] | None, rl: bool = False) -> Selection:
        """``rl``: a GRPO round (after ``learner.sft_rounds``), where revisions make groups."""
        sel = self.recipe.selector
        kind = sel.type
        if kind == "all-judges":
            return keep_if_all_judges_pass(attempts, scores)
        if kind == "own-agreeing":
            return keep_own_agreeing(attempts, scores, len(self.members))
        if kind in ("threshold", "bstar"):
            return select_threshold(attempts, scores, reward, threshold, sel.max_per_query)
        if kind == "top-k":
            return select_top_k(attempts, scores, reward, sel.k, threshold)
        if kind == "rebalance":
            return select_rebalanced(attempts, scores, reward, threshold, sel.head_cap, sel.tail_rate, sel.tail_boost)
        if kind == "pairs":
            return build_pairs(attempts, scores, reward, sel.margin)
        if kind == "groups":
            return build_groups(attempts, scores, reward)
        if kind == "revisions" and rl:
            return revision_groups(attempts, scores, reward, rewards(first_scores, self.weights), sel.shaping)
        if kind == "revisions":
            return select_revisions(attempts, scores, reward, rewards(first_scores, self.weights), threshold,
                                    sel.fix_boost)
        raise ValueError(f"unknown selector {kind!r}")

    def _choose_balance(self, round_: int) -> BalanceChoice:
        """B-STaR: sample a probe set at each temperature of the grid and pick (temperature,
        threshold) with the best balance score. The probe draws its own problems."""
        sel = self.recipe.selector
        probe = self.curriculum.propose(self.task, self.rng)[: sel.probe_problems]

        def sample_probe(t: float):
            attempts = self._sample(round_, probe, t)
            scores = self._judge(attempts)
            correct = [s.passed for s in scores["verifier"]]
            return attempts, rewards(scores, self.weights), correct

        return choose(sample_probe, sel.temperatures, sel.thresholds, sel.balance_target)

    def _learn(self, round_: int, steps: int, phases: dict[str, float], selection: Selection | None = None,
               supervised: bool = False) -> list[tuple[int, int, float]]:
        """Train every member; returns (member, step, loss) of every step. ``supervised``: SFT on the
        mixes at round 0's settings (the seed round, and GRPO's ``sft_rounds``)."""
        tick = time.perf_counter()
        losses = []
        lr = self.recipe.learner
        picked = None if supervised else selection  # what DPO and GRPO learn from
        with self.reporter.phase(round_, "learn", steps * len(self.members)) as bar:
            def stepped(step: int, loss: float) -> None:
                bar.advance()
                if step == steps // 2:
                    faults.point("learn", round_)

            for i, (model, mix) in enumerate(zip(self.members, self.mixes)):
                rng = random.Random(f"{self.recipe.run.seed}-learn-{round_}-{i}")
                if lr.type == "dpo" and picked is not None:
                    pairs = [p for p in picked.pairs if p.member == i]
                    step_losses = dpo_steps(model, pairs, steps, self.sft, lr.beta, rng,
                                            lr.sft_weight, on_step=stepped)
                elif lr.type == "grpo" and picked is not None:
                    groups = [g for g in picked.groups if g.member == i]
                    step_losses = grpo_steps(model, groups, steps, self.sft, self._temperature(),
                                             lr.clip, lr.beta, rng, on_step=stepped)
                else:
                    step_losses = sft_steps(model, mix.draw, steps,
                                            self.seed_sft if supervised else self.sft, rng, on_step=stepped)
                losses += [(i, s, v) for s, v in enumerate(step_losses)]
        phases["learn"] = time.perf_counter() - tick
        return losses

    def _learn_on_policy(self, round_: int, problems: list, temperature: float, phases: dict[str, float]
                         ) -> tuple[list[Attempt], dict[str, list[Score]], Selection, list[tuple[int, int, float]]]:
        """GRPO on fresh groups: the round's problems are shared out across its steps, and each step
        samples its share from the member as it is then, judges the attempts, and steps once on
        their groups. Returns the round's attempts (ordered by member, problem, sample, as
        ``_sample`` orders them), their scores, the merged selection and the step losses."""
        lr = self.recipe.learner
        n = lr.steps_per_round
        bounds = [len(problems) * k // n for k in range(n + 1)]
        attempts: list[Attempt] = []
        scores: dict[str, list[Score]] = {j.name: [] for j in self.judges}
        parts: list[tuple[int, Selection]] = []
        losses: list[tuple[int, int, float]] = []
        clock: Counter[str] = Counter()
        with self.reporter.phase(round_, "learn", n * len(self.members)) as bar:
            def stepped(step: int, loss: float) -> None:
                bar.advance()
                if step == n // 2:
                    faults.point("learn", round_)

            for i, model in enumerate(self.members):
                reference = model.frozen_copy() if lr.beta else None  # the KL's anchor: the round's start

                def draw(step: int, i: int = i, model: Policy = model) -> tuple[list, int]:
                    share = problems[bounds[step]:bounds[step + 1]]
                    tick = time.perf_counter()
                    model.eval()
                    got = [replace(a, problem_id=bounds[step] + a.problem_id, member=i)
                           for a in self._attempts([model], share, temperature,
                                                   lambda k: faults.point("sample", round_))]
                    first_scores = None
                    if self.recipe.sampler.turns == 2:
                        got, first_scores = self._second_turn(round_, got, temperature, self.recipe.sampler.revisions)
                    model.train()
                    clock["sample"] += time.perf_counter() - tick
                    tick = time.perf_counter()
                    judged = self._judge(got)
                    selection = self._select(got, judged, rewards(judged, self.weights),
                                             self.recipe.selector.threshold, first_scores, rl=True)
                    clock["judge"] += time.perf_counter() - tick
                    attempts.extend(got)
                    for name, ss in judged.items():
                        scores[name].extend(ss)
                    parts.append((step, selection))
                    return selection.groups, len(share)

                tick = time.perf_counter()
                step_losses = grpo_fresh_steps(model, draw, n, self.sft, temperature, lr.beta,
                                               reference, on_step=stepped)
                clock["learn"] += time.perf_counter() - tick
                losses += [(i, k, v) for k, v in enumerate(step_losses)]
        clock["learn"] -= clock["sample"] + clock["judge"]
        phases |= clock
        return attempts, scores, _merge(parts, scores), losses

    def _train_verdict(self, round_: int, phases: dict[str, float]) -> dict[str, float]:
        """Teach each member to judge its own attempts: it attempts labelled seed problems and learns
        which ones the checker accepts (the only ground truth the verdict sees), anchored by its
        own greedy answers to the same problems. Returns the verdict's final loss as a figure."""
        v = self.verdict
        if v is None or not v.train_steps:
            return {}
        tick = time.perf_counter()
        pool = self.seed_problems()
        rng = random.Random(f"{self.recipe.run.seed}-verdict-{round_}")
        problems = [rng.choice(pool) for _ in range(v.train_problems)]
        s = self.recipe.sampler
        temperature = s.temperature if s.type == "temperature" else 1.0  # a verdict must see wrong attempts too
        attempts = sample_attempts(self.members, self.task, problems, samples=max(1, s.samples),
                                   equivalents=False, temperature=temperature, top_k=s.top_k,
                                   batch_size=s.batch_size, generator=self.generator)
        settings = replace(self.seed_sft, lr=v.lr) if v.lr else self.seed_sft
        losses = []
        with self.reporter.phase(round_, "verdict", v.train_steps * len(self.members)) as bar:
            for i, model in enumerate(self.members):
                own = answer(model, self.task, problems, batch_size=s.batch_size)
                anchor = [Example(p.prompt, t) for p, t in zip(problems, own)]
                losses.append(verdict_steps(model,
                                            verdict_examples(self.task, [a for a in attempts if a.member == i]),
                                            anchor, v.train_steps, settings, rng,
                                            on_step=lambda step, loss: bar.advance()))
        phases["verdict"] = time.perf_counter() - tick
        return {"verdict_loss": _tail_mean([(0, k, x) for k, x in enumerate(losses[0])])}

    def _measure(self, round_: int, phases: dict[str, float]) -> tuple[dict[int, float], dict[str, float]]:
        """Greedy accuracy by difficulty on the held-out set, its mean (pass@1), and for two-turn
        recipes the accuracy after revision and the transitions between the turns."""
        tick = time.perf_counter()
        mon = self.recipe.monitor
        top = min(mon.eval_max_difficulty, self.curriculum.frontier + mon.eval_ahead)
        problems = {d: ps for d, ps in self.eval_set.items() if d <= top}
        flat = [p for ps in problems.values() for p in ps]
        figures: dict[str, float] = {}
        with self.reporter.phase(round_, "evaluate", len(flat) * self.recipe.sampler.turns) as bar:
            accuracy = accuracy_by_difficulty(self.members[0], self.task, problems,
                                              self.recipe.sampler.batch_size, on_batch=bar.advance)
            if self.recipe.sampler.turns == 2:
                model, batch = self.members[0], self.recipe.sampler.batch_size
                first = answer(model, self.task, flat, batch_size=batch)
                revised = revise_attempts([model], self.task,
                                          [Attempt(i, p, 0, t) for i, (p, t) in enumerate(zip(flat, first))],
                                          batch_size=batch, on_batch=bar.advance)
                ok1 = [self.task.check(p, t) for p, t in zip(flat, first)]
                ok2 = [self.task.check(a.problem, a.text) for a in revised]
                figures["pass@1_turn2"] = sum(ok2) / len(ok2)
                figures["delta_wrong_to_right"], figures["delta_right_to_wrong"] = correction_transitions(ok1, ok2)
        figures["pass@1"] = sum(accuracy[d] * len(ps) for d, ps in problems.items()) / max(1, len(flat))
        phases["evaluate"] = time.perf_counter() - tick
        return accuracy, figures

    # ---- persistence -----------------------------------------------------------------------------

    def _save_state(self, directory: Path) -> None:
        for i, policy in enumerate(self.members):
            policy.save(directory / f"member-{i}")
        torch.save({"rng": rng_states(self.rng, self.generator), "curriculum": self.curriculum.state_dict(),
                    "selector": {}}, directory / "state.pt")  # the consensus selector keeps no state

    def _restore(self, round_: int, data: list, history: list[RoundReport]) -> None:
        directory = round_dir(self.out_dir, round_)
        for i, policy in enumerate(self.members):
            policy.load(directory / f"member-{i}")
        state = torch.load(directory / "state.pt", weights_only=True)
        restore_rng_states(state["rng"], self.rng, self.generator)
        self.curriculum.load_state_dict(state["curriculum"])
        for _, levels, examples in data:
            for i, mix in enumerate(self.mixes):
                mine = [Example(e[0], e[1]) for e in examples if len(e) == 2 or e[2] == i]
                mix.add(Dataset(mine, levels))
        self.reports = history

    def _finish(self, store: RunStore, board, report: RoundReport) -> None:
        files = write_checkpoint(self.out_dir, report.round, self._save_state)
        faults.point("checkpoint", report.round)
        metrics = [("accuracy", d, a) for d, a in report.accuracy.items()]
        metrics += [("keep_rate", d, v) for d, v in report.keep_rate.items()]
        metrics += [("reach", None, report.reach), ("frontier", None, report.frontier), ("loss", None, report.loss),
                    ("labels_made", None, report.made), ("labels_kept", None, report.kept),
                    ("kept_label_precision", None, report.kept_precision)]
        metrics += [(f"rejected_by_{name}", None, n) for name, n in report.rejected_by.items()]
        metrics += [(name, None, v) for name, v in report.figures.items()]
        data = report.training_data
        store.commit_round(
            RoundRecord(report.round, report.wall_s, report.phases, metrics, report.step_losses, report.attempts,
                        (data.difficulties, [_stored(e) for e in data.examples]) if data else None, files),
            before_commit=lambda: faults.point("commit", report.round))
        if board is not None:
            board.round(report.round, metrics, report.phases)
        # The round is durable; the in-memory copies of its attempts are not needed any more.
        report.attempts, report.step_losses, report.training_data = [], [], None
        self.reports.append(report)
        self.reporter.round_done(report)


def _merge(parts: list[tuple[int, Selection]], scores: dict[str, list[Score]]) -> Selection:
    """One selection from the steps' selections, in the order their attempts were made; each reason
    says which step's policy made the attempt."""
    return Selection([], [pid for _, p in parts for pid in p.kept_problems],
                     [k for _, p in parts for k in p.kept_attempts],
                     [f"sampled for learn step {step}; {why}" for step, p in parts for why in p.reasons],
                     rejected_counts(scores), groups=[g for _, p in parts for g in p.groups])


def _stored(e: Example) -> tuple:
    return (e.prompt, e.answer) if e.member is None else (e.prompt, e.answer, e.member)


def _tail_mean(steps: list[tuple[int, int, float]]) -> float:
    """Mean loss over each member's last tenth of steps (the round's loss figure)."""
    if not steps:
        return float("nan")
    last = max(s for _, s, _ in steps) + 1
    tail = [v for _, s, v in steps if s >= last - max(1, last // 10)]
    return sum(tail) / len(tail)


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

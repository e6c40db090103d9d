"""The model judges its own replies as an LLM-as-a-judge prompt asks it to (*Self-Rewarding Language
Models*), and, with meta-judging, judges its own judgments and learns to judge from them
(*Meta-Rewarding Language Models*).

Two ways to read a judgment off the model: ``verdict``, the log-odds of ``Yes`` against ``No`` as the
first token of its reply to the judge prompt (one forward pass, a probability that can be ranked);
or ``score``, judgments it writes at a temperature, each ending ``Score: N`` out of ``top``, their
readable scores averaged. A judgment whose score cannot be read counts for nothing; a reply none of
whose judgments can be read gets no value (NaN), so a selector makes no pair of it.

Meta-judging (``score`` only): for some of the round's replies, every two of its written judgments
meet before the model as meta-judge, which says which judgment is the more accurate (``A`` or
``B``, log-odds, both orders so that the position counts for neither); each judgment's share of
the wins ranks them, and the most winning judgment with a readable score and the least winning
judgment of a reply are a preference pair of the *judge prompt*. After the learner, the model
learns to judge by DPO on those pairs: the judge improves round by round, not only the actor.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations

import torch

from selftaught.judge.filters import Score, each_members_own
from selftaught.judge.self_verdict import verdict_probability
from selftaught.learn.dpo import dpo_steps
from selftaught.learn.sft import SFTSettings, tail_mean
from selftaught.policy import Policy
from selftaught.sample.attempts import Attempt
from selftaught.select.consensus import Pair
from selftaught.tasks.base import Task

JUDGE_PROMPT = ("Here is a question and a proposed answer.\n\nQuestion: {question}\n\nProposed answer: {reply}\n\n"
                "{ask}")
ASK_VERDICT = "Is the proposed answer correct? Reply with {yes} or {no}."
ASK_SCORE = ("Is the proposed answer correct? Explain in one sentence, then end with \"Score: N\", where N is "
             "{top} if it is correct and 0 if it is wrong.")
META_PROMPT = ("Here is a question, a proposed answer and two judgments of it.\n\nQuestion: {question}\n\n"
               "Proposed answer: {reply}\n\nJudgment A: {a}\n\nJudgment B: {b}\n\n"
               "Which judgment is more accurate? Reply with A or B.")
_SCORE = re.compile(r"score\s*(?:is|of|:|=)?\s*(\d+(?:\.\d+)?)(?:\s*/\s*\d+)?", re.IGNORECASE)


def read_score(judgment: str, top: int) -> float | None:
    """The last ``Score: N`` of a judgment as a share of ``top``; None where there is none, or N lies
    outside 0..top (the judge did not answer the question it was asked)."""
    found = _SCORE.findall(judgment)
    if not found:
        return None
    n = float(found[-1])
    return n / top if 0 <= n <= top else None


@dataclass
class Judged:
    """One reply's written judgments: what meta-judging reads."""

    attempt: Attempt
    prompt: str  # the judge prompt
    judgments: list[str]
    scores: list[float | None]


@dataclass
class MetaJudging:
    """Meta-Rewarding's judge training: ``replies`` of each round's judged replies are meta-judged,
    pairs of judgments whose win shares differ by ``margin`` or more are kept, and the judge takes
    ``steps`` of DPO at ``settings`` and ``beta`` on them."""

    replies: int
    steps: int
    settings: SFTSettings
    beta: float = 0.1
    margin: float = 0.5


@dataclass
class LLMJudge:
    """Each member judges its own attempts from a judge prompt; passes at value >= ``threshold``."""

    members: Sequence[Policy]
    mode: str = "verdict"  # or "score"
    threshold: float = 0.5
    judgments: int = 3  # written judgments a reply (score)
    temperature: float = 0.8
    max_tokens: int = 48
    top: int = 5
    batch_size: int = 256
    generator: torch.Generator | None = None
    meta: MetaJudging | None = None
    yes: str = "Yes"  # the verdict's tokens, one each for the model's tokenizer
    no: str = "No"
    judged: list[Judged] = field(default_factory=list)  # the newest round's, for meta-judging
    written_tokens: int = 0  # tokens of written judgments since the last round's end

    name = "llm-judge"
    uses_ground_truth = False

    @classmethod
    def from_settings(cls, settings, context) -> LLMJudge:
        meta = None
        if settings.meta_steps:
            lr = settings.lr or context.recipe.learner.lr
            meta = MetaJudging(settings.meta_replies, settings.meta_steps,
                               SFTSettings(lr=lr, batch_size=settings.meta_batch_size, warmup_steps=1),
                               settings.meta_beta, settings.meta_margin)
        return cls(context.policies, settings.mode, settings.threshold, settings.judgments, settings.temperature,
                   settings.max_tokens, settings.top, context.recipe.sampler.batch_size, context.generator, meta,
                   settings.yes, settings.no)

    def prompt(self, attempt: Attempt) -> str:
        ask = ASK_VERDICT.format(yes=self.yes, no=self.no) if self.mode == "verdict" else ASK_SCORE.format(top=self.top)
        return JUDGE_PROMPT.format(question=attempt.problem.prompt, reply=attempt.text.strip(), ask=ask)

    def score(self, task: Task, attempts: Sequence[Attempt]) -> list[Score]:
        if self.mode == "verdict":
            values = each_members_own(self.members, attempts, self._verdicts)
            return [Score(self.name, v, v >= self.threshold, f"P({self.yes}) = {v:.3f} as its own judge")
                    for v in values]
        written: dict[int, Judged] = {}
        values = each_members_own(self.members, attempts, lambda model, mine: self._written(model, mine, written))
        self.judged = [written[id(a)] for a in attempts]
        out = []
        for v, j in zip(values, self.judged, strict=True):
            read = [s for s in j.scores if s is not None]
            why = f"mean of {len(read)} readable scores of {len(j.scores)}: {v:.3f}" if read else \
                f"none of its {len(j.scores)} judgments ends with a readable score: no value"
            out.append(Score(self.name, v, read != [] and v >= self.threshold, why))
        return out

    def _verdicts(self, model: Policy, attempts: list[Attempt]) -> list[float]:
        return verdict_probability(model, [self.prompt(a) for a in attempts], self.batch_size, self.yes, self.no,
                                   prompts=True)

    def _written(self, model: Policy, attempts: list[Attempt], written: dict[int, Judged]) -> list[float]:
        prompts = [self.prompt(a) for a in attempts]
        done = model.generate([p for p in prompts for _ in range(self.judgments)],
                              [self.max_tokens] * (len(prompts) * self.judgments), temperature=self.temperature,
                              batch_size=self.batch_size, generator=self.generator)
        self.written_tokens += sum(len(c.ids) for c in done)
        values = []
        for k, (a, p) in enumerate(zip(attempts, prompts, strict=True)):
            texts = [c.text for c in done[k * self.judgments:(k + 1) * self.judgments]]
            scores = [read_score(t, self.top) for t in texts]
            read = [s for s in scores if s is not None]
            values.append(sum(read) / len(read) if read else math.nan)
            written[id(a)] = Judged(a, p, texts, scores)
        return values

    # ---- meta-judging: the judge learns to judge ---------------------------------------------------

    def train(self, task: Task, tools) -> dict[str, float]:
        """Meta-judge some of the round's judged replies, and teach each member to judge by DPO on
        its pairs of judgments. Figures: the tokens of the round's written judgments, pairs made,
        the DPO loss, and (an audit, from the checker) how much more often the meta-judge's chosen
        judgment gave the right verdict than its rejected one."""
        m, figures = self.meta, {"judge_tokens": float(self.written_tokens)} if self.mode == "score" else {}
        self.written_tokens = 0
        if m is None or not self.judged:
            return figures
        rng = random.Random(f"{tools.seed}-meta-{tools.round}")
        candidates = [j for j in self.judged if len(set(j.judgments)) > 1]
        chosen = rng.sample(candidates, min(m.replies, len(candidates)))
        with tools.phase("meta-judge", len(chosen) + m.steps * len(self.members)) as bar:
            each = self._meta_pairs(chosen, bar)
            pairs = [p for p in each if p is not None]
            losses = []
            for i, model in enumerate(self.members):
                losses += dpo_steps(model, [p for p in pairs if p.member == i], m.steps, m.settings, m.beta, rng,
                                    on_step=lambda step, loss: bar.advance())
        audits = [float(_agrees(p.chosen, right, self.top)) - float(_agrees(p.rejected, right, self.top))
                  for j, p in zip(chosen, each, strict=True) if p is not None
                  for right in [task.check(j.attempt.problem, j.attempt.text)]]
        figures["meta_pairs"] = float(len(pairs))
        if losses:
            figures["judge_dpo_loss"] = tail_mean([(0, k, x) for k, x in enumerate(losses)])
        if audits:
            figures["meta_chosen_better"] = sum(audits) / len(audits)
        self.judged = []
        return figures

    def _meta_pairs(self, judged: list[Judged], bar) -> list[Pair | None]:
        """Per reply, its most and least winning judgments as a pair of the judge prompt (None where
        their win shares differ by less than the margin)."""
        out: list[Pair | None] = []
        for j in judged:
            model = self.members[j.attempt.member]
            texts = list(dict.fromkeys(j.judgments))  # a judgment written twice meets itself in no battle
            battles = list(combinations(range(len(texts)), 2))
            prompts = [META_PROMPT.format(question=j.attempt.problem.prompt, reply=j.attempt.text.strip(),
                                          a=texts[x].strip(), b=texts[y].strip())
                       for a, b in battles for x, y in ((a, b), (b, a))]
            with torch.inference_mode():
                first = torch.sigmoid(model.log_odds(prompts, "A", "B", prompts=True)).tolist()
            wins = [0.0] * len(texts)
            for k, (a, b) in enumerate(battles):  # P(a better): as A, and as B in the swapped order
                p = (first[2 * k] + 1.0 - first[2 * k + 1]) / 2
                wins[a] += p
                wins[b] += 1.0 - p
            share = [w / (len(texts) - 1) for w in wins]
            # a judgment whose score cannot be read is never chosen: the judge would learn to write no score
            readable = [k for k, t in enumerate(texts) if read_score(t, self.top) is not None]
            best = max(readable, key=share.__getitem__, default=None)
            worst = min(range(len(texts)), key=share.__getitem__)
            keep = best is not None and best != worst and share[best] - share[worst] >= self.meta.margin
            out.append(Pair(j.prompt, texts[best], texts[worst], j.attempt.member) if keep else None)
            bar.advance()
        return out


def _agrees(judgment: str, right: bool, top: int) -> bool:
    """The judgment's score says what the checker says (a full score for a right reply, below half
    for a wrong one)."""
    s = read_score(judgment, top)
    return s is not None and (s >= 0.5) == right

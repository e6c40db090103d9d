"""An exploration bonus any reward can add: how far a reply's representation lies from its group's
(Representation-Based Exploration, Tuyls et al. 2025, "RepExp").

Each reply is represented by the mean of the policy's last-layer hidden states over its tokens,
cut down to ``dims`` numbers by a sparse random projection. Within a query's group (one member's
samples of one problem) the representations are centred and the bonus of reply h is the
elliptical norm h^T Σ^{-1} h, where Σ = λI + Σ_j h_j h_j^T over the group ("leverage"), or over
the group without h ("leave-one-out"). A reply unlike its siblings scores high; with the recipe's
``weight`` as β the loop's reward is the task's plus β times the bonus. A group none of whose
replies the ``gate`` judge passes gets no bonus: novelty alone is not worth rewarding there.

The bonus only ever adds: its verdict always passes, so it never vetoes an attempt in the
selectors and curricula that ask every judge to pass. The states are the policy's own as it judges
(RepExp's code reads them from a frozen copy of the starting model, a separate reward-model worker):
our small models start from random weights, and the seed round is what gives their states meaning.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

import numpy as np
import torch

from selftaught.judge.filters import Score
from selftaught.policy import Policy
from selftaught.sample.attempts import Attempt
from selftaught.select.reward import by_query
from selftaught.tasks.base import Task

MODES = ("leverage", "leave-one-out")


def sparse_projection(width: int, dims: int, rng: np.random.Generator) -> np.ndarray:
    """A [width, dims] very sparse random projection (Li et al. 2006, scikit-learn's
    ``SparseRandomProjection`` with density 'auto'): each entry is ±sqrt(1/(density·dims)) with
    probability density/2 each and 0 otherwise, density = 1/sqrt(width)."""
    density = 1 / math.sqrt(width)
    u = rng.random((width, dims))
    scale = math.sqrt(1 / density) / math.sqrt(dims)
    return np.where(u < density / 2, -scale, np.where(u < density, scale, 0.0))


def rank_one(inverse: np.ndarray, x: np.ndarray, sign: float = 1.0) -> np.ndarray:
    """(A + sign·x x^T)^{-1} from a symmetric A^{-1} (Sherman-Morrison): no matrix is inverted."""
    u = inverse @ x
    return inverse - sign * np.outer(u, u) / (1 + sign * (x @ u))


def group_bonuses(features: np.ndarray, ridge: float, mode: str) -> np.ndarray:
    """The bonus of each row of ``features`` ([replies, dims], one group), centred on the group's mean."""
    h = features - features.mean(0)
    inverse = np.eye(h.shape[1]) / ridge
    for x in h:
        inverse = rank_one(inverse, x)
    if mode == "leverage":
        return np.einsum("id,de,ie->i", h, inverse, h)
    # leave-one-out: take each reply back out of Σ before measuring it
    return np.array([x @ rank_one(inverse, x, -1.0) @ x for x in h])


class ExplorationJudge:
    """Each attempt's bonus within its (problem, member) group, from that member's representations;
    groups that ``gate`` passes nowhere get 0 ("" = no gate). The projection is drawn from the run's
    seed alone, so a run reproduces it and a resumed run has the same one."""

    name = "exploration"
    uses_ground_truth = False

    def __init__(self, members: Sequence[Policy], mode: str = "leverage", dims: int = 32, ridge: float = 0.01,
                 gate: str = "verifier", seed: int = 0, batch_size: int = 512):
        if mode not in MODES:
            raise ValueError(f"mode {mode!r}: expected one of {MODES}")
        self.members, self.mode, self.dims, self.ridge, self.gate = members, mode, dims, ridge, gate
        self.seed, self.batch_size = seed, batch_size
        self._projections: dict[int, np.ndarray] = {}  # by hidden width

    @classmethod
    def from_settings(cls, settings, context) -> ExplorationJudge:
        return cls(context.policies, settings.mode, settings.dims, settings.ridge, settings.gate,
                   context.recipe.run.seed, context.recipe.sampler.batch_size)

    def score(self, task: Task, attempts: Sequence[Attempt]) -> list[Score]:
        return self.score_after(task, attempts, {})

    def score_after(self, task: Task, attempts: Sequence[Attempt], earlier: dict[str, list[Score]]) -> list[Score]:
        if self.gate and self.gate not in earlier:
            raise ValueError(f"the exploration bonus is gated by {self.gate!r}, which has not judged these attempts "
                             f"(judged so far: {sorted(earlier)}); list it before the exploration judge")
        features = self.features(attempts)
        scores: list[Score] = [None] * len(attempts)  # type: ignore[list-item]
        for idx in by_query(attempts).values():
            bonus = group_bonuses(features[idx], self.ridge, self.mode)
            open_ = not self.gate or any(earlier[self.gate][i].passed for i in idx)
            shut = "" if open_ else f", gated off: no reply of its group passes {self.gate}"
            for i, b in zip(idx, bonus.tolist()):
                scores[i] = Score(self.name, b if open_ else 0.0, True, f"{self.mode} bonus {b:.4g}{shut}")
        return scores

    def features(self, attempts: Sequence[Attempt]) -> np.ndarray:
        """[attempts, dims] float64: each attempt's projected representation under the member that wrote it."""
        out = np.zeros((len(attempts), self.dims))
        for m, model in enumerate(self.members):
            mine = [i for i, a in enumerate(attempts) if a.member == m]
            for start in range(0, len(mine), self.batch_size):
                rows = mine[start:start + self.batch_size]
                states = model.reply_features([attempts[i].problem.prompt for i in rows],
                                              [attempts[i].text for i in rows])
                hidden = states.to("cpu", torch.float64).numpy()
                out[rows] = hidden @ self.projection(hidden.shape[1])
        return out

    def projection(self, width: int) -> np.ndarray:
        """The projection of ``width``-wide states, drawn from the run's seed alone (not from the run's
        generators: the bonus draws nothing that sampling or a resume would notice)."""
        if width not in self._projections:
            rng = np.random.default_rng(random.Random(f"{self.seed}-exploration-{width}").getrandbits(64))
            self._projections[width] = sparse_projection(width, self.dims, rng)
        return self._projections[width]

"""The training mix: newest self-labels plus replay of everything learned before."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from selftaught.learn.sft import Example


@dataclass
class Dataset:
    examples: list[Example]
    difficulties: tuple[int, ...]  # the levels it covers


@dataclass
class ReplayMix:
    """Draw ``newest_share`` of each batch from the newest dataset; the rest from the older ones in
    proportion to how many difficulty levels each covers (the SIT paper's released code)."""

    newest_share: float = 0.5
    datasets: list[Dataset] = field(default_factory=list)

    def add(self, dataset: Dataset) -> None:
        if dataset.examples:
            self.datasets.append(dataset)

    def draw(self, rng: random.Random, n: int) -> list[Example]:
        if not self.datasets:
            raise ValueError("nothing to train on: the replay mix is empty")
        newest, older = self.datasets[-1], self.datasets[:-1]
        weights = [len(d.difficulties) for d in older]
        batch = []
        for _ in range(n):
            if not older or rng.random() < self.newest_share:
                batch.append(rng.choice(newest.examples))
            else:
                batch.append(rng.choice(rng.choices(older, weights)[0].examples))
        return batch

"""The policy: what the loop's stages need of a model, and nothing more.

Samplers, judges, learners and the monitor reach a model only through ``Policy``; our transformer
with its character tokenizer (``selftaught.models.char_policy``) is the first one. A policy owns
its tokenizer (so special tokens and lengths are its business), its optimizer and everything that
must be saved for a run to resume exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


@dataclass
class Completion:
    text: str
    ids: list[int]  # its tokens (the end of sequence not included)
    logps: list[float]  # each token's log-probability under the distribution it was drawn from
    worker: str = "local"  # the process that drew it
    version: int = 0  # the version of the weights it was drawn with (weight changes of its policy so far)


class Tokenizer(Protocol):
    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Sequence[int]) -> str: ...


class Policy(Protocol):
    tokenizer: Tokenizer
    max_len: int  # longest prompt + completion, in tokens

    def generate(self, prompts: Sequence[str], limits: Sequence[int | None], *, temperature: float = 0.0,
                 top_k: int = 0, top_p: float = 1.0, batch_size: int = 512, generator: Any = None,
                 on_batch: Callable[[int], None] | None = None, stop: Sequence[str] = (),
                 prefixes: Sequence[str] | None = None) -> list[Completion]:
        """Completions of ``prompts`` in their order, each at most its limit in tokens (None = up to
        ``max_len``), ending at EOS or once it has written one of ``stop`` (kept in its text: a
        step of a search ends with its separator). ``prefixes``: text each reply already begins
        with (a search's steps so far, after a chat template's turn), which it goes on from.
        ``temperature`` 0 is greedy (log-probabilities then are the model's own); ``generator`` is
        the run's torch generator, the only randomness used. Completions never contain the loop's
        control marks."""
        ...

    def token_logps(self, prompts: Sequence[str], completions: Sequence[str], temperature: float = 1.0
                    ) -> tuple[Any, Any]:
        """(logps, mask), both [batch, tokens]: each completion token's log-probability (its end of
        sequence included) at logits / ``temperature``, and where completion tokens are. Gradients
        flow unless the caller disables them."""
        ...

    def answer_loss_backward(self, prompts: Sequence[str], answers: Sequence[str]) -> float:
        """Back-propagate the token-mean next-token loss of the answers; returns its value."""
        ...

    def log_odds(self, texts: Sequence[str], yes: str, no: str, prompts: bool = False) -> Any:
        """log P(yes) - log P(no) as the next token after each text (one forward pass; gradients flow).
        ``prompts``: the texts are prompts, formatted as ``generate`` formats them (a chat model's
        template), and yes / no are the first token of the reply (an LLM-as-a-judge's verdict)."""
        ...

    def reply_features(self, prompts: Sequence[str], completions: Sequence[str]) -> Any:
        """[batch, hidden] float32: the mean of the last layer's (normalised) hidden states over each
        completion's tokens, its end of sequence included (a reply's representation; no gradients)."""
        ...

    def step(self, lr: float, backward: Callable[[], float]) -> float:
        """One optimizer step at rate ``lr`` on the gradients ``backward()`` makes; returns its value."""
        ...

    def train(self) -> None: ...

    def eval(self) -> None: ...

    def frozen_copy(self) -> Policy:
        """A copy that never trains: the reference of DPO's and GRPO's KL."""
        ...

    def num_params(self) -> int: ...

    def save(self, directory: Path) -> None:
        """Weights and optimizer state: everything a resumed run needs of the policy."""
        ...

    def load(self, directory: Path) -> None: ...

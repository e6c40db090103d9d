"""Where a round's decoding and scoring run: in this process, or on Ray workers.

The loop's parts never see an executor. They hold each member's policy as a ``Replicated``: its
training (``step``, gradients) runs here on the driver's own copy, while ``generate`` and scoring
without gradients are cut into shards (``selftaught.sample.draws``) that the executor runs on a
replica of the policy at the weight version the shard names. The local executor runs them one
after another with the driver's own policy; ``selftaught.engine.ray_executor`` on Ray actors. The
shards, their order and their random keys are the same either way, so the results are too.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import torch

from selftaught.policy import Completion, Policy
from selftaught.sample.draws import Draws, shards
from selftaught.settings import RecipeError


@dataclass
class Shard:
    """One piece of a call: ``method`` of member ``member``'s policy at weight version ``version``,
    on ``args`` (the shard's rows), drawing from a generator seeded ``seed`` (None: no draws)."""

    member: int
    version: int
    method: str
    args: tuple
    kwargs: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None


def run_shard(policy: Policy, shard: Shard) -> Any:
    """What a worker does with a shard, given the replica at the shard's version."""
    kwargs = dict(shard.kwargs)
    if shard.seed is not None:
        kwargs["generator"] = torch.Generator().manual_seed(shard.seed)
    with torch.no_grad():  # not inference mode: a caller may use the result beside tensors that need grad
        return getattr(policy, shard.method)(*shard.args, **kwargs)


class Executor(Protocol):
    name: str

    def publish(self, member: int, version: int, policy: Policy) -> None:
        """Make ``policy``'s current weights the replicas' version ``version`` of ``member``
        (called before the first shard at that version)."""
        ...

    def run(self, shards: Sequence[Shard], done: Callable[[int], None]) -> list[tuple[Any, str]]:
        """Each shard's result and the worker that ran it, in the shards' order; ``done(i)`` as
        shard i finishes (in any order)."""
        ...

    def close(self) -> None: ...


class LocalExecutor:
    """Every shard here, one after another, on the driver's own policy (always the current version)."""

    name = "local"

    def __init__(self) -> None:
        self.policies: dict[int, Policy] = {}

    def publish(self, member: int, version: int, policy: Policy) -> None:
        self.policies[member] = policy

    def run(self, shards: Sequence[Shard], done: Callable[[int], None]) -> list[tuple[Any, str]]:
        out = []
        for i, shard in enumerate(shards):
            out.append((run_shard(self.policies[shard.member], shard), "local"))
            done(i)
        return out

    def close(self) -> None:
        pass  # the driver's own policies: nothing to let go of


def trainable_copy(policy: Policy) -> Policy:
    """A copy of a member's own weights (a ``Replicated``'s driver copy, not its replicas) that
    trains apart from it: a separate value model, a separate challenger."""
    return copy.deepcopy(getattr(policy, "policy", policy))


class Replicated:
    """Member ``member``'s policy as the run's parts hold it. Training and anything with gradients
    run on the driver's policy; ``generate`` and gradient-free ``token_logps`` / ``log_odds``
    are cut into shards of ``shard_size`` rows (0: ``generate``'s batch size, and scoring in one
    shard) and run by ``executor``. ``version`` counts the weight changes (optimizer steps,
    loads); a shard is run only with the weights of the version it names."""

    def __init__(self, policy: Policy, member: int, executor: Executor, shard_size: int = 0):
        self.policy, self.member, self.executor, self.shard_size = policy, member, executor, shard_size
        self.version = 0

    def __getattr__(self, name: str) -> Any:  # the rest of the policy (tokenizer, max_len, device, ...)
        return getattr(self.policy, name)

    # ---- spread over the executor ------------------------------------------------------------------

    def generate(self, prompts: Sequence[str], limits: Sequence[int | None], *, temperature: float = 0.0,
                 top_k: int = 0, top_p: float = 1.0, batch_size: int = 512, generator: Any = None,
                 on_batch: Callable[[int], None] | None = None, stop: Sequence[str] = (),
                 prefixes: Sequence[str] | None = None) -> list[Completion]:
        """As ``Policy.generate``; ``generator`` is the run's ``Draws`` (a torch generator of a
        caller's own is used as it is, here)."""
        decoding = {"temperature": temperature, "top_k": top_k, "top_p": top_p}
        if stop:
            decoding["stop"] = tuple(stop)
        if generator is not None and not isinstance(generator, Draws):
            return self.policy.generate(prompts, limits, batch_size=batch_size, generator=generator,
                                        on_batch=on_batch, prefixes=prefixes, **decoding)
        key = generator.next_call() if generator is not None else None
        # rows sorted by prompt length before they are cut, so that a shard pads little
        length = (lambda i: len(prompts[i])) if prefixes is None else (lambda i: len(prompts[i]) + len(prefixes[i]))
        order = sorted(range(len(prompts)), key=length)
        cuts = shards(len(order), self.shard_size or batch_size)

        def own(cut: range) -> dict:  # the shard's rows' prefixes
            return {} if prefixes is None else {"prefixes": [prefixes[order[i]] for i in cut]}

        work = [Shard(self.member, self.version, "generate",
                      ([prompts[order[i]] for i in cut], [limits[order[i]] for i in cut]),
                      decoding | {"batch_size": len(cut)} | own(cut), None if key is None else key.shard_seed(s))
                for s, cut in enumerate(cuts)]
        results = self._run(work, lambda s: on_batch(len(cuts[s])) if on_batch is not None else None)
        out: list[Completion] = [None] * len(prompts)  # type: ignore[list-item]
        for cut, (completions, worker) in zip(cuts, results):
            for i, c in zip(cut, completions):
                out[order[i]] = replace(c, worker=worker, version=self.version)
        return out

    def token_logps(self, prompts: Sequence[str], completions: Sequence[str], temperature: float = 1.0):
        if torch.is_grad_enabled():
            return self.policy.token_logps(prompts, completions, temperature)
        parts = self._scored("token_logps", [prompts, completions], {"temperature": temperature})
        width = max(logps.shape[1] for logps, _ in parts)

        def padded(x: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.pad(x, (0, width - x.shape[1]))

        return torch.cat([padded(lp) for lp, _ in parts]), torch.cat([padded(m) for _, m in parts])

    def log_odds(self, texts: Sequence[str], yes: str, no: str, prompts: bool = False):
        if torch.is_grad_enabled():
            return self.policy.log_odds(texts, yes, no, prompts)
        return torch.cat(self._scored("log_odds", [texts], {"yes": yes, "no": no, "prompts": prompts}))

    def _scored(self, method: str, columns: list[Sequence], kwargs: dict) -> list[Any]:
        cuts = shards(len(columns[0]), self.shard_size or len(columns[0]))
        work = [Shard(self.member, self.version, method, tuple(list(c[cut.start:cut.stop]) for c in columns), kwargs)
                for cut in cuts]
        return [result for result, _ in self._run(work, lambda s: None)]

    def _run(self, work: list[Shard], done: Callable[[int], None]) -> list[tuple[Any, str]]:
        if not work:
            return []
        self.executor.publish(self.member, self.version, self.policy)  # once per version: it keeps the last
        return self.executor.run(work, done)

    # ---- on the driver -----------------------------------------------------------------------------

    def step(self, lr: float, backward: Callable[[], float]) -> float:
        self.version += 1
        return self.policy.step(lr, backward)

    def load(self, directory) -> None:
        self.version += 1
        self.policy.load(directory)

    def answer_loss_backward(self, prompts: Sequence[str], answers: Sequence[str]) -> float:
        return self.policy.answer_loss_backward(prompts, answers)

    def train(self) -> None:
        self.policy.train()

    def eval(self) -> None:
        self.policy.eval()

    def frozen_copy(self) -> Policy:
        return self.policy.frozen_copy()

    def num_params(self) -> int:
        return self.policy.num_params()

    def save(self, directory) -> None:
        self.policy.save(directory)


class ClusterError(RecipeError):
    """The recipe's ``[engine]`` cannot run here: Ray missing, or its cluster unreachable."""


def make_executor(settings) -> Executor:
    """The recipe's ``[engine]`` executor. Ray is imported only when the recipe asks for it."""
    if settings.executor == "local":
        return LocalExecutor()
    try:
        from selftaught.engine.ray_executor import RayExecutor
    except ImportError as e:
        raise ClusterError(f"engine.executor = 'ray' needs Ray ({e}): pip install 'selftaught[ray]'") from None
    return RayExecutor(settings)

"""Our transformer with its character tokenizer and optimizer: the first ``Policy``.

Everything that knows how our model is laid out (padding and end-of-sequence ids, the head's
weights, packing right-padded batches to their real tokens, one token per character) lives here,
so that samplers, judges and learners work with any policy.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from selftaught.models.generate import generate, stop_at
from selftaught.models.optim import make_optimizer, optimizer_step
from selftaught.models.transformer import Transformer, TransformerConfig
from selftaught.policy import Completion
from selftaught.tasks.tokenizer import EOS, PAD, CharTokenizer, tokenizer_for

IGNORE = -100
# Each batch is sorted by length and attended in this many groups, each padded only to its own
# longest sequence; every other layer runs on the whole batch's real tokens at once.
LENGTH_BUCKETS = 4


def collate(tokenizer: CharTokenizer, prompts: Sequence[str], answers: Sequence[str]
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded inputs and next-token labels; labels are IGNORE outside the answer + EOS."""
    seqs, starts = [], []
    for prompt, answer in zip(prompts, answers, strict=True):
        p = tokenizer.encode(prompt)
        seqs.append(p + tokenizer.encode(answer) + [EOS])
        starts.append(len(p))
    width = max(len(s) for s in seqs) - 1
    inputs = torch.full((len(seqs), width), PAD, dtype=torch.long)
    labels = torch.full((len(seqs), width), IGNORE, dtype=torch.long)
    for i, (s, st) in enumerate(zip(seqs, starts)):
        t = torch.as_tensor(s)
        inputs[i, : len(s) - 1] = t[:-1]
        labels[i, st - 1: len(s) - 1] = t[st:]
    return inputs, labels


def right_padded(seqs: Sequence[Sequence[int]]) -> torch.Tensor:
    """[batch, longest] token ids, PAD after each sequence: causal attention never lets a real token see it."""
    tokens = torch.full((len(seqs), max(len(s) for s in seqs)), PAD, dtype=torch.long)
    for i, s in enumerate(seqs):
        tokens[i, : len(s)] = torch.as_tensor(s)
    return tokens


def length_sorted(tokenizer: CharTokenizer, prompts: Sequence[str], answers: Sequence[str], n: int
                  ) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """``collate`` of the pairs sorted by length, and the sizes of ``n`` consecutive groups of rows
    (for ``Transformer.forward``'s ``groups``)."""
    pairs = sorted(zip(prompts, answers, strict=True), key=lambda pa: len(pa[0]) + len(pa[1]))
    size = -(-len(pairs) // max(1, n))
    inputs, labels = collate(tokenizer, [p for p, _ in pairs], [a for _, a in pairs])
    return inputs, labels, [min(size, len(pairs) - i) for i in range(0, len(pairs), size)]


class CharPolicy:
    """``model`` and ``tokenizer`` behind the ``Policy`` protocol; ``optimizer`` None: never trains."""

    def __init__(self, model: Transformer, tokenizer: CharTokenizer, optimizer: torch.optim.Optimizer | None = None,
                 length_buckets: int = LENGTH_BUCKETS):
        self.model, self.tokenizer, self.optimizer = model, tokenizer, optimizer
        self.length_buckets = length_buckets

    @classmethod
    def create(cls, cfg: TransformerConfig, tokenizer: CharTokenizer, *, lr: float = 1e-3, weight_decay: float = 0.01,
               device: str = "cpu") -> CharPolicy:
        """A freshly initialised model (from torch's global generator) with its AdamW."""
        model = Transformer(cfg).to(device).eval()
        return cls(model, tokenizer, make_optimizer(model, lr, weight_decay))

    @property
    def max_len(self) -> int:
        return self.model.cfg.max_len

    @property
    def device(self) -> torch.device:
        return self.model.embed.weight.device

    def num_params(self) -> int:
        return self.model.num_params()

    # ---- decoding ------------------------------------------------------------------------------

    def generate(self, prompts: Sequence[str], limits: Sequence[int | None], *, temperature: float = 0.0,
                 top_k: int = 0, top_p: float = 1.0, batch_size: int = 512,
                 generator: torch.Generator | None = None, on_batch: Callable[[int], None] | None = None,
                 stop: Sequence[str] = (), prefixes: Sequence[str] | None = None) -> list[Completion]:
        """Prompts are batched by length so that little padding is decoded; answers are written in
        the task's alphabet only (the loop's control marks are banned). No template: a prefix
        simply follows its prompt."""
        if prefixes is not None:
            prompts = [p + x for p, x in zip(prompts, prefixes, strict=True)]
        at = stop_at(stop, self.tokenizer.decode, self.tokenizer.vocab_size) if stop else None
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        out: list[Completion] = [Completion("", [], [])] * len(prompts)
        cap = self.max_len
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            encoded = [self.tokenizer.encode(prompts[i]) for i in idx]
            room = [max(1, min(cap - len(p), cap if limits[i] is None else limits[i])) for i, p in zip(idx, encoded)]
            ids, logps = generate(self.model, encoded, room, temperature=temperature, top_k=top_k or None, top_p=top_p,
                                  generator=generator, banned=self.tokenizer.control_ids, with_logps=True, stop=at)
            for i, t, lp in zip(idx, ids, logps):
                out[i] = Completion(self.tokenizer.decode(t), t, lp)
            if on_batch is not None:
                on_batch(len(idx))
        return out

    # ---- scoring -------------------------------------------------------------------------------

    def token_logps(self, prompts: Sequence[str], completions: Sequence[str], temperature: float = 1.0
                    ) -> tuple[torch.Tensor, torch.Tensor]:
        inputs, labels = collate(self.tokenizer, prompts, completions)
        inputs, labels = inputs.to(self.device), labels.to(self.device)
        mask = labels != IGNORE
        # Sampled completions differ in length far more than curated answers (a wrong one may run to
        # the length limit), so the per-token layers run on real tokens only, and the head and
        # softmax only where a completion token is predicted.
        valid = inputs != PAD
        features = self.model.features(inputs, valid=valid)
        scored = mask[valid]  # completion positions among the real tokens (they are all real)
        logp = F.log_softmax(self.model.head(features[scored]).float() / temperature, dim=-1)
        picked = logp.gather(-1, labels[mask][:, None]).squeeze(-1)
        out = torch.zeros(mask.shape, dtype=picked.dtype, device=self.device).masked_scatter(mask, picked)
        return out, mask

    def log_odds(self, texts: Sequence[str], yes: str, no: str, prompts: bool = False) -> torch.Tensor:
        # a prompt is its own text here: the model reads prompts as they are written
        (y,), (n,) = self.tokenizer.encode(yes), self.tokenizer.encode(no)
        encoded = [self.tokenizer.encode(t) for t in texts]
        rows = torch.arange(len(encoded), device=self.device)
        last = torch.as_tensor([len(e) - 1 for e in encoded], device=self.device)
        states = self.model.features(right_padded(encoded).to(self.device))[rows, last]
        w = self.model.head.weight
        return (states @ (w[y] - w[n])).float()

    @torch.no_grad()
    def reply_features(self, prompts: Sequence[str], completions: Sequence[str]) -> torch.Tensor:
        seqs, starts = [], []
        for prompt, completion in zip(prompts, completions, strict=True):
            head = self.tokenizer.encode(prompt)
            # a reply cut at its budget already fills max_len: its end of sequence has no place
            seqs.append((head + self.tokenizer.encode(completion) + [EOS])[: self.max_len])
            starts.append(len(head))
        states = self.model.features(right_padded(seqs).to(self.device)).float()
        at = torch.arange(states.shape[1], device=self.device)[None]
        reply = (at >= torch.as_tensor(starts, device=self.device)[:, None]) & \
            (at < torch.as_tensor([len(s) for s in seqs], device=self.device)[:, None])
        return (states * reply[..., None]).sum(1) / reply.sum(1, keepdim=True).clamp(min=1)

    # ---- training ------------------------------------------------------------------------------

    def answer_loss_backward(self, prompts: Sequence[str], answers: Sequence[str]) -> float:
        inputs, labels, groups = length_sorted(self.tokenizer, prompts, answers, self.length_buckets)
        inputs, labels = inputs.to(self.device), labels.to(self.device)
        valid = inputs != PAD
        logits = self.model(inputs, valid=valid, groups=groups)  # real tokens only: padding costs nothing per token
        loss = F.cross_entropy(logits, labels[valid], ignore_index=IGNORE)
        loss.backward()
        return loss.item()

    def step(self, lr: float, backward: Callable[[], float]) -> float:
        return optimizer_step(self.model, self.optimizer, lr, backward)

    def train(self) -> None:
        self.model.train()

    def eval(self) -> None:
        self.model.eval()

    def frozen_copy(self) -> CharPolicy:
        return CharPolicy(copy.deepcopy(self.model).eval(), self.tokenizer, None, self.length_buckets)

    # ---- persistence ---------------------------------------------------------------------------

    def save(self, directory: Path) -> None:
        self.model.save(directory)
        if self.optimizer is not None:
            torch.save(self.optimizer.state_dict(), Path(directory) / "optimizer.pt")

    def load(self, directory: Path) -> None:
        self.model.load_weights(directory)
        if self.optimizer is not None:
            self.optimizer.load_state_dict(torch.load(Path(directory) / "optimizer.pt", weights_only=True))


def char_policies(settings, context) -> list[CharPolicy]:
    """The ``[model]`` part: ``settings.members`` independently initialised transformers for the
    task's alphabet (with the loop's control marks when the recipe uses them), each with its AdamW."""
    tokenizer = tokenizer_for(context.task.alphabet, context.control_marks)
    cfg = TransformerConfig(vocab_size=tokenizer.vocab_size, n_layers=settings.n_layers, d_model=settings.d_model,
                            n_heads=settings.n_heads, d_ff=settings.d_ff, max_len=settings.max_len,
                            positional=settings.positional)
    learner, seed = context.recipe.learner, context.recipe.run.seed
    policies = []
    for i in range(settings.members):
        torch.manual_seed(seed * 1000 + i)  # independently initialised members
        policies.append(CharPolicy.create(cfg, tokenizer, lr=learner.lr, weight_decay=learner.weight_decay,
                                          device=settings.device))
    return policies

"""Tree search as a sampler (ReST-MCTS*, rStar-Math): each problem grows a tree of steps, the
policy proposing ``width`` next steps of a leaf and a judge of the recipe (the process value)
evaluating each; the attempts are the best answers the tree ended in.

All of a round's trees grow in lockstep: one iteration selects a leaf in every tree that has
budget left, draws every leaf's next steps in one ``generate`` call (stopping each at the task's
step separator) and evaluates every new node in one call of the value judge, so decoding stays as
batched as plain sampling, and the calls, their order and their random keys are the same on any
executor: a tree is the same whichever process drew its steps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from selftaught.policy import Policy
from selftaught.sample.attempts import Attempt, answer_limit
from selftaught.sample.samplers import Request, Sampled
from selftaught.sample.tree import RULES, Tree, priors, select
from selftaught.tasks.base import Problem, Task


@dataclass
class Budget:
    iterations: int  # leaves grown per tree
    tokens: int  # tokens sampled per tree (0: no cap): a comparison with best-of-N at equal cost
    width: int  # next steps drawn at each leaf
    max_steps: int  # a node this deep is an answer, ended or not
    step_tokens: int  # the tokens one step may take (a step cut there is continued by the next)


class TreeSearch:
    """Monte-Carlo tree search over steps: select by ``rule`` (``uct`` or ``puct``, exploration
    constant ``c``), expand ``width`` steps drawn at the sampler's temperature, evaluate with the
    judge named ``value``, back up. ``samples`` answers per problem: its tree's ended paths of
    highest value."""

    revises = False
    random = True
    evaluation_passes = 1

    def __init__(self, name: str, budget: Budget, rule: str, c: float, value: str, samples: int, temperature: float,
                 top_k: int, top_p: float, batch_size: int):
        self.name, self.budget, self.rule, self.c, self.value = name, budget, rule, c, value
        self.samples, self.temperature, self.top_k, self.top_p, self.batch_size = (samples, temperature, top_k,
                                                                                   top_p, batch_size)

    @classmethod
    def from_settings(cls, settings, context) -> TreeSearch:
        budget = Budget(settings.iterations, settings.max_tokens, settings.width, settings.max_steps,
                        settings.step_tokens)
        return cls(settings.type, budget, settings.selection, settings.exploration, settings.value, settings.samples,
                   settings.temperature, settings.top_k, settings.top_p, settings.batch_size)

    def sample(self, policies: Sequence[Policy], task: Task, problems: Sequence[Problem], request: Request
               ) -> Sampled:
        if request.score is None:
            raise ValueError("tree search needs the round's judges (Request.score) to evaluate its nodes")

        def value(attempts: list[Attempt]) -> list[float]:
            return [s.value for s in request.score(self.value, attempts)]

        members = request.members if request.members is not None else range(len(policies))
        attempts = []
        for m, policy in zip(members, policies, strict=True):
            trees = self.search(policy, m, task, problems, value, request)
            attempts += self.answers(m, problems, trees)
        return Sampled(attempts)

    def search(self, policy: Policy, member: int, task: Task, problems: Sequence[Problem],
               value: Callable[[list[Attempt]], list[float]], request: Request) -> list[Tree]:
        """One tree per problem, grown until each has spent its budget; a tree that ended no path
        gets its best leaf finished greedily."""
        b, sep, rule = self.budget, task.step_separator, RULES[self.rule]
        trees = [Tree() for _ in problems]
        with request.phase("search", len(problems) * b.iterations) as bar:
            while True:
                leaves = [(t, select(tree, rule, self.c)) for t, tree in enumerate(trees)
                          if tree.iterations < b.iterations and not (b.tokens and tree.tokens >= b.tokens)]
                if not leaves:
                    break
                prompts = [problems[t].prompt for t, i in leaves for _ in range(b.width)]
                prefixes = [trees[t].prefix(i) for t, i in leaves for _ in range(b.width)]
                drawn = policy.generate(prompts, [b.step_tokens] * len(prompts), temperature=request.temperature,
                                        top_k=self.top_k, top_p=self.top_p, batch_size=self.batch_size,
                                        generator=request.generator, stop=(sep,), prefixes=prefixes)
                grown = []  # (tree, node, [(step, logp, terminal)])
                for k, (t, i) in enumerate(leaves):
                    tree = trees[t]
                    steps: dict[str, tuple[float, bool]] = {}
                    had = {tree.nodes[c].step: c for c in tree.nodes[i].children}
                    last = tree.depth(i) + 1 >= b.max_steps  # its steps are answers whatever they end with
                    for c in drawn[k * b.width:(k + 1) * b.width]:
                        tree.tokens += len(c.ids)
                        # an answer ends at EOS; a step ends at its separator, or where its token
                        # budget cut it (a long line of a reply: the next step goes on with it)
                        cut = len(c.ids) >= b.step_tokens and not c.text.endswith(sep)
                        ended = (not c.text.endswith(sep) and not cut) or last
                        if c.text in had:  # a step drawn again is a visit of the child it made
                            tree.backup(had[c.text], [tree.nodes[had[c.text]].value])
                        else:
                            steps.setdefault(c.text, (sum(c.logps), ended))
                    grown.append((t, i, [(s, lp, e) for s, (lp, e) in steps.items()]))
                    tree.iterations += 1
                    tree.nodes[i].expansions += 1
                self._evaluate(member, problems, trees, grown, value)
                bar.advance(len(leaves))
                if request.on_batch is not None:
                    request.on_batch(len(leaves))
        self._finish(policy, member, task, problems, trees, value, request)
        return trees

    def _evaluate(self, member: int, problems: Sequence[Problem], trees: list[Tree],
                  grown: list[tuple[int, int, list[tuple[str, float, bool]]]],
                  value: Callable[[list[Attempt]], list[float]]) -> None:
        """Every new node's value in one call, then each grown node's backup."""
        attempts = [Attempt(t, problems[t], member, trees[t].prefix(i) + step, finished=ended)
                    for t, i, steps in grown for step, _, ended in steps]
        values = iter(value(attempts))
        for t, i, steps in grown:
            got = [next(values) for _ in steps]
            for (step, _, ended), v, p in zip(steps, got, priors([lp for _, lp, _ in steps]) if steps else []):
                trees[t].add(i, step, v, ended, p)
            if got:
                trees[t].backup(i, got)

    def _finish(self, policy: Policy, member: int, task: Task, problems: Sequence[Problem], trees: list[Tree],
                value: Callable[[list[Attempt]], list[float]], request: Request) -> None:
        """Trees that ended no path: their most valued leaf completed greedily (its tokens counted)."""
        short = [t for t, tree in enumerate(trees) if not tree.terminals()]
        if not short:
            return
        leaves = []
        for t in short:
            tree = trees[t]
            open_leaves = [i for i, n in enumerate(tree.nodes) if not n.children and not n.terminal]
            leaves.append(max(open_leaves, key=lambda i: (tree.nodes[i].value, -i)))
        done = policy.generate([problems[t].prompt for t in short], [answer_limit(task, problems[t]) for t in short],
                               temperature=0.0, batch_size=self.batch_size, generator=request.generator,
                               prefixes=[trees[t].prefix(i) for t, i in zip(short, leaves)])
        for t, c in zip(short, done):
            trees[t].tokens += len(c.ids)
        self._evaluate(member, problems, trees, [(t, i, [(c.text, sum(c.logps), True)])
                                                 for t, i, c in zip(short, leaves, done)], value)

    def answers(self, member: int, problems: Sequence[Problem], trees: list[Tree]) -> list[Attempt]:
        """Each tree's ``samples`` ended paths of highest value (distinct answers), best first."""
        out = []
        for t, (problem, tree) in enumerate(zip(problems, trees)):
            best: dict[str, float] = {}
            for i in tree.terminals():
                text = tree.prefix(i)
                best[text] = max(best.get(text, float("-inf")), tree.nodes[i].value)
            ranked = sorted(best, key=lambda text: -best[text])[: self.samples]
            out += [Attempt(t, problem, member, text, sample=s, tree=tree) for s, text in enumerate(ranked)]
        return out

    def describe(self, temperature: float) -> str:
        b = self.budget
        return (f"{self.name} {self.rule} c={self.c:g} width={b.width} iterations={b.iterations}"
                + (f" max_tokens={b.tokens}" if b.tokens else "") + f" temperature={temperature:g} value={self.value}")

    def measure(self, policy: Policy, task: Task, problems: Sequence[Problem], batch: Callable[[int], None]
                ) -> dict[str, float]:
        return {}


def tokens_of(attempts: Sequence[Attempt]) -> int:
    """Tokens sampled to grow the distinct trees behind ``attempts``."""
    return sum(tree.tokens for tree in {id(a.tree): a.tree for a in attempts if a.tree is not None}.values())


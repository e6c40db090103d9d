"""A search tree over steps, and what is read off it: which node to grow next (UCT, PUCT), how
values flow up (backup), and the process-value targets a finished tree teaches (ReST-MCTS*'s
V_k, or the Monte-Carlo share of correct answers below a step).

A node is a partial solution: its ``step`` is the text one model call wrote, and its prefix is
the steps from the root down to it. Every node is evaluated once when it is made (``value``), and
that evaluation counts as one visit of it and of each of its ancestors, so a node's ``q`` is the
mean evaluation over its subtree — a parent's value is the visit-weighted mean of its
children's, as in ReST-MCTS*'s ``MCTS/base.py``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field


@dataclass
class Node:
    parent: int | None  # index of the parent in its tree (None: the root, the empty prefix)
    step: str  # the text this node adds to its parent's prefix
    value: float  # its evaluation when it was made
    terminal: bool = False  # the answer ends here (EOS, or the step budget ran out)
    prior: float = 1.0  # the policy's probability of the step, normalised among the steps drawn with it
    visits: int = 1
    total: float = 0.0  # the sum of the evaluations in its subtree
    children: list[int] = field(default_factory=list)
    expansions: int = 0  # times its next steps were drawn (a node grows again when that beats its children)
    correct: bool | None = None  # a terminal node's label, once it is known

    def __post_init__(self) -> None:
        if self.total == 0.0:
            self.total = self.value

    @property
    def q(self) -> float:
        return self.total / self.visits if self.visits else self.value


@dataclass
class Tree:
    """One problem's search: ``nodes[0]`` is the root."""

    nodes: list[Node] = field(default_factory=lambda: [Node(None, "", 0.0, visits=0)])
    tokens: int = 0  # tokens sampled to grow it
    iterations: int = 0

    def prefix(self, i: int) -> str:
        steps = []
        while i is not None and i != 0:
            steps.append(self.nodes[i].step)
            i = self.nodes[i].parent
        return "".join(reversed(steps))

    def path(self, i: int) -> list[int]:
        """The nodes from the root's child down to ``i``."""
        out = []
        while i != 0:
            out.append(i)
            i = self.nodes[i].parent
        return out[::-1]

    def depth(self, i: int) -> int:
        return len(self.path(i))

    def add(self, parent: int, step: str, value: float, terminal: bool, prior: float = 1.0) -> int:
        self.nodes.append(Node(parent, step, value, terminal, prior))
        k = len(self.nodes) - 1
        self.nodes[parent].children.append(k)
        return k

    def backup(self, leaf: int, values: Sequence[float]) -> None:
        """Each of ``values`` (the evaluations of ``leaf``'s new children) one visit of ``leaf``
        and of every ancestor."""
        i: int | None = leaf
        while i is not None:
            node = self.nodes[i]
            node.visits += len(values)
            node.total += sum(values)
            i = node.parent

    def terminals(self) -> list[int]:
        return [i for i, n in enumerate(self.nodes) if n.terminal]

    def rows(self) -> list[tuple]:
        """What the store keeps of each node: (parent, step, value, visits, q, terminal)."""
        return [(n.parent, n.step, n.value, n.visits, n.q, n.terminal) for n in self.nodes]


def uct(parent: Node, child: Node, c: float) -> float:
    """Q + c·sqrt(ln N(parent) / N(child)) (ReST-MCTS*'s selection, c = 0.4 there)."""
    return child.q + c * math.sqrt(math.log(max(parent.visits, 1)) / child.visits)


def puct(parent: Node, child: Node, c: float) -> float:
    """Q + c·P(child)·sqrt(N(parent)) / (1 + N(child)) (rStar-Math's, c = 2 there), the prior
    being the policy's own probability of the step."""
    return child.q + c * child.prior * math.sqrt(parent.visits) / (1 + child.visits)


RULES: dict[str, Callable[[Node, Node, float], float]] = {"uct": uct, "puct": puct}


def select(tree: Tree, rule: Callable[[Node, Node, float], float], c: float, widening: float = 0.5) -> int:
    """The node to grow next. From the root, down the unended child of highest score, until a node
    without children, a node all of whose children are answers, or a node whose expansions fall
    behind floor(visits ** ``widening``): progressive widening, so that a node is not shut once its
    first draws are made (a tree whose first steps all ended wrong could not spend its budget), yet
    draws new steps less often the more its children are explored. Ties go to the earlier child."""
    i = 0
    while True:
        node = tree.nodes[i]
        if not node.children or node.expansions < math.floor(node.visits ** widening):
            return i
        going_on = [k for k in node.children if not tree.nodes[k].terminal]
        if not going_on:
            return i
        i = max(going_on, key=lambda k: rule(node, tree.nodes[k], c))


def priors(logps: Sequence[float]) -> list[float]:
    """Siblings' prior probabilities from their steps' total log-probabilities (softmax)."""
    top = max(logps)
    weights = [math.exp(x - top) for x in logps]
    return [w / sum(weights) for w in weights]


# ---- what a finished tree teaches ---------------------------------------------------------------

def steps_to_correct(tree: Tree) -> list[float]:
    """Per node, the fewest steps from it down to a correct terminal (0 at a correct terminal,
    inf where none lies below)."""
    out = [math.inf] * len(tree.nodes)

    def walk(i: int) -> float:
        node = tree.nodes[i]
        best = 0.0 if node.terminal and node.correct else math.inf
        for k in node.children:
            best = min(best, 1 + walk(k))
        out[i] = best
        return best

    walk(0)
    return out


def rest_mcts_targets(tree: Tree) -> dict[int, float]:
    """ReST-MCTS*'s value target of every labelled step: down each path from the root,
    V_k = max(0, V_{k-1} + (1 - V_{k-1})·r_k / m_k) with V_0 = 0, r_k = +1 if a correct answer lies
    below step k (or is step k) and -1 if none does, and m_k the fewest steps from step k to a
    correct answer, step k counted (1 at a correct answer, which so gets V = 1) — or, where none
    lies below, the steps from it to the nearest end of a path. Only nodes whose subtree
    has ended somewhere (a terminal below them) are labelled: for the others r_k is unknown."""
    to_correct = steps_to_correct(tree)
    out: dict[int, float] = {}

    def to_end(i: int) -> float:  # steps to the nearest terminal below i (inf: none)
        node = tree.nodes[i]
        return 0.0 if node.terminal else min((1 + to_end(k) for k in node.children), default=math.inf)

    def walk(i: int, v_before: float) -> None:
        for k in tree.nodes[i].children:
            if math.isfinite(to_correct[k]):
                r, m = 1.0, to_correct[k] + 1
            else:
                m = to_end(k) + 1
                if not math.isfinite(m):
                    continue
                r = -1.0
            v = max(0.0, v_before + (1 - v_before) * r / m)
            out[k] = v
            walk(k, v)

    walk(0, 0.0)
    return out


def monte_carlo_targets(tree: Tree) -> dict[int, float]:
    """Per node with a terminal below it (itself included), the share of correct answers among
    the terminals of its subtree (TreeRL's V)."""
    out: dict[int, float] = {}

    def walk(i: int) -> tuple[int, int]:
        node = tree.nodes[i]
        right, total = (int(bool(node.correct)), 1) if node.terminal else (0, 0)
        for k in node.children:
            r, t = walk(k)
            right, total = right + r, total + t
        if total and i != 0:
            out[i] = right / total
        return right, total

    walk(0)
    return out


TARGETS: dict[str, Callable[[Tree], dict[int, float]]] = {"rest-mcts": rest_mcts_targets,
                                                          "monte-carlo": monte_carlo_targets}


def prefix_tree(answers: Sequence[str], separator: str) -> Tree:
    """The tree a set of complete answers to one problem forms by their shared steps (values 0):
    sampled attempts are a search tree grown without a value, and teach the same targets."""
    tree = Tree()
    for answer in answers:
        steps = answer.split(separator)
        i = 0
        for k, step in enumerate(steps):
            last = k == len(steps) - 1
            text = step if last else step + separator
            i = next((c for c in tree.nodes[i].children
                      if tree.nodes[c].step == text and tree.nodes[c].terminal == last),
                     None) or tree.add(i, text, 0.0, last)
    return tree

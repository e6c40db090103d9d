"""R-Zero's repetition penalty for a batch of proposed problems.

A proposer rewarded only for hard problems learns to ask one hard problem many times. R-Zero
(``examples/reward_function/caller_penalty.py``) clusters a batch's proposals by BLEU distance and
charges each proposal its cluster's share of the batch. The proposals are data, compared as
whitespace-separated words and never run. This is the same computation without nltk or sklearn:
nltk's ``sentence_bleu`` with ``SmoothingFunction().method1`` and sklearn's
``AgglomerativeClustering(n_clusters=None, distance_threshold=0.5, metric="precomputed", linkage="average")``.
"""

from __future__ import annotations

import math
from collections import Counter

_EPSILON = 0.1  # nltk's SmoothingFunction().epsilon, added by method1 to a zero count


def _ngrams(tokens: list[str], max_n: int) -> list[Counter[tuple[str, ...]]]:
    return [Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)) for n in range(1, max_n + 1)]


def _bleu(hypothesis: list[Counter], reference: list[Counter], c: int, r: int) -> float:
    log_precisions = []
    for n, (counts, in_reference) in enumerate(zip(hypothesis, reference), start=1):
        matched = sum(min(count, in_reference[gram]) for gram, count in counts.items())
        # As nltk: the denominator is at least 1, so an order the hypothesis is too short to have
        # is 0/1, which method1 smooths to 0.1/1 like any other order without a match.
        total = max(1, sum(counts.values()))
        if n == 1 and matched == 0:
            return 0.0  # nltk returns 0 before smoothing when no word matches (an empty hypothesis too)
        log_precisions.append(math.log((matched if matched else _EPSILON) / total))
    brevity = 1.0 if c > r else math.exp(1 - r / c)
    weight = 1 / len(hypothesis)
    return brevity * math.exp(math.fsum(weight * lp for lp in log_precisions))


def sentence_bleu(hypothesis: list[str], reference: list[str], max_n: int = 4) -> float:
    """nltk's ``sentence_bleu([reference], hypothesis, smoothing_function=SmoothingFunction().method1)``
    with uniform weights 1/max_n."""
    return _bleu(_ngrams(hypothesis, max_n), _ngrams(reference, max_n), len(hypothesis), len(reference))


def bleu_distances(texts: list[str]) -> list[list[float]]:
    """1 - BLEU between texts, as R-Zero computes it: BLEU of the earlier text as hypothesis against
    the later as reference, copied to both halves, and 0 on the diagonal."""
    words = [text.split() for text in texts]
    grams = [_ngrams(w, 4) for w in words]  # once per text, not once per pair
    distances = [[0.0] * len(texts) for _ in texts]
    for i in range(len(texts)):
        for j in range(i + 1, len(texts)):
            distances[i][j] = distances[j][i] = 1.0 - _bleu(grams[i], grams[j], len(words[i]), len(words[j]))
    return distances


def _nearest(distances: list[list[float]], members: dict[int, list[int]], a: int) -> tuple[float, int] | None:
    """The closest cluster after ``a`` (the lowest index among equals), which is all that the
    lexicographically first closest pair needs."""
    later = [(distances[a][b], b) for b in members if b > a]
    return min(later) if later else None


def average_linkage_clusters(distances: list[list[float]], threshold: float = 0.5) -> list[int]:
    """Agglomerative clustering with average linkage: merge the two closest clusters while their
    mean pairwise distance is below threshold (ties: the lowest pair of cluster indices first).
    A label per item, numbered by first appearance."""
    d = [[float(x) for x in row] for row in distances]
    members = {i: [i] for i in range(len(d))}  # keyed by the cluster's lowest item
    nearest = {a: near for a in members if (near := _nearest(d, members, a)) is not None}
    while nearest:
        a = min(nearest, key=lambda k: (nearest[k], k))
        gap, b = nearest[a]
        if gap >= threshold:  # as sklearn: clusters exactly threshold apart stay apart
            break
        size_a, size_b = len(members[a]), len(members[b])
        members[a] += members.pop(b)
        nearest.pop(b, None)
        for k in members:
            if k != a:  # the mean of all pairs across, from the two means it merges
                d[a][k] = d[k][a] = (size_a * d[a][k] + size_b * d[b][k]) / (size_a + size_b)
        for k in members:
            if k == a or k not in nearest or nearest[k][1] in (a, b):
                if (near := _nearest(d, members, k)) is not None:
                    nearest[k] = near
                else:
                    nearest.pop(k, None)
            elif k < a and (d[k][a], a) < nearest[k]:
                nearest[k] = (d[k][a], a)
    cluster_of = {item: key for key, items in members.items() for item in items}
    labels: dict[int, int] = {}
    return [labels.setdefault(cluster_of[i], len(labels)) for i in range(len(d))]


def cluster_shares(texts: list[str], threshold: float = 0.5) -> list[float]:
    """Each text's cluster size over the batch size: R-Zero's repetition penalty."""
    if not texts:
        return []
    labels = average_linkage_clusters(bleu_distances(texts), threshold)
    sizes = Counter(labels)
    return [sizes[label] / len(texts) for label in labels]

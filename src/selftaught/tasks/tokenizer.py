"""Character-level tokenizer: one token per character plus padding and end-of-sequence."""

from __future__ import annotations

PAD, EOS = 0, 1
_SPECIALS = 2

# Characters of the formats the loop itself adds around a task's answers: ``prompt answer ?`` asks
# the model for its verdict (YES / NO), ``prompt answer | revision`` asks it to revise.
VERDICT, YES, NO, REVISE = "?", "Y", "N", "|"
CONTROL = VERDICT + YES + NO + REVISE


class CharTokenizer:
    def __init__(self, alphabet: str, control: str = ""):
        alphabet += control
        if len(set(alphabet)) != len(alphabet):
            raise ValueError(f"alphabet has repeated characters: {alphabet!r}")
        self.alphabet = alphabet
        self._ids = {c: i + _SPECIALS for i, c in enumerate(alphabet)}
        # The loop's own marks are never part of an answer: decoding an answer must not emit them
        # (a model taught verdicts would otherwise leak Y into its answers).
        self.control_ids = [self._ids[c] for c in control]

    @property
    def vocab_size(self) -> int:
        return len(self.alphabet) + _SPECIALS

    def encode(self, text: str) -> list[int]:
        try:
            return [self._ids[c] for c in text]
        except KeyError as e:
            raise ValueError(f"character {e.args[0]!r} is not in the alphabet {self.alphabet!r}") from None

    def decode(self, ids) -> str:
        """Decode up to the first EOS; padding is skipped."""
        out = []
        for i in ids:
            i = int(i)
            if i == EOS:
                break
            if i >= _SPECIALS:
                out.append(self.alphabet[i - _SPECIALS])
        return "".join(out)


def control_clash(alphabet: str) -> str:
    """The loop's control characters that ``alphabet`` uses too, sorted ("" when none)."""
    return "".join(sorted(set(alphabet) & set(CONTROL)))


def tokenizer_for(alphabet: str, control: bool) -> CharTokenizer:
    """The task's tokenizer, with the loop's control characters when the recipe uses verdicts or
    revisions (kept out otherwise, so that models of plain recipes keep their vocabulary)."""
    if not control:
        return CharTokenizer(alphabet)
    clash = control_clash(alphabet)
    if clash:
        raise ValueError(f"the task's alphabet uses {clash!r}, which verdicts and revisions need")
    return CharTokenizer(alphabet, CONTROL)

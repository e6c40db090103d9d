"""A prompt of several turns (a revision: the problem, the first attempt, the request to revise it).

``Conversation`` is a ``str``: its value is what a policy without a chat format reads (our
character model's ``prompt + attempt + REVISE``, as before turns existed), so every stage that
passes prompts along (samplers, selectors, learners, the store) handles it as any prompt. A chat
policy reads its ``turns`` instead and renders them through its chat template (``messages``).
Anything that makes a new string of it (slicing, concatenation, a JSON round trip) keeps only the
value.
"""

from __future__ import annotations

from collections.abc import Sequence

ROLES = ("user", "assistant")  # the turns alternate, the user's first; the last is the user's, answered next


class Conversation(str):
    """``text``, the prompt as one string, holding the ``turns`` a chat template renders."""

    turns: tuple[str, ...]

    def __new__(cls, text: str, turns: Sequence[str]) -> Conversation:
        if len(turns) % 2 != 1:
            raise ValueError(f"a conversation to answer ends on a user's turn: {len(turns)} turns given")
        made = super().__new__(cls, text)
        made.turns = tuple(turns)
        return made

    def __reduce__(self):  # pickled whole (a Ray worker's prompts): str's own pickling drops the turns
        return (Conversation, (str(self), self.turns))

    def __repr__(self) -> str:
        return f"Conversation({str(self)!r}, {self.turns!r})"


def messages(prompt: str) -> list[dict[str, str]]:
    """The chat messages of a prompt: a ``Conversation``'s turns, else one user turn."""
    turns = prompt.turns if isinstance(prompt, Conversation) else (prompt,)
    return [{"role": ROLES[k % 2], "content": t} for k, t in enumerate(turns)]

"""Recipe text the tests share: a one-layer model on two- and three-number countdown."""


def countdown_header(rounds: int, seed: int, max_len: int) -> str:
    """The ``[run]``, ``[task]`` and ``[model]`` tables of a tiny countdown run (200 seed examples,
    one layer of width 32); a test adds the parts it is about."""
    return f"""
[run]
rounds = {rounds}
seed = {seed}
[task]
name = "countdown"
seed_min_difficulty = 2
seed_max_difficulty = 3
seed_examples = 200
[model]
n_layers = 1
d_model = 32
n_heads = 4
d_ff = 64
max_len = {max_len}
"""

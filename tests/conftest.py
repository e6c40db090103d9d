import os
import random

import pytest
import torch

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs two workers, one a core: each worker, and every process it starts, takes one
    # thread, so the workers do not fight over the cores (the learning tests' margins are measured
    # at 1 and 2 threads alike)
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slowest tests first, each followed by a quick one: `make test` hands each worker two
    tests at a time (``--maxschedchunk 1``), so no worker queues two long tests while another idles."""
    def seconds(item: pytest.Item) -> float:
        mark = item.get_closest_marker("slow")
        return mark.args[0] if mark else 0.0

    slow = sorted((i for i in items if seconds(i)), key=seconds, reverse=True)
    quick = [i for i in items if not seconds(i)]
    order = []
    for item in slow:
        order += [item] + quick[:1]
        quick = quick[1:]
    items[:] = order + quick


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    random.seed(0)
    yield

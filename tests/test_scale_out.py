"""Scale-out: a run's decoding and model judging spread over Ray workers store what a one-process
run stores, with any number of workers, with a worker killed mid-round, and across a SIGKILL and
resume. Ray runs on this machine only (loopback, two CPUs, no dashboard) and is shut down after."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from selftaught import faults
from selftaught.engine import Run
from selftaught.engine.executors import LocalExecutor, Replicated, Shard, run_shard
from selftaught.models.char_policy import CharPolicy
from selftaught.models.transformer import TransformerConfig
from selftaught.recipe import load_recipe
from selftaught.sample.draws import CallKey, Draws
from selftaught.store import RunStore
from selftaught.store.fingerprint import run_fingerprint
from selftaught.tasks.tokenizer import CharTokenizer
from test_search import SEARCH
from tiny_recipes import countdown_header

# Temperature sampling, two model judges (the verdict, taught each round, and the certainty), DPO:
# every path that reaches a replica (sampling, the verdict's own sampling, greedy evaluation,
# gradient-free scoring) and a weight change between them.
RECIPE = countdown_header(2, 5, 64) + """
[sampler]
type = "temperature"
samples = 2
batch_size = 64
[[judges]]
type = "self-verdict"
threshold = 0.5
train_problems = 24
train_steps = 4
[[judges]]
type = "self-certainty"
threshold = 0.0
[selector]
type = "pairs"
margin = 0.0
[learner]
type = "dpo"
seed_steps = 20
steps_per_round = 4
batch_size = 16
[curriculum]
type = "uniform"
problems_per_round = 40
[monitor]
eval_per_difficulty = 12
eval_max_difficulty = 3
eval_ahead = 0
pass_k = 2
[engine]
shard_size = 16
"""


def recipe(tmp_path: Path, *overrides: str):
    path = tmp_path / "scale.toml"
    path.write_text(RECIPE)
    return load_recipe(path, list(overrides))


def workers_of(run_dir: Path) -> dict[str, set[int]]:
    """Per worker, the weight versions its stored attempts were drawn with."""
    with RunStore(run_dir) as store:
        rows = store.db.execute("SELECT worker, version FROM attempts").fetchall()
    out: dict[str, set[int]] = {}
    for worker, version in rows:
        out.setdefault(worker.split("@")[0], set()).add(version)
    return out


# ---- without Ray -----------------------------------------------------------------------------------


class Reversed(LocalExecutor):
    """Runs a call's shards last first, as workers finishing out of order would hand them back."""

    def run(self, shards, done):
        out = [(run_shard(self.policies[s.member], s), f"r{i}") for i, s in reversed(list(enumerate(shards)))]
        return out[::-1]


def test_each_row_draws_from_its_shard_whatever_runs_the_shards():
    torch.manual_seed(0)
    tok = CharTokenizer("0123456789+=")
    policy = CharPolicy.create(TransformerConfig(vocab_size=tok.vocab_size, n_layers=1, d_model=32, n_heads=4,
                                                 d_ff=64, max_len=32), tok)
    prompts = [f"{a}+{b}=" for a in range(11, -1, -1) for b in range(3)]  # lengths 5, then 4: sorting moves rows
    limits = [6] * len(prompts)
    done = {}
    for executor in (LocalExecutor(), Reversed()):
        replicated = Replicated(policy, 0, executor, shard_size=5)
        done[type(executor).__name__] = replicated.generate(prompts, limits, temperature=1.0, generator=Draws(3))
    local, other = done["LocalExecutor"], done["Reversed"]
    assert [c.text for c in local] == [c.text for c in other]
    assert len({c.text for c in local}) > 10  # sampled, not one reply: the comparison is not vacuous
    assert {c.worker for c in other} == {f"r{i}" for i in range(8)}  # 36 rows in shards of 5
    # the shard of the shortest prompts, drawn alone from its own key, is what the call drew for it
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))[:5]
    alone = run_shard(policy, Shard(0, 0, "generate", ([prompts[i] for i in order], [6] * 5),
                                    {"temperature": 1.0, "top_k": 0, "top_p": 1.0, "batch_size": 5},
                                    CallKey(3, 0, 0).shard_seed(0)))
    assert [c.text for c in alone] == [local[i].text for i in order]


def test_a_weight_change_is_a_new_version_and_scoring_with_gradients_stays_here():
    torch.manual_seed(0)
    tok = CharTokenizer("0123456789+=")
    policy = CharPolicy.create(TransformerConfig(vocab_size=tok.vocab_size, n_layers=1, d_model=32, n_heads=4,
                                                 d_ff=64, max_len=32), tok)
    replicated = Replicated(policy, 0, LocalExecutor(), shard_size=2)
    assert replicated.generate(["1+2="], [3])[0].version == 0
    replicated.step(1e-2, lambda: replicated.answer_loss_backward(["1+2="], ["3"]))
    assert replicated.generate(["1+2="], [3])[0].version == 1
    prompts, answers = ["1+2=", "10+2=", "3+3="], ["3", "21", "6"]
    logps, mask = replicated.token_logps(prompts, answers)  # with gradients: one batch, on the driver
    assert logps.requires_grad
    with torch.no_grad():
        sharded, sharded_mask = replicated.token_logps(prompts, answers)  # shards of 2 rows, padded together
    assert torch.equal(sharded_mask, mask)
    torch.testing.assert_close(sharded, logps.detach(), rtol=0, atol=1e-6)


# ---- on Ray ----------------------------------------------------------------------------------------


@pytest.mark.slow(40)
def test_ray_runs_store_what_the_local_run_stores(tmp_path, monkeypatch):
    """One test, one cluster: xdist would hand separate tests to both workers, and two Ray clusters on
    two cores take twice as long. Each part compares the whole stored run with the local run."""
    ray = pytest.importorskip("ray")
    Run(recipe(tmp_path), tmp_path / "local").execute()
    local = run_fingerprint(tmp_path / "local")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    try:
        address = ray.get_runtime_context().gcs_address
        on_ray = ("engine.executor=\"ray\"", f"engine.address=\"{address}\"")

        # one or two workers: attempts, scores, metrics, losses, final weights and state all identical
        for workers in (1, 2):
            out = tmp_path / f"ray-{workers}"
            Run(recipe(tmp_path, *on_ray, f"engine.workers={workers}"), out).execute()
            assert run_fingerprint(out) == local
            drawn = workers_of(out)
            assert sorted(drawn) == [f"w{i}" for i in range(workers)]  # every worker drew, and only workers
            # each round's attempts name the weights they came from: after round 0's 20 seed steps, then later
            first, second = sorted(set().union(*drawn.values()))
            assert 20 <= first < second

        # a worker killed mid-round (after the first shard of round 1's sampling) is replaced
        run = Run(recipe(tmp_path, *on_ray, "engine.workers=2"), tmp_path / "killed-worker")
        killed = []

        def kill_a_worker(name: str, round_: int) -> None:
            if (name, round_) == ("sample", 1) and not killed:
                killed.append(run.executor.pids()[0])
                os.kill(killed[0], signal.SIGKILL)

        with monkeypatch.context() as patch:
            patch.setattr(faults, "point", kill_a_worker)
            run.execute()
        assert killed and run.executor.replaced >= 1
        assert run_fingerprint(tmp_path / "killed-worker") == local
        assert "w2" in workers_of(tmp_path / "killed-worker")  # the replacement drew some of the round's attempts

        # the driver killed with SIGKILL while shards are still on the workers, then resumed: bitwise
        path = tmp_path / "ray.toml"
        path.write_text(RECIPE + f'executor = "ray"\nworkers = 2\naddress = "{address}"\n')
        env = {k: v for k, v in os.environ.items() if k != faults.ENV}

        def selftaught(*args: str, kill_at: str | None = None) -> subprocess.CompletedProcess:
            return subprocess.run([sys.executable, "-m", "selftaught.cli", *args], capture_output=True, text=True,
                                  env=env | ({faults.ENV: kill_at} if kill_at else {}), timeout=300)

        out = tmp_path / "sigkill"
        driver = selftaught("run", str(path), "--out", str(out), kill_at="sample:2")
        assert driver.returncode == -signal.SIGKILL, driver.stderr
        resumed = selftaught("resume", str(out))
        assert resumed.returncode == 0, resumed.stderr
        assert run_fingerprint(out) == local

        # a tree search: the same trees (every node) whichever worker drew which step
        search = tmp_path / "search.toml"
        search.write_text(SEARCH)
        Run(load_recipe(search), tmp_path / "search-local").execute()
        Run(load_recipe(search, [*on_ray, "engine.workers=2"]), tmp_path / "search-ray").execute()
        searched = run_fingerprint(tmp_path / "search-ray")
        assert searched["nodes"] and searched == run_fingerprint(tmp_path / "search-local")

        # a challenger: the same proposals (and all else) whichever worker wrote which
        from test_self_play import tiny_challenger

        path, overrides = tiny_challenger(tmp_path / "challenger")
        overrides = [*overrides, "run.rounds=1"]
        Run(load_recipe(path, overrides), tmp_path / "challenger-local").execute()
        Run(load_recipe(path, [*overrides, *on_ray, "engine.workers=2"]), tmp_path / "challenger-ray").execute()
        played = run_fingerprint(tmp_path / "challenger-ray")
        assert played["proposals"] and played == run_fingerprint(tmp_path / "challenger-local")
    finally:
        ray.shutdown()


def test_an_unreachable_cluster_is_one_line_and_exit_2(tmp_path):
    pytest.importorskip("ray")
    path = tmp_path / "scale.toml"
    path.write_text(RECIPE + 'executor = "ray"\naddress = "127.0.0.1:9"\n')  # nothing listens on port 9
    done = subprocess.run([sys.executable, "-m", "selftaught.cli", "run", str(path), "--out", str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {path}: engine.address: cannot reach the Ray cluster at '127.0.0.1:9'"), done.stderr
    assert "Traceback" not in done.stderr

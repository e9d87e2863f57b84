"""Executors: in-process, process pool and Dask give the same results; failures surface.

The runner is a module-level fake (it pickles by reference), deterministic in the
scenario's values and seed except for ``wall_s`` and ``worker_pid``.
"""

from __future__ import annotations

import os
import socket
import time

import numpy as np
import pandas as pd
import pytest

from immodel.cli import main
from immodel.errors import UserError
from immodel.experiments import SweepFailed, load_sweep, run_sweep
from immodel.experiments.executors import InProcessExecutor, _check_workers, open_backend
from immodel.scenario import Scenario

SWEEP = {
    "scenario": "baseline",
    "replications": 2,
    "seed": 11,
    "set": {"duration_s": 5.0},
    "grid": {
        "network.downlink_loss": [0.0, 0.2],
        "transport.kind": ["push", "short_poll", "hybrid"],
    },
}
NOISE = ["wall_s", "worker_pid"]


def fake_runner(scenario: Scenario) -> dict:
    """Deterministic in values and seed; ``wall_s`` and ``worker_pid`` are not."""
    rng = np.random.default_rng(scenario["seed"])
    sent = int(rng.integers(100, 200))
    lost = int(rng.binomial(sent, scenario["network.downlink_loss"]))
    return {
        "messages_sent": sent,
        "lost": lost,
        "latency_p99_ms": None if scenario["transport.kind"] == "hybrid" else rng.random() * 100,
        "requests_per_s": np.float64(sent / scenario["duration_s"]),
        "wall_s": time.perf_counter(),
        "worker_pid": os.getpid(),
    }


def picky_runner(scenario: Scenario) -> dict:
    """Raises at one grid point, like a model bug that only some parameters reach."""
    if scenario["transport.kind"] == "short_poll" and scenario["network.downlink_loss"] > 0:
        raise ValueError("poll interval underflow")
    return fake_runner(scenario)


def dying_runner(scenario: Scenario) -> dict:
    """Kills its worker process at one grid point (an out-of-memory kill, say)."""
    if scenario["transport.kind"] == "hybrid":
        os._exit(3)
    return fake_runner(scenario)


def sweep_in(tmp_path, name, **kw) -> pd.DataFrame:
    return run_sweep(load_sweep(SWEEP), tmp_path / name, runner=fake_runner, progress=False, **kw)


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_process_pool_and_in_process_give_identical_results(tmp_path):
    local = sweep_in(tmp_path, "inproc", workers=1)
    pool = sweep_in(tmp_path, "pool", workers=2)
    assert set(local["worker_pid"]) == {os.getpid()}
    assert os.getpid() not in set(pool["worker_pid"])  # really ran elsewhere
    assert len(local) == 12
    pd.testing.assert_frame_equal(local.drop(columns=NOISE), pool.drop(columns=NOISE))


def test_dask_local_cluster_gives_identical_results(tmp_path):
    local = sweep_in(tmp_path, "inproc", workers=1)
    dask = sweep_in(tmp_path, "dask", scheduler="local", workers=2)
    assert os.getpid() not in set(dask["worker_pid"])  # a worker process, not this one
    pd.testing.assert_frame_equal(local.drop(columns=NOISE), dask.drop(columns=NOISE))


def test_the_simulator_on_two_dask_workers_gives_the_in_process_numbers_bit_for_bit(tmp_path):
    # The real runner, not a fake: worker processes started by Dask (from a fork server)
    # must simulate exactly what this process does; every metric but wall_s is equal.
    tiny = {
        "scenario": "baseline",
        "replications": 2,
        "set": {"workload.users": 30, "duration_s": 5.0, "network.downlink_loss": 0.1},
        "grid": {"transport.kind": ["push", "short_poll"]},
    }
    local = run_sweep(load_sweep(tiny), tmp_path / "one", workers=1, progress=False)
    dask = run_sweep(
        load_sweep(tiny), tmp_path / "dask", scheduler="local", workers=2, progress=False
    )
    assert len(local) == 4 and (local["messages_sent"] > 0).all()
    pd.testing.assert_frame_equal(local.drop(columns="wall_s"), dask.drop(columns="wall_s"))


def worker_settings() -> dict:
    """What a task sees of its worker: the malloc trim variable, Dask's profiler setting."""
    import dask

    return {
        "trim": os.environ.get("MALLOC_TRIM_THRESHOLD_"),
        "profiling": dask.config.get("distributed.worker.profile.enabled"),
        "pid": os.getpid(),
    }


def test_local_cluster_workers_run_like_pool_workers(tmp_path):
    # Dask's defaults made each run ~10 % slower in a worker than in the process pool: a
    # stack sampler every 10 ms and a fixed glibc trim threshold. The sweep's cluster
    # turns both off; the environment is otherwise this process's own.
    before = os.environ.get("MALLOC_TRIM_THRESHOLD_")
    with open_backend(workers=1, scheduler="local", dashboard_address=None) as backend:
        seen = backend.executor.submit(worker_settings).result()
    assert seen["pid"] != os.getpid()
    assert seen["profiling"] is False
    assert seen["trim"] == before  # nothing added by Dask (normally: unset)
    assert os.environ.get("MALLOC_TRIM_THRESHOLD_") == before


def test_unreachable_scheduler_fails_fast_with_one_error_line(tmp_path, capsys):
    sweep_file = tmp_path / "s.toml"
    sweep_file.write_text('scenario = "baseline"\n')
    address = f"tcp://127.0.0.1:{unused_port()}"
    started = time.monotonic()
    code = main(["sweep", str(sweep_file), "--scheduler", address])
    elapsed = time.monotonic() - started
    err = capsys.readouterr().err
    assert code == 2
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and address in errors[0] and "Traceback" not in err
    assert elapsed < 30  # a bound against a hang, not a speed goal (the timeout is 5 s)


def test_runner_exception_in_a_worker_process_comes_back_as_a_failure(tmp_path):
    with pytest.raises(SweepFailed) as info:
        run_sweep(load_sweep(SWEEP), tmp_path / "out", workers=2, runner=picky_runner)
    exc = info.value
    assert {(f.point, f.replication) for f in exc.failures} == {(4, 0), (4, 1)}
    assert all(f.error == "ValueError: poll interval underflow" for f in exc.failures)
    assert all("picky_runner" in f.details for f in exc.failures)  # the worker's traceback
    assert len(exc.results) == 10


def test_a_dead_worker_fails_its_tasks_without_hanging_or_losing_finished_ones(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(SweepFailed) as info:
        run_sweep(load_sweep(SWEEP), out, workers=2, runner=dying_runner)
    exc = info.value
    assert exc.failures  # the tasks in flight when the pool broke
    assert len(exc.failures) + exc.not_run + len(exc.results) == 12
    assert len(list((out / "parts").glob("*.parquet"))) == len(exc.results)
    # A re-run with a healthy runner completes exactly what is missing.
    frame = run_sweep(load_sweep(SWEEP), out, workers=2, runner=fake_runner)
    assert len(frame) == 12


def test_in_process_executor_stores_errors_and_lets_interrupts_through():
    executor = InProcessExecutor()
    assert executor.submit(pow, 2, 10).result() == 1024
    assert isinstance(executor.submit(int, "x").exception(), ValueError)

    def interrupted():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        executor.submit(interrupted)
    executor.shutdown()
    with pytest.raises(RuntimeError):
        executor.submit(pow, 2, 1)


@pytest.mark.parametrize("workers", [0, -2, 1.5, True])
def test_bad_worker_counts_are_user_errors(workers):
    with pytest.raises(UserError, match="--workers must be an integer ≥ 1"), open_backend(workers):
        pass


def test_one_worker_runs_in_process_and_more_use_a_process_pool():
    with open_backend(1) as one:
        assert isinstance(one.executor, InProcessExecutor) and one.window == 1
    with open_backend(3) as three:
        assert three.executor.submit(os.getpid).result() != os.getpid()
        # One task per worker: a Ctrl-C then waits only for runs that have started.
        assert three.window == 3


class FakeClient:
    def __init__(self, answer):
        self.answer = answer

    def run(self, fn):
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def test_dask_workers_without_immodel_or_with_another_version_are_refused():
    from immodel import __version__

    _check_workers(FakeClient({"tcp://w1": __version__}))  # same version: accepted
    with pytest.raises(UserError, match=r"run immodel 0\.0\.1 but this client runs"):
        _check_workers(FakeClient({"tcp://w1": __version__, "tcp://w2": "0.0.1"}))
    with pytest.raises(UserError, match=r"cannot run immodel .*ModuleNotFoundError"):
        _check_workers(FakeClient(ModuleNotFoundError("No module named 'immodel'")))

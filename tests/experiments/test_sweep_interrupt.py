"""Interrupting ``immodel sweep`` in a real process: Ctrl-C says what it waits for and
keeps the runs in flight, a second Ctrl-C stops the workers at once, SIGTERM/SIGHUP stop
it too; never an orphaned worker, and the finished rows stay collectable."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from immodel.experiments.sweep import collect_results

ROOT = Path(__file__).resolve().parents[2]

# Runs of a few seconds each, four of them on two workers.
SWEEP = """
scenario = "short-poll"
replications = 2
[set]
"workload.users" = 2000
duration_s = 40.0
drain_s = 5.0
[grid]
"transport.poll_interval_s" = [1.0, 2.0]
"""

pytestmark = [
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals"),
    pytest.mark.slow,
]


class Sweep:
    """``python -m immodel sweep`` in its own session (so Ctrl-C can go to its group)."""

    def __init__(self, tmp_path: Path) -> None:
        path = tmp_path / "s.toml"
        path.write_text(SWEEP)
        self.out = tmp_path / "out"
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        command = [sys.executable, "-m", "immodel", "sweep", str(path)]
        self.proc = subprocess.Popen(
            [*command, "--out", str(self.out), "--workers", "2"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            start_new_session=True,
        )
        self.err: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.workers: set[int] = set()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.err.append(line)

    def wait_for(self, condition, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            assert self.proc.poll() is None, f"sweep ended early: {''.join(self.err)}"
            assert time.monotonic() < deadline, f"timed out; stderr: {''.join(self.err)}"
            self.note_workers()
            time.sleep(0.1)

    def note_workers(self) -> None:
        try:
            children = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return
        self.workers.update(c.pid for c in children)

    def busy_workers(self) -> int:
        self.note_workers()
        alive = [psutil.Process(p) for p in self.workers if psutil.pid_exists(p)]
        return sum(1 for p in alive if p.cpu_times().user > 0.5)

    def signal_group(self, sig: int) -> None:
        os.killpg(self.proc.pid, sig)

    def finish(self, timeout_s: float = 120.0) -> int:
        status = self.proc.wait(timeout=timeout_s)
        self.reader.join(timeout=10)
        return status

    def orphans(self) -> list[int]:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            alive = [p for p in self.workers if psutil.pid_exists(p) and not _zombie(p)]
            if not alive:
                return []
            time.sleep(0.2)
        return alive


def _zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_first_ctrl_c_waits_for_runs_in_flight_and_keeps_them(tmp_path):
    sweep = Sweep(tmp_path)
    sweep.wait_for(lambda: sweep.busy_workers() >= 2)
    sweep.signal_group(signal.SIGINT)
    status = sweep.finish()
    err = "".join(sweep.err)
    assert status == 130, err
    assert "interrupted: waiting for the 2 run(s) in flight to finish" in err
    assert "Traceback" not in err
    assert sweep.workers and sweep.orphans() == []
    # The two runs in flight finished and were saved.
    assert len(collect_results(sweep.out, write=False)) == 2


def test_second_ctrl_c_stops_the_workers_at_once(tmp_path):
    sweep = Sweep(tmp_path)
    sweep.wait_for(lambda: sweep.busy_workers() >= 2)
    sweep.signal_group(signal.SIGINT)
    sweep.wait_for(lambda: any("interrupted: waiting" in x for x in sweep.err))
    started = time.monotonic()
    sweep.signal_group(signal.SIGINT)
    status = sweep.finish(timeout_s=60)
    err = "".join(sweep.err)
    assert status == 130, err
    assert time.monotonic() - started < 15, "the second Ctrl-C did not stop the runs at once"
    assert "Traceback" not in err
    assert sweep.orphans() == []
    assert (sweep.out / "results.parquet").is_file()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_hang_up_or_terminate_leaves_finished_rows_collectable(tmp_path, sig):
    sweep = Sweep(tmp_path)
    parts = sweep.out / "parts"
    sweep.wait_for(lambda: parts.is_dir() and any(parts.glob("p*.parquet")), timeout_s=180)
    sweep.note_workers()
    os.kill(sweep.proc.pid, sig)  # to the sweep process only, as a hang-up or kill would
    status = sweep.finish(timeout_s=60)
    err = "".join(sweep.err)
    assert status == 130, err
    assert "Traceback" not in err
    assert sweep.orphans() == []
    frame = collect_results(sweep.out, write=False)
    assert 1 <= len(frame) < 4
    assert len(frame) == len(list(parts.glob("p*.parquet")))

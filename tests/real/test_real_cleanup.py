"""``immodel real`` leaves no process behind when it is interrupted (Ctrl-C, SIGTERM) or
killed, and says so in one ``error:`` line with the shell's status for the signal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("trustme")

pytestmark = pytest.mark.timeout(120)
ROOT = Path(__file__).resolve().parents[2]


def _children(pid: int) -> list[int]:
    """Server processes started by ``pid`` (their parent is ``pid``)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == pid and b"immodel.real." in cmdline:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize(
    ("sig", "status", "said"),
    [
        (signal.SIGINT, 130, "interrupted"),
        (signal.SIGTERM, 143, "signal 15"),
        (signal.SIGKILL, -9, None),
    ],
)
def test_a_stopped_run_leaves_no_server_process(sig, status, said):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = [
        sys.executable,
        "-m",
        "immodel",
        "real",
        "baseline",
        "--set",
        "workload.users=10",
        "--set",
        "duration_s=20",
        "--set",
        "drain_s=1",
    ]
    proc = subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 30
        children: list[int] = []
        # logic0, access0 and the fault proxy
        while len(children) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
            children = _children(proc.pid)
        assert len(children) == 3
        time.sleep(1.0)  # into the run
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == status
    if said is not None:
        errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
        assert len(errors) == 1 and said in errors[0]
        assert "Traceback" not in err
    deadline = time.monotonic() + 10  # after SIGKILL the servers notice their closed stdin
    while any(_alive(p) for p in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(p) for p in children)

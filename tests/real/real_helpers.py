"""Shared by the tests of ``immodel real``: small scenarios and a process check."""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

import pytest

pytest.importorskip("trustme")
pytest.importorskip("aiohttp")

#: A small push scenario: 20 users at 0.5 msg/s for 3 s of sending, 1.5 s of drain: on
#: loopback without loss a message arrives within a round trip (~0.1 s with the 40 ms
#: legs) and nothing waits for a timeout, so the drain needs no margin for repairs.
SMALL = {
    "workload.users": 20,
    "workload.send_rate_per_user": 0.5,
    "duration_s": 3.0,
    "drain_s": 1.5,
}


def processes_mentioning(text: str) -> list[int]:
    """Pids of the processes whose command line contains ``text`` (Linux ``/proc``)."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text.encode() in cmdline.read_bytes():
                pids.append(int(cmdline.parent.name))
        except OSError:
            continue
    return pids


@contextlib.contextmanager
def _locked(path: Path):
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def shared_dir(tmp_path_factory) -> Path:
    """One folder for every pytest-xdist worker of this session: a module's tests may be
    spread over the workers, and a real run (seconds of wall-clock time) is made once."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    folder = root / "real-runs"
    folder.mkdir(exist_ok=True)
    return folder


def shared(tmp_path_factory, name: str, make, save, load):
    """``make(workdir)``'s value, made by the first worker to ask and ``save``d to a
    folder; the others ``load`` it from there."""
    root = shared_dir(tmp_path_factory)
    folder = root / name
    with _locked(root / f"{name}.lock"):
        if (folder / "done").exists():
            return load(folder)
        folder.mkdir(exist_ok=True)
        value = make(folder / "work")
        save(value, folder)
        (folder / "done").write_text("")
        return value


def shared_real_run(tmp_path_factory, name: str, scenario):
    """``(result, workdir)`` of ``run_real(scenario, keep_dir=workdir)``, once per session."""
    from immodel.real import run_real
    from immodel.sim.model import load_run

    return shared(
        tmp_path_factory,
        name,
        lambda work: (run_real(scenario, keep_dir=str(work)), work),
        lambda value, folder: value[0].write(folder / "result"),
        lambda folder: (load_run(folder / "result"), folder / "work"),
    )

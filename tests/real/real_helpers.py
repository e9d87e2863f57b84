"""Shared by the tests of ``immodel real``: small scenarios and a process check."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("trustme")
pytest.importorskip("aiohttp")

#: A small push scenario: 20 users at 0.5 msg/s for 3 s of sending, 3 s of drain (the
#: drain every repair needs on loopback: no loss, ACK timeout 5 s never reached).
SMALL = {
    "workload.users": 20,
    "workload.send_rate_per_user": 0.5,
    "duration_s": 3.0,
    "drain_s": 3.0,
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

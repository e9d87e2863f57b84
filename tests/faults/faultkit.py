"""Shared builders for the fault tests: small deployments, derived drains, replay hints.

Every run that a test judges goes through :func:`run_checked` or :func:`replay_hint`, so a
failure names its seed and the exact ``immodel run`` command that repeats it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from immodel import Scenario, run
from immodel.experiments.ablation import MECHANISMS, replay_command
from immodel.sim.faults import required_drain_s
from immodel.sim.model import Result

# Three logic nodes (users spread over them by a stable hash), groups and 1:1 traffic,
# constant latency: a run takes a fraction of a second and every fault has something to
# disturb. The datagram model, so that the mechanisms' claims are tested where the
# application sees every loss.
SMALL: dict[str, Any] = {
    "name": "faults-test",
    "duration_s": 30.0,
    "workload.users": 24,
    "workload.send_rate_per_user": 0.3,
    "workload.group_share": 0.3,
    "workload.groups": 3,
    "workload.group_size": 8,
    "server.nodes": 3,
    "network.model": "datagram",
}

ALL_ON = MECHANISMS["+sync"]


def scenario(faults: list[dict[str, Any]], **overrides: Any) -> Scenario:
    """:data:`SMALL` + ``overrides`` + ``faults``, with the drain its timeouts require."""
    sc = Scenario.load({**SMALL, **overrides, "faults": faults})
    return sc.with_overrides({"drain_s": required_drain_s(sc)})


class replay_hint:  # lower case: called like a function in assert messages
    """Seed and command that replay ``sc``, as an ``assert`` message.

    Lazy: the scenario is written to a temporary file (or ``directory``) only when the
    message is formatted, i.e. when the assertion fails.
    """

    def __init__(self, sc: Scenario, directory: Path | None = None) -> None:
        self.sc = sc
        self.directory = directory
        self._text: str | None = None

    def __str__(self) -> str:
        if self._text is None:
            command = replay_command(self.sc, self.directory)
            self._text = f"seed {self.sc['seed']}; replay with: {command}"
        return self._text

    __repr__ = __str__


def run_checked(
    sc: Scenario,
    *,
    lost: int = 0,
    duplicates: int = 0,
    group_order: int = 0,
    replay_dir: Path | None = None,
) -> Result:
    """Run ``sc``; fail with the replay command unless the counts are as given."""
    result = run(sc)
    s = result.summary
    got = (s["lost"], s["duplicates"], s["order_violations_group"])
    if got != (lost, duplicates, group_order):
        raise AssertionError(
            f"lost/duplicates/group order violations = {got}, expected "
            f"{(lost, duplicates, group_order)}; {replay_hint(sc, replay_dir)}"
        )
    return result

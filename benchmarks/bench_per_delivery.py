"""Simulator cost per delivered message, for one configuration, in this process.

Usage::

    .venv/bin/python benchmarks/bench_per_delivery.py push 10000 30 [stream|datagram]

Builds the world (not timed), runs it, and prints the events and the wall time per
delivered message. Run it from two checkouts back to back (``PYTHONPATH=OTHER_CHECKOUT``
for the other one) to compare two versions of the simulator on the same machine; a
figure, not an assertion.
"""

from __future__ import annotations

import sys
import time
import warnings


def main(argv: list[str]) -> None:
    from immodel.scenario import Scenario
    from immodel.sim import model
    from immodel.sim.world import World

    warnings.simplefilter("ignore")
    kind, users, duration_s = argv[0], int(argv[1]), float(argv[2])
    over = {
        "transport.kind": kind,
        "workload.users": users,
        "workload.send_rate_per_user": 0.01,
        "duration_s": duration_s,
        "drain_s": 10.0,
    }
    if len(argv) > 3:
        over["network.model"] = argv[3]
    world = World(Scenario.load("baseline", over))
    t0 = time.perf_counter()
    world.run()
    run_s = time.perf_counter() - t0
    s = model.collect(world, started_at=t0).summary
    per = max(1, s["deliveries"])
    print(
        f"{kind} users={users} events={s['sim_events']} deliveries={s['deliveries']} "
        f"run_s={run_s:.2f} us_per_delivery={1e6 * run_s / per:.1f} "
        f"events_per_delivery={s['sim_events'] / per:.1f}"
    )


if __name__ == "__main__":
    main(sys.argv[1:])

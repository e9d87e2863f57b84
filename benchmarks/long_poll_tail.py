"""Where a long-poll delivery's time goes, simulated against real, message by message.

    .venv/bin/python benchmarks/long_poll_tail.py [--users N] [--duration S] [--latency-ms MS]

Runs the long-poll scenario of ``benchmarks/sim_vs_real.py`` both ways with the same seed
(the same plan, so the same messages), and splits each delivery into the sender's leg
(submit -> stored: uplink latency, the send's HTTPS request, the store) and the
recipient's leg (stored -> shown: waiting for a held poll or the next one, the answer's
way back). Prints their p50/p99 per side, the real run's harness timing (the load
generator's event-loop lag, an answer's way back from the access node) and, for the
messages whose recipient's leg is in the real run's top 5 %, the same messages' legs in
the simulator.
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np

from immodel import Scenario
from immodel.experiments.sim_vs_real import calibrate, latency_legs_ms, matched_runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    base = {
        "workload.users": args.users,
        "workload.send_rate_per_user": 0.5,
        "duration_s": args.duration,
        "drain_s": 3.0,
        "transport.kind": "long_poll",
        "transport.long_poll_hold_s": 5.0,
    }
    calibration = calibrate(Scenario.load("baseline", base))
    sc = Scenario.load("baseline", {**base, "network.latency_ms": args.latency_ms})
    sim, real = matched_runs(sc, calibration)
    sides = {"sim": latency_legs_ms(sim), "real": latency_legs_ms(real)}
    for name, legs in sides.items():
        parts = ", ".join(
            f"{leg} p50 {np.percentile(legs[leg], 50):.1f} p99 {np.percentile(legs[leg], 99):.1f}"
            for leg in ("send_to_stored", "stored_to_shown", "total")
        )
        print(f"{name} ({len(legs['key'])} deliveries): {parts}")
    s = real.summary
    print(
        f"real harness: loadgen lag p99 {s['loadgen_lag_p99_ms']:.1f} max "
        f"{s['loadgen_lag_max_ms']:.1f}; poll answer -> client p50 "
        f"{s['poll_return_p50_ms']:.1f} p99 {s['poll_return_p99_ms']:.1f} ms"
    )
    real_legs, sim_legs = sides["real"], sides["sim"]
    sim_at = {k: i for i, k in enumerate(sim_legs["key"])}
    cut = np.percentile(real_legs["stored_to_shown"], 95)
    print(f"real stored->shown top 5 % (>= {cut:.1f} ms), against the same message simulated:")
    for i in np.argsort(-real_legs["stored_to_shown"]):
        if real_legs["stored_to_shown"][i] < cut:
            break
        j = sim_at.get(real_legs["key"][i])
        sim_leg = f"{sim_legs['stored_to_shown'][j]:.1f}" if j is not None else "-"
        print(
            f"  {real_legs['key'][i]}: real {real_legs['stored_to_shown'][i]:.1f} "
            f"sim {sim_leg} (send->stored real {real_legs['send_to_stored'][i]:.1f})"
        )


if __name__ == "__main__":
    main()

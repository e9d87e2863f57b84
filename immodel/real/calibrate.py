"""Calibration: the real servers' per-operation costs on this machine, as scenario keys.

The simulator's service times (``server.*_ms``) are what a deployment spends per
operation. Here they are measured on the harness's own code, so that a simulated run
of the ``calibrated-loopback`` preset is the simulator's account of what ``immodel
real`` does on this machine:

* **logic operations** (:func:`measure_logic_costs`): a :class:`~immodel.real.
  logic_server.LogicServer` in this process, on a fresh SQLite store, with in-memory
  links to one access node (frames are encoded, then dropped); CPU time
  (``time.process_time``) of N repetitions of: a 1:1 send to a connected push recipient
  (dedup, admission, the store transaction, the reply, the fan-out and the push), a
  retransmitted push alone, an ACK, a sync page with nothing new (base) and with 20
  items (per item), a short poll with nothing waiting, with 20 waiting (per message),
  and a long poll parked (hold);
* **access operations** (:func:`measure_access_cost`): from a real run, the access
  processes' CPU time over the frames they carried (requests up, frames down): TLS,
  framing and forwarding together, per frame;
* **the logic tier's own I/O** (:func:`measure_logic_io_cost`): the operations above are
  timed without a socket (frames are encoded, then dropped; nothing is read or decoded),
  but a logic process also reads each frame off its access link, decodes it, writes
  what it answers, and runs its event loop around both. From a real run: the logic
  processes' CPU time, less what the counted operations cost at the in-process rates
  (so nothing is counted twice), over the frames they exchanged with the access tier
  (counted by the servers themselves from the sending period's start, every kind: sends
  up and replies down, pushes and retransmits down, ACKs up, sync requests up and pages
  down, polls up and answers down, logins, attaches and detaches, copies routed between
  logic nodes), per frame;
* **the loopback stack** (:func:`loopback_samples_ms`): a real run with no added
  latency, and the simulated run of the same scenario with the measured costs and no
  latency: what each real message took from send to stored (one way: the processes
  share one clock) beyond the simulator's median for the same is a sample of the
  one-way time of what the simulator does not model (kernel, TLS records, HTTP, the
  event loops' scheduling, a machine shared with other work). The send → stored leg is
  used, not the delivery, because a poller's delivery also waits for its next poll.

:func:`preset` turns the measurements into scenario keys, each logic operation with the
I/O of the frames it makes on the logic process (``io`` = the per-frame cost; the
simulator charges these keys to the logic node's stages):

* ``store_ms`` = the send less its push + 2 io (the send up, the reply down); the other
  send-path stages 0;
* ``fanout_ms_per_recipient`` = the push + 1 io (the push frame) on push; on polling
  the push only: a poller's copy goes down in a poll's answer, whose frame ``poll_ms``
  carries;
* ``retransmit_ms`` = the push + 1 io (a pushed frame again);
* ``ack_ms`` = the ACK + 1 io (one ACK frame up: the simulator charges ``ack_ms`` per
  acknowledged id, and a push client acknowledges each push on its own);
* ``sync_ms`` = the empty page + 2 io (request up, page down); ``sync_ms_per_item``
  as measured (a bigger frame: its encoding is in the measurement);
* ``poll_ms`` = the empty poll + 2 io (the poll up, its answer down: a held poll's
  answer too, later); ``poll_ms_per_message`` as measured;
* ``hold_ms`` as measured (parking makes no frame; the simulator charges it to the
  access node, where its long polls wait);
* logins, attaches, detaches and routed copies have no key on the simulator's logic
  tier: their frames are in the measured average, not in a simulated run's logic load.

And one worker per stage and per access node (each process is one asyncio thread),
constant service times (the measured operations vary little), and ``network.latency_ms``
the loopback's one-way time as an empirical distribution.
``benchmarks/calibrate_loopback.py`` writes it to
``immodel/scenarios/calibrated-loopback.toml``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from immodel.protocol.messages import Message, SyncRequest
from immodel.real import wire
from immodel.real.common import run_sync
from immodel.real.store import create


class _NullWriter:
    """An access link's writer that drops what it is given (its encoding is paid)."""

    def write(self, data: bytes) -> None:
        pass

    def is_closing(self) -> bool:
        return False


def _per_op_ms(fn, n: int) -> float:
    t0 = time.process_time()
    for i in range(n):
        fn(i)
    return (time.process_time() - t0) * 1000.0 / n


def measure_logic_costs(scenario, n: int = 300) -> dict[str, float]:
    """Milliseconds of CPU per logic operation (see the module docstring)."""
    from immodel.real.logic_server import LogicServer, _AccessLink

    async def measure() -> dict[str, float]:
        with tempfile.TemporaryDirectory(prefix="immodel-calibrate-") as folder:
            db = str(Path(folder) / "store.sqlite")
            create(db, {})
            cfg = {
                "t0": time.monotonic(),
                "dir": folder,
                "db": db,
                "groups": {},
                "scenario": dict(scenario.values),
            }
            server = LogicServer(cfg, 0)
            link = _AccessLink(_NullWriter())
            server._attach(link, 1, "push")  # the recipient, connected by push
            server._attach(link, 2, "push")  # the sender
            server._attach(link, 3, "poll")  # a poller
            out: dict[str, Any] = {}

            def send(i: int, to: int = 1) -> None:
                msg = Message(f"2-{to}-{i}", 2, f"d{min(2, to)}-{max(2, to)}", False, 200)
                server.on_send(link, 2, msg)

            out["send_ms"] = _per_op_ms(send, n)
            # pushes alone: retransmit what waits unacknowledged for user 1
            pending = server.node.pending
            out["push_ms"] = _per_op_ms(
                lambda i: server._push_out(pending.handle_timeout(1e9 + i * 1e3)), 10
            ) / max(1, pending.waiting(1))
            ids = [f"2-1-{i}" for i in range(n)]
            out["ack_ms"] = _per_op_ms(
                lambda i: server.handle(link, {"op": "ack", "user": 1, "ids": [ids[i]]}), n
            )
            top = max(server.store.db.execute("SELECT MAX(order_key) FROM stored").fetchone())

            def sync(i: int, cursor: int) -> None:
                req = SyncRequest(1, (("d1-2", cursor),), 100, (), ())
                server.handle(link, {"op": "sync", "req": wire.sync_request_to_wire(req)})

            out["sync_ms"] = _per_op_ms(lambda i: sync(i, top + 1), n)
            keys = [
                r[0]
                for r in server.store.db.execute(
                    "SELECT order_key FROM stored ORDER BY order_key"
                ).fetchall()
            ]
            twenty = _per_op_ms(lambda i: sync(i, keys[-21]), n)
            out["sync_ms_per_item"] = max(0.0, (twenty - out["sync_ms"]) / 20)
            out["poll_ms"] = _per_op_ms(lambda i: server.on_poll(link, 3, 0.0), n)
            for i in range(20 * n):
                send(i, to=3)
            t0 = time.process_time()
            for _ in range(n):
                server.on_poll(link, 3, 0.0)  # 20 waiting each time (batch 50 ≥ 20)
                server.node.pending.handle_ack(3, [f"2-3-{j}" for j in range(20 * _, 20 * _ + 20)])
            per_poll = (time.process_time() - t0) * 1000.0 / n
            out["poll_ms_per_message"] = max(0.0, (per_poll - out["poll_ms"]) / 20)
            out["hold_ms"] = _per_op_ms(lambda i: server.on_poll(link, 3, 30.0), n)
            for held in server.held.values():
                held[1].cancel()
            server.store.close()
            return out

    return run_sync(measure())


def measure_access_cost(result) -> float:
    """Milliseconds of access-process CPU per frame of a real run (requests up + frames
    down: replies, pushes, sync pages, poll answers)."""
    s = result.summary
    messages = result.messages
    frames_down = (
        s["messages_sent"]  # replies
        + int(messages["copies"].sum())  # copies shown ≈ frames that carried them
        + s["requests_sync"]
        + s["requests_poll"]
    )
    frames = s["requests_total"] - s["requests_heartbeat"] + frames_down
    return 1000.0 * s["cpu_s_access"] / frames if frames else 0.0


def logic_frames(counters: dict[str, Any]) -> int:
    """Frames a real run's logic processes read (``run_in_<op>``) and wrote
    (``run_out_<op>``) from the sending period's start, every op."""
    return int(sum(v for k, v in counters.items() if k.startswith(("run_in_", "run_out_"))))


def logic_in_process_ms(counters: dict[str, Any], costs: dict[str, float]) -> float:
    """Milliseconds the logic operations a real run counted cost at the in-process rates
    of :func:`measure_logic_costs`: what the preset already charges without I/O."""
    c = counters
    return (
        c.get("run_stored", 0) * (costs["send_ms"] - costs["push_ms"])
        + c.get("run_out_push", 0) * costs["push_ms"]
        + c.get("run_in_ack", 0) * costs["ack_ms"]
        + c.get("run_in_sync", 0) * costs["sync_ms"]
        + c.get("run_sync_items", 0) * costs["sync_ms_per_item"]
        + c.get("run_in_poll", 0) * costs["poll_ms"]
        + c.get("run_poll_items", 0) * costs["poll_ms_per_message"]
        + c.get("run_polls_held", 0) * costs["hold_ms"]
    )


def measure_logic_io_cost(results, costs: dict[str, float]) -> float:
    """Milliseconds of logic-process CPU per frame exchanged with the access tier, beyond
    the in-process operation costs ``costs`` (:func:`measure_logic_costs`), from one or
    more real runs pooled: (logic CPU − :func:`logic_in_process_ms`) / :func:`logic_frames`.
    The logic CPU is counted over the same interval as the frames (from the sending
    period's start to the stop); the processes' idle work (a counter flush twice a
    second, ~2 ms of CPU per second) is spread over the frames with the rest."""
    if not isinstance(results, list | tuple):
        results = [results]
    cpu_ms = sum(1000.0 * r.summary["cpu_s_logic"] for r in results)
    in_process = sum(logic_in_process_ms(r.counters, costs) for r in results)
    frames = sum(logic_frames(r.counters) for r in results)
    if frames == 0:
        raise ValueError("the calibration run's logic processes exchanged no frames")
    return max(0.0, (cpu_ms - in_process) / frames)


def preset(
    costs: dict[str, float],
    access_ms: float,
    loopback_ms: float | list[float],
    io_ms: float = 0.0,
    transport: str = "push",
) -> dict[str, Any]:
    """The scenario keys of the calibrated preset (see the module docstring): the logic
    operations ``costs`` with ``io_ms`` per frame each makes on ``transport``."""
    r = 4  # decimals of a millisecond kept: 0.1 µs

    def ms(x: float) -> float:
        return round(max(0.0, x), r)

    # a push recipient's copy is a frame of its own; a poller's rides on a poll's answer
    fanout_frames = 1 if transport == "push" else 0

    return {
        "server.workers": 1,
        "server.access_workers": 1,
        "server.service_dist": "constant",
        "server.auth_ms": 0.0,
        "server.checks_ms": 0.0,
        "server.recent_contacts_ms": 0.0,
        "server.status_ms": 0.0,
        "server.store_ms": ms(costs["send_ms"] - costs["push_ms"] + 2 * io_ms),
        "server.fanout_ms_per_recipient": ms(costs["push_ms"] + fanout_frames * io_ms),
        "server.retransmit_ms": ms(costs["push_ms"] + io_ms),
        "server.ack_ms": ms(costs["ack_ms"] + io_ms),
        "server.sync_ms": ms(costs["sync_ms"] + 2 * io_ms),
        "server.sync_ms_per_item": ms(costs["sync_ms_per_item"]),
        "server.sync_ms_per_conversation": 0.0,
        "server.poll_ms": ms(costs["poll_ms"] + 2 * io_ms),
        "server.poll_ms_per_message": ms(costs["poll_ms_per_message"]),
        "server.hold_ms": ms(costs["hold_ms"]),
        "server.access_request_ms": ms(access_ms),
        "server.access_frame_ms": ms(access_ms),
        "server.failover_detect_s": 0.0,
        "network.latency_ms": (
            ms(loopback_ms)
            if isinstance(loopback_ms, int | float)
            else {"dist": "empirical", "samples": [ms(x) for x in loopback_ms]}
        ),
    }


def uplink_ms(result):
    """Each message's send → stored time (ms) in a run: the uplink's one-way time plus
    the send path's processing. In a real run both ends read the machine's one
    CLOCK_MONOTONIC, so this is a true one-way measurement."""
    import numpy as np  # (numpy array out)

    per_msg = result.messages.drop_duplicates("msg_id")
    values = (per_msg["t_stored"] - per_msg["t_send"]).to_numpy(dtype=float) * 1000.0
    return values[~np.isnan(values)]


def loopback_samples_ms(real_uplink_ms, sim_uplink_p50_ms: float, n: int = 100) -> list[float]:
    """The loopback stack's one-way time as an empirical distribution: each message's
    send → stored time in a real run with no added network latency (:func:`uplink_ms`),
    less the simulator's median account of the same (its send-path service times);
    summarised by ``n`` evenly spaced quantiles, in ms."""
    import numpy as np

    values = np.asarray(real_uplink_ms, dtype=float)
    if values.size == 0:
        raise ValueError("the calibration run stored nothing: no latency to measure")
    one_way = np.clip(values - sim_uplink_p50_ms, 0.0, None)
    quantiles = np.quantile(one_way, (np.arange(n) + 0.5) / n)
    return [round(float(q), 4) for q in quantiles]

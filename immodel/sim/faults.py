"""Fault injection: the scenario's ``faults`` list, scheduled on the run's clock.

Each kind, with its parameters (times in seconds of simulated time) and what it does:

* ``server_crash`` (``at_s``, ``down_s``, ``node``) — a **logic** node's process is
  interrupted (:meth:`simpy.Process.interrupt`) and stays down ``down_s``: its pending-ACK
  queues (counter ``crash_pending_lost``), the jobs in its stages (``stage_jobs_lost``),
  replies it had not sent yet and (unless ``reliability.dedup_durable``) its dedup window
  are lost; the durable message store, offline queues and the fan-out log survive, and
  fan-outs the crash interrupted are redone when it comes back. The clients' connections
  live on the access tier and **stay up** (the article's figure 4): nobody reconnects;
  requests of the node's users are lost until the access tier notices
  (``server.failover_detect_s``) and routes them to the surviving logic nodes. What the
  crash lost is repaired by the next receipt sync, or not at all for a user who receives
  nothing more. A crash of a node that is already down extends the outage.
* ``gateway_crash`` (``at_s``, ``node``, ``down_s``) — access node ``node`` dies for
  ``down_s``: its process resets every connection, so its clients learn at once and
  reconnect to a live access node (or keep trying until it is back); the logic tier moves
  what they had not acknowledged to their offline queues. Without ``node``
  (``share``, the older form) the access tier silently drops the connections of a share
  of the connected users (unacknowledged messages go to the durable offline queues) and
  the clients notice at their next heartbeat/poll plus the request timeout.
* ``client_crash`` (``at_s``, ``share``, ``keep_local_state``) — a share of the online
  apps restart and reconnect at once. With local state (the default, an app's local
  database) nothing is forgotten. Without it the receiver forgets its cursors and shown
  ids, so its first sync pulls the conversations' whole history again and shows it anew
  (the checker counts those copies as duplicates: a reinstalled app), and the sender
  forgets what it had in flight (the app reports those as failed, ``app_restart``).
* ``partition`` (``at_s``, ``down_s``, ``share``, ``direction``) — a share of users loses
  every packet in one (``uplink`` / ``downlink``) or ``both`` directions for a while. A
  short partition is repaired in place by retries, retransmits and sync once it heals.
  A longer one trips the heartbeats: a push client notices at its next heartbeat plus
  the request timeout and reconnects (backing off until the partition heals), and the
  server drops a connection silent for ``transport.liveness_timeout_s`` (unacknowledged
  messages move to the offline queue; ``liveness_drops``).
* ``loss_burst`` (``at_s``, ``down_s``, ``uplink_loss``, ``downlink_loss``) — the loss of
  everyone's links is replaced for a while.
* ``store_failure`` (``at_s``, ``down_s``, ``prob``, ``node``) — writes on the node (the
  node of the *sender*, which processes the send) fail with probability ``prob``
  (``store_failures``): the sender is told "not stored" (retryable) and never "success"
  for that attempt; its retry may be stored.
* ``slow_server`` (``at_s``, ``down_s``, ``extra_ms``, ``node``) — the node answers its
  senders ``extra_ms`` late: the write and the fan-out are on time, the reply is not (the
  article's failure 3). With ``extra_ms`` above ``reliability.uplink_timeout_s`` the
  sender retries a message that is already stored; the dedup window answers the retry
  with the original reply (``dedup_hits``) instead of storing it again
  (``messages_stored_twice``).
* ``clock_skew`` (``at_s``, ``skew_ms``, ``node``) — from ``at_s`` on, the node's clock
  is ``skew_ms`` ahead (negative: behind) for the 1:1 timestamps it stamps. Each node's
  stamps stay monotonic per conversation, so a recipient, who only receives the other
  party's messages (all stamped by one node), never sees them out of order; what breaks
  is the order *between* the two directions of a conversation, measured by
  ``stored_order_inversions`` and ``causal_order_violations``
  (:mod:`immodel.analysis.metrics`). Group seq comes from one durable sequencer and is
  unaffected.

Overlapping faults of one kind combine: the strongest applies (the highest loss, failure
probability or extra delay), a user stays partitioned until every partition that holds
it has healed, and a node stays down until its last overlapping crash ends.

Every fault that fires appends an entry to ``world.fault_log`` (kind, start, end, node,
the users it hit, the users online when it began); the recovery metrics of
:mod:`immodel.sim.model` read it. Random choices (which users) come from the ``faults``
stream, so adding a fault does not reshuffle the workload or the network.

Faults act on the world through :class:`FaultTarget`, the few operations listed there;
this module imports nothing of the simulator's tiers.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, Protocol

from immodel.sim.backend import rest_backlog_s
from immodel.sim.network import Z_99, Link
from immodel.sim.network_constants import CLOCK_GRANULARITY_S


class FaultTarget(Protocol):
    """What a fault needs of the simulated world (:class:`immodel.sim.world.World`)."""

    env: Any
    sc: Any
    streams: Any
    clients: list
    nodes: list  # logic nodes: ``up``, ``process``, ``down_until``, ``core``, fault knobs
    fault_log: list
    counters: dict
    n_users: int
    up: Link
    down: Link
    online_pos: dict

    def later(self, delay: float, fn: Any, arg: Any) -> None: ...
    def connected_users(self) -> list[int]: ...
    def users_of_logic_node(self, node_id: int) -> list[int]: ...
    def drop_connection(self, uid: int, clean: bool) -> None: ...
    def detect_dead_connection(self, client: Any) -> None: ...
    def notice_time_s(self, client: Any) -> float: ...
    def restart_app(self, uid: int, keep_local_state: bool) -> None: ...
    def reconnect_silent(self, uid: int, conn: Any) -> None: ...
    def serves(self, conn: Any) -> bool: ...
    def crash_access(self, node_id: int, down_s: float) -> list[int] | None: ...


#: Fault kinds after which clients lose their connection and must recover.
CRASH_KINDS = ("server_crash", "gateway_crash", "client_crash")


def fault_end_s(fault: dict[str, Any]) -> float:
    """When ``fault`` stops acting: ``at_s + down_s`` for faults that last, else ``at_s``.

    A ``clock_skew`` never ends, but it needs no recovery either, so its end is its start.
    """
    return fault["at_s"] + fault.get("down_s", 0.0)


# The drain bounds accept a 1e-6 chance of being exceeded: per packet for latency, per
# chain of attempts for retransmits and reconnects.
_TAIL = 1e-6
_Z_TAIL = 4.753424308822899  # standard normal quantile of 1 − 1e-6


def latency_bound_s(spec: Any) -> float:
    """A one-way latency (s) that a packet exceeds with probability ≤ 1e-6 (``spec`` in ms
    as ``network.latency_ms`` takes it): the value itself for a constant, the largest
    sample for an empirical table, the 1 − 1e-6 quantile for lognormal and exponential."""
    if isinstance(spec, int | float):
        return float(spec) / 1000.0
    dist = spec["dist"]
    if dist == "constant":
        return spec["value"] / 1000.0
    if dist == "empirical":
        return max(spec["samples"]) / 1000.0
    if dist == "exponential":
        return spec["mean"] * -math.log(_TAIL) / 1000.0
    sigma = math.log(spec["p99"] / spec["median"]) / Z_99
    return spec["median"] * math.exp(sigma * _Z_TAIL) / 1000.0


def _attempts(q: float, minimum: int, tail: float) -> int:
    """Tries needed so that all of them failing, each with probability ``q``, has
    probability ≤ ``tail`` (at least ``minimum``)."""
    if q <= 0.0:
        return minimum
    if q >= 1.0:
        raise ValueError("no drain is long enough on a network that loses every packet")
    return max(minimum, math.ceil(math.log(tail) / math.log(q)))


def repair_rounds(scenario: Any, tail: float = _TAIL) -> int:
    """Repair rounds needed with the scenario's background loss: 2 on a lossless network
    (a retransmit or login push, then the sync of a gap it reveals), else enough that a
    round trip fails every time with probability ≤ ``tail``. In the stream model the
    transport repairs segment loss itself (:func:`stream_delay_bound_s`), so 2."""
    if scenario["network.model"] == "stream":
        return 2
    q = 1.0 - (1.0 - scenario["network.uplink_loss"]) * (1.0 - scenario["network.downlink_loss"])
    return _attempts(q, 2, tail)


def stream_delay_bound_s(scenario: Any, tail: float = _TAIL) -> float:
    """Stream model: the extra delay (s) that a segment's retransmissions add with
    probability ≥ 1 − ``tail``, on the lossier direction: k retransmissions, with k
    such that losing k + 1 transmissions has probability ≤ ``tail``, at an RTO that
    starts at max(the round-trip bound, ``network.rto_min_ms``) and doubles up to
    ``network.rto_max_ms``. Head-of-line blocking behind such a segment is covered by
    the same bound (what waits behind it is released when it arrives)."""
    if scenario["network.model"] != "stream":
        return 0.0
    p = max(scenario["network.uplink_loss"], scenario["network.downlink_loss"])
    if p <= 0.0:
        return 0.0
    k = _attempts(p, 1, tail) - 1
    # connections are established by then: their RTO starts from the measured round
    # trip (the handshake seeds it), at least the floor
    rtt = 2.0 * latency_bound_s(scenario["network.latency_ms"])
    rto = max(rtt + CLOCK_GRANULARITY_S, scenario["network.rto_min_ms"] / 1000.0)
    cap = scenario["network.rto_max_ms"] / 1000.0
    total = 0.0
    for _ in range(k):
        total += min(rto, cap)
        rto *= 2.0
    return total


def connect_attempts(scenario: Any, tail: float = _TAIL) -> int:
    """Connection attempts needed after the faults end: 1 on a lossless network, else
    enough that every one failing (any handshake or login packet lost) has probability
    ≤ ``tail``."""
    trips = scenario["transport.handshake_rtts"] + 1
    ok = (
        (1.0 - scenario["network.uplink_loss"]) * (1.0 - scenario["network.downlink_loss"])
    ) ** trips
    return _attempts(1.0 - ok, 1, tail)


def settle_time_s(scenario: Any, rounds: int | None = None) -> float:
    """How long after the last disturbance (end of sending, or of the last fault) every
    repair of the protocol has had time to finish, from the scenario's own timeouts.

    The sum of, in order of need:

    * the sender's whole retry schedule (``uplink_timeout_s`` × backoff^k over
      ``uplink_max_attempts`` attempts): the last copy of a message is stored by then;
    * dead-connection detection: the client's next heartbeat (push), poll or long-poll
      hold, plus ``request_timeout_s``;
    * reconnect, :func:`connect_attempts` times (once on a lossless network): an attempt
      that fails (the node still down, or a handshake packet lost) times out
      (``request_timeout_s``), the longest backoff (``reconnect_max_s``) follows, then
      the handshake and login round trips;
    * ``rounds`` repair rounds, each the longest repair timer (:func:`repair_timer_s`:
      ``ack_timeout_s``, ``request_timeout_s`` for an unanswered sync, the short-poll
      interval, a long poll's hold plus ``request_timeout_s``) plus a round trip: a
      retransmit or the login's offline queue may reveal a group gap that the next
      sync fills, hence two on a lossless network; with background loss,
      :func:`repair_rounds` (default) adds rounds until every one failing has
      probability ≤ 1e-6.

    Round trips use :func:`latency_bound_s`. The result is a sum of worst cases, so
    it is long; simulating an idle drain costs little.
    """
    sc = scenario
    rtt = 2.0 * (latency_bound_s(sc["network.latency_ms"]) + stream_delay_bound_s(sc))
    kind = sc["transport.kind"]
    periods = {
        "push": (sc["transport.heartbeat_s"],),
        "short_poll": (sc["transport.poll_interval_s"],),
        "long_poll": (sc["transport.long_poll_hold_s"],),
        "hybrid": (sc["transport.heartbeat_s"], sc["transport.long_poll_hold_s"]),
    }[kind]
    timeout = sc["transport.request_timeout_s"]
    detect = max(periods) + timeout
    one_connect = (
        timeout + sc["transport.reconnect_max_s"] + (sc["transport.handshake_rtts"] + 1) * rtt
    )
    reconnect = connect_attempts(sc) * one_connect
    return detect + reconnect + loss_settle_time_s(sc, rounds)


def repair_timer_s(scenario: Any) -> float:
    """The longest wait before one failed delivery round is tried again: the ACK
    timeout (push retransmit), the request timeout (an unanswered sync), the short-poll
    interval, and — for long polling — the hold plus the request timeout, since the
    client notices a lost response only when its poll times out."""
    sc = scenario
    kind = sc["transport.kind"]
    timeout = sc["transport.request_timeout_s"]
    timer = max(sc["reliability.ack_timeout_s"], timeout)
    if kind == "short_poll":
        timer = max(timer, sc["transport.poll_interval_s"])
    if kind in ("long_poll", "hybrid"):
        timer = max(timer, sc["transport.long_poll_hold_s"] + timeout)
    return timer


def loss_settle_time_s(scenario: Any, rounds: int | None = None) -> float:
    """How long after the end of sending a run *without faults* needs so that, under
    its background loss, every message has reached its recipients except with
    probability ≤ 1e-6 per repair: the sender's whole retry schedule plus ``rounds``
    (default :func:`repair_rounds`) repair rounds of :func:`repair_timer_s` and a round
    trip. No reconnect is counted: without faults, connections do not drop (use
    :func:`settle_time_s` when they do)."""
    sc = scenario
    # a round trip in the stream model may wait for retransmitted segments both ways
    rtt = 2.0 * (latency_bound_s(sc["network.latency_ms"]) + stream_delay_bound_s(sc))
    if sc["network.model"] == "stream" and rounds is None:
        # The transport repairs segment loss; nothing waits for an application timer.
        # The last message needs its send and reply, its push (after the recipient's next
        # short poll), and one sync if it reveals a group gap: three round trips, plus
        # the request timeout for server queueing (a request unanswered that long is
        # repeated by the client anyway).
        poll_wait = sc["transport.poll_interval_s"] if sc["transport.kind"] == "short_poll" else 0.0
        return 3.0 * rtt + poll_wait + sc["transport.request_timeout_s"]
    if rounds is None:
        rounds = repair_rounds(sc)
    if sc["reliability.uplink_retry"]:
        attempts = sc["reliability.uplink_max_attempts"]
        backoff = sc["reliability.uplink_backoff"]
        uplink = sum(sc["reliability.uplink_timeout_s"] * backoff**k for k in range(attempts))
    else:
        uplink = sc["reliability.uplink_timeout_s"]
    return uplink + rounds * (repair_timer_s(sc) + rtt)


#: Stream model: above this segment loss a transport giving up (16 losses in a row) is no
#: longer negligible over a run, and the drain must cover reconnects too.
STREAM_GIVE_UP_LOSS = 0.3


def connections_may_drop(scenario: Any) -> bool:
    """Whether a run may lose connections, so that its drain must cover detection and
    reconnects: any fault but a clock skew, silent breaks, or a stream lossy enough that
    the transport gives up."""
    if any(f["kind"] != "clock_skew" for f in scenario["faults"]):
        return True
    if scenario["network.break_rate_per_hour"] > 0:
        return True
    loss = max(scenario["network.uplink_loss"], scenario["network.downlink_loss"])
    return scenario["network.model"] == "stream" and loss > STREAM_GIVE_UP_LOSS


def required_drain_s(scenario: Any, rounds: int | None = None) -> float:
    """The ``drain_s`` that lets every repair finish: the part of the faults that runs
    past the sending period (or the backlog of REST calls over the rate limit,
    :func:`~immodel.sim.backend.rest_backlog_s`), plus :func:`settle_time_s` when
    connections may drop (:func:`connections_may_drop`), else :func:`loss_settle_time_s`,
    plus the group gap wait (``reliability.gap_wait_ms``). A ``clock_skew`` needs none.
    Live-broadcast rooms add one cap window: the last window of the sending period is
    decided (and published) one window after it ends."""
    ends = [fault_end_s(f) for f in scenario["faults"] if f["kind"] != "clock_skew"]
    overhang = max([0.0, *(end - scenario["duration_s"] for end in ends)])
    overhang = max(overhang, rest_backlog_s(scenario))  # REST calls over the rate limit
    # a group gap seen at the end waits this long before its repair sync starts
    overhang += scenario["reliability.gap_wait_ms"] / 1000.0
    if scenario["workload.live_rooms"] > 0:
        overhang += scenario["server.live_window_ms"] / 1000.0
    if connections_may_drop(scenario):
        return math.ceil(overhang + settle_time_s(scenario, rounds))
    return math.ceil(overhang + loss_settle_time_s(scenario, rounds))


class _FaultState:
    """The faults acting now, so that overlapping faults combine and heal correctly."""

    def __init__(self, world: FaultTarget) -> None:
        self.world = world
        self.blocked: dict[int, Counter[int]] = {}  # id(link) → user → partitions holding it
        self.bursts: list[tuple[float, float, float]] = []  # active (uplink, downlink, end)
        self.store_fail: dict[int, list[float]] = {}  # node → active failure probabilities
        self.slow: dict[int, list[float]] = {}  # node → active extra reply delays (s)

    def log(self, fault: dict[str, Any], **facts: Any) -> None:
        world = self.world
        entry = {
            "kind": fault["kind"],
            "at_s": world.env.now,
            "end_s": world.env.now + fault.get("down_s", 0.0),
            "node": fault.get("node"),
            "users": (),
            "online": tuple(sorted(world.online_pos)),
        }
        entry.update(facts)
        world.fault_log.append(entry)


def _pick(world: FaultTarget, candidates: list[int], share: float) -> list[int]:
    """Each candidate independently with probability ``share`` (the ``faults`` stream)."""
    rng = world.streams["faults"].generator
    if not candidates or share <= 0:
        return []
    mask = rng.random(len(candidates)) < share
    return [u for u, m in zip(candidates, mask, strict=True) if m]


def schedule_faults(world: FaultTarget) -> None:
    """Schedule every fault of the scenario on ``world``'s clock (call once, before running)."""
    state = _FaultState(world)
    for fault in world.sc["faults"]:
        world.later(fault["at_s"], _start, (state, fault))


def _start(arg) -> None:
    state, fault = arg
    world = state.world
    kind = fault["kind"]
    if kind == "server_crash":
        _server_crash(state, fault)
    elif kind == "gateway_crash" and fault["node"] >= 0:
        users = world.crash_access(fault["node"], fault["down_s"])
        state.log(fault, users=tuple(users or ()))
    elif kind == "gateway_crash":
        users = _pick(world, world.connected_users(), fault["share"])
        state.log(fault, users=tuple(users))
        for uid in users:
            world.drop_connection(uid, clean=True)
            world.detect_dead_connection(world.clients[uid])
    elif kind == "client_crash":
        users = _pick(world, sorted(world.online_pos), fault["share"])
        state.log(fault, users=tuple(users))
        for uid in users:
            world.restart_app(uid, fault["keep_local_state"])
    elif kind == "partition":
        users = _pick(world, list(range(world.n_users)), fault["share"])
        state.log(fault, users=tuple(users))
        links = {"both": (world.up, world.down), "uplink": (world.up,), "downlink": (world.down,)}
        chosen = links[fault["direction"]]
        end = world.env.now + fault["down_s"]
        for link in chosen:
            _block(state, link, users, +1, end)
        world.later(fault["down_s"], _end_partition, (state, chosen, users))
        _watch_liveness(world, users, uplink_cut=world.up in chosen)
    elif kind == "loss_burst":
        pair = (fault["uplink_loss"], fault["downlink_loss"], world.env.now + fault["down_s"])
        state.log(fault)
        state.bursts.append(pair)
        _apply_bursts(state)
        world.later(fault["down_s"], _end_loss_burst, (state, pair))
    elif kind == "store_failure":
        node = world.nodes[fault["node"]]
        state.log(fault)
        state.store_fail.setdefault(node.node_id, []).append(fault["prob"])
        _apply_node(state, node)
        world.later(fault["down_s"], _end_store_failure, (state, node, fault["prob"]))
    elif kind == "slow_server":
        node = world.nodes[fault["node"]]
        extra_s = fault["extra_ms"] / 1000.0
        state.log(fault)
        state.slow.setdefault(node.node_id, []).append(extra_s)
        _apply_node(state, node)
        world.later(fault["down_s"], _end_slow_server, (state, node, extra_s))
    elif kind == "clock_skew":
        state.log(fault, end_s=math.inf)
        world.nodes[fault["node"]].core.clock_offset_s = fault["skew_ms"] / 1000.0
    else:  # pragma: no cover - the scenario schema admits only the kinds above
        raise ValueError(f"unknown fault kind {kind!r}")


def _server_crash(state: _FaultState, fault: dict[str, Any]) -> None:  # a logic node
    world = state.world
    node = world.nodes[fault["node"]]
    now = world.env.now
    if node.up:
        state.log(fault, users=tuple(world.users_of_logic_node(node.node_id)))
        node.process.interrupt(fault["down_s"])
    else:
        # Already down: interrupting the outage would kill the node's process; extend it.
        state.log(fault, users=())
        node.down_until = max(node.down_until, now + fault["down_s"])


def _block(state: _FaultState, link: Link, users: list[int], delta: int, end: float = 0.0) -> None:
    counts = state.blocked.setdefault(id(link), Counter())
    for u in users:
        counts[u] += delta
        if counts[u] > 0:
            link.blocked.add(u)
            if delta > 0:  # the stream model's retransmissions get through after this
                link.blocked_until[u] = max(link.blocked_until.get(u, 0.0), end)
        else:
            del counts[u]
            link.blocked.discard(u)
            link.blocked_until.pop(u, None)


def _watch_liveness(world: FaultTarget, users: list[int], uplink_cut: bool) -> None:
    """Heartbeats across a partition: both ends notice silence if it lasts long enough.

    A push client whose heartbeat gets no answer (either direction cut) gives up on the
    connection at its next heartbeat plus the request timeout and reconnects (with
    backoff while the partition lasts). The server drops a push connection that has sent
    nothing for ``transport.liveness_timeout_s`` (uplink cut), moving its unacknowledged
    messages to the offline queue. A partition that heals sooner is repaired in place.
    """
    liveness_s = world.sc["transport.liveness_timeout_s"]
    for uid in users:
        client = world.clients[uid]
        conn = client.conn
        if client.kind != "push" or conn is None:
            continue
        t_notice = world.notice_time_s(client)
        world.later(t_notice - world.env.now, _client_hears_nothing, (world, uid, conn))
        if uplink_cut:
            world.later(liveness_s, _server_hears_nothing, (world, uid, conn))


def _cut_off(world: FaultTarget, uid: int) -> bool:
    return uid in world.up.blocked or uid in world.down.blocked


def _client_hears_nothing(arg) -> None:
    world, uid, conn = arg
    if _cut_off(world, uid):
        world.reconnect_silent(uid, conn)


def _server_hears_nothing(arg) -> None:
    world, uid, conn = arg
    if world.serves(conn) and uid in world.up.blocked:
        world.counters["liveness_drops"] += 1
        world.drop_connection(uid, clean=True)


def _end_partition(arg) -> None:
    state, links, users = arg
    for link in links:
        _block(state, link, users, -1)


def _apply_bursts(state: _FaultState) -> None:
    world = state.world
    if state.bursts:
        world.up.override = max(b[0] for b in state.bursts)
        world.down.override = max(b[1] for b in state.bursts)
        # after the first burst ends the override changes (the stream model's
        # retransmissions scheduled past it see the normal loss)
        world.up.override_until = world.down.override_until = min(b[2] for b in state.bursts)
    else:
        world.up.override = None
        world.down.override = None
        world.up.override_until = world.down.override_until = math.inf


def _end_loss_burst(arg) -> None:
    state, pair = arg
    state.bursts.remove(pair)
    _apply_bursts(state)


def _apply_node(state: _FaultState, node: Any) -> None:
    node.store_fail_prob = max(state.store_fail.get(node.node_id) or [0.0])
    node.extra_delay_s = max(state.slow.get(node.node_id) or [0.0])


def _end_store_failure(arg) -> None:
    state, node, prob = arg
    state.store_fail[node.node_id].remove(prob)
    _apply_node(state, node)


def _end_slow_server(arg) -> None:
    state, node, extra_s = arg
    state.slow[node.node_id].remove(extra_s)
    _apply_node(state, node)


__all__ = [
    "CRASH_KINDS",
    "FaultTarget",
    "connect_attempts",
    "connections_may_drop",
    "fault_end_s",
    "latency_bound_s",
    "repair_rounds",
    "required_drain_s",
    "schedule_faults",
    "settle_time_s",
    "stream_delay_bound_s",
]

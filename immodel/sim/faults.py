"""Fault injection: the scenario's ``faults`` list, scheduled on the run's clock.

Each kind, with its parameters (times in seconds of simulated time):

* ``server_crash`` (``at_s``, ``down_s``, ``node``) — the node's process is interrupted:
  pending-ACK queues, held long polls, connections, jobs in its stages and (unless
  ``reliability.dedup_durable``) its dedup window are lost; the message store survives.
  Its clients notice at their next heartbeat/poll plus the request timeout and reconnect
  with backoff; the login moves their offline queue to the downlink and they sync.
* ``gateway_crash`` (``at_s``, ``share``) — the access layer drops the connections of a
  share of the connected users; the servers survive (unacknowledged messages go to the
  offline queues) and the clients reconnect.
* ``client_crash`` (``at_s``, ``share``, ``keep_local_state``) — a share of the online
  apps restart; without local state the receiver forgets its cursors and shown ids, and
  the sender forgets what it had in flight (the app reports those as failed).
* ``partition`` (``at_s``, ``down_s``, ``share``, ``direction``) — a share of users loses
  every packet in one or both directions for a while.
* ``loss_burst`` (``at_s``, ``down_s``, ``uplink_loss``, ``downlink_loss``) — the loss
  of everyone's links is replaced for a while.
* ``store_failure`` (``at_s``, ``down_s``, ``prob``, ``node``) — writes on the node fail
  with probability ``prob``: the sender is told "not stored" (retryable), never success.
* ``slow_server`` (``at_s``, ``down_s``, ``extra_ms``, ``node``) — writes complete
  ``extra_ms`` late: replies miss the sender's timeout while the message is stored, so
  the retry must be answered from the dedup window, not stored again.
* ``clock_skew`` (``at_s``, ``skew_ms``, ``node``) — from ``at_s`` on, the node's clock
  is ``skew_ms`` ahead (negative: behind) for 1:1 timestamps.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from immodel.sim.world import World


def _pick(world: World, candidates: list[int], share: float) -> list[int]:
    rng = world.streams["faults"].generator
    if not candidates or share <= 0:
        return []
    mask = rng.random(len(candidates)) < share
    return [u for u, m in zip(candidates, mask, strict=True) if m]


def schedule_faults(world: World) -> None:
    """Schedule every fault of the scenario."""
    for fault in world.sc["faults"]:
        world.later(fault["at_s"], _start, (world, fault))


def _start(arg) -> None:
    world, fault = arg
    kind = fault["kind"]
    if kind == "server_crash":
        node = world.nodes[fault["node"]]
        if node.up:
            node.process.interrupt(fault["down_s"])
    elif kind == "gateway_crash":
        connected = sorted(u for node in world.nodes if node.up for u in node.conn)
        for uid in _pick(world, connected, fault["share"]):
            client = world.clients[uid]
            world.drop_connection(world.nodes[client.node], uid, clean=True)
            world.detect_dead_connection(client)
    elif kind == "client_crash":
        for uid in _pick(world, sorted(world.online_pos), fault["share"]):
            client = world.clients[uid]
            if not fault["keep_local_state"]:
                client.receiver.reset()
                for msg in client.sender.forget():
                    rec = world.rec.messages[msg.msg_id]
                    rec.failure = "app_restart"
                    rec.t_outcome = world.env.now
            node = world.nodes[client.node]
            if node.up:
                world.drop_connection(node, uid, clean=True)
            world._detach_client(client)
            client.connecting = False
            world.connect(client)
    elif kind == "partition":
        users = set(_pick(world, list(range(world.n_users)), fault["share"]))
        links = {"both": (world.up, world.down), "uplink": (world.up,), "downlink": (world.down,)}
        chosen = links[fault["direction"]]
        for link in chosen:
            link.blocked |= users
        world.later(fault["down_s"], _end_partition, (chosen, users))
    elif kind == "loss_burst":
        world.up.override = fault["uplink_loss"]
        world.down.override = fault["downlink_loss"]
        world.later(fault["down_s"], _end_loss_burst, world)
    elif kind == "store_failure":
        node = world.nodes[fault["node"]]
        node.store_fail_prob = fault["prob"]
        world.later(fault["down_s"], _end_store_failure, node)
    elif kind == "slow_server":
        node = world.nodes[fault["node"]]
        node.extra_delay_s = fault["extra_ms"] / 1000.0
        world.later(fault["down_s"], _end_slow_server, node)
    elif kind == "clock_skew":
        world.nodes[fault["node"]].core.clock_offset_s = fault["skew_ms"] / 1000.0
    else:  # pragma: no cover - the scenario schema admits only the kinds above
        raise ValueError(f"unknown fault kind {kind!r}")


def _end_partition(arg) -> None:
    links, users = arg
    for link in links:
        link.blocked -= users


def _end_loss_burst(world: World) -> None:
    world.up.override = None
    world.down.override = None


def _end_store_failure(node) -> None:
    node.store_fail_prob = 0.0


def _end_slow_server(node) -> None:
    node.extra_delay_s = 0.0

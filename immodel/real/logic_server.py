"""A logic server process of ``immodel real``: the protocol's :class:`ServerNode` on a
socket, with the message store in SQLite.

Started by the orchestrator as ``python -m immodel.real.logic_server CONFIG.json NODE
[PORT]``; access servers connect to it over plain TCP on loopback (the internal hop) and
exchange :mod:`immodel.real.wire` frames. What it holds:

* **durable** (SQLite, :mod:`immodel.real.store`, shared by every logic process): stored
  messages, memberships, group sequencers, offline queues;
* **volatile** (this process's memory, gone with a SIGKILL): the dedup window (unless
  ``reliability.dedup_durable``, then a retry is also looked up in the store), the
  pending-ACK table and its retransmit timer, the 1:1 timestamp stamper, and which users
  are connected through which access node (every access node tells every logic node; a
  restarted logic node hears it again when the access nodes reconnect).

The send path is the simulator's, without service times: dedup (``begin_send``) →
admission (:func:`immodel.protocol.admission.admit`) → with ``server.callback_enabled``,
an HTTP call to the business backend (:mod:`immodel.real.business`) and admission again
with its verdict → one SQLite transaction (1:1
membership, group seq, stored row) → reply → fan-out (``route``: push with pending-ACK,
the outbox of a polling recipient, or the offline queue for a recipient who is not
connected). A recipient's pending entry lives on the node that stored the message (the
simulator keeps it on the recipient's own node); the access node remembers which node
pushed each copy and sends the ACK there. Polls go to the poller's own node, and a
copy stored elsewhere is routed there through the access tier; they take what waits in
the outbox (:meth:`~immodel.protocol.pending_ack.PendingAcks.take_for_poll`); a long
poll with nothing waiting is held here until a message is routed to its user or its
hold ends. When another logic node comes back (``rehome`` from an access node), what
waits here for that access node's pollers is routed back to each one's owner.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import sys
from collections import Counter

from immodel.protocol import admission, channel
from immodel.protocol.dedup import DedupWindow, Verdict
from immodel.protocol.messages import Deliver, Message, SendReply
from immodel.protocol.pending_ack import PendingAcks
from immodel.protocol.rest import ADMIN_UID
from immodel.protocol.server import ServerNode
from immodel.real import wire
from immodel.real.common import (
    HOST,
    RunClock,
    Stats,
    announce_ready,
    load_config,
    serve_until_terminated,
)
from immodel.real.store import SqliteStore
from immodel.real.vendor_push import VendorLink
from immodel.sim import endpoints
from immodel.sim.devices import build_devices
from immodel.sim.relationships import Relationships
from immodel.sim.rng import Streams


class _AccessLink:
    """One access node's connection to this logic node; ``run`` (the process's
    :attr:`Stats.run`, None in-process) counts the frames written, ``out_<op>``."""

    __slots__ = ("access", "run", "users", "writer")

    def __init__(self, writer: asyncio.StreamWriter, run: Counter[str] | None = None) -> None:
        self.writer = writer
        self.run = run
        self.access = -1
        self.users: set[int] = set()

    def send(self, obj: dict) -> None:
        if not self.writer.is_closing():
            self.writer.write(wire.encode(obj))
            if self.run is not None:
                self.run["out_" + obj["op"]] += 1


class LogicServer:
    """The state and handlers of one logic process (see the module docstring)."""

    def __init__(self, cfg: dict, node_id: int) -> None:
        sc = cfg["scenario"]
        self.cfg = cfg
        self.node_id = node_id
        self.clock = RunClock(cfg["t0"])
        self.store = SqliteStore(cfg["db"], node_id, inbox=sc["reliability.sync_cursor"] == "inbox")
        self.node = ServerNode(
            node_id,
            self.store,
            dedup=DedupWindow(sc["reliability.dedup_window_s"], sc["reliability.server_dedup"]),
            pending=PendingAcks(sc["reliability.ack_timeout_s"], sc["reliability.downlink_ack"]),
            dedup_durable=sc["reliability.dedup_durable"],
            member_copies=sc["server.diffusion"] == "write",
        )
        self.dedup_durable = sc["reliability.dedup_durable"] and sc["reliability.server_dedup"]
        self.one_transfer = sc["server.login_catchup"] == "one_transfer"
        self.sync_follows = sc["reliability.sync"] and sc["reliability.sync_on_reconnect"]
        self.groups: dict[str, list[int]] = {k: list(v) for k, v in cfg["groups"].items()}
        self.policy, self.remote_policy = endpoints.admission_policies(sc)
        # the before-send callback to the customer's backend (immodel.real.business):
        # the checks decide first, the callback's verdict second, as in the simulator
        # and content screening (the same process's screening service)
        business = f"http://{HOST}:{cfg.get('business_port')}"
        self.callback_url = business + "/callback" if sc["server.callback_enabled"] else None
        self.screening_url = business + "/screen" if sc["server.screening_enabled"] else None
        self.screening_policy = sc["server.screening_policy"]
        self.callback_timeout_s = sc["server.callback_timeout_s"]
        self._http = None  # the callback's aiohttp session (made on first use)
        self._calls: set[asyncio.Task] = set()
        # the same muted users, friendships and blacklists as the simulator draws for
        # this scenario and seed, so that both refuse the same messages
        self.relationships = Relationships(sc, Streams(sc["seed"])["admission"].generator)
        # several devices per user: the simulator's device table for this scenario and
        # seed; sessions, queues and memberships are the devices' (endpoint ids), the
        # relationship facts and conversations the users'
        self.devices = build_devices(sc, sc["workload.users"], Streams(sc["seed"]))
        self.presence: dict[int, _AccessLink] = {}
        self.mode: dict[int, str] = {}  # user → "push" or "poll" (how it is connected)
        self.held: dict[int, tuple[_AccessLink, asyncio.TimerHandle]] = {}  # long polls
        self.batch_max = sc["transport.batch_max"]
        self.several_nodes = sc["server.nodes"] > 1
        self.stats = Stats(cfg["dir"], f"logic{node_id}")
        # server faults the orchestrator sets on this process (``command``): kind →
        # [(until on the run clock, value)]; overlapping ones of a kind: the strongest
        self.faults: dict[str, list[tuple[float, float]]] = {}
        self.fault_stream = Streams(sc["seed"])["faults"]  # store failures, arrival order
        self.stats.gauge = lambda: {"pending_acks": len(self.node.pending)}
        self._retx: asyncio.TimerHandle | None = None
        self._retx_at: float | None = None
        # offline push (immodel.real.vendor_push): the vendor's service, when it runs
        port = cfg.get("vendor_port")
        self.vendor = VendorLink(int(port)) if port else None

    # -- connections ----------------------------------------------------------------------
    async def serve(self, port: int) -> None:
        server = await asyncio.start_server(self._link, HOST, port, reuse_address=True)
        announce_ready(server.sockets[0].getsockname()[1])
        async with server:
            await server.serve_forever()

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        run = self.stats.run
        link = _AccessLink(writer, run)
        try:
            while True:
                frame = await wire.read_frame(reader)
                if frame is None:
                    break
                # frames read off the socket, by op: with those written (``out_<op>``),
                # the I/O the calibration charges per frame (immodel.real.calibrate)
                run["in_" + frame["op"]] += 1
                self.handle(link, frame)
        except (ConnectionError, wire.FrameError):
            pass
        finally:
            # The access node is gone (crashed or stopped): its users are disconnected;
            # what they had not acknowledged goes to their offline queues.
            for user in list(link.users):
                self._forget(link, user)
            link.users.clear()
            writer.close()

    # -- frames from an access node -------------------------------------------------------
    def handle(self, link: _AccessLink, frame: dict) -> None:
        op = frame["op"]
        if op == "send":
            self.on_send(link, int(frame["user"]), wire.message_from_wire(frame["msg"]))
        elif op == "ack":  # on its own (push) or riding on a poll
            removed = self.node.pending.handle_ack(int(frame["user"]), frame["ids"])
            self.stats.counts["acks_applied"] += removed
        elif op == "sync":
            request = wire.sync_request_from_wire(frame["req"])
            response = self.store.answer_sync(request)
            self.stats.counts["sync_pages_answered"] += 1
            self.stats.run["sync_items"] += len(response.items)
            link.send(
                {
                    "op": "sync_resp",
                    "user": request.user,
                    "resp": wire.sync_response_to_wire(response),
                }
            )
        elif op == "poll":
            self.on_poll(link, int(frame["user"]), float(frame["hold_s"]))
        elif op == "attach":
            self._attach(link, int(frame["user"]), frame["mode"])
        elif op == "login":
            user = int(frame["user"])
            mode = frame["mode"]
            self._attach(link, user, mode)
            waiting = len(self.store.offline.get(user, ()))
            delivers = self.node.login(
                user,
                mode,
                self.clock(),
                one_transfer=self.one_transfer,
                sync_follows=self.sync_follows,
            )
            self.stats.counts["login_backlog"] += waiting
            if self.vendor is not None:  # its notification is read (collapsing restarts)
                self.vendor.read(user)
            self._push_out(delivers)
            if mode == "poll":
                self._answer_held(user)
        elif op == "detach":
            self._forget(link, int(frame["user"]))
        elif op == "routed":  # a copy for a poller this node owns, stored by another node
            user = int(frame["user"])
            item = wire.stored_from_wire(frame["item"])
            mode = self.mode.get(user) if user in self.presence else None
            self._push_out(self.node.route(item, user, mode, self.clock()))
            if mode == "poll":
                self._answer_held(user)
        elif op == "rehome":
            self._rehome(link)
        elif op == "hello":
            link.access = int(frame["access"])
            for user, mode in frame["users"]:
                self._attach(link, int(user), mode)

    def _rehome(self, link: _AccessLink) -> None:
        """Another logic node is up again (the access node on ``link`` says so): the
        pollers of ``link`` may belong to it now. What waits here for them, polled or not
        but unacknowledged, goes back through the access node to each one's owner (an
        owner that is still this node gets it back), and a poll held here is answered
        empty so that the next one goes to the owner."""
        for user in sorted(link.users):
            if self.mode.get(user) != "poll" or self.presence.get(user) is not link:
                continue
            held = self.held.pop(user, None)
            if held is not None:
                held[1].cancel()
                self._answer_poll(held[0], user, [])
            for item in self.node.pending.drain(user):
                self.stats.counts["rehomed"] += 1
                link.send({"op": "route", "user": user, "item": wire.stored_to_wire(item)})

    def _attach(self, link: _AccessLink, user: int, mode: str) -> None:
        link.users.add(user)
        self.presence[user] = link
        self.mode[user] = mode

    def _forget(self, link: _AccessLink, user: int) -> None:
        """``user`` left ``link`` (cleanly, or with its access node): unacknowledged
        messages go to the durable offline queue."""
        link.users.discard(user)
        if self.presence.get(user) is link:
            del self.presence[user]
            self.mode.pop(user, None)
            held = self.held.pop(user, None)
            if held is not None:
                held[1].cancel()
        self.node.disconnect(user)

    # -- polls ----------------------------------------------------------------------------
    def on_poll(self, link: _AccessLink, user: int, hold_s: float) -> None:
        """A poll: answer with what waits in the user's outbox, or (a long poll with
        nothing waiting) hold it until a message is routed to the user or ``hold_s``
        passes."""
        old = self.held.pop(user, None)
        if old is not None:  # a newer poll replaces one still held (its answer is moot)
            old[1].cancel()
            self._answer_poll(old[0], user, [])
        delivers = self.node.pending.take_for_poll(user, self.batch_max)
        if delivers or hold_s <= 0:
            self._answer_poll(link, user, delivers)
            return
        timer = asyncio.get_running_loop().call_later(hold_s, self._hold_expired, user)
        self.held[user] = (link, timer)
        self.stats.counts["polls_held"] += 1
        self.stats.run["polls_held"] += 1

    def _hold_expired(self, user: int) -> None:
        held = self.held.pop(user, None)
        if held is not None:
            self._answer_poll(held[0], user, [])

    def _answer_held(self, user: int) -> None:
        held = self.held.get(user)
        if held is None:
            return
        delivers = self.node.pending.take_for_poll(user, self.batch_max)
        if delivers:
            del self.held[user]
            held[1].cancel()
            self._answer_poll(held[0], user, delivers)

    def _answer_poll(self, link: _AccessLink, user: int, delivers: list[Deliver]) -> None:
        self.stats.counts["polls_answered"] += 1
        self.stats.run["poll_items"] += len(delivers)
        for d in delivers:
            if d.attempt > 1:
                self.stats.counts["poll_redeliveries"] += 1
        link.send(
            {
                "op": "poll_resp",
                "user": user,
                "items": [[wire.stored_to_wire(d.item), d.attempt] for d in delivers],
            }
        )

    # -- the send path --------------------------------------------------------------------
    def user_of(self, eid: int) -> int:
        """The user a device (endpoint id) belongs to (itself with one device per user)."""
        return eid if self.devices is None else self.devices.user[eid]

    def recipients(self, msg: Message) -> list[int]:
        """Who a message goes to: the group's other members, or the other party of the
        1:1 conversation ``d{a}-{b}`` — with several devices per user, every device of
        each, then the sender's other devices (as the simulator's workload expands it)."""
        if msg.sender == ADMIN_UID:  # a REST message (immodel.real.rest_backend)
            from immodel.real.rest_backend import rest_recipients

            return rest_recipients(msg, self.groups)
        sender = self.user_of(msg.sender)
        if msg.is_group:
            users = [m for m in self.groups.get(msg.conversation, ()) if m != sender]
        else:
            a, b = (int(x) for x in msg.conversation[1:].split("-"))
            users = [b if sender == a else a]
        if self.devices is None:
            return users
        return list(self.devices.expand(users, msg.sender))

    def on_send(self, link: _AccessLink, user: int, msg: Message) -> None:
        if msg.sender != user:
            self.stats.counts["sends_refused_wrong_sender"] += 1
            return  # a session sends only as its own user
        now = self.clock()
        verdict, reply = self.node.begin_send(msg, now)
        if verdict is Verdict.DONE:
            self.stats.counts["dedup_hits"] += 1
            self._reply(link, user, reply)
            return
        if verdict is Verdict.IN_PROGRESS:
            self.stats.counts["dedup_in_progress_drops"] += 1
            return
        if self.dedup_durable:
            key = self._stored_key(msg.msg_id)
            if key is not None:  # stored before a crash: the durable window remembers it
                self.stats.counts["dedup_hits"] += 1
                reply = SendReply(msg.msg_id, True, key)
                self.node.dedup.complete(msg.msg_id, reply, now)
                self._reply(link, user, reply)
                return
        recipients = self.recipients(msg)
        sender = self.user_of(msg.sender)
        friends, black = (
            (True, False)
            if msg.is_group
            else self.relationships.pair(sender, self.user_of(recipients[0]))
        )
        facts = admission.MessageFacts(
            sender_muted=sender in self.relationships.muted,
            blacklisted_by_recipient=black,
            are_friends=friends,
            is_group=msg.is_group,
        )
        decision = admission.admit(self.policy, facts)
        if not decision.accepted:
            self.stats.counts["rejections"] += 1
            self._reply(link, user, self.node.reject(msg, str(decision.reason), now))
            return
        if self.callback_url is not None or self.screening_url is not None:
            task = asyncio.get_running_loop().create_task(
                self._call_back(link, user, msg, recipients, sender, facts)
            )
            self._calls.add(task)
            task.add_done_callback(self._calls.discard)
            return
        self._store_and_route(link, user, msg, recipients, sender)

    async def _call_back(self, link, user: int, msg: Message, recipients, sender, facts) -> None:
        """Ask the business backend about ``msg`` and have it screened (a retry
        meanwhile is dropped by dedup: the send is in progress), then refuse it or store
        it — the simulator's order: checks, callback, screening, recent contacts, store."""
        import aiohttp

        if self._http is None:
            self._http = aiohttp.ClientSession()
        body = {"msg_id": msg.msg_id, "sender": sender, "conversation": msg.conversation}
        callback = None
        if self.callback_url is not None:
            callback = "timeout"
            try:
                async with self._http.post(
                    self.callback_url,
                    json=body,
                    timeout=aiohttp.ClientTimeout(total=self.callback_timeout_s),
                ) as response:
                    callback = (await response.json())["verdict"]
            except (aiohttp.ClientError, TimeoutError, ValueError, KeyError):
                self.stats.counts["callback_timeouts"] += 1
        # screened whatever the callback said, then one decision on both verdicts (as the
        # simulator's stages do)
        screening = None
        action = ""
        if self.screening_url is not None:
            async with self._http.post(self.screening_url, json=body) as response:
                screening = (await response.json())["verdict"]
            # the business's policy decides what a hit means (immodel.protocol.channel)
            action, screening = channel.screening_outcome(self.screening_policy, screening)
            if action:
                self.stats.counts["screening_" + action] += 1
                self.store.db.execute(
                    "INSERT OR REPLACE INTO screening VALUES (?, ?)", (msg.msg_id, action)
                )
        if not self._refuse(link, user, msg, callback, screening, facts):
            if action == "sender_only":  # shown to its sender only: a final answer, no copy
                self.stats.counts["rejections"] += 1
                reply = self.node.reject(msg, "screened_sender_only", self.clock())
                self._reply(link, user, reply)
                return
            self._store_and_route(link, user, msg, recipients, sender)

    def _refuse(self, link, user: int, msg: Message, callback, screening, facts) -> bool:
        """Admission with the remote verdicts; True (and the refusal sent) when refused."""
        facts = dataclasses.replace(facts, screening_verdict=screening, callback_verdict=callback)
        decision = admission.admit(self.remote_policy, facts)
        if decision.accepted:
            return False
        self.stats.counts["rejections"] += 1
        self._reply(link, user, self.node.reject(msg, str(decision.reason), self.clock()))
        return True

    # -- server faults --------------------------------------------------------------------
    def command(self, cmd: dict) -> None:
        """The orchestrator's fault commands: ``{"op": "fault", "kind": K, "value": V,
        "until": T}`` — ``store_failure`` (V: the probability a write fails) or
        ``slow_server`` (V: ms added to each reply) until run-clock T; ``clock_skew`` (V:
        ms added to the 1:1 timestamp clock from now on). A process restarted meanwhile
        (a ``server_crash``) starts without them."""
        if cmd["op"] != "fault":
            return
        if cmd["kind"] == "clock_skew":
            self.node.clock_offset_s = float(cmd["value"]) / 1000.0
            return
        self.faults.setdefault(cmd["kind"], []).append((float(cmd["until"]), float(cmd["value"])))

    def fault_value(self, kind: str) -> float:
        """The strongest fault of ``kind`` in force now (0: none)."""
        entries = self.faults.get(kind)
        if not entries:
            return 0.0
        now = self.clock()
        return max((v for until, v in entries if now < until), default=0.0)

    def _store_and_route(self, link, user: int, msg: Message, recipients, sender) -> None:
        """The admitted send: one store transaction, the reply, the fan-out — or, under a
        ``store_failure``, a failed write: "not stored", retryable (the simulator's rule;
        draws from stream ``faults`` in arrival order)."""
        now = self.clock()
        fail_prob = self.fault_value("store_failure") if self.faults else 0.0
        if fail_prob > 0:
            self.stats.counts["writes_under_store_failure"] += 1
            if self.fault_stream.uniform() < fail_prob:
                self.stats.counts["store_failures"] += 1
                self._reply(link, user, self.node.store_failed(msg))
                return
        with self.store.transaction():
            if not msg.is_group:
                for u in (sender, self.user_of(recipients[0])):
                    for e in [u] if self.devices is None else self.devices.of[u]:
                        self.store.join(e, msg.conversation)
            self.store.stamp_now = now
            self.store.online = [r for r in recipients if r in self.presence]
            item, reply = self.node.commit(msg, now)
        self.stats.counts["stored"] += 1
        self.stats.run["stored"] += 1
        self._reply(link, user, reply)
        for r in recipients:
            mode = self.mode.get(r) if r in self.presence else None
            if mode == "poll" and self.several_nodes:
                # a poller's queue is on its own node (its polls and ACKs go there), which
                # only the access tier knows: the copy goes there through its access node
                self.presence[r].send({"op": "route", "user": r, "item": wire.stored_to_wire(item)})
                continue
            if mode is None and self.vendor is not None:
                # not connected: the copy goes to the offline queue, the vendor notifies
                # (where the simulator's fan-out calls _offline_push)
                self.vendor.notify(r, msg.msg_id)
            self._push_out(self.node.route(item, r, mode, now))
            if mode == "poll":
                self._answer_held(r)

    def _stored_key(self, msg_id: str) -> int | None:
        row = self.store.db.execute(
            "SELECT order_key FROM stored WHERE msg_id = ? ORDER BY id LIMIT 1", (msg_id,)
        ).fetchone()
        return None if row is None else int(row[0])

    def _reply(self, link: _AccessLink, user: int, reply: SendReply) -> None:
        extra_ms = self.fault_value("slow_server") if self.faults else 0.0
        if extra_ms > 0:
            # slow_server: the node answers late although the write is done (the
            # article's failure 3); a crash meanwhile takes the reply with the process
            asyncio.get_running_loop().call_later(
                extra_ms / 1000.0, self._reply_now, link, user, reply
            )
            return
        self._reply_now(link, user, reply)

    def _reply_now(self, link: _AccessLink, user: int, reply: SendReply) -> None:
        # the reply goes back through the access node the user is connected to now
        target = self.presence.get(user, link)
        target.send({"op": "reply", "user": user, "reply": wire.reply_to_wire(reply)})

    # -- the downlink ---------------------------------------------------------------------
    def _push_out(self, delivers: list[Deliver]) -> None:
        for d in delivers:
            if d.attempt > 1:
                self.stats.counts["retransmits_downlink"] += 1
            link = self.presence.get(d.recipient)
            if link is None:
                continue  # not connected now: the entry waits (disconnect drains it)
            link.send(
                {
                    "op": "push",
                    "user": d.recipient,
                    "item": wire.stored_to_wire(d.item),
                    "attempt": d.attempt,
                    "node": self.node_id,
                }
            )
        self._arm()

    def _arm(self) -> None:
        deadline = self.node.pending.next_deadline()
        if deadline == self._retx_at:
            return
        if self._retx is not None:
            self._retx.cancel()
        self._retx_at = deadline
        if deadline is None:
            self._retx = None
            return
        loop = asyncio.get_running_loop()
        self._retx = loop.call_at(loop.time() + max(0.0, deadline - self.clock()), self._fire)

    def _fire(self) -> None:
        self._retx = None
        self._retx_at = None
        self._push_out(self.node.pending.handle_timeout(self.clock()))


def main(argv: list[str]) -> None:
    cfg = load_config(argv[0])
    node_id = int(argv[1])
    port = int(argv[2]) if len(argv) > 2 else 0
    server = LogicServer(cfg, node_id)
    try:
        serve_until_terminated(lambda: server.serve(port), server.stats, server.command)
    finally:
        with contextlib.suppress(Exception):
            server.store.close()


if __name__ == "__main__":
    main(sys.argv[1:])

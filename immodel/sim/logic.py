"""The logic tier: logic nodes run the stages, dedup, ordering, pending-ACK and fan-out.

A user (and so its sends, its pending-ACK entries and its polls) belongs to the logic node
that a stable hash (:func:`~immodel.sim.kernel.rendezvous`) picks among the nodes the
access tier believes are live. The durable :class:`~immodel.protocol.server.MessageStore`
(timelines, offline queues, group sequencers, the fan-out log) is shared by all of them.

Lifecycle of one message on its sender's logic node (the article's server processing)::

    begin_send (dedup) ─► auth ─► checks ─► [callback] ─► [screening] ─► recent contacts
      ─► store ─► commit ─► reply to the sender (through its access node)
                       └─► downlink: status lookup + fan-out ─► per recipient, on the
                           recipient's logic node: push (pending-ACK, retransmit) │ outbox
                           for a poller (answers a held long poll) │ offline queue

Every action costs service time on a stage (``server.workers`` per stage per node):
the send path's stages, a poll (base + per message returned), a sync page (base + per
conversation scanned + per message returned), each ACK and each retransmission.

Group diffusion (``server.diffusion``) decides where group messages are stored and so
what each side pays. *Write*: the store stage writes one inbox copy per recipient
(``server.inbox_write_ms`` each) and a member who is offline keeps its copy in its
offline queue; polls and syncs read the member's own inbox, at their base cost. *Read*:
the store stage writes the group timeline once; nothing is kept per member (an offline
member's reconnect sync reads the timeline), and every poll and every sync page reads
the timelines of all the user's groups (``server.timeline_read_ms`` each).

Lifecycle of a logic node: up ─► crash (``server_crash``: :meth:`simpy.Process.interrupt`)
─► down for ``down_s`` ─► up. A crash loses the node's volatile state — pending-ACK
queues, the dedup window (unless ``reliability.dedup_durable``), jobs in its stages,
replies not yet sent — but **not the clients' connections**, which live on the access
tier (the article's figure 4): clients stay connected and learn nothing; requests for the
dead node's users are lost until the access tier notices (``server.failover_detect_s``)
and routes those users to the survivors. What the crash lost is repaired by the next
receipt sync, a reconnect sync, or not at all. When the node comes back, the fan-outs it
had logged but not finished are redone, and its users route home again.
"""

from __future__ import annotations

import math
from typing import Any

from immodel.protocol import admission, channel
from immodel.protocol.dedup import DedupWindow, Verdict
from immodel.protocol.messages import Deliver, Message, SendReply
from immodel.protocol.pending_ack import PendingAcks
from immodel.protocol.rest import ADMIN_UID
from immodel.protocol.server import ServerNode, login_pushes_queue
from immodel.sim import endpoints
from immodel.sim.clients import LONG_POLL, PUSH, REPLY_BYTES, SHORT_POLL, Client
from immodel.sim.connection import Connection
from immodel.sim.kernel import at_time, crash_lifecycle, later, rendezvous
from immodel.sim.relationships import Relationships
from immodel.sim.stage import Stage, service_sampler

STAGE_NAMES = (
    "auth",
    "checks",
    "screening",
    "recent_contacts",
    "store",
    "downlink",
    "poll",
    "sync",
    "ack",
)
#: Per stored message in a sync page: the order key and the conversation (bytes).
SYNC_ITEM_OVERHEAD_BYTES = 16


class LogicNode:
    """One logic node: the protocol's :class:`ServerNode`, its stages, its fan-out log."""

    def __init__(self, tier: LogicTier, node_id: int) -> None:
        sc, env = tier.sc, tier.env
        self.tier = tier
        self.node_id = node_id
        self.core = ServerNode(
            node_id,
            tier.w.store,
            dedup=DedupWindow(sc["reliability.dedup_window_s"], sc["reliability.server_dedup"]),
            pending=PendingAcks(sc["reliability.ack_timeout_s"], sc["reliability.downlink_ack"]),
            dedup_durable=sc["reliability.dedup_durable"],
            member_copies=sc["server.diffusion"] == "write",
        )
        unit = service_sampler(sc["server.service_dist"], 0.001, tier.w.streams["service"])
        workers = sc["server.workers"]
        self.stages = {name: Stage(env, name, node_id, workers, unit) for name in STAGE_NAMES}
        self.up = True
        self.retx_at: float | None = None
        self.store_fail_prob = 0.0
        self.extra_delay_s = 0.0
        self.crashes = 0
        self.crashed_at = math.nan
        self.down_until = math.nan  # end of the current outage (a second crash extends it)
        self.epoch = 0  # +1 per crash: work scheduled before a crash is void after it
        # Durable fan-out log: stored messages whose fan-out has not run yet.
        self.unrouted: dict[Any, tuple] = {}
        # recover_node is looked up when the outage ends (a test may wrap it)
        self.process = env.process(
            crash_lifecycle(env, self, tier.crash_node, lambda node: tier.recover_node(node))
        )


class LogicTier:
    """All logic nodes, the routing of users to them, and the server's side of delivery."""

    def __init__(self, world: Any) -> None:
        sc = self.sc = world.sc
        self.w = world
        self.env = world.env
        self.rec = world.rec
        self.store = world.store
        self.header = sc["network.header_bytes"]
        self.nodes = [LogicNode(self, i) for i in range(sc["server.nodes"])]
        # The access tier's view of which logic nodes are live (lags a crash by
        # ``server.failover_detect_s``), and the routing it implies.
        self.view = [True] * len(self.nodes)
        self._live = list(range(len(self.nodes)))
        self._owner: dict[int, int] = {}
        self.failover_detect_s = sc["server.failover_detect_s"]
        self.retransmits_downlink = 0
        self._setup_admission()
        self.costs = {
            "auth": sc["server.auth_ms"],
            "checks": sc["server.checks_ms"],
            "screening": sc["server.screening_ms"],
            "recent_contacts": sc["server.recent_contacts_ms"],
            "store": sc["server.store_ms"],
            "inbox_write": sc["server.inbox_write_ms"],
            "status": sc["server.status_ms"],
            "fanout": sc["server.fanout_ms_per_recipient"],
            "poll": sc["server.poll_ms"],
            "poll_msg": sc["server.poll_ms_per_message"],
            "sync": sc["server.sync_ms"],
            "sync_conv": sc["server.sync_ms_per_conversation"],
            "sync_item": sc["server.sync_ms_per_item"],
            "ack": sc["server.ack_ms"],
            "retransmit": sc["server.retransmit_ms"],
        }
        self.write_diffusion = sc["server.diffusion"] == "write"
        # inbox sync (reliability.sync_cursor): every member's inbox gets a copy
        self.inbox_sync = sc["reliability.sync_cursor"] == "inbox"
        # read diffusion: every poll and sync page reads each of the user's group timelines
        self.timeline_read_ms = 0.0 if self.write_diffusion else sc["server.timeline_read_ms"]
        self._groups_of: dict[int, int] | None = None  # user → groups it is in (lazy)
        self.one_transfer = sc["server.login_catchup"] == "one_transfer"
        self.batch_max = sc["transport.batch_max"]
        # The push path's callbacks, bound once: ``self._after_auth`` as an argument
        # builds a bound method (an allocation) for every job it is given to.
        self._after_auth_cb = self._after_auth
        self._after_checks_cb = self._after_checks
        self._after_contacts_cb = self._after_contacts
        self._after_store_cb = self._after_store
        self._fan_out_cb = self._fan_out
        self._ack_served_cb = self._ack_served
        self._answer_sync_cb = self._answer_sync
        side = world.side
        self._reply_arrives = side.reply_arrives
        self._push_arrives = side.push_arrives
        self._sync_response_arrives = side.sync_response_arrives

    def _setup_admission(self) -> None:
        sc = self.sc
        self.screening_policy = sc["server.screening_policy"]
        self.checks_policy, self.policy = endpoints.admission_policies(sc)
        # Without a callback or screening the second decision applies the checks' rules to
        # the checks' facts again: it is the checks' answer (an acceptance), not asked twice.
        self.checks_decide = self.policy == self.checks_policy
        # read for every message (a scenario lookup is a Python call)
        self.callback_enabled = sc["server.callback_enabled"]
        self.screening_enabled = sc["server.screening_enabled"]
        self.plain_admission = (
            not self.callback_enabled and not self.screening_enabled and self.checks_decide
        )
        # the muted users (the first draw of the admission stream), friendships and
        # blacklists: shared with immodel real's logic servers
        self.relationships = Relationships(sc, self.w.streams["admission"].generator)
        self.muted = self.relationships.muted

    # ------------------------------------------------------------------------------------
    # routing
    def owner(self, uid: int) -> LogicNode | None:
        """The logic node the access tier routes ``uid`` to now (None: none is live)."""
        n = self._owner.get(uid)
        if n is None:
            if not self._live:
                return None
            n = self._owner[uid] = rendezvous(uid, self._live)
        return self.nodes[n]

    def _set_view(self, node_id: int, live: bool) -> None:
        if self.view[node_id] == live:
            return
        self.view[node_id] = live
        self._live = [i for i, v in enumerate(self.view) if v]
        self._owner.clear()

    def _serving(self, uid: int) -> LogicNode | None:
        n = self._owner.get(uid)  # owner(uid), its common case written out
        node = self.owner(uid) if n is None else self.nodes[n]
        return node if node is not None and node.up else None

    def _holders(self, uid: int, first: LogicNode) -> list[LogicNode]:
        """``first``, then every other live node that still holds pending entries for
        ``uid`` (a failover moved the user away and back: the entries stay where they
        were pushed from, and the ACK or poll that clears them is shared out)."""
        if len(self.nodes) == 1:
            return [first]
        return [first] + [
            n for n in self.nodes if n is not first and n.up and n.core.pending.waiting(uid)
        ]

    # ------------------------------------------------------------------------------------
    # sessions (told by the access tier)
    def user_connected(self, uid: int, conn: Connection) -> None:
        """``uid`` logged in on ``conn``: its offline queue moves to the downlink."""
        node = self._serving(uid)
        if node is None:
            return  # the queue stays in the store; the reconnect sync reads the store too
        if self.w.push is not None:
            self.w.push.logged_in(uid)
        # what waits at login, and whether the queue carries it (else the sync page does)
        backlog = len(self.store.offline.get(uid, ()))
        receiver = self.w.clients[uid].receiver
        sync_follows = receiver.sync_enabled and receiver.sync_on_reconnect
        self.w.counters["login_backlog"] += backlog
        if login_pushes_queue(one_transfer=self.one_transfer, sync_follows=sync_follows):
            self.w.counters["login_queue_pushed"] += backlog
        delivers = node.core.login(
            uid, conn.mode, self.env._now, one_transfer=self.one_transfer, sync_follows=sync_follows
        )
        if delivers:
            self._push_out(delivers, conn, self.w.side.login_push_arrives)
            self._arm_retx(node)
        elif conn.mode != PUSH and node.core.pending.waiting(uid):
            self.w.access.answer_held(uid)

    def user_disconnected(self, uid: int) -> None:
        """``uid``'s connection closed cleanly: unacknowledged messages, on whichever
        node holds them, go to the durable offline queue."""
        for node in self.nodes:
            if node.up:
                node.core.disconnect(uid)

    # ------------------------------------------------------------------------------------
    # the send path
    def send_arrives(self, arg) -> None:
        client, msg = arg
        node = self._serving(client.uid)
        if node is None:
            return  # routed to a dead node (before failover), or none is live
        verdict, reply = node.core.begin_send(msg, self.env._now)
        if verdict is Verdict.DONE:
            self.w.counters["dedup_hits"] += 1
            self._reply(node, client, reply)
        elif verdict is Verdict.IN_PROGRESS:
            self.w.counters["dedup_in_progress_drops"] += 1
        else:
            node.stages["auth"].submit(self._after_auth_cb, (node, client, msg), self.costs["auth"])

    def _after_auth(self, job) -> None:
        node, _client, _msg = job
        node.stages["checks"].submit(self._after_checks_cb, job, self.costs["checks"])

    def _facts(self, msg: Message, callback: str | None, screening: str | None):
        """What the check stages look up for ``msg``: mute, blacklist, friendship.

        Relationship facts are fixed per pair (:class:`~immodel.sim.relationships.
        Relationships`); a fraction of 0 or 1 needs no draw, which keeps the common plain
        deployment cheap."""
        sender = msg.sender
        dev = self.w.devices  # several devices per user: the facts are the users'
        if dev is not None and sender != ADMIN_UID:  # the admin account has no devices
            sender = dev.user[sender]
        friends, black = True, False
        if not msg.is_group:
            other = self.rec.recipients(msg.msg_id)[0]
            if dev is not None:
                other = dev.user[other]
            friends, black = self.relationships.pair(sender, other)
        # positional (sender_muted, blacklisted_by_recipient, are_friends, is_group,
        # screening_verdict, callback_verdict): cheaper than keywords, once per message
        return admission.MessageFacts(
            sender in self.muted, black, friends, msg.is_group, screening, callback
        )

    def _after_checks(self, job) -> None:
        node, client, msg = job
        decision = admission.admit(self.checks_policy, self._facts(msg, None, None))
        if not decision.accepted:
            self._reject(node, client, msg, str(decision.reason))
            return
        if self.plain_admission:
            # No callback, no screening, the checks' answer final: _after_callback and
            # _after_screening would only pass the job on to the recent-contacts stage.
            node.stages["recent_contacts"].submit(
                self._after_contacts_cb, job, self.costs["recent_contacts"]
            )
            return
        if self.callback_enabled:
            sc = self.sc
            stream = self.w.streams["admission"]
            latency_s = stream.exponential(sc["server.callback_ms"] / 1000.0)
            timeout_s = sc["server.callback_timeout_s"]
            if latency_s > timeout_s:
                verdict, latency_s = "timeout", timeout_s
            elif stream.uniform() < sc["server.callback_reject_prob"]:
                verdict = "reject"
            else:
                verdict = "allow"
            later(
                self.env, latency_s, self._after_callback, (node, client, msg, verdict, node.epoch)
            )
        else:
            self._after_callback((node, client, msg, None, node.epoch))

    def _after_callback(self, job) -> None:
        node, client, msg, callback, epoch = job
        if node.epoch != epoch:
            return  # the node crashed while the business backend was being called
        job = (node, client, msg, callback)
        if self.screening_enabled:
            node.stages["screening"].submit(self._after_screening, job, self.costs["screening"])
        else:
            self._after_screening(job)

    def _after_screening(self, job) -> None:
        node, client, msg, callback = job
        screening = None
        action = ""
        if self.screening_enabled:
            blocked = self.w.streams["admission"].uniform() < self.sc["server.screening_block_prob"]
            # the business's policy decides what a hit means (immodel.protocol.channel)
            action, screening = channel.screening_outcome(
                self.screening_policy, "block" if blocked else "pass"
            )
        if callback is None and screening is None and self.checks_decide:
            decision = admission.ACCEPTED
        else:
            decision = admission.admit(self.policy, self._facts(msg, callback, screening))
        if action:
            self.rec.set_screening(msg.msg_id, action)
            self.w.counters["screening_" + action] += 1
        if not decision.accepted:
            self._reject(node, client, msg, str(decision.reason))
            return
        if action == "sender_only":
            # shown to its sender only: a final answer to the sender, no copy for anyone
            self._reject(node, client, msg, "screened_sender_only")
            return
        node.stages["recent_contacts"].submit(
            self._after_contacts, (node, client, msg), self.costs["recent_contacts"]
        )

    def _after_contacts(self, job) -> None:
        node, _client, msg = job
        cost = self.costs["store"]
        if msg.is_group and self.write_diffusion:
            n_rcpt = self.rec.n_recipients(msg.msg_id)
            cost += self.costs["inbox_write"] * n_rcpt
        if self.inbox_sync:
            # the inbox copies write diffusion does not already pay: the sender's own,
            # and a 1:1 recipient's
            n_copies = 1 if msg.is_group else self.rec.n_recipients(msg.msg_id) + 1
            cost += self.costs["inbox_write"] * n_copies
        node.stages["store"].submit(self._after_store_cb, job, cost)

    def _after_store(self, job) -> None:
        node, client, msg = job
        if not node.up:
            return
        now = self.env._now
        if node.store_fail_prob > 0 and self.w.streams["faults"].uniform() < node.store_fail_prob:
            self.w.counters["store_failures"] += 1
            burn = self._burns_seq(msg)
            self._reply(node, client, node.core.store_failed(msg, burn_seq=burn))
            return
        item, reply = node.core.commit(msg, now)
        recipients = self.rec.recipients(msg.msg_id)
        session = self.w.access.session
        if len(recipients) == 1:  # 1:1: no comprehension
            r = recipients[0]
            online = {r: session(r) is not None}
        else:
            online = {r: session(r) is not None for r in recipients}
        self.rec.stored(now, msg, item.order_key, online)
        self._reply(node, client, reply)
        self.route_stored(node, item, recipients)

    def _burns_seq(self, msg: Message) -> bool:
        """Did this failed group write take its seq first (``server.seq_burn_prob``)?"""
        p = self.sc["server.seq_burn_prob"]
        if not msg.is_group or p <= 0.0 or self.w.streams["seq_burn"].uniform() >= p:
            return False
        self.w.counters["seqs_burnt"] += 1
        return True

    def groups_of(self, uid: int) -> int:
        """How many groups ``uid`` is in (what a read-diffusion poll or sync reads)."""
        if self._groups_of is None:
            self._groups_of = {}
            for members in self.w.groups:
                for m in members:
                    self._groups_of[int(m)] = self._groups_of.get(int(m), 0) + 1
        return self._groups_of.get(uid, 0)

    def route_stored(self, node: LogicNode, item, recipients) -> None:
        """Queue the status lookup + fan-out of a stored message (logged durably first)."""
        key = (item.message.msg_id, item.order_key)
        node.unrouted[key] = (item, recipients)
        cost = self.costs["status"] + self.costs["fanout"] * len(recipients)
        node.stages["downlink"].submit(self._fan_out_cb, (node, key), cost)

    def _reject(self, node: LogicNode, client: Client, msg: Message, reason: str) -> None:
        self.w.counters["rejections"] += 1
        self._reply(node, client, node.core.reject(msg, reason, self.env._now))

    def _reply(self, node: LogicNode, client: Client, reply: SendReply) -> None:
        if node.extra_delay_s > 0:
            # slow_server: the node answers late although the write is done (the
            # article's failure 3), so a retry meets a stored message in the dedup window.
            later(self.env, node.extra_delay_s, self._late_reply, (node, node.epoch, client, reply))
            return
        self._send_reply(client, reply)

    def _late_reply(self, arg) -> None:
        node, epoch, client, reply = arg
        if node.epoch == epoch:  # a reply still inside a crashed node is gone with it
            self._send_reply(client, reply)

    def _send_reply(self, client: Client, reply: SendReply) -> None:
        if client.uid == ADMIN_UID:  # a REST message: the answer goes to the backend's call
            self.w.backend.message_replied(reply)
            return
        conn = self.w.access.session(client.uid)
        self.w.access.frame_down(
            conn,
            client.uid,
            self.header + REPLY_BYTES,
            self._reply_arrives,
            (client, conn, reply),
        )

    # ------------------------------------------------------------------------------------
    # the downlink
    def _fan_out(self, job) -> None:
        node, key = job
        entry = node.unrouted.pop(key, None)
        if entry is None:
            return
        item, recipients = entry
        now = self.env._now
        session = self.w.access.session
        for r in recipients:
            rnode = self.owner(r)
            if rnode is None or not rnode.up:
                # The recipient's node is down: the store keeps it for the next login
                # (and every sync reads the store).
                self.w.counters["routed_to_down_node"] += 1
                self.store.offline.setdefault(r, []).append(item)
                continue
            conn = session(r)
            mode = conn.mode if conn is not None else None
            if mode is None:
                self._offline_push(r, item)
            delivers = rnode.core.route(item, r, mode, now)
            if delivers:
                self._push_out(delivers, conn, self._push_arrives)
                self._arm_retx(rnode)
            elif mode == "poll":
                if self.w.idle is not None:  # an idle short poller polls on its own again
                    self.w.idle.message_waits(r)
                self.w.access.answer_held(r)

    def _offline_push(self, uid: int, item) -> None:
        """The vendor's offline notification to a user who is not connected.

        It travels the vendor's channel (its own latency and loss) and tells the device
        that a message waits; the message itself comes with the next login. Its arrival
        time is recorded per message × recipient (``t_offline_push``)."""
        if self.w.push is not None:  # the channel end to end (immodel.sim.offline_push)
            self.w.push.notify(uid, item)
            return
        counters = self.w.counters
        counters["offline_pushes"] += 1
        if self.w.streams["offline_push"].uniform() < self.sc["server.offline_push_loss"]:
            counters["offline_pushes_lost"] += 1
            return
        arrival = self.env._now + self.sc["server.offline_push_ms"] / 1000.0
        self.rec.offline_push(item.msg_id, uid, arrival)

    def _push_out(self, delivers: list[Deliver], conn: Connection | None, arrive) -> None:
        client = self.w.clients
        frame = self.w.access.frame_down
        for d in delivers:
            if d.attempt > 1:
                self.retransmits_downlink += 1
            size = self.header + d.item.message.payload_bytes
            frame(conn, d.recipient, size, arrive, (client[d.recipient], conn, d))

    def _arm_retx(self, node: LogicNode) -> None:
        deadline = node.core.pending.next_deadline()
        if deadline is None:
            return
        if node.retx_at is None or deadline < node.retx_at:
            node.retx_at = deadline
            at_time(self.env, deadline, self._retx_timer, node)

    def _retx_timer(self, node: LogicNode) -> None:
        now = self.env._now
        if node.retx_at is None or node.retx_at > now:
            return
        node.retx_at = None
        if node.up:
            due = node.core.pending.handle_timeout(now)
            if due:
                node.stages["downlink"].submit(
                    self._retransmit, (node, due), self.costs["retransmit"] * len(due)
                )
        self._arm_retx(node)

    def _retransmit(self, job) -> None:
        _node, due = job
        session = self.w.access.session
        for d in due:
            conn = session(d.recipient)
            if conn is not None and conn.mode == PUSH:
                self._push_out([d], conn, self.w.side.push_arrives)

    def ack_arrives(self, arg) -> None:
        uid, msg_ids = arg
        node = self._serving(uid)
        if node is not None:
            node.stages["ack"].submit(
                self._ack_served_cb, (node, uid, msg_ids), self.costs["ack"] * len(msg_ids)
            )

    def _ack_served(self, job) -> None:
        node, uid, msg_ids = job
        for holder in self._holders(uid, node):
            holder.core.pending.handle_ack(uid, msg_ids)

    # ------------------------------------------------------------------------------------
    # sync
    def sync_arrives(self, arg) -> None:
        client, _conn, request, row = arg
        node = self._serving(client.uid)
        if node is None:
            return
        # The page is cut from the store as the request is served; what it costs depends
        # on what it scans and returns.
        response = self.store.answer_sync(request)
        self.rec.set_request_messages(row, len(response.items))
        c = self.costs
        # scanned: the conversations looked through, or in inbox sync the entries read
        cost = c["sync"] + c["sync_conv"] * response.scanned + c["sync_item"] * len(response.items)
        if self.timeline_read_ms:
            cost += self.timeline_read_ms * self.groups_of(client.uid)
        node.stages["sync"].submit(self._answer_sync_cb, (client, response), cost)

    def _answer_sync(self, job) -> None:
        client, response = job
        size = self.header
        for i in response.items:  # a loop, not sum() of a generator: most pages are empty
            size += i.message.payload_bytes + SYNC_ITEM_OVERHEAD_BYTES
        self.w.sync_bytes += size
        conn = self.w.access.session(client.uid)
        self.w.access.frame_down(
            conn, client.uid, size, self._sync_response_arrives, (client, conn, response)
        )

    # ------------------------------------------------------------------------------------
    # polling
    def poll_arrives(self, arg) -> None:
        client, conn, seq, row, acks, hold = arg
        node = self._serving(client.uid)
        if node is None:
            return
        if acks:
            for holder in self._holders(client.uid, node):
                holder.core.pending.handle_ack(client.uid, acks)
        batch = min(node.core.pending.waiting(client.uid), self.batch_max)
        cost = self.costs["poll"] + self.costs["poll_msg"] * batch + self.costs["ack"] * len(acks)
        if self.timeline_read_ms:
            cost += self.timeline_read_ms * self.groups_of(client.uid)
        node.stages["poll"].submit(self._poll_served, (node, client, conn, seq, row, hold), cost)

    def _poll_served(self, job) -> None:
        node, client, conn, seq, row, hold = job
        if client.kind == LONG_POLL and node.core.pending.waiting(client.uid) == 0:
            self.w.access.hold(client, conn, seq, row, hold)
            return
        self.respond_poll(client, conn, seq, row)

    def respond_poll(self, client: Client, conn: Connection, seq: int, row: int) -> None:
        """Answer a poll with the oldest messages waiting for ``client`` (maybe none)."""
        node = self._serving(client.uid)
        delivers = []
        if node is not None:
            for holder in self._holders(client.uid, node):
                room = self.batch_max - len(delivers)
                if room > 0:
                    delivers += holder.core.pending.take_for_poll(client.uid, room)
        size = self.header
        if delivers:
            retransmits = 0
            for d in delivers:  # a loop, not two sums of generators: one poll answer each
                retransmits += d.attempt > 1
                size += d.item.message.payload_bytes
            self.retransmits_downlink += retransmits
            self.rec.set_request_messages(row, len(delivers))
        elif client.kind == SHORT_POLL and not self.w.side.fixed_delay:
            # An empty answer to a fixed-rate short poll changes nothing at the client (its
            # next poll is already scheduled): sent and counted, its arrival is no event.
            self.w.access.frame_down(conn, client.uid, size, None, None)
            return
        self.w.access.frame_down(
            conn, client.uid, size, self.w.side.poll_response_arrives, (client, conn, seq, delivers)
        )

    # ------------------------------------------------------------------------------------
    # faults
    def crash_node(self, node: LogicNode) -> None:
        """Volatile state of ``node`` is gone; connections, on the access tier, are not."""
        now = self.env._now
        node.up = False
        node.crashes += 1
        self.w.counters["crash_pending_lost"] += node.core.crash()
        for stage in node.stages.values():
            self.w.counters["stage_jobs_lost"] += stage.crash()
        node.retx_at = None
        node.epoch += 1
        node.crashed_at = now
        later(self.env, self.failover_detect_s, self._failover, (node, node.epoch))

    def _failover(self, arg) -> None:
        node, epoch = arg
        if not node.up and node.epoch == epoch:
            self._set_view(node.node_id, False)  # its users move to the survivors

    def recover_node(self, node: LogicNode) -> None:
        """The node is back: its users route home, and fan-outs that the crash
        interrupted are redone from the store's durable fan-out log."""
        node.up = True
        self._set_view(node.node_id, True)
        for item, recipients in list(node.unrouted.values()):
            self.route_stored(node, item, recipients)


__all__ = ["STAGE_NAMES", "LogicNode", "LogicTier"]

"""The reference model under any interleaving of loss, duplication, reorder and crash.

A fake network drives three clients (an :class:`UplinkSender` and a :class:`Receiver`
each), one durable :class:`MessageStore` and two :class:`ServerNode` s through a bag of
in-flight packets. Hypothesis picks which packet arrives next (reorder), which is lost,
which is duplicated, when time advances (firing every ``handle_timeout`` whose deadline
passed), when a node crashes and when a client goes offline.

Safety properties are ``@invariant`` s, checked after every step. Liveness is checked in
``teardown``: the network stops losing, everyone comes back online and time advances
until no deadline is left ("quiescence"); then every stored (message, recipient) pair
must have reached the recipient's app exactly once.

The same machine runs with one mechanism switched off at a time, and Hypothesis must
find a counterexample: that is what makes each mechanism load-bearing. Where other
mechanisms would repair the damage by chance (every reconnect and every 1:1 receipt
syncs), the workload of that search leaves them out, so the search is quick and sure.

Modelling choices (each one a contract of the model, not a shortcut):

* A client's connection ends with a crash of its node or a clean disconnect; packets of
  the old connection are gone (``Receiver.disconnect``: "an in-flight sync's answer will
  never come"). The client reconnects at once after a crash, logs in (offline queue) and
  syncs.
* Packets live at most ``MAX_PACKET_AGE_S`` (a maximum segment lifetime) so that a retry
  can arrive at most ``(max_attempts - 1) * timeout + MAX_PACKET_AGE_S`` = 50 s after the
  first copy, well inside the 120 s dedup window; a retry after the window is stored
  again by design, which ``test_dedup.py`` pins.
* Sends are committed by the node that owns the conversation (sharding by conversation),
  so 1:1 timestamps of a conversation come from one clock; ``ServerNode.route`` and the
  pending-ACK table live on the recipient's home node, where ACKs go.
* The dedup window is kept with the store (``dedup_durable=True``) in the all-on
  configuration: a volatile window forgets across a crash, and a retry is then stored
  twice (the ``volatile_dedup_with_crash`` search shows it).
"""

from __future__ import annotations

import dataclasses
import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from immodel.protocol import (
    DedupWindow,
    Message,
    MessageStore,
    PendingAcks,
    Receiver,
    RetryPolicy,
    SendAck,
    SendFailed,
    SendSucceeded,
    ServerNode,
    Show,
    StartSync,
    Stored,
    Transmit,
    UplinkSender,
    Verdict,
)

USERS = ("A", "B", "C")
CONVERSATIONS = {"A|B": ("A", "B"), "B|C": ("B", "C"), "G": ("A", "B", "C")}
GROUPS = frozenset({"G"})
HOME = {"A": 0, "B": 1, "C": 0}  # the node holding each user's connection
OWNER = {"A|B": 0, "B|C": 1, "G": 1}  # the node committing each conversation's sends
SENDS = [(user, conv) for conv, members in CONVERSATIONS.items() for user in members]

MAX_PACKET_AGE_S = 30.0
TIME_LIMIT_S = 300.0  # below the receiver's 600 s dedup window, so no copy outlives it
SYNC_LIMIT = 2  # small pages, so incomplete pages happen
# Crashes and churn per example: each reconnect drops a connection's packets and syncs,
# so more of them would leave few messages in flight to be harmed by anything else.
MAX_CRASHES = 2
# Bounds of the settle loop (see ``settle``): rounds of timer firings, and packets
# delivered or committed in one settle.
SETTLE_TIMER_ROUNDS = 1000
SETTLE_PACKET_BUDGET = 100_000
MAX_CHURN = 3
PACKET = st.integers(min_value=-8, max_value=63)


@dataclass(frozen=True)
class Mechanisms:
    """Which of the article's mechanisms are on (all by default)."""

    server_dedup: bool = True
    downlink_ack: bool = True
    client_dedup: bool = True
    sync: bool = True
    crashes: bool = True
    dedup_durable: bool = True
    nodes: int = 2
    check_single_store: bool = True  # off: check only what users see
    max_attempts: int = 5  # uplink attempts before the sender gives up
    groups: bool = True  # off: 1:1 sends only
    one_to_one: bool = True  # off: group sends only
    churn: bool = True  # clients going offline and back
    gap_wait_s: float = 0.0  # receivers wait this long on a group gap before syncing
    seq_burn: bool = False  # a failed group write burns the seq it took


ALL_ON = Mechanisms()


@dataclass
class Packet:
    kind: str  # send, reply, deliver, ack, sync_req, sync_resp
    user: Any  # the client at one end of it
    epoch: int  # the client's connection it travels on
    born: float
    body: Any
    node: int = 0  # the server node at the other end (send, deliver, ack)


@dataclass
class Client:
    user: Any
    sender: UplinkSender
    receiver: Receiver
    online: bool = True
    epoch: int = 0
    last_attempt: dict[Any, int] = field(default_factory=dict)  # msg_id → attempt


class DeliveryMachine(RuleBasedStateMachine):
    """Clients, nodes, store and a lossy, reordering, duplicating network."""

    mech: Mechanisms = ALL_ON

    def __init__(self) -> None:
        super().__init__()
        mech = self.mech
        self.now = 0.0
        self.store = MessageStore()
        for conv, members in CONVERSATIONS.items():
            for user in members:
                self.store.join(user, conv)
        self.nodes = [
            ServerNode(
                n,
                self.store,
                dedup=DedupWindow(120.0, enabled=mech.server_dedup),
                pending=PendingAcks(5.0, enabled=mech.downlink_ack),
                dedup_durable=mech.dedup_durable,
            )
            for n in range(mech.nodes)
        ]
        self.processing: list[list[Message]] = [[] for _ in self.nodes]
        self.clients = {
            u: Client(
                u,
                UplinkSender(u, RetryPolicy(timeout_s=5.0, max_attempts=mech.max_attempts)),
                Receiver(
                    u,
                    ack=mech.downlink_ack,
                    dedup=mech.client_dedup,
                    sync_enabled=mech.sync,
                    sync_limit=SYNC_LIMIT,
                    gap_wait_s=mech.gap_wait_s,
                ),
            )
            for u in USERS
        }
        self.bag: list[Packet] = []
        self.messages: dict[Any, Message] = {}
        self.stored: set[tuple[Any, int]] = set()  # (msg_id, order key) the store holds
        self.succeeded: dict[Any, int] = {}  # msg_id → key the sender was told
        self.failed: set[Any] = set()
        self.shows: Counter[tuple[Any, Any]] = Counter()  # (msg_id, user) → times shown
        self.first_shown: dict[tuple[Any, Any], list[int]] = defaultdict(list)  # (user, group)
        self.bad_shows: list[str] = []
        self.crashes = self.churns = 0

    # -- topology --------------------------------------------------------------------------
    def home(self, user: Any) -> ServerNode:
        return self.nodes[HOME[user] % len(self.nodes)]

    def owner(self, conv: Any) -> int:
        return OWNER[conv] % len(self.nodes)

    def emit(self, kind: str, user: Any, body: Any, node: int = 0) -> None:
        client = self.clients[user]
        if client.online:  # nothing travels on a connection that is down
            self.bag.append(Packet(kind, user, client.epoch, self.now, body, node))

    # -- carrying out the machines' actions ---------------------------------------------------
    def client_actions(self, user: Any, actions: list[Any]) -> None:
        client = self.clients[user]
        for action in actions:
            if isinstance(action, Transmit):
                client.last_attempt[action.message.msg_id] = action.attempt
                self.emit("send", user, action.message, self.owner(action.message.conversation))
            elif isinstance(action, SendSucceeded):
                self.succeeded[action.msg_id] = action.order_key
                message = self.messages[action.msg_id]
                if message.is_group:  # its own seq may be the gap that held others back
                    released = client.receiver.note_own(
                        message.conversation, action.order_key, self.now
                    )
                    self.client_actions(user, released)
            elif isinstance(action, SendFailed):
                self.failed.add(action.msg_id)
            elif isinstance(action, Show):
                self.record_show(user, action.item)
            elif isinstance(action, SendAck):
                self.emit("ack", user, action.msg_ids, HOME[user] % len(self.nodes))
            elif isinstance(action, StartSync):
                self.emit("sync_req", user, action.request)
            else:  # pragma: no cover - the machines return nothing else
                raise AssertionError(f"unexpected action {action!r}")

    def record_show(self, user: Any, item: Stored) -> None:
        if (item.msg_id, item.order_key) not in self.stored:
            self.bad_shows.append(f"{user} shown unstored {item}")
        if item.message.sender == user:
            self.bad_shows.append(f"{user} shown its own {item}")
        first = self.shows[item.msg_id, user] == 0
        self.shows[item.msg_id, user] += 1
        if first and item.is_group:
            self.first_shown[user, item.conversation].append(item.order_key)

    def deliveries(self, delivers: list[Any]) -> None:
        for d in delivers:
            self.emit("deliver", d.recipient, d.item, HOME[d.recipient] % len(self.nodes))

    def commit(self, node_id: int, message: Message) -> None:
        item, reply = self.nodes[node_id].commit(message, self.now)
        self.stored.add((item.msg_id, item.order_key))
        self.emit("reply", message.sender, reply)
        for recipient in CONVERSATIONS[message.conversation]:
            if recipient == message.sender:
                continue
            mode = "push" if self.clients[recipient].online else None
            self.deliveries(self.home(recipient).route(item, recipient, mode, self.now))

    def arrive(self, packet: Packet, slow: bool = False) -> None:
        """``packet`` reaches its destination."""
        client = self.clients[packet.user]
        if packet.epoch != client.epoch or not client.online:
            return  # its connection is gone
        kind, body = packet.kind, packet.body
        if kind == "send":
            node = self.nodes[packet.node]
            verdict, reply = node.begin_send(body, self.now)
            if verdict is Verdict.NEW:
                if slow:  # admission stages take time: the reply comes later
                    self.processing[packet.node].append(body)
                else:
                    self.commit(packet.node, body)
            elif verdict is Verdict.DONE:
                self.emit("reply", packet.user, reply)
            # IN_PROGRESS: dropped, the first copy's reply will answer
        elif kind == "reply":
            self.client_actions(packet.user, client.sender.handle_reply(body, self.now))
        elif kind == "deliver":
            self.client_actions(packet.user, client.receiver.handle_push(body, self.now))
        elif kind == "ack":
            self.nodes[packet.node].pending.handle_ack(packet.user, body)
        elif kind == "sync_req":
            self.emit("sync_resp", packet.user, self.store.answer_sync(body))
        elif kind == "sync_resp":
            self.client_actions(packet.user, client.receiver.handle_sync_response(body, self.now))
        else:  # pragma: no cover
            raise AssertionError(kind)

    def fire_timeouts(self) -> None:
        now = self.now
        for user, client in self.clients.items():
            deadline = client.sender.next_deadline()
            if deadline is not None and deadline <= now:
                self.client_actions(user, client.sender.handle_timeout(now))
            deadline = client.receiver.next_deadline()
            if deadline is not None and deadline <= now:
                self.client_actions(user, client.receiver.handle_timeout(now))
        for node in self.nodes:
            deadline = node.pending.next_deadline()
            if deadline is not None and deadline <= now:
                self.deliveries(node.pending.handle_timeout(now))

    def reconnect(self, user: Any) -> None:
        client = self.clients[user]
        client.online = True
        client.epoch += 1
        client.receiver.disconnect()
        self.deliveries(self.home(user).login(user, "push", self.now))
        self.client_actions(user, client.receiver.request_sync(self.now))

    # -- rules ------------------------------------------------------------------------------
    @rule(send=st.sampled_from(SENDS))
    def submit(self, send: tuple[Any, Any]) -> None:
        user, conv = send
        if not (self.mech.groups if conv in GROUPS else self.mech.one_to_one):
            return
        client = self.clients[user]
        message, actions = client.sender.submit(
            conversation=conv, is_group=conv in GROUPS, now=self.now
        )
        self.messages[message.msg_id] = message
        self.client_actions(user, actions)

    # A packet is named by its age rank (0: the oldest; -1: the newest), clipped to the
    # bag: shrinking the rank moves towards FIFO delivery, and deleting a step elsewhere
    # rarely changes which packet a rank names.
    def pick(self, i: int) -> int:
        n = len(self.bag)
        return min(i, n - 1) if i >= 0 else max(n + i, 0)

    @precondition(lambda self: self.bag)
    @rule(i=PACKET, slow=st.booleans())
    def deliver(self, i: int, slow: bool) -> None:
        self.arrive(self.bag.pop(self.pick(i)), slow)

    @precondition(lambda self: self.bag)
    @rule()
    def deliver_oldest(self) -> None:
        """The common case, so that messages get somewhere between the accidents."""
        self.arrive(self.bag.pop(0))

    @precondition(lambda self: self.bag)
    @rule(i=PACKET)
    def lose(self, i: int) -> None:
        self.bag.pop(self.pick(i))

    @precondition(lambda self: self.bag)
    @rule(i=PACKET)
    def duplicate(self, i: int) -> None:
        self.bag.append(dataclasses.replace(self.bag[self.pick(i)]))

    @precondition(lambda self: any(self.processing))
    @rule(i=st.integers(min_value=0, max_value=1), store_fails=st.booleans())
    def finish_processing(self, i: int, store_fails: bool) -> None:
        queues = [(n, q) for n, q in enumerate(self.processing) if q]
        node_id, queue = queues[i % len(queues)]
        message = queue.pop(0)
        if store_fails:
            node = self.nodes[node_id]
            reply = node.store_failed(message, burn_seq=self.mech.seq_burn)
            self.emit("reply", message.sender, reply)
        else:
            self.commit(node_id, message)

    @precondition(lambda self: self.now < TIME_LIMIT_S)
    @rule(dt=st.sampled_from([0.5, 2.0, 5.0, 11.0]))
    def advance(self, dt: float) -> None:
        self.now += dt
        self.bag = [p for p in self.bag if self.now - p.born <= MAX_PACKET_AGE_S]
        self.fire_timeouts()

    @precondition(lambda self: self.mech.crashes and self.crashes < MAX_CRASHES)
    @rule(n=st.integers(min_value=0, max_value=1))
    def crash(self, n: int) -> None:
        self.crashes += 1
        node_id = n % len(self.nodes)
        self.nodes[node_id].crash()
        self.processing[node_id].clear()
        for user, client in self.clients.items():
            if client.online and HOME[user] % len(self.nodes) == node_id:
                self.reconnect(user)

    @precondition(lambda self: self.mech.churn and self.churns < MAX_CHURN)
    @rule(user=st.sampled_from(USERS))
    def toggle_online(self, user: Any) -> None:
        self.churns += 1
        client = self.clients[user]
        if client.online:
            client.online = False
            client.epoch += 1
            self.home(user).disconnect(user)
            client.receiver.disconnect()
        else:
            self.reconnect(user)

    # -- safety -----------------------------------------------------------------------------
    def nothing_is_stored_twice(self) -> None:
        if not self.mech.check_single_store:
            return
        twice = {m: n for m, n in self.store.stored_copies.items() if n != 1}
        assert not twice, f"stored twice: {twice}"

    def nothing_is_shown_twice(self) -> None:
        dup = {k: n for k, n in self.shows.items() if n > 1}
        assert not dup, f"duplicate shown: {dup}"

    def groups_are_shown_in_seq_order(self) -> None:
        for (user, group), seqs in self.first_shown.items():
            assert seqs == sorted(seqs), f"order violation: {user} saw {group} as {seqs}"

    @invariant()
    def safety(self) -> None:
        """Nothing stored twice, nothing shown twice, groups in seq order, success only for
        stored messages, only stored messages of others shown."""
        self.nothing_is_stored_twice()
        self.nothing_is_shown_twice()
        self.groups_are_shown_in_seq_order()
        told = set(self.succeeded.items())
        assert told <= self.stored, f"success for unstored: {told - self.stored}"
        assert not self.bad_shows, self.bad_shows

    # -- liveness ---------------------------------------------------------------------------
    def settle(self) -> None:
        """Quiescence: no more loss, everyone online, time runs until no deadline is left."""
        retrying = {
            msg_id
            for user, client in self.clients.items()
            for msg_id, attempt in client.last_attempt.items()
            if msg_id not in self.succeeded
            and msg_id not in self.failed
            and attempt < self.mech.max_attempts
        }
        for user, client in self.clients.items():
            if not client.online:
                self.reconnect(user)
        # Bounded: a protocol that keeps answering packets with packets (a sync that
        # always finds more to pull) or timers with timers must fail here with a message,
        # not hang the suite. The bounds are far above what any settle of these tests
        # needs (measured over this file: at most 329 packets and 7 timer rounds).
        handled = 0
        for _ in range(SETTLE_TIMER_ROUNDS):
            while self.bag or any(self.processing):
                while self.bag:
                    handled += 1
                    self._check_settle_budget(handled)
                    self.arrive(self.bag.pop(0))
                for node_id, queue in enumerate(self.processing):
                    while queue:
                        handled += 1
                        self._check_settle_budget(handled)
                        self.commit(node_id, queue.pop(0))
            deadlines = [
                d
                for d in (
                    *(c.sender.next_deadline() for c in self.clients.values()),
                    *(c.receiver.next_deadline() for c in self.clients.values()),
                    *(n.pending.next_deadline() for n in self.nodes),
                )
                if d is not None
            ]
            if not deadlines:
                break
            self.now = max(self.now, min(deadlines))
            self.fire_timeouts()
        else:
            raise AssertionError(
                f"livelock: deadlines keep firing after {SETTLE_TIMER_ROUNDS} rounds on a "
                "lossless network"
            )
        stuck = sorted(m for m in retrying if m not in self.succeeded)
        assert not stuck, f"sender still retrying at quiescence never succeeded: {stuck}"

    def _check_settle_budget(self, handled: int) -> None:
        if handled > SETTLE_PACKET_BUDGET:
            raise AssertionError(
                f"livelock: packets still in flight after {SETTLE_PACKET_BUDGET} deliveries "
                f"on a lossless network (next: {self.bag[:3]})"
            )

    def teardown(self) -> None:
        self.settle()
        for conv, timeline in self.store.timelines.items():
            for item in timeline.items:
                for user in CONVERSATIONS[conv]:
                    if user == item.message.sender:
                        continue
                    n = self.shows[item.msg_id, user]
                    assert n > 0, f"lost: {item.msg_id} never shown to {user}"
                    assert n == 1, f"duplicate shown: {item.msg_id} {n}x to {user}"
        self.nothing_is_stored_twice()
        self.groups_are_shown_in_seq_order()


def machine(mech: Mechanisms) -> type[DeliveryMachine]:
    """The state machine with these mechanisms."""
    return type("DeliveryMachine", (DeliveryMachine,), {"mech": mech})


# Under mutation testing (``make mutation``) a surviving mutant runs every test that
# covers it, and these machines cover nearly all of ``immodel.protocol``: their example
# counts are divided by this factor there, and a mutant that survives the scaled run is
# re-checked at full counts before it is called a survivor. A failure is not shrunk
# there either (shrinking only shortens the report; the mutant is killed either way).
# mutmut names the mutant in play in ``MUTANT_UNDER_TEST`` of the test process (its setup
# phases use other values: "", "stats", "fail", ...); a plain ``pytest`` run leaves it
# unset and runs full counts with shrinking.
MUTATION_EXAMPLE_DIVISOR = 5


def under_mutation() -> bool:
    """Whether mutmut is running this test against one of its mutants."""
    return "__mutmut_" in os.environ.get("MUTANT_UNDER_TEST", "")


def example_count(max_examples: int, *, scale: bool = True) -> int:
    """``max_examples``, divided by ``MUTATION_EXAMPLE_DIVISOR`` while mutmut runs a
    mutant (never below 10), unchanged otherwise or with ``scale=False``."""
    if scale and under_mutation():
        return max(10, max_examples // MUTATION_EXAMPLE_DIVISOR)
    return max_examples


def run(
    mech: Mechanisms,
    *,
    max_examples: int,
    steps: int,
    derandomize: bool = True,
    shrink: bool = True,
    scale: bool = True,
) -> None:
    """Run the machine with ``mech``; ``scale=False`` keeps the full example count even
    under mutation testing (see :func:`example_count`)."""
    shrink = shrink and not under_mutation()
    phases = [Phase.explicit, Phase.generate] + ([Phase.shrink] if shrink else [])
    run_state_machine_as_test(
        machine(mech),
        settings=settings(
            max_examples=example_count(max_examples, scale=scale),
            stateful_step_count=steps,
            deadline=None,
            derandomize=derandomize,
            database=None,
            phases=phases,
            report_multiple_bugs=False,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )


def test_every_mechanism_on_keeps_every_invariant_under_loss_reorder_duplication_crash() -> None:
    run(ALL_ON, max_examples=300, steps=60)


def test_every_mechanism_on_with_a_single_server_node() -> None:
    run(Mechanisms(nodes=1), max_examples=100, steps=60)


def test_gap_waits_and_burnt_seqs_keep_every_invariant() -> None:
    """Receivers wait before syncing on a gap, and failed group writes burn seqs: still
    every stored message is shown once, in seq order, with nothing left waiting. (Burns
    are rare in this machine's runs; ``test_gap_wait.py`` drives them directly.)"""
    run(Mechanisms(gap_wait_s=1.0, seq_burn=True), max_examples=100, steps=60)


def test_client_dedup_alone_hides_every_second_stored_copy_from_users() -> None:
    """Server dedup off, so messages are stored twice (two seqs in a group): what users
    see is still exactly once and in order."""
    run(
        Mechanisms(server_dedup=False, check_single_store=False),
        max_examples=150,
        steps=40,
    )


# Each mechanism is load-bearing: switched off, Hypothesis finds a counterexample.
OFF_SWITCHES = {
    "server_dedup": (Mechanisms(server_dedup=False), "stored twice"),
    "downlink_ack": (Mechanisms(downlink_ack=False, crashes=False, churn=False), "lost"),
    "client_dedup": (Mechanisms(client_dedup=False), "duplicate shown"),
    "sync_with_crash": (Mechanisms(sync=False, groups=False), "lost"),
    "sync_group_order": (
        Mechanisms(sync=False, crashes=False, churn=False, one_to_one=False),
        "order violation",
    ),
    "volatile_dedup_with_crash": (Mechanisms(dedup_durable=False), "stored twice"),
}


@pytest.mark.parametrize("name", OFF_SWITCHES)
def test_hypothesis_finds_a_counterexample_with_one_mechanism_off(name: str) -> None:
    mech, symptom = OFF_SWITCHES[name]
    with pytest.raises(AssertionError, match=symptom) as failure:
        # finding is what this test is about; shrinking (seconds each) is not
        # full counts under mutation testing too: this test proves the others have power
        run(mech, max_examples=500, steps=20, shrink=False, scale=False)
    steps = "\n".join(getattr(failure.value, "__notes__", []))
    if "crash" in name:
        assert "state.crash(" in steps, steps


def test_settle_fails_with_a_message_instead_of_hanging_when_packets_beget_packets() -> None:
    # A protocol bug that answers every packet with another one (say, a sync that always
    # finds one more page) must fail the settle loop, not hang the suite.
    state = machine(ALL_ON)()
    state.submit(SENDS[0])
    assert state.bag
    state.arrive = lambda packet, slow=False: state.bag.append(packet)
    with pytest.raises(AssertionError, match="livelock: packets still in flight"):
        state.settle()


def test_example_counts_are_full_unless_mutmut_is_running_a_mutant(monkeypatch) -> None:
    # A plain pytest run (``make test``) must run the machines at the counts written above.
    monkeypatch.delenv("MUTANT_UNDER_TEST", raising=False)
    assert not under_mutation()
    assert example_count(300) == 300
    for phase in ("", "stats", "fail", "list_all_tests", "mutant_generation"):
        monkeypatch.setenv("MUTANT_UNDER_TEST", phase)
        assert not under_mutation(), phase
        assert example_count(300) == 300, phase
    monkeypatch.setenv("MUTANT_UNDER_TEST", "immodel.protocol.sync.x_answer_sync__mutmut_7")
    assert under_mutation()
    assert example_count(300) == 60
    assert example_count(100) == 20
    assert example_count(20) == 10
    assert example_count(500, scale=False) == 500

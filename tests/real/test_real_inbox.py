"""Inbox sync (``reliability.sync_cursor = "inbox"``) in ``immodel real``.

The SQLite inbox of :mod:`immodel.real.store` is checked against the protocol's in-memory
:class:`~immodel.protocol.inbox.Inboxes` on the same joins and appends (the same pages,
whatever the cursor, limit and held pairs), and a real run in inbox mode is checked
against the same plan in conversation mode.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from immodel.protocol.inbox import Inboxes
from immodel.protocol.messages import Message, Stored, SyncRequest, SyncResponse
from immodel.real import store as sqlite_store

USERS = (1, 2, 3, 4)
GROUPS = {"g1": [1, 2, 3], "g2": [2, 3, 4]}
PAIRS = ("d1-2", "d1-3", "d2-4", "d3-4")

# one step: a message to a conversation (appended by logic process 0 or 1), or a late
# join of a user to a group (its later items go to that user's inbox)
_step = st.one_of(
    st.tuples(st.just("msg"), st.sampled_from(PAIRS + tuple(GROUPS)), st.integers(0, 1)),
    st.tuples(st.just("join"), st.sampled_from(tuple(GROUPS)), st.sampled_from(USERS)),
)


def _replay(steps, folder: Path):
    """The same joins and appends on both stores; the SQLite one through two connections
    (two logic processes) taking turns, as the send transactions of two nodes do."""
    mem = Inboxes()
    for group, members in GROUPS.items():
        for m in members:
            mem.join(m, group)
    path = str(folder / "store.sqlite")
    sqlite_store.create(path, GROUPS)
    nodes = [sqlite_store.SqliteStore(path, n, inbox=True) for n in (0, 1)]
    seq = dict.fromkeys(GROUPS, 0)
    for i, (kind, conv, who) in enumerate(steps):
        if kind == "join":
            mem.join(who, conv)
            nodes[0].join(who, conv)
            continue
        node = nodes[who]
        with node.transaction():
            if conv in GROUPS:
                seq[conv] += 1
                key = seq[conv]
                sender = GROUPS[conv][i % len(GROUPS[conv])]
            else:
                a, b = (int(x) for x in conv[1:].split("-"))
                key = 1000 + i  # a server timestamp (ms)
                sender = (a, b)[i % 2]
                for u in (a, b):
                    mem.join(u, conv)
                    node.join(u, conv)
            item = Stored(Message(f"m{i}", sender, conv, conv in GROUPS, 10), key)
            node.append(item)
        mem.append(item)
    return mem, nodes


@settings(max_examples=40, deadline=None)
@given(
    steps=st.lists(_step, max_size=30),
    limit=st.integers(1, 5),
    held_every=st.integers(1, 4),
)
def test_the_sqlite_inbox_answers_the_pages_of_the_protocols_inbox(steps, limit, held_every):
    with tempfile.TemporaryDirectory() as tmp:
        mem, nodes = _replay(steps, Path(tmp))
        try:
            for user in USERS:
                entries = mem.entries(user)
                # the same entries in the same order: seqs are per user across both nodes
                assert nodes[1].inbox_top(user) == mem.top(user) == len(entries)
                assert nodes[1].inbox_entries(user) == entries
                for cursor in range(len(entries) + 2):
                    # held: every held_every-th item above the cursor, named as a client
                    # names it (a 1:1 item by id, a group item by seq)
                    held = tuple(
                        (e.conversation, e.order_key if e.is_group else e.msg_id)
                        for e in entries[cursor::held_every]
                    )
                    for named in ((), held):
                        request = SyncRequest(user, (), limit, (), named, cursor)
                        assert nodes[0].answer_sync(request) == mem.answer(request)
        finally:
            for node in nodes:
                node.close()


def test_a_conversation_request_to_an_inbox_store_is_answered_by_conversation(tmp_path):
    path = str(tmp_path / "store.sqlite")
    sqlite_store.create(path, GROUPS)
    node = sqlite_store.SqliteStore(path, 0, inbox=True)
    with node.transaction():
        node.append(Stored(Message("m1", 1, "g1", True, 10), 1))
    page = node.answer_sync(SyncRequest(2, (), 10))
    assert [i.msg_id for i in page.items] == ["m1"]
    assert page.inbox_top == -1  # a conversation page
    node.close()
    plain = sqlite_store.SqliteStore(path, 0)
    with pytest.raises(ValueError, match="without inboxes"):
        plain.answer_sync(SyncRequest(2, (), 10, inbox_cursor=0))
    plain.close()


def test_the_wire_carries_the_inbox_cursor_and_top_and_leaves_conversation_frames_alone():
    from immodel.real import wire

    request = SyncRequest(3, (), 5, (), (("g1", 4), ("d1-3", "m1")), 7)
    assert wire.sync_request_from_wire(wire.sync_request_to_wire(request)) == request
    page = SyncResponse(3, (Stored(Message("m", 1, "g1", True, 10), 4),), False, (), 3, (), 9)
    assert wire.sync_response_from_wire(wire.sync_response_to_wire(page)) == page
    # conversation sync: the frames are what they were before inbox sync (no new field)
    request = SyncRequest(3, (("g1", 2),), 5, (), (("d1-3", "m1"),))
    assert "inbox" not in wire.sync_request_to_wire(request)
    assert wire.sync_request_from_wire(wire.sync_request_to_wire(request)) == request
    page = SyncResponse(3, (), True, (("d1-3", 5),), 1, (("g1", 2),))
    assert "inbox_top" not in wire.sync_response_to_wire(page)
    assert wire.sync_response_from_wire(wire.sync_response_to_wire(page)) == page


# -- a real run in inbox mode, and the same plan by conversation --------------------------
#: Push, two logic nodes, node 0 killed at 1.5 s for 1 s (its pending ACKs die with it),
#: groups beside 1:1 chats, and presence churn with ``one_transfer`` logins, so that the
#: reconnect sync page alone carries each login's backlog: sync has work to do.
CRASH = {
    "workload.users": 30,
    "workload.send_rate_per_user": 1.0,
    "workload.group_share": 0.3,
    "workload.groups": 3,
    "workload.group_size": 5,
    "workload.online_fraction": 0.7,
    "workload.mean_online_s": 3.0,
    "workload.mean_offline_s": 2.0,
    "server.login_catchup": "one_transfer",
    "duration_s": 4.0,
    "drain_s": 2.0,
    "server.nodes": 2,
    "faults": [{"kind": "server_crash", "at_s": 1.5, "down_s": 1.0, "node": 0}],
    # a plan with no login in the last LATE_S of the run (checked below): a login then
    # is "reachable" in the records, but its reconnect sync (two round trips, 0.16 s at
    # the 40 ms legs, after the TLS connect) may not come back before the run ends
    "seed": 4,
}
LATE_S = 0.5


def _run(tmp_path_factory, mode: str):
    from immodel import Scenario
    from tests.real.real_helpers import shared_real_run

    scenario = Scenario.load("baseline", {**CRASH, "reliability.sync_cursor": mode})
    return shared_real_run(tmp_path_factory, f"inbox-crash-{mode}", scenario)


@pytest.fixture(scope="module")
def inbox_run(tmp_path_factory):
    return _run(tmp_path_factory, "inbox")


@pytest.fixture(scope="module")
def conversation_run(tmp_path_factory):
    return _run(tmp_path_factory, "conversation")


def test_the_plan_has_no_login_at_the_very_end():
    from immodel import Scenario
    from immodel.real.loadgen import make_plan

    sc = Scenario.load("baseline", CRASH)
    plan = make_plan(sc)
    horizon_s = sc["duration_s"] + sc["drain_s"]
    assert sum(1 for _, _, up in plan.flips if up) > 10  # logins with backlogs happen
    assert [f for f in plan.flips if f[2] and f[0] > horizon_s - LATE_S] == []


def _sync_requests(result):
    return result.requests[result.requests["kind"] == "sync"]


@pytest.mark.timeout(120)
@pytest.mark.filterwarnings("ignore::immodel.errors.DrainWarning")
def test_inbox_sync_through_a_logic_crash_loses_and_duplicates_nothing(inbox_run):
    result, folder = inbox_run
    summary = result.summary
    assert "Traceback" not in (folder / "logic0.log").read_text()
    assert len(list(folder.glob("stats-logic0-*.json"))) == 2  # killed, then started again
    assert summary["messages_sent"] > 0
    # what is not shown waits for a login after the end (kept in the store), none while
    # the recipient was reachable
    assert summary["lost_while_reachable"] == 0
    assert summary["lost"] == summary["lost_awaiting_login"]
    assert summary["duplicates"] == 0
    assert summary["send_failures"] == 0
    assert summary["order_violations"] == 0
    # every sync was an inbox sync, and the pages repaired copies
    assert len(_sync_requests(result)) > 0
    assert (result.messages["first_via"] == "sync").any()


@pytest.mark.timeout(120)
@pytest.mark.filterwarnings("ignore::immodel.errors.DrainWarning")
def test_the_inbox_rows_are_one_per_member_with_contiguous_seqs(inbox_run):
    """Across two logic processes and a SIGKILL: each stored copy is in the inbox of each
    member of its conversation once, and each user's seqs are 1..n with no hole or
    repeat (allocated in the send's transaction, so a killed send leaves neither)."""
    import sqlite3

    _, folder = inbox_run
    db = sqlite3.connect(folder / "store.sqlite")
    try:
        expected = db.execute(
            "SELECT COUNT(*) FROM stored s JOIN members m ON m.conv = s.conv"
        ).fetchone()[0]
        rows = db.execute("SELECT user, seq, stored FROM inbox ORDER BY user, seq").fetchall()
        missing = db.execute(
            "SELECT COUNT(*) FROM stored s JOIN members m ON m.conv = s.conv"
            " WHERE NOT EXISTS (SELECT 1 FROM inbox i WHERE i.user = m.user AND i.stored = s.id)"
        ).fetchone()[0]
    finally:
        db.close()
    assert len(rows) == expected > 0
    assert missing == 0
    assert len({(u, s) for u, _, s in rows}) == len(rows)  # no copy twice in one inbox
    seqs: dict[int, list[int]] = {}
    for user, seq, _ in rows:
        seqs.setdefault(user, []).append(seq)
    for user, got in seqs.items():
        assert got == list(range(1, len(got) + 1)), user


def _sync_items(folder: Path) -> int:
    """Messages the logic processes put in sync pages (every instance, killed or not)."""
    import json

    return sum(
        json.loads(f.read_text()).get("run_sync_items", 0) for f in folder.glob("stats-logic*.json")
    )


def _within_poisson(a: int, b: int) -> bool:
    """``a`` and ``b`` agree as two counts with the same expectation: their difference
    is within three standard deviations of a difference of two Poisson counts."""
    return abs(a - b) <= 3.0 * math.sqrt(a + b)


@pytest.mark.timeout(120)
@pytest.mark.filterwarnings("ignore::immodel.errors.DrainWarning")
def test_inbox_and_conversation_sync_on_the_same_plan(inbox_run, conversation_run):
    """What to expect. The plan (sends, presence flips, the crash) is the same, and
    what starts a sync — a 1:1 push (receipt), a group gap, a login (reconnect) — and
    where a page is cut (``transport.batch_max`` messages) do not depend on the cursor
    kind; both modes leave out what the request names as held. So the same copies are
    delivered, the same ones by sync (``one_transfer``: a login's backlog comes by its
    reconnect page alone), and the numbers of sync requests and of messages in pages
    have the same expectation — they differ only by wall-clock timing (a trigger while a
    sync is in flight joins it). What differs is the request: a conversation request
    names a ``[conversation, key]`` cursor for every conversation the device has merged
    from (their number grows with the run), an inbox request one integer, so its mean
    size is smaller."""
    (inbox, inbox_dir), (conv, conv_dir) = inbox_run, conversation_run
    for result in (inbox, conv):
        s = result.summary
        assert s["lost_while_reachable"] == 0
        assert s["duplicates"] == 0
        m = result.messages
        # stored while the recipient was offline, shown later: by a sync page
        late = m[m["stored"] & ~m["online_at_store"] & m["t_first_show"].notna()]
        assert len(late) > 10
        assert (late["first_via"] == "sync").all()
    for key in ("messages_sent", "deliveries_expected"):  # the plan's
        assert inbox.summary[key] == conv.summary[key]
    pulls = [len(_sync_requests(r)) for r in (inbox, conv)]
    assert pulls[0] > 10 and _within_poisson(*pulls), pulls
    items = [_sync_items(inbox_dir), _sync_items(conv_dir)]
    assert items[0] > 10 and _within_poisson(*items), items
    mean_bytes = [_sync_requests(r)["bytes"].mean() for r in (inbox, conv)]
    assert mean_bytes[0] < mean_bytes[1], mean_bytes


# -- several devices per user -------------------------------------------------------------
@pytest.fixture(scope="module")
def devices_run(tmp_path_factory):
    from immodel import Scenario
    from tests.real.real_helpers import shared_real_run
    from tests.real.test_real_devices import DEVICES

    scenario = Scenario.load("baseline", {**DEVICES, "reliability.sync_cursor": "inbox"})
    return shared_real_run(tmp_path_factory, "inbox-devices", scenario)


@pytest.mark.timeout(120)
@pytest.mark.filterwarnings("ignore::immodel.errors.DrainWarning")
def test_each_device_reads_the_same_inbox_as_its_users_other_devices(devices_run):
    """A phone on push for everyone, a web app for 40 % of users, with churn: each device
    has its own inbox and cursor (the store's members are devices, as the simulator's);
    the devices of one user join every conversation together, so their inboxes hold the
    same stored rows in the same order, and nothing reachable is lost or shown twice."""
    import sqlite3

    from immodel import Scenario
    from immodel.real.loadgen import make_plan
    from tests.real.test_real_devices import DEVICES

    result, folder = devices_run
    s = result.summary
    assert s["duplicates"] == 0 and s["order_violations"] == 0 and s["send_failures"] == 0
    # nothing reachable is lost — except a copy to a device whose (re)login completed in
    # the run's last moments (its reconnect sync needs two round trips)
    m = result.messages
    lost = m[m["t_first_show"].isna() & m["reachable_after_store"].astype(bool)]
    logins = result.requests[result.requests["kind"] == "login"]
    horizon_s = DEVICES["duration_s"] + DEVICES["drain_s"]
    late = set(logins.loc[logins["t"] > horizon_s - 0.5, "user"].astype(int))
    assert set(lost["recipient"].astype(int)) <= late
    assert (m["first_via"] == "sync").any()
    devices = make_plan(Scenario.load("baseline", DEVICES)).devices
    db = sqlite3.connect(folder / "store.sqlite")
    try:
        rows = db.execute("SELECT user, stored FROM inbox ORDER BY user, seq").fetchall()
    finally:
        db.close()
    inbox: dict[int, list[int]] = {}
    for eid, stored in rows:
        inbox.setdefault(eid, []).append(stored)
    several = [u for u in range(DEVICES["workload.users"]) if len(devices.of[u]) > 1]
    assert several
    assert any(inbox.get(devices.of[u][0]) for u in several)  # not all empty
    for user in several:
        first, *others = (inbox.get(e, []) for e in devices.of[user])
        for other in others:
            assert other == first, user

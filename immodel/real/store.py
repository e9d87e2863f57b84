"""The durable message store of the real harness: one SQLite database in WAL mode.

It has the interface of :class:`immodel.protocol.server.MessageStore` that
:class:`~immodel.protocol.server.ServerNode` uses — ``group_sequencer.next_seq``,
``append``, ``offline`` (``setdefault(user, []).append``, ``pop``, ``get``), ``join``,
``conversations_of``, ``answer_sync`` — so a logic server process runs the protocol's own
``ServerNode`` on top of it. Every logic process opens the same file; SQLite serialises
their writes (``busy_timeout``).

Durability: each send is committed in one transaction (:meth:`SqliteStore.transaction`:
the group seq and the stored row together) before its reply leaves the node. In WAL mode
with ``synchronous = NORMAL`` a committed transaction survives the crash of the process
(SIGKILL), which is the failure ``server_crash`` injects; it may not survive a power loss,
which the harness does not model.

Besides the protocol's data the store keeps, per stored copy, when it was stored (run
clock, seconds) and which recipients were connected then: what the records' ``stored``
rows need (:mod:`immodel.real.recorder` reads them after the run).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterable, Iterator

from immodel.protocol.messages import Id, Message, Stored, SyncRequest, SyncResponse
from immodel.protocol.sync import Timeline, answer_sync

SCHEMA = """
CREATE TABLE IF NOT EXISTS stored (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    msg_id TEXT NOT NULL, sender INTEGER NOT NULL, conv TEXT NOT NULL,
    is_group INTEGER NOT NULL, payload INTEGER NOT NULL, order_key INTEGER NOT NULL,
    t_stored REAL, node INTEGER, online TEXT
);
CREATE INDEX IF NOT EXISTS stored_conv ON stored (conv, order_key);
CREATE TABLE IF NOT EXISTS members (
    user INTEGER NOT NULL, conv TEXT NOT NULL, PRIMARY KEY (user, conv)
);
CREATE TABLE IF NOT EXISTS groupseq (conv TEXT PRIMARY KEY, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS offline (
    id INTEGER PRIMARY KEY AUTOINCREMENT, user INTEGER NOT NULL,
    msg_id TEXT NOT NULL, sender INTEGER NOT NULL, conv TEXT NOT NULL,
    is_group INTEGER NOT NULL, payload INTEGER NOT NULL, order_key INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS offline_user ON offline (user, id);
CREATE TABLE IF NOT EXISTS screening (msg_id TEXT PRIMARY KEY, action TEXT NOT NULL);
"""


def connect(path: str) -> sqlite3.Connection:
    """Open the store (WAL, NORMAL sync, 10 s busy timeout); transactions are explicit."""
    db = sqlite3.connect(path, isolation_level=None, timeout=10.0)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA busy_timeout=10000")
    return db


def create(path: str, groups: dict[str, list[int]]) -> None:
    """Create the store with the scenario's groups and their members (before any server)."""
    db = connect(path)
    try:
        db.executescript(SCHEMA)
        db.execute("BEGIN IMMEDIATE")
        for name, members in groups.items():
            db.execute("INSERT OR IGNORE INTO groupseq VALUES (?, 0)", (name,))
            db.executemany(
                "INSERT OR IGNORE INTO members VALUES (?, ?)", [(m, name) for m in members]
            )
        db.execute("COMMIT")
    finally:
        db.close()


def _item(row) -> Stored:
    msg_id, sender, conv, is_group, payload, key = row
    return Stored(Message(msg_id, int(sender), conv, bool(is_group), int(payload)), int(key))


class _Sequencer:
    """``store.group_sequencer``: the next seq of a group, from the ``groupseq`` table."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def next_seq(self, group: Id) -> int:
        row = self._db.execute(
            "UPDATE groupseq SET seq = seq + 1 WHERE conv = ? RETURNING seq", (group,)
        ).fetchone()
        if row is None:  # a group the set-up did not know: start it
            self._db.execute("INSERT INTO groupseq VALUES (?, 1)", (group,))
            return 1
        return int(row[0])


class _OfflineQueue(list):
    """One user's offline queue as ``ServerNode`` sees it: appends go to the table."""

    def __init__(self, store: SqliteStore, user: Id) -> None:
        super().__init__()
        self._store = store
        self._user = user

    def append(self, item: Stored) -> None:  # type: ignore[override]
        self._store._offline_add(self._user, [item])

    def extend(self, items: Iterable[Stored]) -> None:  # type: ignore[override]
        self._store._offline_add(self._user, list(items))


class _OfflineQueues:
    """``store.offline``: the durable offline queues, with the few dict methods the
    protocol's ``ServerNode`` calls (``setdefault``, ``pop``, ``get``)."""

    def __init__(self, store: SqliteStore) -> None:
        self._store = store

    def setdefault(self, user: Id, _default=None) -> _OfflineQueue:
        return _OfflineQueue(self._store, user)

    def get(self, user: Id, default=()):
        items = self._store._offline_read(user)
        return items if items else default

    def pop(self, user: Id, default=None):
        items = self._store._offline_take(user)
        return items if items else (default if default is not None else [])


class SqliteStore:
    """The durable store on one SQLite connection (one per logic process).

    ``node`` is written beside each stored copy; :attr:`stamp_now` and :attr:`online`
    are set by the logic server before each commit so the row carries when it was stored
    and which recipients were connected."""

    def __init__(self, path: str, node: int = 0) -> None:
        self.db = connect(path)
        self.node = node
        self.group_sequencer = _Sequencer(self.db)
        self.offline = _OfflineQueues(self)
        self.stamp_now = 0.0
        self.online: list[int] = []
        self.appended = 0

    def close(self) -> None:
        self.db.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction (BEGIN IMMEDIATE … COMMIT; rolled back on an error)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # -- what ServerNode calls ----------------------------------------------------------
    def join(self, user: Id, conversation: Id) -> None:
        self.db.execute("INSERT OR IGNORE INTO members VALUES (?, ?)", (user, conversation))

    def conversations_of(self, user: Id) -> list[Id]:
        rows = self.db.execute("SELECT conv FROM members WHERE user = ?", (user,)).fetchall()
        return sorted((r[0] for r in rows), key=repr)

    def append(self, item: Stored) -> None:
        m = item.message
        self.db.execute(
            "INSERT INTO stored (msg_id, sender, conv, is_group, payload, order_key, t_stored,"
            " node, online) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                m.msg_id,
                m.sender,
                m.conversation,
                int(m.is_group),
                m.payload_bytes,
                item.order_key,
                self.stamp_now,
                self.node,
                json.dumps(sorted(self.online)),
            ),
        )
        self.appended += 1

    def burn_seq(self, group: Id) -> int:  # pragma: no cover - the harness has no write faults
        raise NotImplementedError("store failures are not injected by the real harness")

    def answer_sync(self, request: SyncRequest) -> SyncResponse:
        """One page, by the protocol's :func:`~immodel.protocol.sync.answer_sync` over the
        timelines of the user's conversations (rows at or above each cursor)."""
        convs = self.conversations_of(request.user)
        cursors = dict(request.cursors)
        timelines: dict[Id, Timeline] = {}
        for conv in convs:  # rows at or above the cursor only (the index on conv, key)
            rows = self.db.execute(
                "SELECT msg_id, sender, conv, is_group, payload, order_key FROM stored"
                " WHERE conv = ? AND order_key >= ? ORDER BY order_key, id",
                (conv, cursors.get(conv, 0)),
            ).fetchall()
            if rows:
                timeline = timelines[conv] = Timeline()
                for row in rows:
                    timeline.add(_item(row))
        return answer_sync(request, convs, timelines, in_order=True)

    # -- offline queues -----------------------------------------------------------------
    def _offline_add(self, user: Id, items: list[Stored]) -> None:
        self.db.executemany(
            "INSERT INTO offline (user, msg_id, sender, conv, is_group, payload, order_key)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    user,
                    i.message.msg_id,
                    i.message.sender,
                    i.message.conversation,
                    int(i.message.is_group),
                    i.message.payload_bytes,
                    i.order_key,
                )
                for i in items
            ],
        )

    def _offline_read(self, user: Id) -> list[Stored]:
        rows = self.db.execute(
            "SELECT msg_id, sender, conv, is_group, payload, order_key FROM offline"
            " WHERE user = ? ORDER BY id",
            (user,),
        ).fetchall()
        return [_item(r) for r in rows]

    def _offline_take(self, user: Id) -> list[Stored]:
        with self.transaction():
            items = self._offline_read(user)
            self.db.execute("DELETE FROM offline WHERE user = ?", (user,))
        return items


def read_screening(path: str) -> dict[str, str]:
    """What content screening did to each message it hit (``msg_id`` → ``blocked``,
    ``flagged``, ``replaced`` or ``sender_only``), as the logic servers wrote it."""
    db = connect(path)
    try:
        rows = db.execute("SELECT msg_id, action FROM screening").fetchall()
    finally:
        db.close()
    return dict(rows)


def read_stored(path: str) -> list[tuple]:
    """Every stored copy, in the order written: ``(msg_id, order_key, t_stored, online)``
    with ``online`` the list of recipients connected at the store (for the records)."""
    db = connect(path)
    try:
        rows = db.execute(
            "SELECT msg_id, order_key, t_stored, online FROM stored ORDER BY id"
        ).fetchall()
    finally:
        db.close()
    return [(m, int(k), float(t), json.loads(o)) for m, k, t, o in rows]

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

Inbox sync (``reliability.sync_cursor = "inbox"``, :mod:`immodel.protocol.inbox`): the
``inbox`` table holds, per member of a conversation (sender included), one row per
stored copy with the member's next inbox seq, allocated in the transaction that stores
the copy — so the seq is per user across every logic process, contiguous from 1, and
survives a SIGKILL with the row it numbers. A page is cut by the protocol's own
:func:`~immodel.protocol.inbox.answer_inbox_sync` over those rows. The harness injects
no write faults, so no group seq is ever burnt and the inbox holds no burnt markers.

Besides the protocol's data the store keeps, per stored copy, when it was stored (run
clock, seconds) and which recipients were connected then: what the records' ``stored``
rows need (:mod:`immodel.real.recorder` reads them after the run).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterable, Iterator

from immodel.protocol.inbox import answer_inbox_sync
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
CREATE TABLE IF NOT EXISTS inbox (
    user INTEGER NOT NULL, seq INTEGER NOT NULL, stored INTEGER NOT NULL,
    PRIMARY KEY (user, seq)
) WITHOUT ROWID;
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

    def __init__(self, path: str, node: int = 0, *, inbox: bool = False) -> None:
        self.db = connect(path)
        self.inbox = inbox  # keep per-member inboxes (reliability.sync_cursor = "inbox")
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
        cursor = self.db.execute(
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
        if self.inbox:
            self._inbox_append(cursor.lastrowid, m.conversation)

    def burn_seq(self, group: Id) -> int:  # pragma: no cover - the harness has no write faults
        raise NotImplementedError("store failures are not injected by the real harness")

    def answer_sync(self, request: SyncRequest) -> SyncResponse:
        """One page, by the protocol's :func:`~immodel.protocol.sync.answer_sync` over the
        timelines of the user's conversations (rows at or above each cursor), or by
        :func:`~immodel.protocol.inbox.answer_inbox_sync` over the user's inbox rows when
        the request carries an inbox cursor."""
        if request.inbox_cursor >= 0:
            if not self.inbox:
                raise ValueError("an inbox sync request to a store kept without inboxes")
            return answer_inbox_sync(request, _InboxRows(self.db, request))
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

    # -- inboxes ------------------------------------------------------------------------
    def _inbox_append(self, stored_id: int, conversation: Id) -> None:
        """Append stored row ``stored_id`` to the inbox of each member of ``conversation``,
        each at that member's next seq. Called inside the send's write transaction
        (BEGIN IMMEDIATE holds the database's write lock), so no other process allocates
        the same seq, and the rows commit or vanish with the stored row."""
        members = self.db.execute(
            "SELECT user FROM members WHERE conv = ?", (conversation,)
        ).fetchall()
        for (user,) in members:
            self.db.execute(
                "INSERT INTO inbox (user, seq, stored) SELECT ?, COALESCE(MAX(seq), 0) + 1, ?"
                " FROM inbox WHERE user = ?",
                (user, stored_id, user),
            )

    def inbox_top(self, user: Id) -> int:
        """The highest inbox seq of ``user`` (0: an empty inbox)."""
        row = self.db.execute("SELECT MAX(seq) FROM inbox WHERE user = ?", (user,)).fetchone()
        return int(row[0] or 0)

    def inbox_entries(self, user: Id) -> list[Stored]:
        """``user``'s inbox, seq ``n`` at index ``n - 1`` (for inspection and tests)."""
        rows = _InboxRows(self.db, SyncRequest(user, (), 1, inbox_cursor=0))
        return [rows[i] for i in range(len(rows))]

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


class _InboxRows:
    """One user's inbox as the sequence :func:`~immodel.protocol.inbox.answer_inbox_sync`
    reads: ``len`` is the inbox's top when the request is answered, ``[n - 1]`` the entry
    of seq ``n`` (only positions at or after the request's cursor are read). Rows are
    fetched lazily in chunks, so a page reads about what it returns plus what it skips.
    Seqs at or below the top read first never change (append-only, allocated in the
    write transaction), so rows committed meanwhile cannot tear the page."""

    def __init__(self, db: sqlite3.Connection, request: SyncRequest) -> None:
        self._db = db
        self._user = request.user
        self._top = int(
            db.execute("SELECT MAX(seq) FROM inbox WHERE user = ?", (request.user,)).fetchone()[0]
            or 0
        )
        # a chunk covers a full page with what the request says it holds skipped
        self._chunk = max(16, request.limit + len(request.held))
        self._rows: dict[int, Stored] = {}

    def __len__(self) -> int:
        return self._top

    def __getitem__(self, pos: int) -> Stored:
        item = self._rows.get(pos)
        if item is None:
            first = pos + 1  # seq of position pos
            rows = self._db.execute(
                "SELECT i.seq, s.msg_id, s.sender, s.conv, s.is_group, s.payload, s.order_key"
                " FROM inbox i JOIN stored s ON s.id = i.stored"
                " WHERE i.user = ? AND i.seq >= ? AND i.seq <= ? ORDER BY i.seq LIMIT ?",
                (self._user, first, self._top, self._chunk),
            ).fetchall()
            for row in rows:
                self._rows[int(row[0]) - 1] = _item(row[1:])
            item = self._rows[pos]
        return item


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

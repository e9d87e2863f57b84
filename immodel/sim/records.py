"""Records, not prints: what a run leaves behind for analysis.

The simulator fills typed column buffers while it runs (:class:`array.array`: one machine
number per cell, categorical strings as small integer codes, a message × recipient row
index assigned when the message is sent) and turns them into pandas DataFrames once, at
the end; a delivered message costs a few hundred bytes of records
(``benchmarks/bench_records.py``). The frames:

* ``messages`` — one row per message × recipient (a message that was never stored still
  has its rows, with ``stored = False``): ids, conversation, order key, send / store /
  first-show times, uplink attempts, app-visible copies, whether the recipient was
  connected when the message was stored, how the first copy arrived (``first_via``:
  push, poll or sync), which mechanism brought it when the first attempt did not
  (``repaired_by``: retransmit, offline_queue, sync_receipt, sync_gap, sync_reconnect;
  empty for a first push or poll) and the recipient's transport (``recipient_kind``);
* ``requests`` — one row per request that reached the access tier: time, user, kind
  (``send``, ``ack``, ``poll``, ``sync``, ``login``), messages carried, bytes. Heartbeats
  on push connections are counted from connected time instead of one row each;
* ``load`` — periodic samples per node of each tier (``tier`` = ``logic`` or
  ``access``): queue lengths and busy workers per stage, pending-ACK entries (logic);
  open connections and held long polls (access);
* ``trace`` — the checker's event log (``docs/columns.md``): ``t, event, msg_id, conversation,
  user, order_key, digest`` with ``send``, ``stored`` and ``deliver`` rows; ``digest`` is
  the content's digest (:func:`immodel.protocol.channel.content_digest`): a ``deliver``
  row whose digest differs from its ``stored`` row's shows content altered on the way.
"""

from __future__ import annotations

import functools
import math
from array import array
from bisect import bisect_left
from collections.abc import Sequence
from itertools import pairwise

import numpy as np
import pandas as pd

from immodel.protocol.channel import content_digest
from immodel.protocol.messages import Message
from immodel.protocol.rest import ADMIN_UID

NAN = math.nan

# The categories of the frames' categorical columns, in their order (= their codes).
TRACE_EVENTS = ("send", "stored", "deliver")
REQUEST_KINDS = ("send", "ack", "poll", "sync", "login", "rest", "rest_refused")
_SEND, _STORED, _DELIVER = 0, 1, 2
# In the buffers only (the frame says "stored" and "deliver"): the first stored copy of
# a 1:1 message whose content screening did not replace, a row whose time, user and
# order key are its message's t_stored, recipient and order_key; and a copy of such a
# message, as stored first, shown unaltered to its recipient, whose user and order key
# are those of the message (and, for the first copy shown, whose time is the row's
# t_first_show: _SHOWN_FIRST). The frame fills them in.
_STORED_FIRST = 3
_DELIVER_FIRST = 4
_SHOWN_FIRST = 5
# A trace row's content version: "" original, else what changed it (bit 1 replaced by the
# screening policy, bit 2 tampered with on the way).
_VERSIONS = ("", "replaced", "tampered", "replaced,tampered")
_SCREENINGS = ("", "blocked", "flagged", "replaced", "sender_only")
_REPLACED = _SCREENINGS.index("replaced")
_BATCH_ROWS = 4096


def _move_batches(*pairs: tuple[array, list]) -> None:
    """Append each batch list to its column buffer and empty the list."""
    for buf, batch in pairs:
        buf.fromlist(batch)
        batch.clear()


class _Codes:
    """Small integer codes for the values of one categorical string column, in order of
    first use after the ones given (``""`` is code 0 unless ``names`` says otherwise)."""

    __slots__ = ("code", "names")

    def __init__(self, names: tuple[str, ...] = ("",)) -> None:
        self.names = list(names)
        self.code = {name: i for i, name in enumerate(self.names)}

    def of(self, name: str) -> int:
        code = self.code.get(name)
        if code is None:
            code = self.code[name] = len(self.names)
            self.names.append(name)
        return code

    def decode(self, codes: np.ndarray):
        """The names of ``codes``, as a frame's string column (:func:`_strings`)."""
        return _strings(self.names, codes)


@functools.cache
def _arrow_str_dtype():
    """The dtype pandas gives a column built from a list of ``str`` when that is its
    Arrow-backed string dtype (pandas 3), else None."""
    dtype = pd.Series(["x"]).dtype
    if isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow":
        return dtype
    return None


def _strings(names: Sequence[str], index: np.ndarray):
    """``names[index]`` (numpy indexing: -1 is the last name) as a frame column, equal in
    values and dtype to a column built from the list of those strings.

    With pandas' Arrow-backed strings the column is taken from an Arrow array of the
    distinct ``names``: no Python list, object array and per-row string check (~24 bytes
    a row at once, and the slowest part of building a frame). An empty column stays the
    empty list it always was (pandas gives it its own dtype)."""
    index = np.asarray(index)
    dtype = _arrow_str_dtype()
    if len(index) == 0 or dtype is None:
        return np.asarray(names, dtype=object)[index].tolist()
    import pyarrow as pa

    if index.min() < 0:
        index = np.where(index < 0, index + len(names), index)
    values = pa.array(names, type=pa.large_string()).take(index)
    validity, *rest = values.buffers()
    if validity is not None and values.null_count == 0:
        # take marks every row valid in a bitmap; a column built from strings has none
        values = pa.Array.from_buffers(
            values.type, len(values), [None, *rest], null_count=0, offset=values.offset
        )
    return pd.arrays.ArrowStringArray(values, dtype=dtype)


# the numpy dtype of each array typecode the buffers use
_DTYPES = {"d": np.float64, "q": np.int64, "i": np.int32, "H": np.uint16, "B": np.uint8}


def _np(buf: array, dtype=None) -> np.ndarray:
    """A numpy copy of a column buffer (a copy: a buffer exporting its memory cannot grow,
    and a frame may be built while the run goes on); ``dtype`` defaults to the buffer's
    own (a buffer that widened on overflow changed it)."""
    if dtype is None:
        dtype = _DTYPES[buf.typecode]
    if len(buf) == 0:
        return np.empty(0, dtype=dtype)
    return np.frombuffer(buf, dtype=dtype).copy()


def _view(buf: array, dtype=None) -> np.ndarray:
    """A numpy view of a column buffer, without the copy :func:`_np` makes: only for an
    expression or a builder's locals, never kept (a buffer cannot grow while a view of
    it exists)."""
    if dtype is None:
        dtype = _DTYPES[buf.typecode]
    if len(buf) == 0:
        return np.empty(0, dtype=dtype)
    return np.frombuffer(buf, dtype=dtype)


def _unique(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(values, return_inverse=True)`` for integers in a range not much wider
    than their number (user ids): a table over the range instead of a sort."""
    lo, hi = int(values.min()), int(values.max())
    if hi - lo >= 4 * len(values) + 1024:
        ids, inverse = np.unique(values, return_inverse=True)
        return ids, inverse.reshape(-1)
    present = np.zeros(hi - lo + 1, dtype=bool)
    offset = values.astype(np.int64) - lo
    present[offset] = True
    ids = np.flatnonzero(present) + lo
    inverse = (np.cumsum(present) - 1)[offset]
    return ids.astype(values.dtype), inverse


def _wide(buf: array, batch: list) -> array:
    """``buf`` with ``batch`` appended; a 32-bit buffer whose batch does not fit comes back
    as a 64-bit copy (``fromlist`` appends nothing when a value overflows)."""
    try:
        buf.fromlist(batch)
    except OverflowError:
        buf = array("q", buf)
        buf.fromlist(batch)
    batch.clear()
    return buf


class Recorder:
    """Collects rows during a run and builds the DataFrames at the end.

    Lifecycle: the world creates one, sets :attr:`recipient_kind` (and :attr:`devices`
    with several devices per user); the simulator calls :meth:`sent` when a message is
    submitted (its message × recipient rows are allocated then), :meth:`stored`,
    :meth:`shown`, :meth:`request` and the small setters below as things happen; the
    ``*_frame`` methods build the DataFrames (any number of times). Times in simulated
    seconds.
    """

    # Slots, not a __dict__: an instance dict with this many keys falls off CPython's fast
    # attribute path; with slots a request() call took ~0.34 µs instead of ~0.49 µs.
    __slots__ = (
        "_attempts",
        "_conv",
        "_dup_rows",
        "_failure",
        "_failures",
        "_index",
        "_is_group",
        "_kind_code",
        "_kinds",
        "_order_key",
        "_payload_bytes",
        "_pos",
        "_r_altered",
        "_r_copies",
        "_r_first_show",
        "_r_offline_push",
        "_r_online",
        "_r_repair",
        "_r_user",
        "_r_via",
        "_rb_bytes",
        "_rb_kind",
        "_rb_messages",
        "_rb_t",
        "_rb_user",
        "_repairs",
        "_req_base",
        "_req_bytes",
        "_req_kind",
        "_req_messages",
        "_req_t",
        "_req_user",
        "_row0",
        "_rows",
        "_screening",
        "_screenings",
        "_sender",
        "_stored_copies",
        "_t_outcome",
        "_t_send",
        "_t_stored",
        "_tb_event",
        "_tb_key",
        "_tb_msg",
        "_tb_t",
        "_tb_user",
        "_tb_version",
        "_tr_event",
        "_tr_key",
        "_tr_msg",
        "_tr_t",
        "_tr_user",
        "_tr_version",
        "_vias",
        "devices",
        "load_rows",
        "recipient_kind",
    )

    def __init__(self) -> None:
        # per message (index m, in order of sending)
        self._index: dict[str, int] = {}  # msg_id → m (its keys in order: the msg ids)
        self._sender = array("i")
        self._conv: list[str] = []  # the world's own strings, shared
        self._is_group = array("B")
        self._payload_bytes = array("i")
        self._t_send = array("d")
        self._t_stored = array("d")
        self._order_key = array("q")
        self._stored_copies = array("i")
        self._attempts = array("i")
        self._failure = array("H")
        self._t_outcome = array("d")  # when the sender learned success or failure
        self._screening = array("B")  # what screening did (_SCREENINGS)
        self._row0 = array("i")  # its first message × recipient row
        self._rows = array("i")  # its number of rows (recipients)
        # messages whose recipients are not in increasing order: user → row (the others
        # find a recipient's row by bisection)
        self._pos: dict[int, dict[int, int]] = {}
        self._dup_rows: list[tuple[int, int]] = []  # (repeated recipient's row, first row)
        # per message × recipient row
        self._r_user = array("i")
        self._r_first_show = array("d")
        self._r_via = array("B")
        self._r_repair = array("B")
        self._r_copies = array("i")
        self._r_online = array("B")  # connected when the message was first stored
        # notification arrival; None until the first notification (NaN for every row
        # then): a run whose recipients are all connected never pays 8 bytes a row for it
        self._r_offline_push: array | None = None
        self._r_altered = array("B")  # the first copy shown was altered
        self._failures = _Codes()
        self._screenings = _Codes(_SCREENINGS)
        self._vias = _Codes()
        self._repairs = _Codes()
        # the trace, one row per event: event and message index m for every row; time,
        # user, order key and content version only where the message's columns do not
        # hold them (a send row's are its t_send, sender, NaN and 0; a _STORED_FIRST
        # row's its t_stored, recipient, order_key and 0; a _DELIVER_FIRST row keeps
        # its time, its recipient, order_key and 0 are the message's, and a
        # _SHOWN_FIRST row's time is its row's t_first_show: the frame fills them in)
        self._tr_t = array("d")
        self._tr_event = array("B")
        self._tr_msg = array("i")
        self._tr_user = array("i")
        self._tr_key = array("d")
        self._tr_version = array("B")  # _VERSIONS
        # The newest rows wait in plain lists (a list append is several times cheaper per
        # call than an array append) and move into the buffers every _BATCH_ROWS rows.
        self._tb_t: list[float] = []
        self._tb_event: list[int] = []
        self._tb_msg: list[int] = []
        self._tb_user: list[int] = []
        self._tb_key: list[float] = []
        self._tb_version: list[int] = []
        # requests
        self._req_t = array("d")
        self._req_user = array("i")
        self._req_kind = array("B")
        self._kinds = _Codes(REQUEST_KINDS)
        self._kind_code = self._kinds.code
        self._req_messages = array("i")
        self._req_bytes = array("i")  # widened to 64 bits if a size ever needs it
        # the newest rows, as for the trace
        self._rb_t: list[float] = []
        self._rb_user: list[int] = []
        self._rb_kind: list[str] = []
        self._rb_messages: list[int] = []
        self._rb_bytes: list[int] = []
        self._req_base = 0  # rows already in the buffers
        self.load_rows: list[dict] = []
        self.recipient_kind: list[str] = []  # each user's transport (set by the world)
        # Several devices per user (immodel.sim.devices.DeviceTable, set by the world):
        # the ids recorded are the devices' endpoint ids, mapped to users in the frames.
        self.devices = None

    # -- during the run -------------------------------------------------------------------
    def sent(self, t: float, msg: Message, recipients: tuple[int, ...]) -> None:
        """``msg`` was submitted at ``t`` for ``recipients``: its rows are allocated."""
        if msg.msg_id in self._index:
            raise ValueError(f"message id {msg.msg_id!r} recorded as sent twice")
        m = len(self._index)
        self._index[msg.msg_id] = m
        self._sender.append(msg.sender)
        self._conv.append(msg.conversation)
        self._is_group.append(msg.is_group)
        self._payload_bytes.append(msg.payload_bytes)
        self._t_send.append(t)
        self._t_stored.append(NAN)
        self._order_key.append(-1)
        self._stored_copies.append(0)
        self._attempts.append(1)
        self._failure.append(0)
        self._t_outcome.append(NAN)
        self._screening.append(0)
        row0 = len(self._r_user)
        n = len(recipients)
        self._row0.append(row0)
        self._rows.append(n)
        if n == 1:
            self._r_user.append(recipients[0])
            self._r_first_show.append(NAN)
            self._r_via.append(0)
            self._r_repair.append(0)
            self._r_copies.append(0)
            self._r_online.append(0)
            if self._r_offline_push is not None:
                self._r_offline_push.append(NAN)
            self._r_altered.append(0)
        elif n:
            self._r_user.extend(recipients)
            self._r_first_show.extend(array("d", [NAN]) * n)
            zeros = bytes(n)
            self._r_via.frombytes(zeros)
            self._r_repair.frombytes(zeros)
            self._r_copies.extend(array("i", [0]) * n)
            self._r_online.frombytes(zeros)
            if self._r_offline_push is not None:
                self._r_offline_push.extend(array("d", [NAN]) * n)
            self._r_altered.frombytes(zeros)
            if any(a >= b for a, b in pairwise(recipients)):
                pos: dict[int, int] = {}
                for i, user in enumerate(recipients, row0):
                    first = pos.setdefault(user, i)
                    if first != i:
                        self._dup_rows.append((i, first))
                self._pos[m] = pos
        events = self._tb_event
        events.append(_SEND)
        self._tb_msg.append(m)
        if len(events) >= _BATCH_ROWS:
            self._flush_trace()

    def _trace(self, t: float, event: int, m: int, user: int, key: float, version: int) -> None:
        events = self._tb_event
        events.append(event)
        self._tb_msg.append(m)
        self._tb_t.append(t)
        self._tb_user.append(user)
        self._tb_key.append(key)
        self._tb_version.append(version)
        if len(events) >= _BATCH_ROWS:
            self._flush_trace()

    def _flush_trace(self) -> None:
        """Move the trace rows waiting in lists into the column buffers."""
        _move_batches(
            (self._tr_t, self._tb_t),
            (self._tr_event, self._tb_event),
            (self._tr_msg, self._tb_msg),
            (self._tr_user, self._tb_user),
            (self._tr_key, self._tb_key),
            (self._tr_version, self._tb_version),
        )

    def _row(self, m: int, user: int) -> int:
        """``user``'s row of message ``m``, or -1 when it is not one of its recipients."""
        row0 = self._row0[m]
        n = self._rows[m]
        users = self._r_user
        if n == 1:
            return row0 if users[row0] == user else -1
        pos = self._pos.get(m)
        if pos is not None:
            return pos.get(user, -1)
        row = bisect_left(users, user, row0, row0 + n)
        return row if row < row0 + n and users[row] == user else -1

    def stored(self, t: float, msg: Message, key: int, online: dict[int, bool]) -> None:
        """``msg`` was stored at ``t`` with ``key``; ``online``: which recipients were
        connected (kept from the first copy stored)."""
        m = self._index[msg.msg_id]
        copies = self._stored_copies[m] + 1
        self._stored_copies[m] = copies
        row0 = self._row0[m]
        n = self._rows[m]
        users = self._r_user
        version = 1 if self._screening[m] == _REPLACED else 0
        if n == 1:  # 1:1, the common case: no loop, no temporary arrays
            user = users[row0]
            if copies == 1:
                self._t_stored[m] = t
                self._order_key[m] = key
                self._r_online[row0] = online.get(user, False)
                if not version:  # the message's columns hold the rest of the row
                    events = self._tb_event
                    events.append(_STORED_FIRST)
                    self._tb_msg.append(m)
                    if len(events) >= _BATCH_ROWS:
                        self._flush_trace()
                    return
            self._trace(t, _STORED, m, user, key, version)
            return
        end = row0 + n
        if copies == 1:
            self._t_stored[m] = t
            self._order_key[m] = key
            flags = self._r_online
            for row in range(row0, end):
                flags[row] = online.get(users[row], False)
        self._flush_trace()
        self._tr_t.extend(array("d", [t]) * n)
        self._tr_event.frombytes(bytes([_STORED]) * n)
        self._tr_msg.extend(array("i", [m]) * n)
        self._tr_user.extend(users[row0:end])
        self._tr_key.extend(array("d", [key]) * n)
        self._tr_version.frombytes(bytes([version]) * n)

    def shown(
        self,
        t: float,
        msg: Message,
        key: int,
        user: int,
        via: str,
        repair: str = "",
        altered: bool = False,
    ) -> None:
        """A copy reached ``user``'s app: ``via`` "push", "poll" or "sync"; ``repair`` the
        mechanism that brought it when the first attempt did not ("retransmit",
        "offline_queue", "sync_receipt", "sync_gap", "sync_reconnect"; "" for the first
        push or poll); ``altered`` when an on-path attacker changed it (plaintext)."""
        m = self._index[msg.msg_id]
        row = self._row(m, user)
        shown_first = False
        if row >= 0:
            self._r_copies[row] += 1
            first = self._r_first_show
            if first[row] != first[row]:  # NaN: the first copy shown
                shown_first = True
                first[row] = t
                self._r_via[row] = self._vias.of(via)
                if repair:
                    self._r_repair[row] = self._repairs.of(repair)
                if altered:
                    self._r_altered[row] = 1
        version = 1 if self._screening[m] == _REPLACED else 0
        if altered:
            version += 2
        elif (
            not version
            and row >= 0
            and self._rows[m] == 1
            and self._stored_copies[m]
            and key == self._order_key[m]
        ):  # the message's columns hold the user and the key (and the first one's time)
            events = self._tb_event
            self._tb_msg.append(m)
            if shown_first:
                events.append(_SHOWN_FIRST)
            else:
                events.append(_DELIVER_FIRST)
                self._tb_t.append(t)
            if len(events) >= _BATCH_ROWS:
                self._flush_trace()
            return
        self._trace(t, _DELIVER, m, user, key, version)

    def request(self, t: float, user: int, kind: str, messages: int, size_bytes: int) -> int:
        """Record a request that reached the access layer; returns its row index so a
        poll's row can be given the number of messages its response carried."""
        times = self._rb_t
        times.append(t)
        self._rb_user.append(user)
        self._rb_kind.append(kind)  # coded when the batch moves
        self._rb_messages.append(messages)
        self._rb_bytes.append(size_bytes)
        n = len(times)
        if n < _BATCH_ROWS:
            return self._req_base + n - 1
        self._flush_requests()
        return self._req_base - 1

    def _flush_requests(self) -> None:
        """Move the request rows waiting in lists into the column buffers."""
        code = self._kind_code
        kinds = self._rb_kind
        try:
            self._req_kind.fromlist([code[k] for k in kinds])
        except KeyError:
            self._req_kind.fromlist([self._kinds.of(k) for k in kinds])
        kinds.clear()
        _move_batches(
            (self._req_t, self._rb_t),
            (self._req_user, self._rb_user),
            (self._req_messages, self._rb_messages),
        )
        self._req_bytes = _wide(self._req_bytes, self._rb_bytes)
        self._req_base = len(self._req_t)

    def set_request_messages(self, row: int, messages: int) -> None:
        """The number of messages the response to request ``row`` carried."""
        flushed = self._req_base
        if row < flushed:
            self._req_messages[row] = messages
        else:
            self._rb_messages[row - flushed] = messages

    def set_attempts(self, msg_id: str, attempts: int) -> None:
        """The sender's uplink attempt number for ``msg_id`` (1 for the first)."""
        self._attempts[self._index[msg_id]] = attempts

    def set_screening(self, msg_id: str, action: str) -> None:
        """What screening did to ``msg_id``: "", blocked, flagged, replaced, sender_only."""
        self._screening[self._index[msg_id]] = self._screenings.of(action)

    def set_failure(self, msg_id: str, reason: str) -> None:
        """The sender was told ``msg_id`` failed, for ``reason``."""
        self._failure[self._index[msg_id]] = self._failures.of(reason)

    def outcome(self, msg_id: str, t: float, failure: str = "") -> Message:
        """The sender learned ``msg_id``'s fate at ``t`` (a failure when ``failure`` is
        given); returns the message (an equal copy: the recorder keeps its fields)."""
        m = self._index[msg_id]
        self._t_outcome[m] = t
        if failure:
            self._failure[m] = self._failures.of(failure)
        return Message(
            msg_id,
            self._sender[m],
            self._conv[m],
            bool(self._is_group[m]),
            self._payload_bytes[m],
        )

    def offline_push(self, msg_id: str, user: int, arrival: float) -> None:
        """An offline notification for ``msg_id`` reaches ``user`` at ``arrival`` (the
        first one counts)."""
        row = self._row(self._index[msg_id], user)
        if row < 0:
            return
        arrivals = self._r_offline_push
        if arrivals is None:
            arrivals = self._r_offline_push = array("d", [NAN]) * len(self._r_user)
        if arrivals[row] != arrivals[row]:
            arrivals[row] = arrival

    def recipients(self, msg_id: str) -> tuple[int, ...]:
        """The recipients ``msg_id`` was sent to, in the order given to :meth:`sent`."""
        m = self._index[msg_id]
        row0 = self._row0[m]
        n = self._rows[m]
        if n == 1:  # 1:1: no slice of the column (asked three times per message)
            return (self._r_user[row0],)
        return tuple(self._r_user[row0 : row0 + n])

    def n_recipients(self, msg_id: str) -> int:
        """How many recipients ``msg_id`` was sent to."""
        return self._rows[self._index[msg_id]]

    @property
    def req_kind(self) -> list[str]:
        """Each request row's kind (decoded: for counting at the end, not during a run)."""
        self._flush_requests()
        names = self._kinds.names
        return [names[c] for c in self._req_kind]

    # -- at the end -----------------------------------------------------------------------
    # The builders make one column at a time and let go of its temporaries before the
    # next (a frame of N rows never holds a second copy of more than a column or two):
    # after a large run they set the process's peak memory.
    def trace_frame(self) -> pd.DataFrame:
        self._flush_trace()
        n = len(self._tr_event)
        events = _np(self._tr_event, np.uint8)
        msg = _np(self._tr_msg, np.int32)
        send = events == _SEND
        first = events == _STORED_FIRST
        shown = events >= _DELIVER_FIRST  # _DELIVER_FIRST or _SHOWN_FIRST
        shown_first = events == _SHOWN_FIRST
        rest = ~(send | first | shown)  # the rows that hold their own user, key, version
        # t and order_key as the frame keeps them: one 2-D block, filled in place
        floats = np.empty((2, n), dtype=np.float64)
        t, key = floats
        t[send] = _view(self._t_send, np.float64)[msg[send]]
        t[first] = _view(self._t_stored, np.float64)[msg[first]]
        row0 = _view(self._row0, np.int32)
        t[shown_first] = _view(self._r_first_show, np.float64)[row0[msg[shown_first]]]
        t[rest | (shown & ~shown_first)] = _view(self._tr_t, np.float64)
        key[send] = NAN
        order_key = _view(self._order_key, np.int64)
        key[first] = order_key[msg[first]]
        key[shown] = order_key[msg[shown]]
        del order_key
        key[rest] = _view(self._tr_key, np.float64)
        user = np.empty(n, dtype=np.int32)
        user[send] = _view(self._sender, np.int32)[msg[send]]
        r_user = _view(self._r_user, np.int32)
        user[first] = r_user[row0[msg[first]]]
        user[shown] = r_user[row0[msg[shown]]]
        del r_user, row0
        user[rest] = _view(self._tr_user, np.int32)
        users = self._trace_users(user)
        del user
        digest = self._digests(msg, rest)
        events[first] = _STORED
        events[shown] = _DELIVER
        del send, first, shown, shown_first, rest
        frame = pd.DataFrame(floats.T, columns=["t", "order_key"], copy=False)
        event = pd.Categorical.from_codes(events.astype(np.int8), categories=list(TRACE_EVENTS))
        frame.insert(1, "event", event)
        ids = list(self._index)
        frame.insert(2, "msg_id", _strings(ids, msg))
        frame.insert(3, "conversation", _strings(self._conv, msg))
        frame.insert(4, "user", users)
        frame["digest"] = digest
        return frame

    def _trace_users(self, users: np.ndarray):
        """The trace's ``user`` column: the user id, or with several devices per user the
        device's label (the user id for its first device, ``"{uid}/{kind}"`` for the
        others), so the checker judges each device on its own. One string per user,
        shared by its rows (a string per row cost ~50 bytes per trace row)."""
        if len(users) == 0:
            return []
        ids, inverse = _unique(users)
        if self.devices is None:
            labels = [str(u) for u in ids.tolist()]
        else:
            label = self.devices.label
            labels = [label[u] for u in ids.tolist()]
        return _strings(labels, inverse)

    def _digests(self, msg: np.ndarray, rest: np.ndarray) -> np.ndarray:
        """The content digest of each trace row (computed once per message and version).

        Every message has an original-content row (its send row), so the original digest
        is computed for every message and the few other versions only where the rows
        ``rest`` (those that keep their own version) have one."""
        if len(msg) == 0:
            return np.empty(0, dtype=np.int64)
        ids = list(self._index)
        original = np.array([content_digest(i, _VERSIONS[0]) for i in ids], dtype=np.int64)
        out = original[msg]
        del original
        version = np.zeros(len(msg), dtype=np.uint8)
        version[rest] = _view(self._tr_version, np.uint8)
        rows = np.flatnonzero(version)
        if rows.size:
            nv = len(_VERSIONS)
            pair = msg[rows].astype(np.int64) * nv + version[rows]
            unique, inverse = np.unique(pair, return_inverse=True)
            digests = np.array(
                [content_digest(ids[p // nv], _VERSIONS[p % nv]) for p in unique.tolist()],
                dtype=np.int64,
            )
            out[rows] = digests[inverse.reshape(-1)]
        return out

    def messages_frame(self) -> pd.DataFrame:
        mi = np.repeat(np.arange(len(self._rows)), _np(self._rows, np.int32))
        dup = np.asarray(self._dup_rows, dtype=np.intp).reshape(-1, 2)

        def per_row(buf: array, dtype) -> np.ndarray:
            """A message × recipient column; a recipient listed twice for one message
            shares its first row's outcome (one entry per user, as recorded)."""
            col = _np(buf, dtype)
            if len(dup):
                col[dup[:, 0]] = col[dup[:, 1]]
            return col

        frame = pd.DataFrame(index=pd.RangeIndex(len(mi)))
        frame["msg_id"] = _strings(list(self._index), mi)
        frame["conversation"] = _strings(self._conv, mi)
        frame["is_group"] = _view(self._is_group, np.uint8)[mi].astype(bool)
        sender = _view(self._sender, np.int32)[mi].astype(np.int64)
        frame["sender"] = sender
        users = per_row(self._r_user, np.int32).astype(np.int64)
        frame["recipient"] = users
        frame["order_key"] = _view(self._order_key, np.int64)[mi]
        stored_copies = _view(self._stored_copies, np.int32)[mi]
        frame["stored"] = stored_copies > 0
        frame["stored_copies"] = stored_copies.astype(np.int64)
        del stored_copies
        t_send = _view(self._t_send, np.float64)[mi]
        frame["t_send"] = t_send
        frame["t_stored"] = _view(self._t_stored, np.float64)[mi]
        first = per_row(self._r_first_show, np.float64)
        frame["t_first_show"] = first
        frame["latency_ms"] = (first - t_send) * 1000.0
        del first, t_send
        frame["attempts"] = _view(self._attempts, np.int32)[mi].astype(np.int64)
        frame["copies"] = per_row(self._r_copies, np.int32).astype(np.int64)
        frame["online_at_store"] = per_row(self._r_online, np.uint8).astype(bool)
        frame["t_offline_push"] = (
            np.full(len(mi), NAN)
            if self._r_offline_push is None
            else per_row(self._r_offline_push, np.float64)
        )
        frame["first_via"] = self._vias.decode(per_row(self._r_via, np.uint8))
        frame["repaired_by"] = self._repairs.decode(per_row(self._r_repair, np.uint8))
        kinds = self.recipient_kind
        frame["recipient_kind"] = (
            _strings(kinds, users) if kinds else _strings([""], np.zeros(len(users), np.intp))
        )
        del users
        failure = _view(self._failure, np.uint16)[mi]
        frame["send_failed"] = failure != 0
        frame["failure_reason"] = self._failures.decode(failure)
        del failure
        frame["screening"] = self._screenings.decode(_view(self._screening, np.uint8)[mi])
        frame["altered"] = per_row(self._r_altered, np.uint8).astype(bool)
        # two shared strings, not a new one per row
        frame["origin"] = _strings(["sdk", "rest"], (sender == ADMIN_UID).astype(np.intp))
        del sender, mi
        frame["device"] = self._device_column(frame, "recipient", "sender")
        return frame

    def message_outcomes(self) -> pd.DataFrame:
        """One row per message, in order of sending: ``msg_id``, ``sender`` (endpoint id),
        ``t_send``, ``t_stored``, ``stored_copies``, ``failure`` ("" when none) and
        ``t_outcome`` (when the sender learned its fate; NaN if it never did)."""
        return pd.DataFrame(
            {
                "msg_id": list(self._index),
                "sender": _np(self._sender).astype(np.int64),
                "t_send": _np(self._t_send, np.float64),
                "t_stored": _np(self._t_stored, np.float64),
                "stored_copies": _np(self._stored_copies, np.int32).astype(np.int64),
                "failure": self._failures.decode(_np(self._failure, np.uint16)),
                "t_outcome": _np(self._t_outcome, np.float64),
            }
        )

    def _device_column(self, frame: pd.DataFrame, eid_col: str, *more: str):
        """The device kind of each row's ``eid_col`` (which, like the ``more`` columns, is
        then turned from endpoint ids into user ids); "phone" with one device per user."""
        from immodel.sim.devices import DEFAULT_DEVICE

        if self.devices is None:
            return _strings([DEFAULT_DEVICE], np.zeros(len(frame), dtype=np.intp))
        eids = frame[eid_col].to_numpy(dtype=np.int64)
        users = np.asarray(self.devices.user, dtype=np.int64)
        kinds = _strings(self.devices.kind, eids)
        for col in (eid_col, *more):
            frame[col] = users[frame[col].to_numpy(dtype=np.int64)]
        return kinds

    def requests_frame(self) -> pd.DataFrame:
        self._flush_requests()
        n = len(self._req_t)
        # user, messages and bytes as the frame keeps them: one 2-D block, filled in place
        ints = np.empty((3, n), dtype=np.int64)
        ints[0] = _view(self._req_user, np.int32)
        ints[1] = _view(self._req_messages, np.int32)
        ints[2] = _view(self._req_bytes)
        frame = pd.DataFrame(ints.T, columns=["user", "messages", "bytes"], copy=False)
        frame.insert(0, "t", _np(self._req_t, np.float64))
        codes = _np(self._req_kind, np.uint8).astype(np.int16)
        codes[codes >= len(REQUEST_KINDS)] = -1  # a kind outside the categories: NaN
        frame.insert(2, "kind", pd.Categorical.from_codes(codes, categories=list(REQUEST_KINDS)))
        frame["device"] = self._device_column(frame, "user")
        return frame

    def load_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.load_rows)

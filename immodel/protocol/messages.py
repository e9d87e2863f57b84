"""What travels between the machines of the protocol, and what they ask their caller to do.

Two families of plain, immutable values:

* **Wire data** — :class:`Message` (what a sender's app submits), :class:`Stored` (a
  message as the server stored it, with its reference order key), :class:`SendReply`,
  :class:`SyncRequest` and :class:`SyncResponse`.
* **Actions** — what a state machine returns from ``handle_*`` for its caller (the
  simulator, a test's fake network, or real I/O) to carry out: transmit this, tell the app
  that, show the user this message. Actions are nouns; the machines' methods are verbs.

Ids are opaque: anything hashable and orderable works (the simulator uses small ints for
users and strings for message ids). Conversations are named by the caller; a group
message's conversation is its group.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, TypeVar

Id = Any  # hashable and orderable

_T = TypeVar("_T", bound=type)


#: Fields from which a value is filled as its twin (two class switches cost about as
#: much as three descriptor calls).
_FILL_FIELDS = 4
_SET_CLASS = object.__dict__["__class__"].__set__


def _twin(cls: type) -> type | None:
    """A plain class with ``cls``'s slots, which an instance of ``cls`` may become and
    leave again (None: their layouts differ, e.g. slots inherited from a base)."""
    twin = type(f"_{cls.__name__}Fill", (), {"__slots__": cls.__slots__})
    try:
        probe = object.__new__(cls)
        _SET_CLASS(probe, twin)
        _SET_CLASS(probe, cls)
    except TypeError:
        return None
    return twin


def quick_init(cls: _T) -> _T:
    """Give a frozen, slotted dataclass an ``__init__`` that fills its slots directly.

    The ``__init__`` that ``dataclass(frozen=True)`` writes sets each field through
    ``object.__setattr__`` (the class's own ``__setattr__`` refuses), a generic lookup per
    field that made building one of these values cost two to three times a plain slotted
    object's — and the simulator builds about a dozen per delivered message. This one
    calls each slot's descriptor instead: the same parameters, defaults and field order,
    ``__post_init__`` still called, and the instance as frozen as before. Apply it on top
    of ``@dataclass(frozen=True, slots=True)``.

    A descriptor call still costs a few hundred instructions per field, so a value of
    :data:`_FILL_FIELDS` fields or more is filled as a plain slotted twin of its class
    (same slots, so the same layout): it becomes the twin, takes its fields by ordinary
    attribute stores and becomes itself again — two class switches for all its fields.
    An instance of a subclass, or a class whose layout the twin cannot match, is filled
    through the descriptors.
    """
    params, body, fill = [], [], []
    namespace: dict[str, Any] = {"__name__": cls.__module__}
    for f in fields(cls):
        if f.default_factory is not MISSING or not f.init:
            raise TypeError(f"quick_init: {cls.__name__}.{f.name} needs the generated __init__")
        if f.default is MISSING:
            params.append(f.name)
        else:
            params.append(f"{f.name}=_default_{f.name}")
            namespace[f"_default_{f.name}"] = f.default
        namespace[f"_set_{f.name}"] = getattr(cls, f.name).__set__
        body.append(f"    _set_{f.name}(self, {f.name})")
        fill.append(f"        self.{f.name} = {f.name}")
    twin = _twin(cls) if len(fill) >= _FILL_FIELDS else None
    if twin is not None:
        namespace.update(_cls=cls, _twin=twin, _become=_SET_CLASS)
        body = [
            "    if type(self) is _cls:",
            "        _become(self, _twin)",
            *fill,
            "        self.__class__ = _cls",
            "    else:",
            *("    " + line for line in body),
        ]
    if hasattr(cls, "__post_init__"):
        body.append("    self.__post_init__()")
    exec(f"def __init__(self, {', '.join(params)}):\n" + "\n".join(body), namespace)
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__doc__ = cls.__init__.__doc__
    cls.__init__ = init
    return cls


@quick_init
@dataclass(frozen=True, slots=True)
class Message:
    """A message as the sender's app submitted it.

    ``msg_id`` is the client message id: unique per message, and kept by every retry, so
    the server and the receiver can recognise copies.
    """

    msg_id: Id
    sender: Id
    conversation: Id
    is_group: bool
    payload_bytes: int = 0


@quick_init
@dataclass(frozen=True, slots=True)
class Stored:
    """A message the server accepted and stored.

    ``order_key`` is the conversation's reference order: the server timestamp in integer
    milliseconds for 1:1 chat, the per-group sequence number (1, 2, 3, …) for groups.
    Receivers show messages in ``(order_key, msg_id)`` order where they can.
    """

    message: Message
    order_key: int

    @property
    def msg_id(self) -> Id:
        return self.message.msg_id

    @property
    def conversation(self) -> Id:
        return self.message.conversation

    @property
    def is_group(self) -> bool:
        return self.message.is_group


@quick_init
@dataclass(frozen=True, slots=True)
class SendReply:
    """The server's answer to a send: accepted with its order key, or rejected with a reason.

    A reply with ``retryable=True`` (the store failed) is not final: the sender keeps
    retrying, and the app is never told "success" for a message that was not stored.
    """

    msg_id: Id
    accepted: bool
    order_key: int | None = None
    reason: str = "ok"
    retryable: bool = False


_ABSENT = object()  # in a Snapshot's undo: the key was not in the mapping yet


def as_ids(ids: Any) -> tuple:
    """The ids a receiver merged at one cursor key, as a tuple.

    The receiver keeps them (and a :class:`Snapshot` of them with ``flat`` reports them)
    as one id by itself — the common case, which saves a tuple per conversation — or as
    a tuple of ids (several, none, or one that is itself a tuple).
    """
    return ids if type(ids) is tuple else (ids,)


class Snapshot:
    """A mapping as it was when a request was built, taken without copying it.

    A sync request names every cursor of the client, and copying them for every
    request cost one step per conversation on both sides. A snapshot instead points at
    the owner's mapping (``live``), which the owner goes on changing, and keeps the old
    value of each key changed after it was taken: before changing a key, the owner calls
    :meth:`keep` on its newest snapshot, and taking the next snapshot links the two
    (older → newer), so a lookup in an old snapshot reads its own kept values, then
    those of the newer ones, then ``live``. Taking one and looking a key up cost what
    changed since, not the size of the mapping; nothing links a newer snapshot to an
    older one, so a snapshot no request holds any more is freed.

    The owner may only add keys and change values (never remove a key), and replaces
    its mapping by a new one instead of clearing it. ``size`` is what ``len`` reports
    (the owner counts: the number of pairs the snapshot stands for).

    As a value it is the sequence of its pairs: iterating gives ``(key, value)`` pairs
    in the mapping's order, or with ``flat`` (the ids merged at each cursor) ``(key, v)``
    for each id ``v`` of a value (one id by itself or a tuple of them, see
    :func:`as_ids`), and it compares equal to that tuple.
    """

    __slots__ = ("_flat", "_kept", "_live", "_newer", "_size")

    def __init__(self, live: dict, size: int, *, flat: bool = False) -> None:
        self._live = live
        self._size = size
        self._flat = flat
        self._kept: dict | None = None  # key → its value when this was taken
        self._newer: Snapshot | None = None

    def follow(self, newer: Snapshot) -> None:
        """``newer`` was taken of the same mapping: changes are now kept there."""
        self._newer = newer

    def keep(self, key: Any) -> None:
        """The owner is about to change (or add) ``key`` of its mapping."""
        kept = self._kept
        if kept is None:
            self._kept = {key: self._live.get(key, _ABSENT)}
        elif key not in kept:
            kept[key] = self._live.get(key, _ABSENT)

    def current(self) -> Mapping | Snapshot:
        """Something to look keys up in now (not to keep): the owner's own mapping when
        nothing changed since this was taken — the usual case, a request is answered
        before its client merges anything — else this snapshot."""
        snap: Snapshot | None = self
        while snap is not None:
            if snap._kept is not None:
                return self
            snap = snap._newer
        return self._live

    def get(self, key: Any, default: Any = None) -> Any:
        """The value of ``key`` when this snapshot was taken."""
        snap: Snapshot | None = self
        while snap is not None:
            kept = snap._kept
            if kept is not None and key in kept:
                value = kept[key]
                return default if value is _ABSENT else value
            snap = snap._newer
        return self._live.get(key, default)

    def _as_dict(self) -> dict:
        chain: list[Snapshot] = []
        snap: Snapshot | None = self
        while snap is not None:
            chain.append(snap)
            snap = snap._newer
        out = dict(self._live)
        for snap in reversed(chain):  # the oldest kept value wins
            if snap._kept:
                for key, value in snap._kept.items():
                    if value is _ABSENT:
                        out.pop(key, None)
                    else:
                        out[key] = value
        return out

    def __iter__(self):
        if not self._flat:
            return iter(self._as_dict().items())
        return iter([(key, v) for key, ids in self._as_dict().items() for v in as_ids(ids)])

    def __len__(self) -> int:
        return self._size

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Snapshot | tuple):
            return tuple(self) == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return repr(tuple(self))


@quick_init
@dataclass(frozen=True, slots=True)
class SyncRequest:
    """A client's pull from the server's store: "everything after these cursors".

    ``cursors`` maps conversation → the highest order key the client has merged from a
    sync (1:1) or shown contiguously (groups); conversations it does not name start at 0.
    ``limit`` bounds the page size. ``merged_at_cursor`` names, for 1:1 conversations,
    the message ids already merged at the cursor key itself: 1:1 pages start at that key
    (two nodes may stamp the same millisecond) and leave those ids out.

    Both are sequences of pairs: tuples, or (from a :class:`~immodel.protocol.receiver.
    Receiver` with many cursors) :class:`Snapshot` views of the client's own mappings,
    which also answer ``get(conversation)`` without a walk (``merged_at_cursor``: the
    ids, one by itself or several as a tuple, see :func:`as_ids`).
    """

    user: Id
    cursors: tuple[tuple[Id, int], ...] | Snapshot
    limit: int
    merged_at_cursor: tuple[tuple[Id, Id], ...] | Snapshot = ()
    #: 1:1 (conversation, msg_id) pairs the client already holds above its cursor (a
    #: pushed copy it showed, or its own message the server confirmed): the page leaves
    #: them out, so a sync never carries down again what the client has. (Inbox sync
    #: names group items here too, as ``(group, seq)``.)
    held: tuple[tuple[Id, Id], ...] = ()
    #: Inbox sync (``reliability.sync_cursor = "inbox"``, :mod:`immodel.protocol.inbox`):
    #: the one inbox seq the client has merged up to (0: nothing yet); ``cursors`` is
    #: then empty and ``held`` names what the client holds above it. -1: conversation
    #: sync (the cursors above).
    inbox_cursor: int = -1
    #: The client's local state the cursors were taken from (an opaque token, replaced
    #: when the app loses its state; None: no promise) and the request's number in it.
    #: A later request from the same state promises cursors at least as far along and, at
    #: an unchanged cursor key, at least the same ids, so the store may look again only
    #: at the conversations that changed since (:class:`~immodel.protocol.sync.
    #: SyncReader`). Not part of the value: the page never depends on them.
    state: object = field(default=None, compare=False, repr=False)
    state_no: int = field(default=0, compare=False, repr=False)


@quick_init
@dataclass(frozen=True, slots=True)
class SyncResponse:
    """One page of a sync answer, in ``(conversation, order_key)`` order.

    ``complete`` is false when the page was cut at the limit: the client asks again.
    ``covered`` names, per 1:1 conversation the page reached past the cursor, the key up
    to which the page is complete (the timeline's top, or the last key before the cut):
    the client moves its cursor there even when every item up to it was one it already
    ``held`` and the page carries none. ``scanned`` is how many conversations the server
    looked through (what the page cost it). ``burnt`` lists ``(group, seq)`` pairs above
    the cursor, up to the page's last item of that group, that no message will ever carry
    (a write failed after its seq was handed out), so the client steps over them.
    """

    user: Id
    items: tuple[Stored, ...]
    complete: bool
    covered: tuple[tuple[Id, int], ...] = ()
    scanned: int = 0
    burnt: tuple[tuple[Id, int], ...] = ()
    #: Inbox sync: the inbox seq up to which the page is complete (the client's new
    #: inbox cursor); ``scanned`` then counts the inbox entries read. -1: conversation
    #: sync.
    inbox_top: int = -1


# ---------------------------------------------------------------------------------------
# Actions


@quick_init
@dataclass(frozen=True, slots=True)
class Transmit:
    """Sender → network: send (or resend) this message; ``attempt`` counts from 1."""

    message: Message
    attempt: int


@quick_init
@dataclass(frozen=True, slots=True)
class SendSucceeded:
    """Sender → app: the server stored the message (the article's step 3 reached the app)."""

    msg_id: Id
    order_key: int
    attempts: int


@quick_init
@dataclass(frozen=True, slots=True)
class SendFailed:
    """Sender → app: give up, visibly (rejected with ``reason``, or no reply in time)."""

    msg_id: Id
    reason: str
    attempts: int


@quick_init
@dataclass(frozen=True, slots=True)
class Deliver:
    """Server → network: push this stored message to ``recipient`` (``attempt`` from 1)."""

    recipient: Id
    item: Stored
    attempt: int


@quick_init
@dataclass(frozen=True, slots=True)
class Show:
    """Receiver → app: show this message to the user (it reaches the app, once)."""

    item: Stored
    via: str  # "push" or "sync"
    #: for ``via == "sync"``: what started the sync — "receipt" (a 1:1 copy arrived),
    #: "gap" (a group seq gap) or "reconnect" (a login); the repair a record credits
    trigger: str = ""


@quick_init
@dataclass(frozen=True, slots=True)
class SendAck:
    """Receiver → network: acknowledge these message ids to the server."""

    msg_ids: tuple[Id, ...]


@quick_init
@dataclass(frozen=True, slots=True)
class StartSync:
    """Receiver → network: pull from the server's store."""

    request: SyncRequest

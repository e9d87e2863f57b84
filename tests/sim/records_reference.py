"""The recorder as it was before its rows went into column buffers, frozen for one test.

``tests/sim/test_records_columns.py`` feeds this and :class:`immodel.sim.records.Recorder`
the same calls during a run (:class:`TeeRecorder`) and checks that both build the same
frames. Below the marked line is the old implementation unchanged (one object per message
with per-recipient dicts, Python lists of boxed values); the adapter methods at the end of
:class:`Recorder` translate the setter calls the simulator now makes into the direct
field writes it used to make. Test support only: nothing in ``immodel`` imports it.
"""

# ---- the old implementation (immodel/sim/records.py before the column buffers) ----
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from immodel.protocol.channel import content_digest
from immodel.protocol.messages import Message
from immodel.protocol.rest import ADMIN_UID
from immodel.sim.records import Recorder as NewRecorder

NAN = math.nan


class MessageRecord:
    """What happened to one message, for its rows in ``messages``."""

    __slots__ = (
        "altered",
        "attempts",
        "copies",
        "failure",
        "first_show",
        "first_via",
        "message",
        "offline_push",
        "online_at_store",
        "order_key",
        "recipients",
        "repaired_by",
        "screening",
        "stored_copies",
        "t_outcome",
        "t_send",
        "t_stored",
    )

    def __init__(self, message: Message, recipients: tuple[int, ...], t_send: float) -> None:
        self.message = message
        self.recipients = recipients
        self.t_send = t_send
        self.attempts = 1
        self.t_stored = NAN
        self.order_key = -1
        self.stored_copies = 0
        self.failure = ""
        self.t_outcome = NAN  # when the sender learned success or failure
        self.first_show: dict[int, float] = {}
        self.first_via: dict[int, str] = {}
        self.repaired_by: dict[int, str] = {}
        self.copies: dict[int, int] = {}
        self.online_at_store: dict[int, bool] = {}
        self.offline_push: dict[int, float] = {}  # recipient → notification arrival
        self.screening = ""  # what screening did: "", blocked, flagged, replaced, sender_only
        self.altered: set[int] = set()  # recipients whose first copy shown was altered


class Recorder:
    """Collects rows during a run and builds the DataFrames at the end."""

    def __init__(self) -> None:
        self.messages: dict[str, MessageRecord] = {}
        self.trace_t: list[float] = []
        self.trace_event: list[str] = []
        self.trace_msg: list[str] = []
        self.trace_conv: list[str] = []
        self.trace_user: list[int] = []
        self.trace_key: list[float] = []
        self.trace_version: list[str] = []  # "" original content; else what changed it
        self.req_t: list[float] = []
        self.req_user: list[int] = []
        self.req_kind: list[str] = []
        self.req_messages: list[int] = []
        self.req_bytes: list[int] = []
        self.load_rows: list[dict] = []
        self.recipient_kind: list[str] = []  # each user's transport (set by the world)
        # Several devices per user (immodel.sim.devices.DeviceTable, set by the world):
        # the ids recorded are the devices' endpoint ids, mapped to users in the frames.
        self.devices = None

    # -- during the run -------------------------------------------------------------------
    def _trace(
        self, t: float, event: str, msg: Message, user: int, key: float, version: str = ""
    ) -> None:
        self.trace_version.append(version)
        self.trace_t.append(t)
        self.trace_event.append(event)
        self.trace_msg.append(msg.msg_id)
        self.trace_conv.append(msg.conversation)
        self.trace_user.append(user)
        self.trace_key.append(key)

    def sent(self, t: float, msg: Message, recipients: tuple[int, ...]) -> None:
        self.messages[msg.msg_id] = MessageRecord(msg, recipients, t)
        self._trace(t, "send", msg, msg.sender, NAN)

    def stored(self, t: float, msg: Message, key: int, online: dict[int, bool]) -> None:
        rec = self.messages[msg.msg_id]
        rec.stored_copies += 1
        if rec.stored_copies == 1:
            rec.t_stored = t
            rec.order_key = key
            rec.online_at_store = online
        version = "replaced" if rec.screening == "replaced" else ""
        for user in rec.recipients:
            self._trace(t, "stored", msg, user, key, version)

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
        rec = self.messages[msg.msg_id]
        rec.copies[user] = rec.copies.get(user, 0) + 1
        if user not in rec.first_show:
            rec.first_show[user] = t
            rec.first_via[user] = via
            if repair:
                rec.repaired_by[user] = repair
            if altered:
                rec.altered.add(user)
        version = "replaced" if rec.screening == "replaced" else ""
        if altered:
            version = version + ",tampered" if version else "tampered"
        self._trace(t, "deliver", msg, user, key, version)

    def request(self, t: float, user: int, kind: str, messages: int, size_bytes: int) -> int:
        """Record a request that reached the access layer; returns its row index so a
        poll's row can be given the number of messages its response carried."""
        self.req_t.append(t)
        self.req_user.append(user)
        self.req_kind.append(kind)
        self.req_messages.append(messages)
        self.req_bytes.append(size_bytes)
        return len(self.req_t) - 1

    # -- at the end -----------------------------------------------------------------------
    def trace_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "t": np.asarray(self.trace_t, dtype=float),
                "event": pd.Categorical(self.trace_event, categories=["send", "stored", "deliver"]),
                "msg_id": self.trace_msg,
                "conversation": self.trace_conv,
                "user": self._trace_users(),
                "order_key": np.asarray(self.trace_key, dtype=float),
                "digest": np.asarray(self._digests(), dtype=np.int64),
            }
        )

    def _trace_users(self) -> list[str]:
        """The trace's ``user`` column: the user id, or with several devices per user the
        device's label (the user id for its first device, ``"{uid}/{kind}"`` for the
        others), so the checker judges each device on its own."""
        if self.devices is None:
            return [str(u) for u in self.trace_user]
        label = self.devices.label
        return [label[u] for u in self.trace_user]

    def _digests(self) -> list[int]:
        """The content digest of each trace row (computed once per message and version)."""
        memo: dict[tuple[str, str], int] = {}
        out = []
        for msg_id, version in zip(self.trace_msg, self.trace_version, strict=True):
            d = memo.get((msg_id, version))
            if d is None:
                d = memo[(msg_id, version)] = content_digest(msg_id, version)
            out.append(d)
        return out

    def messages_frame(self) -> pd.DataFrame:
        cols: dict[str, list] = {
            k: []
            for k in (
                "msg_id",
                "conversation",
                "is_group",
                "sender",
                "recipient",
                "order_key",
                "stored",
                "stored_copies",
                "t_send",
                "t_stored",
                "t_first_show",
                "latency_ms",
                "attempts",
                "copies",
                "online_at_store",
                "t_offline_push",
                "first_via",
                "repaired_by",
                "recipient_kind",
                "send_failed",
                "failure_reason",
                "screening",
                "altered",
                "origin",
            )
        }
        kinds = self.recipient_kind
        for rec in self.messages.values():
            msg = rec.message
            stored = rec.stored_copies > 0
            for user in rec.recipients:
                first = rec.first_show.get(user, NAN)
                cols["msg_id"].append(msg.msg_id)
                cols["conversation"].append(msg.conversation)
                cols["is_group"].append(msg.is_group)
                cols["sender"].append(msg.sender)
                cols["recipient"].append(user)
                cols["order_key"].append(rec.order_key if stored else -1)
                cols["stored"].append(stored)
                cols["stored_copies"].append(rec.stored_copies)
                cols["t_send"].append(rec.t_send)
                cols["t_stored"].append(rec.t_stored)
                cols["t_first_show"].append(first)
                cols["latency_ms"].append((first - rec.t_send) * 1000.0)
                cols["attempts"].append(rec.attempts)
                cols["copies"].append(rec.copies.get(user, 0))
                cols["online_at_store"].append(rec.online_at_store.get(user, False))
                cols["t_offline_push"].append(rec.offline_push.get(user, NAN))
                cols["first_via"].append(rec.first_via.get(user, ""))
                cols["repaired_by"].append(rec.repaired_by.get(user, ""))
                cols["recipient_kind"].append(kinds[user] if kinds else "")
                cols["send_failed"].append(rec.failure != "")
                cols["failure_reason"].append(rec.failure)
                cols["screening"].append(rec.screening)
                cols["altered"].append(user in rec.altered)
                cols["origin"].append("rest" if msg.sender == ADMIN_UID else "sdk")
        frame = pd.DataFrame(cols)
        frame["device"] = self._device_column(frame, "recipient", "sender")
        return frame.astype(
            {
                "is_group": bool,
                "stored": bool,
                "online_at_store": bool,
                "send_failed": bool,
                "altered": bool,
                "sender": "int64",
                "recipient": "int64",
                "order_key": "int64",
                "stored_copies": "int64",
                "attempts": "int64",
                "copies": "int64",
                "t_send": float,
                "t_stored": float,
                "t_first_show": float,
                "t_offline_push": float,
                "latency_ms": float,
            }
        )

    def _device_column(self, frame: pd.DataFrame, eid_col: str, *more: str) -> list[str]:
        """The device kind of each row's ``eid_col`` (which, like the ``more`` columns, is
        then turned from endpoint ids into user ids); "phone" with one device per user."""
        from immodel.sim.devices import DEFAULT_DEVICE

        if self.devices is None:
            return [DEFAULT_DEVICE] * len(frame)
        eids = frame[eid_col].to_numpy(dtype=np.int64)
        users = np.asarray(self.devices.user, dtype=np.int64)
        kinds = np.asarray(self.devices.kind, dtype=object)[eids].tolist()
        for col in (eid_col, *more):
            frame[col] = users[frame[col].to_numpy(dtype=np.int64)]
        return kinds

    def requests_frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(
            {
                "t": np.asarray(self.req_t, dtype=float),
                "user": np.asarray(self.req_user, dtype=np.int64),
                "kind": pd.Categorical(
                    self.req_kind,
                    categories=["send", "ack", "poll", "sync", "login", "rest", "rest_refused"],
                ),
                "messages": np.asarray(self.req_messages, dtype=np.int64),
                "bytes": np.asarray(self.req_bytes, dtype=np.int64),
            }
        )
        frame["device"] = self._device_column(frame, "user")
        return frame

    def load_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.load_rows)

    # ---- adapters: the setter calls the simulator now makes, as the field writes it
    # used to make at each call site ----
    def set_request_messages(self, row: int, messages: int) -> None:
        self.req_messages[row] = messages

    def set_attempts(self, msg_id: str, attempts: int) -> None:
        self.messages[msg_id].attempts = attempts

    def set_screening(self, msg_id: str, action: str) -> None:
        self.messages[msg_id].screening = action

    def set_failure(self, msg_id: str, reason: str) -> None:
        self.messages[msg_id].failure = reason

    def outcome(self, msg_id: str, t: float, failure: str = "") -> Message:
        rec = self.messages[msg_id]
        if failure:
            rec.failure = failure
        rec.t_outcome = t
        return rec.message

    def offline_push(self, msg_id: str, user: int, arrival: float) -> None:
        self.messages[msg_id].offline_push.setdefault(user, arrival)

    def recipients(self, msg_id: str) -> tuple[int, ...]:
        return self.messages[msg_id].recipients

    def n_recipients(self, msg_id: str) -> int:
        return len(self.messages[msg_id].recipients)


class TeeRecorder(NewRecorder):
    """The new recorder, which also passes every call on to the old one (:attr:`old`)."""

    def __init__(self) -> None:
        super().__init__()
        self.old = Recorder()

    def sent(self, t, msg, recipients):
        self.old.sent(t, msg, recipients)
        super().sent(t, msg, recipients)

    def stored(self, t, msg, key, online):
        self.old.stored(t, msg, key, online)
        super().stored(t, msg, key, online)

    def shown(self, t, msg, key, user, via, repair="", altered=False):
        self.old.shown(t, msg, key, user, via, repair, altered)
        super().shown(t, msg, key, user, via, repair, altered)

    def request(self, t, user, kind, messages, size_bytes):
        row = self.old.request(t, user, kind, messages, size_bytes)
        assert super().request(t, user, kind, messages, size_bytes) == row
        return row

    def set_request_messages(self, row, messages):
        self.old.set_request_messages(row, messages)
        super().set_request_messages(row, messages)

    def set_attempts(self, msg_id, attempts):
        self.old.set_attempts(msg_id, attempts)
        super().set_attempts(msg_id, attempts)

    def set_screening(self, msg_id, action):
        self.old.set_screening(msg_id, action)
        super().set_screening(msg_id, action)

    def set_failure(self, msg_id, reason):
        self.old.set_failure(msg_id, reason)
        super().set_failure(msg_id, reason)

    def outcome(self, msg_id, t, failure=""):
        old = self.old.outcome(msg_id, t, failure)
        assert super().outcome(msg_id, t, failure) == old
        return old

    def offline_push(self, msg_id, user, arrival):
        self.old.offline_push(msg_id, user, arrival)
        super().offline_push(msg_id, user, arrival)

    def recipients(self, msg_id):
        old = self.old.recipients(msg_id)
        assert super().recipients(msg_id) == old
        return old

    def n_recipients(self, msg_id):
        old = self.old.n_recipients(msg_id)
        assert super().n_recipients(msg_id) == old
        return old

    def old_frames(self):
        """The old recorder's trace, messages and requests frames, given what the world
        set on the new one (per-user transports, device table, load samples)."""
        self.old.recipient_kind = self.recipient_kind
        self.old.devices = self.devices
        return self.old.trace_frame(), self.old.messages_frame(), self.old.requests_frame()

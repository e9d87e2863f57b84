"""Frames on the real harness's sockets: a 4-byte big-endian length, then one JSON object.

Every connection of ``immodel real`` — client ↔ access node (inside TLS) and access node ↔
logic node (plain TCP on loopback) — carries these frames. A frame is a dict with an
``"op"`` naming what it is; the protocol's values (:mod:`immodel.protocol.messages`)
travel as small dicts made by the ``*_to_wire`` / ``*_from_wire`` pairs below, so both
ends rebuild the very dataclasses the simulator passes around.

The frame size is bounded (:data:`MAX_FRAME_BYTES`): a peer that announces more is cut
off instead of making the reader allocate it.
"""

from __future__ import annotations

import asyncio
import json
import struct
from typing import Any

from immodel.protocol.messages import Message, SendReply, Stored, SyncRequest, SyncResponse

_LEN = struct.Struct(">I")
#: Largest frame accepted (bytes of JSON): a sync page of a few hundred messages fits.
MAX_FRAME_BYTES = 4 * 1024 * 1024


class FrameError(ConnectionError):
    """The peer sent something that is not a frame (too large, not JSON)."""


def encode(obj: dict[str, Any]) -> bytes:
    """One frame: length prefix + compact JSON."""
    body = json.dumps(obj, separators=(",", ":")).encode("utf-8")
    return _LEN.pack(len(body)) + body


async def read_frame(reader: asyncio.StreamReader) -> dict[str, Any] | None:
    """The next frame, or None when the peer closed the connection cleanly."""
    try:
        head = await reader.readexactly(_LEN.size)
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise FrameError("connection closed inside a frame header") from None
        return None
    (size,) = _LEN.unpack(head)
    if size > MAX_FRAME_BYTES:
        raise FrameError(f"frame of {size} bytes announced (limit {MAX_FRAME_BYTES})")
    try:
        body = await reader.readexactly(size)
    except asyncio.IncompleteReadError:
        raise FrameError("connection closed inside a frame") from None
    try:
        obj = json.loads(body)
    except ValueError as exc:
        raise FrameError(f"frame is not JSON: {exc}") from None
    if not isinstance(obj, dict) or "op" not in obj:
        raise FrameError("frame is not an object with an 'op'")
    return obj


# -- protocol values ----------------------------------------------------------------------
def message_to_wire(m: Message) -> list:
    return [m.msg_id, m.sender, m.conversation, m.is_group, m.payload_bytes]


def message_from_wire(w: list) -> Message:
    return Message(w[0], int(w[1]), w[2], bool(w[3]), int(w[4]))


def stored_to_wire(item: Stored) -> list:
    return [*message_to_wire(item.message), item.order_key]


def stored_from_wire(w: list) -> Stored:
    return Stored(message_from_wire(w[:5]), int(w[5]))


def reply_to_wire(r: SendReply) -> list:
    return [r.msg_id, r.accepted, r.order_key, r.reason, r.retryable]


def reply_from_wire(w: list) -> SendReply:
    return SendReply(w[0], bool(w[1]), w[2], w[3], bool(w[4]))


def sync_request_to_wire(r: SyncRequest) -> dict:
    wire = {
        "user": r.user,
        "cursors": [list(p) for p in r.cursors],
        "limit": r.limit,
        "merged": [list(p) for p in r.merged_at_cursor],
        "held": [list(p) for p in r.held],
    }
    if r.inbox_cursor >= 0:  # inbox sync; absent: conversation sync (frames as before)
        wire["inbox"] = r.inbox_cursor
    return wire


def sync_request_from_wire(w: dict) -> SyncRequest:
    return SyncRequest(
        int(w["user"]),
        tuple((c, int(k)) for c, k in w["cursors"]),
        int(w["limit"]),
        tuple((c, m) for c, m in w["merged"]),
        tuple((c, m) for c, m in w["held"]),
        int(w.get("inbox", -1)),
    )


def sync_response_to_wire(r: SyncResponse) -> dict:
    wire = {
        "user": r.user,
        "items": [stored_to_wire(i) for i in r.items],
        "complete": r.complete,
        "covered": [list(p) for p in r.covered],
        "scanned": r.scanned,
        "burnt": [list(p) for p in r.burnt],
    }
    if r.inbox_top >= 0:  # inbox sync; absent: conversation sync (frames as before)
        wire["inbox_top"] = r.inbox_top
    return wire


def sync_response_from_wire(w: dict) -> SyncResponse:
    return SyncResponse(
        int(w["user"]),
        tuple(stored_from_wire(i) for i in w["items"]),
        bool(w["complete"]),
        tuple((c, int(k)) for c, k in w["covered"]),
        int(w["scanned"]),
        tuple((c, int(k)) for c, k in w["burnt"]),
        int(w.get("inbox_top", -1)),
    )

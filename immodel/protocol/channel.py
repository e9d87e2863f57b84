"""Security decisions of the client channel, as pure functions.

The simulator supplies the facts (did the DNS answer point at the attacker? did an
on-path attacker alter this frame? does the frame come on a session?) and charges time;
what those facts *mean* is decided here, once:

* :func:`handshake_outcome` — a client that reached an address: on the ``encrypted``
  channel (TLS) a hijacked address fails the handshake, because the attacker cannot
  present a certificate for the service's name; on ``plaintext`` nothing checks who
  answers, so the client talks to the attacker, who reads and can alter everything.
* :func:`tamper_outcome` — a frame altered in flight: on ``encrypted`` its record MAC
  fails, the receiver drops it and the connection is torn down (TLS has no way to resume
  after a bad record), so the normal repair mechanisms bring the message again; on
  ``plaintext`` the altered frame is accepted and shown.
* :func:`session_allows` — a frame at the access tier is served only on a connection
  whose login was verified; a frame without one (forged, injected) is dropped. Pulls
  (poll, sync) need the session exactly as sends do.
* :func:`content_digest` — the digest a trace row carries for the content a client was
  shown, so a changed payload is visible to the checker without payload bytes.
* :func:`screening_action` — what a screening hit becomes under the business's policy;
  :func:`screening_outcome` — that, and the verdict admission then decides on.

No clock, no randomness, no SimPy.
"""

from __future__ import annotations

import hashlib
from typing import Final, Literal

__all__ = [
    "CHANNELS",
    "SCREENING_ACTIONS",
    "content_digest",
    "handshake_outcome",
    "screening_action",
    "screening_outcome",
    "session_allows",
    "tamper_outcome",
]

CHANNELS: Final[tuple[str, ...]] = ("encrypted", "plaintext")
"""The channel kinds: TLS with the server's identity verified, or none."""

SCREENING_ACTIONS: Final[dict[str, str]] = {
    "block": "blocked",
    "flag": "flagged",
    "replace": "replaced",
    "sender_only": "sender_only",
}
"""Screening policy → the outcome a hit gets (the ``screening`` value in records)."""

HandshakeOutcome = Literal["ok", "identity_failed", "attacker"]
TamperOutcome = Literal["detected", "accepted"]


def _check_channel(channel: str) -> None:
    if channel not in CHANNELS:
        raise ValueError(f"channel must be one of {', '.join(CHANNELS)}, got {channel!r}")


def handshake_outcome(channel: str, *, hijacked: bool) -> HandshakeOutcome:
    """What connecting to an address gives: ``ok`` (the service), ``identity_failed``
    (encrypted channel, an attacker's address: the client must not go on) or ``attacker``
    (plaintext channel, an attacker's address: the client talks to the attacker)."""
    _check_channel(channel)
    if not hijacked:
        return "ok"
    return "identity_failed" if channel == "encrypted" else "attacker"


def tamper_outcome(channel: str) -> TamperOutcome:
    """What an altered frame becomes at the receiver: ``detected`` (encrypted: the record
    MAC fails; the frame is dropped and the connection reset) or ``accepted`` (plaintext:
    the altered content is shown)."""
    _check_channel(channel)
    return "detected" if channel == "encrypted" else "accepted"


def session_allows(kind: str, *, has_session: bool) -> bool:
    """Whether the access tier serves a frame of ``kind`` (send, ack, poll, sync): only on
    a connection with a verified login. A login itself needs no session."""
    if kind == "login":
        return True
    return has_session


def content_digest(msg_id: str, version: str = "") -> int:
    """A 63-bit digest of a message's content: ``version`` names a content other than the
    one its sender wrote ("" for the original; "replaced", "tampered" …), so equal digests
    mean the same content. Stable across processes (not Python's salted ``hash``)."""
    h = hashlib.blake2b(f"{msg_id}\x00{version}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") >> 1


def screening_action(policy: str, verdict: str) -> str:
    """The outcome of screening: "" when the verdict is ``pass``; on ``block`` the
    policy's action (see :data:`SCREENING_ACTIONS`): ``blocked`` (the sender is refused),
    ``flagged`` (delivered with a flag), ``replaced`` (delivered with the text replaced),
    ``sender_only`` (shown to its sender only)."""
    if verdict == "pass":
        return ""
    if verdict != "block":
        raise ValueError(f"verdict must be 'pass' or 'block', got {verdict!r}")
    try:
        return SCREENING_ACTIONS[policy]
    except KeyError:
        raise ValueError(
            f"policy must be one of {', '.join(SCREENING_ACTIONS)}, got {policy!r}"
        ) from None


def screening_outcome(policy: str, verdict: str) -> tuple[str, str]:
    """``(action, admitted_verdict)`` of a screening verdict under ``policy``: the action
    (:func:`screening_action`) and the verdict admission decides on — a hit the policy
    delivers anyway (flagged, replaced) or shows to its sender only is no refusal there,
    so admission sees ``pass``; only ``blocked`` refuses."""
    action = screening_action(policy, verdict)
    if action and action != "blocked":
        return action, "pass"
    return action, verdict

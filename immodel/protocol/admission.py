"""Server-side admission: may this login or this message go on?

The article's second stage, *server processing*, runs every message through a chain of
steps before it is stored and delivered. This module is the decision part of that
chain, as pure functions: the simulator's server stages look up the facts (is the
sender muted? what did the callback answer?) and charge the service time; the rules that
turn facts into accept/reject live here, once.

Stages, in order (:data:`STAGES`)
---------------------------------
``auth``
    Login with a UserSig (:func:`authenticate`, using
    :func:`immodel.protocol.usersig.verify_usersig`).
``checks``
    Mute, then blacklist, then friend relationship (:func:`admit`).
``callback``
    The customer's before-send callback to its business backend, if configured.
``screening``
    Content moderation, if configured.
``recent_contacts``, ``store``
    Update the conversation list and store the message. They make no decision, so they
    have no rule here; they are listed because the simulator charges time for them.

Rules of :func:`admit`
----------------------
Evaluated in stage order; the first rejection wins and later stages are not consulted:
a message refused by the checks never reaches the customer's callback or the screening
service, so the simulator charges no time for them either.

1. ``muted``: the sender is muted (globally or in this group).
2. ``blacklisted``: 1:1 only; the recipient has blacklisted the sender.
3. ``not_friends``: 1:1 only, and only if the app requires friendship to chat.
4. Callback, only if enabled: ``reject`` → ``callback_rejected``; ``timeout`` → the
   policy's default, ``allow`` (go on) or ``reject`` (``callback_timeout``).
5. ``content_blocked``: only if screening is enabled and the verdict is ``block``.

Blacklist and friendship are relations between two users, so they do not apply to
group messages; group membership and group mute are the group's own business, and a
muted group member arrives here as ``sender_muted``.

Reason codes
------------
:class:`Reason` is the one vocabulary of outcomes that travels back to the sender.
Authentication failures keep their cause (``auth_expired``, ``auth_bad_signature``, …)
rather than one ``auth_failed``: a client must tell "fetch a fresh UserSig and retry"
(expired) from "this will never work" (bad signature, wrong app), and the cause is not
a secret because :mod:`immodel.protocol.usersig` only names a claim-level cause for
tokens whose signature is genuine.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Literal

from immodel.protocol.messages import quick_init
from immodel.protocol.usersig import UserSigError, UserSigReason, verify_usersig

__all__ = [
    "ACCEPTED",
    "STAGES",
    "AdmissionPolicy",
    "Decision",
    "MessageFacts",
    "Reason",
    "admit",
    "authenticate",
]

STAGES: Final[tuple[str, ...]] = (
    "auth",
    "checks",
    "callback",
    "screening",
    "recent_contacts",
    "store",
)
"""Names of the server-processing stages, in the order a message passes them."""

ScreeningVerdict = Literal["pass", "block"]
CallbackVerdict = Literal["allow", "reject", "timeout"]
CallbackTimeoutDefault = Literal["allow", "reject"]

_SCREENING_VERDICTS: Final = frozenset({"pass", "block"})
_CALLBACK_VERDICTS: Final = frozenset({"allow", "reject", "timeout"})
_TIMEOUT_DEFAULTS: Final = frozenset({"allow", "reject"})


class Reason(StrEnum):
    """Outcome code of an admission decision, sent back to the sender.

    A ``StrEnum`` (``str`` and ``Enum``): ``Reason.MUTED == "muted"`` and it serialises
    as its value in records and traces.
    """

    OK = "ok"
    AUTH_MALFORMED = "auth_malformed"
    AUTH_BAD_SIGNATURE = "auth_bad_signature"
    AUTH_WRONG_APP = "auth_wrong_app"
    AUTH_WRONG_IDENTIFIER = "auth_wrong_identifier"
    AUTH_EXPIRED = "auth_expired"
    MUTED = "muted"
    BLACKLISTED = "blacklisted"
    NOT_FRIENDS = "not_friends"
    CALLBACK_REJECTED = "callback_rejected"
    CALLBACK_TIMEOUT = "callback_timeout"
    CONTENT_BLOCKED = "content_blocked"

    @property
    def stage(self) -> str | None:
        """The stage (one of :data:`STAGES`) that gives this rejection; ``None`` for OK."""
        return _STAGE_OF_REASON.get(self)


_STAGE_OF_REASON: Final[dict[Reason, str]] = {
    Reason.AUTH_MALFORMED: "auth",
    Reason.AUTH_BAD_SIGNATURE: "auth",
    Reason.AUTH_WRONG_APP: "auth",
    Reason.AUTH_WRONG_IDENTIFIER: "auth",
    Reason.AUTH_EXPIRED: "auth",
    Reason.MUTED: "checks",
    Reason.BLACKLISTED: "checks",
    Reason.NOT_FRIENDS: "checks",
    Reason.CALLBACK_REJECTED: "callback",
    Reason.CALLBACK_TIMEOUT: "callback",
    Reason.CONTENT_BLOCKED: "screening",
}

_AUTH_REASON: Final[dict[UserSigReason, Reason]] = {
    UserSigReason.MALFORMED: Reason.AUTH_MALFORMED,
    UserSigReason.BAD_SIGNATURE: Reason.AUTH_BAD_SIGNATURE,
    UserSigReason.WRONG_APP: Reason.AUTH_WRONG_APP,
    UserSigReason.WRONG_IDENTIFIER: Reason.AUTH_WRONG_IDENTIFIER,
    UserSigReason.EXPIRED: Reason.AUTH_EXPIRED,
}


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer of an admission step: accepted, or rejected with a reason.

    Invariant: ``accepted`` is true exactly when ``reason`` is :attr:`Reason.OK`.
    Use :data:`ACCEPTED` and :meth:`reject` rather than building one by hand.
    """

    accepted: bool
    reason: Reason

    def __post_init__(self) -> None:
        if self.accepted != (self.reason is Reason.OK):
            raise ValueError(f"inconsistent decision: accepted={self.accepted}, {self.reason!r}")

    @classmethod
    def reject(cls, reason: Reason) -> Decision:
        """A rejection with ``reason`` (anything but OK)."""
        return cls(accepted=False, reason=reason)

    @property
    def stage(self) -> str | None:
        """The stage that rejected, or ``None`` if accepted."""
        return self.reason.stage


ACCEPTED: Final = Decision(accepted=True, reason=Reason.OK)
"""The one accepting decision."""


@dataclass(frozen=True, slots=True)
class AdmissionPolicy:
    """The app's configuration of the optional stages; all off by default.

    ``callback_timeout_default`` is what a callback timeout means: ``"allow"`` (the
    default: a slow business backend should not stop the chat) or ``"reject"``.
    """

    require_friendship: bool = False
    callback_enabled: bool = False
    callback_timeout_default: CallbackTimeoutDefault = "allow"
    screening_enabled: bool = False

    def __post_init__(self) -> None:
        if self.callback_timeout_default not in _TIMEOUT_DEFAULTS:
            raise ValueError(
                "callback_timeout_default must be 'allow' or 'reject', "
                f"got {self.callback_timeout_default!r}"
            )


@quick_init
@dataclass(frozen=True, slots=True)
class MessageFacts:
    """What the server stages looked up for one message (for one recipient, if 1:1).

    ``screening_verdict`` and ``callback_verdict`` are ``None`` when that stage did not
    run; they must be given when the policy enables the stage. For a group message,
    ``blacklisted_by_recipient`` and ``are_friends`` are ignored.
    """

    sender_muted: bool
    blacklisted_by_recipient: bool
    are_friends: bool
    is_group: bool
    screening_verdict: ScreeningVerdict | None = None
    callback_verdict: CallbackVerdict | None = None

    def __post_init__(self) -> None:
        if self.screening_verdict is not None and self.screening_verdict not in (
            _SCREENING_VERDICTS
        ):
            raise ValueError(
                f"screening_verdict must be 'pass', 'block' or None, got {self.screening_verdict!r}"
            )
        if self.callback_verdict is not None and self.callback_verdict not in _CALLBACK_VERDICTS:
            raise ValueError(
                "callback_verdict must be 'allow', 'reject', 'timeout' or None, "
                f"got {self.callback_verdict!r}"
            )


def authenticate(
    usersig: str, *, sdkappid: int, key: str, identifier: str, now: int | float
) -> Decision:
    """The ``auth`` stage: accept a login by ``identifier`` to ``sdkappid`` at ``now``.

    Verifies the UserSig (see :func:`~immodel.protocol.usersig.verify_usersig`) and maps
    its failure to the matching ``auth_*`` reason. A server configuration error (empty
    key) is not a login failure and propagates as ``ValueError``.
    """
    try:
        verify_usersig(usersig, sdkappid=sdkappid, key=key, identifier=identifier, now=now)
    except UserSigError as exc:
        return Decision.reject(_AUTH_REASON[exc.reason])
    return ACCEPTED


def admit(policy: AdmissionPolicy, facts: MessageFacts) -> Decision:
    """The ``checks``, ``callback`` and ``screening`` stages for one message.

    Applies the rules in the module docstring in stage order and returns the first
    rejection, or :data:`ACCEPTED`. Raises ``ValueError`` if the policy enables the
    callback or screening but ``facts`` carries no verdict for it: that is a wiring bug
    in the caller, and silently accepting would hide it.
    """
    for rule in (_check_mute, _check_blacklist, _check_friendship):
        reason = rule(policy, facts)
        if reason is not None:
            return Decision.reject(reason)
    if policy.callback_enabled:
        reason = _callback_outcome(policy, facts)
        if reason is not None:
            return Decision.reject(reason)
    if policy.screening_enabled:
        if facts.screening_verdict is None:
            raise ValueError("screening is enabled but facts.screening_verdict is None")
        if facts.screening_verdict == "block":
            return Decision.reject(Reason.CONTENT_BLOCKED)
    return ACCEPTED


def _check_mute(policy: AdmissionPolicy, facts: MessageFacts) -> Reason | None:
    return Reason.MUTED if facts.sender_muted else None


def _check_blacklist(policy: AdmissionPolicy, facts: MessageFacts) -> Reason | None:
    if facts.is_group:
        return None
    return Reason.BLACKLISTED if facts.blacklisted_by_recipient else None


def _check_friendship(policy: AdmissionPolicy, facts: MessageFacts) -> Reason | None:
    if facts.is_group or not policy.require_friendship:
        return None
    return None if facts.are_friends else Reason.NOT_FRIENDS


def _callback_outcome(policy: AdmissionPolicy, facts: MessageFacts) -> Reason | None:
    """Rejection reason from an enabled before-send callback, or ``None`` to go on."""
    verdict = facts.callback_verdict
    if verdict is None:
        raise ValueError("the before-send callback is enabled but facts.callback_verdict is None")
    if verdict == "reject":
        return Reason.CALLBACK_REJECTED
    if verdict == "timeout" and policy.callback_timeout_default == "reject":
        return Reason.CALLBACK_TIMEOUT
    return None

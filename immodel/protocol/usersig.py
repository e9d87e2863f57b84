"""UserSig v2: the login token of the modelled IM service (HMAC-SHA256).

The article's security section says that, in independent-account mode, a user logs in
with a *user signature computed with HMAC-SHA*. This module is an executable
specification of that token in the vendor's v2 format, byte-compatible with the
vendor's reference libraries (``TLSSigAPIv2``): tokens made by them verify here, and
tokens made here decode to the same JSON text they make.

Token format
------------
A token is built in four steps:

1. The *signed text* is, with every number in decimal and every line ending in ``\\n``::

       TLS.identifier:<identifier>
       TLS.sdkappid:<sdkappid>
       TLS.time:<time>
       TLS.expire:<expire>
       TLS.userbuf:<userbuf, standard base64>      (only if the token carries a userbuf)

   ``TLS.sig`` is the standard base64 of HMAC-SHA256 over the UTF-8 bytes of that
   text, keyed with the UTF-8 bytes of the application's secret key *as written* (the
   64 hex characters are not decoded to 32 bytes; the vendor's vectors confirm this).
2. A JSON object holds ``TLS.ver`` (``"2.0"``), ``TLS.identifier`` (text),
   ``TLS.sdkappid``, ``TLS.expire``, ``TLS.time`` (integers), the optional
   ``TLS.userbuf`` (text) and ``TLS.sig`` (text).
3. The JSON text (UTF-8) is zlib-compressed.
4. The compressed bytes are base64 encoded and ``+ / =`` are replaced by ``* - _``,
   so that the token survives URLs and form fields.

``TLS.time`` is the issue time in whole seconds since the epoch; ``TLS.expire`` is the
lifetime in seconds. A token is valid at ``now`` while ``now <= time + expire``: the
last valid instant is ``time + expire`` itself, as in the vendor's own verifier (it
rejects when ``time + expire < now``). A token from the future (``now < time``, issuer
clock ahead of ours) is not rejected: the signature already proves the key holder made
it, and rejecting would turn ordinary clock skew into login failures.

Verification and its check order
--------------------------------
:func:`verify_usersig` either returns ``None`` (accepted) or raises
:class:`UserSigError` whose ``reason`` is one :class:`UserSigReason`. Checks run in
this order and the first failure is reported:

1. ``malformed``: not decodable (bad base64, bad zlib stream, not a JSON object,
   duplicate fields), a required field missing or of the wrong type, an unknown
   ``TLS.ver``, or absurdly large (see :data:`MAX_USERSIG_CHARS`).
2. ``bad_signature``: the HMAC over the token's *own* fields does not match.
3. ``wrong_app``: the token was issued for another ``sdkappid``.
4. ``wrong_identifier``: the token was issued for another user.
5. ``expired``: ``now > time + expire``.

The signature is checked *before* any claim is interpreted, so that every reason other
than ``malformed`` / ``bad_signature`` is only ever said about a token that the key
holder really issued. A forger, or someone probing with edited tokens, learns one thing
only: "not authentic". They cannot use the reason as an oracle on which claims the
server would accept. For a genuine token the reason stays actionable: ``expired`` means
"fetch a fresh UserSig and log in again", ``wrong_app`` / ``wrong_identifier`` mean a
client configuration error. Whether a token is accepted does not depend on the order;
only the reason given for a token that fails several checks does.

Nothing here reads a clock, draws a random number or does I/O: the caller passes
``now`` (seconds since the epoch, int or float).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import zlib
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = [
    "MAX_USERSIG_CHARS",
    "USERSIG_VERSION",
    "UserSigError",
    "UserSigReason",
    "generate_usersig",
    "verify_usersig",
]

USERSIG_VERSION = "2.0"
"""The only ``TLS.ver`` this module issues and accepts."""

MAX_USERSIG_CHARS = 16_384
"""Tokens longer than this are ``malformed`` without being decoded.

Real tokens are a few hundred characters; the cap bounds the work an unauthenticated
request can cause before its signature is checked.
"""

# zlib can inflate ~1000x; cap the output so a tiny hostile token cannot make the
# server allocate megabytes before the signature check.
_MAX_JSON_BYTES = 65_536

_UINT32_MAX = 0xFFFF_FFFF

# Swap between the token alphabet and standard base64, in both directions.
_TO_TOKEN_ALPHABET = str.maketrans("+/=", "*-_")
_FROM_TOKEN_ALPHABET = str.maketrans("*-_", "+/=")


class UserSigReason(StrEnum):
    """Why a UserSig was rejected; the values are the stable strings callers match on."""

    MALFORMED = "malformed"
    WRONG_APP = "wrong_app"
    WRONG_IDENTIFIER = "wrong_identifier"
    EXPIRED = "expired"
    BAD_SIGNATURE = "bad_signature"


class UserSigError(ValueError):
    """A UserSig that does not authorise this login.

    ``reason`` is a :class:`UserSigReason` (a ``str``, so ``err.reason == "expired"``
    works); the message says what was wrong in words a person can act on. Messages
    never contain the key or the expected signature.
    """

    def __init__(self, reason: UserSigReason, message: str) -> None:
        super().__init__(message)
        self.reason: UserSigReason = reason


@dataclass(frozen=True, slots=True)
class _Claims:
    """The decoded fields of a token, before anything is checked but their types."""

    identifier: str
    sdkappid: int
    time_s: int
    expire_s: int
    userbuf_b64: str | None
    sig: bytes


def generate_usersig(
    *,
    sdkappid: int,
    key: str,
    identifier: str,
    expire_s: int,
    now: int | float,
    userbuf: bytes | None = None,
) -> str:
    """Issue a UserSig for ``identifier`` in app ``sdkappid``, valid for ``expire_s`` seconds.

    ``now`` (seconds since the epoch) becomes ``TLS.time``, rounded down to a whole
    second. The token is valid from then until ``now + expire_s`` inclusive.
    ``userbuf`` is optional opaque data bound into the signature (the vendor uses it
    for per-room privileges); most tokens have none.

    Raises ``ValueError`` for arguments that cannot make a usable token: an empty key, a
    negative lifetime or time, an ``sdkappid`` outside the vendor's unsigned 32-bit
    range, or an identifier that is not encodable as UTF-8 (lone surrogates).
    """
    _require_key(key)
    _require_uint(sdkappid, "sdkappid", upper=_UINT32_MAX)
    _require_uint(expire_s, "expire_s")
    if isinstance(now, bool) or not isinstance(now, int | float) or not math.isfinite(now):
        raise ValueError(f"now must be a finite number of seconds, got {now!r}")
    if now < 0:
        raise ValueError(f"now must be >= 0 seconds since the epoch, got {now!r}")
    if not isinstance(identifier, str):
        raise ValueError(f"identifier must be text, got {type(identifier).__name__}")
    try:
        identifier.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("identifier must be encodable as UTF-8") from exc

    time_s = math.floor(now)
    userbuf_b64 = None if userbuf is None else base64.b64encode(bytes(userbuf)).decode("ascii")
    sig_b64 = base64.b64encode(
        _mac(key, identifier, sdkappid, time_s, expire_s, userbuf_b64)
    ).decode("ascii")

    # Field order and json.dumps defaults (", " / ": ", ASCII escapes) follow the vendor's
    # Python library, so the JSON inside our tokens is identical to theirs.
    fields: dict[str, Any] = {
        "TLS.ver": USERSIG_VERSION,
        "TLS.identifier": identifier,
        "TLS.sdkappid": sdkappid,
        "TLS.expire": expire_s,
        "TLS.time": time_s,
    }
    if userbuf_b64 is not None:
        fields["TLS.userbuf"] = userbuf_b64
    fields["TLS.sig"] = sig_b64
    compressed = zlib.compress(json.dumps(fields).encode("utf-8"))
    return base64.b64encode(compressed).decode("ascii").translate(_TO_TOKEN_ALPHABET)


def verify_usersig(
    usersig: str, *, sdkappid: int, key: str, identifier: str, now: int | float
) -> None:
    """Accept ``usersig`` as a login of ``identifier`` to app ``sdkappid`` at ``now``, or raise.

    Returns ``None`` when the token is authentic, issued for this app and user, and not
    expired (``now <= time + expire``). Otherwise raises :class:`UserSigError` with the
    first failing check's reason, in the order given in the module docstring:
    malformed, bad_signature, wrong_app, wrong_identifier, expired.

    ``key`` is the app's secret key exactly as the vendor's console shows it. An empty
    key raises plain ``ValueError``: it is a server configuration error, not a bad token.
    """
    _require_key(key)
    claims = _decode(usersig)

    expected = _mac(
        key, claims.identifier, claims.sdkappid, claims.time_s, claims.expire_s, claims.userbuf_b64
    )
    if not hmac.compare_digest(expected, claims.sig):
        raise UserSigError(
            UserSigReason.BAD_SIGNATURE, "UserSig signature does not match the app's key"
        )
    if claims.sdkappid != sdkappid:
        raise UserSigError(
            UserSigReason.WRONG_APP,
            f"UserSig was issued for sdkappid {claims.sdkappid}, not {sdkappid}",
        )
    if claims.identifier != identifier:
        raise UserSigError(
            UserSigReason.WRONG_IDENTIFIER,
            f"UserSig was issued for identifier {claims.identifier!r}, not {identifier!r}",
        )
    expires_at_s = claims.time_s + claims.expire_s
    if now > expires_at_s:
        raise UserSigError(
            UserSigReason.EXPIRED,
            f"UserSig expired at {expires_at_s} (issued {claims.time_s}, lifetime "
            f"{claims.expire_s} s); now is {now}",
        )


def usersig_last_valid_s(usersig: str) -> int:
    """The last second (``time + expire``, Unix seconds) at which ``usersig`` is still
    accepted: a server that verified it at login ends the session after this second.
    Reads the claims only — call it after :func:`verify_usersig` accepted the token."""
    claims = _decode(usersig)
    return claims.time_s + claims.expire_s


def _signed_text(
    identifier: str, sdkappid: int, time_s: int, expire_s: int, userbuf_b64: str | None
) -> str:
    """The text the HMAC covers; see the module docstring.

    An identifier may contain newlines, yet two different tokens cannot share a signed
    text: the tail lines hold only digits or base64, so the text parses uniquely from
    its end.
    """
    text = (
        f"TLS.identifier:{identifier}\n"
        f"TLS.sdkappid:{sdkappid}\n"
        f"TLS.time:{time_s}\n"
        f"TLS.expire:{expire_s}\n"
    )
    if userbuf_b64 is not None:
        text += f"TLS.userbuf:{userbuf_b64}\n"
    return text


def _mac(
    key: str, identifier: str, sdkappid: int, time_s: int, expire_s: int, userbuf_b64: str | None
) -> bytes:
    """HMAC-SHA256 of the signed text, keyed with the key's UTF-8 bytes (raw digest)."""
    text = _signed_text(identifier, sdkappid, time_s, expire_s, userbuf_b64)
    return hmac.new(key.encode("utf-8"), text.encode("utf-8"), hashlib.sha256).digest()


def _decode(usersig: object) -> _Claims:
    """Undo the token encoding and type-check the fields; raise ``malformed`` on any failure."""
    if not isinstance(usersig, str) or not usersig:
        raise _malformed("UserSig must be non-empty text")
    if len(usersig) > MAX_USERSIG_CHARS:
        raise _malformed(f"UserSig is longer than {MAX_USERSIG_CHARS} characters")
    try:
        compressed = base64.b64decode(usersig.translate(_FROM_TOKEN_ALPHABET), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _malformed("UserSig is not in the token's base64 alphabet") from exc

    inflater = zlib.decompressobj()
    try:
        json_bytes = inflater.decompress(compressed, _MAX_JSON_BYTES)
    except zlib.error as exc:
        raise _malformed("UserSig is not a zlib stream") from exc
    if inflater.unconsumed_tail:
        raise _malformed(f"UserSig inflates to more than {_MAX_JSON_BYTES} bytes")
    if not inflater.eof or inflater.unused_data:
        raise _malformed("UserSig zlib stream is truncated or has trailing data")

    try:
        fields = json.loads(json_bytes.decode("utf-8"), object_pairs_hook=_reject_duplicates)
    except UserSigError:  # a duplicated field: its own message, not "not valid JSON"
        raise
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, huge ints
        raise _malformed("UserSig does not contain a valid JSON object") from exc
    if not isinstance(fields, dict):
        raise _malformed("UserSig does not contain a JSON object")

    if fields.get("TLS.ver") != USERSIG_VERSION:
        raise _malformed(f"UserSig version must be {USERSIG_VERSION!r}")
    identifier = _field(fields, "TLS.identifier", str)
    sdkappid = _field(fields, "TLS.sdkappid", int)
    time_s = _field(fields, "TLS.time", int)
    expire_s = _field(fields, "TLS.expire", int)
    sig_b64 = _field(fields, "TLS.sig", str)
    userbuf_b64 = fields.get("TLS.userbuf")
    if userbuf_b64 is not None:
        userbuf_b64 = _field(fields, "TLS.userbuf", str)
        _b64decode_field(userbuf_b64, "TLS.userbuf")
    return _Claims(
        identifier=identifier,
        sdkappid=sdkappid,
        time_s=time_s,
        expire_s=expire_s,
        userbuf_b64=userbuf_b64,
        sig=_b64decode_field(sig_b64, "TLS.sig"),
    )


def _field(fields: dict[str, Any], name: str, kind: type) -> Any:
    """``fields[name]`` if present and of type ``kind`` (bools are not ints here)."""
    value = fields.get(name)
    if value is None:
        raise _malformed(f"UserSig has no {name} field")
    if not isinstance(value, kind) or isinstance(value, bool):
        raise _malformed(f"UserSig field {name} must be {kind.__name__}")
    return value


def _b64decode_field(text: str, name: str) -> bytes:
    """Strict standard-base64 decode of a token field; ``malformed`` if it is not base64."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _malformed(f"UserSig field {name} is not base64") from exc


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """JSON object hook: a field given twice makes the token ambiguous, hence malformed."""
    fields: dict[str, Any] = {}
    for name, value in pairs:
        if name in fields:
            raise _malformed(f"UserSig field {name} appears twice")
        fields[name] = value
    return fields


def _malformed(message: str) -> UserSigError:
    return UserSigError(UserSigReason.MALFORMED, message)


def _require_key(key: object) -> None:
    # An empty key makes every token forgeable; treat it as a configuration bug.
    if not isinstance(key, str) or not key:
        raise ValueError("key must be a non-empty string (the app's secret key)")


def _require_uint(value: object, name: str, *, upper: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    if upper is not None and value > upper:
        raise ValueError(f"{name} must be at most {upper}, got {value}")

"""UserSig v2: interoperability with the vendor's tokens, rejection reasons, robustness."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import zlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from immodel.protocol.usersig import (
    MAX_USERSIG_CHARS,
    UserSigError,
    UserSigReason,
    generate_usersig,
    usersig_last_valid_s,
    verify_usersig,
)

#: The vendor's published UserSig v2 test vectors, kept in the repository as test data.
VECTORS_PATH = Path(__file__).resolve().parents[1] / "data" / "usersig-v2-vectors.json"

APP = 1400000000
KEY = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e"
T0 = 1_700_000_000
DAY_S = 86_400


def _load_vector_params() -> list[Any]:
    """One pytest param per vendor vector. The file is part of the repository, so a
    missing or empty file is an error, never a skip."""
    vectors = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))
    assert vectors, f"no vendor vectors in {VECTORS_PATH}"
    return [pytest.param(v, id=f"{i}-{v['identifier']}") for i, v in enumerate(vectors)]


VECTOR_PARAMS = _load_vector_params()


def _reason(usersig: str, **overrides: Any) -> UserSigReason:
    """The rejection reason for ``usersig`` checked against APP/KEY/alice at T0+1, overridable."""
    args: dict[str, Any] = {"sdkappid": APP, "key": KEY, "identifier": "alice", "now": T0 + 1}
    args.update(overrides)
    with pytest.raises(UserSigError) as info:
        verify_usersig(usersig, **args)
    return info.value.reason


def _alice_token(**overrides: Any) -> str:
    args: dict[str, Any] = {
        "sdkappid": APP,
        "key": KEY,
        "identifier": "alice",
        "expire_s": DAY_S,
        "now": T0,
    }
    args.update(overrides)
    return generate_usersig(**args)


def _json_text(usersig: str) -> str:
    """Undo the token's encoding by hand (independently of the module under test)."""
    std_b64 = usersig.replace("*", "+").replace("-", "/").replace("_", "=")
    return zlib.decompress(base64.b64decode(std_b64)).decode("utf-8")


def _encode(payload: bytes) -> str:
    """Encode arbitrary bytes as a token (zlib + token base64), by hand."""
    return base64.b64encode(zlib.compress(payload)).decode().translate(str.maketrans("+/=", "*-_"))


def _token_from_fields(fields: dict[str, Any]) -> str:
    return _encode(json.dumps(fields).encode("utf-8"))


def _spec_sig(key: str, fields: dict[str, Any]) -> str:
    """TLS.sig computed from the written specification, as an independent oracle."""
    text = (
        f"TLS.identifier:{fields['TLS.identifier']}\n"
        f"TLS.sdkappid:{fields['TLS.sdkappid']}\n"
        f"TLS.time:{fields['TLS.time']}\n"
        f"TLS.expire:{fields['TLS.expire']}\n"
    )
    if "TLS.userbuf" in fields:
        text += f"TLS.userbuf:{fields['TLS.userbuf']}\n"
    return base64.b64encode(hmac.new(key.encode(), text.encode(), hashlib.sha256).digest()).decode()


# --- the vendor's own tokens -------------------------------------------------------------


def _vector_args(vector: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    args = {
        "sdkappid": vector["sdkappid"],
        "key": vector["key"],
        "identifier": vector["identifier"],
        "now": vector["time"] + vector["expire"] // 2,
    }
    args.update(overrides)
    return args


@pytest.mark.parametrize("vector", VECTOR_PARAMS)
def test_vendor_token_is_accepted_throughout_its_lifetime(vector: dict[str, Any]) -> None:
    issued, expire = vector["time"], vector["expire"]
    for now in (issued, issued + 1, issued + expire // 2, issued + expire):
        verify_usersig(vector["usersig"], **_vector_args(vector, now=now))


@pytest.mark.parametrize("vector", VECTOR_PARAMS)
def test_vendor_token_with_wrong_key_is_bad_signature(vector: dict[str, Any]) -> None:
    wrong_key = vector["key"][::-1]
    with pytest.raises(UserSigError) as info:
        verify_usersig(vector["usersig"], **_vector_args(vector, key=wrong_key))
    assert info.value.reason == "bad_signature"


@pytest.mark.parametrize("vector", VECTOR_PARAMS)
def test_vendor_token_for_another_identifier_is_wrong_identifier(vector: dict[str, Any]) -> None:
    with pytest.raises(UserSigError) as info:
        verify_usersig(vector["usersig"], **_vector_args(vector, identifier="mallory"))
    assert info.value.reason == "wrong_identifier"


@pytest.mark.parametrize("vector", VECTOR_PARAMS)
def test_vendor_token_for_another_app_is_wrong_app(vector: dict[str, Any]) -> None:
    with pytest.raises(UserSigError) as info:
        verify_usersig(vector["usersig"], **_vector_args(vector, sdkappid=vector["sdkappid"] + 1))
    assert info.value.reason == "wrong_app"


@pytest.mark.parametrize("vector", VECTOR_PARAMS)
def test_vendor_token_after_its_lifetime_is_expired(vector: dict[str, Any]) -> None:
    end = vector["time"] + vector["expire"]
    for now in (end + 0.001, end + 1, end + 10 * 365 * DAY_S):
        with pytest.raises(UserSigError) as info:
            verify_usersig(vector["usersig"], **_vector_args(vector, now=now))
        assert info.value.reason == "expired"


@pytest.mark.parametrize("vector", VECTOR_PARAMS)
def test_the_last_valid_second_is_the_last_one_verify_accepts(vector: dict[str, Any]) -> None:
    last = usersig_last_valid_s(vector["usersig"])
    assert last == vector["time"] + vector["expire"]
    verify_usersig(vector["usersig"], **_vector_args(vector, now=last))
    with pytest.raises(UserSigError):
        verify_usersig(vector["usersig"], **_vector_args(vector, now=last + 1))


@pytest.mark.parametrize("vector", VECTOR_PARAMS)
def test_generated_token_has_the_same_json_as_the_vendors(vector: dict[str, Any]) -> None:
    # Compare the JSON text, not the token: zlib output may legitimately differ between
    # zlib builds, the JSON text may not.
    ours = generate_usersig(
        sdkappid=vector["sdkappid"],
        key=vector["key"],
        identifier=vector["identifier"],
        expire_s=vector["expire"],
        now=vector["time"],
    )
    assert _json_text(ours) == _json_text(vector["usersig"])


def test_vendor_vectors_cover_non_ascii_identifiers() -> None:
    if not VECTORS_PATH.is_file():
        pytest.skip(f"vendor UserSig vectors not found at {VECTORS_PATH}")
    vectors = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))
    assert any(not v["identifier"].isascii() for v in vectors)


# --- round trip, lifetime boundary ---------------------------------------------------------


@pytest.mark.parametrize("identifier", ["alice", "张三", "李四-mobile", "x-y.z@corp", "", "a\nb"])
def test_generated_token_verifies_for_its_identifier(identifier: str) -> None:
    token = _alice_token(identifier=identifier)
    verify_usersig(token, sdkappid=APP, key=KEY, identifier=identifier, now=T0 + 1)


def test_token_is_valid_at_the_last_second_and_expired_just_after() -> None:
    token = _alice_token(expire_s=60)
    verify_usersig(token, sdkappid=APP, key=KEY, identifier="alice", now=T0 + 60)
    assert _reason(token, now=T0 + 60.5) == "expired"
    assert _reason(token, now=T0 + 61) == "expired"


def test_zero_lifetime_token_is_valid_only_at_its_issue_second() -> None:
    token = _alice_token(expire_s=0)
    verify_usersig(token, sdkappid=APP, key=KEY, identifier="alice", now=T0)
    assert _reason(token, now=T0 + 1) == "expired"


def test_token_from_the_future_is_accepted_as_clock_skew() -> None:
    token = _alice_token()
    verify_usersig(token, sdkappid=APP, key=KEY, identifier="alice", now=T0 - 3600)


def test_fractional_now_is_rounded_down_into_the_issue_time() -> None:
    token = _alice_token(now=T0 + 0.999, expire_s=10)
    assert json.loads(_json_text(token))["TLS.time"] == T0
    assert _reason(token, now=T0 + 10.5) == "expired"


def test_generated_json_has_the_vendor_fields_and_types() -> None:
    fields = json.loads(_json_text(_alice_token()))
    assert fields == {
        "TLS.ver": "2.0",
        "TLS.identifier": "alice",
        "TLS.sdkappid": APP,
        "TLS.expire": DAY_S,
        "TLS.time": T0,
        "TLS.sig": fields["TLS.sig"],
    }
    assert fields["TLS.sig"] == _spec_sig(KEY, fields)


# --- userbuf -------------------------------------------------------------------------------


def test_token_with_userbuf_round_trips_and_signs_the_userbuf_line() -> None:
    token = _alice_token(userbuf=b"\x00\x05room1\xff")
    fields = json.loads(_json_text(token))
    assert base64.b64decode(fields["TLS.userbuf"]) == b"\x00\x05room1\xff"
    assert fields["TLS.sig"] == _spec_sig(KEY, fields)
    verify_usersig(token, sdkappid=APP, key=KEY, identifier="alice", now=T0 + 1)


def test_token_with_userbuf_built_from_the_spec_is_accepted() -> None:
    fields = {
        "TLS.ver": "2.0",
        "TLS.identifier": "alice",
        "TLS.sdkappid": APP,
        "TLS.expire": DAY_S,
        "TLS.time": T0,
        "TLS.userbuf": base64.b64encode(b"privileges").decode(),
    }
    fields["TLS.sig"] = _spec_sig(KEY, fields)
    verify_usersig(_token_from_fields(fields), sdkappid=APP, key=KEY, identifier="alice", now=T0)


def test_edited_or_removed_userbuf_is_bad_signature() -> None:
    fields = json.loads(_json_text(_alice_token(userbuf=b"room-1")))
    edited = {**fields, "TLS.userbuf": base64.b64encode(b"room-2").decode()}
    assert _reason(_token_from_fields(edited)) == "bad_signature"
    removed = {k: v for k, v in fields.items() if k != "TLS.userbuf"}
    assert _reason(_token_from_fields(removed)) == "bad_signature"


def test_userbuf_that_is_not_base64_is_malformed() -> None:
    fields = json.loads(_json_text(_alice_token(userbuf=b"room-1")))
    assert _reason(_token_from_fields({**fields, "TLS.userbuf": "not base64!"})) == "malformed"
    assert _reason(_token_from_fields({**fields, "TLS.userbuf": 12})) == "malformed"


# --- tampering and the check order --------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("TLS.identifier", "mallory"),
        ("TLS.sdkappid", APP + 1),
        ("TLS.time", T0 + 365 * DAY_S),
        ("TLS.expire", 100 * 365 * DAY_S),
    ],
)
def test_edited_claim_with_the_original_signature_is_bad_signature(field: str, value: Any) -> None:
    fields = json.loads(_json_text(_alice_token()))
    forged = _token_from_fields({**fields, field: value})
    # Verify as if the forger's claim were the one wanted: only the signature can object.
    wanted = {
        "identifier": fields["TLS.identifier"] if field != "TLS.identifier" else value,
        "sdkappid": fields["TLS.sdkappid"] if field != "TLS.sdkappid" else value,
    }
    assert _reason(forged, **wanted) == "bad_signature"


def test_signature_is_checked_before_any_claim() -> None:
    token = _alice_token()
    # Wrong key plus every other fault at once: a non-holder of the key learns nothing more.
    reason = _reason(token, key="other", identifier="bob", sdkappid=APP + 1, now=T0 + 2 * DAY_S)
    assert reason == "bad_signature"


def test_genuine_token_reports_app_then_identifier_then_expiry() -> None:
    token = _alice_token()
    late = T0 + 2 * DAY_S
    assert _reason(token, sdkappid=APP + 1, identifier="bob", now=late) == "wrong_app"
    assert _reason(token, identifier="bob", now=late) == "wrong_identifier"
    assert _reason(token, now=late) == "expired"


def test_changing_any_character_never_yields_a_different_accepted_token() -> None:
    token = _alice_token()
    original = base64.b64decode(token.translate(str.maketrans("*-_", "+/=")))
    for i, char in enumerate(token):
        tampered = token[:i] + ("A" if char != "A" else "B") + token[i + 1 :]
        try:
            verify_usersig(tampered, sdkappid=APP, key=KEY, identifier="alice", now=T0)
        except UserSigError as err:
            assert err.reason in ("bad_signature", "malformed")
        else:
            # Only possible when the edit hit base64 padding bits that decode to nothing.
            decoded = base64.b64decode(tampered.translate(str.maketrans("*-_", "+/=")))
            assert decoded == original


def test_every_truncation_is_malformed() -> None:
    token = _alice_token()
    for length in range(len(token)):
        assert _reason(token[:length]) == "malformed"


# --- garbage -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "not a token",
        "!!!!",
        "张三",
        "eJw",
        "AAAA",  # valid base64, not zlib
        _encode(b"not json"),
        _encode(b"\xff\xfe invalid utf-8"),
        _encode(b"[1, 2, 3]"),
        _encode(b'{"TLS.sdkappid": ' + b"9" * 5000 + b"}"),  # int beyond Python's str limit
    ],
)
def test_garbage_is_malformed(garbage: str) -> None:
    assert _reason(garbage) == "malformed"


@pytest.mark.parametrize("value", [None, b"eJw", 42])
def test_non_text_token_is_malformed(value: Any) -> None:
    assert _reason(value) == "malformed"


@pytest.mark.parametrize(
    "field", ["TLS.ver", "TLS.identifier", "TLS.sdkappid", "TLS.time", "TLS.expire", "TLS.sig"]
)
def test_token_missing_a_field_is_malformed(field: str) -> None:
    fields = json.loads(_json_text(_alice_token()))
    del fields[field]
    assert _reason(_token_from_fields(fields)) == "malformed"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("TLS.ver", "1.0"),
        ("TLS.ver", 2.0),
        ("TLS.identifier", 7),
        ("TLS.sdkappid", str(APP)),
        ("TLS.sdkappid", True),
        ("TLS.time", float(T0)),
        ("TLS.expire", None),
        ("TLS.sig", 0),
        ("TLS.sig", "***not base64***"),
    ],
)
def test_token_field_of_the_wrong_type_is_malformed(field: str, value: Any) -> None:
    fields = json.loads(_json_text(_alice_token()))
    assert _reason(_token_from_fields({**fields, field: value})) == "malformed"


def test_token_with_a_duplicated_field_is_malformed() -> None:
    genuine = _json_text(_alice_token())
    ambiguous = genuine.replace("{", '{"TLS.identifier": "mallory", ', 1)
    assert _reason(_encode(ambiguous.encode())) == "malformed"


def test_zlib_stream_with_trailing_data_is_malformed() -> None:
    compressed = zlib.compress(_json_text(_alice_token()).encode()) + b"extra"
    token = base64.b64encode(compressed).decode().translate(str.maketrans("+/=", "*-_"))
    assert _reason(token) == "malformed"


def test_decompression_bomb_is_malformed_without_inflating_it() -> None:
    bomb = _encode(b'{"TLS.identifier": "' + b"a" * 10_000_000 + b'"}')
    assert len(bomb) < MAX_USERSIG_CHARS
    assert _reason(bomb) == "malformed"


def test_overlong_token_is_malformed() -> None:
    assert _reason("A" * (MAX_USERSIG_CHARS + 4)) == "malformed"


# --- the error itself and argument checks ------------------------------------------------


def test_error_is_a_value_error_with_a_string_reason_and_a_readable_message() -> None:
    token = _alice_token()
    with pytest.raises(ValueError) as info:
        verify_usersig(token, sdkappid=APP, key=KEY, identifier="alice", now=T0 + 2 * DAY_S)
    err = info.value
    assert isinstance(err, UserSigError)
    assert err.reason == "expired"
    assert err.reason is UserSigReason.EXPIRED
    assert "expired" in str(err)
    assert KEY not in str(err)


def test_reason_values_are_the_documented_strings() -> None:
    assert {r.value for r in UserSigReason} == {
        "malformed",
        "wrong_app",
        "wrong_identifier",
        "expired",
        "bad_signature",
    }


@pytest.mark.parametrize(
    "overrides",
    [
        {"key": ""},
        {"expire_s": -1},
        {"expire_s": 1.5},
        {"sdkappid": -1},
        {"sdkappid": 2**32},
        {"sdkappid": True},
        {"now": -1},
        {"now": float("nan")},
        {"now": "1700000000"},
        {"identifier": "\ud800"},
        {"identifier": 42},
    ],
)
def test_generate_rejects_arguments_that_cannot_make_a_usable_token(
    overrides: dict[str, Any],
) -> None:
    with pytest.raises(ValueError) as info:
        _alice_token(**overrides)
    assert not isinstance(info.value, UserSigError)


def test_verify_with_an_empty_key_is_a_configuration_error_not_a_bad_token() -> None:
    with pytest.raises(ValueError) as info:
        verify_usersig(_alice_token(), sdkappid=APP, key="", identifier="alice", now=T0)
    assert not isinstance(info.value, UserSigError)


# --- property --------------------------------------------------------------------------------


@given(
    identifier=st.text(max_size=40),
    sdkappid=st.integers(min_value=0, max_value=2**32 - 1),
    expire_s=st.integers(min_value=0, max_value=10**9),
    issued_s=st.integers(min_value=0, max_value=2**33),
    into_lifetime=st.floats(min_value=0.0, max_value=1.0),
    after_s=st.floats(min_value=1e-3, max_value=1e9),
)
def test_generated_token_verifies_inside_its_lifetime_and_expires_after_it(
    identifier: str,
    sdkappid: int,
    expire_s: int,
    issued_s: int,
    into_lifetime: float,
    after_s: float,
) -> None:
    token = generate_usersig(
        sdkappid=sdkappid, key=KEY, identifier=identifier, expire_s=expire_s, now=issued_s
    )
    inside = issued_s + int(expire_s * into_lifetime)
    verify_usersig(token, sdkappid=sdkappid, key=KEY, identifier=identifier, now=inside)
    with pytest.raises(UserSigError) as info:
        verify_usersig(
            token,
            sdkappid=sdkappid,
            key=KEY,
            identifier=identifier,
            now=issued_s + expire_s + after_s,
        )
    assert info.value.reason == "expired"


# --- what a rejection says ---------------------------------------------------------------
# An operator reads these messages in a login log: each names the check that failed, so a
# message that loses its subject (or blames the wrong check) is a defect, not a wording.


def _with_field(**changes: Any) -> str:
    """Alice's genuine token with some JSON fields replaced (None: removed)."""
    fields = json.loads(_json_text(_alice_token()))
    for name, value in changes.items():
        key = name.replace("_", ".", 1)
        if value is None:
            fields.pop(key)
        else:
            fields[key] = value
    return _token_from_fields(fields)


def _message(usersig: str) -> str:
    with pytest.raises(UserSigError) as info:
        verify_usersig(usersig, sdkappid=APP, key=KEY, identifier="alice", now=T0 + 1)
    assert info.value.reason == "malformed"
    return str(info.value)


def _genuine_sig() -> str:
    return json.loads(_json_text(_alice_token()))["TLS.sig"]


MALFORMED_MESSAGES = {
    "empty": ("", "UserSig must be non-empty text"),
    "over the limit": ("A" * (MAX_USERSIG_CHARS + 4), "UserSig is longer than 16384 characters"),
    # exactly at the limit is allowed in: it fails later, on what it decodes to
    "at the limit": ("A" * MAX_USERSIG_CHARS, "UserSig is not a zlib stream"),
    "outside the alphabet": ("!!!!", "UserSig is not in the token's base64 alphabet"),
    "trailing data": (
        base64.b64encode(zlib.compress(b"{}") + b"extra")
        .decode()
        .translate(str.maketrans("+/=", "*-_")),
        "UserSig zlib stream is truncated or has trailing data",
    ),
    "bomb": (
        _encode(b'{"TLS.identifier": "' + b"a" * 10_000_000 + b'"}'),
        "UserSig inflates to more than 65536 bytes",
    ),
    "not JSON": (_encode(b"not json"), "UserSig does not contain a valid JSON object"),
    "not an object": (_encode(b"[1, 2]"), "UserSig does not contain a JSON object"),
    "duplicated field": (
        _encode(b'{"TLS.ver": "2.0", "TLS.ver": "2.0"}'),
        "UserSig field TLS.ver appears twice",
    ),
    "old version": (_with_field(TLS_ver="1.0"), "UserSig version must be '2.0'"),
    "missing field": (_with_field(TLS_time=None), "UserSig has no TLS.time field"),
    "wrong type": (
        _with_field(TLS_sdkappid="1400000000"),
        "UserSig field TLS.sdkappid must be int",
    ),
    "sig not base64": (_with_field(TLS_sig="%%%%"), "UserSig field TLS.sig is not base64"),
    "userbuf not base64": (
        _with_field(TLS_userbuf="%%%%"),
        "UserSig field TLS.userbuf is not base64",
    ),
}


@pytest.mark.parametrize("case", MALFORMED_MESSAGES, ids=list(MALFORMED_MESSAGES))
def test_malformed_token_message_names_the_check_that_failed(case: str) -> None:
    token, message = MALFORMED_MESSAGES[case]
    assert _message(token) == message


def test_a_character_outside_the_alphabet_is_never_skipped() -> None:
    # A lenient base64 decoder drops unknown characters: the token would still verify.
    token = _alice_token()
    assert _message(token[:20] + "!" + token[20:]) == (
        "UserSig is not in the token's base64 alphabet"
    )


def test_a_character_outside_base64_in_the_signature_is_never_skipped() -> None:
    # With a lenient decoder the signature would still match: strict decoding refuses it.
    sig = _genuine_sig()
    assert _message(_with_field(TLS_sig=sig[:8] + "!" + sig[8:])) == (
        "UserSig field TLS.sig is not base64"
    )


def test_bad_signature_message_says_the_key_does_not_match() -> None:
    with pytest.raises(UserSigError) as info:
        verify_usersig(_alice_token(), sdkappid=APP, key=KEY + "0", identifier="alice", now=T0)
    assert str(info.value) == "UserSig signature does not match the app's key"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"key": ""}, "key must be a non-empty string (the app's secret key)"),
        ({"expire_s": -1}, "expire_s must be a non-negative integer, got -1"),
        ({"sdkappid": True}, "sdkappid must be a non-negative integer, got True"),
        ({"sdkappid": 2**32}, "sdkappid must be at most 4294967295, got 4294967296"),
        ({"now": float("nan")}, "now must be a finite number of seconds, got nan"),
        ({"now": -1}, "now must be >= 0 seconds since the epoch, got -1"),
        ({"identifier": 42}, "identifier must be text, got int"),
        ({"identifier": "\ud800"}, "identifier must be encodable as UTF-8"),
    ],
)
def test_generate_names_the_argument_it_refuses(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as info:
        _alice_token(**overrides)
    assert str(info.value) == message


def test_wrong_app_and_wrong_identifier_messages_name_both_sides() -> None:
    token = _alice_token()
    with pytest.raises(UserSigError) as info:
        verify_usersig(token, sdkappid=APP + 1, key=KEY, identifier="alice", now=T0)
    assert str(info.value) == f"UserSig was issued for sdkappid {APP}, not {APP + 1}"
    with pytest.raises(UserSigError) as info:
        verify_usersig(token, sdkappid=APP, key=KEY, identifier="bob", now=T0)
    assert str(info.value) == "UserSig was issued for identifier 'alice', not 'bob'"


def test_the_largest_unsigned_32_bit_sdkappid_is_a_valid_app() -> None:
    largest = 2**32 - 1
    token = _alice_token(sdkappid=largest)
    verify_usersig(token, sdkappid=largest, key=KEY, identifier="alice", now=T0)

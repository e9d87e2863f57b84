"""The channel's security decisions (immodel.protocol.channel), pure functions."""

import hashlib

import pytest

from immodel.protocol.channel import (
    CHANNELS,
    SCREENING_ACTIONS,
    content_digest,
    handshake_outcome,
    screening_action,
    screening_outcome,
    session_allows,
    tamper_outcome,
)


def test_a_genuine_address_connects_on_either_channel():
    assert handshake_outcome("encrypted", hijacked=False) == "ok"
    assert handshake_outcome("plaintext", hijacked=False) == "ok"


def test_a_hijacked_address_fails_tls_identity_but_plaintext_talks_to_the_attacker():
    assert handshake_outcome("encrypted", hijacked=True) == "identity_failed"
    assert handshake_outcome("plaintext", hijacked=True) == "attacker"


def test_tampering_is_detected_only_on_the_encrypted_channel():
    assert tamper_outcome("encrypted") == "detected"
    assert tamper_outcome("plaintext") == "accepted"


def test_an_unknown_channel_is_a_wiring_error():
    allowed = ", ".join(CHANNELS)
    with pytest.raises(ValueError) as info:
        tamper_outcome("quic")
    assert str(info.value) == f"channel must be one of {allowed}, got 'quic'"
    with pytest.raises(ValueError) as info:
        handshake_outcome("tls13", hijacked=False)
    assert str(info.value) == f"channel must be one of {allowed}, got 'tls13'"


@pytest.mark.parametrize("kind", ["send", "ack", "poll", "sync"])
def test_every_frame_but_login_needs_a_session(kind):
    assert not session_allows(kind, has_session=False)
    assert session_allows(kind, has_session=True)
    assert session_allows("login", has_session=False)


def test_digest_is_the_top_63_bits_of_blake2b_of_id_and_version():
    # the trace's digest column is this number: its definition is part of the records
    def independent(msg_id: str, version: str) -> int:
        raw = hashlib.blake2b((msg_id + "\0" + version).encode("utf-8"), digest_size=8)
        return int(raw.hexdigest(), 16) // 2

    assert content_digest("u1-7") == independent("u1-7", "")
    assert content_digest("u1-7", "tampered") == independent("u1-7", "tampered")


def test_digest_is_stable_and_tells_versions_apart():
    d = content_digest("u1-7")
    assert d == content_digest("u1-7")
    assert 0 <= d < 2**63
    assert content_digest("u1-7", "tampered") != d
    assert content_digest("u1-7", "replaced") != d
    assert content_digest("u1-8") != d


@pytest.mark.parametrize("policy", sorted(SCREENING_ACTIONS))
def test_a_screening_pass_is_never_acted_on(policy):
    assert screening_action(policy, "pass") == ""


def test_a_screening_hit_follows_the_business_policy():
    assert screening_action("block", "block") == "blocked"
    assert screening_action("flag", "block") == "flagged"
    assert screening_action("replace", "block") == "replaced"
    assert screening_action("sender_only", "block") == "sender_only"


def test_only_a_blocked_hit_reaches_admission_as_a_block():
    # the policy's other actions deliver (or show to the sender) themselves: admission
    # must see "pass", else it would refuse what the policy lets through
    assert screening_outcome("block", "block") == ("blocked", "block")
    assert screening_outcome("flag", "block") == ("flagged", "pass")
    assert screening_outcome("replace", "block") == ("replaced", "pass")
    assert screening_outcome("sender_only", "block") == ("sender_only", "pass")
    for policy in sorted(SCREENING_ACTIONS):
        assert screening_outcome(policy, "pass") == ("", "pass")


def test_screening_rejects_unknown_policy_and_verdict():
    with pytest.raises(ValueError) as info:
        screening_action("ignore", "block")
    allowed = ", ".join(SCREENING_ACTIONS)
    assert str(info.value) == f"policy must be one of {allowed}, got 'ignore'"
    with pytest.raises(ValueError, match="verdict must be"):
        screening_action("block", "maybe")

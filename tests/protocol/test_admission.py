"""Server admission rules: one test per rule, each optional stage skipped when off."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from immodel.protocol.admission import (
    ACCEPTED,
    STAGES,
    AdmissionPolicy,
    Decision,
    MessageFacts,
    Reason,
    admit,
    authenticate,
)
from immodel.protocol.usersig import generate_usersig

APP = 1400000000
KEY = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e"
T0 = 1_700_000_000

ALL_ON = AdmissionPolicy(require_friendship=True, callback_enabled=True, screening_enabled=True)


def facts(**overrides: Any) -> MessageFacts:
    """A 1:1 message between friends that every stage would let through."""
    base: dict[str, Any] = {
        "sender_muted": False,
        "blacklisted_by_recipient": False,
        "are_friends": True,
        "is_group": False,
        "screening_verdict": "pass",
        "callback_verdict": "allow",
    }
    base.update(overrides)
    return MessageFacts(**base)


def rejected(reason: Reason) -> Decision:
    return Decision.reject(reason)


# --- stages and vocabulary ----------------------------------------------------------------


def test_stages_are_named_in_the_articles_order() -> None:
    assert STAGES == ("auth", "checks", "callback", "screening", "recent_contacts", "store")


def test_every_rejection_reason_belongs_to_a_deciding_stage() -> None:
    assert Reason.OK.stage is None
    for reason in Reason:
        if reason is not Reason.OK:
            assert reason.stage in STAGES[:4]


def test_reasons_compare_equal_to_their_wire_strings() -> None:
    assert Reason.MUTED == "muted"
    assert f"{Reason.CALLBACK_TIMEOUT}" == "callback_timeout"


def test_decision_accepted_exactly_when_reason_is_ok() -> None:
    assert ACCEPTED.accepted and ACCEPTED.reason is Reason.OK and ACCEPTED.stage is None
    assert rejected(Reason.MUTED).stage == "checks"
    with pytest.raises(ValueError) as info:
        Decision(accepted=True, reason=Reason.MUTED)
    assert str(info.value) == f"inconsistent decision: accepted=True, {Reason.MUTED!r}"
    with pytest.raises(ValueError) as info:
        Decision.reject(Reason.OK)
    assert str(info.value) == f"inconsistent decision: accepted=False, {Reason.OK!r}"


# --- auth -------------------------------------------------------------------------------------


def _token(**overrides: Any) -> str:
    args: dict[str, Any] = {
        "sdkappid": APP,
        "key": KEY,
        "identifier": "alice",
        "expire_s": 3600,
        "now": T0,
    }
    args.update(overrides)
    return generate_usersig(**args)


def _auth(token: str, **overrides: Any) -> Decision:
    args: dict[str, Any] = {"sdkappid": APP, "key": KEY, "identifier": "alice", "now": T0 + 1}
    args.update(overrides)
    return authenticate(token, **args)


def test_login_with_a_valid_usersig_is_accepted() -> None:
    assert _auth(_token()) == ACCEPTED


@pytest.mark.parametrize(
    ("token_overrides", "auth_overrides", "reason"),
    [
        ({}, {"key": "another key"}, Reason.AUTH_BAD_SIGNATURE),
        ({}, {"sdkappid": APP + 1}, Reason.AUTH_WRONG_APP),
        ({}, {"identifier": "bob"}, Reason.AUTH_WRONG_IDENTIFIER),
        ({}, {"now": T0 + 3601}, Reason.AUTH_EXPIRED),
    ],
    ids=["bad_signature", "wrong_app", "wrong_identifier", "expired"],
)
def test_login_failure_keeps_the_usersig_cause(
    token_overrides: dict[str, Any], auth_overrides: dict[str, Any], reason: Reason
) -> None:
    decision = _auth(_token(**token_overrides), **auth_overrides)
    assert decision == rejected(reason)
    assert decision.stage == "auth"


def test_login_with_garbage_usersig_is_auth_malformed() -> None:
    assert _auth("garbage") == rejected(Reason.AUTH_MALFORMED)


def test_login_against_an_empty_server_key_is_a_configuration_error() -> None:
    with pytest.raises(ValueError):
        _auth(_token(), key="")


# --- checks -----------------------------------------------------------------------------------


def test_message_passing_every_stage_is_accepted() -> None:
    assert admit(ALL_ON, facts()) == ACCEPTED


def test_muted_sender_is_rejected_in_1to1_and_group() -> None:
    assert admit(AdmissionPolicy(), facts(sender_muted=True)) == rejected(Reason.MUTED)
    assert admit(AdmissionPolicy(), facts(sender_muted=True, is_group=True)) == rejected(
        Reason.MUTED
    )


def test_sender_blacklisted_by_recipient_is_rejected() -> None:
    assert admit(AdmissionPolicy(), facts(blacklisted_by_recipient=True)) == rejected(
        Reason.BLACKLISTED
    )


def test_blacklist_does_not_apply_to_group_messages() -> None:
    assert admit(AdmissionPolicy(), facts(blacklisted_by_recipient=True, is_group=True)) == ACCEPTED


def test_non_friends_are_rejected_when_the_app_requires_friendship() -> None:
    policy = AdmissionPolicy(require_friendship=True)
    assert admit(policy, facts(are_friends=False)) == rejected(Reason.NOT_FRIENDS)


def test_friendship_check_is_skipped_when_not_required() -> None:
    assert admit(AdmissionPolicy(), facts(are_friends=False)) == ACCEPTED


def test_friendship_does_not_apply_to_group_messages() -> None:
    policy = AdmissionPolicy(require_friendship=True)
    assert admit(policy, facts(are_friends=False, is_group=True)) == ACCEPTED


def test_mute_is_checked_before_blacklist_and_blacklist_before_friendship() -> None:
    everything_wrong = facts(sender_muted=True, blacklisted_by_recipient=True, are_friends=False)
    assert admit(ALL_ON, everything_wrong).reason is Reason.MUTED
    not_muted = dataclasses.replace(everything_wrong, sender_muted=False)
    assert admit(ALL_ON, not_muted).reason is Reason.BLACKLISTED


# --- callback ---------------------------------------------------------------------------------


def test_callback_rejection_is_rejected() -> None:
    policy = AdmissionPolicy(callback_enabled=True)
    assert admit(policy, facts(callback_verdict="reject")) == rejected(Reason.CALLBACK_REJECTED)


def test_callback_allow_is_accepted() -> None:
    policy = AdmissionPolicy(callback_enabled=True)
    assert admit(policy, facts(callback_verdict="allow")) == ACCEPTED


def test_callback_timeout_is_allowed_by_default() -> None:
    policy = AdmissionPolicy(callback_enabled=True)
    assert policy.callback_timeout_default == "allow"
    assert admit(policy, facts(callback_verdict="timeout")) == ACCEPTED


def test_callback_timeout_is_rejected_when_the_default_is_reject() -> None:
    policy = AdmissionPolicy(callback_enabled=True, callback_timeout_default="reject")
    assert admit(policy, facts(callback_verdict="timeout")) == rejected(Reason.CALLBACK_TIMEOUT)


@pytest.mark.parametrize("verdict", ["reject", "timeout", None])
def test_callback_verdict_is_ignored_when_the_callback_is_off(verdict: str | None) -> None:
    policy = AdmissionPolicy(callback_timeout_default="reject")
    assert admit(policy, facts(callback_verdict=verdict)) == ACCEPTED


def test_enabled_callback_without_a_verdict_is_a_caller_bug() -> None:
    with pytest.raises(ValueError) as info:
        admit(AdmissionPolicy(callback_enabled=True), facts(callback_verdict=None))
    assert str(info.value) == (
        "the before-send callback is enabled but facts.callback_verdict is None"
    )


def test_checks_run_before_the_callback() -> None:
    policy = AdmissionPolicy(callback_enabled=True)
    assert admit(policy, facts(sender_muted=True, callback_verdict="reject")).reason is (
        Reason.MUTED
    )


# --- screening --------------------------------------------------------------------------------


def test_blocked_content_is_rejected() -> None:
    policy = AdmissionPolicy(screening_enabled=True)
    assert admit(policy, facts(screening_verdict="block")) == rejected(Reason.CONTENT_BLOCKED)


def test_content_passing_screening_is_accepted() -> None:
    policy = AdmissionPolicy(screening_enabled=True)
    assert admit(policy, facts(screening_verdict="pass")) == ACCEPTED


@pytest.mark.parametrize("verdict", ["block", None])
def test_screening_verdict_is_ignored_when_screening_is_off(verdict: str | None) -> None:
    assert admit(AdmissionPolicy(), facts(screening_verdict=verdict)) == ACCEPTED


def test_enabled_screening_without_a_verdict_is_a_caller_bug() -> None:
    with pytest.raises(ValueError) as info:
        admit(AdmissionPolicy(screening_enabled=True), facts(screening_verdict=None))
    assert str(info.value) == "screening is enabled but facts.screening_verdict is None"


def test_callback_runs_before_screening() -> None:
    both = facts(callback_verdict="reject", screening_verdict="block")
    assert admit(ALL_ON, both).reason is Reason.CALLBACK_REJECTED


def test_message_refused_by_checks_needs_no_later_verdicts() -> None:
    # The simulator does not run the callback or screening for a refused message.
    refused = facts(sender_muted=True, callback_verdict=None, screening_verdict=None)
    assert admit(ALL_ON, refused) == rejected(Reason.MUTED)


# --- validation -------------------------------------------------------------------------------


def test_policy_defaults_turn_every_optional_stage_off() -> None:
    policy = AdmissionPolicy()
    assert not (policy.require_friendship or policy.callback_enabled or policy.screening_enabled)


def test_policy_rejects_an_unknown_timeout_default() -> None:
    with pytest.raises(ValueError) as info:
        AdmissionPolicy(callback_timeout_default="maybe")  # type: ignore[arg-type]
    assert str(info.value) == "callback_timeout_default must be 'allow' or 'reject', got 'maybe'"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"screening_verdict": "allow"},
            "screening_verdict must be 'pass', 'block' or None, got 'allow'",
        ),
        (
            {"callback_verdict": "pass"},
            "callback_verdict must be 'allow', 'reject', 'timeout' or None, got 'pass'",
        ),
        (
            {"callback_verdict": ""},
            "callback_verdict must be 'allow', 'reject', 'timeout' or None, got ''",
        ),
    ],
)
def test_facts_reject_unknown_verdicts_naming_the_field(
    overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError) as info:
        facts(**overrides)
    assert str(info.value) == message


def test_policy_and_facts_are_immutable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        AdmissionPolicy().callback_enabled = True  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        facts().sender_muted = True  # type: ignore[misc]


# --- property: the rules as a whole ----------------------------------------------------------


@given(
    require_friendship=st.booleans(),
    callback_enabled=st.booleans(),
    timeout_default=st.sampled_from(["allow", "reject"]),
    screening_enabled=st.booleans(),
    muted=st.booleans(),
    blacklisted=st.booleans(),
    friends=st.booleans(),
    group=st.booleans(),
    screening=st.sampled_from(["pass", "block"]),
    callback=st.sampled_from(["allow", "reject", "timeout"]),
)
def test_admit_matches_the_rule_table(
    require_friendship: bool,
    callback_enabled: bool,
    timeout_default: Any,
    screening_enabled: bool,
    muted: bool,
    blacklisted: bool,
    friends: bool,
    group: bool,
    screening: Any,
    callback: Any,
) -> None:
    policy = AdmissionPolicy(
        require_friendship=require_friendship,
        callback_enabled=callback_enabled,
        callback_timeout_default=timeout_default,
        screening_enabled=screening_enabled,
    )
    message = MessageFacts(
        sender_muted=muted,
        blacklisted_by_recipient=blacklisted,
        are_friends=friends,
        is_group=group,
        screening_verdict=screening,
        callback_verdict=callback,
    )
    # The module docstring's rule list, restated as a table: first matching row wins.
    rows = [
        (muted, Reason.MUTED),
        (blacklisted and not group, Reason.BLACKLISTED),
        (require_friendship and not friends and not group, Reason.NOT_FRIENDS),
        (callback_enabled and callback == "reject", Reason.CALLBACK_REJECTED),
        (
            callback_enabled and callback == "timeout" and timeout_default == "reject",
            Reason.CALLBACK_TIMEOUT,
        ),
        (screening_enabled and screening == "block", Reason.CONTENT_BLOCKED),
    ]
    expected = next((reason for hit, reason in rows if hit), Reason.OK)
    decision = admit(policy, message)
    assert decision.reason is expected
    assert decision.accepted == (expected is Reason.OK)

"""UplinkSender: unique id, retry until the server replies, give up visibly."""

from __future__ import annotations

import pytest

from immodel.protocol import (
    RetryPolicy,
    SendFailed,
    SendReply,
    SendSucceeded,
    Transmit,
    UplinkSender,
)


def submit(sender: UplinkSender, now: float = 0.0, conversation: str = "A|B"):
    return sender.submit(conversation=conversation, is_group=False, now=now)


def test_submit_names_messages_from_client_id_and_a_counter() -> None:
    sender = UplinkSender("A")
    first, _ = submit(sender)
    second, _ = sender.submit(conversation="G", is_group=True, now=0.0, payload_bytes=40)
    assert (first.msg_id, second.msg_id) == ("A-1", "A-2")
    assert (second.sender, second.conversation, second.is_group) == ("A", "G", True)
    assert second.payload_bytes == 40


def test_first_transmit_is_attempt_one_and_deadline_is_now_plus_timeout() -> None:
    sender = UplinkSender("A", RetryPolicy(timeout_s=3.0))
    message, actions = submit(sender, now=10.0)
    assert actions == [Transmit(message, 1)]
    assert sender.next_deadline() == 13.0
    assert sender.in_flight == 1


def test_nothing_in_flight_means_no_deadline() -> None:
    assert UplinkSender("A").next_deadline() is None


def test_no_retry_before_the_deadline() -> None:
    sender = UplinkSender("A", RetryPolicy(timeout_s=5.0))
    submit(sender, now=0.0)
    assert sender.handle_timeout(4.999) == []


def test_retry_keeps_the_same_message_id() -> None:
    sender = UplinkSender("A", RetryPolicy(timeout_s=5.0, max_attempts=3))
    message, _ = submit(sender)
    second = sender.handle_timeout(5.0)
    third = sender.handle_timeout(10.0)
    assert second == [Transmit(message, 2)]
    assert third == [Transmit(message, 3)]


def test_constant_timeout_without_backoff() -> None:
    sender = UplinkSender("A", RetryPolicy(timeout_s=5.0, backoff=1.0))
    submit(sender)
    sender.handle_timeout(5.0)
    assert sender.next_deadline() == 10.0


def test_backoff_multiplies_the_timeout_after_each_attempt() -> None:
    sender = UplinkSender("A", RetryPolicy(timeout_s=1.0, backoff=2.0, max_attempts=4))
    submit(sender)
    deadlines = []
    now = 1.0
    for _ in range(3):
        sender.handle_timeout(now)
        now = sender.next_deadline()
        deadlines.append(now)
    assert deadlines == [3.0, 7.0, 15.0]


def test_gives_up_visibly_after_max_attempts() -> None:
    sender = UplinkSender("A", RetryPolicy(timeout_s=5.0, max_attempts=2))
    message, _ = submit(sender)
    sender.handle_timeout(5.0)
    assert sender.handle_timeout(10.0) == [SendFailed(message.msg_id, "timeout", 2)]
    assert sender.in_flight == 0
    assert sender.next_deadline() is None


def test_retry_disabled_means_exactly_one_attempt() -> None:
    policy = RetryPolicy(enabled=False, max_attempts=5)
    sender = UplinkSender("A", policy)
    message, _ = submit(sender)
    assert policy.attempts_allowed == 1
    assert sender.handle_timeout(5.0) == [SendFailed(message.msg_id, "timeout", 1)]


def test_accepted_reply_reports_success_with_key_and_attempts() -> None:
    sender = UplinkSender("A")
    message, _ = submit(sender)
    sender.handle_timeout(5.0)
    actions = sender.handle_reply(SendReply(message.msg_id, True, 1234), 6.0)
    assert actions == [SendSucceeded(message.msg_id, 1234, 2)]
    assert sender.in_flight == 0


def test_late_reply_after_success_is_ignored() -> None:
    sender = UplinkSender("A")
    message, _ = submit(sender)
    reply = SendReply(message.msg_id, True, 7)
    sender.handle_reply(reply, 1.0)
    assert sender.handle_reply(reply, 2.0) == []  # the answer to the retransmission


def test_reply_after_giving_up_is_ignored() -> None:
    sender = UplinkSender("A", RetryPolicy(max_attempts=1))
    message, _ = submit(sender)
    sender.handle_timeout(5.0)
    assert sender.handle_reply(SendReply(message.msg_id, True, 7), 6.0) == []


def test_final_rejection_fails_with_the_servers_reason() -> None:
    sender = UplinkSender("A")
    message, _ = submit(sender)
    actions = sender.handle_reply(SendReply(message.msg_id, False, None, "muted"), 1.0)
    assert actions == [SendFailed(message.msg_id, "muted", 1)]
    assert sender.handle_timeout(100.0) == []


def test_retryable_rejection_is_never_success_and_retries_at_the_deadline() -> None:
    sender = UplinkSender("A", RetryPolicy(timeout_s=5.0))
    message, _ = submit(sender)
    reply = SendReply(message.msg_id, False, None, "store_failed", retryable=True)
    assert sender.handle_reply(reply, 1.0) == []
    assert sender.in_flight == 1
    assert sender.handle_timeout(5.0) == [Transmit(message, 2)]


def test_retryable_rejection_of_the_last_attempt_fails_visibly() -> None:
    sender = UplinkSender("A", RetryPolicy(max_attempts=2))
    message, _ = submit(sender)
    sender.handle_timeout(5.0)
    reply = SendReply(message.msg_id, False, None, "store_failed", retryable=True)
    assert sender.handle_reply(reply, 6.0) == [SendFailed(message.msg_id, "store_failed", 2)]


def test_timeout_only_touches_overdue_messages() -> None:
    sender = UplinkSender("A", RetryPolicy(timeout_s=5.0))
    early, _ = submit(sender, now=0.0)
    late, _ = submit(sender, now=3.0)
    assert sender.handle_timeout(5.0) == [Transmit(early, 2)]
    assert sender.next_deadline() == 8.0
    assert sender.handle_timeout(8.0) == [Transmit(late, 2)]


def test_forget_drops_and_returns_unanswered_messages() -> None:
    sender = UplinkSender("A")
    answered, _ = submit(sender)
    waiting, _ = submit(sender)
    sender.handle_reply(SendReply(answered.msg_id, True, 1), 1.0)
    assert sender.forget() == [waiting]
    assert sender.in_flight == 0
    assert sender.handle_timeout(100.0) == []


@pytest.mark.parametrize("enabled, expected", [(True, 5), (False, 1)])
def test_attempts_allowed_follows_the_switch(enabled: bool, expected: int) -> None:
    assert RetryPolicy(enabled=enabled, max_attempts=5).attempts_allowed == expected

"""The sender spends no attempts while its client is not connected."""

from __future__ import annotations

from immodel.protocol import RetryPolicy, SendFailed, Transmit, UplinkSender


def transmits(actions):
    return [(a.message.msg_id, a.attempt) for a in actions if isinstance(a, Transmit)]


def test_a_message_submitted_while_disconnected_waits_and_goes_out_on_connect() -> None:
    s = UplinkSender("A", RetryPolicy(timeout_s=5.0, max_attempts=2))
    s.handle_disconnect(0.0)
    msg, actions = s.submit(conversation="A|B", is_group=False, now=0.0)
    assert actions == [] and s.next_deadline() is None
    assert s.handle_timeout(1000.0) == []  # no deadline runs while disconnected
    assert transmits(s.handle_connected(1000.0)) == [(msg.msg_id, 1)]
    assert s.next_deadline() == 1005.0


def test_the_attempt_that_died_with_the_connection_is_not_charged() -> None:
    s = UplinkSender("A", RetryPolicy(timeout_s=5.0, max_attempts=2))
    msg, _ = s.submit(conversation="A|B", is_group=False, now=0.0)
    assert transmits(s.handle_timeout(5.0)) == [(msg.msg_id, 2)]  # second of two attempts
    s.handle_disconnect(6.0)  # the second attempt dies with the connection
    again = s.handle_connected(50.0)
    assert transmits(again) == [(msg.msg_id, 3)]  # a third transmission, still allowed
    failed = s.handle_timeout(55.0)  # this one timed out on a live connection: budget spent
    assert [a.reason for a in failed if isinstance(a, SendFailed)] == ["timeout"]


def test_reconnects_never_exhaust_the_retry_budget() -> None:
    s = UplinkSender("A", RetryPolicy(timeout_s=5.0, max_attempts=1))
    msg, _ = s.submit(conversation="A|B", is_group=False, now=0.0)
    for k in range(10):  # ten connections die under the one attempt allowed
        s.handle_disconnect(1.0 + 10 * k)
        assert transmits(s.handle_connected(2.0 + 10 * k)) == [(msg.msg_id, k + 2)]
    assert s.in_flight == 1


def test_after_a_reconnect_only_the_resent_attempt_is_charged() -> None:
    # three attempts allowed: the first dies with its connection and is not charged, so
    # the resend on the new connection is attempt one of three and two retries follow
    s = UplinkSender("A", RetryPolicy(timeout_s=5.0, max_attempts=3, backoff=1.0))
    msg, _ = s.submit(conversation="A|B", is_group=False, now=0.0)
    s.handle_disconnect(1.0)
    assert transmits(s.handle_connected(2.0)) == [(msg.msg_id, 2)]
    assert transmits(s.handle_timeout(7.0)) == [(msg.msg_id, 3)]
    assert transmits(s.handle_timeout(12.0)) == [(msg.msg_id, 4)]
    failed = s.handle_timeout(17.0)
    assert [(a.reason, a.attempts) for a in failed if isinstance(a, SendFailed)] == [("timeout", 4)]


def test_one_message_giving_up_does_not_hold_back_the_others_due_at_the_same_time() -> None:
    s = UplinkSender("A", RetryPolicy(timeout_s=5.0, max_attempts=2))
    first, _ = s.submit(conversation="A|B", is_group=False, now=0.0)
    s.handle_timeout(5.0)  # first: second attempt
    second, _ = s.submit(conversation="A|C", is_group=False, now=5.0)
    actions = s.handle_timeout(10.0)  # both due: first gives up, second retries
    assert [a.msg_id for a in actions if isinstance(a, SendFailed)] == [first.msg_id]
    assert transmits(actions) == [(second.msg_id, 2)]

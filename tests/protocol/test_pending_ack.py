"""PendingAcks: keep every downlink message until ACKed, retransmit on timeout."""

from __future__ import annotations

from immodel.protocol import Deliver, Message, PendingAcks, Stored


def item(n: int, conversation: str = "A|B") -> Stored:
    return Stored(Message(f"A-{n}", "A", conversation, False), 1000 + n)


M1, M2, M3 = item(1), item(2), item(3)


def test_push_sends_attempt_one_and_sets_a_retransmit_deadline() -> None:
    pending = PendingAcks(ack_timeout_s=5.0)
    assert pending.push("B", M1, 10.0) == [Deliver("B", M1, 1)]
    assert pending.next_deadline() == 15.0
    assert pending.waiting("B") == 1


def test_nothing_pending_means_no_deadline_and_no_retransmit() -> None:
    pending = PendingAcks()
    assert pending.next_deadline() is None
    assert pending.handle_timeout(100.0) == []


def test_pending_entry_retransmits_until_acked() -> None:
    pending = PendingAcks(ack_timeout_s=5.0)
    pending.push("B", M1, 0.0)
    assert pending.handle_timeout(4.9) == []
    assert pending.handle_timeout(5.0) == [Deliver("B", M1, 2)]
    assert pending.handle_timeout(10.0) == [Deliver("B", M1, 3)]
    assert pending.handle_ack("B", ["A-1"]) == 1
    assert pending.handle_timeout(100.0) == []
    assert pending.next_deadline() is None
    assert len(pending) == 0


def test_timeout_is_constant_from_the_last_send() -> None:
    pending = PendingAcks(ack_timeout_s=5.0)
    pending.push("B", M1, 0.0)
    pending.handle_timeout(7.0)  # late call: the next deadline counts from now
    assert pending.next_deadline() == 12.0


def test_ack_removes_only_the_ids_it_names() -> None:
    pending = PendingAcks()
    pending.push("B", M1, 0.0)
    pending.push("B", M2, 0.0)
    pending.push("C", M1, 0.0)
    assert pending.handle_ack("B", ["A-1", "A-9"]) == 1
    assert pending.waiting("B") == 1
    assert pending.waiting("C") == 1
    assert pending.handle_timeout(5.0) == [Deliver("B", M2, 2), Deliver("C", M1, 2)]


def test_ack_from_a_user_with_nothing_pending_removes_nothing() -> None:
    assert PendingAcks().handle_ack("B", ["A-1"]) == 0


def test_pushing_a_waiting_message_again_reschedules_it_once() -> None:
    pending = PendingAcks(ack_timeout_s=5.0)
    pending.push("B", M1, 0.0)
    assert pending.push("B", M1, 3.0) == [Deliver("B", M1, 2)]
    assert pending.next_deadline() == 8.0  # the row for 5.0 is stale
    assert pending.handle_timeout(5.0) == []
    assert pending.handle_timeout(8.0) == [Deliver("B", M1, 3)]


def test_next_deadline_skips_acked_entries() -> None:
    pending = PendingAcks(ack_timeout_s=5.0)
    pending.push("B", M1, 0.0)
    pending.push("B", M2, 1.0)
    pending.handle_ack("B", ["A-1"])
    assert pending.next_deadline() == 6.0


def test_disabled_queue_forgets_a_pushed_message_once_sent() -> None:
    pending = PendingAcks(enabled=False)
    assert pending.push("B", M1, 0.0) == [Deliver("B", M1, 1)]
    assert len(pending) == 0
    assert pending.next_deadline() is None
    assert pending.handle_timeout(100.0) == []


def test_poll_outbox_keeps_messages_until_acked() -> None:
    pending = PendingAcks()
    pending.enqueue("B", M1)
    pending.enqueue("B", M1)  # a second hand-over of the same message is one entry
    assert pending.take_for_poll("B", 10) == [Deliver("B", M1, 1)]
    assert pending.take_for_poll("B", 10) == [Deliver("B", M1, 2)]  # the response was lost
    pending.handle_ack("B", ["A-1"])
    assert pending.take_for_poll("B", 10) == []


def test_poll_takes_the_oldest_messages_up_to_the_limit() -> None:
    pending = PendingAcks()
    for m in (M1, M2, M3):
        pending.enqueue("B", m)
    assert [d.item for d in pending.take_for_poll("B", 2)] == [M1, M2]


def test_poll_outbox_has_no_timer() -> None:
    pending = PendingAcks()
    pending.enqueue("B", M1)
    assert pending.next_deadline() is None


def test_disabled_queue_forgets_a_polled_message_once_handed_to_a_response() -> None:
    pending = PendingAcks(enabled=False)
    pending.enqueue("B", M1)
    pending.enqueue("B", M2)
    assert [d.item for d in pending.take_for_poll("B", 1)] == [M1]
    assert [d.item for d in pending.take_for_poll("B", 5)] == [M2]
    assert pending.take_for_poll("B", 5) == []
    assert len(pending) == 0


def test_drain_hands_back_what_was_never_acknowledged() -> None:
    pending = PendingAcks()
    pending.push("B", M1, 0.0)
    pending.push("B", M2, 0.0)
    pending.handle_ack("B", ["A-1"])
    assert pending.drain("B") == [M2]
    assert pending.drain("B") == []
    assert pending.handle_timeout(100.0) == []  # no retransmit to a user who left


def test_crash_clear_loses_every_entry_and_says_how_many() -> None:
    pending = PendingAcks()
    pending.push("B", M1, 0.0)
    pending.push("C", M1, 0.0)
    pending.enqueue("D", M2)
    assert pending.clear() == 3
    assert len(pending) == 0
    assert pending.next_deadline() is None
    assert pending.handle_timeout(100.0) == []


def _three_pushed_to_b() -> PendingAcks:
    pending = PendingAcks(ack_timeout_s=5.0)
    for m in (M1, M2, M3):
        pending.push("B", m, 0.0)
    return pending


def test_acking_the_middle_push_keeps_the_oldest_and_newest_and_retransmits_only_them() -> None:
    pending = _three_pushed_to_b()
    assert pending.handle_ack("B", ["A-2"]) == 1
    assert pending.drain("B") == [M1, M3]
    pending = _three_pushed_to_b()
    pending.handle_ack("B", ["A-2"])
    assert pending.handle_timeout(5.0) == [Deliver("B", M1, 2), Deliver("B", M3, 2)]
    assert pending.handle_ack("B", ["A-1", "A-3"]) == 2
    assert pending.handle_timeout(100.0) == []


def test_acking_the_newest_push_keeps_the_two_older_ones() -> None:
    pending = _three_pushed_to_b()
    assert pending.handle_ack("B", ["A-3"]) == 1
    assert pending.waiting("B") == 2
    assert pending.handle_timeout(5.0) == [Deliver("B", M1, 2), Deliver("B", M2, 2)]
    assert pending.drain("B") == [M1, M2]


def test_acking_out_of_order_leaves_the_deadline_of_the_oldest_survivor() -> None:
    pending = PendingAcks(ack_timeout_s=5.0)
    pending.push("B", M1, 0.0)
    pending.push("B", M2, 1.0)
    pending.push("B", M3, 2.0)
    pending.handle_ack("B", ["A-1", "A-3"])
    assert pending.next_deadline() == 6.0  # M2's, not M1's (acked) nor M3's
    assert pending.handle_timeout(6.9) == [Deliver("B", M2, 2)]
    assert pending.handle_timeout(7.5) == []  # M3 was acked: no retransmit at 7.0


def test_acking_a_middle_outbox_entry_lets_the_next_poll_take_the_others() -> None:
    pending = PendingAcks()
    for m in (M1, M2, M3):
        pending.enqueue("B", m)
    assert [d.item for d in pending.take_for_poll("B", 3)] == [M1, M2, M3]
    assert pending.handle_ack("B", ["A-2"]) == 1
    # The response's other two messages are taken again (their ACK is still missing).
    assert pending.take_for_poll("B", 3) == [Deliver("B", M1, 2), Deliver("B", M3, 2)]
    assert pending.handle_ack("B", ["A-3"]) == 1
    assert pending.take_for_poll("B", 3) == [Deliver("B", M1, 3)]


def test_acking_the_newest_outbox_entry_keeps_the_older_ones_first_in_line() -> None:
    pending = PendingAcks()
    for m in (M1, M2, M3):
        pending.enqueue("B", m)
    pending.take_for_poll("B", 3)
    pending.handle_ack("B", ["A-3"])
    assert [d.item for d in pending.take_for_poll("B", 1)] == [M1]
    assert pending.drain("B") == [M1, M2]


def test_an_ack_of_one_recipient_never_removes_another_recipients_entry() -> None:
    pending = PendingAcks(ack_timeout_s=5.0)
    pending.push("B", M2, 0.0)
    pending.push("C", M2, 0.0)
    pending.push("C", M3, 0.0)
    assert pending.handle_ack("C", ["A-2"]) == 1
    assert pending.handle_timeout(5.0) == [Deliver("B", M2, 2), Deliver("C", M3, 2)]

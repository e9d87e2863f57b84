"""Receiver: ACK every copy, client dedup, group seq gaps, cursor sync."""

from __future__ import annotations

from typing import Any

from immodel.protocol import (
    Message,
    Receiver,
    SendAck,
    Show,
    StartSync,
    Stored,
    SyncRequest,
    SyncResponse,
)


def one(n: int, key: int, sender: str = "A") -> Stored:
    return Stored(Message(f"{sender}-{n}", sender, "A|B", False), key)


def grp(seq: int, sender: str = "A", msg_id: str | None = None) -> Stored:
    return Stored(Message(msg_id or f"{sender}-g{seq}", sender, "G", True), seq)


def shows(actions: list[Any]) -> list[str]:
    return [a.item.msg_id for a in actions if isinstance(a, Show)]


def syncs(actions: list[Any]) -> list[SyncRequest]:
    return [a.request for a in actions if isinstance(a, StartSync)]


def page(*items: Stored, complete: bool = True) -> SyncResponse:
    return SyncResponse("B", items, complete)


def answered(receiver: Receiver, *items: Stored, now: float = 0.0, complete: bool = True):
    """Answer the sync in flight with a page of ``items``."""
    assert receiver.syncing
    return receiver.handle_sync_response(page(*items, complete=complete), now)


# -- ACK ------------------------------------------------------------------------------------


def test_every_copy_is_acked_even_a_duplicate() -> None:
    b = Receiver("B", sync_enabled=False)
    m = one(1, 100)
    assert b.handle_push(m, 0.0)[0] == SendAck(("A-1",))
    assert b.handle_push(m, 1.0) == [SendAck(("A-1",))]  # the first ACK may have been lost


def test_ack_off_sends_no_ack() -> None:
    b = Receiver("B", ack=False, sync_enabled=False)
    assert b.handle_push(one(1, 100), 0.0) == [Show(one(1, 100), "push")]


def test_own_message_is_acked_but_never_shown() -> None:
    b = Receiver("B")
    assert b.handle_push(one(1, 100, sender="B"), 0.0) == [SendAck(("B-1",))]


# -- 1:1 ------------------------------------------------------------------------------------


def test_one_to_one_push_is_shown_at_once_and_triggers_a_sync() -> None:
    b = Receiver("B", sync_limit=7)
    actions = b.handle_push(one(1, 100), 0.0)
    assert shows(actions) == ["A-1"]
    # the pushed copy is named as held, so the page will not carry it down again
    assert syncs(actions) == [SyncRequest("B", (), 7, (), (("A|B", "A-1"),))]
    # what that sync repairs is credited to the receipt
    repaired = [(a.item.msg_id, a.trigger) for a in answered(b, one(0, 50)) if isinstance(a, Show)]
    assert repaired == [("A-0", "receipt")]


def test_one_to_one_cursor_moves_only_when_a_sync_page_is_merged() -> None:
    b = Receiver("B")
    b.handle_push(one(1, 100), 0.0)
    assert b.cursor("A|B") == 0
    answered(b, one(1, 100))
    assert b.cursor("A|B") == 100


def test_sync_fills_in_what_a_failed_retransmission_lost() -> None:
    b = Receiver("B")
    b.handle_push(one(2, 200), 0.0)  # A-1 (key 100) was lost with a crashed node
    assert shows(answered(b, one(1, 100), one(2, 200))) == ["A-1"]
    assert b.cursor("A|B") == 200


def test_sync_merge_skips_own_and_shown_messages_but_moves_the_cursor_over_them() -> None:
    b = Receiver("B")
    b.handle_push(one(1, 100), 0.0)
    actions = answered(b, one(1, 100), one(1, 150, sender="B"), one(2, 200))
    assert shows(actions) == ["A-2"]
    assert [a.via for a in actions if isinstance(a, Show)] == ["sync"]
    assert b.cursor("A|B") == 200


def test_a_stale_page_never_moves_a_cursor_back() -> None:
    b = Receiver("B")
    b.request_sync(0.0)
    answered(b, one(2, 200))
    b.request_sync(1.0)
    answered(b, one(1, 100))
    assert b.cursor("A|B") == 200


def test_a_page_repeating_a_merged_message_still_merges_the_new_ones_after_it() -> None:
    # A late answer cut later than the page merged first: A-1 again, then A-2.
    b = Receiver("B")
    b.request_sync(0.0)
    answered(b, one(1, 100))
    b.request_sync(1.0)
    assert shows(answered(b, one(1, 100), one(2, 200), now=1.5)) == ["A-2"]
    assert b.cursor("A|B") == 200


def test_every_id_merged_at_the_cursor_key_is_named_in_the_next_request() -> None:
    # Two nodes stamped the same millisecond: both ids at the top key are named, so the
    # next page (which starts at that key) leaves both out.
    b = Receiver("B")
    b.request_sync(0.0)
    answered(b, one(1, 100), one(2, 200), one(3, 200))
    (request,) = syncs(b.request_sync(1.0))
    assert request.cursors == (("A|B", 200),)
    assert request.merged_at_cursor == (("A|B", "A-2"), ("A|B", "A-3"))


def test_a_later_page_adding_an_id_at_the_cursor_key_keeps_the_ids_merged_there() -> None:
    # A-2 was merged at key 200; another node's A-3, stamped in the same millisecond,
    # comes in a later page: both are named, so neither comes down again.
    b = Receiver("B")
    b.request_sync(0.0)
    answered(b, one(2, 200))
    b.request_sync(1.0)
    assert shows(answered(b, one(3, 200), now=1.5)) == ["A-3"]
    (request,) = syncs(b.request_sync(2.0))
    assert request.cursors == (("A|B", 200),)
    assert request.merged_at_cursor == (("A|B", "A-2"), ("A|B", "A-3"))


def test_a_message_stamped_in_the_first_millisecond_moves_the_cursor() -> None:
    b = Receiver("B")
    b.request_sync(0.0)
    answered(b, one(1, 1))  # the stamper's smallest key
    assert b.cursor("A|B") == 1
    assert syncs(b.request_sync(1.0))[0].merged_at_cursor == (("A|B", "A-1"),)


def test_the_ids_merged_at_the_cursor_are_named_in_one_order_whatever_the_merge_order() -> None:
    # Ids are opaque (ints here): the request must not depend on the order in which a
    # set happens to hold them, so the same merged state always gives the same request.
    def merged(*ids: int) -> SyncRequest:
        b = Receiver("B")
        b.request_sync(0.0)
        answered(b, *(Stored(Message(i, "A", "A|B", False), 100) for i in ids))
        return syncs(b.request_sync(1.0))[0]

    assert merged(1, 9) == merged(9, 1)
    assert merged(1, 9).merged_at_cursor == (("A|B", 1), ("A|B", 9))


def test_a_late_duplicate_page_shows_nothing_again_even_after_the_dedup_window() -> None:
    # A repeated sync gets two answers; the late one is taken as the answer to the next
    # sync. The ids merged at the cursor key, not the shown-ids window (1 s here), say
    # that its message was merged already.
    b = Receiver("B", dedup_window_s=1.0, sync_timeout_s=10.0)
    b.request_sync(0.0)
    b.handle_timeout(10.0)  # repeated: two answers may come
    assert shows(answered(b, one(1, 100), now=10.5)) == ["A-1"]
    b.request_sync(12.0, "receipt")
    assert shows(answered(b, one(1, 100), now=12.5)) == []  # the repeat's late answer
    assert b.cursor("A|B") == 100


def test_client_dedup_drops_a_retransmitted_copy() -> None:
    b = Receiver("B", sync_enabled=False)
    b.handle_push(one(1, 100), 0.0)
    assert shows(b.handle_push(one(1, 100), 5.0)) == []


def test_client_dedup_off_shows_retransmitted_copy_again() -> None:
    b = Receiver("B", dedup=False, sync_enabled=False)
    b.handle_push(one(1, 100), 0.0)
    assert shows(b.handle_push(one(1, 100), 5.0)) == ["A-1"]


def test_client_dedup_forgets_an_id_after_its_window() -> None:
    b = Receiver("B", sync_enabled=False, dedup_window_s=60.0)
    b.handle_push(one(1, 100), 0.0)
    b.handle_push(one(2, 200), 30.0)
    assert shows(b.handle_push(one(1, 100), 59.9)) == []
    assert shows(b.handle_push(one(1, 100), 60.0)) == ["A-1"]  # the window expired
    assert shows(b.handle_push(one(2, 200), 60.0)) == []


def test_sync_merge_checks_shown_ids_even_with_client_dedup_off() -> None:
    b = Receiver("B", dedup=False)
    b.handle_push(one(1, 100), 0.0)
    assert shows(answered(b, one(1, 100))) == []


# -- groups ---------------------------------------------------------------------------------


def test_group_copies_in_seq_order_are_shown_at_once_without_a_sync() -> None:
    b = Receiver("B")
    assert [a for a in b.handle_push(grp(1), 0.0) if isinstance(a, Show)] == [
        Show(grp(1), "push", "")  # a push is no sync repair: no trigger
    ]
    actions = b.handle_push(grp(2), 0.0)
    assert shows(actions) == ["A-g2"]
    assert syncs(actions) == []
    assert b.cursor("G") == 2


def test_group_gap_is_held_back_and_triggers_sync() -> None:
    b = Receiver("B")
    actions = b.handle_push(grp(2), 0.0)
    assert shows(actions) == []
    assert syncs(actions) == [SyncRequest("B", (), 100)]
    assert b.held("G") == 1
    assert b.cursor("G") == 0


def test_a_held_copy_is_released_in_seq_order_when_the_gap_fills() -> None:
    b = Receiver("B")
    b.handle_push(grp(3), 0.0)
    b.handle_push(grp(2), 0.0)
    assert shows(b.handle_push(grp(1), 0.0)) == ["A-g1", "A-g2", "A-g3"]
    assert b.held("G") == 0
    assert b.cursor("G") == 3


def test_a_copy_behind_a_second_gap_stays_held_when_the_first_gap_fills() -> None:
    b = Receiver("B")
    for seq in (3, 5, 1):
        b.handle_push(grp(seq), 0.0)
    assert shows(b.handle_push(grp(2), 0.1)) == ["A-g2", "A-g3"]
    assert (b.cursor("G"), b.held("G")) == (3, 1)  # seq 5 waits for seq 4
    assert shows(b.handle_push(grp(4), 0.2)) == ["A-g4", "A-g5"]
    assert (b.cursor("G"), b.held("G")) == (5, 0)


def test_a_second_copy_of_a_held_message_is_held_once() -> None:
    b = Receiver("B")
    b.handle_push(grp(2), 0.0)
    b.handle_push(grp(2), 1.0)
    assert b.held("G") == 1
    assert shows(b.handle_push(grp(1), 2.0)) == ["A-g1", "A-g2"]


def test_sync_page_fills_the_gap_and_releases_held_copies() -> None:
    b = Receiver("B")
    b.handle_push(grp(3), 0.0)
    actions = answered(b, grp(1), grp(2), grp(3))
    assert shows(actions) == ["A-g1", "A-g2", "A-g3"]
    assert syncs(actions) == []


def test_push_during_sync_never_moves_cursor_past_gap() -> None:
    b = Receiver("B")
    b.handle_push(grp(2), 0.0)  # gap at 1: sync in flight
    actions = b.handle_push(grp(4), 1.0)  # overtakes the sync: another gap
    assert shows(actions) == []
    assert syncs(actions) == []  # coalesced with the sync in flight
    assert b.cursor("G") == 0
    actions = answered(b, grp(1), grp(2), now=2.0)  # the page was cut before seq 3
    assert shows(actions) == ["A-g1", "A-g2"]
    assert b.cursor("G") == 2  # not past the gap at 3
    assert syncs(actions) == [SyncRequest("B", (("G", 2),), 100)]  # asks again
    assert shows(answered(b, grp(3), grp(4), now=3.0)) == ["A-g3", "A-g4"]


def test_own_group_messages_in_a_page_count_for_contiguity_but_are_not_shown() -> None:
    b = Receiver("B")
    b.handle_push(grp(2), 0.0)
    assert shows(answered(b, grp(1, sender="B"), grp(2))) == ["A-g2"]
    assert b.cursor("G") == 2


def test_own_group_message_behind_a_gap_is_remembered_without_showing() -> None:
    b = Receiver("B")
    b.request_sync(0.0)
    answered(b, grp(2, sender="B"))  # no store cuts such a page; it pins the rule
    assert b.held("G") == 1
    assert shows(b.handle_push(grp(1), 1.0)) == ["A-g1"]
    assert b.cursor("G") == 2


def test_group_copy_below_the_cursor_is_dropped_with_client_dedup() -> None:
    b = Receiver("B")
    b.handle_push(grp(1), 0.0)
    assert shows(b.handle_push(grp(1), 5.0)) == []


def test_client_dedup_off_shows_a_retransmitted_group_copy_again() -> None:
    b = Receiver("B", dedup=False)
    b.handle_push(grp(1), 0.0)
    again = [a for a in b.handle_push(grp(1), 5.0) if isinstance(a, Show)]
    assert again == [Show(grp(1), "push", "")]


def test_group_message_stored_twice_is_shown_once_and_its_second_seq_is_no_gap() -> None:
    # the dedup window forgot a retry: the same message id under seq 1 and seq 2
    b = Receiver("B")
    b.handle_push(grp(1, msg_id="A-1"), 0.0)
    assert shows(b.handle_push(grp(2, msg_id="A-1"), 1.0)) == []
    assert b.cursor("G") == 2
    actions = b.handle_push(grp(3), 2.0)
    assert shows(actions) == ["A-g3"]
    assert syncs(actions) == []


def test_sync_merge_of_a_group_message_stored_twice_shows_it_once() -> None:
    b = Receiver("B", dedup=False)
    b.handle_push(grp(1, msg_id="A-1"), 0.0)
    b.handle_push(grp(3), 1.0)
    assert shows(answered(b, grp(1, msg_id="A-1"), grp(2, msg_id="A-1"), grp(3))) == ["A-g3"]


def test_sync_off_shows_group_copies_on_arrival_in_network_order() -> None:
    b = Receiver("B", sync_enabled=False)
    assert shows(b.handle_push(grp(2), 0.0)) == ["A-g2"]
    assert shows(b.handle_push(grp(1), 0.0)) == ["A-g1"]
    assert b.held("G") == 0


# -- own messages (note_own) ----------------------------------------------------------------


def test_note_own_moves_the_cursor_over_the_senders_own_seq() -> None:
    b = Receiver("B")
    assert b.note_own("G", 1, 0.0) == []
    assert b.cursor("G") == 1
    assert shows(b.handle_push(grp(2), 0.0)) == ["A-g2"]


def test_note_own_returns_the_held_copies_it_unblocks() -> None:
    b = Receiver("B")
    b.handle_push(grp(2), 0.0)  # held behind B's own seq 1
    assert shows(b.note_own("G", 1, 0.5)) == ["A-g2"]
    assert b.cursor("G") == 2


def test_note_own_ahead_of_the_cursor_waits_for_the_gap() -> None:
    b = Receiver("B")
    b.note_own("G", 2, 0.0)
    assert b.cursor("G") == 0
    assert shows(b.handle_push(grp(1), 0.0)) == ["A-g1"]
    assert b.cursor("G") == 2


def test_note_own_at_or_below_the_cursor_changes_nothing() -> None:
    b = Receiver("B")
    b.handle_push(grp(1), 0.0)
    b.handle_push(grp(2), 0.0)
    assert b.note_own("G", 2, 0.0) == []
    assert (b.cursor("G"), b.held("G")) == (2, 0)


def test_note_own_does_nothing_with_sync_off() -> None:
    b = Receiver("B", sync_enabled=False)
    assert b.note_own("G", 1, 0.0) == []
    assert b.cursor("G") == 0


# -- the sync exchange ----------------------------------------------------------------------


def test_a_conversation_never_merged_has_cursor_zero_beside_one_that_was() -> None:
    b = Receiver("B")
    b.handle_push(grp(1), 0.0)
    assert (b.cursor("G"), b.cursor("A|B")) == (1, 0)


def test_sync_request_names_the_cursors_and_the_page_limit() -> None:
    b = Receiver("B", sync_limit=2)
    b.handle_push(grp(1), 0.0)
    (request,) = syncs(b.request_sync(0.0))
    assert request == SyncRequest("B", (("G", 1),), 2)


def test_incomplete_sync_page_asks_for_next_page() -> None:
    b = Receiver("B", sync_limit=2)
    b.request_sync(0.0)
    actions = answered(b, one(1, 100), one(2, 200), complete=False)
    # The next page starts at the 1:1 cursor key, less what was merged there.
    (nxt,) = syncs(actions)
    assert nxt.cursors == (("A|B", 200),) and nxt.limit == 2
    assert nxt.merged_at_cursor == (("A|B", one(2, 200).msg_id),)
    assert b.syncing


def test_complete_sync_page_ends_the_sync() -> None:
    b = Receiver("B")
    b.request_sync(0.0)
    assert syncs(answered(b, one(1, 100))) == []
    assert not b.syncing
    assert b.next_deadline() is None


def test_receipt_during_a_sync_asks_for_exactly_one_more() -> None:
    b = Receiver("B")
    b.request_sync(0.0)
    assert syncs(b.handle_push(one(1, 100), 0.1)) == []
    assert syncs(b.handle_push(one(2, 200), 0.2)) == []
    assert len(syncs(answered(b, now=1.0))) == 1
    assert syncs(answered(b, one(1, 100), one(2, 200), now=2.0)) == []


def test_the_one_more_sync_a_receipt_asked_for_is_credited_to_the_receipt() -> None:
    b = Receiver("B")
    b.request_sync(0.0)  # the default trigger: a (re)connect
    b.handle_push(one(1, 100), 0.1)  # coalesced: asks for one more, as a receipt
    shown = [(a.item.msg_id, a.trigger) for a in answered(b, one(2, 200)) if isinstance(a, Show)]
    assert shown == [("A-2", "reconnect")]
    actions = answered(b, one(3, 300), now=1.0)
    assert [(a.item.msg_id, a.trigger) for a in actions if isinstance(a, Show)] == [
        ("A-3", "receipt")
    ]


def test_unanswered_sync_is_repeated_after_its_timeout() -> None:
    b = Receiver("B", sync_timeout_s=10.0)
    b.request_sync(0.0)
    assert b.next_deadline() == 10.0
    assert b.handle_timeout(9.9) == []
    assert len(syncs(b.handle_timeout(10.0))) == 1
    assert b.next_deadline() == 20.0


def test_a_repeated_sync_credits_what_it_shows_to_the_trigger_of_the_first_attempt() -> None:
    b = Receiver("B", sync_timeout_s=10.0)
    b.handle_connected(0.0)
    assert len(syncs(b.handle_timeout(10.0))) == 1  # the reconnect sync, asked again
    actions = answered(b, one(1, 100), now=10.5)
    assert [(a.item.msg_id, a.via, a.trigger) for a in actions if isinstance(a, Show)] == [
        ("A-1", "sync", "reconnect")
    ]


def test_timeout_without_a_sync_in_flight_does_nothing() -> None:
    assert Receiver("B").handle_timeout(100.0) == []


def test_answer_to_a_sync_abandoned_by_a_disconnect_is_ignored() -> None:
    b = Receiver("B")
    b.request_sync(0.0)
    b.disconnect()
    assert not b.syncing
    assert b.handle_sync_response(page(one(1, 100)), 1.0) == []
    assert b.cursor("A|B") == 0


def test_a_disconnect_drops_the_one_more_sync_a_receipt_asked_for() -> None:
    # A receipt during a sync asks for one more when it completes; the connection then
    # drops. The reconnect's sync pulls everything anyway, so its complete page ends the
    # syncing instead of starting the sync the lost connection still owed.
    b = Receiver("B")
    b.request_sync(0.0)
    assert syncs(b.handle_push(one(1, 100), 0.1)) == []  # coalesced: one more owed
    b.disconnect()
    assert len(syncs(b.handle_connected(1.0))) == 1
    assert syncs(answered(b, now=1.5)) == []
    assert not b.syncing


def test_every_page_of_a_reconnect_sync_credits_the_reconnect_after_a_disconnect() -> None:
    # The receipt that asked for one more belonged to the lost connection: the second
    # page of the reconnect's sync still shows what it repairs as repaired by the reconnect.
    b = Receiver("B")
    b.request_sync(0.0, "receipt")
    b.handle_push(one(1, 100), 0.1)  # asks for one more, as a receipt
    b.disconnect()
    b.handle_connected(1.0)
    assert len(syncs(answered(b, one(2, 200), now=1.5, complete=False))) == 1
    actions = answered(b, one(3, 300), now=2.0)
    assert [(a.item.msg_id, a.via, a.trigger) for a in actions if isinstance(a, Show)] == [
        ("A-3", "sync", "reconnect")
    ]


def test_a_stale_page_that_leaves_a_gap_open_asks_again() -> None:
    # the late answer to a sync that was repeated after its timeout is taken as the
    # answer to the repeat; it was cut before the gap's message (B's own seq 1) existed
    b = Receiver("B")
    b.request_sync(0.0)
    b.handle_timeout(10.0)  # repeated: two answers may come
    b.handle_push(grp(2), 11.0)  # held behind B's own seq 1, which B never heard of
    actions = answered(b, now=12.0)  # the first request's answer, cut before seq 1
    assert len(syncs(actions)) == 1
    actions = answered(b, now=12.5)  # the second one: still cut before seq 1
    assert len(syncs(actions)) == 1
    assert shows(answered(b, grp(1, sender="B"), grp(2), now=13.0)) == ["A-g2"]


def test_a_complete_page_that_leaves_a_gap_open_syncs_again_as_a_gap_repair() -> None:
    # The gap (seq 1 missing) was seen while waiting (gap_wait_s), before a reconnect
    # sync; that sync's page was cut before seq 1 was stored. The sync asked because
    # of the gap is credited to the gap, not to the reconnect.
    b = Receiver("B", gap_wait_s=5.0)
    b.handle_push(grp(2), 0.0)
    b.handle_connected(1.0)
    assert len(syncs(answered(b, now=1.5))) == 1
    actions = answered(b, grp(1), grp(2), now=2.0)
    assert [(a.item.msg_id, a.via, a.trigger) for a in actions if isinstance(a, Show)] == [
        ("A-g1", "sync", "gap"),
        ("A-g2", "push", ""),
    ]


def test_every_page_of_a_sync_cut_twice_credits_the_trigger_that_started_it() -> None:
    b = Receiver("B")
    b.handle_connected(0.0)
    shown = []
    for n, complete in ((1, False), (2, False), (3, True)):
        actions = answered(b, one(n, 100 * n), now=float(n), complete=complete)
        shown += [(a.item.msg_id, a.trigger) for a in actions if isinstance(a, Show)]
    assert shown == [("A-1", "reconnect"), ("A-2", "reconnect"), ("A-3", "reconnect")]
    assert not b.syncing


def test_the_next_page_of_a_cut_sync_is_credited_to_its_trigger_even_with_a_gap_open() -> None:
    # A gap is open (seen while waiting) when the reconnect sync's first page comes cut:
    # the next page continues the reconnect sync, it is not a gap repair.
    b = Receiver("B", gap_wait_s=5.0)
    b.handle_push(grp(2), 0.0)
    b.handle_connected(1.0)
    assert len(syncs(answered(b, one(1, 100), now=1.5, complete=False))) == 1
    actions = answered(b, grp(1), grp(2), now=2.0)
    assert [(a.item.msg_id, a.via, a.trigger) for a in actions if isinstance(a, Show)] == [
        ("A-g1", "sync", "reconnect"),
        ("A-g2", "push", ""),
    ]


def test_sync_off_never_syncs() -> None:
    b = Receiver("B", sync_enabled=False)
    assert b.request_sync(0.0) == []
    assert syncs(b.handle_push(one(1, 100), 0.0)) == []
    assert not b.syncing


def test_reset_forgets_cursors_shown_ids_held_copies_and_the_sync() -> None:
    b = Receiver("B")
    b.handle_push(grp(1), 0.0)
    b.handle_push(grp(3), 0.0)
    b.reset()
    assert (b.cursor("G"), b.held("G"), b.syncing) == (0, 0, False)
    assert shows(b.handle_push(grp(1), 1.0)) == ["A-g1"]  # the restarted app shows it again

"""Regression tests for bugs that the fault experiments exposed, each pinned to its cause."""

from __future__ import annotations

from immodel.protocol import Message, Receiver, Show, Stored


def _group_item(seq: int, sender: int) -> Stored:
    msg = Message(msg_id=f"{sender}-{seq}", sender=sender, conversation="g", is_group=True)
    return Stored(msg, seq)


def test_own_group_seq_that_closes_a_gap_releases_the_held_copies_for_display() -> None:
    # User 12's own message got seq 3 but its reply was slow; copies 4 and 5 from others
    # arrived first and were held behind the gap. Learning its own seq closes the gap:
    # the held copies must come back as Show actions (they were once shown into a list
    # nobody read, marked as shown, and so never displayed: lost for good).
    rx = Receiver(12)
    for seq in (1, 2):
        rx.handle_push(_group_item(seq, sender=1), now=0.0)
    for seq in (4, 5):
        shown = [a for a in rx.handle_push(_group_item(seq, sender=2), now=1.0) if type(a) is Show]
        assert shown == []  # held: seq 3 is missing
    released = rx.note_own("g", 3, now=2.0)
    assert [a.item.order_key for a in released if type(a) is Show] == [4, 5]
    assert rx.cursor("g") == 5

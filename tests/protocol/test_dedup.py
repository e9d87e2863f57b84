"""DedupWindow: a retry inside the window gets the original reply, never a second copy."""

from __future__ import annotations

from immodel.protocol import DedupWindow, Message, MessageStore, SendReply, ServerNode, Verdict

OK = SendReply("A-1", True, 17)


def test_first_copy_is_new() -> None:
    assert DedupWindow().begin("A-1", 0.0) == (Verdict.NEW, None)


def test_copy_arriving_while_the_first_is_processed_is_in_progress() -> None:
    window = DedupWindow()
    window.begin("A-1", 0.0)
    assert window.begin("A-1", 0.1) == (Verdict.IN_PROGRESS, None)


def test_retry_inside_window_gets_original_reply_not_second_copy() -> None:
    window = DedupWindow(window_s=120.0)
    window.begin("A-1", 0.0)
    window.complete("A-1", OK, 1.0)
    assert window.begin("A-1", 120.9) == (Verdict.DONE, OK)


def test_entry_lives_exactly_window_s_after_completion() -> None:
    window = DedupWindow(window_s=120.0)
    window.begin("A-1", 0.0)
    window.complete("A-1", OK, 1.0)
    assert window.next_deadline() == 121.0
    assert window.begin("A-1", 121.0) == (Verdict.NEW, None)


def test_retry_after_window_expiry_is_stored_again_explicitly() -> None:
    store = MessageStore()
    node = ServerNode(0, store, dedup=DedupWindow(window_s=120.0))
    message = Message("A-1", "A", "A|B", False)
    node.begin_send(message, 1.0)
    first, _ = node.commit(message, 1.0)
    assert node.begin_send(message, 200.0) == (Verdict.NEW, None)
    second, reply = node.commit(message, 200.0)
    assert store.stored_copies["A-1"] == 2
    assert second.msg_id == first.msg_id  # the analysis sees the same id twice
    assert second.order_key > first.order_key
    assert reply.order_key == second.order_key


def test_rejection_is_remembered_like_a_success() -> None:
    window = DedupWindow()
    rejected = SendReply("A-1", False, None, "muted")
    window.begin("A-1", 0.0)
    window.complete("A-1", rejected, 0.0)
    assert window.begin("A-1", 5.0) == (Verdict.DONE, rejected)


def test_abort_makes_the_next_copy_new() -> None:
    window = DedupWindow()
    window.begin("A-1", 0.0)
    window.abort("A-1")
    assert window.begin("A-1", 1.0) == (Verdict.NEW, None)


def test_abort_leaves_a_completed_entry_alone() -> None:
    window = DedupWindow()
    window.begin("A-1", 0.0)
    window.complete("A-1", OK, 0.0)
    window.abort("A-1")
    window.abort("never-seen")
    assert window.begin("A-1", 1.0) == (Verdict.DONE, OK)


def test_disabled_window_calls_every_copy_new_and_remembers_nothing() -> None:
    window = DedupWindow(enabled=False)
    window.begin("A-1", 0.0)
    window.complete("A-1", OK, 0.0)
    window.abort("A-1")
    assert window.begin("A-1", 1.0) == (Verdict.NEW, None)
    assert len(window) == 0
    assert window.next_deadline() is None


def test_clear_forgets_completed_and_in_progress_ids() -> None:
    window = DedupWindow()
    window.begin("A-1", 0.0)
    window.complete("A-1", OK, 0.0)
    window.begin("A-2", 0.0)
    window.clear()
    assert len(window) == 0
    assert window.begin("A-1", 1.0)[0] is Verdict.NEW
    assert window.begin("A-2", 1.0)[0] is Verdict.NEW


def test_forget_in_progress_keeps_completed_replies() -> None:
    window = DedupWindow()
    window.begin("A-1", 0.0)
    window.complete("A-1", OK, 0.0)
    window.begin("A-2", 0.0)
    assert window.forget_in_progress() == 1
    assert window.begin("A-1", 1.0) == (Verdict.DONE, OK)
    assert window.begin("A-2", 1.0) == (Verdict.NEW, None)


def test_expiry_is_in_completion_order_and_lazy() -> None:
    window = DedupWindow(window_s=10.0)
    for i, t in enumerate((0.0, 2.0, 4.0)):
        window.begin(f"A-{i}", t)
        window.complete(f"A-{i}", SendReply(f"A-{i}", True, i + 1), t)
    assert len(window) == 3  # nothing expires until the window is consulted
    window.begin("B-1", 12.0)  # expires A-0 (10.0) and A-1 (12.0)
    assert len(window) == 2  # A-2 and the in-progress B-1
    assert window.next_deadline() == 14.0
    assert window.begin("A-2", 13.9)[0] is Verdict.DONE


def test_a_long_run_keeps_only_the_window() -> None:
    """One send a second for far longer than the window: only the last window's ids stay
    (the spent expiry times are cut off as it goes), and each retry inside the window
    still gets a reply equal to the original."""
    window = DedupWindow(window_s=120.0)
    replies = {}
    for i in range(20_000):
        now = float(i)
        msg_id = f"A-{i}"
        assert window.begin(msg_id, now) == (Verdict.NEW, None)
        reply = SendReply(msg_id, True, 1000 + i) if i % 7 else SendReply(msg_id, False)
        replies[msg_id] = reply
        window.complete(msg_id, reply, now)
        old = f"A-{i - 100}"
        if i >= 100:
            assert window.begin(old, now) == (Verdict.DONE, replies[old])
    assert len(window) == 120  # completed at 19 880 … 19 999
    assert len(window._expiry_at) < 2 * 4096 + 120
    assert window.next_deadline() == 19_880.0 + 120.0
    assert window.begin("A-19879", 19_999.5) == (Verdict.NEW, None)

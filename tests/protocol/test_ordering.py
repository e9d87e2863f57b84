"""Sequencer: group seq strictly +1 from 1; 1:1 stamps are the clock, made monotonic."""

from __future__ import annotations

import math
from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from immodel.protocol import Sequencer


def test_group_seq_is_strictly_plus_one_from_one() -> None:
    seq = Sequencer()
    assert [seq.next_seq("G") for _ in range(5)] == [1, 2, 3, 4, 5]
    assert seq.last_seq("G") == 5


def test_groups_count_independently() -> None:
    seq = Sequencer()
    seq.next_seq("G1")
    seq.next_seq("G1")
    assert seq.next_seq("G2") == 1
    assert seq.last_seq("G3") == 0


def test_one_to_one_stamp_is_the_clock_in_whole_milliseconds() -> None:
    assert Sequencer().stamp("A|B", 12.3456) == 12345


def test_one_to_one_stamp_is_monotonic_within_a_millisecond() -> None:
    seq = Sequencer()
    assert [seq.stamp("A|B", 1.0004) for _ in range(3)] == [1000, 1001, 1002]
    assert seq.stamp("A|B", 1.0015) == 1003  # the clock has not caught up yet
    assert seq.stamp("A|B", 2.0) == 2000  # and then it has


def test_stamp_never_goes_back_when_the_clock_does() -> None:
    seq = Sequencer()
    seq.stamp("A|B", 5.0)
    assert seq.stamp("A|B", 4.0) == 5001


def test_stamps_are_monotonic_per_conversation_not_globally() -> None:
    seq = Sequencer()
    seq.stamp("A|B", 1.0)
    assert seq.stamp("A|C", 1.0) == 1000


def test_first_stamp_is_above_the_initial_sync_cursor() -> None:
    # a sync cursor starts at 0 and pulls keys above it: a key of 0 or less is never synced
    assert Sequencer().stamp("A|B", 0.0) == 1
    assert Sequencer().stamp("A|B", -0.5) == 1  # a node whose clock runs behind


def test_assign_uses_seq_for_groups_and_the_clock_for_one_to_one() -> None:
    seq = Sequencer()
    assert seq.assign("G", True, 7.0) == 1
    assert seq.assign("A|B", False, 7.0) == 7000


def test_assign_keeps_each_conversation_its_own_order() -> None:
    # assign is what the store calls: it must key seqs and stamps by the conversation it
    # is given, so interleaved groups and 1:1 chats each count from their own start
    seq = Sequencer()
    assert [seq.assign(g, True, 7.0) for g in ("G1", "G2", "G1", "G2")] == [1, 1, 2, 2]
    assert [seq.assign(c, False, 7.0) for c in ("A|B", "A|C", "A|B")] == [7000, 7000, 7001]


@given(st.lists(st.floats(min_value=-10.0, max_value=1e6, allow_nan=False), min_size=1))
def test_stamps_strictly_increase_whatever_the_clock_does(clocks: list[float]) -> None:
    seq = Sequencer()
    keys = [seq.stamp("A|B", c) for c in clocks]
    assert all(b > a for a, b in pairwise(keys))
    assert keys[0] >= 1
    assert all(k >= math.floor(c * 1000) for k, c in zip(keys, clocks, strict=True))

"""Tests of the delivery checker (``immodel.analysis.checker`` and ``immodel check``).

Hand-built traces pin each rule of the definitions; a Hypothesis property compares the
vectorised checker with a small pure-Python reference written from the same definitions.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from immodel.analysis.checker import (
    MAX_EXAMPLES,
    REQUIRED_COLUMNS,
    CheckReport,
    check_trace,
    load_trace,
    validate_trace,
)
from immodel.cli import main
from immodel.errors import UserError

NAN = float("nan")


def trace(*rows: tuple) -> pd.DataFrame:
    """A trace from ``(t, event, msg_id, conversation, user, order_key)`` tuples."""
    return pd.DataFrame(list(rows), columns=list(REQUIRED_COLUMNS))


def one_to_one(msg: str, t_send: float, t_deliver: float, key: float, to: str = "bob"):
    """send, stored and deliver rows of a 1:1 message from alice."""
    return [
        (t_send, "send", msg, "alice-bob", "alice", NAN),
        (t_send + 0.01, "stored", msg, "alice-bob", to, key),
        (t_deliver, "deliver", msg, "alice-bob", to, key),
    ]


def roles(report: CheckReport, kind: str) -> list[tuple[str, int]]:
    return [(r["role"], r["row"]) for r in report.examples[kind]]


# --- the rules, one by one -----------------------------------------------------------------


def test_clean_trace_passes_with_all_counts_zero():
    df = trace(*one_to_one("m1", 0.0, 0.10, 1), *one_to_one("m2", 1.0, 1.30, 2))
    report = check_trace(df)
    assert report.ok
    assert (report.lost, report.duplicates, report.order_violations) == (0, 0, 0)
    assert (report.deliveries, report.deliveries_expected) == (2, 2)
    assert report.unexpected_deliveries == report.misdirected_deliveries == 0
    assert report.messages_sent == 2
    assert report.events == {"send": 2, "stored": 2, "deliver": 2}
    assert report.examples == {
        "lost": [],
        "duplicates": [],
        "order_violations": [],
        "misdirected_deliveries": [],
        "altered_deliveries": [],
    }
    assert report.latency_samples == 2
    assert report.latency_mean_ms == pytest.approx(200.0)
    assert report.latency_p50_ms == pytest.approx(200.0)
    assert report.latency_max_ms == pytest.approx(300.0)


def test_one_lost_pair_is_reported_with_its_stored_row():
    df = trace(
        *one_to_one("m1", 0.0, 0.1, 1),
        (1.0, "send", "m2", "alice-bob", "alice", NAN),
        (1.1, "stored", "m2", "alice-bob", "bob", 2),
    )
    report = check_trace(df)
    assert not report.ok
    assert report.lost == 1
    assert report.deliveries_expected == 2 and report.deliveries == 1
    [row] = report.examples["lost"]
    assert row["role"] == "stored" and row["row"] == 4
    assert (row["msg_id"], row["user"], row["order_key"]) == ("m2", "bob", 2)


def test_repeated_stored_rows_count_as_one_expected_pair():
    df = trace(
        (0.0, "stored", "m1", "c", "bob", 1),
        (0.5, "stored", "m1", "c", "bob", 1),
        (1.0, "deliver", "m1", "c", "bob", 1),
    )
    report = check_trace(df)
    assert report.deliveries_expected == 1 and report.lost == 0 and report.ok


def test_lost_counts_pairs_not_messages_in_a_group():
    rows = [(0.0, "stored", "g1", "grp", u, 1) for u in ("u1", "u2", "u3")]
    rows.append((0.1, "deliver", "g1", "grp", "u2", 1))
    report = check_trace(trace(*rows))
    assert report.lost == 2
    assert [r["user"] for r in report.examples["lost"]] == ["u1", "u3"]


def test_duplicates_count_every_extra_copy_and_show_first_and_extra():
    df = trace(
        *one_to_one("m1", 0.0, 0.1, 1),
        (0.2, "deliver", "m1", "alice-bob", "bob", 1),
        (0.3, "deliver", "m1", "alice-bob", "bob", 1),
    )
    report = check_trace(df)
    assert report.duplicates == 2
    assert report.deliveries == 1 and report.lost == 0
    # One counterexample per duplicated pair: its first delivery and first extra copy.
    assert roles(report, "duplicates") == [("first", 2), ("extra", 3)]
    assert {r["example"] for r in report.examples["duplicates"]} == {0}


def test_first_delivery_is_earliest_in_time_not_in_file():
    df = trace(
        (0.5, "deliver", "m1", "c", "bob", 1),
        (0.2, "deliver", "m1", "c", "bob", 1),
        (0.0, "stored", "m1", "c", "bob", 1),
    )
    report = check_trace(df)
    assert report.duplicates == 1
    assert roles(report, "duplicates") == [("first", 1), ("extra", 0)]


def test_one_to_one_reorder_by_server_timestamp_is_one_violation():
    # m2 has the later server timestamp but reaches bob first.
    df = trace(*one_to_one("m1", 0.0, 0.9, 100.0), *one_to_one("m2", 0.1, 0.2, 100.5))
    report = check_trace(df)
    assert report.order_violations == 1
    assert report.lost == report.duplicates == 0
    assert roles(report, "order_violations") == [("earlier", 5), ("late", 2)]
    earlier, late = report.examples["order_violations"]
    assert earlier["order_key"] > late["order_key"] and earlier["t"] < late["t"]


def test_group_reorder_by_seq_counts_only_the_member_who_saw_it():
    members = ("u1", "u2", "u3")
    rows = [(0.0, "stored", f"g{s}", "grp", u, s) for s in (1, 2) for u in members]
    rows += [
        (1.0, "deliver", "g1", "grp", "u1", 1),
        (1.1, "deliver", "g2", "grp", "u1", 2),
        (1.0, "deliver", "g2", "grp", "u2", 2),  # u2 sees seq 2 ...
        (1.2, "deliver", "g1", "grp", "u2", 1),  # ... then seq 1
        (1.3, "deliver", "g1", "grp", "u3", 1),
        (1.4, "deliver", "g2", "grp", "u3", 2),
    ]
    report = check_trace(trace(*rows))
    assert report.order_violations == 1
    earlier, late = report.examples["order_violations"]
    assert (earlier["user"], earlier["msg_id"]) == ("u2", "g2")
    assert (late["user"], late["msg_id"]) == ("u2", "g1")


def test_order_is_measured_per_recipient_and_per_conversation_independently():
    df = trace(
        # bob: a large key in conversation A does not constrain conversation B
        (1.0, "deliver", "a9", "A", "bob", 9),
        (2.0, "deliver", "b1", "B", "bob", 1),
        # carol: a large key delivered to bob does not constrain carol in A
        (3.0, "deliver", "a1", "A", "carol", 1),
        (4.0, "deliver", "a9", "A", "carol", 9),
    )
    assert check_trace(df).order_violations == 0


def test_order_violations_count_late_deliveries_not_inversions():
    # keys 3, 1, 2: both 1 and 2 arrive after 3 -> 2 violations (not 3 inversions).
    df = trace(
        (1.0, "deliver", "k3", "c", "bob", 3),
        (2.0, "deliver", "k1", "c", "bob", 1),
        (3.0, "deliver", "k2", "c", "bob", 2),
    )
    report = check_trace(df)
    assert report.order_violations == 2
    # Each counterexample names the largest key delivered before the late one.
    pairs = report.examples["order_violations"]
    assert [(r["role"], r["msg_id"]) for r in pairs] == [
        ("earlier", "k3"),
        ("late", "k1"),
        ("earlier", "k3"),
        ("late", "k2"),
    ]


def test_duplicate_copies_do_not_count_again_for_order():
    df = trace(
        (1.0, "deliver", "k1", "c", "bob", 1),
        (2.0, "deliver", "k2", "c", "bob", 2),
        (3.0, "deliver", "k1", "c", "bob", 1),  # a late copy of k1: duplicate, not misorder
    )
    report = check_trace(df)
    assert report.order_violations == 0 and report.duplicates == 1


def test_late_first_delivery_is_one_violation_however_many_copies_follow():
    df = trace(
        (1.0, "deliver", "k2", "c", "bob", 2),
        (2.0, "deliver", "k1", "c", "bob", 1),
        (3.0, "deliver", "k1", "c", "bob", 1),
        (4.0, "deliver", "k1", "c", "bob", 1),
    )
    report = check_trace(df)
    assert report.order_violations == 1 and report.duplicates == 2


def test_ties_in_time_are_broken_by_file_row_order():
    larger_first = trace(
        (1.0, "deliver", "k2", "c", "bob", 2),
        (1.0, "deliver", "k1", "c", "bob", 1),
    )
    smaller_first = trace(
        (1.0, "deliver", "k1", "c", "bob", 1),
        (1.0, "deliver", "k2", "c", "bob", 2),
    )
    assert check_trace(larger_first).order_violations == 1
    assert check_trace(smaller_first).order_violations == 0


def test_equal_order_keys_are_not_a_violation():
    df = trace(
        (1.0, "deliver", "x", "c", "bob", 5),
        (2.0, "deliver", "y", "c", "bob", 5),
    )
    assert check_trace(df).order_violations == 0


def test_integer_order_keys_keep_nanosecond_precision():
    # 2**60 + 1 and 2**60 are equal as float64; as integers they are ordered.
    big = 2**60
    df = trace(
        (1.0, "deliver", "late", "c", "bob", big + 1),
        (2.0, "deliver", "early", "c", "bob", big),
    )
    assert check_trace(df).order_violations == 1


def test_phantom_delivery_of_unstored_message_is_counted_but_does_not_fail():
    df = trace(
        *one_to_one("m1", 0.0, 0.1, 1),
        (0.5, "deliver", "m9", "alice-bob", "bob", 2),  # no stored row for m9 at all
    )
    report = check_trace(df)
    assert report.unexpected_deliveries == 1
    assert report.misdirected_deliveries == 0
    assert report.deliveries == 2 and report.ok


def test_delivery_to_a_user_the_message_was_not_stored_for_is_misdirected_and_fails():
    df = trace(
        *one_to_one("m1", 0.0, 0.1, 1),
        (0.2, "deliver", "m1", "alice-bob", "mallory", 1),
    )
    report = check_trace(df)
    assert report.unexpected_deliveries == 1 and report.misdirected_deliveries == 1
    assert not report.ok
    assert roles(report, "misdirected_deliveries") == [("deliver", 3), ("stored", 1)]


def test_trace_without_stored_rows_expects_nothing():
    df = trace(
        (0.0, "send", "m1", "c", "alice", NAN),
        (0.1, "deliver", "m1", "c", "bob", 1),
    )
    report = check_trace(df)
    assert report.ok and report.deliveries_expected == 0 and report.unexpected_deliveries == 1
    assert report.latency_samples == 0 and report.latency_p99_ms is None
    assert "no stored rows" in report.format()


def test_empty_trace_is_clean_and_has_no_latency():
    report = check_trace(trace())
    assert report.ok and report.rows == 0 and report.latency_mean_ms is None


def test_latency_uses_first_delivery_and_earliest_send_and_skips_messages_without_send():
    df = trace(
        (0.0, "send", "m1", "c", "alice", NAN),
        (0.5, "send", "m1", "c", "alice", NAN),  # an uplink retry logged again
        (0.6, "stored", "m1", "c", "bob", 1),
        (0.8, "deliver", "m1", "c", "bob", 1),
        (0.9, "deliver", "m1", "c", "bob", 1),
        (1.0, "stored", "m2", "c", "bob", 2),  # no send row: not measured
        (1.5, "deliver", "m2", "c", "bob", 2),
    )
    report = check_trace(df)
    assert report.latency_samples == 1
    assert report.latency_mean_ms == pytest.approx(800.0)
    assert report.latency_max_ms == pytest.approx(800.0)


def test_extra_columns_are_ignored_and_input_is_not_modified():
    df = trace(*one_to_one("m1", 0.0, 0.1, 1))
    df["device"] = ["phone", "phone", "web"]
    before = df.copy()
    assert check_trace(df).ok
    pd.testing.assert_frame_equal(df, before)


def test_datetime_times_are_read_as_seconds():
    df = trace(*one_to_one("m1", 0.0, 0.25, 1))
    df["t"] = pd.Timestamp("2024-05-01T12:00:00") + pd.to_timedelta(df["t"], unit="s")
    report = check_trace(df)
    assert report.latency_max_ms == pytest.approx(250.0)


def test_at_most_max_examples_counterexamples_per_kind():
    rows = [(float(i), "stored", f"m{i}", "c", "bob", i) for i in range(12)]
    report = check_trace(trace(*rows))
    assert report.lost == 12
    assert [r["msg_id"] for r in report.examples["lost"]] == [f"m{i}" for i in range(MAX_EXAMPLES)]


def test_to_dict_is_plain_json_with_none_for_missing_latency():
    df = trace(*one_to_one("m1", 0.0, 0.1, 1), (0.3, "deliver", "m1", "alice-bob", "bob", 1))
    data = check_trace(df).to_dict()
    text = json.dumps(data, allow_nan=False)
    assert json.loads(text) == data
    assert data["duplicates"] == 1 and data["ok"] is False
    assert set(data["examples"]) >= {"lost", "duplicates", "order_violations"}
    assert check_trace(trace()).to_dict()["latency_p95_ms"] is None

    def walk(value):
        if isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        else:
            assert value is None or type(value) in (bool, int, float, str)
            assert not (isinstance(value, float) and math.isnan(value))

    walk(data)


def test_validate_trace_names_a_missing_column_and_the_required_ones():
    df = trace(*one_to_one("m1", 0.0, 0.1, 1)).drop(columns=["order_key"])
    with pytest.raises(UserError, match=r"missing column 'order_key'; required columns: t, event"):
        validate_trace(df)


def test_validate_trace_rejects_a_repeated_column():
    df = trace(*one_to_one("m1", 0.0, 0.1, 1))
    df = pd.concat([df, df[["t"]]], axis=1)
    with pytest.raises(UserError, match="column 't' appears more than once"):
        validate_trace(df)


def test_ids_of_other_types_are_compared_by_value():
    df = trace(*one_to_one("m1", 0.0, 0.1, 1), *one_to_one("m2", 1.0, 1.1, 2))
    df["msg_id"] = [7, 7, 7, 8, 8, 8]
    df["user"] = df["user"].astype("category")
    assert check_trace(df).ok


# --- files and the command line ------------------------------------------------------------


def faulty_trace() -> pd.DataFrame:
    """One of each fault, ids with leading zeros, an integer order key."""
    return trace(
        (0.0, "send", "007", "001", "alice", NAN),
        (0.1, "stored", "007", "001", "bob", 10),
        (0.2, "send", "008", "001", "alice", NAN),
        (0.3, "stored", "008", "001", "bob", 20),
        (0.4, "deliver", "008", "001", "bob", 20),
        (0.5, "deliver", "007", "001", "bob", 10),  # after 20: order violation
        (0.6, "deliver", "007", "001", "bob", 10),  # duplicate
        (0.7, "stored", "009", "001", "bob", 30),  # lost
    )


@pytest.mark.parametrize("name", ["trace.csv", "trace.csv.gz", "trace.parquet", "trace.pq"])
def test_file_round_trip_keeps_ids_and_gives_the_same_report(tmp_path: Path, name: str):
    df = faulty_trace()
    path = tmp_path / name
    if ".csv" in name:
        df.to_csv(path, index=False)
    else:
        df.to_parquet(path, index=False)
    loaded = load_trace(path)
    assert loaded["msg_id"].tolist()[:2] == ["007", "007"]
    assert loaded["conversation"].iloc[0] == "001"
    from_file, in_memory = check_trace(loaded).to_dict(), check_trace(df).to_dict()
    for key in ("lost", "duplicates", "order_violations", "deliveries", "latency_mean_ms"):
        assert from_file[key] == pytest.approx(in_memory[key])
    assert from_file["examples"]["lost"][0]["msg_id"] == "009"


def test_csv_ids_that_look_like_missing_values_stay_strings(tmp_path: Path):
    path = tmp_path / "t.csv"
    path.write_text(
        "t,event,msg_id,conversation,user,order_key\n"
        "0.0,stored,NA,null,None,1\n"
        "0.1,deliver,NA,null,None,1\n"
    )
    report = check_trace(load_trace(path))
    assert report.ok and report.deliveries == 1


def test_cli_clean_trace_exits_0_with_readable_report(tmp_path: Path, capsys):
    path = tmp_path / "clean.csv"
    trace(*one_to_one("m1", 0.0, 0.1, 1)).to_csv(path, index=False)
    assert main(["check", str(path)]) == 0
    out = capsys.readouterr().out
    assert "OK" in out and "lost" in out and "latency" in out


def test_cli_faulty_trace_exits_1_and_prints_counterexample_tables(tmp_path: Path, capsys):
    path = tmp_path / "faulty.csv"
    faulty_trace().to_csv(path, index=False)
    assert main(["check", str(path)]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out
    assert "order violations: 1 of 1" in out and "earlier" in out and "late" in out
    assert "009" in out


def test_cli_json_prints_one_parseable_object_and_exits_1_on_faults(tmp_path: Path, capsys):
    path = tmp_path / "faulty.parquet"
    faulty_trace().to_parquet(path, index=False)
    assert main(["check", str(path), "--json"]) == 1
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert (data["lost"], data["duplicates"], data["order_violations"]) == (1, 1, 1)
    for key in ("deliveries", "deliveries_expected", "unexpected_deliveries", "examples"):
        assert key in data
    assert data["examples"]["order_violations"][1]["msg_id"] == "007"
    assert captured.err == ""


def test_cli_json_clean_trace_exits_0(tmp_path: Path, capsys):
    path = tmp_path / "clean.parquet"
    trace(*one_to_one("m1", 0.0, 0.1, 1)).to_parquet(path, index=False)
    assert main(["check", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True


HEADER = "t,event,msg_id,conversation,user,order_key\n"
BAD_FILES = {
    "missing file": (None, "not found"),
    "unknown extension": ("trace.txt", "unknown file type"),
    "empty csv": ("", "cannot read"),
    "binary csv": (b"\x00\xff\xfe\x00garbage\x00", "cannot read"),
    "garbage parquet": (b"this is not parquet", "cannot read"),
    "missing column": ("t,event,msg_id,user\n0,send,m,u\n", "missing column 'conversation'"),
    "unknown event": (HEADER + "0,recv,m,c,u,1\n", "unknown event value 'recv'"),
    "empty event": (HEADER + "0,,m,c,u,1\n", "unknown event value"),
    "nan time": (HEADER + "nan,stored,m,c,u,1\n", "column 't'"),
    "empty time": (HEADER + ",stored,m,c,u,1\n", "column 't'"),
    "text time": (HEADER + "noon,stored,m,c,u,1\n", "column 't'"),
    "empty order_key": (HEADER + "0,deliver,m,c,u,\n", "order_key"),
    "text order_key": (HEADER + "0,stored,m,c,u,first\n", "order_key"),
    "empty msg_id": (HEADER + "0,stored,,c,u,1\n", "msg_id"),
    "empty user": (HEADER + "0,deliver,m,c,,1\n", "user"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_cli_bad_file_exits_2_with_one_error_line(tmp_path: Path, capsys, case: str):
    content, expected = BAD_FILES[case]
    name = {"unknown extension": "trace.txt", "garbage parquet": "trace.parquet"}.get(
        case, "trace.csv"
    )
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    assert main(["check", str(path)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("error:")
    assert expected in lines[0]
    assert "Traceback" not in captured.err and captured.out == ""


def test_error_for_unknown_event_lists_the_allowed_values(tmp_path: Path, capsys):
    path = tmp_path / "t.csv"
    path.write_text(HEADER + "0,recv,m,c,u,1\n")
    main(["check", str(path)])
    assert "allowed: send, stored, deliver" in capsys.readouterr().err


def test_send_rows_need_no_order_key_or_conversation(tmp_path: Path):
    path = tmp_path / "t.csv"
    path.write_text(HEADER + "0,send,m,,alice,\n0.1,stored,m,c,bob,1\n0.2,deliver,m,c,bob,1\n")
    report = check_trace(load_trace(path))
    assert report.ok and report.latency_samples == 1


# --- property: vectorised checker == a pure-Python reference -------------------------------


def reference_check(rows: list[tuple]) -> dict:
    """The definitions, written as plainly as possible (rows in file order)."""
    expected = {(m, u) for (_, e, m, _, u, _) in rows if e == "stored"}
    delivers = sorted(
        ((t, i, m, c, u, k) for i, (t, e, m, c, u, k) in enumerate(rows) if e == "deliver"),
        key=lambda r: (r[0], r[1]),
    )
    first: dict[tuple, tuple] = {}
    duplicates = 0
    for r in delivers:
        pair = (r[2], r[4])
        if pair in first:
            duplicates += 1
        else:
            first[pair] = r
    violations = []
    seen: dict[tuple, list] = {}
    for r in sorted(first.values(), key=lambda r: (r[0], r[1])):
        earlier = seen.setdefault((r[4], r[3]), [])
        if any(k > r[5] for (_, _, _, _, _, k) in earlier):
            violations.append(r[1])
        earlier.append(r)
    stored_msgs = {m for (m, _) in expected}
    unexpected = [p for p in first if p not in expected]
    send_t: dict[str, float] = {}
    for t, e, m, *_ in rows:
        if e == "send":
            send_t[m] = min(t, send_t.get(m, math.inf))
    latencies = sorted(
        (first[p][0] - send_t[p[0]]) * 1000 for p in expected if p in first and p[0] in send_t
    )
    return {
        "lost": len(expected - first.keys()),
        "lost_pairs": expected - first.keys(),
        "duplicates": duplicates,
        "order_violations": len(violations),
        "violation_rows": violations,
        "first_rows": {r[1] for r in first.values()},
        "deliveries": len(first),
        "deliveries_expected": len(expected),
        "unexpected_deliveries": len(unexpected),
        "misdirected_deliveries": sum(m in stored_msgs for (m, _) in unexpected),
        "latencies": latencies,
    }


def percentile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolation percentile (numpy's default), by hand."""
    pos = (len(sorted_values) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


row_strategy = st.tuples(
    st.sampled_from([0.0, 0.5, 1.0, 1.5, 2.0, 2.5]),  # few distinct times: many ties
    st.sampled_from(["send", "stored", "deliver", "deliver"]),
    st.sampled_from(["m0", "m1", "m2", "m3", "m4"]),
    st.sampled_from(["c0", "c1"]),
    st.sampled_from(["u0", "u1", "u2"]),
    st.integers(0, 4),
)


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(row_strategy, max_size=40))
def test_checker_agrees_with_pure_python_reference(rows):
    rows = [(t, e, m, c, u, NAN if e == "send" else k) for (t, e, m, c, u, k) in rows]
    ref = reference_check(rows)
    report = check_trace(trace(*rows))

    for key in (
        "lost",
        "duplicates",
        "order_violations",
        "deliveries",
        "deliveries_expected",
        "unexpected_deliveries",
        "misdirected_deliveries",
    ):
        assert getattr(report, key) == ref[key], key
    assert report.ok == (
        ref["lost"] == ref["duplicates"] == ref["order_violations"] == 0
        and ref["misdirected_deliveries"] == 0
    )

    lat = ref["latencies"]
    assert report.latency_samples == len(lat)
    if lat:
        assert report.latency_mean_ms == pytest.approx(sum(lat) / len(lat))
        assert report.latency_max_ms == pytest.approx(lat[-1])
        for q in (50, 95, 99):
            assert getattr(report, f"latency_p{q}_ms") == pytest.approx(percentile(lat, q))
    else:
        assert report.latency_mean_ms is None and report.latency_p99_ms is None

    # Every counterexample really is one, and the earliest ones are shown.
    ex = report.examples
    assert len(ex["lost"]) == min(ref["lost"], MAX_EXAMPLES)
    for r in ex["lost"]:
        assert rows[r["row"]][1] == "stored" and (r["msg_id"], r["user"]) in ref["lost_pairs"]
    for first, extra in zip(ex["duplicates"][::2], ex["duplicates"][1::2], strict=True):
        assert first["row"] in ref["first_rows"] and extra["row"] not in ref["first_rows"]
        assert (first["msg_id"], first["user"]) == (extra["msg_id"], extra["user"])
    violation_rows = [r["row"] for r in ex["order_violations"][1::2]]
    assert violation_rows == ref["violation_rows"][:MAX_EXAMPLES]
    for earlier, late in zip(
        ex["order_violations"][::2], ex["order_violations"][1::2], strict=True
    ):
        assert earlier["row"] in ref["first_rows"]
        assert (earlier["user"], earlier["conversation"]) == (late["user"], late["conversation"])
        assert earlier["order_key"] > late["order_key"]
        assert (earlier["t"], earlier["row"]) < (late["t"], late["row"])


def test_checker_agrees_with_reference_on_a_larger_numpy_built_frame():
    # The simulator hands over frames built from numpy arrays; same answer as from tuples.
    rng = np.random.default_rng(3)
    n = 500
    df = pd.DataFrame(
        {
            "t": rng.integers(0, 50, n) / 10,
            "event": rng.choice(["send", "stored", "deliver"], n),
            "msg_id": rng.choice([f"m{i}" for i in range(40)], n),
            "conversation": rng.choice(["c0", "c1", "c2"], n),
            "user": rng.choice(["u0", "u1", "u2", "u3"], n),
            "order_key": rng.integers(0, 30, n).astype(float),
        }
    )
    ref = reference_check(list(df.itertuples(index=False, name=None)))
    report = check_trace(df)
    assert (report.lost, report.duplicates, report.order_violations) == (
        ref["lost"],
        ref["duplicates"],
        ref["order_violations"],
    )


def test_text_report_names_the_latency_population():
    trace = pd.DataFrame(
        {
            "t": [0.0, 0.05, 0.2],
            "event": ["send", "stored", "deliver"],
            "msg_id": ["m", "m", "m"],
            "conversation": ["c", "c", "c"],
            "user": ["a", "b", "b"],
            "order_key": [None, 1, 1],
        }
    )
    lines = check_trace(trace).format().splitlines()
    (lat,) = [i for i, line in enumerate(lines) if line.strip().startswith("latency ms")]
    assert "p50 200.0" in lines[lat]
    population = lines[lat + 1]
    assert "population" in population and "every first delivery incl. catch-up" in population
    assert "online recipients only" in population

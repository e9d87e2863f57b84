"""The checker's split of ``lost`` by the optional ``reachable_after_store`` column: a pair
whose recipient never came back after the store is awaiting login and fails nothing; a
pair lost while its recipient was reachable fails the trace as before."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from immodel.analysis.checker import check_trace, load_trace
from immodel.cli import main
from immodel.errors import UserError

NAN = float("nan")
COLUMNS = ["t", "event", "msg_id", "conversation", "user", "order_key", "reachable_after_store"]


def _trace(reachable_bob, reachable_carol) -> pd.DataFrame:
    """m1 to bob, m2 to carol, both lost; m3 to bob delivered."""
    rows = [
        (0.0, "send", "m1", "a-b", "alice", NAN, None),
        (0.1, "stored", "m1", "a-b", "bob", 1, reachable_bob),
        (1.0, "send", "m2", "a-c", "alice", NAN, None),
        (1.1, "stored", "m2", "a-c", "carol", 2, reachable_carol),
        (2.0, "send", "m3", "a-b", "alice", NAN, None),
        (2.1, "stored", "m3", "a-b", "bob", 3, True),
        (2.2, "deliver", "m3", "a-b", "bob", 3, None),
    ]
    df = pd.DataFrame(rows, columns=COLUMNS)
    df["reachable_after_store"] = df["reachable_after_store"].astype("boolean")
    return df


def test_pairs_whose_recipient_never_came_back_do_not_fail_the_trace():
    report = check_trace(_trace(False, False))
    assert report.lost == report.lost_awaiting_login == 2
    assert report.lost_while_reachable == 0
    assert report.ok
    assert report.examples["lost"] == []
    assert "2 lost pair(s) await their recipient's next login" in report.format()


def test_a_pair_lost_while_reachable_fails_and_is_the_only_counterexample():
    report = check_trace(_trace(False, True))
    assert (report.lost, report.lost_awaiting_login, report.lost_while_reachable) == (2, 1, 1)
    assert not report.ok
    [row] = report.examples["lost"]
    assert (row["msg_id"], row["user"], row["reachable_after_store"]) == ("m2", "carol", True)
    assert "FAIL: lost while reachable 1" in report.format()


def test_without_the_column_every_lost_pair_counts_as_reachable():
    report = check_trace(_trace(False, False).drop(columns="reachable_after_store"))
    assert (report.lost, report.lost_awaiting_login, report.lost_while_reachable) == (2, 0, 2)
    assert not report.ok and not report.reachability_known
    assert "FAIL: lost 2" in report.format()


def test_an_empty_cell_on_a_stored_row_counts_as_reachable():
    report = check_trace(_trace(None, False))
    assert (report.lost_awaiting_login, report.lost_while_reachable) == (1, 1)


def test_csv_true_false_text_is_read_and_the_cli_exits_0_on_awaiting_pairs_only(
    tmp_path: Path, capsys
):
    path = tmp_path / "t.csv"
    _trace(False, False).to_csv(path, index=False)
    assert check_trace(load_trace(path)).lost_awaiting_login == 2
    assert main(["check", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["lost"], data["lost_awaiting_login"], data["lost_while_reachable"]) == (2, 2, 0)
    assert data["ok"] is True
    _trace(True, False).to_csv(path, index=False)
    assert main(["check", str(path)]) == 1


def test_a_value_that_is_not_true_or_false_is_a_user_error_naming_the_column():
    df = _trace(False, False)
    df["reachable_after_store"] = df["reachable_after_store"].astype(object)
    df.loc[1, "reachable_after_store"] = "maybe"
    with pytest.raises(UserError, match=r"reachable_after_store.*true or false.*row 1"):
        check_trace(df)

"""The command line: exit codes, one-line errors, summary output and written files."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from immodel import __version__
from immodel.cli import main

SMALL = ["--set", "workload.users=30", "--set", "duration_s=5", "--set", "drain_s=5"]


def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_python_dash_m_runs_the_same_cli():
    out = subprocess.run(
        [sys.executable, "-m", "immodel", "scenarios"], capture_output=True, text=True, check=True
    )
    assert "baseline" in out.stdout


def test_run_prints_a_readable_summary(capsys):
    assert main(["run", "baseline", *SMALL]) == 0
    out = capsys.readouterr().out
    assert "messages sent" in out and "latency p99 (ms, online recipients)" in out


def test_run_json_is_one_object_with_every_design_metric(capsys):
    assert main(["run", "baseline", *SMALL, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    for key in [
        "messages_sent",
        "deliveries_expected",
        "deliveries",
        "lost",
        "send_failures",
        "duplicates",
        "order_violations",
        "latency_mean_ms",
        "latency_p50_ms",
        "latency_p95_ms",
        "latency_p99_ms",
        "latency_max_ms",
        "requests_total",
        "requests_per_s",
        "empty_poll_fraction",
        "server_utilization",
        "retransmits_uplink",
        "retransmits_downlink",
        "sync_pulls",
        "sim_events",
        "wall_s",
    ]:
        assert key in summary


def test_run_out_writes_the_documented_files(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "short-poll", *SMALL, "--out", str(out)]) == 0
    for name in (
        "summary.json",
        "scenario.toml",
        "trace.parquet",
        "messages.parquet",
        "requests.parquet",
        "load.parquet",
    ):
        assert (out / name).is_file(), name
    trace = pd.read_parquet(out / "trace.parquet")
    assert list(trace.columns) == [
        "t",
        "event",
        "msg_id",
        "conversation",
        "user",
        "order_key",
        "digest",
        "reachable_after_store",
    ]
    # The written trace passes the checker, like any real system's log would.
    assert main(["check", str(out / "trace.parquet")]) == 0


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["run", "baseline", "--set", "network.downlink_loss=2"], "network.downlink_loss"),
        (["run", "baseline", "--set", "transport.kind=smoke"], "transport.kind"),
        (["run", "baseline", "--set", "transport.poll_interval_s=-1"], "poll_interval_s"),
        (["run", "baseline", "--set", "nonsense.key=1"], "unknown scenario key"),
        (["run", "baseline", "--set", "novalue"], "KEY=VALUE"),
        (["run", "no/such/file.toml"], "does not exist"),
    ],
)
def test_bad_input_exits_2_with_one_error_line(argv, fragment, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("error: ")
    assert fragment in err[0]


def test_bad_input_from_a_real_process_has_no_traceback():
    proc = subprocess.run(
        [sys.executable, "-m", "immodel", "run", "baseline", "--set", "network.uplink_loss=7"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: network.uplink_loss")


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "baseline", "--seed", "abc"],
        ["run"],
        ["sweep", "x.toml", "--workers", "many"],
        ["check", "trace.csv", "--colour"],
        ["launch"],
    ],
)
def test_a_usage_mistake_is_one_error_line_and_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: immodel"), captured.err


# --- the output folder is checked before simulating -------------------------------------


def _one_error_line(capsys) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_out_that_is_a_file_fails_before_the_run(tmp_path, capsys, monkeypatch):
    import immodel.sim.model as model

    def no_run(*args, **kwargs):
        raise AssertionError("the run must not start")

    monkeypatch.setattr(model, "run", no_run)
    target = tmp_path / "taken"
    target.write_text("x")
    assert main(["run", "baseline", *SMALL, "--out", str(target)]) == 2
    assert "is a file" in _one_error_line(capsys)
    # Below a file: cannot be created (NotADirectoryError), named as unwritable.
    assert main(["run", "baseline", *SMALL, "--out", str(target / "sub")]) == 2
    assert "cannot be written" in _one_error_line(capsys)


@pytest.mark.skipif(
    sys.platform == "win32" or __import__("os").geteuid() == 0,
    reason="permissions do not bind root",
)
def test_out_in_a_read_only_folder_fails_before_the_run(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        assert main(["run", "baseline", *SMALL, "--out", str(locked / "run")]) == 2
        assert "cannot be written" in _one_error_line(capsys)
    finally:
        locked.chmod(0o700)


def test_out_of_an_earlier_run_is_refused_unless_force_which_clears_it(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "baseline", *SMALL, "--out", str(out)]) == 0
    (out / "figures").mkdir()
    (out / "figures" / "old_figure.png").write_bytes(b"png")
    capsys.readouterr()
    assert main(["run", "baseline", *SMALL, "--out", str(out)]) == 2
    assert "holds an earlier run" in _one_error_line(capsys)
    assert (out / "figures" / "old_figure.png").exists()
    assert main(["run", "short-poll", *SMALL, "--out", str(out), "--force"]) == 0
    assert not (out / "figures").exists()
    assert "short-poll" in (out / "scenario.toml").read_text()


def test_out_holding_other_files_is_refused_even_with_force(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["run", "baseline", *SMALL, "--out", str(tmp_path), "--force"]) == 2
    assert "holds other files" in _one_error_line(capsys)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_output_piped_into_a_reader_that_stops_early_ends_without_a_traceback():
    for argv in (["columns"], ["keys"], ["scenarios"]):
        proc = subprocess.Popen(
            [sys.executable, "-m", "immodel", *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        proc.stdout.close()  # the reader is gone before anything is written
        err = proc.stderr.read().decode()
        status = proc.wait(timeout=60)
        assert "Traceback" not in err and "BrokenPipe" not in err, err
        assert err == ""
        assert status in (0, 141)


# --- reference commands ----------------------------------------------------------------


def test_keys_lists_every_key_grouped_by_table_and_as_json(capsys):
    from immodel.scenario import SCHEMA

    assert main(["keys", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["key"] for r in rows] == [k.name for k in SCHEMA]
    assert main(["keys"]) == 0
    text = capsys.readouterr().out
    for table in ("[workload]", "[network]", "[transport]", "[reliability]", "[server]"):
        assert table in text
    for key in SCHEMA:
        assert f"  {key.name.rpartition('.')[2]}  (" in text, key.name
        assert key.doc in text


def test_columns_prints_the_dictionary_and_json(capsys):
    from immodel.columns import TABLES, columns_markdown

    assert main(["columns"]) == 0
    assert capsys.readouterr().out == columns_markdown()
    assert main(["columns", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == set(TABLES)
    assert {c["name"] for c in data["messages"]["columns"]} >= {"msg_id", "latency_ms"}


@pytest.mark.parametrize(
    ("setup", "argv_tail", "fragment"),
    [
        ("empty", [], "sets no keys"),
        ("directory", [], "is a directory, not a scenario file"),
        (None, ["--set", "workload.users=1e3"], "workload.users must be an integer"),
        (None, ["--set", "transport.web_share=0.5"], "transport.web_share applies only to"),
        (
            None,
            ["--set", "drain_s=10", "--set", 'faults=[{kind="server_crash", at_s=200}]'],
            "faults[0].at_s must be < duration_s + drain_s",
        ),
        (None, ["--set", "drain_s=soon"], "drain_s must be 'auto' or a number ≥ 0"),
    ],
)
def test_silent_mistakes_are_now_one_error_line(tmp_path, capsys, setup, argv_tail, fragment):
    source = "baseline"
    if setup == "empty":
        (tmp_path / "empty.toml").write_text("")
        source = str(tmp_path / "empty.toml")
    elif setup == "directory":
        source = str(tmp_path)
    assert main(["run", source, *argv_tail]) == 2
    line = _one_error_line(capsys)
    assert fragment in line

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
    assert "messages sent" in out and "latency p99 (ms)" in out


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
    assert list(trace.columns) == ["t", "event", "msg_id", "conversation", "user", "order_key"]
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

"""``immodel real`` refuses what it does not implement or cannot hold on one machine:
exit status 2 and one ``error:`` line naming the key and the limit, before anything
starts."""

from __future__ import annotations

import pytest

from immodel.cli import main

SMALL = ["--set", "workload.users=20", "--set", "duration_s=2", "--set", "drain_s=2"]


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        (["--set", "workload.users=2001"], "workload.users"),
        (["--set", "network.downlink_loss=0.1"], "network.downlink_loss"),
        (["--set", "workload.live_rooms=1"], "workload.live_rooms"),
        (
            ["--set", "workload.rest_rate_per_s=1", "--set", "server.access_nodes=2"],
            "server.access_nodes",
        ),
        (
            [
                "--set",
                "workload.rest_broadcasts=[1]",
                "--set",
                "workload.devices={phone={share=1.0,transport='push'}}",
            ],
            "workload.devices",
        ),
        (["--set", "server.nodes=9"], "server.nodes"),
        (["--set", "faults=[{kind='loss_burst',at_s=1,down_s=1}]"], "faults[0].kind"),
        (
            [
                "--set",
                "faults=[{kind='store_failure',at_s=1,down_s=1,prob=0.5}]",
                "--set",
                "server.seq_burn_prob=0.5",
            ],
            "server.seq_burn_prob",
        ),
        (["--set", "faults=[{kind='server_crash',at_s=1,down_s=1,node=3}]"], "faults[0].node"),
        (["--set", "workload.no_such_key=1"], "workload.no_such_key"),
    ],
)
def test_bad_input_exits_2_with_one_error_line(capsys, overrides, named):
    assert main(["real", "baseline", *SMALL, *overrides]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert named in lines[0]
    assert captured.out == ""


def test_loss_is_refused_with_the_reason(capsys):
    main(["real", "baseline", *SMALL, "--set", "faults=[{kind='loss_burst',at_s=1,down_s=1}]"])
    assert "forwards byte streams" in capsys.readouterr().err


def test_the_user_limit_is_said(capsys):
    main(["real", "baseline", *SMALL, "--set", "workload.users=5000"])
    assert "at most 2000 users" in capsys.readouterr().err


def test_an_out_folder_that_is_a_file_is_refused_before_starting(tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("x")
    assert main(["real", "baseline", *SMALL, "--out", str(target)]) == 2
    assert "--out" in capsys.readouterr().err

"""``reliability.sync_cursor``: its values, and the combinations refused at validation
(read diffusion; ``immodel real``) with exit 2 and one ``error:`` line that says why."""

from __future__ import annotations

import pytest

from immodel.cli import main
from immodel.errors import ConfigError
from immodel.scenario import KEYS, Scenario

SMALL = ["--set", "workload.users=20", "--set", "duration_s=2", "--set", "drain_s=2"]


def one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert captured.out == ""
    return lines[0]


def test_the_default_is_conversation_sync_and_inbox_is_the_one_alternative() -> None:
    key = KEYS["reliability.sync_cursor"]
    assert key.default == "conversation"
    assert tuple(key.choices) == ("conversation", "inbox")
    assert Scenario.load("baseline", {"reliability.sync_cursor": "inbox"})[key.name] == "inbox"


def test_a_bad_value_exits_2_naming_the_key_and_what_is_allowed(capsys) -> None:
    assert main(["run", "baseline", *SMALL, "--set", "reliability.sync_cursor=user"]) == 2
    line = one_error_line(capsys)
    assert "reliability.sync_cursor" in line and "conversation" in line and "inbox" in line


def test_inbox_sync_with_read_diffusion_is_refused_and_says_why(capsys) -> None:
    with pytest.raises(ConfigError, match=r"server\.diffusion = 'write'"):
        Scenario.load("baseline", {"reliability.sync_cursor": "inbox", "server.diffusion": "read"})
    argv = ["--set", "reliability.sync_cursor=inbox", "--set", "server.diffusion=read"]
    assert main(["run", "baseline", *SMALL, *argv]) == 2
    line = one_error_line(capsys)
    assert "reliability.sync_cursor" in line and "group timeline" in line


def test_immodel_real_accepts_inbox_sync() -> None:
    # its SQLite store keeps the inboxes (tests/real/test_real_inbox.py runs it)
    from immodel.real.orchestrator import check_supported

    over = {"reliability.sync_cursor": "inbox", "duration_s": 3.0, "drain_s": 1.0}
    check_supported(Scenario.load("baseline", over))

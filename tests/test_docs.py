"""The repository stands alone: user documentation links only inside the repository,
cites no development issue or internal design file, and documents every summary metric."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
USER_DOCS = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    *sorted((ROOT / "notebooks").glob("*.py")),
    ROOT / "notebooks" / "README.md",
]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize("path", USER_DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_user_documentation_stands_alone(path):
    text = path.read_text(encoding="utf-8")
    assert "../shared" not in text and "/work/" not in text
    assert "DESIGN.md" not in text
    assert not re.search(r"\bissue \d+", text, re.IGNORECASE)
    for target in LINK.findall(text):
        if re.match(r"[a-z]+://", target):
            continue
        resolved = (path.parent / target).resolve()
        assert resolved.is_relative_to(ROOT), f"{path.name} links outside: {target}"
        assert resolved.exists(), f"{path.name} links to a missing file: {target}"


def test_model_description_covers_the_pipeline_and_the_deployment():
    text = (ROOT / "docs" / "model.md").read_text(encoding="utf-8")
    for topic in (
        "Uplink",
        "Server processing",
        "Downlink",
        "Transports",
        "Reliability",
        "Ordering",
        "Security",
        "UserSig",
        "pending-ACK",
        "fan-out",
    ):
        assert topic in text, topic
    assert "TODO" not in text
    assert "Deployment and network" in text and "stream" in text
    assert "## Deployment and network" in text.split("TODO")[0]


def test_every_summary_metric_is_documented():
    from immodel import Scenario, run

    summary = run(Scenario.load("crash", {"workload.users": 20, "duration_s": 10.0})).summary
    text = (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
    from immodel.columns import STAGES as stages

    kinds = ("send", "ack", "poll", "sync", "login")
    missing = []
    for key in summary:
        generic = re.sub(rf"^extra_requests_({'|'.join(kinds)})$", "extra_requests_<kind>", key)
        generic = re.sub(rf"^(\w+)_({'|'.join(stages)})$", r"\1_<stage>", generic)
        if f"`{key}`" not in text and f"`{generic}`" not in text:
            missing.append(key)
    assert not missing, f"undocumented summary metrics: {missing}"

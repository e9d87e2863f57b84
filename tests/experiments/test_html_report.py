"""Tests of ``immodel report DIR``: one self-contained HTML page for a run or a sweep."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from immodel.cli import main
from immodel.experiments.html_report import build_report, write_html_report


class _Refs(HTMLParser):
    """Collects every src/href of a page and the text of its <pre> blocks."""

    def __init__(self):
        super().__init__()
        self.refs: list[str] = []
        self.pre: list[str] = []
        self._in_pre = False

    def handle_starttag(self, tag, attrs):
        self.refs += [v for k, v in attrs if k in ("src", "href") and v]
        self._in_pre = tag == "pre"

    def handle_endtag(self, tag):
        self._in_pre = False if tag == "pre" else self._in_pre

    def handle_data(self, data):
        if self._in_pre:
            self.pre.append(data)


def parse(page: str) -> _Refs:
    refs = _Refs()
    refs.feed(page)
    return refs


def assert_self_contained(page: str) -> int:
    """Every reference is an embedded PNG that decodes; returns how many figures."""
    refs = parse(page).refs
    for ref in refs:
        assert ref.startswith("data:image/png;base64,"), ref[:60]
        assert base64.b64decode(ref.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    return len(refs)


def sweep_results(tmp_path):
    rows = []
    rng = np.random.default_rng(1)
    for point, (loss, kind) in enumerate([(0.0, "push"), (0.0, "long_poll"), (0.2, "push")]):
        for rep in range(3):
            rows.append(
                {
                    "point": point,
                    "network.downlink_loss": loss,
                    "transport.kind": kind,
                    "replication": rep,
                    "seed": 10 + rep,
                    "lost": 0,
                    "duplicates": 0,
                    "order_violations": [0, 2, 4][rep] if loss else 0,
                    "order_violations_1to1": [0, 2, 4][rep] if loss else 0,
                    "order_violations_group": 0,
                    "latency_p50_ms": 80.0 + rep,
                    "latency_p99_ms": 100.0 + 10 * rep + 1000 * loss,
                    "requests_per_s": 40.0 + rng.normal(),
                }
            )
    folder = tmp_path / "sweep"
    folder.mkdir()
    pd.DataFrame(rows).to_parquet(folder / "results.parquet")
    return folder


def test_sweep_page_has_mean_and_ci_per_point_figures_and_the_order_explanation(tmp_path):
    page = build_report(sweep_results(tmp_path))
    assert assert_self_contained(page) >= 3
    # p99 at 20 % loss, push: values 300, 310, 320 → mean 310, half width t(.975,2)·10/√3
    half = 4.302653 * 10 / np.sqrt(3)
    assert f"310 ± {half:.0f}" in page
    assert "9 runs: 3 grid points × 3 replications" in page
    assert "6 deliveries over 9 runs arrived out of order (6 in 1:1 conversations" in page
    assert "arrival order, not display order" in page
    assert "online when the message was stored" in page
    assert "immodel sweep" in "".join(parse(page).pre)


def test_run_page_has_latency_cis_the_scenario_and_the_command(tmp_path):
    from immodel import Scenario, run

    scenario = Scenario.load(
        "crash",
        {
            "workload.users": 40,
            "duration_s": 20.0,
            "drain_s": 10.0,
            "faults": [{"kind": "server_crash", "at_s": 5.0, "down_s": 4.0}],
        },
    )
    folder = run(scenario).write(tmp_path / "run")
    path = write_html_report(folder)
    assert path == folder / "report.html"
    page = path.read_text(encoding="utf-8")
    assert assert_self_contained(page) == 5  # ECDF, tail, recovery, load, load zoomed
    assert "online recipients (latency_* metrics)" in page
    assert "every first delivery incl. catch-up" in page
    assert re.search(r"\d[\d.,]* <small>\[[\d.,]+, ", page)  # a percentile with its CI
    pre = "".join(parse(page).pre)
    assert "server_crash" in pre and "seed = " in pre  # the resolved scenario
    assert f"immodel run {folder / 'scenario.toml'} --out" in pre
    assert "recovery time after the fault" in page


@pytest.mark.parametrize("make", ["missing", "empty", "file"])
def test_report_on_anything_else_is_one_error_line_and_status_2(tmp_path, capsys, make):
    target = tmp_path / "x"
    if make == "empty":
        target.mkdir()
    elif make == "file":
        target.write_text("hi")
    assert main(["report", str(target)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


def test_report_command_writes_where_asked_and_refuses_a_missing_folder(tmp_path, capsys):
    folder = sweep_results(tmp_path)
    out = tmp_path / "page.html"
    assert main(["report", str(folder), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out) and out.is_file()
    assert main(["report", str(folder), "--out", str(tmp_path / "no" / "page.html")]) == 2
    assert "--out: the folder" in capsys.readouterr().err


def test_run_page_of_a_hybrid_run_splits_latency_by_recipient_kind(tmp_path):
    import json

    folder = tmp_path / "hybrid"
    folder.mkdir()
    n = 400
    kinds = np.where(np.arange(n) % 4 == 0, "long_poll", "push")
    latency = np.where(kinds == "push", 80.0, 1500.0) + np.arange(n) % 7
    latency[:8] = np.nan  # eight long-poll pairs lost (indices 0, 4 are long_poll…)
    messages = pd.DataFrame(
        {
            "stored": True,
            "online_at_store": True,
            "latency_ms": latency,
            "recipient_kind": kinds,
            "first_via": "push",
        }
    )
    messages.to_parquet(folder / "messages.parquet")
    (folder / "summary.json").write_text(json.dumps({"lost": 8, "users": 10}))
    page = build_report(folder)
    table = page.split("By recipient client kind", 1)[1].split("</table>", 1)[0]
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", table)
    lost_long_poll = int(np.isnan(latency[kinds == "long_poll"]).sum())
    lost_push = int(np.isnan(latency[kinds == "push"]).sum())
    assert cells[:3] == ["push", "300", str(lost_push)]
    assert cells[6:9] == ["long polling", "100", str(lost_long_poll)]
    assert assert_self_contained(page) == 3  # ECDF, tail, ECDF by recipient kind

"""Tests of the report text of ``immodel.experiments.report``: what the tables' latency is
over, and the explanation of the order violations that remain with every mechanism on."""

from __future__ import annotations

import pandas as pd

from immodel.analysis.plots import plot_outcomes
from immodel.experiments.report import LATENCY_NOTE, ORDER_NOTE, explain_order_violations


def runs(order_1to1, order_group=None) -> pd.DataFrame:
    frame = pd.DataFrame({"order_violations_1to1": order_1to1, "lost": 0})
    frame["order_violations_group"] = order_group or [0] * len(frame)
    frame["order_violations"] = frame["order_violations_1to1"] + frame["order_violations_group"]
    return frame


def test_no_order_violations_need_no_explanation():
    assert explain_order_violations(runs([0, 0, 0])) is None
    assert explain_order_violations(pd.DataFrame({"lost": [1]})) is None


def test_order_violations_are_counted_from_the_runs_and_explained():
    text = explain_order_violations(runs([3, 0, 9], [0, 1, 0]))
    assert text.startswith("13 deliveries over 3 runs arrived out of order")
    assert "(12 in 1:1 conversations, 1 in group conversations)" in text
    assert "at most 9 in one run" in text
    assert text.endswith(ORDER_NOTE)


def test_order_note_states_arrival_order_versus_display_order():
    for phrase in ("arrival order, not display order", "shown on arrival", "server timestamp"):
        assert phrase in ORDER_NOTE
    assert "online when the message was stored" in LATENCY_NOTE


def test_outcomes_figure_title_does_not_claim_zeros():
    frame = pd.DataFrame({"mechanisms": ["all on", "all on"], "order_violations": [2, 4]})
    fig = plot_outcomes(frame, "mechanisms", outcomes=("order_violations",))
    assert "should" not in fig.get_suptitle()
    assert "arrival" in fig.axes[0].get_title()

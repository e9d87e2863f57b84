"""Latency and delivery split by recipient client kind (hybrid runs), on a synthetic frame."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from immodel.analysis.plots import plot_by_recipient_kind
from immodel.analysis.stats import by_recipient_kind


def hybrid_messages() -> pd.DataFrame:
    """100 push pairs at 1..100 ms, 50 long-poll pairs at 1000..1049 ms (5 lost), and
    10 long-poll pairs of offline recipients at 10 s."""
    push = pd.DataFrame({"latency_ms": np.arange(1.0, 101.0), "recipient_kind": "push"})
    lp = pd.DataFrame({"latency_ms": np.arange(1000.0, 1050.0), "recipient_kind": "long_poll"})
    lp.loc[lp.index[:5], "latency_ms"] = np.nan
    off = pd.DataFrame(
        {"latency_ms": np.full(10, 10_000.0), "recipient_kind": "long_poll", "online": False}
    )
    frame = pd.concat([push, lp, off], ignore_index=True)
    frame["online_at_store"] = frame.pop("online").fillna(True).astype(bool)
    frame["stored"] = True
    return frame


def test_split_by_recipient_kind_matches_numpy_per_kind():
    out = by_recipient_kind(hybrid_messages())
    push = np.arange(1.0, 101.0)
    lp = np.arange(1005.0, 1050.0)  # delivered online long-poll pairs
    assert out["latency_p99_ms_push"] == pytest.approx(np.quantile(push, 0.99))
    assert out["latency_p50_ms_long_poll"] == pytest.approx(np.quantile(lp, 0.5))
    assert out["latency_p99_ms_long_poll"] == pytest.approx(np.quantile(lp, 0.99))
    assert out["deliveries_expected_push"] == 100 and out["lost_push"] == 0
    assert out["deliveries_expected_long_poll"] == 60 and out["lost_long_poll"] == 5
    assert out["delivery_ratio_long_poll"] == pytest.approx(55 / 60)
    assert not any(k.endswith("_short_poll") for k in out)  # absent kinds are not invented


def test_runs_without_the_column_give_no_split():
    assert by_recipient_kind(hybrid_messages().drop(columns="recipient_kind")) == {}


def test_figure_has_one_curve_per_kind_with_its_own_expected_pairs():
    ax = plot_by_recipient_kind(hybrid_messages()).axes[0]
    texts = ax.get_legend().get_texts()
    labels = [t.get_text() for t in texts]
    assert labels[0].startswith("long polling") and "n = 45 of 50 expected" in labels[0]
    assert labels[1].startswith("push") and "n = 100 of 100 expected" in labels[1]
    with pytest.raises(ValueError, match="recipient_kind"):
        plot_by_recipient_kind(hybrid_messages().drop(columns="recipient_kind"))

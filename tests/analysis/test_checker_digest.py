"""The checker's optional ``digest`` column: a deliver row whose content digest differs
from its message's stored (else send) row is an altered delivery, and a failure."""

import pandas as pd

from immodel.analysis.checker import check_trace


def _trace(deliver_digests, stored=True):
    rows = [(0.0, "send", "m1", "c", "a", None, 7)]
    if stored:
        rows += [(0.1, "stored", "m1", "c", "b", 1, 7), (0.1, "stored", "m1", "c", "d", 1, 7)]
    users = ["b", "d"]
    for i, d in enumerate(deliver_digests):
        rows.append((0.2 + i, "deliver", "m1", "c", users[i % 2], 1, d))
    return pd.DataFrame(
        rows, columns=["t", "event", "msg_id", "conversation", "user", "order_key", "digest"]
    )


def test_equal_digests_pass():
    report = check_trace(_trace([7, 7]))
    assert report.altered_deliveries == 0
    assert report.ok


def test_a_changed_digest_is_an_altered_delivery_with_its_reference_row():
    report = check_trace(_trace([7, 9]))
    assert report.altered_deliveries == 1
    assert not report.ok
    roles = [r["role"] for r in report.examples["altered_deliveries"]]
    assert roles == ["reference", "deliver"]
    assert "altered deliveries 1" in report.format()


def test_without_stored_rows_the_send_row_is_the_reference():
    report = check_trace(_trace([9], stored=False))
    assert report.altered_deliveries == 1


def test_the_digest_column_is_optional():
    report = check_trace(_trace([7, 9]).drop(columns=["digest"]))
    assert report.altered_deliveries == 0
    assert report.ok

"""With the default security keys every built-in scenario's records are as before the
security model existed, and as before each speed-up of the simulator: the fingerprints saved
in ``tests/data/security-defaults-golden.json`` (written by running this file as a script on
the code before the change; the last four built-ins were added from the code before the
deadline slots, the quiet short-poll answers and the column records). A change of the
model itself that moves the records (a new draw order, a fixed bug) rewrites the file in
the same commit, which says why; a change that adds an option must leave it as it is.

A fingerprint is one hash per column of each record frame and the summary without its
wall-clock keys; comparing only the columns and keys present in the saved file lets the
records grow new columns and the summary new keys while every old value must stay equal.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
from pathlib import Path

import pandas as pd
import pytest

import immodel
from immodel.scenario import Scenario

NAMES = (
    "baseline",
    "hybrid",
    "long-poll",
    "crash",
    "lossy-mobile",
    "short-poll",
    # added with the speed-ups, which must leave every built-in scenario's records as they
    # were (fingerprinted on the code before them)
    "admin-broadcast",
    "hostile-network",
    "live",
    "multi-device",
)
SMALL = {"workload.users": 60, "duration_s": 20.0}
# Scenarios whose own keys do not fit SMALL (a broadcast at t = 20 s, groups of 500).
OVERRIDES = {
    "admin-broadcast": {"workload.users": 2000, "duration_s": 25.0},
    "multi-device": {
        "workload.users": 1000,
        "workload.group_size": 300,
        "duration_s": 40.0,
        "drain_s": 60.0,
    },
    "hostile-network": {"duration_s": 40.0},
    "live": {"duration_s": 30.0},
}
GOLDEN = Path(__file__).resolve().parents[1] / "data" / "security-defaults-golden.json"
# Wall time, and the count of SimPy events (which grows with events nothing reads,
# like a timer scheduled past the horizon), are not records.
NOT_RECORDS = {"wall_s", "sim_events"}


def _col_hash(series: pd.Series) -> str:
    values = pd.util.hash_pandas_object(series, index=False).to_numpy().tobytes()
    return hashlib.sha256(values).hexdigest()


def _plain(value):
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return value


def fingerprint(name: str) -> dict:
    """The fingerprint of built-in ``name`` with :data:`SMALL` (or its :data:`OVERRIDES`)."""
    r = immodel.run(Scenario.load(name, OVERRIDES.get(name, SMALL)))
    frames = {}
    for frame in ("messages", "requests", "load", "trace"):
        df = getattr(r, frame)
        frames[frame] = {c: _col_hash(df[c]) for c in df.columns}
    summary = {k: _plain(v) for k, v in r.summary.items() if k not in NOT_RECORDS}
    return {"frames": frames, "summary": json.loads(json.dumps(summary, default=str))}


@pytest.mark.parametrize("name", NAMES)
def test_default_security_keys_leave_records_and_summary_unchanged(name):
    saved = json.loads(GOLDEN.read_text())[name]
    now = fingerprint(name)
    for frame, cols in saved["frames"].items():
        for col, digest in cols.items():
            assert now["frames"][frame][col] == digest, f"{name}: {frame}.{col} changed"
    for key, value in saved["summary"].items():
        assert now["summary"][key] == value, f"{name}: summary {key} changed"


if __name__ == "__main__":  # writes the golden file (run before a change, never after)
    GOLDEN.write_text(
        json.dumps({n: fingerprint(n) for n in NAMES}, indent=1, sort_keys=True) + "\n"
    )
    print(f"wrote {GOLDEN}", file=sys.stderr)

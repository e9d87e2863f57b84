"""The delivery checker: loss, duplication and misordering in an event log.

The checker reads a delivery trace (``docs/metrics.md``, "Trace") -- one row per event, from
immodel's own ``trace.parquet`` or exported from a real IM system -- and says whether
every message reached every recipient exactly once and in the conversation's order. Each
fault comes with a minimal counterexample: the rows of the trace that prove it.

Input columns (extra columns are ignored):

``t``
    time in seconds (float; a datetime or timedelta column is converted to seconds).
``event``
    ``send`` (the app submitted), ``stored`` (the server accepted it; one row per
    recipient that must get it), ``deliver`` (a copy arrived at a recipient's app).
``msg_id``, ``conversation``
    ids, compared by value (:func:`load_trace` reads them from CSV as strings so that
    ``"007"`` stays ``"007"``).
``user``
    the sender on ``send`` rows, the recipient on ``stored`` and ``deliver`` rows.
``order_key``
    the conversation's reference order (server timestamp for 1:1, seq for groups),
    numeric, required on ``stored`` and ``deliver`` rows, ignored on ``send`` rows.
    Integer keys are compared as integers, so nanosecond timestamps keep their precision.

Definitions (a *pair* is ``(msg_id, user)``; "in time order" means by ``t``, ties broken
by the row order of the file):

expected pairs, ``deliveries_expected``
    the distinct pairs of ``stored`` rows (a repeated ``stored`` row counts once).
``deliveries``
    the distinct pairs of ``deliver`` rows. A pair's *first delivery* is its first
    ``deliver`` row in time order.
``lost``
    expected pairs with no ``deliver`` row at all.
``duplicates``
    ``deliver`` rows beyond the first delivery of their pair: the number of extra rows.
``order_violations``
    for each recipient ``user`` and each ``conversation`` (of the deliver row), walk the
    recipient's first deliveries in time order; a first delivery is a violation when a
    message of the same conversation with a strictly larger ``order_key`` was delivered to
    that user before it. The count is the number of such deliveries; duplicate copies are
    never counted again, and equal keys are not a violation. The order of a recipient is
    measured independently of every other recipient and conversation.
``unexpected_deliveries``
    delivered pairs that have no ``stored`` row ("phantoms"). Counted, never a failure by
    itself: a log may simply not record ``stored`` for some messages (a trace that starts
    after the message was stored, an export of client-side logs only).
``misdirected_deliveries``
    the unexpected deliveries whose message *does* have ``stored`` rows, for other
    recipients. Here the trace contradicts itself -- the server stated who must get the
    message and someone else got it -- so this is a failure (a wrong recipient is a leak,
    a missing ``stored`` row is a broken log). This is the only addition to the three
    counts of the run summary; a system that legitimately delivers to more users (the sender's
    own devices, late group joiners) should log ``stored`` rows for them too.
``altered_deliveries``
    only for a trace with the optional ``digest`` column (a content digest per row):
    ``deliver`` rows whose digest differs from the digest of their message's first
    ``stored`` row (or, for a message without one, its first ``send`` row) -- content
    changed between the server and the app, e.g. by an on-path attacker on a plaintext
    channel. A failure. A trace without ``digest`` is valid and reports 0.
latency
    for each expected pair that was delivered, the first delivery's ``t`` minus the
    earliest ``send`` row of its message, in milliseconds (pairs whose message has no
    ``send`` row are left out); mean, p50, p95, p99 (linear interpolation) and max.
    ``None`` when there is nothing to measure. The population is *every first delivery,
    including catch-up after the recipient was offline*: a trace does not say who was
    online. The run summary's ``latency_*_ms`` (``immodel run``) are over recipients
    online when the message was stored, so on the same run they are lower; the run's
    ``catchup_latency_*_ms`` cover the rest. The text report names its population.

Recipients who never came back (the optional ``reachable_after_store`` column, on
``stored`` rows: did the recipient -- the device -- connect (log in) at or after this
row's ``t``, or was it connected at the end of the log? immodel's own traces have it;
true, false, 1, 0 or empty, which counts as true):

``lost_awaiting_login``
    lost pairs whose first ``stored`` row says false: the recipient is offline at the end
    and has not logged in since the store, so the message is still waiting in the store
    for its next login. Not a failure: an app that stays closed cannot be reached.
``lost_while_reachable``
    ``lost - lost_awaiting_login``: lost pairs whose recipient logged in after the store
    or was connected at the end. Without the column every lost pair is counted here.

Live traffic (the optional ``live`` column, true on the rows of a live-broadcast room, as in
immodel's ``live_trace.parquet``): a live message is owed to no viewer, so its rows have no
``stored`` rows and nothing of it is ``lost``; its deliver rows are not counted as
unexpected; duplicates and order are checked as for any other row (``user`` is the viewer,
``order_key`` the room's seq).

A report is :attr:`CheckReport.ok` when ``lost_while_reachable`` (``lost`` for a trace
without ``reachable_after_store``), ``duplicates``, ``order_violations``,
``misdirected_deliveries`` and ``altered_deliveries`` are all zero; ``immodel check`` then
exits 0, otherwise 1.

Counterexamples are in :attr:`CheckReport.examples`, at most :data:`MAX_EXAMPLES` per kind,
the earliest ones first. Each is one or more plain row dicts with the trace columns and
``example`` (which counterexample the row belongs to), ``role`` and ``row`` (0-based
position of the row in the trace table; in a CSV file that is line ``row + 2``):

- ``lost``: the ``stored`` row of the pair (role ``stored``), pairs lost while reachable
  only (a pair awaiting login is not a fault);
- ``duplicates``: the first delivery (``first``) and the first extra copy (``extra``);
- ``order_violations``: the earlier delivery with the larger key (``earlier``; the largest
  key delivered before) and the late delivery (``late``);
- ``misdirected_deliveries``: the first delivery (``deliver``) and one ``stored`` row of
  the same message (``stored``), showing who was meant to get it.

Everything is vectorised (numpy/pandas over integer codes): a few million rows take
seconds. Bad input raises :class:`~immodel.errors.UserError` with a one-line message.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from immodel.errors import UserError

REQUIRED_COLUMNS: tuple[str, ...] = ("t", "event", "msg_id", "conversation", "user", "order_key")
"""The columns every trace must have."""

EVENTS: tuple[str, ...] = ("send", "stored", "deliver")
"""The allowed values of the ``event`` column."""

LATENCY_POPULATION = (
    "every first delivery incl. catch-up (send -> first deliver row of each expected pair); "
    "the run summary's latency_* cover online recipients only"
)
"""What the checker's latency summarises, as its text report says it."""

MAX_EXAMPLES = 5
"""Counterexamples kept per kind of fault."""

FAULT_KINDS: tuple[str, ...] = (
    "lost",
    "duplicates",
    "order_violations",
    "misdirected_deliveries",
    "altered_deliveries",
)
"""The counts that make a trace fail, also the keys of :attr:`CheckReport.examples`."""

REACHABLE_COLUMN = "reachable_after_store"
"""The optional column that splits ``lost`` into awaiting login and while reachable."""

_SEND, _STORED, _DELIVER = 0, 1, 2
_CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zst", ".csv.xz")
_PARQUET_SUFFIXES = (".parquet", ".pq")
_STRING_COLUMNS = ("event", "msg_id", "conversation", "user", "order_key")


@dataclass
class CheckReport:
    """What the checker found in one trace.

    Counts follow the definitions of this module's docstring; latencies are in
    milliseconds and ``None`` when there was nothing to measure. ``examples`` maps each
    of :data:`FAULT_KINDS` to the rows of at most :data:`MAX_EXAMPLES` counterexamples.
    A report is plain data: build it with :func:`check_trace`, serialise it with
    :meth:`to_dict`, print it with :meth:`format`.
    """

    lost: int = 0
    lost_awaiting_login: int = 0
    lost_while_reachable: int = 0
    reachability_known: bool = False
    duplicates: int = 0
    order_violations: int = 0
    deliveries: int = 0
    deliveries_expected: int = 0
    unexpected_deliveries: int = 0
    misdirected_deliveries: int = 0
    altered_deliveries: int = 0
    messages_sent: int = 0
    rows: int = 0
    events: dict[str, int] = field(default_factory=dict)
    latency_samples: int = 0
    latency_mean_ms: float | None = None
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    latency_p99_ms: float | None = None
    latency_max_ms: float | None = None
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when nothing was lost while its recipient was reachable, duplicated,
        misordered, misdirected or altered (a pair awaiting login is not a fault)."""
        return not (
            self.lost_while_reachable
            or self.duplicates
            or self.order_violations
            or self.misdirected_deliveries
            or self.altered_deliveries
        )

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-safe data (plain Python types, NaN and ±inf as None), with ``ok``."""
        data = _json_safe(asdict(self))
        data["ok"] = self.ok
        return data

    def format(self, title: str | None = None) -> str:
        """A human-readable report: counts, latency, then counterexamples as small tables."""
        ev = self.events
        lines = [f"immodel check: {title}"] if title else []
        detail = ", ".join(f"{ev.get(e, 0)} {e}" for e in EVENTS)
        rows = [
            ("rows", f"{self.rows} ({detail})"),
            ("messages sent", self.messages_sent),
            ("deliveries expected", self.deliveries_expected),
            ("deliveries", self.deliveries),
            ("lost", self.lost),
            ("  awaiting login", self._awaiting_text()),
            ("  while reachable", self.lost_while_reachable),
            ("duplicates", self.duplicates),
            ("order violations", self.order_violations),
            ("unexpected deliveries", self.unexpected_deliveries),
            ("  of which misdirected", self.misdirected_deliveries),
            ("altered deliveries", self.altered_deliveries),
        ]
        if self.latency_samples:
            lat = "  ".join(
                f"{name} {_fmt_ms(getattr(self, f'latency_{name}_ms'))}"
                for name in ("mean", "p50", "p95", "p99", "max")
            )
            rows.append(("latency ms", f"{lat}  (n={self.latency_samples})"))
        else:
            rows.append(("latency ms", "n/a (no delivered pair with a send row)"))
        rows.append(("  population", LATENCY_POPULATION))
        width = max(len(name) for name, _ in rows)
        lines += [f"  {name:<{width}}  {value}" for name, value in rows]
        if self.rows and not ev.get("stored", 0):
            lines.append(
                "  note: no stored rows, so no delivery is expected and loss is not measured"
            )
        if self.ok and self.lost_awaiting_login:
            lines.append(
                "OK: nothing lost while its recipient was reachable, no duplication, "
                f"misordering or misdirected delivery ({self.lost_awaiting_login} lost "
                "pair(s) await their recipient's next login)"
            )
        elif self.ok:
            lines.append("OK: no loss, duplication, misordering or misdirected delivery")
        else:
            found = [
                f"{self._fault_name(kind)} {self._fault_count(kind)}"
                for kind in FAULT_KINDS
                if self._fault_count(kind)
            ]
            lines.append("FAIL: " + ", ".join(found))
        for kind in FAULT_KINDS:
            example_rows = self.examples.get(kind) or []
            if not example_rows:
                continue
            shown = len({r["example"] for r in example_rows})
            total = self._fault_count(kind)
            lines.append("")
            lines.append(f"{self._fault_name(kind)}: {shown} of {total} counterexample(s)")
            table = pd.DataFrame(example_rows)
            lines.extend("  " + line for line in table.to_string(index=False).splitlines())
        return "\n".join(lines)

    def _fault_count(self, kind: str) -> int:
        """The count of one of :data:`FAULT_KINDS` that fails a trace (``lost``: the pairs
        lost while reachable)."""
        return self.lost_while_reachable if kind == "lost" else getattr(self, kind)

    def _fault_name(self, kind: str) -> str:
        if kind == "lost" and self.reachability_known:
            return "lost while reachable"
        return kind.replace("_", " ")

    def _awaiting_text(self) -> str:
        if self.reachability_known:
            n = self.lost_awaiting_login
            return f"{n} (recipient offline at the end, no login since the store)"
        return "n/a (no reachable_after_store column: every lost pair counts as reachable)"


def load_trace(path: str | Path) -> pd.DataFrame:
    """Read a trace file into a DataFrame, choosing the reader by the file's extension.

    ``.csv`` (optionally compressed, e.g. ``.csv.gz``) or ``.parquet`` / ``.pq``. From CSV,
    ``event``, ``msg_id``, ``conversation``, ``user`` and ``order_key`` are read as
    strings exactly as written (no "NA" guessing, leading zeros kept); :func:`check_trace`
    parses ``order_key`` itself. The table is not validated here (see
    :func:`validate_trace`). Raises :class:`UserError` for a missing, unknown or
    unreadable file.
    """
    p = Path(path)
    name = p.name.lower()
    if not p.exists():
        raise UserError(f"trace file not found: {path}")
    if name.endswith(_CSV_SUFFIXES):
        kind = "CSV"
    elif name.endswith(_PARQUET_SUFFIXES):
        kind = "parquet"
    else:
        allowed = ", ".join((*_CSV_SUFFIXES[:2], *_PARQUET_SUFFIXES))
        raise UserError(f"trace {path}: unknown file type; use one of {allowed}")
    if p.is_dir() and kind == "CSV":
        raise UserError(f"trace {path} is a directory, not a CSV file")
    try:
        if kind == "CSV":
            return pd.read_csv(p, dtype={c: str for c in _STRING_COLUMNS}, keep_default_na=False)
        return pd.read_parquet(p)
    except Exception as exc:  # any reader failure is the file's fault, not a bug here
        raise UserError(f"cannot read trace {path} as {kind}: {_one_line(exc)}") from exc


def validate_trace(df: pd.DataFrame, source: str = "trace") -> None:
    """Check that ``df`` is a usable trace; raise :class:`UserError` naming the first problem.

    Problems: a missing or repeated column, an unknown ``event`` value, a ``t`` that is not a finite
    number, an empty ``msg_id`` (any row) or ``user``/``conversation`` (stored and
    deliver rows), an ``order_key`` missing or not numeric on a stored or deliver row.
    ``source`` names the trace in the message (e.g. its file name).
    """
    _normalise(df, source)


def check_trace(df: pd.DataFrame, source: str = "trace") -> CheckReport:
    """Check a trace for loss, duplication and misordering; see the module docstring.

    ``df`` has the trace columns (see :func:`load_trace` for files); it is validated first
    (:func:`validate_trace`) and not modified. Vectorised: a few million rows take seconds.
    """
    tr = _normalise(df, source)
    n = tr.n
    ev, t, pair, msg = tr.event, tr.t, tr.pair, tr.msg
    report = CheckReport(rows=n)
    report.events = {name: int(np.count_nonzero(ev == code)) for code, name in enumerate(EVENTS)}

    send_rows = np.flatnonzero(ev == _SEND)
    stored_rows = np.flatnonzero(ev == _STORED)
    deliver_rows = np.flatnonzero(ev == _DELIVER)
    n_msgs = int(msg.max()) + 1 if n else 0
    report.messages_sent = int(np.count_nonzero(np.bincount(msg[send_rows], minlength=n_msgs)))

    # Expected pairs and, per pair, its first stored row in file order (unique's index is
    # the first occurrence: numpy sorts stably when return_index is asked for).
    expected, first_stored = np.unique(pair[stored_rows], return_index=True)
    first_stored = stored_rows[first_stored]
    report.deliveries_expected = int(expected.size)

    # Deliver rows in time order, ties by file row; the first row of a pair is its
    # first delivery, the others are duplicates.
    by_time = deliver_rows[np.argsort(t[deliver_rows], kind="stable")]
    extra = pd.Series(pair[by_time]).duplicated().to_numpy()
    first = by_time[~extra]  # first deliveries, time order
    dups = by_time[extra]
    first_pair = pair[first]
    report.deliveries = int(first.size)
    report.duplicates = int(dups.size)

    delivered_expected = _member(expected, np.sort(first_pair))
    lost_rows = np.sort(first_stored[~delivered_expected])
    report.lost = int(lost_rows.size)
    if tr.reachable is not None:
        report.reachability_known = True
        awaiting = ~tr.reachable[lost_rows]
        report.lost_awaiting_login = int(np.count_nonzero(awaiting))
        lost_rows = lost_rows[~awaiting]  # the failures (and their counterexamples)
    report.lost_while_reachable = int(lost_rows.size)

    is_expected = _member(first_pair, expected)
    unexpected = ~is_expected
    if "live" in tr.df.columns:  # live deliveries are owed to nobody: never unexpected
        unexpected &= ~tr.df["live"].fillna(False).to_numpy(dtype=bool)[first]
    report.unexpected_deliveries = int(np.count_nonzero(unexpected))
    stored_msgs = np.bincount(msg[stored_rows], minlength=n_msgs) > 0
    misdirected = ~is_expected & stored_msgs[msg[first]]
    misdirected_rows = first[misdirected]
    report.misdirected_deliveries = int(misdirected_rows.size)

    _latency(report, tr, send_rows, first[is_expected])
    # (what the examples below do not read, dropped before the order walk's own arrays)
    del expected, first_stored, by_time, extra, delivered_expected, is_expected
    del unexpected, stored_msgs, misdirected
    violations, earlier = _order_violations(tr, first)
    report.order_violations = int(violations.size)

    ex: dict[str, list[dict[str, Any]]] = {kind: [] for kind in FAULT_KINDS}
    for i, row in enumerate(lost_rows[:MAX_EXAMPLES]):
        ex["lost"].append(tr.row_dict(row, i, "stored"))
    dup_examples = dups[~pd.Series(pair[dups]).duplicated().to_numpy()][:MAX_EXAMPLES]
    for i, row in enumerate(dup_examples):
        first_row = first[np.flatnonzero(first_pair == pair[row])[0]]
        ex["duplicates"] += [tr.row_dict(first_row, i, "first"), tr.row_dict(row, i, "extra")]
    for i, (late, before) in enumerate(zip(violations[:MAX_EXAMPLES], earlier, strict=True)):
        ex["order_violations"] += [tr.row_dict(before, i, "earlier"), tr.row_dict(late, i, "late")]
    for i, row in enumerate(misdirected_rows[:MAX_EXAMPLES]):
        stored_row = stored_rows[np.flatnonzero(msg[stored_rows] == msg[row])[0]]
        ex["misdirected_deliveries"] += [
            tr.row_dict(row, i, "deliver"),
            tr.row_dict(stored_row, i, "stored"),
        ]
    altered_rows, reference_rows = _altered(tr, send_rows, stored_rows, deliver_rows)
    report.altered_deliveries = int(altered_rows.size)
    for i, (row, ref) in enumerate(zip(altered_rows[:MAX_EXAMPLES], reference_rows, strict=False)):
        ex["altered_deliveries"] += [
            tr.row_dict(ref, i, "reference"),
            tr.row_dict(row, i, "deliver"),
        ]
    report.examples = ex
    return report


def _altered(
    tr: _Trace, send_rows: np.ndarray, stored_rows: np.ndarray, deliver_rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Deliver rows whose ``digest`` differs from their message's reference digest (first
    stored row, else first send row), and those reference rows; empty without a
    ``digest`` column or for messages with no reference row."""
    empty = np.empty(0, dtype=np.int64)
    if "digest" not in tr.df.columns or not deliver_rows.size:
        return empty, empty
    raw = tr.df["digest"].to_numpy()
    n_msgs = int(tr.msg.max()) + 1
    ref = np.full(n_msgs, -1, dtype=np.int64)
    # later assignments win: write send rows, then stored rows, each in reverse file order
    for rows in (send_rows, stored_rows):
        ref[tr.msg[rows[::-1]]] = rows[::-1]
    ref_of = ref[tr.msg[deliver_rows]]
    has = ref_of >= 0
    rows, refs = deliver_rows[has], ref_of[has]
    if np.issubdtype(raw.dtype, np.integer):  # compare integers exactly, not as floats
        differs = raw[rows] != raw[refs]
    else:
        digest = pd.to_numeric(tr.df["digest"], errors="coerce").to_numpy(dtype=np.float64)
        differs = ~(
            (digest[rows] == digest[refs]) | (np.isnan(digest[rows]) & np.isnan(digest[refs]))
        )
    return rows[differs], refs[differs]


def cmd_check(args: argparse.Namespace) -> int:
    """``immodel check TRACE [--json]``: print the report; 0 when the trace is clean, else 1.

    A file that is missing, unreadable or not a valid trace raises :class:`UserError`
    (the CLI prints one ``error:`` line and exits 2).
    """
    df = load_trace(args.trace)
    report = check_trace(df, source=str(args.trace))
    if getattr(args, "json", False):
        print(json.dumps(report.to_dict(), indent=2, allow_nan=False))
    else:
        print(report.format(title=str(args.trace)))
    return 0 if report.ok else 1


# --- internals ---------------------------------------------------------------------------


@dataclass
class _Trace:
    """A validated trace as flat numpy arrays (codes instead of strings)."""

    df: pd.DataFrame
    n: int
    t: np.ndarray  # float64 seconds
    event: np.ndarray  # int8 index into EVENTS
    msg: np.ndarray  # int64 codes of msg_id
    user: np.ndarray  # int64 codes of user
    conv: np.ndarray  # int64 codes of conversation (-1 where missing)
    key: np.ndarray  # numeric order_key; meaningful on stored/deliver rows only
    pair: np.ndarray  # int64 code of (msg_id, user)
    reachable: np.ndarray | None = None  # bool per row (stored rows), or no such column

    def row_dict(self, row: int, example: int, role: str) -> dict[str, Any]:
        """One trace row as plain Python data, labelled for a counterexample table."""
        out: dict[str, Any] = {"example": int(example), "role": role, "row": int(row)}
        out["t"] = float(self.t[row])
        for col in ("event", "msg_id", "conversation", "user"):
            out[col] = _py(self.df[col].iloc[row])
        out["order_key"] = _py(self.key[row]) if self.event[row] != _SEND else None
        if "digest" in self.df.columns:
            out["digest"] = _py(self.df["digest"].iloc[row])
        if self.reachable is not None and self.event[row] == _STORED:
            out["reachable_after_store"] = bool(self.reachable[row])
        return out


def _normalise(df: pd.DataFrame, source: str) -> _Trace:
    """Validate ``df`` and turn it into a :class:`_Trace`; raise UserError on bad input."""
    if not isinstance(df, pd.DataFrame):
        raise UserError(f"{source}: expected a table (pandas DataFrame), got {type(df).__name__}")
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        names = ", ".join(repr(c) for c in missing)
        raise UserError(
            f"{source}: missing column {names}; required columns: {', '.join(REQUIRED_COLUMNS)}"
        )
    repeated = [c for c in REQUIRED_COLUMNS if np.count_nonzero(df.columns == c) > 1]
    if repeated:
        raise UserError(f"{source}: column {repeated[0]!r} appears more than once")
    n = len(df)

    # Factorise first: mapping a handful of distinct values is cheaper than looking up
    # millions of strings.
    codes, values = pd.factorize(df["event"])
    event = np.append(pd.Index(EVENTS).get_indexer(values), -1)[codes]
    bad = np.flatnonzero(event < 0)
    if bad.size:
        values = pd.unique(df["event"].iloc[bad])[:3]
        shown = ", ".join(repr(_py(v)) for v in values)
        raise UserError(
            f"{source}: unknown event value {shown} ({bad.size} row(s), first at row "
            f"{bad[0]}); allowed: {', '.join(EVENTS)}"
        )
    event = event.astype(np.int8)
    receiving = event != _SEND

    t = _seconds(df["t"])
    bad = np.flatnonzero(~np.isfinite(t))
    if bad.size:
        raise UserError(
            f"{source}: column 't' must be a finite number of seconds; row {bad[0]} has "
            f"{_show(df['t'].iloc[bad[0]])} ({bad.size} bad row(s))"
        )

    for col, where in (("msg_id", None), ("user", receiving), ("conversation", receiving)):
        col_missing = _missing(df[col])
        if where is not None:
            col_missing = col_missing & where
        bad = np.flatnonzero(col_missing)
        if bad.size:
            kind = "any" if where is None else "stored and deliver"
            raise UserError(
                f"{source}: column {col!r} is empty on row {bad[0]} ({bad.size} row(s)); "
                f"it is required on {kind} rows"
            )

    recv_rows = np.flatnonzero(receiving)
    raw_key = df["order_key"].iloc[recv_rows]
    parsed = pd.to_numeric(raw_key, errors="coerce") if not _is_real(raw_key) else raw_key
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if bad.size:
        row = recv_rows[bad[0]]
        raise UserError(
            f"{source}: column 'order_key' must be a number on stored and deliver rows; "
            f"row {row} ({EVENTS[event[row]]}) has {_show(raw_key.iloc[bad[0]])} "
            f"({bad.size} bad row(s))"
        )
    if pd.api.types.is_bool_dtype(parsed.dtype) or pd.api.types.is_signed_integer_dtype(
        parsed.dtype
    ):
        key_values = parsed.to_numpy(dtype=np.int64)
    elif pd.api.types.is_unsigned_integer_dtype(parsed.dtype):
        key_values = parsed.to_numpy(dtype=np.uint64)
    else:
        key_values = parsed.to_numpy(dtype=np.float64)
    key = np.zeros(n, dtype=key_values.dtype)
    key[recv_rows] = key_values

    msg, _ = pd.factorize(df["msg_id"])
    user, users = pd.factorize(df["user"])
    conv, _ = pd.factorize(df["conversation"])
    # (factorize's codes are int64 already: no copies of a million-row array)
    msg = msg.astype(np.int64, copy=False)
    user = user.astype(np.int64, copy=False)
    # send rows may lack a user (-1); they never form pairs, so any value is fine there.
    pair = msg * (len(users) + 1) + (user + 1)
    reachable = None
    if REACHABLE_COLUMN in df.columns:
        reachable = _reachable(df[REACHABLE_COLUMN], event == _STORED, source)
    return _Trace(
        df=df,
        n=n,
        t=t,
        event=event,
        msg=msg,
        user=user,
        conv=conv.astype(np.int64, copy=False),
        key=key,
        pair=pair,
        reachable=reachable,
    )


_TRUE = frozenset({"true", "1", "t", "yes", ""})
_FALSE = frozenset({"false", "0", "f", "no"})


def _reachable(col: pd.Series, stored: np.ndarray, source: str) -> np.ndarray:
    """The ``reachable_after_store`` column as bools (meaningful on stored rows; empty or
    missing counts as true, so an unknown recipient can still fail the trace)."""
    if pd.api.types.is_bool_dtype(col.dtype):
        return col.fillna(True).to_numpy(dtype=bool)
    if _is_real(col):
        values = col.to_numpy(dtype=float, na_value=np.nan)
        bad = np.flatnonzero(stored & ~(np.isnan(values) | (values == 0) | (values == 1)))
        if not bad.size:
            return ~(values == 0)
    else:
        text = col.astype(object).where(col.notna(), "").astype(str).str.strip().str.lower()
        false = text.isin(_FALSE).to_numpy()
        bad = np.flatnonzero(stored & ~(false | text.isin(_TRUE).to_numpy()))
        if not bad.size:
            return ~false
    raise UserError(
        f"{source}: column {REACHABLE_COLUMN!r} must be true or false on stored rows; row "
        f"{bad[0]} has {_show(col.iloc[bad[0]])} ({bad.size} bad row(s))"
    )


def _order_violations(tr: _Trace, first: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Order violations among first deliveries ``first`` (row numbers, in time order).

    Returns the violating rows in time order and, for the first :data:`MAX_EXAMPLES`, the
    earlier row with the largest key delivered before it. The walk is a segmented running
    maximum: rows are grouped by (user, conversation) keeping time order, each key is
    replaced by its dense rank and offset by its group's index times the number of ranks,
    so one ``maximum.accumulate`` over the whole array never carries a maximum across a
    group boundary (an earlier group's values are all smaller).
    """
    m = first.size
    if m == 0:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty
    # (each temporary is dropped once used: these are as long as the trace's deliveries)
    group = tr.user[first] * (int(tr.conv.max()) + 2) + (tr.conv[first] + 1)
    order = np.argsort(group, kind="stable")  # stable: time order kept inside a group
    g = group[order]
    del group
    _, rank = np.unique(tr.key[first][order], return_inverse=True)
    n_ranks = int(rank.max()) + 1
    group_index = np.cumsum(np.r_[True, g[1:] != g[:-1]]) - 1
    del g
    value = group_index.astype(np.int64) * n_ranks + rank.astype(np.int64)
    del group_index, rank
    running = np.maximum.accumulate(value)
    before = np.r_[np.int64(-1), running[:-1]]
    bad = np.flatnonzero(before > value)
    del before
    # Report in time order: positions in `first` are time ranks.
    time_pos = np.sort(order[bad])
    violations = first[time_pos]
    # Where the running max was last reached: that row has the largest key seen so far.
    attained = np.maximum.accumulate(np.where(value == running, np.arange(m), 0))
    inverse = np.empty(m, dtype=np.int64)
    inverse[order] = np.arange(m)
    sorted_pos = inverse[time_pos[:MAX_EXAMPLES]]
    earlier = first[order[attained[sorted_pos - 1]]]
    return violations, earlier


def _member(values: np.ndarray, sorted_set: np.ndarray) -> np.ndarray:
    """``np.isin(values, sorted_set)`` for an already sorted set (a binary search, no hashing)."""
    if not sorted_set.size:
        return np.zeros(values.shape, dtype=bool)
    at = np.minimum(np.searchsorted(sorted_set, values), sorted_set.size - 1)
    return sorted_set[at] == values


def _latency(report: CheckReport, tr: _Trace, send_rows: np.ndarray, delivered: np.ndarray):
    """Fill the latency fields from first deliveries of expected pairs (``delivered``)."""
    if not delivered.size or not send_rows.size:
        return
    n_msgs = int(tr.msg.max()) + 1
    send_t = np.full(n_msgs, np.inf)
    np.minimum.at(send_t, tr.msg[send_rows], tr.t[send_rows])
    start = send_t[tr.msg[delivered]]
    has_send = np.isfinite(start)
    ms = (tr.t[delivered][has_send] - start[has_send]) * 1000.0
    if not ms.size:
        return
    report.latency_samples = int(ms.size)
    report.latency_mean_ms = float(ms.mean())
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    report.latency_p50_ms = float(p50)
    report.latency_p95_ms = float(p95)
    report.latency_p99_ms = float(p99)
    report.latency_max_ms = float(ms.max())


def _seconds(col: pd.Series) -> np.ndarray:
    """Column ``t`` as float seconds (NaN where unparsable); datetimes become epoch seconds."""
    if pd.api.types.is_datetime64_any_dtype(col.dtype):
        epoch = pd.Timestamp(0, tz=getattr(col.dtype, "tz", None))
        return ((col - epoch) / pd.Timedelta(seconds=1)).to_numpy(dtype=float, na_value=np.nan)
    if pd.api.types.is_timedelta64_dtype(col.dtype):
        return (col / pd.Timedelta(seconds=1)).to_numpy(dtype=float, na_value=np.nan)
    if pd.api.types.is_bool_dtype(col.dtype):
        return np.full(len(col), np.nan)
    values = col if _is_real(col) else pd.to_numeric(col, errors="coerce")
    return values.to_numpy(dtype=float, na_value=np.nan)


def _is_real(col: pd.Series) -> bool:
    """True for a numeric (not boolean) column that needs no parsing."""
    return pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype)


def _missing(col: pd.Series) -> np.ndarray:
    """Rows where an id column is null or the empty string."""
    out = col.isna().to_numpy()
    if not pd.api.types.is_numeric_dtype(col.dtype):
        out = out | np.asarray(col == "", dtype=bool)
    return out


def _py(value: Any) -> Any:
    """A numpy/pandas scalar as the plain Python value (NaN/NA as None)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _json_safe(value: Any) -> Any:
    """Recursively turn numpy/pandas values into JSON-safe Python values."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    value = _py(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _show(value: Any) -> str:
    """A cell value for an error message: short, quoted, on one line."""
    text = repr(_py(value)) if _py(value) is not None else "nothing"
    return text if len(text) <= 40 else text[:37] + "..."


def _one_line(exc: BaseException) -> str:
    """The first line of an exception's message (reader errors can span many lines)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _fmt_ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"

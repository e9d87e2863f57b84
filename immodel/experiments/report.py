"""Tables and a one-page Markdown report from a sweep's results.

:func:`headline_table` reduces a results frame (one row per grid point × replication) to
one row per configuration with the mean and the confidence half width of the metrics a
review asks for first; :func:`format_text_table` prints it for a terminal,
:func:`format_markdown_table` for a report, and :func:`write_report` assembles a report
page (title, setup, table, findings, figures) next to the figures it embeds.

The numbers come from :func:`immodel.analysis.stats.aggregate`, so the table and the
figures' bands agree.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from immodel.analysis.plots import key_label, value_label
from immodel.analysis.stats import aggregate

__all__ = [
    "HEADLINE",
    "LATENCY_NOTE",
    "ORDER_NOTE",
    "Column",
    "explain_order_violations",
    "format_markdown_table",
    "format_text_table",
    "headline_table",
    "write_report",
]


@dataclass(frozen=True)
class Column:
    """A metric column of the headline table: its header (with unit) and number format."""

    metric: str
    header: str
    digits: int = 0  # decimals shown
    scale: float = 1.0  # e.g. 100 for a fraction shown in %


#: The headline metrics: latency p50/p99, access-layer requests/s, lost deliveries.
HEADLINE: tuple[Column, ...] = (
    Column("latency_p50_ms", "p50 latency (ms)"),
    Column("latency_p99_ms", "p99 latency (ms)"),
    Column("requests_per_s", "requests/s", 1),
    Column("lost", "lost (per run)", 1),
)


#: What the latency columns are over, for every table and report that shows them.
LATENCY_NOTE = (
    "Latency is send → first arrival at the recipient's app, over recipients that were "
    "online when the message was stored (the summary's latency_* metrics; catch-up after "
    "being offline is reported separately as catchup_latency_*, and `immodel check` on a "
    "trace summarises every first delivery, catch-up included)."
)

#: Why 1:1 order violations remain with every mechanism on: arrival order vs display order.
ORDER_NOTE = (
    "'Out of order' (order_violations) counts arrival order, not display order: for each "
    "recipient and conversation, a first delivery counts when a message of the same "
    "conversation with a later server timestamp (1:1) or a larger seq (groups) had "
    "already reached that recipient's app. Groups are shown in seq order (a copy behind a "
    "seq gap is held back until sync fills the gap), so with sync on their count is 0. A "
    "1:1 conversation has no gaps to detect: a pushed copy is shown on arrival, and a "
    "message whose packet was lost arrives later, by the pending-ACK retransmit or the "
    "sync that the next receipt triggers, after a later message of the conversation. The "
    "app places it by its server timestamp, so the conversation reads in the right order, "
    "but the message appears above one already shown. These are the 1:1 order violations "
    "that remain with every mechanism on; they grow with loss and are not a defect of the "
    "mechanisms (stored_order_inversions and causal_order_violations measure the "
    "displayed order itself)."
)


def explain_order_violations(results: pd.DataFrame) -> str | None:
    """A paragraph on the order violations of ``results`` (runs), or None when there are none.

    Gives the totals split into 1:1 and group (when the runs have the
    ``order_violations_1to1`` / ``order_violations_group`` columns), the largest count
    of one run, and :data:`ORDER_NOTE`. Numbers come from ``results``, none is fixed.
    """
    if "order_violations" not in results.columns:
        return None
    counts = pd.to_numeric(results["order_violations"], errors="coerce").fillna(0)
    total = int(counts.sum())
    if total == 0:
        return None
    text = f"{total:,} deliveries over {len(results):,} runs arrived out of order"
    parts = []
    for column, name in (("order_violations_1to1", "1:1"), ("order_violations_group", "group")):
        if column in results.columns:
            n = int(pd.to_numeric(results[column], errors="coerce").fillna(0).sum())
            parts.append(f"{n:,} in {name} conversations")
    if parts:
        text += " (" + ", ".join(parts) + ")"
    text += f"; at most {int(counts.max()):,} in one run. "
    return text + ORDER_NOTE


def headline_table(
    results: pd.DataFrame,
    keys: Sequence[str],
    columns: Sequence[Column] = HEADLINE,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """One row per configuration (``keys`` values, first-seen order): mean and half width.

    Columns: the ``keys``, ``n`` (replications), then ``<metric>`` (mean, scaled) and
    ``<metric>_pm`` (CI half width, NaN with one replication) for each of ``columns``.
    Metrics missing from ``results`` are left out.
    """
    present = [c for c in columns if c.metric in results.columns]
    agg = aggregate(
        results, metrics=[c.metric for c in present], by=list(keys), confidence=confidence
    )
    if agg.empty:
        return pd.DataFrame(columns=[*keys, "n"])
    table = agg.pivot_table(
        index=list(keys),
        columns="metric",
        values=["mean", "half_width", "n"],
        sort=False,
        dropna=False,
    )
    out = table.index.to_frame(index=False)
    out["n"] = table["n"].max(axis=1).astype(int).to_numpy()
    for c in present:
        out[c.metric] = table[("mean", c.metric)].to_numpy() * c.scale
        out[f"{c.metric}_pm"] = table[("half_width", c.metric)].to_numpy() * c.scale
    return out


def _cell(mean: float, pm: float, digits: int, with_pm: bool) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    text = f"{mean:,.{digits}f}"
    if with_pm and pm is not None and not math.isnan(pm):
        text += f" ± {pm:,.{digits}f}"
    return text


def _key_cell(key: str, value) -> str:
    # The column header names the switch; its cells need only say on or off.
    if isinstance(value, bool | np.bool_):
        return "on" if value else "off"
    return value_label(key, value)


def _rows(
    table: pd.DataFrame, keys: Sequence[str], columns: Sequence[Column], with_pm: bool
) -> tuple[list[str], list[list[str]]]:
    present = [c for c in columns if c.metric in table.columns]
    headers = [key_label(k) for k in keys] + [c.header for c in present]
    rows = []
    for _, row in table.iterrows():
        cells = [_key_cell(k, row[k]) for k in keys]
        cells += [
            _cell(row[c.metric], row.get(f"{c.metric}_pm"), c.digits, with_pm) for c in present
        ]
        rows.append(cells)
    return headers, rows


def format_text_table(
    table: pd.DataFrame,
    keys: Sequence[str],
    columns: Sequence[Column] = HEADLINE,
    with_pm: bool = False,
) -> str:
    """The headline table as aligned plain text (keys left-aligned, numbers right-aligned)."""
    headers, rows = _rows(table, keys, columns, with_pm)
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]
    nk = len(keys)

    def line(cells: Sequence[str]) -> str:
        parts = [
            c.ljust(w) if i < nk else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    out = [line(headers), line(["-" * w for w in widths])]
    previous: list[str] | None = None
    for r in rows:
        # Blank a repeated leading key so that groups read as blocks.
        shown = list(r)
        if previous is not None and nk > 1 and r[0] == previous[0]:
            shown[0] = ""
        out.append(line(shown))
        previous = r
    return "\n".join(out)


def format_markdown_table(
    table: pd.DataFrame,
    keys: Sequence[str],
    columns: Sequence[Column] = HEADLINE,
    with_pm: bool = True,
) -> str:
    """The headline table as a GitHub-flavoured Markdown table (numbers right-aligned)."""
    headers, rows = _rows(table, keys, columns, with_pm)
    nk = len(keys)
    align = [":---" if i < nk else "---:" for i in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def write_report(
    path: str | Path,
    *,
    title: str,
    setup: str,
    table_markdown: str,
    findings: Sequence[str],
    figures: Sequence[tuple[str | Path, str]],
    reproduce: Sequence[str] = (),
) -> Path:
    """Write a one-page Markdown report to ``path`` and return it.

    ``setup`` is a paragraph on what was run, ``findings`` the paragraphs on what it
    shows, ``figures`` ``(png path, caption)`` pairs embedded with paths relative to the
    report (so the folder can be moved or zipped), ``reproduce`` shell commands.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    parts = [f"# {title}", "", setup, "", table_markdown, "", "## What it shows", ""]
    for paragraph in findings:
        parts += [paragraph, ""]
    if figures:
        parts += ["## Figures", ""]
        for png, caption in figures:
            rel = Path(png).resolve().relative_to(path.parent.resolve()).as_posix()
            parts += [f"![{caption}]({rel})", "", f"*{caption}*", ""]
    if reproduce:
        parts += ["## Reproduce", "", "```sh", *reproduce, "```", ""]
    path.write_text("\n".join(parts), encoding="utf-8")
    return path

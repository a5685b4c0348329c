"""qplug's built-in report formats: JSON Lines, JSON summary, CSV and a self-contained HTML report.

Only registration lives here. Each writer is named by import path, so listing formats (``qplug
plugins``, ``--help``) never imports Pillow or the writer modules; they load when a run picks one.
The record layouts are documented in ``docs/report-schema.md``.
"""

from __future__ import annotations

from typing import Callable

from qplug import WriterInfo, hookimpl


@hookimpl
def register_writers(register: Callable[[WriterInfo], None]) -> None:
    """Offer the four built-in report formats."""
    register(WriterInfo(
        name="jsonl",
        factory="qplug_reports.jsonl_writer:JsonLinesWriter",
        description="JSON Lines: one record per frame as it is scored, then per source, errors and the run",
        extensions=(".jsonl",),
        streaming=True,
        resumable=True,
    ))
    register(WriterInfo(
        name="json",
        factory="qplug_reports.json_writer:JsonSummaryWriter",
        description="one JSON document with the run and per-source summaries (no per-frame data)",
        extensions=(".json",),
    ))
    register(WriterInfo(
        name="csv",
        factory="qplug_reports.csv_writer:CsvWriter",
        description="CSV: one row per frame with a column per scorer",
        extensions=(".csv",),
    ))
    register(WriterInfo(
        name="html",
        factory="qplug_reports.html_writer:HtmlReportWriter",
        description="self-contained HTML report: score curves, events, pooled scores, worst-frame thumbnails",
        extensions=(".html", ".htm"),
    ))

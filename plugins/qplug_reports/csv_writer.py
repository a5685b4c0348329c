"""CSV writer: one row per frame, one column per scorer, flushed row by row.

Text cells are made safe to open in a spreadsheet (see :func:`text_cell`): a file named
``=cmd|calc.jpg`` must reach the QC operator as text, never as a formula.
"""

from __future__ import annotations

import csv
from typing import IO, Any, Iterable

from qplug.types import FrameResult, RunSummary, SourceSummary

from ._common import Options, clean_text, dumps, finite, writer_context

#: Columns before the scorer columns, in order.
FIXED_COLUMNS = ("source", "index", "pts", "timecode", "width", "height")
#: Columns after the scorer columns, in order.
TRAILING_COLUMNS = ("other", "errors")

# CSV injection: a spreadsheet runs a cell that starts with one of these as a formula (=cmd|' /C calc'!A0).
# OWASP's rule (https://owasp.org/www-community/attacks/CSV_Injection): prefix such a cell with a
# single quote, so it is read as text; and quote fields, so that a separator or a line break inside a
# value cannot start a new cell that begins with one of them.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
#: Characters that some spreadsheet may take as the end of a cell or row in an unquoted field: the
#: csv module quotes a field holding "," '"' or "\n" but not these, so a row holding one is quoted whole.
CELL_BREAKS = ("\r", ";", "\t")


def text_cell(value: Any) -> str:
    """A text cell that no spreadsheet runs as a formula, decided on the whole cell.

    ``'`` goes in front of a cell that starts with ``= + - @``, tab or CR (OWASP), and also of one that
    already starts with ``'`` followed by one of those or by another ``'``: so a reader gets the exact
    original back by dropping one leading ``'`` when the next character is one of ``= + - @ \\t \\r '``.
    ``/tmp/=x.jpg`` is left alone: only the first character of the cell matters. Numbers the writer
    formats itself (``-0.5``) never go through here and stay numbers.
    """
    text = clean_text(value)
    if text.startswith(FORMULA_STARTS) or (text[:1] == "'" and text[1:2] in (*FORMULA_STARTS, "'")):
        return "'" + text
    return text


def _number(value: Any) -> str:
    # repr() is the shortest text that reads back as the same float; empty cell for missing/NaN.
    number = finite(value)
    if number is None:
        return ""
    return str(int(number)) if isinstance(value, int) else repr(number)


def _errors_cell(errors: Iterable[Any]) -> str:
    return text_cell(" | ".join(f"{clean_text(e.stage)}: {clean_text(e.reason)}" for e in errors))


class CsvWriter:
    """Writes a header, then a row per frame as it arrives.

    The scorer columns are fixed when the header is written: from the context's scorers when the core
    passes them, else from the scores of the first frame. A score from a scorer without a column is
    kept, as JSON, in the ``other`` column rather than silently dropped.
    """

    def __init__(self, stream: IO[str], options: Options | None = None) -> None:
        self._stream = stream
        # "\n" whatever the platform: the core may not open the file with newline="".
        self._csv = csv.writer(stream, lineterminator="\n")
        # for a row with a cell break in some text cell (see CELL_BREAKS): every field quoted
        self._quoted = csv.writer(stream, lineterminator="\n", quoting=csv.QUOTE_ALL)
        scorers = writer_context(options).scorers
        self._scorers: list[str] | None = list(scorers) if scorers else None
        self._known: frozenset[str] = frozenset()
        self._header_done = False

    def _header(self, first_scores: Iterable[str]) -> None:
        if self._header_done:
            return
        if self._scorers is None:
            self._scorers = list(first_scores)
        self._known = frozenset(self._scorers)
        taken = set(FIXED_COLUMNS) | set(TRAILING_COLUMNS)
        # A scorer called "index" or "errors" must not shadow a fixed column.
        names = [text_cell(f"score_{name}" if name in taken else name) for name in self._scorers]
        self._write_row([*FIXED_COLUMNS, *names, *TRAILING_COLUMNS])
        self._header_done = True

    def _write_row(self, row: list[Any]) -> None:
        quoted = any(isinstance(cell, str) and any(c in cell for c in CELL_BREAKS) for cell in row)
        (self._quoted if quoted else self._csv).writerow(row)

    def _row(self, row: list[Any]) -> None:
        self._write_row(row)
        self._stream.flush()

    def write_frame(self, result: FrameResult) -> None:
        self._header(result.scores)
        assert self._scorers is not None
        other = {k: v for k, v in result.scores.items() if k not in self._known}
        self._row([
            text_cell(result.source_id), result.index, _number(result.pts), text_cell(result.timecode or ""),
            result.width, result.height,
            *(_number(result.scores.get(name)) for name in self._scorers),
            text_cell(dumps(other)) if other else "",
            _errors_cell(result.errors),
        ])

    def write_source(self, summary: SourceSummary) -> None:
        # A source that could not be read has no frame rows; one row per whole-source error keeps the
        # failure visible in a spreadsheet. Its index and measurement cells are empty.
        failures = [e for e in summary.errors if e.index is None]
        if not failures:
            return
        self._header(())
        assert self._scorers is not None
        blanks = [""] * (len(FIXED_COLUMNS) - 1 + len(self._scorers) + 1)
        for error in failures:
            self._row([text_cell(summary.source_id), *blanks, _errors_cell([error])])

    def close(self, run: RunSummary) -> None:
        self._header(())  # an empty run still yields a header line
        self._stream.flush()

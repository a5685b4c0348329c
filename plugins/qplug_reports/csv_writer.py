"""CSV writer: one row per frame, one column per scorer, flushed row by row."""

from __future__ import annotations

import csv
from typing import IO, Any, Iterable

from qplug.types import FrameResult, RunSummary, SourceSummary

from ._common import Options, clean_text, dumps, finite, scorer_metas

#: Columns before the scorer columns, in order.
FIXED_COLUMNS = ("source", "index", "pts", "timecode", "width", "height")
#: Columns after the scorer columns, in order.
TRAILING_COLUMNS = ("other", "errors")


def _number(value: Any) -> str:
    # repr() is the shortest text that reads back as the same float; empty cell for missing/NaN.
    number = finite(value)
    if number is None:
        return ""
    return str(int(number)) if isinstance(value, int) else repr(number)


def _errors_cell(errors: Iterable[Any]) -> str:
    return " | ".join(f"{clean_text(e.stage)}: {clean_text(e.reason)}" for e in errors)


class CsvWriter:
    """Writes a header, then a row per frame as it arrives.

    The scorer columns are fixed when the header is written: from ``options["scorers"]`` when the core
    passes it, else from the scores of the first frame. A score from a scorer without a column is
    kept, as JSON, in the ``other`` column rather than silently dropped.
    """

    def __init__(self, stream: IO[str], options: Options | None = None) -> None:
        self._stream = stream
        # "\n" whatever the platform: the core may not open the file with newline="".
        self._csv = csv.writer(stream, lineterminator="\n")
        metas = scorer_metas(options or {})
        self._scorers: list[str] | None = list(metas) if metas else None
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
        names = [f"score_{name}" if name in taken else name for name in self._scorers]
        self._csv.writerow([*FIXED_COLUMNS, *names, *TRAILING_COLUMNS])
        self._header_done = True

    def _row(self, row: list[Any]) -> None:
        self._csv.writerow(row)
        self._stream.flush()

    def write_frame(self, result: FrameResult) -> None:
        self._header(result.scores)
        assert self._scorers is not None
        other = {k: v for k, v in result.scores.items() if k not in self._known}
        self._row([
            clean_text(result.source_id), result.index, _number(result.pts), clean_text(result.timecode or ""),
            result.width, result.height,
            *(_number(result.scores.get(name)) for name in self._scorers),
            dumps(other) if other else "",
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
            self._row([clean_text(summary.source_id), *blanks, _errors_cell([error])])

    def close(self, run: RunSummary) -> None:
        self._header(())  # an empty run still yields a header line
        self._stream.flush()

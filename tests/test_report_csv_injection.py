"""CSV reports never hand a spreadsheet a formula: OWASP's CSV-injection rule, decided per cell."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import csv
import io

from qplug.types import ErrorRecord, FrameResult, RunSummary, SourceSummary
from qplug_reports.csv_writer import FIXED_COLUMNS, CsvWriter, text_cell

#: first characters a spreadsheet runs as a formula
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def original(cell: str) -> str:
    """The reader's side of the rule in docs/report-schema.md: drop one ' put in front by the writer."""
    return cell[1:] if cell[:1] == "'" and cell[1:2] in (*TRIGGERS, "'") else cell


def read_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def frame(source: str, index: int, scores: dict[str, float | None], timecode: str | None = None) -> FrameResult:
    result = FrameResult(source_id=source, index=index, pts=index / 25, timecode=timecode, width=8, height=8)
    result.scores = dict(scores)
    return result


def test_csv_cells_that_start_a_formula_are_prefixed_with_a_quote() -> None:
    names = ["=cmd|' /C calc'!A0.jpg", "+1+2.png", "-x.png", "@SUM(A1).png", "\tt.png", "\rr.png"]
    stream = io.StringIO()
    writer = CsvWriter(stream, {})
    for i, name in enumerate(names):
        writer.write_frame(frame(name, i, {"sharp": 0.5}))
    writer.close(RunSummary())
    rows = read_rows(stream.getvalue())[1:]
    assert [row[0] for row in rows] == ["'" + name for name in names]
    assert all(row[0][0] == "'" for row in rows)
    assert [original(row[0]) for row in rows] == names  # exactly recoverable


def test_csv_decides_on_the_whole_cell_not_the_file_name() -> None:
    # the basename starts with "=", the cell does not: nothing to neutralise, the path stays as given
    names = ["/tmp/=cmd|calc.jpg", "tmp/=cmd|calc.jpg", "./=x.png", "clip=1.mp4"]
    stream = io.StringIO()
    writer = CsvWriter(stream, {})
    for i, name in enumerate(names):
        writer.write_frame(frame(name, i, {"sharp": 0.5}))
    rows = read_rows(stream.getvalue())[1:]
    assert [row[0] for row in rows] == names


def test_csv_negative_scores_stay_numbers_while_text_is_neutralised() -> None:
    stream = io.StringIO()
    link = '=HYPERLINK("http://x")'  # a scorer name from a third-party plugin ends up in the header
    options = {"scorers": {link: None, "-delta": None, "index": None}}
    writer = CsvWriter(stream, options)
    result = frame("-take1.mov", 0, {link: -0.5, "-delta": -1e-05, "index": -2.0}, timecode="-00:00:00:01")
    result.scores["@late"] = -3.0  # no column: goes to "other" as JSON
    result.errors.append(ErrorRecord("-take1.mov", "=2+5 went wrong", index=0, stage="+stage"))
    writer.write_frame(result)
    header, row = read_rows(stream.getvalue())
    scorer_columns = header[len(FIXED_COLUMNS):-2]
    assert scorer_columns == ["'=HYPERLINK(\"http://x\")", "'-delta", "score_index"]
    cells = dict(zip(header, row))
    assert cells["source"] == "'-take1.mov" and cells["timecode"] == "'-00:00:00:01"
    # numbers the writer formats itself are never quoted: they must stay numbers in a spreadsheet
    assert row[len(FIXED_COLUMNS):-2] == ["-0.5", "-1e-05", "-2.0"]
    assert cells["pts"] == "0.0" and cells["index"] == "0"
    assert cells["errors"] == "'+stage: =2+5 went wrong"
    assert cells["other"] == '{"@late":-3.0}'


def test_csv_whole_source_error_rows_are_neutralised() -> None:
    stream = io.StringIO()
    writer = CsvWriter(stream, {"scorers": {"sharp": None}})
    summary = SourceSummary(source_id="@evil.mov", media=None, frames=0, pooled={},
                            errors=[ErrorRecord("@evil.mov", "unreadable", index=None, stage="-read")])
    writer.write_source(summary)
    (row,) = read_rows(stream.getvalue())[1:]
    assert row[0] == "'@evil.mov" and row[-1] == "'-read: unreadable"


def test_csv_a_separator_or_line_break_inside_a_name_cannot_start_a_formula_cell() -> None:
    # ";" separates cells in many European spreadsheets and a bare CR ends a row: such a row is quoted
    # whole, so the "=..." after it stays inside the cell, and the cell itself is text
    names = ["a;=cmd|calc.jpg", "b\r=cmd|calc.jpg", "c\t=cmd|calc.jpg", "d,=cmd|calc.jpg", "e\n=cmd|calc.jpg"]
    stream = io.StringIO()
    writer = CsvWriter(stream, {})
    for i, name in enumerate(names):
        writer.write_frame(frame(name, i, {"sharp": -0.25}))
    text = stream.getvalue()
    for name in names:
        assert f'"{name}"' in text
    rows = read_rows(text)[1:]
    assert [row[0] for row in rows] == names and all(row[6] == "-0.25" for row in rows)


def test_text_cell_round_trips_names_that_already_start_with_a_quote() -> None:
    for name in ["'=x", "''=x", "'plain", "'", "''", "=x", "plain", "", "'-1", "\r\n=1"]:
        assert original(text_cell(name)) == name, name
    assert text_cell("'plain") == "'plain"  # a quote not followed by a trigger needs nothing

"""File names that are not valid UTF-8: valid text in every report, exact bytes kept in ``source_b64``."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import base64
import csv
import io
import json
from pathlib import Path
from typing import Any, Iterator

from qplug.types import ErrorRecord, FrameResult, MediaInfo, RunSummary, SourceSummary
from qplug_reports._common import clean_text, named_record, safe_name
from qplug_reports.csv_writer import CsvWriter
from qplug_reports.html_writer import HtmlReportWriter
from qplug_reports.json_writer import JsonSummaryWriter
from qplug_reports.jsonl_writer import JsonLinesWriter

#: what os.fsdecode gives on Linux for a Latin-1 file name: lone surrogates for the undecodable bytes
RAW = b"/data/caf\xe9 \xff.mp4"
BAD = os.fsdecode(RAW)
#: the text every report shows for it: one U+FFFD per undecodable byte
SHOWN = "/data/caf\ufffd \ufffd.mp4"
GOOD = "/data/caf\u00e9.mp4"  # valid UTF-8: written as it is, no source_b64


def strings(value: Any) -> Iterator[str]:
    """Every string in a parsed JSON value, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


def assert_strict(text: str) -> list[Any]:
    """Each line parses, is strict UTF-8, and holds only strings that are valid Unicode."""
    records = []
    for line in text.splitlines():
        line.encode("utf-8")  # strict: raises on a lone surrogate
        record = json.loads(line)
        for s in strings(record):
            s.encode("utf-8")
        json.dumps(record, ensure_ascii=False).encode("utf-8")  # a reader re-writing it as UTF-8 is fine
        assert "\\udc" not in line.lower()
        records.append(record)
    return records


def summary(source: str, reason: str = "cannot decode") -> SourceSummary:
    media = MediaInfo(source_id=source, kind="video", fps=25.0)
    return SourceSummary(source_id=source, media=media, frames=1, pooled={"sharp": {"mean": 0.5}},
                         errors=[ErrorRecord(source, reason, index=0, stage="read")])


def frame(source: str) -> FrameResult:
    result = FrameResult(source_id=source, index=0, pts=0.0, timecode=None, width=8, height=8)
    result.scores = {"sharp": 0.5}
    return result


def test_safe_name_replaces_undecodable_bytes_and_keeps_them_in_base64() -> None:
    assert os.fsencode(BAD) == RAW
    text, raw = safe_name(BAD)
    assert text == SHOWN and base64.b64decode(raw or "") == RAW
    assert safe_name(GOOD) == (GOOD, None) and safe_name("plain.mp4") == ("plain.mp4", None)
    assert safe_name(RAW) == (SHOWN, base64.b64encode(RAW).decode("ascii"))
    assert safe_name(Path(BAD))[0] == SHOWN
    assert safe_name("\ud800x")[0].encode("utf-8")  # a surrogate no file system made: still valid text
    assert clean_text(BAD) == SHOWN and clean_text(None) == ""


def test_named_record_adds_source_b64_only_when_needed() -> None:
    record = named_record({"type": "source", "source": BAD, "errors": [{"source": BAD, "reason": "x"}]})
    assert list(record)[:3] == ["type", "source", "source_b64"]
    assert record["errors"][0]["source"] == SHOWN and "source_b64" in record["errors"][0]
    assert "source_b64" not in named_record({"source": GOOD})


def test_jsonl_non_utf8_names_are_strict_json_with_exact_bytes(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    with path.open("w", encoding="utf-8") as stream:  # strict UTF-8: a lone surrogate would raise here
        writer = JsonLinesWriter(stream, {})
        writer.write_frame(frame(BAD))
        writer.write_frame(frame(GOOD))
        writer.write_source(summary(BAD, reason=f"cannot open {BAD!s}"))
        writer.write_source(summary(GOOD))
        writer.close(RunSummary(sources=[summary(BAD), summary(GOOD)], frames=2))
    records = assert_strict(path.read_text(encoding="utf-8"))
    by_type = {(r["type"], r.get("source")): r for r in records}
    for kind in ("frame", "source", "error"):
        bad, good = by_type[(kind, SHOWN)], by_type[(kind, GOOD)]
        assert base64.b64decode(bad["source_b64"]) == RAW, kind
        assert "source_b64" not in good, kind
    nested = by_type[("source", SHOWN)]
    assert nested["errors"][0]["source"] == SHOWN and base64.b64decode(nested["errors"][0]["source_b64"]) == RAW
    assert nested["media"]["source_id"] == SHOWN
    assert by_type[("error", SHOWN)]["reason"] == f"cannot open {SHOWN}"


def test_json_summary_non_utf8_names_are_strict_json_with_exact_bytes() -> None:
    stream = io.StringIO()
    writer = JsonSummaryWriter(stream, {"title": f"QC of {BAD}"})
    writer.write_source(summary(BAD))
    run = RunSummary(sources=[summary(BAD), summary(GOOD)], frames=2)
    writer.close(run)
    text = stream.getvalue()
    text.encode("utf-8")
    doc = json.loads(text)
    for s in strings(doc):
        s.encode("utf-8")
    assert doc["title"] == f"QC of {SHOWN}"
    bad, good = doc["sources"]
    assert bad["source"] == SHOWN and base64.b64decode(bad["source_b64"]) == RAW
    assert base64.b64decode(bad["errors"][0]["source_b64"]) == RAW
    assert good["source"] == GOOD and "source_b64" not in good


def test_csv_and_html_show_one_replacement_character_per_undecodable_byte() -> None:
    stream = io.StringIO()
    writer = CsvWriter(stream, {})
    result = frame(BAD)
    result.errors.append(ErrorRecord(BAD, f"bad bytes in {BAD}", index=0, stage="read"))
    writer.write_frame(result)
    text = stream.getvalue()
    text.encode("utf-8")
    row = list(csv.reader(io.StringIO(text)))[1]
    assert row[0] == SHOWN and row[-1] == f"read: bad bytes in {SHOWN}"

    stream = io.StringIO()
    html_writer = HtmlReportWriter(stream, {"thumbnails": 0})
    html_writer.write_frame(frame(BAD))
    html_writer.write_source(summary(BAD))
    html_writer.close(RunSummary(sources=[summary(BAD)], frames=1))
    page = stream.getvalue()
    assert page.isascii()
    assert "/data/caf&#65533; &#65533;.mp4" in page  # not three replacement characters per byte
    b64 = base64.b64encode(RAW).decode("ascii")
    assert f'<h2 data-source-b64="{b64}">' in page
    assert page.count("data-source-b64") == 1  # only the source with the bad name, once

"""Tests of the built-in report writers (plugin ``qplug_reports``)."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import csv
import io
import json
import math
import re
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qplug.registry import ScorerInfo, resolve
from qplug.types import (SCHEMA_VERSION, ErrorRecord, Event, Frame, FrameResult, MediaInfo, RunSummary,
                         SourceSummary)
from qplug_reports.csv_writer import FIXED_COLUMNS, CsvWriter
from qplug_reports.curve import MinMaxCurve
from qplug_reports.html_writer import HtmlReportWriter
from qplug_reports.json_writer import JsonSummaryWriter
from qplug_reports.jsonl_writer import JsonLinesWriter

VIDEO = "clip.mp4"
BROKEN = "broken.mov"
NASTY = 'a<b>&"c".mp4'


def scorer_options() -> dict[str, Any]:
    """What the core passes as options["scorers"]: ScorerInfo.to_dict() per scorer, in run order."""
    sharp = ScorerInfo(name="sharp", factory="x:y", description="", range=(0.0, 1.0), higher_is_better=True,
                       unit="fraction", event_threshold=0.2)
    noise = ScorerInfo(name="noise", factory="x:y", description="", range=(0.0, float("inf")),
                       higher_is_better=False)
    return {"sharp": sharp.to_dict(), "noise": noise.to_dict()}


def frame_result(source: str, index: int, sharp: float | None, noise: float | None = 1.0,
                 pixels: bool = False, fps: float | None = 25.0) -> FrameResult:
    pts = None if fps is None else index / fps
    if pixels:
        # a distinct grey level per frame, so the picture is not all the same
        rgb = np.full((90, 480, 3), index % 256, dtype=np.uint8)
        result = FrameResult.for_frame(Frame.from_rgb(rgb, source_id=source, index=index, pts=pts))
    else:
        result = FrameResult(source_id=source, index=index, pts=pts, timecode=None, width=480, height=90)
    result.scores = {"sharp": sharp, "noise": noise}
    return result


def source_summary(source: str, frames: int, events: list[Event] | None = None,
                   errors: list[ErrorRecord] | None = None) -> SourceSummary:
    media = MediaInfo(source_id=source, kind="video", codec="h264", width=480, height=90, fps=25.0)
    return SourceSummary(source_id=source, media=media, frames=frames,
                         pooled={"sharp": {"mean": 0.5, "p5": float("nan")}, "noise": {"mean": 1.0, "p5": 1.0}},
                         events=events or [], errors=errors or [])


def broken_summary() -> SourceSummary:
    return SourceSummary(source_id=BROKEN, media=None, frames=0, pooled={},
                         errors=[ErrorRecord(BROKEN, "moov atom not found", index=None, stage="read")])


def run_summary(sources: list[SourceSummary]) -> RunSummary:
    return RunSummary(sources=sources, scorers=["sharp", "noise"], frames=sum(s.frames for s in sources),
                      wall_seconds=1.25)


# ---------------------------------------------------------------------------------------------
# registration


def test_writers_are_registered_through_the_hook() -> None:
    from qplug.plugins import load_host

    catalog = load_host().catalog()
    writers = catalog.writers
    assert {"jsonl", "json", "csv", "html"} <= set(writers)
    assert all(catalog.owners[("writers", name)] == "reports" for name in ("jsonl", "json", "csv", "html"))
    assert writers["jsonl"].streaming and writers["jsonl"].extensions == (".jsonl",)
    assert writers["html"].extensions == (".html", ".htm")
    for name in ("jsonl", "json", "csv", "html"):
        factory = resolve(writers[name].factory)  # import paths must resolve
        assert callable(factory)


# ---------------------------------------------------------------------------------------------
# JSON Lines


def test_jsonl_lines_parse_in_order_and_are_flushed(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    with path.open("w", encoding="utf-8") as stream:
        writer = JsonLinesWriter(stream, {"scorers": scorer_options()})
        writer.write_frame(frame_result(VIDEO, 0, 0.9))
        writer.write_frame(frame_result(VIDEO, 1, float("nan"), noise=float("inf")))
        # read back through another handle before anything is closed: the lines must already be there
        early = path.read_text(encoding="utf-8").splitlines()
        assert len(early) == 2
        writer.write_source(source_summary(VIDEO, 2))
        writer.write_source(broken_summary())
        mid = path.read_text(encoding="utf-8").splitlines()
        writer.close(run_summary([source_summary(VIDEO, 2), broken_summary()]))
        before_close = path.read_text(encoding="utf-8").splitlines()
        assert not stream.closed  # closing is the core's job
    records = [json.loads(line) for line in before_close]
    assert [r["type"] for r in records] == ["frame", "frame", "source", "source", "error", "run"]
    assert len(mid) == 5
    assert all(r["schema"] == SCHEMA_VERSION for r in records)
    assert records[1]["scores"] == {"sharp": None, "noise": None}  # NaN and inf became null
    assert records[2]["pooled"]["sharp"]["p5"] is None
    assert records[4]["source"] == BROKEN and records[4]["index"] is None and records[4]["stage"] == "read"
    assert records[-1]["exit_code"] == 2
    assert all(", " not in line and "NaN" not in line for line in before_close)  # compact, strict JSON


def test_jsonl_does_not_close_the_stream() -> None:
    stream = io.StringIO()
    writer = JsonLinesWriter(stream, {})
    writer.close(run_summary([]))
    assert not stream.closed
    assert json.loads(stream.getvalue())["type"] == "run"


def test_jsonl_handles_numpy_values_and_odd_names() -> None:
    stream = io.StringIO()
    result = frame_result("caf\u00e9 \udcff.mp4", 0, 0.5)
    result.scores["sharp"] = np.float32(0.25)  # type: ignore[assignment]
    result.extra = {"sharp": {"hist": np.arange(3), "n": np.int64(4), "bad": np.float64("nan")}}
    JsonLinesWriter(stream, {}).write_frame(result)
    line = stream.getvalue()
    assert line.isascii()
    record = json.loads(line)
    assert record["scores"]["sharp"] == 0.25
    assert record["extra"]["sharp"] == {"hist": [0, 1, 2], "n": 4, "bad": None}


# ---------------------------------------------------------------------------------------------
# JSON summary


def test_json_summary_has_sources_and_no_frames() -> None:
    stream = io.StringIO()
    writer = JsonSummaryWriter(stream, {"scorers": scorer_options(), "title": "nightly"})
    event = Event("sharp", 1.0, 2.0, 0.05, 1.5, 0.2, 25, "00:00:01:00", "00:00:02:00")
    for i in range(50):
        writer.write_frame(frame_result(VIDEO, i, 0.5))
    assert stream.getvalue() == ""  # nothing until close
    summaries = [source_summary(VIDEO, 50, events=[event]), broken_summary()]
    for s in summaries:
        writer.write_source(s)
    writer.close(run_summary(summaries))
    assert not stream.closed
    doc = json.loads(stream.getvalue())
    assert doc["schema"] == SCHEMA_VERSION and doc["type"] == "summary" and doc["title"] == "nightly"
    assert doc["run"]["type"] == "run" and doc["run"]["frames"] == 50
    assert [s["source"] for s in doc["sources"]] == [VIDEO, BROKEN]
    assert doc["sources"][0]["events"][0]["start_timecode"] == "00:00:01:00"
    assert doc["sources"][1]["errors"][0]["reason"] == "moov atom not found"
    assert doc["scorers"]["noise"]["range"] == [0.0, None]  # infinity is not JSON
    assert "frame" not in set(walk_types(doc))  # no per-frame records anywhere
    assert '"index": 49' not in stream.getvalue()


def walk_types(value: Any) -> Any:
    """Every "type" value in a JSON document, at any depth."""
    if isinstance(value, dict):
        if "type" in value:
            yield value["type"]
        for v in value.values():
            yield from walk_types(v)
    elif isinstance(value, list):
        for v in value:
            yield from walk_types(v)


# ---------------------------------------------------------------------------------------------
# CSV


def test_csv_columns_rows_and_flush(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = CsvWriter(stream, {"scorers": scorer_options()})
        writer.write_frame(frame_result(VIDEO, 0, 0.75))
        assert len(path.read_text(encoding="utf-8").splitlines()) == 2  # header + row, already flushed
        late = frame_result(VIDEO, 1, None, noise=float("nan"))
        late.scores["surprise"] = 3.5  # a scorer the header does not know
        late.errors.append(ErrorRecord(VIDEO, "CUDA out of memory", index=1, stage="score:sharp"))
        writer.write_frame(late)
        writer.write_source(source_summary(VIDEO, 2))
        writer.write_source(broken_summary())
        writer.close(run_summary([]))
    rows = list(csv.DictReader(path.open(encoding="utf-8", newline="")))
    with path.open(encoding="utf-8", newline="") as f:
        header = next(csv.reader(f))
    assert header == [*FIXED_COLUMNS, "sharp", "noise", "other", "errors"]
    assert rows[0]["source"] == VIDEO and rows[0]["index"] == "0" and rows[0]["pts"] == "0.0"
    assert float(rows[0]["sharp"]) == 0.75 and rows[0]["other"] == "" and rows[0]["errors"] == ""
    assert rows[1]["sharp"] == "" and rows[1]["noise"] == "" and float(rows[1]["pts"]) == 0.04
    assert json.loads(rows[1]["other"]) == {"surprise": 3.5}
    assert rows[1]["errors"] == "score:sharp: CUDA out of memory"
    assert rows[2]["source"] == BROKEN and rows[2]["index"] == "" and "moov atom" in rows[2]["errors"]
    assert len(rows) == 3


def test_csv_columns_from_first_frame_and_name_clash() -> None:
    stream = io.StringIO()
    writer = CsvWriter(stream, {})
    result = frame_result(VIDEO, 0, 0.5, fps=None)
    result.scores = {"index": 1.0, "b": 2.0}
    writer.write_frame(result)
    writer.close(run_summary([]))
    header, row = list(csv.reader(io.StringIO(stream.getvalue())))
    assert header == [*FIXED_COLUMNS, "score_index", "b", "other", "errors"]
    assert row[1] == "0" and row[2] == "" and row[6:8] == ["1.0", "2.0"]


def test_csv_empty_run_has_header() -> None:
    stream = io.StringIO()
    CsvWriter(stream, {"scorers": scorer_options()}).close(run_summary([]))
    assert stream.getvalue() == ",".join([*FIXED_COLUMNS, "sharp", "noise", "other", "errors"]) + "\n"


# ---------------------------------------------------------------------------------------------
# HTML


VOID = {"meta", "img", "br", "hr", "input", "link", "area", "base", "col", "embed", "source", "track", "wbr"}


class Page(HTMLParser):
    """Collects what the tests look at, and checks every element is closed in order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))  # <rect .../> inside SVG

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"unexpected </{tag}> with open {self.stack[-3:]}")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def find(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items())]


def parse(page: str) -> Page:
    parser = Page()
    parser.feed(page)
    parser.close()
    assert parser.problems == []
    assert parser.stack == []
    return parser


def polyline_points(attrs: dict[str, str | None]) -> list[tuple[float, float]]:
    return [tuple(map(float, p.split(","))) for p in (attrs["points"] or "").split()]  # type: ignore[misc]


def test_html_report_contents() -> None:
    stream = io.StringIO()
    writer = HtmlReportWriter(stream, {"scorers": scorer_options(), "thumbnails": 4, "title": "Nightly <QC>"})
    worst = {7: 0.01, 23: 0.02, 41: 0.03, 55: 0.04}  # sharp is higher-is-better: lowest are worst
    for i in range(60):
        result = frame_result(NASTY, i, worst.get(i, 0.5 + (i % 5) / 20), noise=10.0 - i / 10, pixels=True)
        if i == 30:
            result.errors.append(ErrorRecord(NASTY, "decoder hiccup", index=30, stage="read"))
        writer.write_frame(result)
    event = Event("sharp", 0.28, 0.32, 0.01, 0.28, 0.2, 1, "00:00:00:07", "00:00:00:08")
    summary = source_summary(NASTY, 60, events=[event])
    writer.write_source(summary)
    writer.write_source(broken_summary())
    assert "</html>" not in stream.getvalue()  # sections are streamed before close
    writer.close(run_summary([summary, broken_summary()]))
    assert not stream.closed
    text = stream.getvalue()
    assert text.isascii()
    page = parse(text)

    # escaping: the raw name never appears, the escaped one does, and it reads back intact
    assert NASTY not in text and "a&lt;b&gt;&amp;&quot;c&quot;.mp4" in text
    assert NASTY in "".join(page.text)
    assert "<QC>" not in text

    # self-contained: no scripts, no external resources
    assert not page.find("script") and not page.find("link")
    assert not re.search(r'(src|href)="(https?:)?//', text)

    # one curve per scorer for the video; the broken source gets none
    assert len(page.find("svg")) == 2
    assert len(page.find("polyline", **{"class": "curve"})) == 2
    assert len(page.find("rect", **{"class": "event"})) == 1
    assert len(page.find("line", **{"class": "threshold"})) == 1  # sharp's 0.2, drawn once

    # events table lists the timecodes
    assert page.find("table", **{"class": "events"})
    assert "00:00:00:07" in text and "00:00:00:08" in text

    # thumbnails: exactly the 4 worst frames, worst first, as inline JPEGs
    images = page.find("img")
    assert [img["alt"] for img in images] == ["frame 7", "frame 23", "frame 41", "frame 55"]
    assert all((img["src"] or "").startswith("data:image/jpeg;base64,") for img in images)
    assert all(img["width"] == "240" for img in images)  # downscaled from 480

    # pooled table, error list, run summary and the source that could not be read
    assert page.find("table", **{"class": "pooled"})
    assert "decoder hiccup" in text and "moov atom not found" in text
    assert page.find("section", **{"class": "run", "id": "run"})
    assert page.find("section", **{"class": "source failed"})
    assert page.find("a", href="#src-2")


def test_html_worst_frames_respect_direction() -> None:
    stream = io.StringIO()
    writer = HtmlReportWriter(stream, {"scorers": scorer_options(), "thumbnails": 2, "primary": "noise"})
    for i in range(20):
        writer.write_frame(frame_result(VIDEO, i, 0.5, noise=float(i % 7), pixels=True))
    writer.close(run_summary([]))
    alts = [img["alt"] for img in parse(stream.getvalue()).find("img")]
    assert alts == ["frame 6", "frame 13"]  # noise is lower-is-better: the highest values are worst


def test_html_without_thumbnails_or_pixels() -> None:
    stream = io.StringIO()
    writer = HtmlReportWriter(stream, {"thumbnails": 0})
    for i in range(5):
        writer.write_frame(frame_result("still.png", i, 0.5, fps=None))
    writer.close(run_summary([]))
    page = parse(stream.getvalue())
    assert not page.find("img")
    assert "Scores by frame" in stream.getvalue()  # no pts: x axis is the frame index


def test_html_bad_option_is_a_usage_error() -> None:
    from qplug.errors import UsageError

    with pytest.raises(UsageError):
        HtmlReportWriter(io.StringIO(), {"thumbnails": "many"})


def test_html_curve_is_bounded_and_keeps_a_spike() -> None:
    stream = io.StringIO()
    limit = 2000
    writer = HtmlReportWriter(stream, {"scorers": {"sharp": scorer_options()["sharp"]}, "thumbnails": 3})
    spike = 54_321
    started = time.perf_counter()
    for i in range(100_000):
        result = FrameResult(source_id=VIDEO, index=i, pts=i / 25, timecode=None, width=1920, height=1080,
                             scores={"sharp": 0.0 if i == spike else 0.5})
        writer.write_frame(result)
    writer.close(run_summary([]))
    assert time.perf_counter() - started < 10
    page = parse(stream.getvalue())
    (curve,) = page.find("polyline", **{"class": "curve"})
    points = polyline_points(curve)
    assert 100 < len(points) <= limit
    ys = sorted({y for _, y in points})
    assert len(ys) == 2  # the flat line and the one-frame dip
    dips = [x for x, y in points if y == ys[-1]]  # SVG y grows downwards: the dip has the largest y
    assert len(dips) == 1
    (x0, _), (x1, _) = points[0], points[-1]
    assert abs((dips[0] - x0) / (x1 - x0) - spike / 99_999) < 0.01
    # frames without pixels still rank, shown as placeholders
    assert not page.find("img") and stream.getvalue().count('class="noimg"') == 3


def test_min_max_curve_memory_and_extremes() -> None:
    curve = MinMaxCurve(max_points=100)
    values = [math.sin(i / 50.0) for i in range(50_000)]
    values[12_345] = 5.0
    values[40_000] = -5.0
    for i, v in enumerate(values):
        curve.add(float(i), v)
    points = curve.points()
    assert len(points) <= 100 and curve.samples == 50_000
    assert (12_345.0, 5.0) in points and (40_000.0, -5.0) in points
    assert [x for x, _ in points] == sorted(x for x, _ in points)
    assert curve.y_bounds() == (-5.0, 5.0)

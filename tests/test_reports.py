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
    for i in range(60):  # 5 fps: 12 s, the worst frames are more than the 1.5 s thumbnail spacing apart
        result = frame_result(NASTY, i, worst.get(i, 0.5 + (i % 5) / 20), noise=10.0 - i / 10, pixels=True,
                              fps=5.0)
        if i == 30:
            result.errors.append(ErrorRecord(NASTY, "decoder hiccup", index=30, stage="read"))
        writer.write_frame(result)
    event = Event("sharp", 1.4, 1.6, 0.01, 1.4, 0.2, 1, "00:00:00:07", "00:00:00:08")
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
    for i in range(20):  # 2 fps, so that frames 6 and 13 are further apart than the thumbnail spacing
        writer.write_frame(frame_result(VIDEO, i, 0.5, noise=float(i % 7), pixels=True, fps=2.0))
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


# ---------------------------------------------------------------------------------------------
# HTML: axes, gaps, diverse thumbnails, two-sided scorers, verdict


def qc_like_options() -> dict[str, Any]:
    """Scorers shaped like the qc plugin's: huge declared ranges, a two-sided one, a [0, 1] one."""
    infos = [
        ScorerInfo(name="sharpness", factory="x:y", description="", range=(0.0, 6.02), higher_is_better=True),
        ScorerInfo(name="noise", factory="x:y", description="", range=(0.0, 853.0), higher_is_better=False,
                   unit="levels"),
        ScorerInfo(name="exposure", factory="x:y", description="", range=(0.0, 1.0), higher_is_better=None,
                   ideal=0.5, event_threshold=0.3, unit="fraction"),
        ScorerInfo(name="black", factory="x:y", description="", range=(0.0, 1.0), higher_is_better=False,
                   event_threshold=0.98),
    ]
    return {info.name: info.to_dict() for info in infos}


def pan_like_frames(source: str = VIDEO, frames: int = 175, black_from: int = 115,
                    pixels: bool = False) -> list[FrameResult]:
    """A 7 s, 25 fps clip that ends in black: noise has no value on the black frames."""
    out = []
    for i in range(frames):
        pts = i / 25
        black = i >= black_from
        if pixels:
            rgb = np.full((36, 64, 3), 0 if black else 60 + i % 150, dtype=np.uint8)
            result = FrameResult.for_frame(Frame.from_rgb(rgb, source_id=source, index=i, pts=pts))
        else:
            result = FrameResult(source_id=source, index=i, pts=pts, timecode=None, width=64, height=36)
        result.scores = {"sharpness": 0.0 if black else 1.2 + 0.4 * math.sin(i / 9),
                         "noise": None if black else 0.45 + 0.05 * math.sin(i / 5),
                         "exposure": 0.0 if black else 0.45 + 0.05 * math.sin(i / 7),
                         "black": 1.0 if black else 0.01}
        out.append(result)
    return out


def pan_summary(source: str = VIDEO, frames: int = 175, events: list[Event] | None = None,
                gate_failures: list[str] | None = None, errors: list[ErrorRecord] | None = None) -> SourceSummary:
    media = MediaInfo(source_id=source, kind="video", codec="h264", width=64, height=36, fps=25.0, duration=7.0)
    pooled = {"sharpness": {"count": frames, "mean": 0.99, "p5": 0.0, "p95": 1.6},
              "noise": {"count": 115, "mean": 0.46, "p5": 0.28, "p95": 0.5},
              "exposure": {"count": frames, "mean": 0.3, "p5": 0.0, "p95": 0.5},
              "black": {"count": frames, "mean": 0.36, "p5": 0.0, "p95": 1.0}}
    return SourceSummary(source_id=source, media=media, frames=frames, pooled=pooled, events=events or [],
                         errors=errors or [], gate_failures=gate_failures or [])


BLACK_EVENT = Event("black", 4.6, 7.0, 1.0, 4.6, 0.98, 60, "00:00:04:15", "00:00:07:00")


def render_pan(options: dict[str, Any] | None = None, summary: SourceSummary | None = None,
               frames: list[FrameResult] | None = None) -> tuple[str, Page]:
    stream = io.StringIO()
    writer = HtmlReportWriter(stream, {"scorers": qc_like_options(), "thumbnails": 6, **(options or {})})
    for result in frames if frames is not None else pan_like_frames():
        writer.write_frame(result)
    summary = summary or pan_summary(events=[BLACK_EVENT])
    writer.write_source(summary)
    writer.close(run_summary([summary]))
    text = stream.getvalue()
    assert text.isascii()
    return text, parse(text)


def figure_html(text: str, scorer: str) -> str:
    match = re.search(rf'<figure class="curve" data-scorer="{scorer}"[^>]*>.*?</figure>', text)
    assert match, scorer
    return match.group(0)


def tick_labels(chart: str, axis: str) -> list[str]:
    return re.findall(rf'<text class="tick {axis}"[^>]*>([^<]*)</text>', chart)


def test_svg_y_axis_zooms_only_when_the_data_fill_little_of_the_range() -> None:
    from qplug_reports import svg

    noise = svg.y_axis((0.017, 0.499), (0.0, 853.0))  # the qc noise scorer on a clean clip
    assert noise.mode == "zoomed" and noise.low == 0.0 and 0.499 < noise.high <= 1.0
    assert noise.ticks[0] == 0.0 and noise.ticks[-1] == noise.high
    sharp = svg.y_axis((0.0, 1.635), (0.0, 6.02))
    assert sharp.mode == "zoomed" and (sharp.low, sharp.high) == (0.0, 2.0)
    colour = svg.y_axis((0.0, 64.3), (0.0, 377.0))
    assert colour.mode == "zoomed" and colour.low == 0.0 and 64.3 < colour.high <= 100
    high_up = svg.y_axis((5.0, 5.1), (0.0, 6.02))  # far from the low end: the bottom follows the data
    assert 4.5 <= high_up.low <= 5.0 and 5.1 <= high_up.high <= 5.5
    # a bounded [0, 1] scorer whose data use a good part of the range keeps the whole range
    assert svg.y_axis((0.1, 0.8), (0.0, 1.0)) == svg.YAxis(0.0, 1.0, (0.0, 0.25, 0.5, 0.75, 1.0), "declared")
    # thresholds count towards the span: a far threshold keeps the declared range and stays visible
    assert svg.y_axis((0.0, 0.01), (0.0, 1.0), refs=[0.98]).mode == "declared"
    assert 0.01 < svg.y_axis((0.0, 0.01), (0.0, 1.0)).high <= 0.02  # a little room above a round maximum
    # flat data in a bounded range: the range shows where the line sits
    assert svg.y_axis((0.0, 0.0), (0.0, 1.0)).mode == "declared"
    # values outside the declared range still show; an unbounded range is fitted to the data
    wide = svg.y_axis((-0.2, 1.3), (0.0, 1.0))
    assert (wide.low, wide.high) == (-0.2, 1.3)
    free = svg.y_axis((3.0, 7.0))
    assert free.mode == "data" and free.low <= 3.0 and free.high >= 7.0


def test_html_y_axis_zoomed_for_huge_ranges_and_labelled() -> None:
    text, page = render_pan()
    noise = figure_html(text, "noise")  # values 0.4 .. 0.5 of a declared 0 .. 853
    assert 'data-y-axis="zoomed"' in noise
    caption = re.search("y axis zoomed to the data: 0.4 \u2026 (\\S+) of the range 0 \u2026 853", html_unescape(noise))
    assert caption and 0.5 <= float(caption.group(1)) <= 0.6
    labels = tick_labels(noise, "ytick")
    assert labels[0] == "0.400" and float(labels[-1]) == float(caption.group(1)) and 3 <= len(labels) <= 6
    # the curve fills most of the plot height instead of lying flat on the bottom
    from qplug_reports.svg import BOTTOM, HEIGHT, TOP
    (curve,) = [a for t, a in parse(noise).tags if t == "polyline"]
    ys = [y for _, y in polyline_points(curve)]
    assert (max(ys) - min(ys)) / (HEIGHT - TOP - BOTTOM) > 0.7
    sharp = figure_html(text, "sharpness")  # 0 .. 1.6 of 0 .. 6.02: the bottom stays at 0
    assert 'data-y-axis="zoomed"' in sharp and tick_labels(sharp, "ytick") == ["0.0", "0.5", "1.0", "1.5", "2.0"]
    # exposure spans half of [0, 1]: the declared range is informative and kept
    exposure = figure_html(text, "exposure")
    assert 'data-y-axis="declared"' in exposure and tick_labels(exposure, "ytick")[-1] == "1.00"
    assert "zoomed" not in html_unescape(exposure).split("</figcaption>")[0]


def html_unescape(text: str) -> str:
    import html

    return html.unescape(text)


def test_html_charts_of_a_source_share_the_time_axis_and_show_gaps() -> None:
    frames = pan_like_frames()
    for i in (40, 41, 42):  # a gap in the middle: noise failed on three frames
        frames[i].scores["noise"] = float("nan")
    del frames[60].scores["noise"]  # and one frame where it gave nothing at all
    text, page = render_pan(frames=frames)
    charts = {name: figure_html(text, name) for name in ("sharpness", "noise", "exposure", "black")}
    labels = {name: tick_labels(chart, "xtick") for name, chart in charts.items()}
    assert labels["noise"] == labels["sharpness"] == labels["black"]
    assert labels["noise"] == ["0 s", "1 s", "2 s", "3 s", "4 s", "5 s", "6 s", "7 s"]  # up to the duration
    from qplug_reports.svg import LEFT, RIGHT, WIDTH
    plot_w = WIDTH - LEFT - RIGHT

    def px(seconds: float) -> float:
        return LEFT + seconds / 7.0 * plot_w

    runs = [polyline_points(a) for t, a in parse(charts["noise"]).tags if t == "polyline"]
    assert len(runs) == 3  # broken at the NaN frames and at the missing one, not bridged
    assert abs(runs[0][-1][0] - px(39 / 25)) < 0.2 and abs(runs[1][0][0] - px(43 / 25)) < 0.2
    assert abs(runs[2][0][0] - px(61 / 25)) < 0.2
    assert abs(runs[-1][-1][0] - px(114 / 25)) < 0.2  # ends with the last frame that had a value ...
    (black,) = [polyline_points(a) for t, a in parse(charts["black"]).tags if t == "polyline"]
    assert abs(black[-1][0] - px(174 / 25)) < 0.2  # ... while the others go on, on the same scale
    assert "no value on 64 of 175 frames" in html_unescape(charts["noise"])


def test_min_max_curve_segments_break_at_gaps_and_stay_bounded() -> None:
    curve = MinMaxCurve(max_points=20)
    for i in range(4):
        curve.add(float(i), 1.0)
    curve.add_gap(4.0)
    curve.add(5.0, 2.0)
    assert curve.segments() == [[(0.0, 1.0), (1.0, 1.0), (2.0, 1.0), (3.0, 1.0)], [(5.0, 2.0)]]
    big = MinMaxCurve(max_points=100)
    for i in range(10_000):
        if 4000 <= i < 6000:  # a long stretch without values survives decimation as a gap
            big.add_gap(float(i))
        else:
            big.add(float(i), math.sin(i / 100))
    runs = big.segments()
    assert len(runs) == 2 and sum(len(r) for r in runs) <= 100
    assert runs[0][-1][0] < 4000 and runs[1][0][0] >= 6000
    assert big.samples == 8000 and big.gaps == 2000
    assert big.y_bounds() is not None


def test_html_worst_frames_show_different_moments_only_among_the_worst() -> None:
    frames = pan_like_frames(pixels=True)
    for i in (20, 21, 22):  # a black flash early on, as bad as the black ending
        frames[i].scores["sharpness"] = 0.0
    text, page = render_pan({"primary": "sharpness"}, frames=frames)
    indices = [int(a["data-index"] or 0) for a in page.find("figure", **{"class": "thumb"})]
    assert len(indices) == 6
    # both bad moments are shown (spacing chose among the worst) ...
    assert 20 in indices and 115 in indices
    # ... and every thumbnail is a black frame: spacing never fills up with the clip's sharper frames
    assert all(i in (20, 21, 22) or i >= 115 for i in indices)
    captions = re.findall(r"sharpness = ([0-9.]+)", html_unescape(text))
    assert captions and {float(c) for c in captions} == {0.0}
    assert indices == sorted(indices)  # worst first; equal values: the earlier frame first
    assert "in black event" in text


def test_worst_frames_spacing_segments_and_bounded_candidates() -> None:
    from qplug_reports.thumbnails import WorstFrames, spacing_for

    assert spacing_for(7.0, 6) == 1.0 and spacing_for(3600.0, 6) == 300.0
    worst = WorstFrames(k=3)
    rng = np.random.default_rng(1)
    duration, fps = 3600.0, 25
    for i in range(int(duration * fps)):
        pts = i / fps
        # a noisy baseline, a 10 s bad stretch at 600 s and two short dips elsewhere
        value = 0.5 + 0.05 * rng.random()
        if 600 <= pts < 610:
            value = 0.1 - (pts - 600) / 1000  # slowly getting worse: the worst is at its end
        elif abs(pts - 1800) < 0.1 or abs(pts - 3000) < 0.1:
            value = 0.2
        result = FrameResult(source_id=VIDEO, index=i, pts=pts, timecode=None, width=8, height=8)
        worst.offer(result, value, -value)
        assert len(worst) <= 9  # at most 3 * k candidates at any time
    chosen = worst.worst(spacing_for(duration, 3))
    # the stretch holds the 9 worst frames: the dips at 0.2 are not among the worst, spacing cannot bring them in
    assert [t.pts for t in chosen] == [609.96, 609.92, 609.88]
    # an event covering two of the worst keeps the worse first, then the next worst still beats a good frame
    few = WorstFrames(k=3)
    for i, value in enumerate([0.1, 0.5, 0.5, 0.2, 0.5, 0.5, 0.3]):
        few.offer(FrameResult(source_id=VIDEO, index=i, pts=i * 2.0, timecode=None, width=8, height=8),
                  value, -value)
    assert [t.index for t in few.worst(1.0)] == [0, 3, 6]
    assert [t.index for t in few.worst(1.0, segments=[(0.0, 7.0)])] == [0, 3, 6]  # not 4, a 0.5 frame


def test_worst_frames_of_stills_are_plain_worst_k() -> None:
    from qplug_reports.thumbnails import WorstFrames

    worst = WorstFrames(k=3)
    for i in range(50):
        value = 0.1 if i in (20, 21, 22) else 0.5
        worst.offer(FrameResult(source_id="dir", index=i, pts=None, timecode=None, width=8, height=8),
                    value, -value)
    assert [t.index for t in worst.worst(5.0, segments=[(0.0, 100.0)])] == [20, 21, 22]  # neighbours are fine


def test_html_two_sided_scorer_direction_and_ideal_line() -> None:
    text, page = render_pan({"primary": "exposure"})
    plain = html_unescape(text)
    scorers = re.search(r'<table class="scorers">.*?</table>', text)
    assert scorers and "<td>exposure</td><td>0 \u2026 1</td><td>closer to 0.5 is better</td>" in html_unescape(
        scorers.group(0))
    exposure = figure_html(text, "exposure")
    assert "<strong>exposure</strong> \u2014 closer to 0.5 is better" in html_unescape(exposure)
    chart = parse(exposure)
    (ideal,) = [a for t, a in chart.tags if t == "line" and a.get("class") == "ideal"]
    from qplug_reports.svg import BOTTOM, HEIGHT, TOP
    mid = TOP + (HEIGHT - TOP - BOTTOM) / 2  # declared range 0..1: 0.5 is half-way
    assert abs(float(ideal["y1"] or 0) - mid) < 0.2
    # the event threshold of a two-sided scorer is a distance from the ideal: lines at 0.2 and 0.8
    thresholds = sorted(float(a["y1"] or 0) for t, a in chart.tags if t == "line" and a.get("class") == "threshold")
    plot_h = HEIGHT - TOP - BOTTOM
    assert [round(y, 1) for y in thresholds] == [round(TOP + 0.2 * plot_h, 1), round(TOP + 0.8 * plot_h, 1)]
    # ranking respects the two-sided direction: the black frames (exposure 0) are the farthest from 0.5
    assert "Worst frames by exposure (closer to 0.5 is better)" in plain
    first = page.find("figure", **{"class": "thumb"})[0]
    assert int(first["data-index"] or 0) >= 115
    # one-sided scorers keep their direction text
    assert "<strong>black</strong> \u2014 lower is better" in html_unescape(figure_html(text, "black"))


def test_html_verdict_at_the_top_of_each_source() -> None:
    text, page = render_pan()
    section = re.search(r'<section class="source" id="src-1">(.*?)</section>', text, re.S)
    assert section
    body = section.group(1)
    # the verdict comes first, before the charts
    assert body.index('class="verdict"') < body.index('class="glance"') < body.index("Scores over time")
    verdict = parse(re.search(r'<div class="verdict">.*?</div>', body).group(0))  # type: ignore[union-attr]
    assert verdict.find("span", **{"class": "badge pass"})
    words = "".join(verdict.text)
    assert words.startswith("PASS") and "duration 00:00:07.000" in words and "175 frames" in words
    assert "1 event (black 1)" in words
    glance = parse(re.search(r'<table class="glance">.*?</table>', body).group(0))  # type: ignore[union-attr]
    cells = "|".join(glance.text)
    assert "noise|0.46|0.28|0.5|lower is better|0|115 of 175" in cells
    assert "black|0.36|0|1|lower is better|1|all" in cells
    # the full pooled table is still there, lower down
    assert body.index('class="glance"') < body.index('class="pooled"')

    _, failing = render_pan(summary=pan_summary(gate_failures=["mean sharpness 0.99 < 1.2"]))
    assert [s for s in failing.find("span") if s.get("class") == "badge fail"]
    gate_text = "".join(failing.text)
    assert "FAIL" in gate_text and "1 quality gate failed" in gate_text and "mean sharpness 0.99 < 1.2" in gate_text

    broken = pan_summary(errors=[ErrorRecord(VIDEO, "moov atom not found", index=None, stage="read")])
    _, erroring = render_pan(summary=broken)
    assert [s for s in erroring.find("span") if s.get("class") == "badge error"]
    assert "1 read error" in "".join(erroring.text)
    # the run's sources table shows the same status
    assert [s for s in erroring.find("span") if s.get("class") == "badge small error"]


def test_html_x_axis_for_a_stream_that_starts_late() -> None:
    from qplug_reports import svg

    frames = pan_like_frames(frames=50)
    for r in frames:
        r.pts = (r.pts or 0.0) + 3600.0  # a broadcast stream whose clock starts at one hour
    summary = pan_summary(frames=50)
    summary.media = MediaInfo(source_id=VIDEO, kind="video", fps=25.0, duration=2.0)
    text, _ = render_pan(frames=frames, summary=summary)
    labels = tick_labels(figure_html(text, "sharpness"), "xtick")
    assert labels == ["1:00:00.0", "1:00:00.5", "1:00:01.0", "1:00:01.5", "1:00:02.0"]
    assert [label for _, label in svg.x_ticks(0.0, 7.0, True)] == [f"{i} s" for i in range(8)]
    assert [label for _, label in svg.x_ticks(0.0, 300.0, True)][:3] == ["0:00", "1:00", "2:00"]
    assert [label for _, label in svg.x_ticks(0.0, 7200.0, True)][-1] == "2:00:00"
    assert [label for _, label in svg.x_ticks(0.0, 174.0, False)][:3] == ["0", "25", "50"]


def test_html_single_still_has_no_charts_and_escapes_gate_text() -> None:
    stream = io.StringIO()
    writer = HtmlReportWriter(stream, {"scorers": qc_like_options(), "thumbnails": 6})
    result = FrameResult.for_frame(Frame.from_rgb(np.full((20, 30, 3), 90, dtype=np.uint8), source_id="a.png",
                                                  index=0, pts=None))
    result.scores = {"sharpness": 2.0, "noise": 1.0, "exposure": 0.35, "black": 0.0}
    writer.write_frame(result)
    media = MediaInfo(source_id="a.png", kind="image", width=30, height=20)
    summary = SourceSummary(source_id="a.png", media=media, frames=1,
                            pooled={"sharpness": {"count": 1, "mean": 2.0, "p5": 2.0, "p95": 2.0}},
                            gate_failures=['sharpness <script>alert("x")</script> & co'])
    writer.write_source(summary)
    writer.close(run_summary([summary]))
    text = stream.getvalue()
    assert text.isascii() and "<script>" not in text and "&lt;script&gt;" in text
    page = parse(text)
    assert not page.find("svg")  # one frame: the glance table gives its scores, a chart would be one dot
    assert page.find("table", **{"class": "glance"}) and not page.find("table", **{"class": "pooled"})
    assert "<h3>Picture</h3>" in text and len(page.find("img")) == 1
    assert "no events" not in text  # events are about time
    assert page.find("span", **{"class": "badge fail"})


def test_html_glance_shows_a_whole_source_score_when_a_scorer_gives_one() -> None:
    stream = io.StringIO()
    writer = HtmlReportWriter(stream, {"scorers": scorer_options(), "thumbnails": 0})
    for i in range(3):
        writer.write_frame(frame_result(NASTY, i, 0.5, noise=1.0, fps=5.0))
    summary = source_summary(NASTY, 3)
    summary.pooled["sharp"]["source"] = 0.8125
    summary.source_scores = {"sharp": {"value": 0.8125}}
    writer.write_source(summary)
    writer.close(run_summary([summary]))
    text = stream.getvalue()
    assert "<th>whole source</th>" in text and "0.8125" in text


def test_html_curve_is_not_drawn_across_missing_frames() -> None:
    """Frames 40-59 never decoded (a decode gap): two lines, none bridging the hole."""
    stream = io.StringIO()
    writer = HtmlReportWriter(stream, {"scorers": {"sharp": scorer_options()["sharp"]}, "thumbnails": 0})
    for i in [*range(40), *range(60, 100)]:
        writer.write_frame(FrameResult(source_id=VIDEO, index=i, pts=i / 25, timecode=None, width=64, height=64,
                                       scores={"sharp": 0.5 + (i % 3) / 10}))
    writer.close(run_summary([]))
    lines = parse(stream.getvalue()).find("polyline", **{"class": "curve"})
    assert len(lines) == 2
    left, right = (polyline_points(line) for line in lines)
    assert max(x for x, _ in left) < min(x for x, _ in right)

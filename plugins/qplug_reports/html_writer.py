"""Self-contained HTML report: score curves, events, pooled scores, worst-frame thumbnails, errors.

The page is written progressively: the head when the first result arrives, one ``<section>`` per
source when its summary arrives, and the run overview at close (CSS ``order`` shows it first). Memory
is bounded per source by the decimated curves and at most 3K candidate thumbnails, and only sources
still in progress are held, so neither a long video nor a folder of many images makes the writer grow.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from typing import IO, Iterable

from qplug import ScorerInfo, __version__
from qplug.types import SCHEMA_VERSION, ErrorRecord, Event, FrameResult, MediaInfo, RunSummary, SourceSummary

from . import svg
from ._common import (Options, clean_text, finite, format_number, format_seconds, int_option,
                      outcome_text, safe_name, writer_context)
from .curve import MinMaxCurve
from .thumbnails import Thumbnail, WorstFrames, spacing_for

#: per-frame errors listed per source; beyond this only a count is kept
MAX_FRAME_ERRORS = 200
_DOT = " \u00b7 "
#: longest describer text shown under a thumbnail
MAX_DESCRIPTION = 400

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1100px;padding:0 16px 48px;
color:#1d2330;background:#fff;display:flex;flex-direction:column}
header.top{order:-2}section.run{order:-1}
h1{font-size:22px;margin:20px 0 4px}h2{font-size:18px;margin:0 0 6px;word-break:break-all}
h3{font-size:15px;margin:18px 0 6px}
section{border-top:1px solid #d5d9e0;padding:16px 0}
section.failed h2,section.gate h2{color:#a4161a}
.muted{color:#66707f}.bad{color:#a4161a;font-weight:600}.good{color:#1b7f3b;font-weight:600}
table{border-collapse:collapse;margin:4px 0}th,td{border:1px solid #d5d9e0;padding:3px 8px;text-align:left;
vertical-align:top}th{background:#f3f5f8}td.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:1px 10px;border-radius:4px;font-weight:700;letter-spacing:.04em;color:#fff}
.badge.pass{background:#1b7f3b}.badge.fail{background:#a4161a}.badge.error{background:#6a1b9a}
.verdict{display:flex;flex-wrap:wrap;align-items:center;gap:4px 14px;margin:6px 0 4px;font-size:15px}
.verdict .badge{font-size:16px;padding:3px 14px}.badge.small{font-size:12px;padding:0 6px}
.badge.stopped{background:#b35c00}p.outcome{font-size:15px;margin:6px 0}
table.glance td.hit{color:#a4161a;font-weight:600}table.glance td.dir{color:#4a5361}
figure{margin:10px 0 4px}figcaption{font-size:12.5px;color:#4a5361}figure.curve figcaption{margin-bottom:2px}
svg.chart{width:100%;height:auto;display:block}
svg .plot{fill:#fbfcfd;stroke:#c3c9d2}svg .grid{stroke:#e4e7ec}svg .xgrid{stroke:#9aa3b0}
svg .tick{font-size:12px;fill:#66707f}
svg .curve{fill:none;stroke:#2458c6;stroke-width:1.4;stroke-linejoin:round}svg .point{fill:#2458c6}
svg .event{fill:#e5383b;fill-opacity:.16}svg .threshold{stroke:#e5383b;stroke-dasharray:5 4}
svg .ideal{stroke:#1b7f3b;stroke-width:1.2;stroke-dasharray:2 3}
.thumbs{display:grid;grid-template-columns:repeat(auto-fill,minmax(165px,1fr));gap:10px}.thumb{margin:0;min-width:0}
.thumb img{display:block;width:100%;max-width:240px;height:auto;border:1px solid #c3c9d2}
.noimg{max-width:240px;height:90px;display:flex;align-items:center;justify-content:center;background:#f3f5f8;
color:#66707f;border:1px dashed #c3c9d2}
ul.errors li{margin:2px 0}code{font-size:12px}
"""


def esc(text: object) -> str:
    """Escape text for element content and quoted attributes (file names may hold <, & and quotes)."""
    return html.escape(clean_text(text), quote=True)


def _heading(source_id: str) -> str:
    """The source's ``<h2>``; a name that is not valid UTF-8 shows U+FFFD and keeps its bytes in an attribute."""
    text, raw = safe_name(source_id)
    extra = f' data-source-b64="{raw}"' if raw is not None else ""
    return f"<h2{extra}>{esc(text)}</h2>"


#: badge class and label of each way a run can end
_OUTCOME_BADGES = {"passed": ("pass", "PASSED"), "gate_failed": ("fail", "GATE FAILED"), "errors": ("error", "ERRORS"),
                   "failed": ("error", "FAILED"), "interrupted": ("stopped", "INTERRUPTED"),
                   "terminated": ("stopped", "TERMINATED")}


def _gates_cell(outcome: str, gate_failed: bool) -> str:
    """What the run says about its quality gates: "passed" only when the run itself passed.

    No gate failure in a run that was stopped or could not read an input means only that the sources
    checked so far passed, not that the run did.
    """
    if gate_failed:
        return '<span class="bad">failed</span>'
    if outcome == "passed":
        return '<span class="good">passed</span>'
    return '<span class="muted">no failure in what was checked, but the run did not pass</span>'


def _cell(value: object, numeric: bool = False) -> str:
    return f'<td class="num">{esc(value)}</td>' if numeric else f"<td>{esc(value)}</td>"


def _table(css_class: str, headers: Iterable[str], rows: Iterable[str]) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    return f'<table class="{css_class}"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _bound_text(value: float) -> str:
    return format_number(value) if math.isfinite(value) else ("\u2212\u221e" if value < 0 else "\u221e")


def _when(seconds: float | None, timecode: str | None) -> str:
    return timecode if timecode else format_seconds(seconds)


def _fatal(errors: list[ErrorRecord]) -> list[ErrorRecord]:
    """Errors that make the run exit with code 2: whole-source failures and read errors."""
    return [e for e in errors if e.index is None or e.stage == "read"]


def _status(summary: SourceSummary | None) -> tuple[str, str]:
    """``("pass" | "fail" | "error", why)`` for a source, by the rules of the run's exit code."""
    if summary is None:
        return "error", "no summary received"
    fatal = _fatal(summary.errors)
    if fatal:
        return "error", f"{len(fatal)} read error{'s' if len(fatal) != 1 else ''}"
    if summary.gate_failures:
        n = len(summary.gate_failures)
        return "fail", f"{n} quality gate{'s' if n != 1 else ''} failed"
    return "pass", "no quality gate failed"


@dataclass
class _SourceState:
    """What the writer keeps about a source while its frames arrive."""

    anchor: str
    worst: WorstFrames
    x_is_time: bool | None = None
    frames: int = 0
    #: first and last x (pts or index) seen, and the shortest positive step between two frames
    first_x: float | None = None
    last_x: float | None = None
    min_step: float | None = None
    curves: dict[str, MinMaxCurve] = field(default_factory=dict)
    errors: list[tuple[int | None, str, str]] = field(default_factory=list)
    errors_dropped: int = 0

    def note_error(self, index: int | None, stage: str, reason: str) -> None:
        if len(self.errors) < MAX_FRAME_ERRORS:
            self.errors.append((index, stage, reason))
        else:
            self.errors_dropped += 1


class HtmlReportWriter:
    """Builds the HTML report; see ``docs/report-schema.md`` for what it shows.

    Takes the run's scorers (range, direction, unit) and title from its :class:`qplug.WriterContext`.
    Options (``--option html.KEY=VALUE``): ``thumbnails`` (at most K worst frames per source, default
    6, 0 for none), ``primary`` (scorer that ranks worst frames; default the run's first scorer),
    ``curve_points`` (max points per curve, default 2000), ``thumbnail_width`` (pixels, default 240).
    """

    def __init__(self, stream: IO[str], options: Options | None = None) -> None:
        context = writer_context(options)
        own = context.options
        self._stream = stream
        self._context = context
        self._title = clean_text(context.title)
        self._k = int_option(own, "thumbnails", 6, 0)
        self._curve_points = int_option(own, "curve_points", 2000, 4)
        self._thumb_width = int_option(own, "thumbnail_width", 240, 16)
        self._metas = context.scorers
        primary = own.get("primary")
        self._primary: str | None = str(primary) if primary else next(iter(self._metas), None)
        self._scorer_order: dict[str, None] = dict.fromkeys(self._metas)
        self._states: dict[str, _SourceState] = {}
        self._anchors: dict[str, str] = {}
        self._rendered: set[str] = set()
        self._started = False

    # -- plumbing ------------------------------------------------------------------------------

    def _write(self, text: str) -> None:
        if not self._started:
            self._started = True
            self._write(self._head())
        # Pure ASCII output (non-ASCII as character references) is valid whatever encoding the
        # core opened the stream with.
        self._stream.write(text.encode("ascii", "xmlcharrefreplace").decode("ascii"))
        self._stream.flush()

    def _meta(self, name: str) -> ScorerInfo:
        return self._context.scorer(name)

    def _anchor(self, source_id: str) -> str:
        anchor = self._anchors.get(source_id)
        if anchor is None:
            anchor = self._anchors[source_id] = f"src-{len(self._anchors) + 1}"
        return anchor

    def _state(self, source_id: str) -> _SourceState:
        state = self._states.get(source_id)
        if state is None:
            state = self._states[source_id] = _SourceState(
                anchor=self._anchor(source_id), worst=WorstFrames(self._k, self._thumb_width))
        return state

    # -- Writer protocol -----------------------------------------------------------------------

    def write_frame(self, result: FrameResult) -> None:
        state = self._state(result.source_id)
        state.frames += 1
        if self._primary is None and result.scores:
            self._primary = next(iter(result.scores))
        if state.x_is_time is None:
            state.x_is_time = result.pts is not None
        x = result.pts if state.x_is_time else result.index
        if x is not None:
            x = float(x)
            if state.last_x is not None and x > state.last_x:
                step = x - state.last_x
                if state.min_step is not None and step > 2.5 * state.min_step:
                    # Frames are missing here (a decode gap): no line is drawn across the hole.
                    for curve in state.curves.values():
                        curve.add_gap((state.last_x + x) / 2)
                state.min_step = step if state.min_step is None else min(state.min_step, step)
            state.first_x = x if state.first_x is None else min(state.first_x, x)
            state.last_x = x if state.last_x is None else max(state.last_x, x)
        scored: set[str] = set()
        for name, raw in result.scores.items():
            value = finite(raw)
            if value is None:
                continue
            scored.add(name)
            if name not in self._scorer_order:
                self._scorer_order[name] = None
            if x is not None:
                curve = state.curves.get(name)
                if curve is None:
                    curve = state.curves[name] = MinMaxCurve(self._curve_points)
                curve.add(x, value)
            if name == self._primary:
                state.worst.offer(result, value, self._meta(name).badness(value))
        if x is not None and len(scored) < len(state.curves):
            # a scorer without a value here (None, NaN, or absent): break its line rather than bridge it
            for name, curve in state.curves.items():
                if name not in scored:
                    curve.add_gap(x)
        for error in result.errors:
            state.note_error(result.index, error.stage, error.reason)

    def write_source(self, summary: SourceSummary) -> None:
        state = self._states.pop(summary.source_id, None)
        self._write(self._section(summary.source_id, state, summary))
        self._rendered.add(summary.source_id)

    def close(self, run: RunSummary) -> None:
        # Sources whose summary never came (the core stopped early) still show what was scored.
        for source_id in list(self._states):
            self._write(self._section(source_id, self._states.pop(source_id), None))
            self._rendered.add(source_id)
        for summary in run.sources:
            if summary.source_id not in self._rendered:
                self.write_source(summary)
        self._write(self._run_section(run))
        self._write("</body>\n</html>\n")

    # -- page parts ----------------------------------------------------------------------------

    def _head(self) -> str:
        return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                f"<meta name=\"generator\" content=\"qplug {esc(__version__)}\">\n"
                f"<title>{esc(self._title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
                f"<header class=\"top\"><h1>{esc(self._title)}</h1>"
                f"<p class=\"muted\">qplug {esc(__version__)} report, schema {esc(SCHEMA_VERSION)}</p></header>\n")

    def _section(self, source_id: str, state: _SourceState | None, summary: SourceSummary | None) -> str:
        anchor = state.anchor if state else self._anchor(source_id)
        failed = summary is not None and not summary.ok
        gate = bool(summary and summary.gate_failures)
        css = " failed" if failed else " gate" if gate else ""
        frames = summary.frames if summary is not None else (state.frames if state else 0)
        media = summary.media if summary else None
        events = summary.events if summary else []
        x_range = self._x_range(state, media) if state else None
        parts = [f'<section class="source{css}" id="{anchor}">', _heading(source_id),
                 self._verdict(summary, state, frames, media, x_range)]
        if summary is None:
            parts.append('<p class="bad">No summary was received for this source (the run stopped early?).</p>')
        if failed:
            parts.append('<p class="bad">This source could not be read completely; see the errors below.</p>')
        if gate:
            assert summary is not None
            items = "".join(f"<li>{esc(g)}</li>" for g in summary.gate_failures)
            parts.append(f'<p class="bad">Quality gate failed:</p><ul class="gates">{items}</ul>')
        parts += [f'<p class="muted">{esc(self._media_line(media, frames))}</p>', self._glance(summary, frames)]
        if state and state.curves and state.frames > 1:  # one frame (a still): its scores are in the table
            parts.append(self._charts(state, events, x_range))
        if events or (state and state.x_is_time):  # events are about time: none for stills
            parts.append(self._events(events))
        if state and self._k and self._primary:
            parts.append(self._thumbnails(anchor, state, events, x_range))
        if summary and summary.pooled and frames > 1:  # of one frame, the table above already says it all
            parts.append(self._pooled(summary))
        parts.append(self._errors(summary.errors if summary else [], state))
        parts.append("</section>\n")
        return "".join(parts)

    @staticmethod
    def _x_range(state: _SourceState, media: MediaInfo | None) -> tuple[float, float] | None:
        """The x extent shared by every chart of a source.

        Video: from 0 (or the first pts, for a stream that starts late) to the end of the last frame or the
        source's duration, whichever is later, so that a scorer without values at the end of the clip still
        draws against the whole clip. Stills: the first to the last frame index.
        """
        if state.first_x is None or state.last_x is None:
            return None
        first, last = state.first_x, state.last_x
        if not state.x_is_time:
            return (first, last) if last > first else (first - 0.5, first + 0.5)
        frame = 1.0 / media.fps if media is not None and media.fps else (state.min_step or 0.0)
        end = last + frame
        low = 0.0 if 0.0 <= first <= max(1.0, 0.1 * end) else first
        duration = finite(media.duration) if media is not None else None
        high = max(end, low + duration) if duration and duration > 0 else end
        return (low, high) if high > low else (low - 0.5, low + 0.5)

    def _verdict(self, summary: SourceSummary | None, state: _SourceState | None, frames: int,
                 media: MediaInfo | None, x_range: tuple[float, float] | None) -> str:
        """The one-glance block: PASS/FAIL/ERROR, duration, frames, events and each scorer's pooled spread."""
        errors = summary.errors if summary else []
        fatal = _fatal(errors)
        badge, why = _status(summary)
        facts = [f'<span class="badge {badge}" title="{esc(why)}">{badge.upper()}</span>']
        duration = finite(media.duration) if media is not None else None
        if duration is None and state is not None and state.x_is_time and x_range:
            duration = x_range[1] - x_range[0]
        if duration is not None:
            facts.append(f"<span>duration <strong>{esc(format_seconds(duration))}</strong></span>")
        facts.append(f"<span><strong>{frames}</strong> frame{'s' if frames != 1 else ''}</span>")
        events = summary.events if summary else []
        by_scorer: dict[str, int] = {}
        for e in events:
            by_scorer[e.scorer] = by_scorer.get(e.scorer, 0) + 1
        if events:
            detail = ", ".join(f"{name} {count}" for name, count in by_scorer.items())
            facts.append(f'<span class="bad">{len(events)} event{"s" if len(events) != 1 else ""} '
                         f"({esc(detail)})</span>")
        elif state is None or state.x_is_time:  # events are about time: a still has none to speak of
            facts.append("<span>no events</span>")
        # per-frame errors, counted as the error list below shows them (the same error may come twice)
        frame_errors = len({(e.index, e.stage, e.reason) for e in errors if e not in fatal}
                           | set(state.errors if state else ())) + (state.errors_dropped if state else 0)
        problems = [why] if badge != "pass" else []
        if frame_errors:
            problems.append(f"{frame_errors} frame error{'s' if frame_errors != 1 else ''}")
        if problems:
            facts.append(f'<span class="bad">{esc("; ".join(problems))}</span>')
        parts = [f'<div class="verdict">{"".join(facts)}</div>']
        return "".join(parts)

    def _glance(self, summary: SourceSummary | None, frames: int) -> str:
        """Compact per-scorer table under the verdict: pooled mean, p5 and p95, direction, events."""
        events = summary.events if summary else []
        by_scorer: dict[str, int] = {}
        for e in events:
            by_scorer[e.scorer] = by_scorer.get(e.scorer, 0) + 1
        parts = []
        pooled = summary.pooled if summary else {}
        names = [n for n in self._scorer_order if n in pooled] + [n for n in pooled if n not in self._scorer_order]
        if names:
            # A scorer's verdict on the whole source (Q-Align's video score), beside the pooled frames.
            whole = any("source" in (pooled.get(name) or {}) for name in names)
            rows = []
            for name in names:
                values, meta = pooled.get(name) or {}, self._meta(name)
                count = finite(values.get("count"))
                hits = by_scorer.get(name, 0)
                rows.append("<tr>" + f"<th>{esc(name)}</th>" + _cell(format_number(values.get("mean")), True)
                            + _cell(format_number(values.get("p5")), True)
                            + _cell(format_number(values.get("p95")), True)
                            + f'<td class="dir">{esc(meta.direction)}</td>'
                            + (f'<td class="num hit">{hits}</td>' if hits else _cell(0, True))
                            + _cell("all" if count is None or count >= frames else
                                    f"{count:.0f} of {frames}", True)
                            + (_cell(format_number(values.get("source")), True) if whole else "") + "</tr>")
            headers = ["scorer", "mean", "p5", "p95", "better", "events", "frames with a value",
                       *(["whole source"] if whole else [])]
            parts.append(_table("glance", headers, rows))
        return "".join(parts)

    @staticmethod
    def _media_line(media: MediaInfo | None, frames: int) -> str:
        bits: list[str] = []
        if media is not None:
            bits += [b for b in (media.kind, media.container, media.codec) if b]
            if media.width and media.height:
                bits.append(f"{media.width}\u00d7{media.height}")
            if media.fps:
                bits.append(f"{media.fps:.3g} fps")
            if media.duration:
                bits.append(format_seconds(media.duration))
            if media.pix_fmt:
                bits.append(str(media.pix_fmt))
            if media.bit_depth:
                bits.append(f"{media.bit_depth}-bit")
            if media.interlaced:
                bits.append("interlaced")
        bits.append(f"{frames} frame{'s' if frames != 1 else ''} scored")
        return " \u00b7 ".join(bits)

    def _lines(self, meta: ScorerInfo, thresholds: list[float]) -> list[svg.RefLine]:
        """Reference lines of a chart: the ideal of a two-sided scorer, and event thresholds."""
        lines: list[svg.RefLine] = []
        inside = (lambda y: meta.low <= y <= meta.high)  # noqa: E731
        if meta.ideal is not None:
            lines.append(svg.RefLine(meta.ideal, f"ideal {format_number(meta.ideal)}", "ideal"))
            # a two-sided threshold is a distance from the ideal: bad beyond ideal +- threshold
            for t in thresholds:
                label = f"event threshold: farther than {format_number(t)} from {format_number(meta.ideal)}"
                lines += [svg.RefLine(y, label) for y in (meta.ideal - t, meta.ideal + t) if inside(y)]
        else:
            side = "above" if not meta.higher_is_better else "below"
            lines += [svg.RefLine(t, f"event threshold {format_number(t)} ({side} is bad)") for t in thresholds]
        return lines

    def _charts(self, state: _SourceState, events: list[Event], x_range: tuple[float, float] | None) -> str:
        parts = ["<h3>Scores over time</h3>" if state.x_is_time else "<h3>Scores by frame</h3>"]
        names = [n for n in self._scorer_order if n in state.curves]
        for name in names:
            curve, meta = state.curves[name], self._meta(name)
            mine = [e for e in events if e.scorer == name]
            thresholds = sorted({e.threshold for e in mine if finite(e.threshold) is not None}
                                | ({meta.event_threshold} if meta.event_threshold is not None else set()))
            bands = [svg.Band(e.start, e.end, f"{name}: {_when(e.start, e.start_timecode)} \u2013 "
                                              f"{_when(e.end, e.end_timecode)}, peak {format_number(e.peak)}")
                     for e in mine] if state.x_is_time else []
            lines = self._lines(meta, thresholds)
            axis = svg.y_axis(curve.y_bounds(), (meta.low, meta.high), [line.y for line in lines])
            segments = curve.segments()
            chart = svg.Chart(title=f"{name} ({meta.direction})", segments=segments,
                              x_is_time=bool(state.x_is_time), x_range=x_range, y_axis=axis, bands=bands,
                              lines=lines)
            notes = [meta.direction]
            if meta.unit:
                notes.append(f"unit: {meta.unit}")
            declared = f"{_bound_text(meta.low)} \u2026 {_bound_text(meta.high)}"
            if axis.mode == "zoomed":
                notes.append(f"y axis zoomed to the data: {format_number(axis.low)} \u2026 "
                             f"{format_number(axis.high)} of the range {declared}")
            elif axis.mode == "data":
                notes.append(f"y axis fitted to the data (range {declared})")
            if meta.ideal is not None:
                notes.append(f"dotted green line: ideal {format_number(meta.ideal)}")
            if thresholds:
                notes.append("dashed red line: event threshold")
            if mine:
                notes.append(f"{len(mine)} event{'s' if len(mine) != 1 else ''} shaded")
            points = sum(len(run) for run in segments)
            if points < curve.samples:
                notes.append(f"{points} points drawn from {curve.samples} frames, min/max per bucket")
            missing = state.frames - curve.samples
            if missing > 0:
                notes.append(f"no value on {missing} of {state.frames} frames (not drawn)")
            parts.append(f'<figure class="curve" data-scorer="{esc(name)}" data-y-axis="{axis.mode}">'
                         f"<figcaption><strong>{esc(name)}</strong> \u2014 {esc(_DOT.join(notes))}"
                         f"</figcaption>{svg.render(chart)}</figure>")
        return "".join(parts)

    def _pooled(self, summary: SourceSummary) -> str:
        methods: dict[str, None] = {}
        for values in summary.pooled.values():
            methods.update(dict.fromkeys(values))
        rows = [f"<tr><th>{esc(name)}</th>{''.join(_cell(format_number(values.get(m)), True) for m in methods)}</tr>"
                for name, values in summary.pooled.items()]
        return "<h3>Pooled scores</h3>" + _table("pooled", ["scorer", *methods], rows)

    def _events(self, events: list[Event]) -> str:
        if not events:
            return '<h3>Events</h3><p class="muted">No events.</p>'
        rows = [
            "<tr>" + _cell(e.scorer) + _cell(_when(e.start, e.start_timecode)) + _cell(_when(e.end, e.end_timecode))
            + _cell(f"{e.duration:.3f}", True) + _cell(format_number(e.peak), True)
            + _cell(format_seconds(e.peak_pts)) + _cell(format_number(e.threshold), True)
            + _cell(e.frames, True) + "</tr>"
            for e in events
        ]
        headers = ["scorer", "start", "end", "duration (s)", "peak", "peak at", "threshold", "frames"]
        return "<h3>Events</h3>" + _table("events", headers, rows)

    def _thumbnails(self, anchor: str, state: _SourceState, events: list[Event],
                    x_range: tuple[float, float] | None) -> str:
        assert self._primary is not None
        meta = self._meta(self._primary)
        title = (f"<h3>Worst frames by {esc(self._primary)} ({esc(meta.direction)})</h3>" if state.frames > 1
                 else "<h3>Picture</h3>")
        spacing = None
        if state.x_is_time and x_range:
            spacing = spacing_for(x_range[1] - x_range[0], self._k)
        segments = [(e.start, e.end) for e in events]
        thumbs = state.worst.worst(spacing, segments)
        if not thumbs:
            return title + f'<p class="muted">No frame has a {esc(self._primary)} score.</p>'
        note = ""
        if spacing is not None:
            # Spacing only chooses among the worst frames (WorstFrames.pool), never brings in good ones.
            note = (f'<p class="muted">Worst first. Among the {state.worst.pool_size()} frames as bad or nearly '
                    f"as bad as the worst {self._k}, frames of different events and at least {spacing:.3g} s "
                    "apart are preferred; then the next worst, wherever they are.</p>")
        figures = []
        for t in thumbs:
            where = t.timecode or (format_seconds(t.pts) if t.pts is not None else None)
            caption = f"frame {t.index}" + (f" \u00b7 {where}" if where else "") + \
                f" \u00b7 {self._primary} = {format_number(t.value)}"
            inside = sorted({e.scorer for e in events if t.pts is not None and e.start <= t.pts <= e.end})
            if inside:
                caption += f" \u00b7 in {', '.join(inside)} event"
            if t.data_uri:
                picture = (f'<img src="{t.data_uri}" width="{t.width}" height="{t.height}" '
                           f'alt="frame {t.index}" loading="lazy">')
            else:
                picture = '<div class="noimg">no pixels</div>'
            text = f"<br>{esc(t.description[:MAX_DESCRIPTION])}" if t.description else ""
            figures.append(f'<figure class="thumb" id="{anchor}-f{t.index}" data-index="{t.index}">{picture}'
                           f"<figcaption>{esc(caption)}{text}</figcaption></figure>")
        return title + note + f'<div class="thumbs">{"".join(figures)}</div>'

    @staticmethod
    def _errors(errors: list[ErrorRecord], state: _SourceState | None) -> str:
        entries: dict[tuple[int | None, str, str], None] = {}
        for e in errors:
            entries[(e.index, e.stage, e.reason)] = None
        if state:
            entries.update(dict.fromkeys(state.errors))  # dict keeps order and drops duplicates
        if not entries:
            return ""
        items = [f"<li><code>{esc(stage)}</code> {'whole source' if index is None else f'frame {index}'}: "
                 f"{esc(reason)}</li>" for index, stage, reason in entries]
        if state and state.errors_dropped:
            items.append(f'<li class="muted">\u2026 and {state.errors_dropped} more frame errors</li>')
        return f'<h3>Errors</h3><ul class="errors">{"".join(items)}</ul>'

    def _run_section(self, run: RunSummary) -> str:
        # The ending comes from the run (outcome, exit code), never from the absence of gate failures:
        # an interrupted run with no gate failure so far has not passed.
        outcome, exit_code = run.outcome, run.exit_code
        badge, label = _OUTCOME_BADGES.get(outcome, ("error", outcome.upper()))
        line = (f'<p class="outcome" data-outcome="{esc(outcome)}" data-exit-code="{exit_code}">'
                f'<span class="badge {badge}">{esc(label)}</span> {esc(outcome_text(outcome, exit_code))}</p>')
        facts = [("frames scored", run.frames), ("sources", len(run.sources)), ("errors", len(run.errors)),
                 ("wall time", f"{run.wall_seconds:.1f} s"), ("exit code", exit_code)]
        rows = [f"<tr><th>{esc(k)}</th>{_cell(v, True)}</tr>" for k, v in facts]
        rows.append(f"<tr><th>quality gates</th><td>{_gates_cell(outcome, run.gate_failed)}</td></tr>")
        parts = ['<section class="run" id="run"><h2>Run summary</h2>', line,
                 f'<table class="facts"><tbody>{"".join(rows)}</tbody></table>']
        run_failures = list(getattr(run, "failures", None) or [])  # a report or the setup that failed
        if run_failures:
            items = "".join(f"<li>{esc(f)}</li>" for f in run_failures)
            parts.append(f'<h3>Run failures</h3><ul class="errors">{items}</ul>')
        if run.sources:
            parts.append(self._sources_table(run.sources))
        names = list(dict.fromkeys([*self._scorer_order, *run.scorers]))
        if names:
            scorer_rows = []
            for name in names:
                meta = self._meta(name)
                span = f"{_bound_text(meta.low)} \u2026 {_bound_text(meta.high)}"
                scorer_rows.append("<tr>" + _cell(name) + _cell(span) + _cell(meta.direction) + _cell(meta.unit)
                                   + "</tr>")
            parts.append("<h3>Scorers</h3>" + _table("scorers", ["scorer", "range", "direction", "unit"], scorer_rows))
        failures = [e for e in run.errors if e.index is None]
        if failures:
            items = "".join(f"<li><a href=\"#{self._anchor(e.source_id)}\">{esc(e.source_id)}</a> "
                            f"<code>{esc(e.stage)}</code>: {esc(e.reason)}</li>" for e in failures)
            parts.append(f'<h3>Sources that could not be read</h3><ul class="errors">{items}</ul>')
        parts.append("</section>\n")
        return "".join(parts)

    def _sources_table(self, sources: list[SourceSummary]) -> str:
        primary = self._primary
        method = None
        if primary:
            for s in sources:
                if s.pooled.get(primary):
                    method = "mean" if "mean" in s.pooled[primary] else next(iter(s.pooled[primary]))
                    break
        rows = []
        for s in sources:
            badge, why = _status(s)
            status = f'<span class="badge small {badge}" title="{esc(why)}">{badge.upper()}</span>'
            pooled = _cell(format_number((s.pooled.get(primary) or {}).get(method)), True) if method else ""
            rows.append(f'<tr><td><a href="#{self._anchor(s.source_id)}">{esc(s.source_id)}</a></td>'
                        + _cell(s.frames, True) + pooled + _cell(len(s.events), True) + _cell(len(s.errors), True)
                        + f"<td>{status}</td></tr>")
        headers = ["source", "frames", *([f"{primary} ({method})"] if method else []), "events", "errors", "status"]
        return "<h3>Sources</h3>" + _table("sources", headers, rows)

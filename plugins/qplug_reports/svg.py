"""Inline SVG line charts for the HTML report; no scripts, no external assets."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape
from typing import Sequence

from ._common import format_number

WIDTH, HEIGHT = 1000, 150
LEFT, RIGHT, TOP, BOTTOM = 64, 14, 8, 24

#: a declared range is used for the y axis only when the data (with thresholds and the ideal) span at
#: least this fraction of it; otherwise the axis is fitted to the data, so a small signal is not a
#: flat line at the bottom of a huge range (noise 0..853 levels, sharpness 0..6.02)
DECLARED_RANGE_MIN_FILL = 1 / 3

#: nice tick steps for a time axis, in seconds
_TIME_STEPS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1200,
               1800, 3600, 7200, 10800, 21600, 43200, 86400)


@dataclass(frozen=True)
class Band:
    """A shaded x interval (an event), with the tooltip shown on hover."""

    start: float
    end: float
    label: str


@dataclass(frozen=True)
class RefLine:
    """A horizontal reference line: an event threshold (``kind="threshold"``) or the ideal value."""

    y: float
    label: str
    kind: str = "threshold"


@dataclass(frozen=True)
class YAxis:
    """The y extent chosen for a chart and why.

    ``mode`` is ``"declared"`` (the scorer's documented range), ``"zoomed"`` (fitted to the data because
    they fill little of a finite documented range) or ``"data"`` (the range is unbounded).
    """

    low: float
    high: float
    ticks: tuple[float, ...]
    mode: str


@dataclass
class Chart:
    """One scorer's curve over one source.

    :param segments: runs of (x, y) in data units, x ascending; the line is broken between runs.
    :param x_is_time: True when x is seconds (drawn as times), False for frame indices.
    :param x_range: the x extent, shared by every chart of a source; None: the data's extent.
    :param y_axis: the y extent (see :func:`y_axis`); None: computed from the data alone.
    """

    title: str
    segments: Sequence[Sequence[tuple[float, float]]]
    x_is_time: bool
    x_range: tuple[float, float] | None = None
    y_axis: YAxis | None = None
    bands: list[Band] = field(default_factory=list)
    lines: list[RefLine] = field(default_factory=list)


def nice_step(raw: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten that is at least ``raw`` (> 0)."""
    if not raw > 0 or not math.isfinite(raw):
        return 1.0
    magnitude = 10.0 ** math.floor(math.log10(raw))
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        if m * magnitude >= raw * (1 - 1e-9):
            return m * magnitude
    return 10.0 * magnitude  # pragma: no cover - the loop always returns


def _ticks(low: float, high: float, step: float) -> tuple[float, ...]:
    first = math.ceil(low / step - 1e-9)
    last = math.floor(high / step + 1e-9)
    if last - first > 100:  # cannot happen with a nice step; a guard against odd input
        return (low, high)
    return tuple(round(i * step, 12) + 0.0 for i in range(first, last + 1))


def y_axis(data: tuple[float, float] | None, declared: tuple[float, float] = (-math.inf, math.inf),
           refs: Sequence[float] = ()) -> YAxis:
    """Choose the y extent of a chart.

    The declared range is kept when it is finite and the data (with the reference lines ``refs``) span
    at least :data:`DECLARED_RANGE_MIN_FILL` of it. Otherwise the axis is fitted to the data: its top is
    a round number at or above the data's maximum, its bottom the declared low end when the data reach
    down towards it (or when they are flat), else a round number at or below the data's minimum.
    Values outside the declared range always stay visible.
    """
    low, high = declared
    values = [v for v in ([*data] if data else []) + list(refs) if math.isfinite(v)]
    if not values:
        values = [low, high] if math.isfinite(low) and math.isfinite(high) else [0.0, 1.0]
    d_low, d_high = min(values), max(values)
    span = d_high - d_low
    bounded = math.isfinite(low) and math.isfinite(high)
    if bounded and span >= DECLARED_RANGE_MIN_FILL * (high - low):
        y_low, y_high = min(low, d_low), max(high, d_high)
        step = nice_step((y_high - y_low) / 4)
        return YAxis(y_low, y_high, _ticks(y_low, y_high, step), "declared")
    if bounded and span == 0 and d_low in (low, high):
        # a flat line on an end of the range (no overexposed pixel at all): the range says it best
        return YAxis(low, high, _ticks(low, high, nice_step((high - low) / 4)), "declared")
    # the documented low end (usually 0) stays the bottom when the data come down far enough towards it
    anchored = math.isfinite(low) and low <= d_low and (span == 0 or span >= 0.5 * (d_high - low))
    base = low if anchored else d_low
    step = nice_step(((d_high - base) or abs(d_high) or 1.0) / 4)
    y_low = base if anchored else math.floor(d_low / step + 1e-9) * step
    y_high = math.ceil(d_high / step - 1e-9) * step
    if y_high - d_high < 0.02 * (y_high - y_low) and not (math.isfinite(high) and d_high >= high):
        y_high += step  # a little room above the maximum, so the curve does not run along the frame
    if y_high <= y_low:
        y_high = y_low + step
    if math.isfinite(high) and y_high > high >= d_high:
        y_high = high
    if math.isfinite(low) and y_low < low <= d_low:
        y_low = low
    y_low, y_high = round(y_low, 12) + 0.0, round(y_high, 12) + 0.0  # 0.6, not 0.6000000000000001
    mode = "zoomed" if bounded else "data"
    if bounded and (y_low, y_high) == (low, high):
        mode = "declared"
    if (y_high - y_low) / step > 5.001:  # headroom or a low end far below the data: fewer, wider ticks
        step = nice_step((y_high - y_low) / 4)
    return YAxis(y_low, y_high, _ticks(y_low, y_high, step), mode)


def _decimals(step: float) -> int:
    """Digits after the point needed to print multiples of ``step`` exactly."""
    for decimals in range(7):
        scaled = step * 10 ** decimals
        if abs(scaled - round(scaled)) < 1e-6 * max(1.0, scaled):
            return decimals
    return 6


def time_label(seconds: float, step: float, clock: bool = False) -> str:
    """A compact time for an axis tick: ``2.5 s``, or ``m:ss`` / ``h:mm:ss`` (``clock``, or steps >= 10 s).

    Fractions of a second are shown only as far as the tick ``step`` needs them.
    """
    if not clock and step < 10:
        return f"{seconds:.{_decimals(step)}f} s"
    decimals = _decimals(step) if step < 1 else 0
    sign = "-" if seconds < 0 else ""
    scaled = int(round(abs(seconds) * 10 ** decimals))
    whole, fraction = divmod(scaled, 10 ** decimals)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
    return sign + text + (f".{fraction:0{decimals}d}" if decimals else "")


def x_ticks(low: float, high: float, is_time: bool, most: int = 8) -> list[tuple[float, str]]:
    """Round tick positions (at most ``most``) and their labels for an x extent."""
    span = high - low
    if is_time:
        step = next((s for s in _TIME_STEPS if span / s <= most - 1), None)
        if step is None:
            step = nice_step(span / (most - 1))
        clock = max(abs(low), abs(high)) >= 60  # long clips and late-starting streams read as a clock
        return [(t, time_label(t, step, clock)) for t in _ticks(low, high, step)]
    step = max(1.0, nice_step(span / (most - 1)))
    return [(t, f"{t:.0f}") for t in _ticks(low, high, step)]


def _y_label(value: float, ticks: Sequence[float]) -> str:
    step = abs(ticks[1] - ticks[0]) if len(ticks) > 1 else 0.0
    if step == 0 or abs(value) >= 1e6 or (value != 0 and abs(value) < 1e-4):
        return format_number(value, 3)
    return f"{value:.{_decimals(step)}f}"


def _data_x_range(chart: Chart) -> tuple[float, float]:
    xs = [p[0] for run in chart.segments for p in run]
    return (min(xs), max(xs)) if xs else (0.0, 1.0)


def render(chart: Chart) -> str:
    """The chart as an ``<svg>`` element, scaled by CSS to the page width."""
    x_low, x_high = chart.x_range or _data_x_range(chart)
    if not x_high > x_low:
        x_low, x_high = x_low - 0.5, x_low + 0.5
    ys = [p[1] for run in chart.segments for p in run]
    axis = chart.y_axis or y_axis((min(ys), max(ys)) if ys else None, refs=[line.y for line in chart.lines])
    y_low, y_high = axis.low, axis.high
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def sx(x: float) -> float:
        return LEFT + (x - x_low) / (x_high - x_low) * plot_w

    def sy(y: float) -> float:
        return TOP + (y_high - y) / (y_high - y_low) * plot_h

    parts = [f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
             f'role="img" aria-label="{escape(chart.title)}">',
             f"<title>{escape(chart.title)}</title>",
             f'<rect class="plot" x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}"/>']
    for band in chart.bands:
        x0, x1 = sx(max(band.start, x_low)), sx(min(band.end, x_high))
        if x1 < LEFT or x0 > LEFT + plot_w:
            continue
        # a one-frame event still gets a visible sliver
        parts.append(f'<rect class="event" x="{x0:.1f}" y="{TOP}" width="{max(x1 - x0, 1.5):.1f}" '
                     f'height="{plot_h}"><title>{escape(band.label)}</title></rect>')
    for value in axis.ticks:
        y = sy(value)
        parts.append(f'<line class="grid" x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + plot_w}" y2="{y:.1f}"/>')
        parts.append(f'<text class="tick ytick" x="{LEFT - 5}" y="{y + 4:.1f}" text-anchor="end">'
                     f"{escape(_y_label(value, axis.ticks))}</text>")
    ticks = x_ticks(x_low, x_high, chart.x_is_time)
    for x, label in ticks:
        px = sx(x)
        anchor = "start" if px - LEFT < 20 else "end" if LEFT + plot_w - px < 20 else "middle"
        parts.append(f'<line class="xgrid" x1="{px:.1f}" y1="{TOP + plot_h}" x2="{px:.1f}" y2="{TOP + plot_h + 4}"/>')
        parts.append(f'<text class="tick xtick" x="{px:.1f}" y="{HEIGHT - 6}" text-anchor="{anchor}">'
                     f"{escape(label)}</text>")
    for line in chart.lines:
        if not y_low <= line.y <= y_high:
            continue
        y = sy(line.y)
        css = "ideal" if line.kind == "ideal" else "threshold"
        parts.append(f'<line class="{css}" x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + plot_w}" y2="{y:.1f}">'
                     f"<title>{escape(line.label)}</title></line>")
    for run in chart.segments:
        if len(run) == 1:
            x, y = run[0]
            parts.append(f'<circle class="point" cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.5"/>')
        elif run:
            coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in run)
            parts.append(f'<polyline class="curve" points="{coords}"/>')
    parts.append("</svg>")
    return "".join(parts)

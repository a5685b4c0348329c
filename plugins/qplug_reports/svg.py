"""Inline SVG line charts for the HTML report; no scripts, no external assets."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape
from typing import Sequence

from ._common import format_number, format_seconds

WIDTH, HEIGHT = 760, 170
LEFT, RIGHT, TOP, BOTTOM = 56, 14, 10, 30


@dataclass(frozen=True)
class Band:
    """A shaded x interval (an event), with the tooltip shown on hover."""

    start: float
    end: float
    label: str


@dataclass
class Chart:
    """One scorer's curve over one source.

    :param points: (x, y) in data units, x ascending.
    :param x_is_time: True when x is seconds (drawn as times), False for frame indices.
    :param y_range: the scorer's documented (low, high); infinite ends fall back to the data.
    """

    title: str
    points: Sequence[tuple[float, float]]
    x_is_time: bool
    y_range: tuple[float, float] = (-math.inf, math.inf)
    bands: list[Band] = field(default_factory=list)
    thresholds: list[float] = field(default_factory=list)


def _y_limits(chart: Chart) -> tuple[float, float]:
    ys = [p[1] for p in chart.points] + list(chart.thresholds)
    low, high = chart.y_range
    data_low, data_high = (min(ys), max(ys)) if ys else (0.0, 1.0)
    # An unbounded end uses the data, with a little room so the curve does not touch the frame.
    pad = (data_high - data_low) * 0.05 or 0.5
    low = low if math.isfinite(low) else data_low - pad
    high = high if math.isfinite(high) else data_high + pad
    # Values outside the documented range still have to be visible.
    return min(low, data_low), max(high, data_high)


def _x_limits(chart: Chart) -> tuple[float, float]:
    xs = [p[0] for p in chart.points]
    low, high = (min(xs), max(xs)) if xs else (0.0, 1.0)
    if high <= low:
        low, high = low - 0.5, low + 0.5
    return low, high


def _x_label(x: float, is_time: bool) -> str:
    return format_seconds(x) if is_time else f"{x:.0f}"


def render(chart: Chart) -> str:
    """The chart as an ``<svg>`` element, scaled by CSS to the page width."""
    x_low, x_high = _x_limits(chart)
    y_low, y_high = _y_limits(chart)
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
    for fraction in (0.0, 0.5, 1.0):
        value = y_low + (y_high - y_low) * fraction
        y = sy(value)
        parts.append(f'<line class="grid" x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + plot_w}" y2="{y:.1f}"/>')
        parts.append(f'<text class="tick" x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">'
                     f"{escape(format_number(value, 3))}</text>")
    for i in range(5):
        x = x_low + (x_high - x_low) * i / 4
        anchor = "start" if i == 0 else "end" if i == 4 else "middle"
        parts.append(f'<text class="tick" x="{sx(x):.1f}" y="{HEIGHT - 10}" text-anchor="{anchor}">'
                     f"{escape(_x_label(x, chart.x_is_time))}</text>")
    for threshold in chart.thresholds:
        y = sy(threshold)
        parts.append(f'<line class="threshold" x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + plot_w}" y2="{y:.1f}">'
                     f"<title>threshold {escape(format_number(threshold))}</title></line>")
    if len(chart.points) == 1:
        x, y = chart.points[0]
        parts.append(f'<circle class="point" cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3"/>')
    elif chart.points:
        coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in chart.points)
        parts.append(f'<polyline class="curve" points="{coords}"/>')
    parts.append("</svg>")
    return "".join(parts)

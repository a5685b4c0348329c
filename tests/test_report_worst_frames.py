""""Worst frames" are the worst: spacing thumbnails apart in time may never bring in good frames."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import html
import io
import re
from typing import Any

from qplug.registry import ScorerInfo
from qplug.types import Event, FrameResult, MediaInfo, RunSummary, SourceSummary
from qplug_reports.html_writer import HtmlReportWriter
from qplug_reports.thumbnails import WorstFrames, spacing_for

CLIP = "interview.mp4"


def qalign_options(**more: Any) -> dict[str, Any]:
    qalign = ScorerInfo(name="qalign", factory="x:y", description="", range=(1.0, 5.0), higher_is_better=True)
    exposure = ScorerInfo(name="exposure", factory="x:y", description="", range=(0.0, 1.0), higher_is_better=None,
                          ideal=0.5)
    return {"scorers": {"qalign": qalign.to_dict(), "exposure": exposure.to_dict()}, **more}


def render(values: dict[str, list[float]], options: dict[str, Any], fps: float = 2.0,
           events: list[Event] | None = None) -> str:
    """An HTML report of one clip whose frame i has ``values[name][i]``."""
    stream = io.StringIO()
    writer = HtmlReportWriter(stream, options)
    count = len(next(iter(values.values())))
    for i in range(count):
        result = FrameResult(source_id=CLIP, index=i, pts=i / fps, timecode=None, width=64, height=36)
        result.scores = {name: series[i] for name, series in values.items()}
        writer.write_frame(result)
    media = MediaInfo(source_id=CLIP, kind="video", fps=fps, duration=count / fps)
    summary = SourceSummary(source_id=CLIP, media=media, frames=count, pooled={}, events=events or [])
    writer.write_source(summary)
    writer.close(RunSummary(sources=[summary], scorers=list(values), frames=count))
    return stream.getvalue()


def thumbs(page: str, scorer: str) -> list[tuple[int, float]]:
    """(frame index, value) of each worst-frame thumbnail, in page order."""
    text = html.unescape(page)
    return [(int(i), float(v)) for i, v in
            re.findall(rf'<figure class="thumb"[^>]*data-index="(\d+)".*?{scorer} = ([-0-9.e]+)', text)]


def clustered_qalign(frames: int = 120, bad: range = range(50, 60)) -> list[float]:
    """Good frames (4.33 .. 4.85) spread over the clip, the bad ones (2.0 .. 2.45) all in one stretch."""
    return [2.0 + 0.05 * (i - bad.start) if i in bad else 4.33 + 0.52 * ((i * 7) % 11) / 10 for i in range(frames)]


def test_html_worst_frames_are_the_worst_even_when_they_are_clustered() -> None:
    values = clustered_qalign()
    # the bad stretch is one event, 25 .. 30 s, and spacing would want the 4 thumbnails 7.5 s apart
    event = Event("qalign", 25.0, 30.0, 2.0, 25.0, 3.0, 10)
    page = render({"qalign": values}, qalign_options(thumbnails=4), events=[event])
    shown = thumbs(page, "qalign")
    assert [i for i, _ in shown] == [50, 51, 52, 53]  # the four worst, worst first
    assert all(v <= 2.2 for _, v in shown)  # never the clip's best frames (4.33 .. 4.85)


def test_html_worst_frames_two_sided_scorer_clustered() -> None:
    # exposure: closer to 0.5 is better; the frames far from it sit together, near-ideal ones are spread
    exposure = [0.05 + 0.01 * (i - 80) if 80 <= i < 88 else 0.5 + 0.02 * ((i % 5) - 2) for i in range(120)]
    page = render({"exposure": exposure}, qalign_options(thumbnails=3, primary="exposure"))
    shown = thumbs(page, "exposure")
    assert [i for i, _ in shown] == [80, 81, 82]
    assert all(abs(v - 0.5) > 0.4 for _, v in shown)


def test_worst_frames_spread_only_among_the_worst_then_fall_back_to_the_next_worst() -> None:
    # a one-hour video: two short dips as bad as it gets, a long stretch a little less bad
    worst = WorstFrames(k=3)
    for i in range(3600 * 5):  # 5 fps
        pts = i / 5
        value = 0.5
        if 1800 <= pts < 1801:
            value = 0.05  # 5 frames
        elif 3000 <= pts < 3000.8:
            value = 0.06  # 4 frames
        elif 600 <= pts < 700:
            value = 0.09
        worst.offer(FrameResult(source_id=CLIP, index=i, pts=pts, timecode=None, width=8, height=8), value, -value)
    assert len(worst) == 9 and worst.pool_size() == 9
    chosen = worst.worst(spacing_for(3600.0, 3))
    # both dips (spacing at work among the 9 worst) and then the next worst: the first dip again,
    # never the 0.09 stretch 20 minutes earlier
    assert [t.pts for t in chosen] == [1800.0, 1800.2, 3000.0]
    assert [t.value for t in chosen] == [0.05, 0.05, 0.06]


def test_worst_frames_of_a_short_clip_never_reach_into_its_better_part() -> None:
    # 12 frames 1 s apart, k=3: the 9 candidates are most of the clip, so spacing may not pick among all of them
    values = [0.9, 0.8, 0.85, 0.7, 0.95, 0.1, 0.15, 0.2, 0.9, 0.6, 0.88, 0.92]
    worst = WorstFrames(k=3)
    for i, value in enumerate(values):
        worst.offer(FrameResult(source_id=CLIP, index=i, pts=float(i), timecode=None, width=8, height=8),
                    value, -value)
    assert worst.pool_size() == 3
    assert [t.index for t in worst.worst(4.0)] == [5, 6, 7]
    assert [t.index for t in worst.worst(1.0, segments=[(4.5, 8.0)])] == [5, 6, 7]


def test_worst_frames_still_spread_when_the_worst_are_far_apart() -> None:
    values = [0.5] * 100
    for i, v in ((10, 0.1), (11, 0.12), (50, 0.11), (90, 0.13)):
        values[i] = v
    worst = WorstFrames(k=3)
    for i, value in enumerate(values):
        worst.offer(FrameResult(source_id=CLIP, index=i, pts=i / 2, timecode=None, width=8, height=8),
                    value, -value)
    # 11 is the second worst but 0.5 s from 10: the worst-K pool lets spacing pick 50 and 90 instead
    assert [t.index for t in worst.worst(spacing_for(50.0, 3))] == [10, 50, 90]

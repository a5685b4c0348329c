"""Timecoded events: segments where a score stays on the bad side of a threshold long enough.

Keyed on presentation time, not frame index, so segments are right under variable frame rate and
under sampling (``--fps 1`` frames each stand for a whole second).
"""

from __future__ import annotations

from dataclasses import dataclass

from .registry import ScorerInfo
from .timecode import pts_to_timecode, seconds_to_clock
from .types import Event


@dataclass(frozen=True)
class EventRule:
    """Threshold and minimum duration for one scorer's events."""

    threshold: float
    min_duration: float = 0.0


class EventDetector:
    """Streams (pts, value) pairs of one scorer on one source and emits closed segments.

    Which side of the threshold is bad comes from the scorer's own record (:meth:`ScorerInfo.is_bad`),
    the one place qplug keeps score directions.
    """

    def __init__(self, scorer: ScorerInfo, rule: EventRule, fps: float | None = None) -> None:
        self.info = scorer
        self.scorer = scorer.name
        self.rule = rule
        self.fps = fps
        self.events: list[Event] = []
        self._start: float | None = None
        self._start_tc: str | None = None
        self._peak = 0.0
        self._peak_pts = 0.0
        self._frames = 0
        self._last_end: float | None = None

    def _is_bad(self, value: float) -> bool:
        return self.info.is_bad(value, self.rule.threshold)

    def _worse(self, value: float, than: float) -> bool:
        return self.info.badness(value) > self.info.badness(than)

    def add(self, pts: float | None, value: float | None, duration: float | None = None,
            timecode: str | None = None) -> None:
        """Feed the next frame. Frames without pts (stills) or without a value are ignored."""
        if pts is None or value is None:
            return
        if self._is_bad(value):
            if self._start is None:
                self._start, self._start_tc = pts, timecode
                self._peak, self._peak_pts, self._frames = value, pts, 0
            elif self._worse(value, self._peak):
                self._peak, self._peak_pts = value, pts
            self._frames += 1
            self._last_end = pts + duration if duration else pts
        elif self._start is not None:
            self._close(end=pts)  # the bad stretch ends when the first good frame is shown

    def finish(self) -> list[Event]:
        """Close an open segment at the end of the source and return all events."""
        if self._start is not None:
            self._close(end=self._last_end if self._last_end is not None else self._start)
        return self.events

    def _close(self, end: float) -> None:
        assert self._start is not None
        start = self._start
        if end - start + 1e-9 >= self.rule.min_duration:
            self.events.append(Event(
                scorer=self.scorer, start=start, end=end, peak=self._peak, peak_pts=self._peak_pts,
                threshold=self.rule.threshold, frames=self._frames,
                start_timecode=self._start_tc or _timecode(start, self.fps),
                end_timecode=_timecode(end, self.fps)))
        self._start = None
        self._last_end = None


def _timecode(seconds: float, fps: float | None) -> str:
    """SMPTE when the rate is known, else a clock time, so an event always has a readable time."""
    return pts_to_timecode(seconds, fps) or seconds_to_clock(seconds)

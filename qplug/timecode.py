"""SMPTE timecode arithmetic and time parsing (pure functions, no I/O), shared by sources and reports.

Timecodes count frames at a whole-number *nominal* rate (30 for 29.97 fps). At 29.97 and 59.94 fps
the drop-frame convention skips frame numbers 00 and 01 (00-03 at 59.94) at the start of every
minute except each tenth minute, so that the timecode stays within a frame of wall-clock time;
drop-frame timecodes put ``;`` before the frame field.
"""

from __future__ import annotations

import math

#: Rates ffmpeg prints rounded (``29.97 fps``) mapped to their exact NTSC value.
_NTSC = {23.98: 24000 / 1001, 29.97: 30000 / 1001, 47.95: 48000 / 1001, 59.94: 60000 / 1001,
         119.88: 120000 / 1001}
#: Nominal rates that use drop-frame timecode, and how many frame numbers each minute drops.
_DROP = {30: 2, 60: 4, 120: 8}


def exact_rate(fps: float) -> float:
    """The exact rate behind a rounded NTSC figure (``29.97`` -> 30000/1001); other rates unchanged."""
    for shown, exact in _NTSC.items():
        if abs(fps - shown) < 0.006:
            return exact
    return fps


def is_drop_frame(fps: float) -> bool:
    """True for the NTSC rates that use drop-frame timecode (29.97, 59.94, 119.88)."""
    nominal = round(fps)
    return nominal in _DROP and abs(fps - nominal * 1000 / 1001) < 0.006


def frames_to_timecode(frame: int, fps: float, drop_frame: bool | None = None) -> str:
    """Timecode of frame number ``frame`` (0-based) at ``fps``.

    :param drop_frame: force or forbid drop-frame counting; default: drop-frame at 29.97/59.94/119.88.
    """
    if frame < 0:
        raise ValueError("frame number must be >= 0")
    if not fps > 0:
        raise ValueError("fps must be > 0")
    nominal = max(1, round(fps))
    drop = is_drop_frame(fps) if drop_frame is None else drop_frame
    if drop:
        dropped = _DROP.get(nominal, round(nominal / 15))
        per_minute = nominal * 60 - dropped  # frames in a minute that drops numbers
        per_ten = nominal * 600 - dropped * 9  # the tenth minute drops none
        tens, rest = divmod(frame, per_ten)
        frame += dropped * 9 * tens
        if rest > dropped:
            frame += dropped * ((rest - dropped) // per_minute)
    ff = frame % nominal
    seconds = frame // nominal
    hh = (seconds // 3600) % 24  # timecodes wrap at 24 h like a clock
    return f"{hh:02d}:{(seconds // 60) % 60:02d}:{seconds % 60:02d}{';' if drop else ':'}{ff:02d}"


def pts_to_timecode(pts: float | None, fps: float | None) -> str | None:
    """Timecode of the frame shown at ``pts`` seconds (None when the time or rate is unknown)."""
    if pts is None or fps is None or not fps > 0 or not math.isfinite(pts):
        return None
    rate = exact_rate(fps)
    # Nearest, not floor: containers store pts rounded to their time base (1 ms in Matroska), so
    # frame 1 at 29.97 fps arrives as 0.033 s, a hair before its exact 0.03337 s.
    frame = max(0, round(pts * rate))
    return frames_to_timecode(frame, rate)


def seconds_to_clock(seconds: float) -> str:
    """``HH:MM:SS.mmm``."""
    millis = int(round(max(seconds, 0.0) * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, ms = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{ms:03d}"


def parse_time(text: str) -> float:
    """Seconds from ``12.5``, ``01:02.5`` or ``01:02:03.25`` (for --start/--end)."""
    parts = text.strip().split(":")
    if not 1 <= len(parts) <= 3 or any(p == "" for p in parts):
        raise ValueError(f"not a time: {text!r} (use seconds or HH:MM:SS.mmm)")
    value = 0.0
    for part in parts:
        number = float(part)
        if number < 0 or not math.isfinite(number):
            raise ValueError(f"not a time: {text!r}")
        value = value * 60 + number
    return value

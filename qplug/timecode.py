"""SMPTE timecode from presentation time. Pure arithmetic, shared by sources and reports."""

from __future__ import annotations

import math

# Rates that use drop-frame counting (SMPTE 12M): NTSC-family rates just under an integer.
_DROP_FRAME_RATES = {30: 2, 60: 4}


def nominal_rate(fps: float) -> tuple[int, bool]:
    """The integer frame count per timecode second and whether drop-frame applies (29.97 -> 30, True)."""
    rounded = int(round(fps))
    drop = rounded in _DROP_FRAME_RATES and abs(fps - rounded * 1000 / 1001) < 1e-3
    return max(rounded, 1), drop


def frames_to_timecode(frame_number: int, fps: float) -> str:
    """``HH:MM:SS:FF`` for a frame count at ``fps`` (``HH:MM:SS;FF`` for drop-frame rates)."""
    rate, drop = nominal_rate(fps)
    n = max(frame_number, 0)
    if drop:
        dropped = _DROP_FRAME_RATES[rate]
        per_ten_minutes = rate * 600 - dropped * 9
        per_minute = rate * 60 - dropped
        tens, rest = divmod(n, per_ten_minutes)
        # Frame labels 0..dropped-1 are skipped every minute except each tenth one.
        extra = dropped * 9 * tens
        if rest > dropped:
            extra += dropped * ((rest - dropped) // per_minute)
        n += extra
    frames = n % rate
    seconds = (n // rate) % 60
    minutes = (n // (rate * 60)) % 60
    hours = n // (rate * 3600)
    sep = ";" if drop else ":"
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}{sep}{frames:02d}"


def pts_to_timecode(pts: float, fps: float | None) -> str:
    """Timecode of the frame shown at ``pts`` seconds; ``HH:MM:SS.mmm`` when the rate is unknown."""
    if fps and fps > 0 and math.isfinite(fps):
        return frames_to_timecode(int(math.floor(pts * fps + 1e-6)), fps)
    return seconds_to_clock(pts)


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

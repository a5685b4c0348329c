"""Damage in a decoded stream: which ffmpeg messages mean damage, and which frames are missing.

Two things go wrong silently when a stream is damaged. ffmpeg drops the frames it cannot decode and
carries on, so counting delivered frames renumbers everything after the hole; and its log mixes
real damage with harmless notices, at levels that do not tell them apart. :class:`Timeline` gives
each decoded frame its true index from its timestamp and records the holes; :func:`classify_log_line`
sorts the log.
"""

from __future__ import annotations

import re
from collections import deque
from typing import Literal

from qplug.timecode import seconds_to_clock

# Timestamp and muxer notices. The raw-video muxer logs "Application provided invalid, non
# monotonically increasing dts" at *error* level for any valid variable-frame-rate file whose frames
# come closer together than the output time base; concatenated files log "DTS out of order".
_NOTICE = re.compile(
    r"non[- ]monotonic|Application provided invalid|out of order|Past duration .*too large|"
    r"changing packet size|Invalid timestamps|Timestamps are unset|Discarding ID3|"
    r"max_analyze_duration|Could not find codec parameters|deprecated pixel format",
    re.IGNORECASE)
# What decoders and demuxers say about damaged data, whatever level they log it at (the MPEG-TS
# demuxer's "Packet corrupt" and the decoder's "corrupt decoded frame" are mere warnings).
_DAMAGE = re.compile(
    r"error while decoding|conceal|corrupt|Invalid NAL|missing picture|decode_slice_header error|"
    r"PES packet size mismatch|non-existing [PS]PS|no frame!|co located POCs unavailable|"
    r"Error splitting the input into NAL units|Decoding error|partial file|ended prematurely|"
    r"unexpected end|exceeds containing master element|out of range intra|Invalid data found|"
    r"Missing reference picture|reference (?:picture|frame) missing|illegal|damaged|bytestream overread|"
    r"Error submitting packet|invalid (?:mb|macroblock)|slice (?:mismatch|type)|cabac decode of",
    re.IGNORECASE)
_CONTEXT = re.compile(r"^\[[^\]]* @ ")  # "[h264 @ 0x55...]": a line from a component, not the stream description
_LEVEL = re.compile(r"\[(panic|fatal|error|warning|info|verbose|debug|trace)\]")
# Log contexts on the output side of ffmpeg (muxer, filters, scaler): their errors are not damage
# in the input. Everything else ([in#0/...], [h264 @ ...], [vist#0:0/...], [dec:...]) is input side.
_OUTPUT_SIDE = re.compile(r"^\[(?:out#|vost#|ost#|fc#|Parsed_|showinfo@|graph|swscaler|auto_scale|"
                          r"rawvideo @|null @|AVIOContext)")

LogClass = Literal["damage", "notice", "error", "info"]


def classify_log_line(line: str) -> LogClass:
    """What one ffmpeg log line (logged with ``-loglevel level+...``) means for the input.

    ``damage``: the input is damaged (counted, and reported as a decode error).
    ``notice``: timestamp and muxer notices, never damage even at error level.
    ``error``: an error that is not about the input's data (output side); a cause when ffmpeg fails.
    ``info``: anything else, and the stream description ffmpeg prints (info level, no context
    prefix): it echoes the file's own metadata, and a title such as "corrupt" is no damage.

    Why by message and not by level alone: ffmpeg's levels mislead both ways here. A valid
    variable-frame-rate file gets dozens of error-level "non monotonically increasing dts" from the
    muxer (false alarms), while damaged transport streams get only warning-level "Packet corrupt".
    So known notices never count, known damage messages count at any level, and any other
    error-level line from the input side (demuxer, decoder) counts, since each ffmpeg release words
    damage anew.
    """
    level = _LEVEL.search(line)
    severity = level.group(1) if level else None
    quiet = severity not in ("panic", "fatal", "error", "warning")
    if quiet and not _CONTEXT.match(line):
        return "info"  # the stream description (no "[h264 @ 0x...]" prefix): it echoes the file's metadata
    if _NOTICE.search(line):
        return "notice"
    if _DAMAGE.search(line):
        return "damage"  # some builds log "concealing N errors" at info level
    if quiet or severity == "warning":
        return "info"
    return "error" if _OUTPUT_SIDE.match(line) else "damage"


def clock(seconds: float) -> str:
    """``HH:MM:SS.mmm``, the form qplug's reports use to say where in a stream something happened."""
    return seconds_to_clock(seconds)


def describe_gaps(gaps: list[tuple[float, float, int, int]]) -> str:
    """``frames missing from 00:00:01.840 (frame 46) to 00:00:02.320 (frame 58)[, and in N more gaps]``."""
    start, end, first, after = gaps[0]
    text = f"frames missing from {clock(start)} (frame {first}) to {clock(end)} (frame {after})"
    if len(gaps) > 1:
        text += f", and in {len(gaps) - 1} more gap{'s' if len(gaps) > 2 else ''}"
    return text


# A timestamp within this fraction of a frame from the frame-rate grid is on it (timestamps in
# milliseconds put 29.97 fps frames up to 0.015 frame off).
_ON_GRID = 0.2


class Timeline:
    """True indices of decoded frames, from their timestamps, and the gaps where frames are missing.

    For a constant-rate stream the index is ``round((pts - origin) * fps)``: ffmpeg drops frames it
    cannot decode, and a count would renumber every frame after the hole, which then shows as a gap.
    A stream is taken as constant-rate while each frame sits on the rate's grid and lasts one frame
    period. From the first frame that does not, it is variable-rate for good and indices count
    frames: a variable-rate stream has no grid to tell a missing frame from a long one (a still
    screen recorded at a lower rate), so valid variable-rate files never show gaps; damage in them
    is still reported from the decoder's messages.

    :param fps: the stream's nominal rate (None: unknown, indices count frames).
    :param origin: timestamp of the stream's frame 0 (its own start), for the first frame after a seek.
    :param seeking: the first frame comes after a seek, so its index is from its time. Without a
        seek the first frame decoded is frame 0 and the grid starts at its timestamp.
    """

    def __init__(self, fps: float | None, origin: float = 0.0, seeking: bool = False) -> None:
        self.fps = fps if fps and fps > 0 else None
        self.origin = origin
        self.seeking = seeking
        #: (start pts, end pts, first missing index, first index after the gap), in stream order
        self.gaps: list[tuple[float, float, int, int]] = []
        self.regular = self.fps is not None
        self.last_pts: float | None = None
        self.last_index = -1
        self.count = 0
        self._recent: deque[tuple[float, int]] = deque(maxlen=1024)

    def _grid(self, pts: float) -> int | None:
        """The frame slot ``pts`` sits on, None when it is off the grid (or the rate is unknown)."""
        if self.fps is None:
            return None
        exact = (pts - self.origin) * self.fps
        slot = round(exact)
        return slot if abs(exact - slot) <= _ON_GRID else None

    def _first(self, pts: float | None) -> int:
        if pts is None or self.fps is None:
            self.regular = False
            return 0
        if not self.seeking:
            # Index 0 is the first frame decoded. Frames before it cannot be told from decoder delay
            # (an AVI with B-frames starts at 0.04 s) or from a video that starts after the audio.
            self.origin = pts
            return 0
        slot = self._grid(pts)
        if slot is None:
            self.regular = False
            return max(0, round((pts - self.origin) * self.fps))
        return max(0, slot)

    def _next(self, pts: float | None) -> int:
        last_pts, last = self.last_pts, self.last_index
        if pts is None or last_pts is None or pts <= last_pts:
            if pts is not None and last_pts is not None:
                self.regular = False  # repeated or backwards timestamps: not a clean constant rate
            return last + 1
        if self.regular:
            slot = self._grid(pts)
            if slot is not None and slot > last:
                return slot
            self.regular = False
        return last + 1

    def add(self, pts: float | None, duration: float | None) -> int:
        """Place the next decoded frame (timestamps in seconds); returns its index."""
        if self.count == 0:
            index = self._first(pts)
        else:
            index = self._next(pts)
            if index > self.last_index + 1 and self.fps is not None and pts is not None:
                start = self.origin + (self.last_index + 1) / self.fps
                self.gaps.append((round(start, 6), pts, self.last_index + 1, index))
        if self.regular and duration and self.fps and abs(duration * self.fps - 1.0) > 0.1:
            self.regular = False  # a frame lasting other than one period: the rate is not constant
        self.count += 1
        self.last_index = index
        if pts is not None:
            self.last_pts = pts
            self._recent.append((pts, index))
        return index

    def index_at(self, pts: float | None) -> int:
        """Index of the decoded frame on screen at ``pts`` (the latest one at or before it).

        For frames delivered after sampling: every-Nth keeps decoded timestamps, a fixed output rate
        puts frames at slot times, and either way this finds the source frame shown.
        """
        if pts is None:
            return self.last_index
        for when, index in reversed(self._recent):
            if when <= pts + 1e-6:
                return index
        return self._recent[0][1] if self._recent else self.last_index

"""The ``video`` source: one ffmpeg process per file, raw yuv420p frames streamed over a pipe.

Python's per-frame work is reading one frame's bytes into a fresh buffer and wrapping it in a
:class:`~qplug.types.Frame`; RGB and full-range luma are computed only if a scorer asks for them.
Timestamps come from ffmpeg's ``showinfo`` filter on stderr, read by a helper thread, so they are
exact for variable frame rate too; the same thread turns them into true frame indices (frames lost to
damage leave a gap instead of renumbering the rest) and sorts ffmpeg's messages into damage and
chatter (:mod:`qplug_video.damage`).

Only regular files are read, under a harmless name (:mod:`qplug_video.safe_input`), and a decode
that makes no progress for ``stall_timeout`` seconds is stopped with a clear error.
"""

from __future__ import annotations

import io
import math
import os
import queue
import re
import subprocess
import threading
import time
from collections import deque
from dataclasses import dataclass
from functools import partial
from typing import IO, Callable, Iterator, cast

import cv2
import numpy as np

from qplug.errors import InputError, UsageError
from qplug.types import Event, Frame, MediaInfo, Sampling

from . import colour
from .binary import ffmpeg_exe, ffprobe_exe
from .damage import Timeline, classify_log_line, clock, describe_gaps
from .graph import DECODED_LOG, DecodePlan, plan_decode, source_matrix
from .probe import Probe, VideoStream, bit_depth, ffmpeg_message, probe_file
from .safe_input import MediaInput, open_input
from qplug.timecode import pts_to_timecode

#: How many of ffmpeg's last log lines are kept for error messages.
STDERR_TAIL = 50
#: How many damage messages a reader keeps in ``damage`` (``damage_count`` goes on counting).
MAX_DAMAGE = 100
#: Seconds a decode may go without progress (no decoded frame, no output byte) before it is stopped.
DEFAULT_STALL_TIMEOUT = 60.0
#: Environment variable overriding the stall timeout (seconds) of sources built without one.
STALL_ENV_VAR = "QPLUG_STALL_TIMEOUT"
#: Pipe size asked of the kernel: fewer wake-ups per multi-megabyte frame than the default 64 KiB.
_PIPE_SIZE = 1 << 20

_SHOWINFO = re.compile(r"\bn:\s*(\d+)\s+pts:\s*\S+\s+pts_time:(\S+)\s+duration:\s*\S+\s+duration_time:(\S+)")
_SHOWINFO_FRAME = re.compile(r"\]\s+(?:\[info\]\s+)?n:\s*\d+\s")
_SHOWINFO_CONTEXT = re.compile(r"^\[(showinfo@\w+|Parsed_showinfo_\d+) @ ")
_PACKET_DTS = re.compile(r"\bstream = (\d+), dts = (-?\d+)")
_INPUT_DUMP = re.compile(r"^(?:\[info\] )?Input #0, ")
_TRUNCATED = re.compile(r"partial file|ended prematurely|unexpected end", re.IGNORECASE)


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:  # "NOPTS"
        return None
    return value if value == value and abs(value) != float("inf") else None


@dataclass(frozen=True)
class _FrameTime:
    """What showinfo said about one delivered frame (seconds on ffmpeg's timeline), and its index."""

    pts: float | None
    duration: float | None
    index: int | None = None


class _LogReader(threading.Thread):
    """Drains ffmpeg's stderr: frame times go to a queue, damage to a list, the rest into a tail.

    Every decoded frame goes through ``timeline`` here, in log order, so each delivered frame's true
    index is known when its time is queued. Each damage message is placed at the timestamp of the
    next frame decoded after it (None: no frame came after), which says where it was and whether a
    partial decode (a window, a frame limit) reached it. Damage logged while ffmpeg opens the file
    is not counted: the MPEG-TS demuxer reads the end of the file then, to find the duration, and
    whatever is damaged there is met (and logged) again when decoding gets there. Nor is damage
    logged after a seek before the first frame. Draining continuously also keeps ffmpeg from
    blocking on a full stderr pipe.
    """

    def __init__(self, pipe: IO[bytes], timeline: Timeline, logs_decoded: bool, damage: list[str],
                 progress: Callable[[], None], packet_time: Callable[[str], float | None] | None = None) -> None:
        super().__init__(name="qplug-ffmpeg-stderr", daemon=True)
        self.pipe = pipe
        self.timeline = timeline
        self.logs_decoded = logs_decoded
        self.progress = progress
        self.packet_time = packet_time
        self.times: queue.SimpleQueue[_FrameTime | None] = queue.SimpleQueue()
        self.tail: deque[str] = deque(maxlen=STDERR_TAIL)
        self.errors: deque[str] = deque(maxlen=STDERR_TAIL)  # error-level lines that are not counted damage
        self.damage = damage
        #: where each message in ``damage`` was: the pts of the next decoded frame (None: none came)
        self.damage_at: list[float | None] = []
        self.damage_count = 0
        self._unplaced: list[int] = []  # positions in damage_at waiting for the next decoded frame
        self._packet_at: float | None = None  # time of the packet the demuxer last complained about
        self._opened = False  # ffmpeg printed its "Input #0" description: decoding has begun
        self._decoded_context: str | None = None

    def run(self) -> None:
        try:
            for raw in self.pipe:
                line = raw.decode("utf-8", errors="replace").rstrip()
                context = _SHOWINFO_CONTEXT.match(line)
                if context:
                    if _SHOWINFO_FRAME.search(line):
                        self._frame(self._decoded(context.group(1)), line)
                    continue
                if not line:
                    continue
                self.tail.append(line)
                if not self._opened and _INPUT_DUMP.match(line):
                    self._opened = True
                kind = classify_log_line(line)
                # After a seek, decoding starts at a keyframe before the start: frames there that refer
                # to earlier ones ("co located POCs unavailable" in open GOPs) fail, and are not delivered.
                preroll = self.timeline.seeking and self.timeline.count == 0
                if kind == "damage" and self._opened and not preroll:
                    self.damage_count += 1
                    if len(self.damage) < MAX_DAMAGE:
                        self._add_damage(line)
                elif kind in ("damage", "error"):
                    self.errors.append(line)
        except (OSError, ValueError):  # the pipe was closed under us by close()
            pass
        finally:
            self.times.put(None)

    def _add_damage(self, line: str) -> None:
        # A demuxer naming the packet's timestamp says exactly where; it reads well ahead of the
        # decoder, so the next decoded frame would place it too early. Its follow-up lines
        # ("corrupt input packet in stream 0") are about the same packet.
        at = self.packet_time(line) if self.packet_time is not None else None
        if at is not None:
            self._packet_at = at
        elif line.startswith("[in#"):
            at = self._packet_at
        if at is None:
            self._unplaced.append(len(self.damage))
        self.damage.append(ffmpeg_message(line))
        self.damage_at.append(at)

    def _decoded(self, context: str) -> bool:
        """Whether a showinfo line is the one after decoding (True) or the delivered frame's (False)."""
        if not self.logs_decoded:
            return False
        if context.startswith("showinfo@"):
            return context == f"showinfo@{DECODED_LOG}"
        # A build that names filters "Parsed_showinfo_N" anyway: the decoded one logs first.
        if self._decoded_context is None:
            self._decoded_context = context
        return context == self._decoded_context

    def _frame(self, decoded: bool, line: str) -> None:
        match = _SHOWINFO.search(line)
        pts, duration = (_number(match.group(2)), _number(match.group(3))) if match else (None, None)
        if decoded or not self.logs_decoded:
            index = self.timeline.add(pts, duration)
            self.progress()
            self._packet_at = None
            if self._unplaced:
                where = pts if pts is not None else self.timeline.last_pts
                for i in self._unplaced:
                    self.damage_at[i] = where
                self._unplaced.clear()
            if decoded:
                return
        else:
            index = self.timeline.index_at(pts)
        # An unparsable line still stands for one frame, keeping the pairing in step.
        self.times.put(_FrameTime(pts, duration, index) if match else _FrameTime(None, None, index))

    def damage_until(self, limit: float | None) -> tuple[int, str | None, float | None]:
        """(count, first message, its place) of the damage met up to ``limit`` (None: all of it)."""
        if limit is None:
            first = self.damage[0] if self.damage else None
            return self.damage_count, first, self.damage_at[0] if self.damage_at else None
        kept = [(m, at) for m, at in zip(self.damage, self.damage_at) if at is not None and at <= limit + 1e-6]
        return len(kept), kept[0][0] if kept else None, kept[0][1] if kept else None


class _Watchdog(threading.Thread):
    """Kills ffmpeg when, while the reader waits for it, it makes no progress for ``timeout`` seconds.

    Armed only while the reader waits for frame bytes, so a slow consumer (scorers busy, ffmpeg
    blocked on a full pipe) is never taken for a stall. Progress is any output byte or any decoded
    frame (sparse sampling may decode thousands of frames between two delivered ones).
    """

    def __init__(self, proc: subprocess.Popen[bytes], timeout: float) -> None:
        super().__init__(name="qplug-ffmpeg-watchdog", daemon=True)
        self.proc = proc
        self.timeout = timeout
        self.stalled = False
        self._armed = False
        self._last = time.monotonic()
        self._done = threading.Event()

    def arm(self) -> None:
        self._last = time.monotonic()
        self._armed = True

    def disarm(self) -> None:
        self._armed = False

    def poke(self) -> None:
        self._last = time.monotonic()

    def stop(self) -> None:
        self._done.set()

    def run(self) -> None:
        # Plain attribute writes from the other threads, no lock: a check runs at least every
        # ``timeout`` seconds, and arm() moves the deadline forward by itself.
        while True:
            wait = self.timeout
            if self._armed:
                wait = self._last + self.timeout - time.monotonic()
                if wait <= 0 and self._armed:  # armed still: not a read that just ended
                    self.stalled = True
                    try:
                        self.proc.kill()
                    except OSError:
                        pass
                    return
            if self._done.wait(wait):
                return


def _read_exact(pipe: io.RawIOBase, view: memoryview, progress: Callable[[], None] | None = None) -> int:
    """Fill ``view`` from ``pipe``; fewer bytes only at end of stream."""
    got = 0
    size = len(view)
    while got < size:
        n = pipe.readinto(view[got:])
        if not n:
            break
        got += n
        if progress is not None:
            progress()
    return got


@dataclass(frozen=True)
class _Last:
    """The last delivered frame, for messages."""

    pts: float | None = None
    index: int | None = None
    duration: float | None = None


class VideoReader:
    """An opened video: ``info`` is known, ffmpeg starts when iteration starts.

    Iterate once; frames come in presentation order, each with its true index in the stream (frames
    lost to damage leave a gap in the indices). ``close()`` (or leaving a ``with`` block, or
    stopping the iteration) ends the ffmpeg process. Damage, missing frames, a stall or an early
    end are raised as one :class:`InputError` after every frame that did decode has been delivered.

    While and after iterating, ``gaps`` lists the frames missing from the stream as
    ``(start pts, end pts, first missing index, first index after the gap)`` (``events``: the same
    as ``decode_gap`` events), and ``damage`` the decoder's and demuxer's messages about damaged
    data (``damage_count`` counts them all).
    """

    def __init__(self, path: str, info: MediaInfo, probe: Probe, stream: VideoStream, plan: DecodePlan,
                 target: MediaInput | None = None, stall_timeout: float = DEFAULT_STALL_TIMEOUT) -> None:
        self.path = path
        self.info = info
        #: all the probe said (container start time, other streams...); ``stream`` is the one decoded
        self.probe = probe
        self.stream = stream
        self.plan = plan
        self.stall_timeout = stall_timeout
        self._target = target  # what ffmpeg opens; released by close()
        self._timeline = Timeline(stream.fps, plan.origin, seeking=bool(plan.start))
        #: frames missing from the stream, filled while decoding:
        #: (start pts, end pts, first missing index, first index after the gap), times in seconds
        self.gaps: list[tuple[float, float, int, int]] = self._timeline.gaps
        #: ffmpeg's messages reporting damaged data, prefixes stripped (the first MAX_DAMAGE)
        self.damage: list[str] = []
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: _LogReader | None = None
        self._watch: _Watchdog | None = None
        self._started = False
        self._closed = False
        self._lock = threading.Lock()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def pid(self) -> int | None:
        """The ffmpeg process id while it runs (for diagnostics and tests)."""
        return self._proc.pid if self._proc is not None else None

    @property
    def events(self) -> list[Event]:
        """``gaps`` as ``decode_gap`` events (``frames``: how many are missing), for the source's summary."""
        fps = self.stream.fps
        return [Event(scorer="decode_gap", start=start, end=end, peak=0.0, peak_pts=start, threshold=0.0,
                      frames=after - first, start_timecode=pts_to_timecode(start, fps),
                      end_timecode=pts_to_timecode(end, fps))
                for start, end, first, after in self.gaps]

    @property
    def damage_count(self) -> int:
        """How many of ffmpeg's messages so far reported damaged data."""
        return self._log.damage_count if self._log is not None else 0

    @property
    def expected_frames(self) -> int | None:
        """About how many frames iteration will deliver (for progress bars; None when unknown)."""
        duration, fps, plan = self.info.duration, self.stream.fps, self.plan
        if duration is None:
            return plan.max_frames
        end = min(duration, plan.end) if plan.end is not None else duration
        seconds = max(0.0, end - (plan.start or 0.0))
        if plan.fps is not None:
            count: int | None = round(seconds * plan.fps)
        elif fps:
            count = -(-round(seconds * fps) // plan.every)  # ceil: frame 0 of each group is kept
        else:
            count = None
        if plan.max_frames is not None:
            return plan.max_frames if count is None else min(count, plan.max_frames)
        return count

    def __iter__(self) -> Iterator[Frame]:
        if self._started:
            raise RuntimeError(f"{self.path}: a video reader can be iterated only once")
        self._started = True
        return self._frames()

    def _start(self) -> subprocess.Popen[bytes]:
        extra = self._target.popen_kwargs() if self._target is not None else {}
        try:
            proc = subprocess.Popen(self.plan.args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, bufsize=0, **extra)
        except OSError as exc:
            raise InputError(self.path, f"cannot run ffmpeg: {exc.strerror or exc}") from None
        try:
            import fcntl

            fcntl.fcntl(proc.stdout.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), _PIPE_SIZE)  # type: ignore[union-attr]
        except (ImportError, OSError):
            pass  # not Linux, or above the system's pipe-max-size: the default pipe works too
        self._proc = proc
        self._watch = _Watchdog(proc, self.stall_timeout)
        self._watch.start()
        self._log = _LogReader(proc.stderr, self._timeline, self.plan.logs_decoded,  # type: ignore[arg-type]
                               self.damage, self._watch.poke, self._packet_time)
        self._log.start()
        return proc

    def _packet_time(self, line: str) -> float | None:
        """Delivered-pts time of the packet a demuxer message names ("stream = 0, dts = 306000")."""
        match = _PACKET_DTS.search(line)
        base = self.stream.time_base
        if match is None or base is None or int(match.group(1)) != self.stream.index:
            return None
        return int(match.group(2)) * base - self.plan.offset

    def _frames(self) -> Iterator[Frame]:
        try:
            if self._closed:
                return
            proc = self._start()
            yield from self._decode(proc)
        finally:
            self.close()

    def _decode(self, proc: subprocess.Popen[bytes]) -> Iterator[Frame]:
        plan, stream, log, watch = self.plan, self.stream, self._log, self._watch
        assert log is not None and watch is not None and proc.stdout is not None
        width, height, size = plan.width, plan.height, plan.frame_bytes
        stdout = cast(io.RawIOBase, proc.stdout)  # bufsize=0: a raw pipe, read straight into frames
        stream_fps = stream.fps
        # Spacing of delivered frames, for the last frame's duration and missing timestamps.
        if plan.fps is not None:
            step: float | None = 1.0 / plan.fps
        elif stream_fps:
            step = plan.every / stream_fps
        else:
            step = None
        depth = bit_depth(stream.pix_fmt)
        tint = colour.Colour(plan.matrix, plan.full_range)
        # The coded samples, for broadcast legal-range checks (Frame.planes), when delivery kept their meaning.
        coded = colour.delivers_coded_planes(stream.pix_fmt, stream.color_range, source_matrix(stream.color_space),
                                             plan.matrix, plan.full_range)
        times_done = False

        def next_time() -> _FrameTime | None:
            nonlocal times_done
            if times_done:
                return None
            item = log.times.get()  # safe to block: showinfo logs a frame before ffmpeg writes it
            if item is None:
                times_done = True
            return item

        def read_frame() -> tuple[np.ndarray, _FrameTime | None] | None:
            buf = np.empty(size, dtype=np.uint8)  # a new buffer per frame: frames outlive the loop
            watch.arm()  # the stall clock runs only while waiting for ffmpeg
            try:
                got = _read_exact(stdout, buf.data, watch.poke)
            except (OSError, ValueError):
                if self._closed:  # close() from another thread shut the pipe mid-read
                    return None
                raise
            finally:
                watch.disarm()
            if got < size:
                return None
            return buf, next_time()

        def seconds(t: _FrameTime | None) -> float | None:
            if t is None or t.pts is None:
                return None
            return round(t.pts, 6)

        count = 0
        first_index = 0
        prev_pts: float | None = None
        last = _Last()
        current = read_frame()
        while current is not None and not self._closed:
            buf, stamp = current
            # Read one frame ahead: its timestamp gives this frame's duration, even under VFR.
            upcoming = read_frame()
            pts = seconds(stamp)
            if pts is None and prev_pts is not None and step is not None:
                pts = round(prev_pts + step, 6)
            next_pts = seconds(upcoming[1]) if upcoming is not None else None
            if pts is not None and next_pts is not None and next_pts > pts:
                duration: float | None = round(next_pts - pts, 6)
            elif plan.every == 1 and plan.fps is None and stamp is not None and stamp.duration:
                duration = stamp.duration
            else:
                duration = step

            if plan.end is not None and pts is not None and pts >= plan.end - 1e-6:
                # ffmpeg's -t keeps a frame that starts exactly at the end; the window is half-open.
                break
            if stamp is not None and stamp.index is not None:
                index = stamp.index  # from the timestamp: true to the stream across gaps
            elif plan.fps is not None and stream_fps and pts is not None:
                index = math.floor(pts * stream_fps + 1e-3)
            else:
                if count == 0 and plan.start is not None and pts is not None and stream_fps:
                    first_index = round(pts * stream_fps)  # -ss restarts ffmpeg's count at the seek point
                index = first_index + count * plan.every

            frame = Frame(source_id=self.path, index=index, width=width, height=height, pts=pts,
                          timecode=pts_to_timecode(pts, stream_fps), pix_fmt=stream.pix_fmt, bit_depth=depth,
                          duration=duration, rgb_loader=partial(colour.i420_to_rgb, buf, height, width, tint),
                          luma_loader=partial(colour.full_range_luma, buf[:width * height].reshape(height, width), tint),
                          preview_loader=partial(colour.i420_preview, buf, height, width, tint),
                          crop_loader=partial(colour.i420_crop, buf, height, width, tint),
                          planes_loader=partial(colour.i420_planes, buf, height, width, plan.full_range) if coded else None)
            del buf
            count += 1
            prev_pts = pts
            last = _Last(pts, index, duration)
            current = upcoming
            yield frame
            del frame

        if current is not None and not self._closed:
            # Stopped at the window's end: ffmpeg's exit status is moot, what it found so far is not.
            self.close()
            self._raise_damage(count, last, stopped=False, cause=None, limit=plan.end)
            return
        if self._closed and not watch.stalled:
            return  # stopped by the caller
        self._finish(proc, count, last)

    def _finish(self, proc: subprocess.Popen[bytes], count: int, last: _Last) -> None:
        """After the last frame: wait for ffmpeg and turn a stall, damage or failure into one InputError."""
        try:
            rc = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
        log, watch = self._log, self._watch
        assert log is not None and watch is not None
        log.join(timeout=10)
        watch.stop()
        if watch.stalled:
            where = f"after frame {last.index}" if count else "before the first frame"
            raise InputError(self.path, f"decoding stalled: no frame for {self.stall_timeout:g} s {where}")
        messages = [*self.damage, *(ffmpeg_message(e) for e in log.errors)]
        truncated = next((m for m in reversed(messages) if _TRUNCATED.search(m)), None)
        # Why it stopped: ffmpeg's clearest word on truncation, else its last complaint.
        cause = truncated or (self.damage[-1] if self.damage else None) or (
            ffmpeg_message(log.errors[-1]) if log.errors else None)
        if count == 0:
            if rc != 0 or log.damage_count:
                raise InputError(self.path, f"no frames could be decoded: {cause or f'ffmpeg exited with status {rc}'}")
            start, duration = self.plan.start, self.info.duration
            if start is not None and duration is not None and start >= duration:
                raise InputError(self.path, f"no frames: start {start:g} s is past the end ({duration:g} s)")
            raise InputError(self.path, "no frames could be decoded" + (f": {cause}" if cause else ""))
        limit: float | None = None  # how far the decode went, when it covered less than the stream
        if self.plan.max_frames is not None and count >= self.plan.max_frames and last.pts is not None:
            limit = last.pts
        elif self.plan.end is not None:
            limit = self.plan.end
        stopped = rc != 0 or truncated is not None or (
            log.damage_until(limit)[0] > 0 and self._ended_early(count, last))
        self._raise_damage(count, last, stopped, cause or f"ffmpeg exited with status {rc}", limit)

    def _ended_early(self, count: int, last: _Last) -> bool:
        """Whether the last delivered frame ends well before the stream (or the window) does."""
        plan = self.plan
        if plan.max_frames is not None and count >= plan.max_frames:
            return False
        end = self.info.duration
        if plan.end is not None:
            end = plan.end if end is None else min(end, plan.end)
        if end is None or last.pts is None:
            return False
        spacing = last.duration or (1.0 / self.stream.fps if self.stream.fps else 0.04)
        return last.pts + spacing < end - max(0.5, 2 * spacing)

    def _raise_damage(self, count: int, last: _Last, stopped: bool, cause: str | None,
                      limit: float | None = None) -> None:
        """Raise one InputError saying where the stream was damaged, if it was.

        ``limit``: the decode covered the stream only up to this time (a window, a frame limit):
        gaps and damage met past it (ffmpeg reads ahead) are left out, of ``gaps`` too.

        Formats, joined by "; " when several apply:
        ``decoding stopped after N frames, the last at HH:MM:SS.mmm (frame K): CAUSE`` (only when
        ffmpeg failed, said the file is truncated, or the frames ended well before the stream did),
        ``decode_gap: frames missing from HH:MM:SS.mmm (frame A) to HH:MM:SS.mmm (frame B)[, and in N
        more gaps]``, ``decoder reported N error(s): FIRST MESSAGE``; damage without stop or gap is
        ``decode_error: decoder reported N error(s), the first near HH:MM:SS.mmm: FIRST MESSAGE``.
        """
        log = self._log
        if limit is not None:
            self.gaps[:] = [g for g in self.gaps if g[0] < limit]
        gaps = self.gaps
        damage_count, first, near = log.damage_until(limit) if log is not None else (0, None, None)
        parts: list[str] = []
        if stopped:
            where = f", the last at {clock(last.pts)} (frame {last.index})" if last.pts is not None else ""
            text = f"decoding stopped after {count} frames{where}: {cause}"
            if cause and _TRUNCATED.search(cause):
                text += " (the file looks truncated)"
            parts.append(text)
        if gaps:
            parts.append(f"decode_gap: {describe_gaps(gaps)}")
        if damage_count and first is not None:
            if stopped or gaps:
                parts.append(f"decoder reported {damage_count} error(s): {first}")
            else:
                at = f", the first near {clock(near)}" if near is not None else ", after the last frame"
                parts.append(f"decode_error: decoder reported {damage_count} error(s){at}: {first}")
        if parts:
            raise InputError(self.path, "; ".join(parts))

    def close(self) -> None:
        """Stop ffmpeg (if running), reap it and close its pipes. Safe to call more than once."""
        with self._lock:
            self._closed = True
            proc, self._proc = self._proc, None
        if self._watch is not None:
            self._watch.stop()
        if proc is not None:
            if proc.poll() is None:
                proc.kill()  # a reader holds no state worth a graceful stop
            if proc.stdout is not None:
                proc.stdout.close()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover - a kill()ed process always ends
                pass
            log = self._log
            if log is not None:
                log.join(timeout=10)
                if not log.is_alive() and proc.stderr is not None:
                    proc.stderr.close()
        if self._target is not None:
            self._target.close()

    def __del__(self) -> None:  # last resort: never leave an ffmpeg behind
        try:
            self.close()
        except Exception:
            pass


def _stall_timeout(value: float | None) -> float:
    """The stall timeout to use: ``value``, else ``QPLUG_STALL_TIMEOUT``, else the default."""
    source = "stall_timeout"
    if value is None:
        raw = os.environ.get(STALL_ENV_VAR, "").strip()
        if not raw:
            return DEFAULT_STALL_TIMEOUT
        source = STALL_ENV_VAR
        try:
            value = float(raw)
        except ValueError:
            raise UsageError(f"{STALL_ENV_VAR}={raw!r} is not a number of seconds") from None
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise UsageError(f"{source} must be a number of seconds > 0, not {value!r}")
    return float(value)


class VideoSource:
    """Opens video files with ffmpeg.

    :param ffmpeg: path of the ffmpeg executable (default: ``QPLUG_FFMPEG``, PATH, imageio-ffmpeg).
    :param deinterlace: deinterlace interlaced video with ``bwdif`` (default True).
    :param threads: decoder threads (default: ffmpeg's choice, one per core).
    :param probe_timeout: seconds allowed for probing a file.
    :param stall_timeout: seconds a decode may make no progress before it is stopped with an
        InputError (default: ``QPLUG_STALL_TIMEOUT``, else 60).
    :param ffprobe: path of an ffprobe to probe with (default: found beside ffmpeg or on PATH, see
        :func:`qplug_video.binary.ffprobe_exe`); ``""`` parses ``ffmpeg -i`` instead.
    """

    def __init__(self, ffmpeg: str | None = None, deinterlace: bool = True, threads: int | None = None,
                 probe_timeout: float = 30.0, stall_timeout: float | None = None, ffprobe: str | None = None) -> None:
        self.ffmpeg = ffmpeg
        self.deinterlace = deinterlace
        self.threads = threads
        self.probe_timeout = probe_timeout
        self.stall_timeout = _stall_timeout(stall_timeout)
        self.ffprobe = ffprobe

    def open(self, path: str, sampling: Sampling | None = None) -> VideoReader:
        """Probe ``path`` and return a reader for ``sampling``; InputError when it is not a readable video.

        Anything but a regular file (after resolving links) is refused without being opened.
        """
        sampling = sampling or Sampling()
        target = open_input(path)
        try:
            exe = self.ffmpeg or ffmpeg_exe()
            ffprobe = ffprobe_exe(exe) if self.ffprobe is None else (self.ffprobe or None)
            probe = probe_file(exe, target, timeout=self.probe_timeout, ffprobe=ffprobe)
            stream = probe.main_video
            assert stream is not None  # probe_file raises when there is none
            if stream.display_size is None:
                raise InputError(path, f"cannot tell the frame size of its {stream.codec} video stream")
            plan = plan_decode(exe, target.url, probe, stream, sampling, deinterlace=self.deinterlace,
                               threads=self.threads)
        except BaseException:
            target.close()
            raise
        return VideoReader(path, _media_info(path, probe, stream, plan), probe, stream, plan, target=target,
                           stall_timeout=self.stall_timeout)


def _media_info(path: str, probe: Probe, stream: VideoStream, plan: DecodePlan) -> MediaInfo:
    return MediaInfo(
        source_id=path, kind="video", container=probe.container, codec=stream.codec,
        width=stream.display_size[0] if stream.display_size else None,
        height=stream.display_size[1] if stream.display_size else None,
        fps=stream.fps, duration=probe.duration, frame_count=stream.frame_count, pix_fmt=stream.pix_fmt,
        bit_depth=bit_depth(stream.pix_fmt), interlaced=stream.interlaced, warnings=list(plan.warnings),
    )

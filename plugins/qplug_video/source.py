"""The ``video`` source: one ffmpeg process per file, raw yuv420p frames streamed over a pipe.

Python's per-frame work is reading one frame's bytes into a fresh buffer and wrapping it in a
:class:`~qplug.types.Frame`; RGB and full-range luma are computed only if a scorer asks for them.
Timestamps come from ffmpeg's ``showinfo`` filter on stderr, read by a helper thread, so they are
exact for variable frame rate too.
"""

from __future__ import annotations

import io
import math
import os
import queue
import re
import subprocess
import threading
from collections import deque
from dataclasses import dataclass
from functools import partial
from typing import IO, Iterator, cast

import cv2
import numpy as np

from qplug.errors import InputError
from qplug.types import Frame, MediaInfo, Sampling

from . import colour
from .binary import ffmpeg_exe
from .graph import DecodePlan, plan_decode
from .probe import Probe, VideoStream, bit_depth, ffmpeg_message, probe_file
from qplug.timecode import pts_to_timecode

#: How many of ffmpeg's last log lines are kept for error messages.
STDERR_TAIL = 50
#: Pipe size asked of the kernel: fewer wake-ups per multi-megabyte frame than the default 64 KiB.
_PIPE_SIZE = 1 << 20

_SHOWINFO = re.compile(r"\bn:\s*(\d+)\s+pts:\s*\S+\s+pts_time:(\S+)\s+duration:\s*\S+\s+duration_time:(\S+)")
_SHOWINFO_FRAME = re.compile(r"\]\s+(?:\[info\]\s+)?n:\s*\d+\s")
_SEVERE = re.compile(r"\[(panic|fatal|error)\]")
# Errors of the demuxer ("[in#0/mov,mp4... @ 0x...]") mean the file itself is cut or damaged.
# Decoder errors alone are often concealed glitches (a transport stream starting mid-GOP) and
# become a warning instead.
# "Invalid NAL unit size" means a packet holds fewer bytes than its NAL units declare: bytes are
# missing, not a concealable glitch. A truncated MP4 sometimes ends with only that (the demuxer's
# "partial file" is not always printed, depending on thread timing: about 1 run in 60 under load).
_DATA_LOSS = re.compile(r"^\[in#|partial file|Error while decoding stream|Invalid NAL unit size")
_TRUNCATED = re.compile(r"partial file|ended prematurely|unexpected end", re.IGNORECASE)

#: Limited-range luma (16..235) to full range (0..255), the Frame.luma contract.


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:  # "NOPTS"
        return None
    return value if value == value and abs(value) != float("inf") else None


@dataclass(frozen=True)
class _FrameTime:
    """What showinfo said about one delivered frame (seconds on ffmpeg's timeline)."""

    pts: float | None
    duration: float | None


class _LogReader(threading.Thread):
    """Drains ffmpeg's stderr: frame times go to a queue, the rest into a bounded tail for errors.

    Draining continuously also keeps ffmpeg from blocking on a full stderr pipe.
    """

    def __init__(self, pipe: IO[bytes]) -> None:
        super().__init__(name="qplug-ffmpeg-stderr", daemon=True)
        self.pipe = pipe
        self.times: queue.SimpleQueue[_FrameTime | None] = queue.SimpleQueue()
        self.tail: deque[str] = deque(maxlen=STDERR_TAIL)
        self.errors: deque[str] = deque(maxlen=STDERR_TAIL)
        self.error_count = 0

    def run(self) -> None:
        try:
            for raw in self.pipe:
                line = raw.decode("utf-8", errors="replace").rstrip()
                if "Parsed_showinfo" in line:
                    if _SHOWINFO_FRAME.search(line):
                        match = _SHOWINFO.search(line)
                        # An unparsable line still stands for one frame, keeping the pairing in step.
                        self.times.put(_FrameTime(_number(match.group(2)), _number(match.group(3)))
                                       if match else _FrameTime(None, None))
                    continue
                if not line:
                    continue
                self.tail.append(line)
                if _SEVERE.search(line):
                    self.errors.append(line)
                    self.error_count += 1
        except (OSError, ValueError):  # the pipe was closed under us by close()
            pass
        finally:
            self.times.put(None)


def _read_exact(pipe: io.RawIOBase, view: memoryview) -> int:
    """Fill ``view`` from ``pipe``; fewer bytes only at end of stream."""
    got = 0
    size = len(view)
    while got < size:
        n = pipe.readinto(view[got:])
        if not n:
            break
        got += n
    return got


class VideoReader:
    """An opened video: ``info`` is known, ffmpeg starts when iteration starts.

    Iterate once; frames come in presentation order. ``close()`` (or leaving a ``with`` block, or
    stopping the iteration) ends the ffmpeg process. A decode error after some frames is raised as
    :class:`InputError` once those frames have been delivered.
    """

    def __init__(self, path: str, info: MediaInfo, probe: Probe, stream: VideoStream, plan: DecodePlan) -> None:
        self.path = path
        self.info = info
        #: all ``ffmpeg -i`` said (container start time, other streams...); ``stream`` is the one decoded
        self.probe = probe
        self.stream = stream
        self.plan = plan
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: _LogReader | None = None
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
        try:
            proc = subprocess.Popen(self.plan.args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, bufsize=0)
        except OSError as exc:
            raise InputError(self.path, f"cannot run ffmpeg: {exc.strerror or exc}") from None
        try:
            import fcntl

            fcntl.fcntl(proc.stdout.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), _PIPE_SIZE)  # type: ignore[union-attr]
        except (ImportError, OSError):
            pass  # not Linux, or above the system's pipe-max-size: the default pipe works too
        self._proc = proc
        self._log = _LogReader(proc.stderr)  # type: ignore[arg-type]
        self._log.start()
        return proc

    def _frames(self) -> Iterator[Frame]:
        try:
            if self._closed:
                return
            proc = self._start()
            yield from self._decode(proc)
        finally:
            self.close()

    def _decode(self, proc: subprocess.Popen[bytes]) -> Iterator[Frame]:
        plan, stream, log = self.plan, self.stream, self._log
        assert log is not None and proc.stdout is not None
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
            try:
                got = _read_exact(stdout, buf.data)
            except (OSError, ValueError):
                if self._closed:  # close() from another thread shut the pipe mid-read
                    return None
                raise
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
            if plan.fps is not None and stream_fps and pts is not None:
                # The source frame on screen at this time (its count, exact for constant frame rate).
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
                          crop_loader=partial(colour.i420_crop, buf, height, width, tint))
            del buf
            count += 1
            prev_pts = pts
            current = upcoming
            yield frame
            del frame

        if self._closed or current is not None:
            return  # stopped early (by the caller or at the window's end): ffmpeg's state is moot
        self._finish(proc, count)

    def _finish(self, proc: subprocess.Popen[bytes], count: int) -> None:
        """After the last frame: wait for ffmpeg and turn its complaints into one InputError."""
        try:
            rc = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
        log = self._log
        assert log is not None
        log.join(timeout=10)
        errors = list(log.errors)
        data_loss = [e for e in errors if _DATA_LOSS.search(e)]
        truncated = [e for e in data_loss if _TRUNCATED.search(e)]  # the clearest cause, when ffmpeg gave it
        last_error = ffmpeg_message((truncated or data_loss or errors)[-1]) if errors else None
        if rc != 0 or data_loss:
            cause = last_error or f"ffmpeg exited with status {rc}"
            if _TRUNCATED.search(cause):
                cause += " (the file looks truncated)"
            if count:
                raise InputError(self.path, f"decoding stopped after {count} frames: {cause}")
            raise InputError(self.path, f"no frames could be decoded: {cause}")
        if count == 0:
            start, duration = self.plan.start, self.info.duration
            if start is not None and duration is not None and start >= duration:
                raise InputError(self.path, f"no frames: start {start:g} s is past the end ({duration:g} s)")
            raise InputError(self.path, "no frames could be decoded" + (f": {last_error}" if last_error else ""))
        if last_error:
            self.info.warnings.append(f"decoder reported {log.error_count} error(s), last: {last_error}")

    def close(self) -> None:
        """Stop ffmpeg (if running), reap it and close its pipes. Safe to call more than once."""
        with self._lock:
            self._closed = True
            proc, self._proc = self._proc, None
        if proc is None:
            return
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

    def __del__(self) -> None:  # last resort: never leave an ffmpeg behind
        try:
            self.close()
        except Exception:
            pass


class VideoSource:
    """Opens video files with ffmpeg.

    :param ffmpeg: path of the ffmpeg executable (default: ``QPLUG_FFMPEG``, PATH, imageio-ffmpeg).
    :param deinterlace: deinterlace interlaced video with ``bwdif`` (default True).
    :param threads: decoder threads (default: ffmpeg's choice, one per core).
    :param probe_timeout: seconds allowed for probing a file.
    """

    def __init__(self, ffmpeg: str | None = None, deinterlace: bool = True, threads: int | None = None,
                 probe_timeout: float = 30.0) -> None:
        self.ffmpeg = ffmpeg
        self.deinterlace = deinterlace
        self.threads = threads
        self.probe_timeout = probe_timeout

    def open(self, path: str, sampling: Sampling | None = None) -> VideoReader:
        """Probe ``path`` and return a reader for ``sampling``; InputError when it is not a readable video."""
        sampling = sampling or Sampling()
        url = _check_file(path)
        exe = self.ffmpeg or ffmpeg_exe()
        probe = probe_file(exe, path, url, timeout=self.probe_timeout)
        stream = probe.main_video
        assert stream is not None  # probe_file raises when there is none
        if stream.display_size is None:
            raise InputError(path, f"cannot tell the frame size of its {stream.codec} video stream")
        plan = plan_decode(exe, url, probe, stream, sampling, deinterlace=self.deinterlace, threads=self.threads)
        return VideoReader(path, _media_info(path, probe, stream, plan), probe, stream, plan)


def _check_file(path: str) -> str:
    """The URL ffmpeg should open for ``path``, after the checks that give clearer errors than ffmpeg."""
    if "://" in path:  # a URL: let ffmpeg deal with it
        return path
    if not os.path.exists(path):
        raise InputError(path, "file not found")
    if os.path.isdir(path):
        raise InputError(path, "is a directory, not a video file")
    try:
        with open(path, "rb") as handle:
            empty = not handle.read(1)
    except PermissionError:
        raise InputError(path, "permission denied") from None
    except OSError as exc:
        raise InputError(path, f"cannot be read: {exc.strerror or exc}") from None
    if empty:
        raise InputError(path, "empty file (0 bytes)")
    # "file:" so that a name containing ':' is never taken for a protocol such as "concat:".
    return "file:" + os.path.abspath(path)


def _media_info(path: str, probe: Probe, stream: VideoStream, plan: DecodePlan) -> MediaInfo:
    return MediaInfo(
        source_id=path, kind="video", container=probe.container, codec=stream.codec,
        width=stream.display_size[0] if stream.display_size else None,
        height=stream.display_size[1] if stream.display_size else None,
        fps=stream.fps, duration=probe.duration, frame_count=stream.frame_count, pix_fmt=stream.pix_fmt,
        bit_depth=bit_depth(stream.pix_fmt), interlaced=stream.interlaced, warnings=list(plan.warnings),
    )

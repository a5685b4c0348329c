"""Animated GIF, WebP and PNG (APNG): every frame delivered with its own time, like a video's.

Pillow composes each frame as it seeks (disposal, blending, palettes and transparency are its
job); the reader converts the composed frame to RGB and hands it over before seeking on, so memory
holds Pillow's canvas and one or two delivered frames whatever the frame count. Seeking is
sequential by nature: frame n is drawn over frame n-1, so frames that are not delivered are still
decoded, but never converted.

Timing: frame n starts when frames 0..n-1 have been shown (``pts``) and lasts its own delay.
The files give no frame rate and no total duration up front (GIF and WebP only tell a frame's
delay as it is decoded), so ``MediaInfo.fps`` and ``duration`` are None at open and filled in,
``fps`` as the average rate, once iteration has reached the last frame. Frame timecodes are None:
with delays that vary from frame to frame there is no rate to count frames at.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Callable, Generator, Iterator

import numpy as np
from PIL import Image

from qplug.errors import InputError
from qplug.types import Frame, MediaInfo, Sampling

from .convert import bit_depth, orient
from .decode import (OpenedImage, decode_failure, frame_pixels, has_more_frames, load_frame, open_image,
                     quiet_bomb_warnings, read_orientation)
from .limits import too_many_pixels

#: Formats whose extra frames are an animation; in others (MPO, multi-page TIFF) they are other
#: pictures or pages, and only the first is read.
ANIMATED_FORMATS = frozenset({"GIF", "WEBP", "PNG"})

#: Browsers show a frame whose delay is missing, 0 or at most 10 ms for 100 ms, for GIF, APNG and
#: WebP alike: Firefox (``FrameTimeout::FromRawMilliseconds``), Chromium
#: (``DeferredImageDecoder::FrameDurationAtIndex``) and WebKit (``ScalableImageDecoder::
#: frameDurationAtIndex``: "We follow Firefox's behavior and use a duration of 100 ms for any frames
#: that specify a duration of <= 10 ms"). Animations are made to be seen there, so that is their time.
MIN_DELAY_MS = 10
DEFAULT_DELAY_MS = 100

#: Slack, in seconds, for comparing times that went through float sums (the video source's too).
_EPS = 1e-6


def frame_seconds(delay_ms: object) -> float:
    """How long a frame is shown, from Pillow's ``info["duration"]`` (milliseconds, maybe absent)."""
    try:
        ms = float(delay_ms)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        ms = 0.0
    if not math.isfinite(ms) or ms <= MIN_DELAY_MS:
        ms = DEFAULT_DELAY_MS
    return ms / 1000.0


def first_frame(im: Image.Image) -> int:
    """Pillow's number of the first frame that is shown.

    An APNG may carry a default image outside the animation (for viewers that cannot animate);
    Pillow numbers it 0, APNG viewers never show it.
    """
    return 1 if im.format == "PNG" and im.info.get("default_image") else 0


def is_animation(im: Image.Image) -> bool:
    """Whether an opened file is an animation with more than one frame to show."""
    if im.format not in ANIMATED_FORMATS or not has_more_frames(im):
        return False
    return first_frame(im) == 0 or _frame_count(im) not in (None, 1)


def _frame_count(im: Image.Image) -> int | None:
    """Frames to show (None when the count cannot be read; GIF reads the whole file for it)."""
    try:
        return int(im.n_frames) - first_frame(im)
    except Exception:
        return None


# ---------------------------------------------------------------------------------------------
# which frames are delivered


@dataclass(frozen=True)
class Pick:
    """A frame to deliver: shown from ``pts``, standing for the time until ``until``.

    ``until`` may still grow while later frames are seen (every-Nth: the skipped frames in between
    belong to the last delivered one).
    """

    pts: float
    until: float


class Selector:
    """Applies :class:`Sampling` to a timeline of (pts, delay), one frame at a time, as the video source does.

    - every frame: each frame whose pts is in ``[start, end)``, lasting its own delay;
    - ``every=N``: every Nth of those, counting from the first (its index stays the file's frame
      number), lasting until the next one delivered;
    - ``fps=F``: at each time k/F (from 0, within ``[start, end)``), the frame on screen then, the
      rule of ffmpeg's ``fps`` filter with ``round=up`` that the video source uses. A frame on
      screen at several such times is delivered once, at the first, lasting for all of them:
      indices stay unique (``--resume`` and the reports key frames on them).
    """

    def __init__(self, sampling: Sampling) -> None:
        self.fps = sampling.fps
        self.every = sampling.every or 1
        self.start = sampling.start or 0.0
        self.end = sampling.end if sampling.end is not None else math.inf
        self._seen = 0  # frames inside the window so far (every-Nth counts these)

    def past_end(self, pts: float) -> bool:
        """True once a frame starts at or after ``end``: no later frame can be delivered."""
        return pts >= self.end - _EPS

    def offer(self, pts: float, delay: float) -> Pick | float | None:
        """A frame of the timeline, in order: a :class:`Pick` to deliver it, else a float (the
        delivered frame before it now stands until then) or None (it changes nothing)."""
        if self.fps is not None:
            return self._slot(pts, pts + delay)
        if pts < self.start - _EPS:
            return None
        seen, self._seen = self._seen, self._seen + 1
        if seen % self.every == 0:
            return Pick(pts, pts + delay)
        return pts + delay

    def _slot(self, shown: float, hidden: float) -> Pick | None:
        rate = self.fps
        assert rate is not None
        low, high = max(shown, self.start), min(hidden, self.end)
        first = math.ceil((low - _EPS) * rate)  # the first k with k/F at or after low
        if first / rate >= high - _EPS:
            return None  # shown only between two sampling times
        after_last = math.ceil((high - _EPS) * rate)  # one past the last k with k/F before high
        return Pick(first / rate, after_last / rate)


# ---------------------------------------------------------------------------------------------
# the reader


def open_animation(opened: OpenedImage, sampling: Sampling) -> "AnimationReader":
    """A reader for an animated file; takes over ``opened`` (and closes it, even on error).

    The first frame is decoded here, so a file that is broken from the start fails in ``open``
    like a still does; the reader goes on from it when iterated.

    :raises InputError: when the first frame cannot be decoded.
    """
    try:
        path, im = opened.path, opened.im
        first = first_frame(im)
        info = MediaInfo(source_id=path, kind="video", container=im.format, codec=None, width=im.size[0],
                         height=im.size[1], frame_count=_frame_count(im), pix_fmt=im.mode, bit_depth=bit_depth(im))
        try:
            _goto(opened, first)
        except EOFError:
            raise InputError(path, "animation has no frame to show") from None
        orientation = read_orientation(im, info.warnings)
        if orientation in (5, 6, 7, 8):  # the transposing orientations swap width and height
            info.width, info.height = info.height, info.width
    except BaseException:
        opened.close()
        raise
    return AnimationReader(opened, info, sampling, first, orientation)


def _goto(opened: OpenedImage, frame: int) -> None:
    """Seek Pillow to ``frame`` (composing the frames before it) and decode it.

    :raises EOFError: past the last frame (Pillow's "no more images").
    :raises InputError: anything else: damaged data, or a GIF frame that grows the canvas past
        the pixel limit.
    """
    path, im = opened.path, opened.im
    try:
        with quiet_bomb_warnings():
            im.seek(frame)
            width, height = im.size
            if width * height > opened.limit:
                raise InputError(path, too_many_pixels(width * height, opened.limit, im.size))
            load_frame(path, im)
    except (EOFError, InputError):
        raise
    except MemoryError:
        raise InputError(path, f"not enough memory to decode a {im.size[0]}x{im.size[1]} frame") from None
    except Exception as exc:
        raise InputError(path, decode_failure(exc)) from None


class AnimationReader:
    """An opened animation: iterating decodes and yields the sampled frames in order.

    Iterating again reads the file again; ``close()`` (or leaving a ``with`` block) closes it, also
    midway. A frame that cannot be decoded ends the iteration with an :class:`InputError` saying
    how many frames were delivered before it, as the video source does.
    """

    def __init__(self, opened: OpenedImage, info: MediaInfo, sampling: Sampling, first: int,
                 orientation: int | None) -> None:
        self.info = info
        self.sampling = sampling
        self._path = opened.path
        self._opened: OpenedImage | None = opened  # for the next iteration
        self._first = first
        self._orientation = orientation
        self._active: tuple[OpenedImage, Generator[Frame, None, None]] | None = None
        self._closed = False
        self._lock = threading.Lock()

    def __iter__(self) -> Iterator[Frame]:
        if self._closed:
            raise ValueError(f"{self._path}: reader is closed")
        opened, self._opened = self._opened, None
        if opened is None:  # iterated before: from the start of the file again
            opened = open_image(self._path)
        frames = self._frames(opened)
        with self._lock:
            self._active = (opened, frames)
        return frames

    def _frames(self, opened: OpenedImage) -> Generator[Frame, None, None]:
        try:
            yield from self._deliver(opened)
        finally:
            opened.close()

    def _deliver(self, opened: OpenedImage) -> Iterator[Frame]:
        selector = Selector(self.sampling)
        limit = self.sampling.max_frames
        # A picked frame waits, converted, until the next pick (or the end) says how long it stands.
        pending: tuple[int, np.ndarray, Pick] | None = None
        delivered = 0
        total: float | None = None
        end = 0.0
        seen = 0
        for index, pts, delay in self._timeline(opened, lambda: delivered):
            seen, end = index + 1, pts + delay
            if selector.past_end(pts):
                break
            offered = selector.offer(pts, delay)
            if offered is None:
                continue
            if isinstance(offered, float):  # a skipped frame: the waiting one stands for it too
                if pending is not None:
                    pending = (pending[0], pending[1], Pick(pending[2].pts, offered))
                continue
            if pending is not None:
                frame = self._frame(pending[0], pending[1], pending[2].pts, offered.pts - pending[2].pts)
                pending = None  # the frame holds the only reference: its release() frees the pixels
                yield frame
                delivered += 1
                if limit is not None and delivered >= limit:
                    break
            pending = (index, self._pixels(opened), offered)
        else:
            if self._closed:
                return
            total = round(end, 6)
            self._learn_length(seen, total)
        if pending is not None:
            until = min(pending[2].until, total) if total is not None else pending[2].until
            frame = self._frame(pending[0], pending[1], pending[2].pts, until - pending[2].pts)
            pending = None
            yield frame
            delivered += 1
        if delivered == 0:
            start = self.sampling.start or 0.0
            if total is not None and start >= total - _EPS:
                raise InputError(self._path, f"no frames: start {start:g} s is past the end ({total:g} s)")
            window = f"at or after {start:g} s" + (f" and before {self.sampling.end:g} s" if self.sampling.end else "")
            raise InputError(self._path, f"no frame starts {window}")

    def _timeline(self, opened: OpenedImage, delivered: Callable[[], int]) -> Iterator[tuple[int, float, float]]:
        """(index, pts, delay) of every frame, with Pillow on that frame while the caller looks at it.

        Times are summed in milliseconds, exact for GIF's and WebP's whole-millisecond delays, so
        frame 10,000 is not off by accumulated float error.
        """
        elapsed_ms = 0.0
        frame = self._first
        while not self._closed:
            try:
                _goto(opened, frame)
            except EOFError:
                return  # Pillow's "no more images": the animation is over
            except InputError as exc:
                if self._closed:  # close() from another thread pulled the file away
                    return
                raise InputError(self._path, f"decoding stopped after {delivered()} frames: {exc.reason}") from None
            delay_ms = frame_seconds(opened.im.info.get("duration")) * 1000.0
            yield frame - self._first, round(elapsed_ms / 1000.0, 6), delay_ms / 1000.0
            elapsed_ms += delay_ms
            frame += 1

    def _pixels(self, opened: OpenedImage) -> np.ndarray:
        notes: list[str] = []
        rgb = frame_pixels(self._path, opened.im, self.sampling.max_side, notes)
        self.info.warnings.extend(note for note in notes if note not in self.info.warnings)
        return orient(rgb, self._orientation)

    def _frame(self, index: int, rgb: np.ndarray, pts: float, duration: float) -> Frame:
        height, width = int(rgb.shape[0]), int(rgb.shape[1])
        return Frame(source_id=self._path, index=index, width=width, height=height, pts=round(pts, 6),
                     timecode=None, pix_fmt=self.info.pix_fmt, bit_depth=self.info.bit_depth,
                     duration=round(duration, 6), rgb_loader=self._reloader(index, width, height), _rgb=rgb)

    def _learn_length(self, frames: int, total: float) -> None:
        """Once the whole timeline has been read: frame count, duration and average frame rate."""
        self.info.frame_count = frames
        self.info.duration = total
        if total > 0:
            self.info.fps = round(frames / total, 6)

    def _reloader(self, index: int, width: int, height: int) -> Callable[[], np.ndarray]:
        """Pixels again after ``Frame.release()`` (a writer wanting a thumbnail), read from the file.

        Frame n is drawn over the frames before it, so this decodes frames 0..n again.
        """
        path, first, max_side, orientation = self._path, self._first, self.sampling.max_side, self._orientation

        def load() -> np.ndarray:
            with open_image(path) as opened:
                try:
                    _goto(opened, first + index)
                except EOFError:
                    raise InputError(path, "file changed after it was opened") from None
                rgb = orient(frame_pixels(path, opened.im, max_side, []), orientation)
            if rgb.shape[:2] != (height, width):
                raise InputError(path, "file changed after it was opened")
            return rgb

        return load

    def close(self) -> None:
        """Close the file, also in the middle of an iteration. Safe to call more than once."""
        with self._lock:
            self._closed = True
            waiting, self._opened = self._opened, None
            active, self._active = self._active, None
        if waiting is not None:
            waiting.close()
        if active is not None:
            opened, frames = active
            try:
                frames.close()  # a suspended iteration ends here, closing its file
            except ValueError:  # running in another thread: it stops at its next frame (_closed)
                pass
            opened.close()

    def __enter__(self) -> "AnimationReader":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

"""Plain data types that flow through a run: frames in, results and summaries out.

No torch, no ffmpeg, and numpy only for type hints: sources attach pixel loaders, so the core
never decodes anything itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

if TYPE_CHECKING:  # numpy is only needed by the plugins that make and read pixels
    import numpy as np

#: Version of the JSON records qplug writes (JSON Lines, JSON summary). Bump on any breaking change.
SCHEMA_VERSION = "1.0"


@dataclass(frozen=True)
class Planes:
    """A frame's samples as coded, before any conversion: what broadcast legal-range checks read.

    :param y: HxW luma samples.
    :param u: chroma Cb samples (subsampled: H/2 x W/2 for 4:2:0).
    :param v: chroma Cr samples, the same shape as ``u``.
    :param bit_depth: bits per sample of these arrays (8: uint8; 10, 12, 16: uint16).
    :param full_range: True for full-range ("pc", "jpeg") samples, False for limited ("tv") range,
        where black is 16 and white 235 (chroma 16-240) at 8 bits, scaled by 2**(bits-8) above.
    """

    y: "np.ndarray"
    u: "np.ndarray"
    v: "np.ndarray"
    bit_depth: int = 8
    full_range: bool = False


@dataclass
class Frame:
    """One picture to score: a still image or one decoded video frame.

    Pixels are either given (``rgb``) or produced on first use by ``rgb_loader``; a source may also
    provide ``luma_loader`` and ``preview_loader`` when it can hand out luma or a small RGB sample
    more cheaply than via full RGB (a YUV decode).

    :param source_id: the path or identifier of the file the frame came from.
    :param index: 0-based index of the frame in its source, counted in the source's own frames
        (so every-Nth sampling gives indices 0, N, 2N...).
    :param pts: presentation time in seconds from the start of the stream (None for still images).
    :param timecode: SMPTE-style ``HH:MM:SS:FF`` (``;`` before frames when drop-frame) or None.
    :param width: width in pixels of the delivered RGB array.
    :param height: height in pixels of the delivered RGB array.
    :param pix_fmt: the original pixel format (``yuv420p10le``, ``RGBA``, ``I;16``...).
    :param bit_depth: bits per component of the original.
    :param duration: how long the frame is shown, in seconds, when known (used to close events).
    """

    source_id: str
    index: int
    width: int
    height: int
    pts: float | None = None
    timecode: str | None = None
    pix_fmt: str | None = None
    bit_depth: int | None = None
    duration: float | None = None
    rgb_loader: Callable[[], "np.ndarray"] | None = field(default=None, repr=False)
    luma_loader: Callable[[], "np.ndarray"] | None = field(default=None, repr=False)
    #: ``preview_loader(max_side)``: RGB of the pixels on a regular grid (see :meth:`rgb_preview`)
    preview_loader: Callable[[int], "np.ndarray"] | None = field(default=None, repr=False)
    #: ``crop_loader(left, top, width, height)``: RGB of one region (see :meth:`rgb_crop`)
    crop_loader: Callable[[int, int, int, int], "np.ndarray"] | None = field(default=None, repr=False)
    #: ``planes_loader()``: the coded Y, U, V samples (see :attr:`planes`); sources of YUV video give it
    planes_loader: Callable[[], Planes] | None = field(default=None, repr=False)
    #: with ``--reference``: the reference file this frame is compared with (full-reference scorers)
    reference_path: str | None = field(default=None, repr=False)
    #: with ``--reference``: the reference's frame on screen at this frame's time, decoded when a
    #: chosen scorer's ``inputs`` include ``"reference"``; None past the reference's end
    reference: "Frame | None" = field(default=None, repr=False)
    _rgb: "np.ndarray | None" = field(default=None, repr=False)
    #: scratch space shared by scorers for derived data (histograms, downscales), freed with the frame
    cache: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_rgb(cls, rgb: "np.ndarray", source_id: str = "<array>", index: int = 0, **kw: Any) -> "Frame":
        """Wrap an HxWx3 uint8 RGB array already in memory."""
        if getattr(rgb, "ndim", 0) != 3 or rgb.shape[2] != 3 or str(rgb.dtype) != "uint8":
            raise ValueError("Frame.from_rgb needs an HxWx3 uint8 array")
        height, width = int(rgb.shape[0]), int(rgb.shape[1])
        kw.setdefault("pix_fmt", "rgb24")
        kw.setdefault("bit_depth", 8)
        return cls(source_id=source_id, index=index, width=width, height=height, _rgb=rgb, **kw)

    @property
    def rgb(self) -> "np.ndarray":
        """HxWx3 uint8 RGB pixels, loaded on first access and kept while the frame lives."""
        if self._rgb is None:
            if self.rgb_loader is None:
                raise ValueError(f"{self.source_id}: frame {self.index} has no pixels")
            self._rgb = self.rgb_loader()
        return self._rgb

    @property
    def luma(self) -> "np.ndarray":
        """HxW uint8 full-range luma (Y').

        From the source when it has one (a video's own Y' plane, in its own matrix, as QC tools
        such as ffmpeg's signalstats read it), else BT.601 Y' computed from RGB.
        """
        cached = self.cache.get("luma")
        if cached is None:
            if self.luma_loader is not None:
                cached = self.luma_loader()
            else:
                import numpy as np  # local: the core stays importable without pixels

                # BT.601 weights in 1/256ths; integer maths is 5x faster than float here.
                rgb = self.rgb.astype(np.uint16)
                cached = ((rgb[..., 0] * 77 + rgb[..., 1] * 150 + rgb[..., 2] * 29 + 128) >> 8).astype(np.uint8)
            self.cache["luma"] = cached
        return cached

    def rgb_crop(self, left: int, top: int, width: int, height: int) -> "np.ndarray":
        """RGB of a region, clipped to the frame. Cheap when the source has a ``crop_loader``.

        A model that looks at a native-resolution window of each frame needs only that window: a
        video source converts 224x224 pixels to RGB instead of the whole 1080p frame.
        """
        left, top = max(0, min(left, self.width)), max(0, min(top, self.height))
        width, height = max(0, min(width, self.width - left)), max(0, min(height, self.height - top))
        if self._rgb is None and self.crop_loader is not None:
            return self.crop_loader(left, top, width, height)
        return self.rgb[top:top + height, left:left + width]

    def rgb_preview(self, max_side: int) -> "np.ndarray":
        """RGB of the pixels on a regular grid, at most ``max_side`` on the longer side.

        Whole pixels are picked (every k-th row and column), never averaged, so colour statistics
        such as colourfulness keep their spread. Cheap when the source has a ``preview_loader``.
        """
        key = f"preview:{max_side}"
        cached = self.cache.get(key)
        if cached is None:
            if self._rgb is None and self.preview_loader is not None:
                cached = self.preview_loader(max_side)
            else:
                stride = max(1, -(-max(self.width, self.height) // max_side))
                cached = self.rgb[::stride, ::stride]
            self.cache[key] = cached
        return cached

    @property
    def planes(self) -> Planes | None:
        """The coded YUV samples and their range, or None when the source has none (a still image,
        RGB video). Checks of legal broadcast range need these, not the RGB or full-range luma."""
        if self.planes_loader is None:
            return None
        cached = self.cache.get("planes")
        if cached is None:
            cached = self.cache["planes"] = self.planes_loader()
        return cached

    def release(self) -> None:
        """Drop pixels and derived data so a long run keeps bounded memory."""
        self._rgb = None
        self.cache.clear()


@dataclass(frozen=True)
class Sampling:
    """Which frames of a video to deliver. Sources do the sampling inside their decoder.

    :param fps: deliver this many frames per second of media time (None: every frame).
    :param every: deliver every Nth decoded frame (None or 1: every frame).
    :param start: first second to deliver (None: from the start).
    :param end: last second, exclusive (None: to the end).
    :param max_frames: stop after this many frames per source.
    :param max_side: downscale so the longer side is at most this many pixels (None: native size).
    """

    fps: float | None = None
    every: int | None = None
    start: float | None = None
    end: float | None = None
    max_frames: int | None = None
    max_side: int | None = None

    def __post_init__(self) -> None:
        if self.fps is not None and self.every is not None:
            raise ValueError("choose either fps or every, not both")
        if self.fps is not None and not self.fps > 0:
            raise ValueError("fps must be > 0")
        if self.every is not None and self.every < 1:
            raise ValueError("every must be >= 1")
        if self.start is not None and self.start < 0:
            raise ValueError("start must be >= 0")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError("end must be after start")
        if self.max_frames is not None and self.max_frames < 1:
            raise ValueError("max_frames must be >= 1")
        if self.max_side is not None and self.max_side < 16:
            raise ValueError("max_side must be >= 16")


@dataclass
class MediaInfo:
    """What a source found out about one input before delivering frames."""

    source_id: str
    kind: str  # "image" or "video"
    container: str | None = None
    codec: str | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    duration: float | None = None
    frame_count: int | None = None
    pix_fmt: str | None = None
    bit_depth: int | None = None
    interlaced: bool | None = None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class Score:
    """One scorer's verdict on one frame (or, from ``score_source()``, on a whole source).

    :param value: the score, inside the scorer's documented range.
    :param levels: optional probabilities over named levels (e.g. excellent..bad), summing to 1.
    :param extra: small JSON-serialisable details (sub-measures, normalised value).
    """

    value: float
    levels: Mapping[str, float] | None = None
    extra: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {"value": self.value}
        if self.levels:
            record["levels"] = {k: float(v) for k, v in self.levels.items()}
        if self.extra:
            record["extra"] = dict(self.extra)
        return record


@dataclass(frozen=True)
class Answer:
    """An asker's answer about one frame.

    :param text: the answer as text (the chosen option, or free text).
    :param choice: the chosen option when choices were given.
    :param probabilities: the model's probability for each option, summing to 1.
    """

    text: str
    choice: str | None = None
    probabilities: Mapping[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {"text": self.text}
        if self.choice is not None:
            record["choice"] = self.choice
        if self.probabilities is not None:
            record["probabilities"] = dict(self.probabilities)
        return record


@dataclass(frozen=True)
class ErrorRecord:
    """Something that could not be read or scored. ``index`` is None when the whole source failed."""

    source_id: str
    reason: str
    index: int | None = None
    stage: str = "read"  # "read", "score:<name>", "describe:<name>", "write:<name>"

    def to_dict(self) -> dict[str, Any]:
        return {"type": "error", "schema": SCHEMA_VERSION, "source": self.source_id, "index": self.index,
                "stage": self.stage, "reason": self.reason}


@dataclass
class FrameResult:
    """Everything qplug learned about one frame."""

    source_id: str
    index: int
    pts: float | None
    timecode: str | None
    width: int
    height: int
    scores: dict[str, float | None] = field(default_factory=dict)
    levels: dict[str, dict[str, float]] = field(default_factory=dict)
    extra: dict[str, dict[str, Any]] = field(default_factory=dict)
    descriptions: dict[str, str] = field(default_factory=dict)
    #: asker name -> {"question", "text", "choice"?, "probabilities"?}
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: list[ErrorRecord] = field(default_factory=list)
    #: the frame itself, for writers that want pixels (thumbnails); never serialised
    frame: Frame | None = field(default=None, repr=False, compare=False)

    @classmethod
    def for_frame(cls, frame: Frame) -> "FrameResult":
        return cls(source_id=frame.source_id, index=frame.index, pts=frame.pts, timecode=frame.timecode,
                   width=frame.width, height=frame.height, frame=frame)

    def to_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "type": "frame", "schema": SCHEMA_VERSION, "source": self.source_id, "index": self.index,
            "pts": self.pts, "timecode": self.timecode, "width": self.width, "height": self.height,
            "scores": self.scores,
        }
        if self.levels:
            record["levels"] = self.levels
        if self.extra:
            record["extra"] = self.extra
        if self.descriptions:
            record["descriptions"] = self.descriptions
        if self.answers:
            record["answers"] = self.answers
        if self.errors:
            record["errors"] = [{"stage": e.stage, "reason": e.reason} for e in self.errors]
        return record


@dataclass(frozen=True)
class Event:
    """A timecoded segment where a score stayed on the bad side of a threshold.

    Times are presentation times in seconds; ``end`` is when the last bad frame stops being shown.
    """

    scorer: str
    start: float
    end: float
    peak: float
    peak_pts: float
    threshold: float
    frames: int
    start_timecode: str | None = None
    end_timecode: str | None = None

    @property
    def duration(self) -> float:
        return self.end - self.start

    def to_dict(self) -> dict[str, Any]:
        return {"scorer": self.scorer, "start": round(self.start, 6), "end": round(self.end, 6),
                "duration": round(self.duration, 6), "peak": self.peak, "peak_pts": self.peak_pts,
                "threshold": self.threshold, "frames": self.frames,
                "start_timecode": self.start_timecode, "end_timecode": self.end_timecode}


@dataclass
class SourceSummary:
    """Pooled view of one source once all its frames are scored."""

    source_id: str
    media: MediaInfo | None
    frames: int
    pooled: dict[str, dict[str, float | None]]  # scorer -> pooling method -> value
    events: list[Event] = field(default_factory=list)
    errors: list[ErrorRecord] = field(default_factory=list)
    gate_failures: list[str] = field(default_factory=list)
    wall_seconds: float | None = None
    #: True when the summary was carried over from an earlier run's report by ``--resume``
    resumed: bool = False
    #: frames of this source on which a scorer, describer or asker failed (their records hold the reasons)
    frame_errors: int = 0
    #: whole-source scores (a scorer's ``score_source()``), by scorer: ``{"value", "levels"?, "extra"?}``;
    #: the value is also ``pooled[scorer]["source"]``, where gates read it
    source_scores: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not any(e.index is None for e in self.errors)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "source", "schema": SCHEMA_VERSION, "source": self.source_id,
            "media": self.media.to_dict() if self.media else None, "frames": self.frames,
            "pooled": self.pooled, "events": [e.to_dict() for e in self.events],
            "errors": [e.to_dict() for e in self.errors], "frame_errors": self.frame_errors,
            "source_scores": self.source_scores,
            "gate_failures": self.gate_failures,
            "wall_seconds": self.wall_seconds,
        }

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> "SourceSummary":
        """Rebuild a summary from its JSON record (used by ``--resume``)."""
        media = record.get("media")
        events = [Event(scorer=e["scorer"], start=e["start"], end=e["end"], peak=e["peak"],
                        peak_pts=e["peak_pts"], threshold=e["threshold"], frames=e["frames"],
                        start_timecode=e.get("start_timecode"), end_timecode=e.get("end_timecode"))
                  for e in record.get("events") or []]
        errors = [ErrorRecord(source_id=e["source"], reason=e["reason"], index=e.get("index"),
                              stage=e.get("stage", "read")) for e in record.get("errors") or []]
        return cls(source_id=record["source"], media=MediaInfo(**media) if isinstance(media, dict) else None,
                   frames=int(record.get("frames") or 0), pooled=dict(record.get("pooled") or {}),
                   events=events, errors=errors, gate_failures=list(record.get("gate_failures") or []),
                   wall_seconds=record.get("wall_seconds"), resumed=True,
                   frame_errors=int(record.get("frame_errors") or 0),
                   source_scores=dict(record.get("source_scores") or {}))


#: How a run can end, and the exit code each ending gives. The order of the first four is precedence:
#: a run that was interrupted is reported as interrupted even if an input also failed.
OUTCOME_EXIT_CODES = {"interrupted": 130, "terminated": 143, "failed": 2, "errors": 2, "gate_failed": 1, "passed": 0}


@dataclass
class RunSummary:
    """The whole run: what was scored, what failed, whether the gates passed, and how it ended.

    :param stopped: set by whoever drives the run when it ended early: ``"interrupted"`` (SIGINT),
        ``"terminated"`` (SIGTERM) or ``"failed"`` (the setup or a report could not be completed).
    :param failures: run-level problems that belong to no input (a report that could not be
        written, a model that could not be loaded), one sentence each.
    :param max_frame_errors: how many per-frame errors (a scorer, describer or asker that failed on
        one frame) the run tolerates before its outcome is ``errors``. The default, 0, makes any
        unscored frame an error of the run: a QC verdict on frames that were not all scored is
        not a pass. Whole-source and read errors always count.
    """

    sources: list[SourceSummary] = field(default_factory=list)
    scorers: Sequence[str] = ()
    describers: Sequence[str] = ()
    askers: Sequence[str] = ()
    frames: int = 0
    wall_seconds: float = 0.0
    stopped: str | None = None
    failures: list[str] = field(default_factory=list)
    max_frame_errors: int = 0

    @property
    def errors(self) -> list[ErrorRecord]:
        return [e for s in self.sources for e in s.errors]

    @property
    def frame_errors(self) -> int:
        """Frames on which a scorer, describer or asker failed, over every source."""
        return sum(s.frame_errors for s in self.sources)

    @property
    def gate_failed(self) -> bool:
        return any(s.gate_failures for s in self.sources)

    @property
    def outcome(self) -> str:
        """``interrupted``, ``terminated``, ``failed``, ``errors``, ``gate_failed`` or ``passed``."""
        if self.stopped is not None:
            return self.stopped
        if self.failures:
            return "failed"
        if any(e.index is None or e.stage == "read" for e in self.errors):
            return "errors"
        if self.frame_errors > self.max_frame_errors:
            return "errors"
        return "gate_failed" if self.gate_failed else "passed"

    @property
    def exit_code(self) -> int:
        """0 passed, 1 a quality gate failed, 2 an input, a frame or the run failed, 130/143 interrupted/terminated."""
        return OUTCOME_EXIT_CODES[self.outcome]

    def to_dict(self) -> dict[str, Any]:
        record = {"type": "run", "schema": SCHEMA_VERSION, "scorers": list(self.scorers),
                  "describers": list(self.describers), "askers": list(self.askers), "frames": self.frames,
                  "sources": len(self.sources), "errors": len(self.errors), "frame_errors": self.frame_errors,
                  "gate_failed": self.gate_failed, "outcome": self.outcome, "exit_code": self.exit_code,
                  "wall_seconds": round(self.wall_seconds, 3)}
        if self.failures:
            record["failures"] = list(self.failures)
        return record

"""Building the ffmpeg command that decodes, samples and resizes a video (no process is run here).

Everything that drops or shrinks frames happens inside ffmpeg's filter graph, so Python only ever
sees the frames it will score: seeking (input ``-ss``/``-t``), every-Nth (``select``), a fixed rate
(``fps``), deinterlacing (``bwdif``) and resizing (``scale``). Frames come out as 8-bit 4:2:0, half
the bytes of RGB: untouched when the stream already is 8-bit 4:2:0 BT.601/BT.709/BT.2020, else
converted to limited range in the stream's own matrix (BT.601 for other matrices and for RGB); the
plan says which (see :mod:`qplug_video.colour`). The last filter,
``showinfo``, logs each delivered frame's timestamp on stderr. When frames are sampled, a first
``showinfo`` right after decoding logs every decoded frame too: frames missing from the stream are
found there (:class:`qplug_video.damage.Timeline`), where sampling cannot hide them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import ffmpeg

from qplug.types import Sampling

from .probe import Probe, VideoStream, bit_depth

OUTPUT_PIX_FMT = "yuv420p"
#: Matrices that already are BT.601 for our purposes; ffmpeg itself treats "unknown" as BT.601.
_BT601_SPACES = {None, "unknown", "unspecified", "bt470bg", "smpte170m", "fcc"}
#: 8-bit 4:2:0 layouts delivered as they are decoded (yuvj420p is the JPEG-range spelling).
_PASSTHROUGH_PIX_FMTS = {"yuv420p": False, "yuvj420p": True}
#: Instance names of the two showinfo filters, as ffmpeg's log shows them ("[showinfo@qplug_decoded @ 0x...]").
DECODED_LOG = "qplug_decoded"
DELIVERED_LOG = "qplug_delivered"


#: Transfer functions of HDR video (ffmpeg's names): the qc measures read code values, which mean
#: other light levels under these curves than under SDR's.
_HDR_TRANSFERS = {"smpte2084": "PQ, SMPTE ST 2084", "arib-std-b67": "HLG, ARIB STD-B67"}
#: Matrices read as they are (ffmpeg's ``colorspace`` name -> qplug's and swscale's): BT.2020's
#: non-constant-luminance matrix is an ordinary Y'CbCr matrix with other weights.
_READ_SPACES = {"bt709": "bt709", "bt2020nc": "bt2020"}


def source_matrix(color_space: str | None) -> str | None:
    """A stream's matrix as the decode plan reads it: ``"bt601"``, ``"bt709"``, ``"bt2020"``, or None
    (SMPTE 240M, BT.2020 constant luminance, YCgCo...)."""
    return "bt601" if color_space in _BT601_SPACES else _READ_SPACES.get(color_space or "")


@dataclass(frozen=True)
class DecodePlan:
    """An ffmpeg argument list and what its output will look like."""

    args: list[str]
    width: int  # of the delivered frames
    height: int
    every: int  # keep every Nth decoded frame (1: all)
    fps: float | None  # resampled rate, when sampling by rate
    start: float | None  # seconds skipped by seeking (ffmpeg's frame count restarts there)
    end: float | None  # frames at or after this time are not delivered
    max_frames: int | None
    warnings: list[str] = field(default_factory=list)
    matrix: str = "bt601"  # of the delivered samples: "bt601" or "bt709"
    full_range: bool = False
    #: every decoded frame is logged by a showinfo of its own (frames are sampled)
    logs_decoded: bool = False
    #: timestamp of the stream's first frame slot, on the timeline of delivered pts (frame index 0)
    origin: float = 0.0
    #: seconds subtracted from the file's timestamps to make delivered pts (the container's start)
    offset: float = 0.0

    @property
    def frame_bytes(self) -> int:
        return self.width * self.height * 3 // 2


def output_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """Delivered size: at most ``max_side`` on the longer side, aspect ratio kept, both even."""
    if max_side is not None and max(width, height) > max_side:
        scale = max_side / max(width, height)
        return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)
    # yuv420p needs even sizes; dropping the odd last column/row beats resampling the whole picture.
    return max(2, width - width % 2), max(2, height - height % 2)


def _colour_filters(stream: VideoStream, size: tuple[int, int], source_size: tuple[int, int],
                    node: Any) -> tuple[Any, str, str, bool]:
    """Bring frames to ``size`` in 8-bit 4:2:0 as cheaply as the input allows.

    Returns the node, the delivered pix_fmt, its matrix and whether it is full range. Already
    8-bit 4:2:0 BT.601/BT.709/BT.2020 video passes through untouched (converting the matrix in ffmpeg cost
    a third of the decode time; RGB is made later, only for the scorers that read it).
    """
    width, height = size
    resize = (source_size[0] - source_size[0] % 2, source_size[1] - source_size[1] % 2) != size
    if not resize and size != source_size:
        node = node.filter("crop", width, height, 0, 0)
    full_range = _PASSTHROUGH_PIX_FMTS.get(stream.pix_fmt or "")
    matrix = source_matrix(stream.color_space)
    if not resize and full_range is not None and stream.color_range in (None, "tv", "pc"):
        full_range = full_range or stream.color_range == "pc"
        if matrix is not None:
            pix_fmt = stream.pix_fmt or OUTPUT_PIX_FMT
            # A no-op while the size holds; keeps the byte count right if the stream changes size mid-way.
            return node.filter("scale", width, height).filter("format", pix_fmt), pix_fmt, matrix, full_range
    # Everything else (resizing, 10-bit, RGB, 4:2:2, other matrices...) goes through swscale. Y'CbCr
    # in a matrix we read keeps it: swscale then only rescales the levels and keeps super-whites and
    # sub-blacks, where a change of matrix goes through RGB and clips them (measured), so a 10-bit
    # BT.709 master keeps its legal-range checks. Other matrices (SMPTE 240M...) and RGB become BT.601.
    target = matrix or "bt601"
    options: dict[str, Any] = {"out_color_matrix": target, "out_range": "tv", "flags": "area" if resize else "bicubic"}
    if matrix is not None:
        options["in_color_matrix"] = matrix  # what the stream says, not a guess from each frame
    node = node.filter("scale", width, height, **options).filter("format", OUTPUT_PIX_FMT)
    return node, OUTPUT_PIX_FMT, target, False


def plan_decode(exe: str, url: str, probe: Probe, stream: VideoStream, sampling: Sampling,
                deinterlace: bool = True, threads: int | None = None) -> DecodePlan:
    """The ffmpeg command delivering ``sampling``'s frames of ``stream`` as raw yuv420p on stdout.

    :param url: what ffmpeg opens.
    :param deinterlace: run ``bwdif`` on interlaced frames.
    :param threads: decoder threads (None: ffmpeg's default, one per core).
    """
    source_size = stream.display_size
    if source_size is None:
        raise ValueError("the stream's frame size is unknown")
    width, height = output_size(*source_size, sampling.max_side)
    time_offset = probe.start if probe.start is not None else (stream.start or 0.0)
    warnings: list[str] = []

    # -copyts: otherwise ffmpeg restarts output timestamps at 0 after a seek, losing the position.
    in_opts: dict[str, Any] = {"copyts": None}
    if sampling.start:
        in_opts["ss"] = repr(float(sampling.start))
    if sampling.end is not None:
        in_opts["t"] = repr(float(sampling.end - (sampling.start or 0.0)))
    if threads is not None:
        in_opts["threads"] = threads
    node: Any = ffmpeg.input(url, **in_opts)[str(stream.index)]
    if time_offset:
        # Move the container's start to 0 before any filter: the fps grid and showinfo's pts_time
        # are then seconds from the start of the stream, as Frame.pts wants.
        node = node.filter("setpts", f"PTS-{time_offset!r}/TB")
    # The video may start after the container (audio first): its frame 0 is at its own start.
    origin = max(0.0, stream.start - time_offset) if stream.start is not None else 0.0
    every = sampling.every or 1
    logs_decoded = sampling.fps is not None or every > 1
    if logs_decoded:
        node = node.filter(f"showinfo@{DECODED_LOG}", checksum=0)

    if stream.interlaced:
        order = stream.field_order
        if deinterlace:
            # Before sampling: bwdif looks at the neighbouring frames. send_frame keeps one frame out
            # per frame in, so timestamps and indices still match the source.
            node = node.filter("bwdif", mode="send_frame", parity="auto", deint="interlaced")
            warnings.append(f"interlaced video ({order}): deinterlaced with bwdif")
        else:
            warnings.append(f"interlaced video ({order}): not deinterlaced, expect combing")

    if sampling.fps is not None:
        # Output times are multiples of 1/fps from the start of the stream. The filter keeps the
        # last frame that falls in each slot; round=up makes that the frame on screen at the
        # slot's time ("near" picks one up to half a slot later). Its start_time option is left
        # alone: combined with round=up it shifts the picked frames.
        node = node.filter("fps", fps=repr(float(sampling.fps)), round="up")
    elif every > 1:
        node = node.filter("select", f"not(mod(n,{every}))")

    depth = bit_depth(stream.pix_fmt)
    if depth is not None and depth > 8:
        warnings.append(f"{depth}-bit video ({stream.pix_fmt}) converted to 8 bits")
    hdr = _HDR_TRANSFERS.get(stream.color_transfer or "")
    if hdr:
        warnings.append(f"HDR video ({hdr}): its code values are measured as they are, not tone-mapped, so "
                        "exposure and contrast figures are not on an SDR picture's scale")
    if (width, height) == (source_size[0] - source_size[0] % 2, source_size[1] - source_size[1] % 2) != source_size:
        warnings.append(f"odd frame size {source_size[0]}x{source_size[1]} cropped to {width}x{height}")
    node, pix_fmt, matrix, full_range = _colour_filters(stream, (width, height), source_size, node)
    node = node.filter(f"showinfo@{DELIVERED_LOG}", checksum=0)

    out_opts: dict[str, Any] = {"format": "rawvideo", "pix_fmt": pix_fmt, "fps_mode": "passthrough"}
    if sampling.max_frames is not None:
        out_opts["frames:v"] = sampling.max_frames
    args = node.output("pipe:", **out_opts).compile(cmd=exe)
    # level+info tags each log line with its severity, which tells decode errors from chatter.
    args[1:1] = ["-nostdin", "-hide_banner", "-nostats", "-loglevel", "level+info"]
    return DecodePlan(args=list(args), width=width, height=height, every=every,
                      fps=sampling.fps, start=sampling.start or None, end=sampling.end,
                      max_frames=sampling.max_frames, warnings=warnings, matrix=matrix, full_range=full_range,
                      logs_decoded=logs_decoded, origin=round(origin, 6), offset=time_offset)

"""Probing a video file: ffprobe's JSON when there is an ffprobe, else ``ffmpeg -i``'s stderr.

The ffmpeg that ``imageio-ffmpeg`` ships has no ffprobe, so the stream description ffmpeg prints
before it complains about the missing output is the one probe available everywhere. Its format has
been stable for years; every field is optional here and simply stays None when a build prints
something unexpected. That text is meant for people and mixes in text from the file, so ffmpeg is
never given the file's real name (see :mod:`qplug_video.safe_input`) and the parser reads each
field only at the place ffmpeg prints it.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from qplug.errors import InputError

from qplug.timecode import exact_rate

from .safe_input import MediaInput

#: ffmpeg's names for field order (``ffmpeg -i``) and ffprobe's short ones.
_INTERLACED_ORDERS = {"top first", "bottom first", "top coded first (swapped)", "bottom coded first (swapped)",
                      "tt", "bb", "tb", "bt"}
_RANGES = {"tv", "pc", "mpeg", "jpeg"}

_INPUT = re.compile(r"^Input #0, (.+?), from '")
_DURATION = re.compile(r"^Duration: (?:(\d+):(\d+):(\d+(?:\.\d+)?)|N/A)(?:, start: (-?\d+(?:\.\d+)?))?")
_STREAM = re.compile(r"^Stream #0:(\d+)(?:\[[^\]]*\])?(?:\([^)]*\))?: (\w+): (.*)$")
_SIZE = re.compile(r"^(\d+)x(\d+)")
_RATE = re.compile(r"^(\d+(?:\.\d+)?)(k?) (fps|tbr|tbn)$")
_PIX_FMT = re.compile(r"^([a-z][a-z0-9_]*)(?:\((.*)\))?$")
_START = re.compile(r"^start (-?\d+(?:\.\d+)?)")
_ROTATION = re.compile(r"rotation of (-?\d+(?:\.\d+)?) degrees", re.IGNORECASE)
_FRAMES_TAG = re.compile(r"^NUMBER_OF_FRAMES(?:-\w+)?\s*:\s*(\d+)\s*$")
_CONTEXT = re.compile(r"^\[[^\]]* @ [^\]]*\]\s*")


@dataclass
class VideoStream:
    """The video stream qplug decodes, as ``ffmpeg -i`` describes it."""

    index: int
    codec: str
    pix_fmt: str | None = None
    color_range: str | None = None  # "tv" (limited) or "pc" (full)
    color_space: str | None = None  # the YCbCr matrix: bt709, bt470bg, smpte170m...
    color_transfer: str | None = None  # the transfer function: bt709, smpte2084 (PQ), arib-std-b67 (HLG)...
    field_order: str | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None  # average rate ("fps"), else the base rate ("tbr")
    start: float | None = None
    rotation: float = 0.0
    frame_count: int | None = None
    attached_pic: bool = False
    time_base: float | None = None  # seconds per timestamp tick ("90k tbn": 1/90000)

    @property
    def interlaced(self) -> bool | None:
        if self.field_order is None:
            return None
        return self.field_order in _INTERLACED_ORDERS

    @property
    def display_size(self) -> tuple[int, int] | None:
        """Width and height after ffmpeg's automatic rotation (what the decoder hands out)."""
        if self.width is None or self.height is None:
            return None
        if round(abs(self.rotation)) % 180 == 90:
            return self.height, self.width
        return self.width, self.height


@dataclass
class Probe:
    """Everything ``ffmpeg -i`` told about a file."""

    container: str | None = None
    duration: float | None = None
    start: float | None = None
    video: list[VideoStream] = field(default_factory=list)
    other_streams: list[str] = field(default_factory=list)  # "audio aac", "subtitle mov_text"...

    @property
    def main_video(self) -> VideoStream | None:
        """The stream to decode: the first video stream that is not cover art."""
        return next((s for s in self.video if not s.attached_pic), None)


def bit_depth(pix_fmt: str | None) -> int | None:
    """Bits per component of an ffmpeg pixel format (``yuv420p10le`` -> 10, ``rgb48le`` -> 16)."""
    if not pix_fmt:
        return None
    name = re.sub(r"(le|be)$", "", pix_fmt)
    match = re.search(r"f(16|32)$", name)  # grayf32, gbrpf32: float samples
    if match:
        return int(match.group(1))
    match = re.search(r"(\d+)$", name)
    if match and not name.startswith("nv"):  # nv12, nv16: 8-bit layouts named by chroma
        digits = int(match.group(1))
        if digits in (48, 64):  # rgb48, rgba64: packed 16-bit components
            return 16
        if 9 <= digits <= 16:  # yuv420p10, p010, gray12, yuv444p16...
            return digits
    return 8


def _split_top_level(text: str) -> list[str]:
    """Split on ", " outside parentheses: ``h264 (High) (avc1 / 0x1), yuv420p(tv, bt709)`` -> 2 parts."""
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for char in text:
        if char in "([":
            depth += 1
        elif char in ")]":
            depth = max(0, depth - 1)
        if char == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    if current:
        parts.append("".join(current).strip())
    return [p for p in parts if p]


def _rate(value: str, kilo: str) -> float:
    return float(value) * (1000 if kilo else 1)


def _parse_video(index: int, description: str) -> VideoStream:
    tokens = _split_top_level(description)
    stream = VideoStream(index=index, codec=tokens[0].split()[0] if tokens else "unknown",
                         attached_pic="(attached pic)" in description)
    tbr: float | None = None
    for token in tokens[1:]:
        size = _SIZE.match(token)
        rate = _RATE.match(token)
        start = _START.match(token)
        pix = _PIX_FMT.match(token)
        if size and stream.width is None:
            stream.width, stream.height = int(size.group(1)), int(size.group(2))
        elif rate:
            if rate.group(3) == "fps":
                stream.fps = _rate(rate.group(1), rate.group(2))
            elif rate.group(3) == "tbn":
                ticks = _rate(rate.group(1), rate.group(2))
                stream.time_base = 1.0 / ticks if ticks > 0 else None
            else:
                tbr = _rate(rate.group(1), rate.group(2))
        elif start:
            stream.start = float(start.group(1))
        elif pix and stream.pix_fmt is None and stream.width is None:
            stream.pix_fmt = pix.group(1)
            for item in (pix.group(2) or "").split(", "):
                item = item.strip()
                if not item:
                    continue
                if item in _RANGES:
                    stream.color_range = "tv" if item in ("tv", "mpeg") else "pc"
                elif item == "progressive" or item in _INTERLACED_ORDERS:
                    stream.field_order = item
                else:  # "space/primaries/trc", or one name when the three are the same ("bt709")
                    parts = item.split("/")
                    stream.color_space = parts[0]
                    stream.color_transfer = parts[-1] if parts[-1] != "unknown" else None
    if stream.fps is None:
        stream.fps = tbr
    if stream.fps is not None:
        stream.fps = exact_rate(stream.fps)
    return stream


class ProbeTampered(ValueError):
    """``ffmpeg -i``'s text is not laid out as ffmpeg lays it out: something in the file faked lines."""


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def parse_probe(stderr: str) -> Probe | None:
    """Parse ``ffmpeg -i`` stderr; None when ffmpeg could not open the input at all.

    Only the first ``Input #0`` block is read (up to the next ``Input #``, ``Output #`` or ``Stream
    mapping:``), and each kind of line only where ffmpeg puts it:
    stream lines at two spaces (four under a ``Program``), container fields at two, a stream's
    side data and metadata entries at six under their own heading. Text from the file (tag values,
    continued on lines that start with spaces and a colon) then cannot pass for a stream line. A tag
    *name* with a newline still could, so streams must also come numbered 0, 1, 2... exactly once:
    anything else raises :class:`ProbeTampered`.
    """
    lines = stderr.splitlines()
    start = next((i for i, line in enumerate(lines) if _INPUT.match(line)), None)
    if start is None:
        return None
    head = _INPUT.match(lines[start])
    assert head is not None
    probe = Probe(container=head.group(1))
    current: VideoStream | None = None  # the stream whose side data / metadata lines follow
    section: str | None = None  # the heading (at four spaces) of the stream's lines that follow
    in_program = False
    seen_duration = False
    expected = 0
    for line in lines[start + 1:]:
        if line.startswith(("Input #", "Output #", "Stream mapping:")):
            break  # the first input's block is over
        indent, text = _indent(line), line.strip()
        if not indent:
            continue  # ffmpeg's own messages ("At least one output file..."), or text from the file
        stream = _STREAM.match(text) if indent == 2 or (indent == 4 and in_program) else None
        if stream:
            number = int(stream.group(1))
            if number != expected:
                raise ProbeTampered(f"stream #0:{number} listed where #0:{expected} belongs")
            expected += 1
            section = None
            kind, description = stream.group(2).lower(), stream.group(3)
            if kind == "video":
                current = _parse_video(number, description)
                probe.video.append(current)
            else:
                current = None
                probe.other_streams.append(f"{kind} {description.split(',')[0].split()[0]}")
            continue
        if indent == 2:
            current, section = None, None
            in_program = text.startswith("Program ")
            duration = _DURATION.match(text)
            if duration and not seen_duration and not probe.video and not probe.other_streams:
                seen_duration = True
                if duration.group(1) is not None:
                    probe.duration = int(duration.group(1)) * 3600 + int(duration.group(2)) * 60 + float(duration.group(3))
                if duration.group(4) is not None:
                    probe.start = float(duration.group(4))
        elif indent == 4:
            section = text if current is not None and text in ("Metadata:", "Side data:") else None
        elif indent == 6 and current is not None:
            if section == "Side data:":
                rotation = _ROTATION.search(text)
                if rotation:
                    current.rotation = float(rotation.group(1))
            elif section == "Metadata:":
                frames = _FRAMES_TAG.match(text)
                if frames:
                    current.frame_count = int(frames.group(1))
    return probe


def _fraction(text: Any) -> float | None:
    """``"30000/1001"`` -> 29.97...; None for ``"0/0"`` and anything unreadable."""
    try:
        value = float(Fraction(str(text)))
    except (ValueError, ZeroDivisionError):
        return None
    return value if value > 0 else None


def _json_float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _json_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _json_video(item: dict[str, Any]) -> VideoStream:
    known = lambda key: None if item.get(key) in (None, "", "unknown") else str(item[key])  # noqa: E731
    color_range = known("color_range")
    stream = VideoStream(
        index=int(item["index"]), codec=known("codec_name") or "unknown", pix_fmt=known("pix_fmt"),
        color_range=None if color_range is None else "tv" if color_range in ("tv", "mpeg") else "pc",
        color_space=known("color_space"), color_transfer=known("color_transfer"), field_order=known("field_order"),
        width=_json_int(item.get("width")) or None, height=_json_int(item.get("height")) or None,
        start=_json_float(item.get("start_time")), time_base=_fraction(item.get("time_base")),
        attached_pic=bool((item.get("disposition") or {}).get("attached_pic")),
    )
    fps = _fraction(item.get("avg_frame_rate")) or _fraction(item.get("r_frame_rate"))
    stream.fps = exact_rate(fps) if fps is not None else None
    tags = item.get("tags") or {}
    for side in item.get("side_data_list") or []:
        if isinstance(side, dict) and _json_float(side.get("rotation")) is not None:
            stream.rotation = float(side["rotation"])
    if not stream.rotation and _json_float(tags.get("rotate")) is not None:
        stream.rotation = -float(tags["rotate"])  # the old tag turns clockwise, the display matrix counter-clockwise
    stream.frame_count = _json_int(item.get("nb_frames")) or next(
        (_json_int(v) for k, v in tags.items() if str(k).upper().startswith("NUMBER_OF_FRAMES")), None)
    return stream


def parse_ffprobe_json(text: str) -> Probe | None:
    """Parse ``ffprobe -of json -show_format -show_streams``; None when ffprobe could not open the input."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    fmt = data.get("format") if isinstance(data, dict) else None
    if not isinstance(fmt, dict):
        return None
    probe = Probe(container=fmt.get("format_name"), duration=_json_float(fmt.get("duration")),
                  start=_json_float(fmt.get("start_time")))
    for item in data.get("streams") or []:
        if not isinstance(item, dict) or _json_int(item.get("index")) is None:
            continue
        kind = str(item.get("codec_type") or "data")
        if kind == "video":
            probe.video.append(_json_video(item))
        else:
            probe.other_streams.append(f"{kind} {item.get('codec_name') or 'unknown'}")
    return probe


def ffmpeg_message(line: str) -> str:
    """An ffmpeg log line without its ``[h264 @ 0x55...]`` and ``[error]`` prefixes."""
    line = line.strip()
    while True:
        stripped = _CONTEXT.sub("", line)
        stripped = re.sub(r"^\[(?:panic|fatal|error|warning|info|verbose|debug|trace)\]\s*", "", stripped)
        if stripped == line:
            return line
        line = stripped


def _open_failure(stderr: str) -> str:
    """One line saying why ffmpeg could not open a file, most specific cause first."""
    messages = [ffmpeg_message(line) for line in stderr.splitlines() if line.strip()]
    generic = ("Error opening input", "Error opening input file", "Error opening input files")
    specific = [m for m in messages if not m.startswith(generic) and "At least one output" not in m]
    text = "\n".join(messages)
    if "No such file or directory" in text:
        return "file not found"
    if "Permission denied" in text:
        return "permission denied"
    if "Invalid data found when processing input" in text:
        cause = f": {specific[-1]}" if specific else ""
        return f"not a media file ffmpeg can read (invalid data{cause})"
    return f"ffmpeg cannot open it: {specific[-1] if specific else (messages[-1] if messages else 'no output')}"


def _run(args: list[str], target: MediaInput, timeout: float) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=timeout, check=False, **target.popen_kwargs())
    except subprocess.TimeoutExpired:
        raise InputError(target.path, f"probing took longer than {timeout:g} s (stalled input?)") from None
    except OSError as exc:
        raise InputError(target.path, f"cannot run {args[0]}: {exc.strerror or exc}") from None


def probe_file(exe: str, target: MediaInput, timeout: float = 30.0, ffprobe: str | None = None) -> Probe:
    """Describe ``target``'s streams; InputError when it is not a video.

    With ``ffprobe``, its JSON; else ``ffmpeg -i``'s text (see :func:`parse_probe`). Either opens
    ``target.url``, a fixed harmless name when the input is a file (:mod:`qplug_video.safe_input`),
    so no text that is parsed holds the file's real name.
    """
    path = target.path
    if ffprobe:
        result = _run([ffprobe, "-hide_banner", "-v", "error", "-of", "json", "-show_format", "-show_streams",
                       target.url], target, timeout)
        stderr = result.stderr.decode("utf-8", errors="replace")
        probe = parse_ffprobe_json(result.stdout.decode("utf-8", errors="replace")) if result.returncode == 0 else None
    else:
        result = _run([exe, "-hide_banner", "-nostdin", "-i", target.url], target, timeout)
        stderr = result.stderr.decode("utf-8", errors="replace")
        try:
            probe = parse_probe(stderr)
        except ProbeTampered as exc:
            raise InputError(path, f"ffmpeg's description of the file is inconsistent ({exc}): "
                                   "its metadata looks crafted to fake stream lines") from None
    if probe is None:
        raise InputError(path, _open_failure(stderr))
    if probe.main_video is None:
        found = ", ".join(probe.other_streams) or "no streams"
        if probe.video:
            found = ", ".join(filter(None, [found if probe.other_streams else "", "cover art only"]))
        raise InputError(path, f"no video stream (found: {found})")
    return probe

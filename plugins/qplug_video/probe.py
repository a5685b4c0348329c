"""Probing a video file by parsing ``ffmpeg -i FILE`` stderr.

The ffmpeg that ``imageio-ffmpeg`` ships has no ffprobe, so the stream description ffmpeg prints
before it complains about the missing output is the one probe available everywhere. Its format has
been stable for years; every field is optional here and simply stays None when a build prints
something unexpected.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field

from qplug.errors import InputError

from qplug.timecode import exact_rate

#: ffmpeg's names for field order (``ffmpeg -i``) and ffprobe's short ones.
_INTERLACED_ORDERS = {"top first", "bottom first", "top coded first (swapped)", "bottom coded first (swapped)",
                      "tt", "bb", "tb", "bt"}
_RANGES = {"tv", "pc", "mpeg", "jpeg"}

_INPUT = re.compile(r"^Input #\d+, (.+?), from ")
_DURATION = re.compile(r"^\s*Duration: (?:(\d+):(\d+):(\d+(?:\.\d+)?)|N/A)(?:, start: (-?\d+(?:\.\d+)?))?")
_STREAM = re.compile(r"^\s*Stream #\d+:(\d+)(?:\[[^\]]*\])?(?:\([^)]*\))?: (\w+): (.*)$")
_SIZE = re.compile(r"^(\d+)x(\d+)")
_RATE = re.compile(r"^(\d+(?:\.\d+)?)(k?) (fps|tbr)$")
_PIX_FMT = re.compile(r"^([a-z][a-z0-9_]*)(?:\((.*)\))?$")
_START = re.compile(r"^start (-?\d+(?:\.\d+)?)")
_ROTATION = re.compile(r"rotation of (-?\d+(?:\.\d+)?) degrees", re.IGNORECASE)
_FRAMES_TAG = re.compile(r"^\s*NUMBER_OF_FRAMES(?:-\w+)?\s*:\s*(\d+)\s*$")
_CONTEXT = re.compile(r"^\[[^\]]* @ [^\]]*\]\s*")


@dataclass
class VideoStream:
    """The video stream qplug decodes, as ``ffmpeg -i`` describes it."""

    index: int
    codec: str
    pix_fmt: str | None = None
    color_range: str | None = None  # "tv" (limited) or "pc" (full)
    color_space: str | None = None  # the YCbCr matrix: bt709, bt470bg, smpte170m...
    field_order: str | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None  # average rate ("fps"), else the base rate ("tbr")
    start: float | None = None
    rotation: float = 0.0
    frame_count: int | None = None
    attached_pic: bool = False

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
                else:  # "bt709" or "space/primaries/trc"
                    stream.color_space = item.split("/")[0]
    if stream.fps is None:
        stream.fps = tbr
    if stream.fps is not None:
        stream.fps = exact_rate(stream.fps)
    return stream


def parse_probe(stderr: str) -> Probe | None:
    """Parse ``ffmpeg -i`` stderr; None when ffmpeg could not open the input at all."""
    probe: Probe | None = None
    current: VideoStream | None = None  # the stream whose side data / metadata lines follow
    for line in stderr.splitlines():
        if probe is None:
            head = _INPUT.match(line)
            if head:
                probe = Probe(container=head.group(1))
            continue
        if line.startswith(("Output #", "Stream mapping:")):
            break
        duration = _DURATION.match(line)
        if duration:
            if duration.group(1) is not None:
                probe.duration = int(duration.group(1)) * 3600 + int(duration.group(2)) * 60 + float(duration.group(3))
            if duration.group(4) is not None:
                probe.start = float(duration.group(4))
            continue
        stream = _STREAM.match(line)
        if stream:
            kind, description = stream.group(2).lower(), stream.group(3)
            if kind == "video":
                current = _parse_video(int(stream.group(1)), description)
                probe.video.append(current)
            else:
                current = None
                probe.other_streams.append(f"{kind} {description.split(',')[0].split()[0]}")
            continue
        if current is not None:
            rotation = _ROTATION.search(line)
            if rotation:
                current.rotation = float(rotation.group(1))
            frames = _FRAMES_TAG.match(line)
            if frames:
                current.frame_count = int(frames.group(1))
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


def probe_file(exe: str, path: str, url: str, timeout: float = 30.0) -> Probe:
    """Run ``ffmpeg -i`` on ``url`` and parse what it prints; InputError when it is not a video.

    :param path: the name used in error messages.
    :param url: what ffmpeg opens (``file:`` prefixed so that names with ':' are not protocols).
    """
    try:
        result = subprocess.run([exe, "-hide_banner", "-nostdin", "-i", url], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise InputError(path, f"probing took longer than {timeout:g} s (stalled input?)") from None
    except OSError as exc:
        raise InputError(path, f"cannot run ffmpeg ({exe}): {exc.strerror or exc}") from None
    stderr = result.stderr.decode("utf-8", errors="replace")
    probe = parse_probe(stderr)
    if probe is None:
        raise InputError(path, _open_failure(stderr))
    if probe.main_video is None:
        found = ", ".join(probe.other_streams) or "no streams"
        if probe.video:
            found = ", ".join(filter(None, [found if probe.other_streams else "", "cover art only"]))
        raise InputError(path, f"no video stream (found: {found})")
    return probe

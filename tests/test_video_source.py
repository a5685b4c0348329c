"""Tests of the built-in video source (qplug_video): probing, sampling, timestamps, colours, errors.

The test videos are made here by ffmpeg itself (tiny, a second or two), once per session.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import gc
import itertools
import subprocess
import sys
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qplug.errors import InputError, UsageError
from qplug.testing.conformance import SourceConformance
from qplug.types import Frame, Sampling
import qplug_video
from qplug_video import VIDEO_EXTENSIONS, register_sources
from qplug_video.binary import ffmpeg_exe
from qplug_video.graph import output_size
from qplug_video.probe import bit_depth, parse_probe
from qplug_video.source import VideoReader, VideoSource
from qplug.timecode import exact_rate, frames_to_timecode, is_drop_frame, pts_to_timecode

TESTSRC = "testsrc2=s=320x240:r=25:d=2"


def _ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-loglevel", "error", *args], check=True)


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every test video, keyed by name."""
    d = tmp_path_factory.mktemp("videos")
    x264 = ["-c:v", "libx264", "-preset", "ultrafast"]
    paths = {name: d / file for name, file in [
        ("main", "main.mp4"), ("vfr", "vfr.mp4"), ("tenbit", "tenbit.mkv"), ("interlaced", "interlaced.mpg"),
        ("odd", "odd.y4m"), ("red", "red.mp4"), ("red709", "red709.mp4"),
        ("red709_10bit", "red709_10bit.mkv"), ("red2020_10bit", "red2020_10bit.mkv"),
        ("smpte240m", "smpte240m.mkv"), ("hlg", "hlg.mkv"), ("gray", "gray.mp4"),
        ("audio", "audio_only.mp4"), ("empty", "empty.mp4"), ("text", "text.mp4"), ("truncated", "truncated.mp4"),
    ]}
    _ffmpeg("-f", "lavfi", "-i", TESTSRC, *x264, "-pix_fmt", "yuv420p", "-movflags", "+faststart",
            str(paths["main"]))
    # Variable frame rate: 1 s at 10 fps then 1 s at 30 fps, timestamps kept as they are.
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=s=160x120:r=10:d=1", "-f", "lavfi", "-i", "testsrc2=s=160x120:r=30:d=1",
            "-filter_complex", "[0:v][1:v]concat=n=2:v=1:a=0", "-fps_mode", "vfr", *x264,
            "-video_track_timescale", "90000", str(paths["vfr"]))
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=s=160x120:r=25:d=0.4", *x264, "-pix_fmt", "yuv420p10le",
            str(paths["tenbit"]))
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=0.4", "-vf", "setfield=tff", "-flags", "+ildct+ilme",
            "-c:v", "mpeg2video", str(paths["interlaced"]))
    _ffmpeg("-f", "lavfi", "-i", "testsrc=s=161x121:r=25:d=0.2", "-pix_fmt", "yuv444p",
            str(paths["odd"]))
    lossless = [*x264, "-qp", "0", "-pix_fmt", "yuv420p"]
    _ffmpeg("-f", "lavfi", "-i", "color=red:s=64x64:r=25:d=0.2", *lossless, str(paths["red"]))
    tag709 = "setparams=colorspace=bt709:color_primaries=bt709:color_trc=bt709"
    _ffmpeg("-f", "lavfi", "-i", "color=red:s=64x64:r=25:d=0.2", "-vf",
            f"scale=out_color_matrix=bt709:out_range=tv,{tag709}", *lossless, str(paths["red709"]))
    # 10-bit 4:2:2 BT.709, as a broadcast master: converted by swscale, in its own matrix.
    _ffmpeg("-f", "lavfi", "-i", "color=red:s=64x64:r=25:d=0.2", "-vf",
            f"scale=out_color_matrix=bt709:out_range=tv,format=yuv422p10le,{tag709}", *x264, "-qp", "0",
            "-pix_fmt", "yuv422p10le", str(paths["red709_10bit"]))
    _ffmpeg("-f", "lavfi", "-i", "color=red:s=64x64:r=25:d=0.2", "-vf",
            "scale=out_color_matrix=bt2020:out_range=tv,format=yuv420p10le,"
            "setparams=colorspace=bt2020nc:color_primaries=bt2020:color_trc=bt709:range=tv",
            *x264, "-qp", "0", "-pix_fmt", "yuv420p10le", str(paths["red2020_10bit"]))
    _ffmpeg("-f", "lavfi", "-i", "color=red:s=64x64:r=25:d=0.2", "-vf",
            "scale=out_color_matrix=smpte240m:out_range=tv,format=yuv420p10le,"
            "setparams=colorspace=smpte240m:color_primaries=smpte240m:color_trc=smpte240m:range=tv",
            *x264, "-qp", "0", "-pix_fmt", "yuv420p10le", str(paths["smpte240m"]))
    _ffmpeg("-f", "lavfi", "-i", "color=red:s=64x64:r=25:d=0.2", "-vf",
            "format=yuv420p10le,setparams=colorspace=bt2020nc:color_primaries=bt2020:color_trc=arib-std-b67",
            *x264, "-pix_fmt", "yuv420p10le", str(paths["hlg"]))
    _ffmpeg("-f", "lavfi", "-i", "color=0x808080:s=64x64:r=25:d=0.2", *lossless, str(paths["gray"]))
    _ffmpeg("-f", "lavfi", "-i", "sine=d=0.5", "-c:a", "aac", "-f", "mp4", str(paths["audio"]))
    paths["empty"].write_bytes(b"")
    paths["text"].write_text("this is not a video, just text with an .mp4 name\n")
    data = paths["main"].read_bytes()  # faststart: the index is up front, the second half is missing
    paths["truncated"].write_bytes(data[: len(data) // 2])
    return paths


def read(path: Path | str, **sampling: object) -> tuple[VideoReader, list[Frame]]:
    reader = VideoSource().open(str(path), Sampling(**sampling))  # type: ignore[arg-type]
    with reader:
        return reader, list(reader)


def children() -> list[int]:
    """Process ids whose parent is this test process (zombies included)."""
    mine = str(os.getpid())
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if stat.rsplit(")", 1)[1].split()[1] == mine:
                found.append(int(entry))
    return found


# ---------------------------------------------------------------------------------------------
# Timecode arithmetic


def test_timecode_non_drop() -> None:
    assert frames_to_timecode(0, 25) == "00:00:00:00"
    assert frames_to_timecode(24, 25) == "00:00:00:24"
    assert frames_to_timecode(25 * 3661 + 3, 25) == "01:01:01:03"
    assert frames_to_timecode(24 * 86400, 24) == "00:00:00:00"  # wraps at 24 h
    assert pts_to_timecode(1.0, 25.0) == "00:00:01:00"
    assert pts_to_timecode(0.04 * 3, 25.0) == "00:00:00:03"
    assert pts_to_timecode(1.001, 24000 / 1001) == "00:00:01:00"  # 23.976 is never drop-frame


@pytest.mark.parametrize(("frame", "expected"), [
    (0, "00:00:00;00"), (1799, "00:00:59;29"), (1800, "00:01:00;02"), (3598, "00:02:00;02"),
    (17981, "00:09:59;29"), (17982, "00:10:00;00"), (17983, "00:10:00;01"), (107892, "01:00:00;00"),
])
def test_timecode_drop_frame_2997(frame: int, expected: str) -> None:
    assert frames_to_timecode(frame, 30000 / 1001) == expected


def test_timecode_drop_frame_5994_and_helpers() -> None:
    assert frames_to_timecode(3599, 60000 / 1001) == "00:00:59;59"
    assert frames_to_timecode(3600, 60000 / 1001) == "00:01:00;04"
    assert frames_to_timecode(35964, 60000 / 1001) == "00:10:00;00"
    assert frames_to_timecode(1800, 29.97, drop_frame=False) == "00:01:00:00"
    assert is_drop_frame(29.97) and is_drop_frame(60000 / 1001) and not is_drop_frame(30) and not is_drop_frame(25)
    assert exact_rate(29.97) == pytest.approx(30000 / 1001) and exact_rate(25.0) == 25.0
    assert pts_to_timecode(60.06, 29.97) == "00:01:00;02"  # frame 1800
    assert pts_to_timecode(None, 25) is None and pts_to_timecode(1.0, None) is None
    with pytest.raises(ValueError):
        frames_to_timecode(-1, 25)


# ---------------------------------------------------------------------------------------------
# Pure helpers: probe parsing, sizes, plugin registration


PROBE_TEXT = """\
Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'file:/x/phone.mov':
  Duration: 00:01:02.50, start: 0.120000, bitrate: 5000 kb/s
  Stream #0:0[0x1](und): Video: mjpeg (Baseline), yuvj420p(pc, bt470bg/unknown/unknown), 300x300, 90k tbr, 90k tbn (attached pic)
  Stream #0:1[0x2](und): Video: h264 (High 10) (avc1 / 0x31637661), yuv420p10le(tv, bt709, top first), 1920x1080 [SAR 1:1 DAR 16:9], 4000 kb/s, 29.97 fps, 29.97 tbr, 30k tbn (default)
    Metadata:
      NUMBER_OF_FRAMES: 1873
    Side data:
      Display Matrix: rotation of -90.00 degrees
  Stream #0:2[0x3](eng): Audio: aac (LC) (mp4a / 0x6134706D), 48000 Hz, stereo, fltp, 128 kb/s
At least one output file must be specified
"""


def test_parse_probe() -> None:
    probe = parse_probe(PROBE_TEXT)
    assert probe is not None
    assert probe.container == "mov,mp4,m4a,3gp,3g2,mj2"
    assert probe.duration == pytest.approx(62.5) and probe.start == pytest.approx(0.12)
    assert probe.other_streams == ["audio aac"]
    stream = probe.main_video
    assert stream is not None and stream.index == 1  # the cover art is skipped
    assert (stream.codec, stream.pix_fmt) == ("h264", "yuv420p10le")
    assert (stream.color_range, stream.color_space, stream.color_transfer) == ("tv", "bt709", "bt709")
    assert stream.interlaced is True and stream.field_order == "top first"
    assert stream.fps == pytest.approx(30000 / 1001)
    assert stream.display_size == (1080, 1920)  # rotated by 90 degrees
    assert stream.frame_count == 1873
    assert parse_probe("[in#0 @ 0x1] Error opening input: Invalid data found when processing input\n") is None


def test_hdr_streams_are_told_apart_and_said_to_be_measured_as_coded(clips: dict[str, Path]) -> None:
    pq = parse_probe(PROBE_TEXT.replace("yuv420p10le(tv, bt709, top first)",
                                        "yuv420p10le(tv, bt2020nc/bt2020/smpte2084, progressive)"))
    assert pq is not None and pq.main_video is not None
    assert (pq.main_video.color_space, pq.main_video.color_transfer) == ("bt2020nc", "smpte2084")
    cover = parse_probe(PROBE_TEXT)
    assert cover is not None and cover.video[0].color_transfer is None  # "bt470bg/unknown/unknown"
    reader, _ = read(clips["hlg"], max_frames=1)
    assert any(w.startswith("HDR video (HLG") for w in reader.info.warnings)
    reader, _ = read(clips["red2020_10bit"], max_frames=1)  # BT.2020 with an SDR transfer: no such warning
    assert not any(w.startswith("HDR video") for w in reader.info.warnings)


def test_bit_depth_and_output_size() -> None:
    formats = ("yuv420p", "yuv420p10le", "p010le", "gray12be", "rgb48le", "rgb24", "nv12", "grayf32le")
    assert [bit_depth(f) for f in formats] == [8, 10, 10, 12, 16, 8, 8, 32]
    assert bit_depth(None) is None
    assert output_size(1920, 1080, 640) == (640, 360)
    assert output_size(1080, 1920, 100) == (56, 100)
    assert output_size(321, 241, None) == (320, 240)
    assert output_size(320, 240, 1000) == (320, 240)


def test_plugin_registers_and_stays_light() -> None:
    infos: list = []
    register_sources(infos.append)
    (info,) = infos
    assert info.name == "video" and info.kind == "video" and info.factory == "qplug_video.source:VideoSource"
    assert ".mp4" in info.extensions and ".y4m" in info.extensions and info.extensions == VIDEO_EXTENSIONS
    code = "import sys, qplug_video; print(sorted(m for m in ('numpy', 'cv2', 'ffmpeg') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_ffmpeg_env_override(monkeypatch: pytest.MonkeyPatch) -> None:
    real = ffmpeg_exe()
    monkeypatch.setenv("QPLUG_FFMPEG", real)
    assert ffmpeg_exe() == real
    monkeypatch.setenv("QPLUG_FFMPEG", "/nonexistent/ffmpeg")
    with pytest.raises(UsageError):
        ffmpeg_exe()


# ---------------------------------------------------------------------------------------------
# Decoding and sampling


def test_every_frame(clips: dict[str, Path]) -> None:
    reader, frames = read(clips["main"])
    info = reader.info
    assert (info.kind, info.codec, info.width, info.height, info.fps) == ("video", "h264", 320, 240, 25.0)
    assert info.duration == pytest.approx(2.0) and info.bit_depth == 8 and info.interlaced is False
    assert info.pix_fmt == "yuv420p" and "mp4" in (info.container or "") and info.warnings == []
    assert len(frames) == 50 and reader.expected_frames == 50
    assert [f.index for f in frames] == list(range(50))
    assert [f.pts for f in frames] == pytest.approx([i * 0.04 for i in range(50)], abs=1e-6)
    assert all(f.duration == pytest.approx(0.04) for f in frames)
    assert frames[26].timecode == "00:00:01:01"
    first = frames[0]
    assert (first.width, first.height, first.pix_fmt, first.bit_depth) == (320, 240, "yuv420p", 8)
    assert first.rgb.shape == (240, 320, 3) and first.rgb.dtype == np.uint8
    assert first.luma.shape == (240, 320) and first.luma.dtype == np.uint8


def test_fps_sampling(clips: dict[str, Path]) -> None:
    reader, frames = read(clips["main"], fps=5)
    assert any("]fps=fps=" in arg for arg in reader.plan.args)  # sampled inside ffmpeg
    assert len(frames) == 10 == reader.expected_frames
    assert [f.pts for f in frames] == pytest.approx([i * 0.2 for i in range(10)], abs=1e-6)
    assert [f.index for f in frames] == [i * 5 for i in range(10)]
    assert all(f.duration == pytest.approx(0.2) for f in frames)


def test_fps_sampling_delivers_the_frame_on_screen(clips: dict[str, Path]) -> None:
    _, every = read(clips["main"])
    _, sampled = read(clips["main"], fps=3, start=0.5)
    assert [f.pts for f in sampled] == pytest.approx([2 / 3, 1.0, 4 / 3, 5 / 3], abs=1e-5)
    for frame in sampled:
        nearest = min(every, key=lambda f: float(np.abs(f.luma.astype(int) - frame.luma).mean()))
        on_screen = max(f.index for f in every if f.pts is not None and f.pts <= frame.pts + 1e-6)  # type: ignore[operator]
        assert nearest.index == on_screen == frame.index


def test_every_nth(clips: dict[str, Path]) -> None:
    reader, frames = read(clips["main"], every=7)
    assert any("select=" in arg for arg in reader.plan.args)
    assert [f.index for f in frames] == list(range(0, 50, 7))
    assert reader.expected_frames == len(frames)
    assert [f.pts for f in frames] == pytest.approx([i * 0.04 for i in range(0, 50, 7)], abs=1e-6)
    assert frames[0].duration == pytest.approx(0.28)


def test_start_end_window(clips: dict[str, Path]) -> None:
    _, frames = read(clips["main"], start=0.5, end=1.0)
    pts = [f.pts for f in frames]
    assert pts and pts[0] == pytest.approx(0.52) and all(0.5 <= p < 1.0 for p in pts)
    assert len(frames) == 12  # 0.52 .. 0.96
    assert [f.index for f in frames] == [round(p * 25) for p in pts]
    _, nth = read(clips["main"], start=1.0, every=5)
    assert [f.index for f in nth] == [25, 30, 35, 40, 45]


def test_max_frames_and_max_side(clips: dict[str, Path]) -> None:
    _, frames = read(clips["main"], max_frames=3)
    assert [f.index for f in frames] == [0, 1, 2]
    reader, small = read(clips["main"], max_side=100, max_frames=2)
    assert (small[0].width, small[0].height) == (100, 76)
    assert small[0].rgb.shape == (76, 100, 3) and small[0].luma.shape == (76, 100)
    assert (reader.info.width, reader.info.height) == (320, 240)  # MediaInfo keeps the source size


def test_variable_frame_rate_pts(clips: dict[str, Path]) -> None:
    _, frames = read(clips["vfr"])
    expected = [i / 10 for i in range(10)] + [1 + i / 30 for i in range(30)]
    assert len(frames) == 40
    assert [f.pts for f in frames] == pytest.approx(expected, abs=1e-3)
    assert all(b.pts > a.pts for a, b in itertools.pairwise(frames))  # type: ignore[operator]
    assert frames[0].duration == pytest.approx(0.1, abs=1e-3)
    assert frames[20].duration == pytest.approx(1 / 30, abs=1e-3)
    assert [f.index for f in frames] == list(range(40))


def test_ten_bit_is_converted_with_warning(clips: dict[str, Path]) -> None:
    reader, frames = read(clips["tenbit"])
    assert reader.info.bit_depth == 10 and reader.info.pix_fmt == "yuv420p10le"
    assert any("10-bit" in w for w in reader.info.warnings)
    assert len(frames) == 10
    assert frames[0].bit_depth == 10 and frames[0].rgb.dtype == np.uint8 and frames[0].luma.dtype == np.uint8


def test_interlaced_is_deinterlaced_with_warning(clips: dict[str, Path]) -> None:
    reader, frames = read(clips["interlaced"])
    assert reader.info.interlaced is True
    assert any("deinterlaced" in w for w in reader.info.warnings)
    assert any("bwdif" in arg for arg in reader.plan.args)
    assert len(frames) == 10  # one frame out per frame in
    assert frames[0].pts == pytest.approx(0.0, abs=1e-6)  # the MPEG-PS start time is subtracted
    plain = VideoSource(deinterlace=False).open(str(clips["interlaced"]))
    with plain:
        assert not any("bwdif" in arg for arg in plain.plan.args)
        combed = next(iter(plain))
        assert np.abs(combed.luma.astype(int) - frames[0].luma).mean() > 0.1  # bwdif did change the pictures


def test_odd_dimensions(clips: dict[str, Path]) -> None:
    reader, frames = read(clips["odd"])
    assert (reader.info.width, reader.info.height) == (161, 121)
    assert (frames[0].width, frames[0].height) == (160, 120)
    assert frames[0].rgb.shape == (120, 160, 3)
    assert any("odd" in w for w in reader.info.warnings)


@pytest.mark.parametrize("name,kr", [("red", 0.299), ("red709", 0.2126), ("red709_10bit", 0.2126),
                                     ("red2020_10bit", 0.2627)])
def test_rgb_colour_and_luma(clips: dict[str, Path], name: str, kr: float) -> None:
    reader, frames = read(clips[name], max_frames=1)
    rgb = frames[0].rgb.reshape(-1, 3).astype(int)
    assert np.abs(rgb - [255, 0, 0]).max() <= 8
    # Luma is the stream's own Y' (BT.709 weights for BT.709 video), stretched to full range.
    assert abs(float(frames[0].luma.mean()) - kr * 255) <= 4
    preview = frames[0].rgb_preview(16)
    assert max(preview.shape[:2]) <= 16 and np.abs(preview.reshape(-1, 3).astype(int) - [255, 0, 0]).max() <= 8


def test_passthrough_keeps_ffmpeg_out_of_colour_conversion(clips: dict[str, Path]) -> None:
    reader, frames = read(clips["red709"], max_frames=1)
    assert reader.plan.matrix == "bt709"
    assert not any("colorspace" in arg or "out_color_matrix" in arg for arg in reader.plan.args)
    fresh = read(clips["red709"], max_frames=1)[1][0]
    assert np.array_equal(fresh.rgb_preview(16), frames[0].rgb[::4, ::4])  # preview = grid of the full RGB


@pytest.mark.parametrize("name,sampling,matrix", [("red709_10bit", {}, "bt709"), ("red709", {"max_side": 32}, "bt709"),
                                                  ("red2020_10bit", {}, "bt2020")])
def test_a_converted_stream_keeps_its_own_matrix(clips: dict[str, Path], name: str, sampling: dict[str, int],
                                                 matrix: str) -> None:
    # A change of matrix would go through RGB and clip super-whites and sub-blacks (test_broadcast_checks).
    reader, frames = read(clips[name], max_frames=1, **sampling)
    assert reader.plan.matrix == matrix
    assert any(f"in_color_matrix={matrix}:out_color_matrix={matrix}" in arg for arg in reader.plan.args)
    assert frames[0].planes is not None


def test_a_matrix_qplug_does_not_read_becomes_bt601_without_coded_planes(clips: dict[str, Path]) -> None:
    reader, frames = read(clips["smpte240m"], max_frames=1)
    assert reader.plan.matrix == "bt601"
    assert not any("in_color_matrix" in arg for arg in reader.plan.args)  # ffmpeg reads the stream's own
    assert frames[0].planes is None  # the change of matrix clipped any excursion: nothing to check
    assert np.abs(frames[0].rgb.reshape(-1, 3).astype(int) - [255, 0, 0]).max() <= 8  # still red


def test_gray_luma_is_full_range(clips: dict[str, Path]) -> None:
    _, frames = read(clips["gray"], max_frames=1)
    assert abs(float(frames[0].luma.mean()) - 128) <= 3
    assert np.abs(frames[0].rgb.astype(int) - 128).max() <= 3


# ---------------------------------------------------------------------------------------------
# Resources: processes and memory


def test_early_stop_leaves_no_process(clips: dict[str, Path]) -> None:
    reader = VideoSource().open(str(clips["main"]))
    iterator = iter(reader)
    next(iterator)
    pid = reader.pid
    assert pid is not None and pid in children()
    reader.close()
    assert pid not in children()
    # Dropping a half-read iterator without close() must clean up too.
    reader = VideoSource().open(str(clips["main"]))
    for _ in reader:
        pid = reader.pid
        break
    gc.collect()
    assert pid not in children()
    # A reader closed before iteration never starts ffmpeg.
    reader = VideoSource().open(str(clips["main"]))
    reader.close()
    assert list(reader) == [] and reader.pid is None


def test_iterate_once(clips: dict[str, Path]) -> None:
    reader, _ = read(clips["main"], max_frames=1)
    with pytest.raises(RuntimeError):
        iter(reader)


def test_frames_do_not_accumulate(clips: dict[str, Path]) -> None:
    refs: list[weakref.ref[Frame]] = []
    most_alive = 0
    for frame in VideoSource().open(str(clips["main"])):
        frame.luma  # noqa: B018 - touch the pixels like a scorer would
        frame.rgb  # noqa: B018
        refs.append(weakref.ref(frame))
        del frame
        most_alive = max(most_alive, sum(r() is not None for r in refs))
    assert most_alive <= 1  # the reader keeps no earlier frame alive
    assert all(r() is None for r in refs)


# ---------------------------------------------------------------------------------------------
# Bad inputs: one clear InputError each


@pytest.mark.parametrize(("name", "words"), [
    ("empty", "empty file"),
    ("text", "not a media file"),
    ("audio", "no video stream"),
])
def test_bad_inputs(clips: dict[str, Path], name: str, words: str) -> None:
    with pytest.raises(InputError) as caught:
        VideoSource().open(str(clips[name]))
    assert words in caught.value.reason and "\n" not in caught.value.reason
    assert caught.value.path == str(clips[name])


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="file not found"):
        VideoSource().open(str(tmp_path / "missing.mp4"))
    with pytest.raises(InputError, match="directory"):
        VideoSource().open(str(tmp_path))


def test_unreadable_file(clips: dict[str, Path], tmp_path: Path) -> None:
    locked = tmp_path / "locked.mp4"
    locked.write_bytes(clips["main"].read_bytes())
    locked.chmod(0)
    try:
        if os.access(locked, os.R_OK):
            pytest.skip("running as a user who can read a chmod 000 file (root)")
        with pytest.raises(InputError, match="permission denied"):
            VideoSource().open(str(locked))
    finally:
        locked.chmod(0o600)


def test_truncated_file_keeps_good_frames(clips: dict[str, Path]) -> None:
    frames: list[Frame] = []
    with pytest.raises(InputError) as caught:
        reader = VideoSource().open(str(clips["truncated"]))
        for frame in reader:
            frames.append(frame)
    assert 0 < len(frames) < 50 or not frames
    if frames:
        assert f"after {len(frames)} frames" in caught.value.reason
        assert frames[-1].rgb.shape == (240, 320, 3)
    assert "\n" not in caught.value.reason
    assert not children()


def test_start_past_the_end(clips: dict[str, Path]) -> None:
    with pytest.raises(InputError, match="past the end"):
        read(clips["main"], start=5.0)


# ---------------------------------------------------------------------------------------------
# The plugin-author kit's contract for sources


class TestVideoSourceConformance(SourceConformance):
    plugin = qplug_video
    source_name = "video"

    def make_sample(self, tmp_path: Any) -> str:
        path = tmp_path / "sample.mp4"
        if not path.exists():
            _ffmpeg("-f", "lavfi", "-i", "testsrc2=s=64x48:r=25:d=0.2", "-c:v", "libx264", "-preset", "ultrafast",
                    "-pix_fmt", "yuv420p", str(path))
        return str(path)

    def make_broken(self, tmp_path: Any) -> str:
        path = tmp_path / "broken.mp4"
        path.write_text("not a video\n")
        return str(path)


def test_limited_range_luma_stretch_matches_the_exact_table() -> None:
    from qplug_video.colour import Colour, full_range_luma

    ramp = np.arange(256, dtype=np.uint8).reshape(16, 16)
    expected = np.clip(np.round((np.arange(256) - 16.0) * 255.0 / 219.0), 0, 255).astype(np.uint8).reshape(16, 16)
    assert np.array_equal(full_range_luma(ramp, Colour("bt709", False)), expected)
    assert full_range_luma(ramp, Colour("bt601", True)) is ramp


@pytest.mark.parametrize("name", ["red709", "odd"])
def test_region_conversion_matches_the_full_frame(clips: dict[str, Path], name: str) -> None:
    _, (frame,) = read(clips[name], max_frames=1)
    fresh = read(clips[name], max_frames=1)[1][0]
    region = fresh.rgb_crop(3, 5, 21, 17)  # odd offsets: chroma must still line up
    assert region.shape == (17, 21, 3)
    assert np.abs(region.astype(int) - frame.rgb[5:22, 3:24].astype(int)).max() <= 3

"""Damaged and variable-rate streams in the video source: true indices, gaps, damage, no false alarms.

Clips are made by ffmpeg itself, then damaged by overwriting bytes in the middle, the way a bad
sector or a lost network chunk would. What ffmpeg alone decodes from a damaged file is the
reference for "every decodable frame".
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import re
import subprocess
from pathlib import Path

import pytest

from qplug.errors import InputError
from qplug.types import Frame, Sampling
from qplug_video.binary import ffmpeg_exe
from qplug_video.damage import Timeline, classify_log_line, clock, describe_gaps
from qplug_video.source import VideoReader, VideoSource

FPS = 25
DAMAGE_BYTES = 20_000


def _ffmpeg(*args: str, cwd: Path | None = None) -> None:
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-loglevel", "error", *args], check=True, cwd=cwd)


def _damage(src: Path, dst: Path) -> None:
    """Overwrite DAMAGE_BYTES in the middle of ``src`` with a fixed non-random pattern."""
    data = bytearray(src.read_bytes())
    middle = len(data) // 2
    data[middle:middle + DAMAGE_BYTES] = bytes((i * 97 + 13) % 256 for i in range(DAMAGE_BYTES))
    dst.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("damage")
    x264 = ["-c:v", "libx264", "-preset", "ultrafast", "-threads", "1", "-g", "25", "-pix_fmt", "yuv420p"]
    paths: dict[str, Path] = {}
    for ext in ("ts", "mp4", "mkv"):
        clean = d / f"clean.{ext}"
        _ffmpeg("-f", "lavfi", "-i", f"testsrc2=s=320x240:r={FPS}:d=4", *x264, str(clean))
        paths[f"clean.{ext}"] = clean
        paths[f"damaged.{ext}"] = d / f"damaged.{ext}"
        _damage(clean, paths[f"damaged.{ext}"])
    # Valid variable frame rate: 1 s at 25 fps, 1 s at 10 fps, 1 s at 60 fps, joined without re-encoding.
    for rate in (25, 10, 60):
        _ffmpeg("-f", "lavfi", "-i", f"testsrc2=s=160x120:r={rate}:d=1", *x264, "-video_track_timescale", "90000",
                str(d / f"seg{rate}.mp4"))
    (d / "list.txt").write_text("".join(f"file 'seg{rate}.mp4'\n" for rate in (25, 10, 60)))
    for ext in ("mkv", "mp4"):
        paths[f"vfr.{ext}"] = d / f"vfr.{ext}"
        _ffmpeg("-f", "concat", "-safe", "0", "-i", "list.txt", "-c", "copy", f"vfr.{ext}", cwd=d)
    # Truncated (moov up front, second half gone): decoding really stops early.
    _ffmpeg("-f", "lavfi", "-i", f"testsrc2=s=320x240:r={FPS}:d=2", *x264, "-movflags", "+faststart", str(d / "full.mp4"))
    data = (d / "full.mp4").read_bytes()
    paths["truncated.mp4"] = d / "truncated.mp4"
    paths["truncated.mp4"].write_bytes(data[: len(data) // 2])
    return paths


def _ffmpeg_pts(path: Path) -> list[float]:
    """Timestamps of every frame plain ffmpeg decodes from ``path`` (its start time made 0)."""
    out = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path), "-map", "0:v:0",
                          "-vf", "showinfo", "-f", "null", "-"], capture_output=True, text=True, errors="replace")
    return [round(float(t), 3) for t in re.findall(r"\bn:\s*\d+\s+pts:\s*\S+\s+pts_time:(\S+)", out.stderr)]


def _read_all(path: Path, **sampling: object) -> tuple[VideoReader, list[Frame], InputError | None, int]:
    """Every frame, the error raised at the end (None if none) and how many frames came before it."""
    reader = VideoSource().open(str(path), Sampling(**sampling))  # type: ignore[arg-type]
    frames: list[Frame] = []
    error = None
    with reader:
        try:
            for frame in reader:
                frames.append(frame)
        except InputError as exc:
            error = exc
    return reader, frames, error, len(frames)


# ---------------------------------------------------------------------------------------------
# Damaged streams


@pytest.mark.parametrize("ext", ["ts", "mp4", "mkv"])
def test_damaged_stream_keeps_true_indices_and_reports_the_gap(videos: dict[str, Path], ext: str) -> None:
    path = videos[f"damaged.{ext}"]
    reader, frames, error, _ = _read_all(path)

    # Every frame ffmpeg can decode is delivered, at its own time.
    expected = _ffmpeg_pts(path)
    assert 0 < len(frames) < 100
    assert [round(f.pts, 3) for f in frames] == expected  # type: ignore[arg-type]
    # Indices stay true to the stream: after the hole they jump instead of renumbering.
    assert [f.index for f in frames] == [round(f.pts * FPS) for f in frames]  # type: ignore[operator]
    assert frames[-1].index == 99

    # The hole is reported with where it starts and ends.
    assert reader.gaps, "no gap recorded"
    start, end, first, after = reader.gaps[0]
    indices = {f.index for f in frames}
    assert first - 1 in indices and after in indices
    assert not indices & set(range(first, after))
    assert start == pytest.approx(first / FPS) and end == pytest.approx(after / FPS)
    assert sum(b - a for _, _, a, b in reader.gaps) == 100 - len(frames)
    assert reader.damage and reader.damage_count >= len(reader.damage)

    # ...and raised once every good frame is out, saying where, in one line.
    assert error is not None
    reason = error.reason
    assert reason.startswith(f"decode_gap: frames missing from {clock(start)} (frame {first}) to {clock(end)} (frame {after})")
    assert "decoder reported" in reason and "\n" not in reason
    assert "decoding stopped" not in reason  # it went on to the end


def test_damage_is_an_error_record_of_the_run(videos: dict[str, Path]) -> None:
    from qplug.pipeline import Run, RunOptions
    from qplug.testing.harness import make_host

    run = Run([str(videos["damaged.ts"])], RunOptions(scorers=["exposure"]), make_host(builtins=True))
    results = list(run)
    summary = run.summary.sources[0]
    assert summary.frames == len(_ffmpeg_pts(videos["damaged.ts"]))  # every readable frame scored
    assert [e.stage for e in summary.errors] == ["read"] and "decode_gap" in summary.errors[0].reason
    expected = _read_all(videos["damaged.ts"])[0].gaps
    gaps = [e for e in summary.events if e.scorer == "decode_gap"]
    assert [(e.start, e.end, e.frames) for e in gaps] == [(a, b, after - first) for a, b, first, after in expected]
    assert gaps[0].start_timecode == f"00:00:{expected[0][2] // FPS:02d}:{expected[0][2] % FPS:02d}"
    assert run.summary.exit_code == 2
    assert len([r for r in results if hasattr(r, "index")]) == summary.frames


@pytest.mark.parametrize("sampling", [{"every": 7}, {"fps": 5.0}])
def test_gaps_are_found_under_sampling(videos: dict[str, Path], sampling: dict[str, object]) -> None:
    full, _, _, _ = _read_all(videos["damaged.mp4"])
    reader, frames, error, _ = _read_all(videos["damaged.mp4"], **sampling)
    assert reader.gaps == full.gaps  # every decoded frame is watched, not only the sampled ones
    assert error is not None and error.reason.startswith("decode_gap: ")
    if "fps" in sampling:
        assert [f.pts for f in frames] == pytest.approx([i * 0.2 for i in range(20)], abs=1e-6)
    # The index is the source frame on screen at each delivered frame's time.
    shown = {round(f.pts * FPS) for f in _read_all(videos["damaged.mp4"])[1]}  # type: ignore[operator]
    for frame in frames:
        assert frame.index == max(i for i in shown if i <= round(frame.pts * FPS, 3))  # type: ignore[operator]


def test_window_before_the_damage_is_clean(videos: dict[str, Path]) -> None:
    reader, frames, error, _ = _read_all(videos["damaged.ts"], start=0.0, end=1.0)
    assert error is None and reader.gaps == []
    assert [f.index for f in frames] == list(range(25))
    reader, frames, error, _ = _read_all(videos["damaged.mp4"], max_frames=10)
    assert error is None and reader.gaps == [] and len(frames) == 10


def test_window_over_the_damage_reports_it(videos: dict[str, Path]) -> None:
    reader, frames, error, _ = _read_all(videos["damaged.mp4"], start=1.5, end=3.0)
    assert error is not None and error.reason.startswith("decode_gap: ")
    assert all(1.5 <= f.pts < 3.0 for f in frames)  # type: ignore[operator]
    assert all(1.5 <= g[0] < 3.0 for g in reader.gaps)


def test_truncated_file_says_it_stopped(videos: dict[str, Path]) -> None:
    reader, frames, error, count = _read_all(videos["truncated.mp4"])
    assert error is not None and 0 < count < 50
    assert error.reason.startswith(f"decoding stopped after {count} frames, the last at ")
    assert f"(frame {frames[-1].index})" in error.reason


# ---------------------------------------------------------------------------------------------
# Valid variable frame rate: no false alarm


@pytest.mark.parametrize("ext", ["mkv", "mp4"])
def test_variable_frame_rate_file_is_not_damage(videos: dict[str, Path], ext: str) -> None:
    reader, frames, error, _ = _read_all(videos[f"vfr.{ext}"])
    assert error is None, error
    assert reader.damage == [] and reader.gaps == [] and reader.info.warnings == []
    assert len(frames) == 25 + 10 + 60
    assert [f.index for f in frames] == list(range(95))  # no grid to jump on: frames are counted
    assert all(b.pts > a.pts for a, b in zip(frames, frames[1:]))  # type: ignore[operator]


def test_classify_log_line() -> None:
    damage = [
        "[h264 @ 0x55] [error] error while decoding MB 19 11",
        "[h264 @ 0x55] [error] concealing 120 DC, 120 AC, 120 MV errors in P frame",
        "[h264 @ 0x55] [info] concealing 82 DC, 82 AC, 82 MV errors in I frame",
        "[in#0/mpegts @ 0x55] [warning] Packet corrupt (stream = 0, dts = 306000).",
        "[vist#0:0/h264 @ 0x55] [dec:h264 @ 0x56] [warning] corrupt decoded frame",
        "[h264 @ 0x55] [error] Invalid NAL unit size (6406691 > 2601).",
        "[h264 @ 0x55] [error] missing picture in access unit with size 2605",
        "[h264 @ 0x55] [error] decode_slice_header error",
        "[in#0/mpegts @ 0x55] [warning] PES packet size mismatch",
        "[h264 @ 0x55] [error] non-existing PPS 0 referenced",
        "[h264 @ 0x55] [error] no frame!",
        "[h264 @ 0x55] [error] co located POCs unavailable",
        "[hevc @ 0x55] [error] Some brand new wording of a decoding problem",  # error level, input side
        "[in#0/matroska,webm @ 0x55] [error] Element at 0x2ea6f exceeds containing master element",
    ]
    notices = [
        "[null @ 0x55] [error] Application provided invalid, non monotonically increasing dts to muxer in stream 0: 89 >= 89",
        "[rawvideo @ 0x55] [error] Application provided invalid, non monotonically increasing dts to muxer in stream 0",
        "[in#0/concat @ 0x55] [warning] DTS 10240 < 12288 out of order",
        "[vost#0:0/rawvideo @ 0x55] [warning] Past duration 0.999992 too large",
        "[in#0/mpegts @ 0x55] [warning] changing packet size to 192",
    ]
    assert [classify_log_line(line) for line in damage] == ["damage"] * len(damage)
    assert [classify_log_line(line) for line in notices] == ["notice"] * len(notices)
    assert classify_log_line("[out#0/rawvideo @ 0x55] [error] Error muxing a packet") == "error"
    assert classify_log_line("[swscaler @ 0x55] [warning] deprecated pixel format used") == "notice"
    assert classify_log_line("[info] Input #0, mpegts, from 'file:input.ts':") == "info"
    assert classify_log_line("[h264 @ 0x55] [warning] a warning that is not about damage") == "info"
    # The stream description echoes the file's metadata at info level: a title is not damage.
    assert classify_log_line("[info]     title           : corrupt, concealed, error while decoding") == "info"


def test_timeline_indices_and_gaps() -> None:
    clean = Timeline(25.0)
    assert [clean.add(i / 25, 0.04) for i in range(5)] == [0, 1, 2, 3, 4] and clean.gaps == []
    holed = Timeline(25.0)
    times = [i / 25 for i in range(51)] + [i / 25 for i in range(57, 60)]
    assert [holed.add(t, 0.04) for t in times][-4:] == [50, 57, 58, 59]
    assert holed.gaps == [(2.04, 2.28, 51, 57)]
    assert holed.index_at(2.2) == 50 and holed.index_at(2.3) == 57  # the frame on screen then
    assert describe_gaps(holed.gaps) == "frames missing from 00:00:02.040 (frame 51) to 00:00:02.280 (frame 57)"
    # Frames lasting other than one period (10 fps in a stream said to be 25): counted, never a gap.
    vfr = Timeline(25.0)
    times = [i / 25 for i in range(25)] + [1 + i / 10 for i in range(10)] + [2 + i / 60 for i in range(60)]
    durations = [0.04] * 25 + [0.1] * 10 + [1 / 60] * 60
    assert [vfr.add(t, d) for t, d in zip(times, durations)] == list(range(95)) and vfr.gaps == []
    # After a seek the first index comes from the time.
    seek = Timeline(25.0, seeking=True)
    assert seek.add(1.0, 0.04) == 25 and seek.gaps == []


def test_metadata_words_are_not_damage(tmp_path: Path) -> None:
    path = tmp_path / "titled.mkv"
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=s=160x120:r=25:d=0.4", "-c:v", "libx264", "-preset", "ultrafast",
            "-metadata", "title=corrupt: error while decoding, concealing", "-metadata:s:v", "comment=Packet corrupt",
            str(path))
    reader, frames, error, _ = _read_all(path)
    assert error is None and reader.damage == [] and len(frames) == 10


def test_seeking_into_open_gops_is_not_damage(tmp_path: Path) -> None:
    """After a seek, leading frames that refer to the GOP before fail to decode: not the file's fault."""
    path = tmp_path / "open_gop.ts"
    _ffmpeg("-f", "lavfi", "-i", f"testsrc2=s=160x120:r={FPS}:d=3", "-c:v", "libx264", "-preset", "medium",
            "-threads", "1", "-x264-params", "open-gop=1:keyint=25", "-bf", "3", str(path))
    for start, end in ((0.5, 1.5), (1.5, 2.6)):
        reader, frames, error, _ = _read_all(path, start=start, end=end)
        assert error is None, error
        assert frames and all(start <= f.pts < end for f in frames)  # type: ignore[operator]
        assert [f.index for f in frames] == [round(f.pts * FPS) for f in frames]  # type: ignore[operator]

"""Hostile inputs to the video source: crafted file names, FIFOs and devices, stalled decodes.

Everything runs the real ffmpeg on clips it makes here; nothing is mocked.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from qplug.errors import InputError, UsageError
from qplug.types import Frame, Sampling
from qplug_video.binary import ffmpeg_exe, ffprobe_exe
from qplug_video.graph import plan_decode
from qplug_video.probe import ProbeTampered, parse_ffprobe_json, parse_probe, probe_file
from qplug_video.safe_input import MediaInput, open_input
from qplug_video.source import STALL_ENV_VAR, VideoReader, VideoSource, _media_info

FAKE_SMALL = "\n    Stream #0:0: Video: h264, yuv420p, 64x48, 25 fps\n"
FAKE_HUGE = "\n  Stream #0:0: Video: h264 (High), yuv420p(progressive), 12000x12000, 25 fps, 25 tbr\n"


def _ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-loglevel", "error", *args], check=True)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("inputs")
    x264 = ["-c:v", "libx264", "-preset", "ultrafast", "-threads", "1", "-pix_fmt", "yuv420p"]
    paths = {"hd": d / "hd.mp4", "ts": d / "clip.ts", "small": d / "small.mp4", "y4m": d / "clip.y4m"}
    # Without +faststart the index (moov) is at the end: reading it needs seeking.
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=s=1280x720:r=25:d=0.2", *x264, str(paths["hd"]))
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=4", *x264, "-g", "10", str(paths["ts"]))
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=s=160x120:r=25:d=1", *x264, str(paths["small"]))
    # Raw frames: ffmpeg starts delivering as soon as a few have arrived through a pipe.
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=s=160x120:r=25:d=4", "-pix_fmt", "yuv420p", str(paths["y4m"]))
    return paths


def _frames(path: Path | str, **kw: object) -> tuple[VideoReader, list[Frame]]:
    reader = VideoSource(**kw).open(str(path))  # type: ignore[arg-type]
    with reader:
        return reader, list(reader)


# ---------------------------------------------------------------------------------------------
# File names never steer the probe


@pytest.mark.parametrize("fake", [FAKE_SMALL, FAKE_HUGE], ids=["claims-64x48", "claims-12000x12000"])
def test_crafted_file_name_does_not_change_the_size(clips: dict[str, Path], tmp_path: Path, fake: str) -> None:
    evil = tmp_path / f"clip{fake}x.mp4"
    shutil.copyfile(clips["hd"], evil)
    reader, frames = _frames(evil)
    assert (reader.info.width, reader.info.height) == (1280, 720)
    assert (reader.plan.width, reader.plan.height) == (1280, 720)
    assert len(frames) == 5 and frames[0].rgb.shape == (720, 1280, 3)
    assert not any(fake.strip() in arg or "clip" in arg for arg in reader.plan.args)  # ffmpeg never sees the name


def test_decoder_messages_never_hold_the_name(clips: dict[str, Path], tmp_path: Path) -> None:
    data = bytearray(clips["ts"].read_bytes())
    middle = len(data) // 2
    data[middle:middle + 20000] = bytes((i * 97 + 13) % 256 for i in range(20000))
    evil = tmp_path / f"bad{FAKE_SMALL}.ts"
    evil.write_bytes(bytes(data))
    reader = VideoSource().open(str(evil))
    with pytest.raises(InputError) as caught:
        with reader:
            for _ in reader:
                pass
    assert reader.damage and not any("64x48" in m or "bad" in m for m in reader.damage)
    assert "64x48" not in caught.value.reason and caught.value.path == str(evil)


def test_odd_names_and_a_deleted_file_still_read(clips: dict[str, Path], tmp_path: Path) -> None:
    for name in ("concat:a.mp4", "with space's \"quote\".mp4", "no_extension", "ünï.MP4"):
        path = tmp_path / name
        shutil.copyfile(clips["small"], path)
        reader, frames = _frames(path)
        assert len(frames) == 25 and frames[0].source_id == str(path)
    # Opened once: the reader keeps reading the file it checked even if the name goes away.
    path = tmp_path / "gone.mp4"
    shutil.copyfile(clips["small"], path)
    reader = VideoSource().open(str(path))
    path.unlink()
    with reader:
        assert len(list(reader)) == 25


def test_reader_leaves_no_private_directory(clips: dict[str, Path]) -> None:
    target = open_input(str(clips["small"]))
    directory = target.popen_kwargs().get("cwd")
    assert target.benign and target.url.startswith("file:input") and directory and os.path.isdir(directory)
    target.close()
    assert not os.path.exists(directory)
    reader = VideoSource().open(str(clips["small"]))
    directory = reader._target.popen_kwargs()["cwd"]  # type: ignore[union-attr]
    with reader:
        assert len(list(reader)) == 25
    assert not os.path.exists(directory)  # released when the reader closes


def test_a_killed_process_private_directory_is_removed_by_the_next_one(clips: dict[str, Path], tmp_path: Path) -> None:
    """SIGKILL runs no cleanup: the next qplug process removes what the dead one left, nothing else."""
    env = dict(os.environ, TMPDIR=str(tmp_path))
    code = ("import os, sys; from qplug_video.safe_input import open_input; t = open_input(sys.argv[1]); "
            "print(t.popen_kwargs()['cwd'], flush=True); os.kill(os.getpid(), 9)")
    killed = subprocess.run([sys.executable, "-c", code, str(clips["small"])], env=env, capture_output=True, text=True)
    left = Path(killed.stdout.strip())
    assert killed.returncode == -9 and left.is_dir() and left.parent == tmp_path
    alive = tmp_path / f"qplug-video-{os.getpid()}-keep"  # a live process's directory
    alive.mkdir()
    unrelated = tmp_path / "qplug-video-notapid"
    unrelated.mkdir()
    code = ("import sys; from qplug_video.safe_input import open_input; t = open_input(sys.argv[1]); "
            "d = t.popen_kwargs()['cwd']; t.close(); print(d)")
    done = subprocess.run([sys.executable, "-c", code, str(clips["small"])], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert not left.exists() and alive.is_dir() and unrelated.is_dir()
    assert not Path(done.stdout.strip()).exists()


def test_probe_parser_reads_fields_only_where_ffmpeg_prints_them() -> None:
    text = (
        "Input #0, matroska,webm, from 'file:input.mkv':\n"
        "  Metadata:\n"
        "    COMMENT         : x\n"
        "                    :   Stream #0:0: Video: h264, yuv420p, 640x480, 25 fps\n"  # a tag value's next line
        "    ENCODER         : rotation of 90.00 degrees\n"
        "  Duration: 00:00:02.00, start: 0.000000, bitrate: 127 kb/s\n"
        "  Stream #0:0: Video: h264 (High), yuv420p(tv, progressive), 320x240, 25 fps, 25 tbr, 1k tbn\n"
        "    Metadata:\n"
        "      title           : Display Matrix: rotation of 90.00 degrees\n"
        "      NUMBER_OF_FRAMES: 50\n"
        "  Stream #0:1: Audio: aac (LC), 48000 Hz, stereo, fltp\n"
        "Input #1, matroska,webm, from 'other.mkv':\n"
        "  Stream #1:0: Video: h264, yuv420p, 64x48, 25 fps\n"
    )
    probe = parse_probe(text)
    assert probe is not None and len(probe.video) == 1 and probe.other_streams == ["audio aac"]
    stream = probe.video[0]
    assert (stream.width, stream.height, stream.rotation, stream.frame_count) == (320, 240, 0.0, 50)
    assert stream.time_base == pytest.approx(1e-3) and probe.duration == pytest.approx(2.0)
    # A tag *name* with a newline can print a line that looks like ffmpeg's own: numbering gives it away.
    forged = text.replace("  Duration:", "  Stream #0:0: Video: h264, yuv420p, 64x48, 25 fps\n  Duration:")
    with pytest.raises(ProbeTampered):
        parse_probe(forged)


def test_ffprobe_json_is_parsed() -> None:
    data = {
        "streams": [
            {"index": 0, "codec_type": "video", "codec_name": "mjpeg", "width": 300, "height": 300,
             "disposition": {"attached_pic": 1}, "avg_frame_rate": "0/0", "r_frame_rate": "90000/1"},
            {"index": 1, "codec_type": "video", "codec_name": "h264", "width": 1920, "height": 1080,
             "pix_fmt": "yuv420p10le", "color_range": "tv", "color_space": "bt709", "field_order": "tt",
             "color_transfer": "smpte2084",
             "avg_frame_rate": "30000/1001", "r_frame_rate": "30000/1001", "time_base": "1/30000",
             "start_time": "0.120000", "nb_frames": "1873", "disposition": {"attached_pic": 0},
             "side_data_list": [{"side_data_type": "Display Matrix", "rotation": -90}]},
            {"index": 2, "codec_type": "audio", "codec_name": "aac"},
        ],
        "format": {"filename": "file:input.mov", "format_name": "mov,mp4,m4a,3gp,3g2,mj2",
                   "start_time": "0.120000", "duration": "62.500000"},
    }
    probe = parse_ffprobe_json(json.dumps(data))
    assert probe is not None and probe.other_streams == ["audio aac"]
    assert probe.duration == pytest.approx(62.5) and probe.start == pytest.approx(0.12)
    stream = probe.main_video
    assert stream is not None and stream.index == 1
    assert (stream.pix_fmt, stream.color_range, stream.color_space, stream.interlaced) == ("yuv420p10le", "tv", "bt709", True)
    assert stream.color_transfer == "smpte2084"
    assert stream.fps == pytest.approx(30000 / 1001) and stream.display_size == (1080, 1920)
    assert stream.frame_count == 1873 and stream.time_base == pytest.approx(1 / 30000)
    assert parse_ffprobe_json("{}") is None and parse_ffprobe_json("not json") is None


def test_probe_with_ffprobe_when_there_is_one(clips: dict[str, Path]) -> None:
    ffprobe = ffprobe_exe(ffmpeg_exe())
    if ffprobe is None:
        pytest.skip("no ffprobe here (imageio-ffmpeg ships none)")
    with open_input(str(clips["hd"])) as target:
        by_json = probe_file(ffmpeg_exe(), target, ffprobe=ffprobe)
        by_text = probe_file(ffmpeg_exe(), target, ffprobe=None)
    assert by_json.main_video is not None and by_text.main_video is not None
    assert by_json.main_video.display_size == by_text.main_video.display_size == (1280, 720)


# ---------------------------------------------------------------------------------------------
# Only regular files


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_fifo_is_refused_without_opening_it(tmp_path: Path) -> None:
    fifo = tmp_path / "x.mp4"
    os.mkfifo(fifo)
    link = tmp_path / "link.mp4"
    link.symlink_to(fifo)
    for path in (fifo, link):
        started = time.monotonic()
        with pytest.raises(InputError) as caught:
            VideoSource().open(str(path))
        assert caught.value.reason == "not a regular file (FIFO)"
        assert time.monotonic() - started < 5


def test_devices_and_broken_links_are_refused(tmp_path: Path) -> None:
    if os.path.exists("/dev/null"):
        with pytest.raises(InputError, match=r"^/dev/null: not a regular file \(character device\)$"):
            VideoSource().open("/dev/null")
    broken = tmp_path / "broken.mp4"
    broken.symlink_to(tmp_path / "nowhere.mp4")
    with pytest.raises(InputError, match="broken symbolic link"):
        VideoSource().open(str(broken))


# ---------------------------------------------------------------------------------------------
# A stalled decode ends with a clear error


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_stalled_decode_is_stopped(clips: dict[str, Path], tmp_path: Path) -> None:
    """ffmpeg reads a FIFO (under a harmless name) that delivers part of a stream and then nothing."""
    fifo_dir = tmp_path / "fifo"
    fifo_dir.mkdir()
    os.mkfifo(fifo_dir / "input.y4m")
    data = clips["y4m"].read_bytes()
    release = threading.Event()

    def writer() -> None:
        try:
            with open(fifo_dir / "input.y4m", "wb") as pipe:  # blocks until ffmpeg opens it
                pipe.write(data[: len(data) * 2 // 3])  # about 66 of the 100 frames
                pipe.flush()
                release.wait(20)  # the stall: stays open, writes nothing more
        except OSError:
            pass  # ffmpeg was killed: broken pipe

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    exe = ffmpeg_exe()
    with open_input(str(clips["y4m"])) as regular:
        probe = probe_file(exe, regular)
    stream = probe.main_video
    assert stream is not None
    plan = plan_decode(exe, "file:input.y4m", probe, stream, Sampling())
    target = MediaInput(str(fifo_dir / "input.y4m"), "file:input.y4m", directory=str(fifo_dir))  # removed at close
    reader = VideoReader("stalling.y4m", _media_info("stalling.y4m", probe, stream, plan), probe, stream, plan,
                         target=target, stall_timeout=1.0)
    frames: list[Frame] = []
    started = time.monotonic()
    try:
        with pytest.raises(InputError) as caught:
            for frame in reader:
                frames.append(frame)
    finally:
        release.set()
        reader.close()
        thread.join(5)
    elapsed = time.monotonic() - started
    assert 30 < len(frames) < 67, "the part that arrived should have been delivered"
    assert caught.value.reason == f"decoding stalled: no frame for 1 s after frame {frames[-1].index}"
    assert elapsed < 8
    assert reader.pid is None


def test_slow_consumer_is_not_a_stall(clips: dict[str, Path]) -> None:
    reader = VideoSource(stall_timeout=0.3).open(str(clips["hd"]))  # frames larger than the pipe
    count = 0
    with reader:
        for _ in reader:
            count += 1
            if count in (1, 3):
                time.sleep(0.8)  # scoring slower than the timeout: ffmpeg waits on a full pipe, not stalled
    assert count == 5


def test_stall_timeout_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(STALL_ENV_VAR, raising=False)
    assert VideoSource().stall_timeout == 60.0
    monkeypatch.setenv(STALL_ENV_VAR, "2.5")
    assert VideoSource().stall_timeout == 2.5
    assert VideoSource(stall_timeout=7).stall_timeout == 7.0
    monkeypatch.setenv(STALL_ENV_VAR, "soon")
    with pytest.raises(UsageError, match=STALL_ENV_VAR):
        VideoSource()
    with pytest.raises(UsageError):
        VideoSource(stall_timeout=0)

"""Animated GIF, WebP and PNG (APNG) through the ``images`` source: every frame, timed and sampled like video.

All animations are made here with Pillow, in tmp dirs, with known colours and per-frame delays.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import math
import random
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import qplug
from qplug.errors import InputError
from qplug.types import Frame, MediaInfo, Sampling
from qplug_images import animation
from qplug_images.animation import DEFAULT_DELAY_MS, Selector, frame_seconds
from qplug_images.source import ImageSource

RED, GREEN, BLUE, YELLOW, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (255, 255, 255)
COLOURS = [RED, GREEN, BLUE, YELLOW]
DELAYS_MS = [100, 200, 0, 50]  # the 0 is shown for 100 ms, as browsers do
SHOWN = [0.1, 0.2, 0.1, 0.05]
STARTS = [0.0, 0.1, 0.3, 0.4]
TOTAL = 0.45

#: Pillow's writer options per container (lossless WebP so colours come back exactly).
FORMATS: dict[str, dict[str, Any]] = {"gif": {}, "webp": {"lossless": True}, "png": {}}
CONTAINERS = {"gif": "GIF", "webp": "WEBP", "png": "PNG"}


def make_animation(path: Path, colours: list[tuple[int, int, int]] = COLOURS, delays: list[int] | int = DELAYS_MS,
                   size: tuple[int, int] = (16, 8), **options: Any) -> Path:
    frames = [Image.new("RGB", size, colour) for colour in colours]
    extra = {**FORMATS[path.suffix[1:]], **options}
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=delays, loop=0, **extra)
    return path


def read(path: Path, **sampling: Any) -> tuple[MediaInfo, list[Frame]]:
    with ImageSource().open(path, Sampling(**sampling)) as reader:
        frames = list(reader)
        return reader.info, frames


def colour_of(frame: Frame) -> tuple[int, int, int]:
    rgb = frame.rgb
    assert (rgb == rgb[0, 0]).all(), "expected a solid frame"
    return tuple(int(v) for v in rgb[0, 0])  # type: ignore[return-value]


def summary(frames: list[Frame]) -> list[tuple[int, float | None, float | None]]:
    return [(f.index, f.pts, f.duration) for f in frames]


@pytest.fixture(params=sorted(FORMATS))
def ext(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# ---------------------------------------------------------------------------------------------
# every frame, with its own time


def test_every_frame_with_its_own_time(tmp_path: Path, ext: str) -> None:
    path = make_animation(tmp_path / f"anim.{ext}")
    with ImageSource().open(path, Sampling()) as reader:
        info = reader.info
        assert (info.kind, info.container, info.codec) == ("video", CONTAINERS[ext], None)
        assert (info.width, info.height) == (16, 8)
        assert info.frame_count == 4 and info.bit_depth == 8
        assert info.fps is None and info.duration is None  # not known before the frames are read
        frames = list(reader)
    assert [f.index for f in frames] == [0, 1, 2, 3]
    assert [f.pts for f in frames] == pytest.approx(STARTS)
    assert [f.duration for f in frames] == pytest.approx(SHOWN)
    assert [colour_of(f) for f in frames] == COLOURS
    assert all(f.timecode is None and f.source_id == str(path) for f in frames)
    assert all((f.width, f.height) == (16, 8) and f.rgb.shape == (8, 16, 3) for f in frames)
    assert all(f.rgb.dtype == np.uint8 and f.rgb.flags["C_CONTIGUOUS"] and f.rgb.flags["WRITEABLE"] for f in frames)
    assert info.duration == pytest.approx(TOTAL) and info.fps == pytest.approx(4 / TOTAL)
    assert info.frame_count == 4 and info.warnings == []


def test_gif_red_green_blue_in_order(tmp_path: Path) -> None:
    path = make_animation(tmp_path / "rgb.gif", [RED, GREEN, BLUE], delays=[40, 40, 40])
    info, frames = read(path)
    assert [colour_of(f) for f in frames] == [RED, GREEN, BLUE]
    assert [f.pts for f in frames] == pytest.approx([0.0, 0.04, 0.08])
    assert info.pix_fmt == "P"


def test_frames_drawn_as_changes_are_composed(tmp_path: Path) -> None:
    # Pillow writes frames 1 and 2 as small patches over the frame before: only composing gives
    # the pictures that were saved.
    first = Image.new("RGB", (32, 32), RED)
    second = first.copy()
    second.paste(GREEN, (4, 4, 12, 12))
    third = second.copy()
    third.paste(BLUE, (20, 20, 28, 28))
    path = tmp_path / "patches.gif"
    first.save(path, save_all=True, append_images=[second, third], duration=100)
    with Image.open(path) as im:
        im.seek(2)
        assert im.tile[0][1] != (0, 0, 32, 32)  # really stored as a patch
    _, frames = read(path)
    for frame, expected in zip(frames, (first, second, third)):
        assert np.array_equal(frame.rgb, np.asarray(expected))


@pytest.mark.parametrize(("disposal", "red_stays"), [(1, True), (2, False)])
def test_gif_transparency_and_disposal(tmp_path: Path, disposal: int, red_stays: bool) -> None:
    first = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    first.paste(RED + (255,), (0, 0, 10, 10))
    second = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    second.paste(BLUE + (255,), (20, 20, 30, 30))
    path = tmp_path / f"disposal{disposal}.gif"
    first.save(path, save_all=True, append_images=[second], duration=100, disposal=disposal)
    info, (one, two) = read(path)
    assert tuple(one.rgb[5, 5]) == RED and tuple(one.rgb[25, 25]) == WHITE  # transparent: over white
    assert tuple(two.rgb[25, 25]) == BLUE and tuple(two.rgb[15, 15]) == WHITE
    assert tuple(two.rgb[5, 5]) == (RED if red_stays else WHITE)
    assert "transparent pixels composited over white" in info.warnings


def test_apng_default_image_outside_the_animation_is_not_shown(tmp_path: Path) -> None:
    path = tmp_path / "default.png"
    fallback, *shown = [Image.new("RGB", (8, 8), c) for c in (WHITE, RED, GREEN, BLUE)]
    # With default_image, Pillow's durations are those of the appended (animated) frames.
    fallback.save(path, save_all=True, append_images=shown, duration=[100, 200, 300], default_image=True)
    with Image.open(path) as im:
        assert im.info.get("default_image") and im.n_frames == 4  # Pillow counts the default image
    info, frames = read(path)
    assert [colour_of(f) for f in frames] == [RED, GREEN, BLUE]
    assert summary(frames) == [(0, 0.0, 0.1), (1, 0.1, 0.2), (2, 0.3, 0.3)]
    assert info.frame_count == 3


# ---------------------------------------------------------------------------------------------
# delays


@pytest.mark.parametrize(("delay", "seconds"), [
    (None, 0.1), (0, 0.1), (10, 0.1), (5.0, 0.1), (11, 0.011), (20, 0.02), (40, 0.04), (1000, 1.0),
    ("odd", 0.1), (float("nan"), 0.1), (-30, 0.1),
])
def test_frame_seconds_follows_browsers(delay: object, seconds: float) -> None:
    assert frame_seconds(delay) == pytest.approx(seconds)
    assert DEFAULT_DELAY_MS == 100


def test_zero_short_and_missing_delays_are_100ms(tmp_path: Path) -> None:
    zero = make_animation(tmp_path / "zero.gif", [RED, GREEN, BLUE], delays=[0, 10, 20])
    _, frames = read(zero)
    assert [f.duration for f in frames] == pytest.approx([0.1, 0.1, 0.02])
    assert [f.pts for f in frames] == pytest.approx([0.0, 0.1, 0.2])
    missing = tmp_path / "missing.gif"
    red, green = Image.new("RGB", (4, 4), RED), Image.new("RGB", (4, 4), GREEN)
    red.save(missing, save_all=True, append_images=[green])  # no duration: no delay stored
    with Image.open(missing) as im:
        assert "duration" not in im.info
    _, frames = read(missing)
    assert summary(frames) == [(0, 0.0, 0.1), (1, 0.1, 0.1)]


def test_times_do_not_drift_over_many_frames(tmp_path: Path) -> None:
    path = make_animation(tmp_path / "long.gif", [RED, GREEN] * 150, delays=30, size=(2, 2))
    _, frames = read(path, every=50)
    assert [f.pts for f in frames] == [round(i * 0.03, 6) for i in range(0, 300, 50)]
    assert all(f.duration == pytest.approx(1.5) for f in frames)


# ---------------------------------------------------------------------------------------------
# sampling


def test_every_nth_keeps_true_indices_and_covers_the_skipped_frames(tmp_path: Path, ext: str) -> None:
    path = make_animation(tmp_path / f"anim.{ext}")
    _, frames = read(path, every=2)
    assert [f.index for f in frames] == [0, 2]
    assert [colour_of(f) for f in frames] == [RED, BLUE]
    assert [f.pts for f in frames] == pytest.approx([0.0, 0.3])
    assert [f.duration for f in frames] == pytest.approx([0.3, 0.15])
    _, third = read(path, every=3)
    assert [f.index for f in third] == [0, 3] and [f.duration for f in third] == pytest.approx([0.4, 0.05])
    _, late = read(path, every=2, start=0.1)  # counted from the first frame in the window, like video
    assert [f.index for f in late] == [1, 3]


def test_fps_delivers_the_frame_on_screen_at_each_step(tmp_path: Path, ext: str) -> None:
    path = make_animation(tmp_path / f"anim.{ext}")
    _, frames = read(path, fps=10)
    # Steps 0, .1, .2, .3, .4: frame 1 is on screen at .1 and .2 and is delivered once, for both.
    assert summary(frames) == [(0, 0.0, 0.1), (1, 0.1, 0.2), (2, 0.3, 0.1), (3, 0.4, 0.05)]
    _, slow = read(path, fps=4)  # steps 0 and .25; frames 2 and 3 fall between steps
    assert summary(slow) == [(0, 0.0, 0.25), (1, 0.25, 0.2)]
    assert [colour_of(f) for f in slow] == [RED, GREEN]


def on_screen_reference(starts: list[float], shown: list[float], fps: float, start: float,
                        end: float) -> list[tuple[int, float]]:
    """Brute force: at each k/fps in [start, end) before the end, the frame on screen, each frame once."""
    total = starts[-1] + shown[-1]
    picked: list[tuple[int, float]] = []
    k = 0
    while k / fps < min(total, end) - 1e-9:
        t = k / fps
        if t >= start - 1e-9:
            index = max(i for i, s in enumerate(starts) if s <= t + 1e-9)
            if not picked or picked[-1][0] != index:
                picked.append((index, round(t, 6)))
        k += 1
    return picked


@pytest.mark.parametrize("seed", range(6))
def test_fps_matches_a_brute_force_reference(seed: int) -> None:
    rng = random.Random(seed)
    delays = [rng.choice([20, 30, 50, 70, 100, 120, 250, 500]) for _ in range(rng.randint(2, 25))]
    shown = [frame_seconds(d) for d in delays]
    starts = [round(sum(shown[:i]), 6) for i in range(len(shown))]
    fps = rng.choice([1.0, 3.0, 7.5, 10.0, 24.0, 30000 / 1001])
    start = rng.choice([0.0, 0.0, 0.15, 0.4])
    end = rng.choice([math.inf, 0.9, 2.5])
    sampling = Sampling(fps=fps, start=start or None, end=None if end == math.inf else end)
    selector = Selector(sampling)
    picked = []
    for index, (pts, delay) in enumerate(zip(starts, shown)):
        if selector.past_end(pts):
            break
        offered = selector.offer(pts, delay)
        if isinstance(offered, animation.Pick):
            picked.append((index, round(offered.pts, 6)))
    assert picked == on_screen_reference(starts, shown, fps, start, end)


def test_start_and_end_select_on_pts(tmp_path: Path, ext: str) -> None:
    path = make_animation(tmp_path / f"anim.{ext}")
    assert [f.index for f in read(path, start=0.2)[1]] == [2, 3]
    assert [f.index for f in read(path, end=0.3)[1]] == [0, 1]
    assert [f.index for f in read(path, start=0.1, end=0.4)[1]] == [1, 2]
    assert [f.pts for f in read(path, start=0.1, end=0.4)[1]] == pytest.approx([0.1, 0.3])
    assert summary(read(path, fps=10, start=0.25, end=0.45)[1]) == [(2, 0.3, 0.1), (3, 0.4, 0.05)]


def test_start_past_the_end_is_an_input_error(tmp_path: Path) -> None:
    path = make_animation(tmp_path / "anim.gif")
    with pytest.raises(InputError, match="past the end"):
        read(path, start=5.0)


def test_max_frames_caps_and_stops_decoding(tmp_path: Path, ext: str, monkeypatch: pytest.MonkeyPatch) -> None:
    path = make_animation(tmp_path / f"anim.{ext}", COLOURS * 5, delays=50)
    visited: list[int] = []
    goto = animation._goto
    monkeypatch.setattr(animation, "_goto", lambda opened, frame: (visited.append(frame), goto(opened, frame))[1])
    info, frames = read(path, max_frames=2)
    assert [f.index for f in frames] == [0, 1] and [colour_of(f) for f in frames] == [RED, GREEN]
    assert max(visited) <= 2  # not the 20 frames of the file
    assert info.duration is None  # the end was never reached


def test_max_side_applies_to_every_frame(tmp_path: Path, ext: str) -> None:
    path = make_animation(tmp_path / f"big.{ext}", size=(64, 32))
    info, frames = read(path, max_side=16)
    assert all((f.width, f.height) == (16, 8) and f.rgb.shape == (8, 16, 3) for f in frames)
    assert [colour_of(f) for f in frames] == COLOURS
    assert (info.width, info.height) == (64, 32)  # MediaInfo keeps the native size


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_single_frame_files_stay_stills(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"one.{fmt}"
    Image.new("RGB", (8, 8), RED).save(path, save_all=True, duration=[70], **FORMATS[fmt])
    info, frames = read(path, fps=5.0, start=3.0)  # sampling fields other than max_side do not apply
    assert info.kind == "image" and info.frame_count == 1
    [frame] = frames
    assert (frame.index, frame.pts, frame.duration, frame.timecode) == (0, None, None, None)
    assert colour_of(frame) == RED


# ---------------------------------------------------------------------------------------------
# memory and laziness


def test_frames_are_decoded_one_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = make_animation(tmp_path / "many.gif", COLOURS * 250, delays=20, size=(48, 48))  # 1000 frames
    visited: list[int] = []
    goto = animation._goto
    monkeypatch.setattr(animation, "_goto", lambda opened, frame: (visited.append(frame), goto(opened, frame))[1])
    reader = ImageSource().open(path, Sampling())
    frames = iter(reader)
    first = next(frames)
    assert first.index == 0 and max(visited) <= 1  # the first frame comes before the rest are read
    tracemalloc.start()
    try:
        count = 1
        first.release()
        for frame in frames:
            assert frame.rgb.shape == (48, 48, 3)
            frame.release()  # a scored frame, as the pipeline drops it
            count += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        reader.close()
    assert count == 1000
    assert peak < 100 * 48 * 48 * 3  # a few frames' worth at a time, not the 6.9 MB of all of them


def test_released_frame_is_read_again_from_the_file(tmp_path: Path, ext: str) -> None:
    path = make_animation(tmp_path / f"anim.{ext}")
    _, frames = read(path, max_side=16)
    third = frames[2]
    third.release()
    assert colour_of(third) == BLUE  # decoded again: frames 0..2 composed anew


def test_reader_iterates_again_and_closes_midway(tmp_path: Path) -> None:
    path = make_animation(tmp_path / "anim.gif")
    reader = ImageSource().open(path, Sampling())
    assert [f.index for f in reader] == [0, 1, 2, 3]
    running = iter(reader)  # again, from the start of the file
    assert next(running).index == 0
    reader.close()
    assert list(running) == []
    reader.close()
    with pytest.raises(ValueError, match="closed"):
        iter(reader)


def test_truncated_animation_fails_after_the_good_frames(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    frames = [Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)) for _ in range(6)]
    path = tmp_path / "cut.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    reader = ImageSource().open(path, Sampling())
    delivered: list[int] = []
    with pytest.raises(InputError) as error:
        for frame in reader:
            delivered.append(frame.index)
    reader.close()
    assert delivered and delivered == list(range(len(delivered)))
    assert error.value.reason.startswith(f"decoding stopped after {len(delivered)} frames: image data is")
    assert "\n" not in error.value.reason


def test_canvas_over_the_pixel_limit_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = make_animation(tmp_path / "anim.gif", size=(20, 20))
    monkeypatch.setenv("QPLUG_MAX_IMAGE_PIXELS", "399")
    with pytest.raises(InputError, match="decompression-bomb limit of 399 pixels"):
        ImageSource().open(path, Sampling())


# ---------------------------------------------------------------------------------------------
# through qplug


def test_scoring_an_animated_gif_gives_one_result_per_frame(tmp_path: Path) -> None:
    path = make_animation(tmp_path / "anim.gif")
    result = qplug.score(str(path), scorers=["sharpness"])
    assert [(f.index, f.pts) for f in result.frames] == [(0, 0.0), (1, 0.1), (2, 0.3), (3, 0.4)]
    assert all(f.scores.get("sharpness") is not None for f in result.frames)
    [source] = result.sources
    assert source.ok and source.frames == 4
    assert source.media is not None and source.media.kind == "video" and source.media.duration == pytest.approx(TOTAL)
    sampled = qplug.score(str(path), scorers=["sharpness"], every=2)
    assert [f.index for f in sampled.frames] == [0, 2]


# ---------------------------------------------------------------------------------------------
# the plugin-author contract, on animated input

import qplug_images  # noqa: E402
from qplug.testing.conformance import SourceConformance  # noqa: E402


class TestAnimatedGifConformance(SourceConformance):
    plugin = qplug_images
    source_name = "images"

    def make_sample(self, tmp_path: Any) -> Path:
        return make_animation(Path(tmp_path) / "sample.gif", size=(40, 30))

    def make_broken(self, tmp_path: Any) -> Path:
        path = make_animation(Path(tmp_path) / "broken.gif", size=(40, 30))
        path.write_bytes(path.read_bytes()[:20])
        return path


class TestAnimatedWebpConformance(TestAnimatedGifConformance):
    def make_sample(self, tmp_path: Any) -> Path:
        return make_animation(Path(tmp_path) / "sample.webp", size=(40, 30))

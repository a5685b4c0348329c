"""The built-in ``images`` source: every pixel format it converts and every bad input it refuses.

All images are made here, in tmp dirs, with Pillow (or by hand, for headers Pillow will not write).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import contextlib
import resource
import socket
import struct
import subprocess
import sys
import threading
import time
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageFile, ImageOps

import qplug_images
from qplug.errors import InputError, UsageError
from qplug.registry import SourceInfo, resolve
from qplug.types import Frame, MediaInfo, Sampling
from qplug_images import decode, limits
from qplug_images.convert import ALPHA_BACKGROUND
from qplug_images.source import ImageReader, ImageSource

RED, BLUE, WHITE, BLACK = (255, 0, 0), (0, 0, 255), (255, 255, 255), (0, 0, 0)


# ---------------------------------------------------------------------------------------------
# helpers


def open_one(path: Path | str, max_side: int | None = None) -> tuple[MediaInfo, Frame]:
    """Open ``path`` and return its info and its single frame, checking the frame's invariants."""
    reader = ImageSource().open(path, Sampling(max_side=max_side))
    try:
        frames = list(reader)
    finally:
        reader.close()
    assert len(frames) == 1
    frame = frames[0]
    rgb = frame.rgb
    assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
    assert rgb.flags["C_CONTIGUOUS"]
    assert (frame.height, frame.width) == rgb.shape[:2]
    assert frame.index == 0 and frame.pts is None and frame.timecode is None
    assert reader.info.kind == "image" and reader.info.frame_count == 1 and reader.info.codec is None
    return reader.info, frame


def pixels(path: Path, max_side: int | None = None) -> np.ndarray:
    return open_one(path, max_side)[1].rgb


def assert_colour(actual: Any, expected: tuple[int, int, int], tol: int = 0) -> None:
    diff = np.abs(np.asarray(actual, dtype=int) - np.asarray(expected, dtype=int))
    assert diff.max() <= tol, f"{tuple(int(v) for v in actual)} is not {expected} (+-{tol})"


def halves(width: int, height: int, left: tuple[int, int, int], right: tuple[int, int, int]) -> Image.Image:
    im = Image.new("RGB", (width, height), right)
    im.paste(left, (0, 0, width // 2, height))
    return im


def open_error(path: Path | str, max_side: int | None = None) -> InputError:
    with pytest.raises(InputError) as info:
        ImageSource().open(path, Sampling(max_side=max_side))
    error = info.value
    assert error.path == os.fspath(path)
    assert "\n" not in error.reason and error.reason
    return error


def png_bytes(width: int, height: int, bit_depth: int, colour_type: int, raw: bytes, idat: bytes | None = None) -> bytes:
    """A PNG written by hand: signature, IHDR, one IDAT holding ``raw`` (filter bytes included), IEND.

    ``idat`` replaces the compressed data as is (to write a broken stream).
    """

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw) if idat is None else idat)
            + chunk(b"IEND", b""))


def noise_jpeg(path: Path, size: int = 64) -> bytes:
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path, "JPEG", quality=90)
    return path.read_bytes()


# ---------------------------------------------------------------------------------------------
# registration


def test_registers_the_images_source() -> None:
    registered: list[SourceInfo] = []
    qplug_images.register_sources(registered.append)
    [info] = registered
    assert info.name == "images" and info.kind == "image" and info.description
    assert info.extensions == (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif", ".avif")
    assert resolve(info.factory) is ImageSource


def test_importing_the_plugin_does_not_import_pixel_libraries() -> None:
    code = ("import sys, qplug.hookspecs, qplug.registry; before = set(sys.modules); import qplug_images; "
            "print(sorted({m.split('.')[0] for m in set(sys.modules) - before} & {'PIL', 'numpy', 'cv2'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------------------------------------
# what a good file gives


def test_rgb_png_info_and_frame(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    halves(30, 10, RED, BLUE).save(path)
    info, frame = open_one(path)
    assert info == MediaInfo(source_id=str(path), kind="image", container="PNG", codec=None, width=30,
                             height=10, frame_count=1, pix_fmt="RGB", bit_depth=8, warnings=[])
    assert frame.source_id == str(path) and frame.pix_fmt == "RGB" and frame.bit_depth == 8
    assert frame.rgb.shape == (10, 30, 3)
    assert_colour(frame.rgb[5, 2], RED)
    assert_colour(frame.rgb[5, 27], BLUE)
    assert frame.rgb.flags["WRITEABLE"]


def test_one_by_one_image_works(tmp_path: Path) -> None:
    path = tmp_path / "dot.png"
    Image.new("RGB", (1, 1), (10, 20, 30)).save(path)
    info, frame = open_one(path, max_side=16)
    assert frame.rgb.shape == (1, 1, 3) and (info.width, info.height) == (1, 1)
    assert_colour(frame.rgb[0, 0], (10, 20, 30))


def test_accepts_a_path_object_and_a_misnamed_file(tmp_path: Path) -> None:
    path = tmp_path / "really-a-png.jpg"
    Image.new("RGB", (4, 4), RED).save(path, "PNG")
    info, frame = open_one(path)
    assert info.container == "PNG" and frame.source_id == str(path)


@pytest.mark.parametrize(("name", "fmt", "options", "container", "tol"), [
    ("a.jpg", "JPEG", {"quality": 95}, "JPEG", 12),
    ("a.webp", "WEBP", {"lossless": True}, "WEBP", 0),
    ("a.bmp", "BMP", {}, "BMP", 0),
    ("a.tif", "TIFF", {}, "TIFF", 0),
    ("a.tiff", "TIFF", {"compression": "tiff_deflate"}, "TIFF", 0),
    ("a.gif", "GIF", {}, "GIF", 0),
])
def test_formats(tmp_path: Path, name: str, fmt: str, options: dict[str, Any], container: str, tol: int) -> None:
    path = tmp_path / name
    halves(32, 16, RED, BLUE).save(path, fmt, **options)
    info, frame = open_one(path)
    assert info.container == container and (info.width, info.height) == (32, 16)
    assert_colour(frame.rgb[8, 4], RED, tol)
    assert_colour(frame.rgb[8, 28], BLUE, tol)


def test_camera_mpo_jpeg_gives_its_main_picture(tmp_path: Path) -> None:
    path = tmp_path / "camera.jpg"
    Image.new("RGB", (8, 8), RED).save(path, "MPO", save_all=True, append_images=[Image.new("RGB", (8, 8), BLUE)])
    info, frame = open_one(path)
    assert info.container == "MPO"
    assert_colour(frame.rgb[4, 4], RED, 12)
    assert any("only the first" in note for note in info.warnings)


# ---------------------------------------------------------------------------------------------
# EXIF orientation


@pytest.mark.parametrize(("orientation", "shape", "red_at", "blue_at"), [
    (1, (20, 40), (10, 5), (10, 35)),   # as stored: red left
    (3, (20, 40), (10, 35), (10, 5)),   # 180 degrees: red right
    (6, (40, 20), (5, 10), (35, 10)),   # 90 clockwise: the left edge goes to the top
    (8, (40, 20), (35, 10), (5, 10)),   # 90 anticlockwise: the left edge goes to the bottom
])
def test_exif_orientation_is_applied(tmp_path: Path, orientation: int, shape: tuple[int, int],
                                     red_at: tuple[int, int], blue_at: tuple[int, int]) -> None:
    path = tmp_path / f"o{orientation}.jpg"
    exif = Image.Exif()
    exif[0x0112] = orientation
    halves(40, 20, RED, BLUE).save(path, "JPEG", quality=95, exif=exif)
    info, frame = open_one(path)
    assert frame.rgb.shape[:2] == shape
    assert (info.height, info.width) == shape
    assert_colour(frame.rgb[red_at], RED, 12)
    assert_colour(frame.rgb[blue_at], BLUE, 12)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_matches_pillow(tmp_path: Path, orientation: int) -> None:
    path = tmp_path / f"o{orientation}.png"  # lossless, so the comparison is exact
    exif = Image.Exif()
    exif[0x0112] = orientation
    rng = np.random.default_rng(orientation)
    Image.fromarray(rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)).save(path, exif=exif)
    with Image.open(path) as im:
        expected = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    info, frame = open_one(path)
    assert np.array_equal(frame.rgb, expected)
    assert (info.height, info.width) == expected.shape[:2]


def test_exif_orientation_with_max_side(tmp_path: Path) -> None:
    path = tmp_path / "o6.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6
    halves(400, 200, RED, BLUE).save(path, "JPEG", quality=95, exif=exif)
    info, frame = open_one(path, max_side=40)
    assert frame.rgb.shape == (40, 20, 3) and (info.width, info.height) == (200, 400)
    assert_colour(frame.rgb[5, 10], RED, 12)
    assert_colour(frame.rgb[35, 10], BLUE, 12)


# ---------------------------------------------------------------------------------------------
# pixel formats


def test_grayscale_l(tmp_path: Path) -> None:
    path = tmp_path / "l.png"
    Image.fromarray(np.array([[0, 100, 255]], dtype=np.uint8)).save(path)
    info, frame = open_one(path)
    assert info.pix_fmt == "L" and info.bit_depth == 8
    assert frame.rgb[0].tolist() == [[0, 0, 0], [100, 100, 100], [255, 255, 255]]


def test_one_bit(tmp_path: Path) -> None:
    path = tmp_path / "bw.png"
    im = Image.new("1", (8, 2), 0)
    im.paste(1, (4, 0, 8, 2))
    im.save(path)
    info, frame = open_one(path)
    assert info.pix_fmt == "1" and info.bit_depth == 1 and frame.pix_fmt == "1" and frame.bit_depth == 1
    assert_colour(frame.rgb[0, 0], BLACK)
    assert_colour(frame.rgb[1, 7], WHITE)


SIXTEEN = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)
SIXTEEN_AS_8 = [0, 1, 128, 255]  # a clip to 255 would give [0, 255, 255, 255]


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_16bit_gray_is_scaled_not_clipped(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"g16.{fmt.lower()}"
    Image.fromarray(SIXTEEN).save(path, fmt)
    info, frame = open_one(path)
    assert info.pix_fmt.startswith("I;16") and info.bit_depth == 16
    assert frame.pix_fmt == info.pix_fmt and frame.bit_depth == 16
    assert frame.rgb[0, :, 0].tolist() == SIXTEEN_AS_8
    assert (frame.rgb[..., 0] == frame.rgb[..., 2]).all()


def test_16bit_rgb_png(tmp_path: Path) -> None:
    row = b"\x00" + struct.pack(">HHH", 65535, 32896, 0) + struct.pack(">HHH", 257, 0, 65535)
    path = tmp_path / "rgb16.png"
    path.write_bytes(png_bytes(2, 1, 16, 2, row))
    info, frame = open_one(path)
    assert info.bit_depth == 16 and info.pix_fmt == "RGB"
    assert frame.rgb[0].tolist() == [[255, 128, 0], [1, 0, 255]]


def test_16bit_rgb_tiff(tmp_path: Path) -> None:
    import cv2

    rgb16 = np.zeros((2, 3, 3), dtype=np.uint16)
    rgb16[..., 0], rgb16[..., 1] = 65535, 32896
    path = tmp_path / "rgb16.tif"
    assert cv2.imwrite(str(path), rgb16[..., ::-1].copy())  # OpenCV writes BGR
    info, frame = open_one(path)
    assert info.bit_depth == 16 and info.container == "TIFF"
    assert_colour(frame.rgb[1, 2], (255, 128, 0))


def test_32bit_integer_tiff(tmp_path: Path) -> None:
    in_16bit_range = tmp_path / "i16.tif"
    Image.fromarray(SIXTEEN.astype(np.int32)).save(in_16bit_range)
    info, frame = open_one(in_16bit_range)
    assert info.pix_fmt == "I" and info.bit_depth == 32
    assert frame.rgb[0, :, 1].tolist() == SIXTEEN_AS_8

    wider = tmp_path / "i32.tif"
    Image.fromarray(np.array([[-1000, 0, 1000]], dtype=np.int32)).save(wider)
    info, frame = open_one(wider)
    assert frame.rgb[0, :, 0].tolist() == [0, 128, 255]
    assert any("stretched" in note for note in info.warnings)


def test_float_tiff(tmp_path: Path) -> None:
    path = tmp_path / "f.tif"
    Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32)).save(path)
    info, frame = open_one(path)
    assert info.pix_fmt == "F" and info.bit_depth == 32
    assert frame.rgb[0, :, 0].tolist() == [0, 128, 255]


def test_palette_without_transparency(tmp_path: Path) -> None:
    path = tmp_path / "p.png"
    im = Image.new("P", (4, 1), 0)
    im.putpalette([*RED, *BLUE])
    im.paste(1, (2, 0, 4, 1))
    im.save(path)
    info, frame = open_one(path)
    assert info.pix_fmt == "P" and info.warnings == []
    assert frame.rgb[0].tolist() == [list(RED)] * 2 + [list(BLUE)] * 2


def test_alpha_background_is_white() -> None:
    assert ALPHA_BACKGROUND == WHITE


@pytest.mark.parametrize(("mode", "colour", "expected"), [
    ("RGBA", (255, 0, 0, 0), WHITE),
    ("RGBA", (0, 0, 0, 255), BLACK),
    ("RGBA", (255, 0, 0, 128), (255, 127, 127)),
    ("LA", (0, 0), WHITE),
    ("LA", (0, 255), BLACK),
    ("LA", (0, 128), (127, 127, 127)),
])
def test_alpha_is_composited_over_white(tmp_path: Path, mode: str, colour: tuple[int, ...],
                                        expected: tuple[int, int, int]) -> None:
    path = tmp_path / "alpha.png"
    Image.new(mode, (3, 3), colour).save(path)
    info, frame = open_one(path)
    assert info.pix_fmt == mode
    assert_colour(frame.rgb[1, 1], expected, tol=1)
    assert ("transparent pixels composited over white" in info.warnings) == (colour[-1] < 255)


def test_palette_png_with_transparency(tmp_path: Path) -> None:
    path = tmp_path / "pt.png"
    im = Image.new("P", (4, 1), 0)
    im.putpalette([*BLACK, *BLUE])
    im.paste(1, (2, 0, 4, 1))
    im.save(path, transparency=0)
    info, frame = open_one(path)
    assert info.pix_fmt == "P"
    assert frame.rgb[0].tolist() == [list(WHITE)] * 2 + [list(BLUE)] * 2


def test_gif_with_transparency(tmp_path: Path) -> None:
    path = tmp_path / "t.gif"
    im = Image.new("RGBA", (4, 2), (0, 0, 0, 0))
    im.paste((255, 0, 0, 255), (2, 0, 4, 2))
    im.save(path)
    _, frame = open_one(path)
    assert_colour(frame.rgb[0, 0], WHITE)
    assert_colour(frame.rgb[1, 3], RED)


def test_multipage_tiff_gives_the_first_page_only(tmp_path: Path) -> None:
    # Pages are other pictures, not an animation (animated GIF/WebP/PNG: tests/test_image_animation.py).
    path = tmp_path / "pages.tif"
    first, second = Image.new("RGB", (8, 8), RED), Image.new("RGB", (8, 8), BLUE)
    first.save(path, save_all=True, append_images=[second])
    info, frame = open_one(path)
    assert info.frame_count == 1
    assert_colour(frame.rgb[4, 4], RED)
    assert any("only the first" in note for note in info.warnings)


@pytest.mark.parametrize("fmt", ["JPEG", "TIFF"])
def test_cmyk(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"cmyk.{fmt.lower()}"
    im = Image.new("CMYK", (16, 8), (0, 0, 0, 255))       # K only: black
    im.paste((0, 255, 255, 0), (8, 0, 16, 8))              # magenta + yellow: red
    # Pillow writes CMYK JPEGs Adobe-style (APP14, inverted values); reading must undo that.
    im.save(path, fmt)
    info, frame = open_one(path)
    assert info.pix_fmt == "CMYK"
    if fmt == "JPEG":
        assert Image.open(path).info.get("adobe") is not None
    assert_colour(frame.rgb[4, 2], BLACK, 12)
    assert_colour(frame.rgb[4, 13], RED, 12)


# ---------------------------------------------------------------------------------------------
# max_side


def test_max_side_downscales_keeping_aspect(tmp_path: Path) -> None:
    path = tmp_path / "wide.png"
    halves(400, 100, RED, BLUE).save(path)
    info, frame = open_one(path, max_side=64)
    assert frame.rgb.shape == (16, 64, 3) and (frame.width, frame.height) == (64, 16)
    assert (info.width, info.height) == (400, 100)  # the native size, not the delivered one
    assert_colour(frame.rgb[8, 4], RED, 2)
    assert_colour(frame.rgb[8, 60], BLUE, 2)


@pytest.mark.parametrize(("name", "mode"), [("rgba.png", "RGBA"), ("la.png", "LA"), ("p.gif", "P"), ("p.png", "P")])
def test_max_side_with_transparency_shrinks_then_composites_over_white(tmp_path: Path, name: str, mode: str) -> None:
    path = tmp_path / name  # left half opaque black, right half transparent blue
    if mode == "P":
        im = Image.new("P", (400, 100), 1)
        im.putpalette([*BLACK, *BLUE])
        im.paste(0, (0, 0, 200, 100))
        im.save(path, transparency=1)
    else:
        im = Image.new("RGBA", (400, 100), (0, 0, 255, 0))
        im.paste((0, 0, 0, 255), (0, 0, 200, 100))
        im.convert(mode).save(path)
    info, frame = open_one(path, max_side=64)
    assert info.pix_fmt == mode
    assert frame.rgb.shape == (16, 64, 3)
    assert_colour(frame.rgb[8, 4], BLACK, 2)
    assert_colour(frame.rgb[8, 60], WHITE, 2)
    assert "transparent pixels composited over white" in info.warnings


def test_max_side_never_enlarges(tmp_path: Path) -> None:
    path = tmp_path / "small.png"
    Image.new("RGB", (20, 10), RED).save(path)
    assert pixels(path, max_side=64).shape == (10, 20, 3)


def test_max_side_on_a_large_jpeg(tmp_path: Path) -> None:
    path = tmp_path / "big.jpg"
    halves(2000, 1000, RED, BLUE).save(path, "JPEG", quality=90)
    info, frame = open_one(path, max_side=100)
    assert frame.rgb.shape == (50, 100, 3) and (info.width, info.height) == (2000, 1000)
    assert_colour(frame.rgb[25, 10], RED, 12)
    assert_colour(frame.rgb[25, 90], BLUE, 12)


# ---------------------------------------------------------------------------------------------
# bad inputs


def test_missing_file(tmp_path: Path) -> None:
    assert open_error(tmp_path / "nope.png").reason == "file not found"


def test_directory(tmp_path: Path) -> None:
    folder = tmp_path / "dir.png"
    folder.mkdir()
    assert open_error(folder).reason == "not a regular file (directory)"


def open_error_within(path: Path | str, seconds: float = 10.0) -> InputError:
    """``open_error`` in a thread, so that a source blocking on the file fails the test instead of hanging it."""
    outcome: dict[str, Any] = {}

    def attempt() -> None:
        try:
            outcome["error"] = open_error(path)
        except BaseException as exc:  # an assertion from open_error: re-raised below
            outcome["failure"] = exc

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        with contextlib.suppress(OSError):  # unblock a reader stuck on a FIFO: a writer comes and goes
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        worker.join(5)
        pytest.fail(f"opening {path} blocked for more than {seconds:g} s")
    if "failure" in outcome:
        raise outcome["failure"]
    return outcome["error"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_fifo_is_refused_without_opening_it(tmp_path: Path) -> None:
    fifo = tmp_path / "x.jpg"
    os.mkfifo(fifo)
    started = time.perf_counter()
    assert open_error_within(fifo).reason == "not a regular file (FIFO)"
    assert time.perf_counter() - started < 2.0
    link = tmp_path / "link.png"  # decided on what the link points to
    link.symlink_to(fifo)
    assert open_error_within(link).reason == "not a regular file (FIFO)"


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="no /dev/null here")
def test_character_device_is_refused() -> None:
    assert open_error_within("/dev/null").reason == "not a regular file (character device)"


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="no Unix sockets here")
def test_socket_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.png"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(path))
        assert open_error_within(path).reason == "not a regular file (socket)"


def test_dangling_link_is_not_found(tmp_path: Path) -> None:
    link = tmp_path / "gone.png"
    link.symlink_to(tmp_path / "nothing-here.png")
    assert open_error(link).reason == "broken symbolic link (its target does not exist)"


def test_link_to_an_image_is_read(tmp_path: Path) -> None:
    target = tmp_path / "real.png"
    Image.new("RGB", (4, 4), RED).save(target)
    link = tmp_path / "link.png"
    link.symlink_to(target)
    assert_colour(pixels(link)[2, 2], RED)


def test_permission_denied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "locked.png"
    Image.new("RGB", (2, 2)).save(path)
    path.chmod(0)
    if os.access(path, os.R_OK):  # root reads anything: make open() fail the way it would for a user

        def refuse(*args: Any, **kwargs: Any) -> Any:
            raise PermissionError(13, "Permission denied", str(path))

        monkeypatch.setattr(os, "open", refuse)  # qplug.inputs.open_regular_file opens with os.open
    try:
        assert open_error(path).reason == "permission denied"
    finally:
        path.chmod(0o644)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    assert open_error(path).reason == "file is empty"


def test_text_file_named_png(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("this is not an image\n")
    assert "format not recognised" in open_error(path).reason


def test_postscript_is_not_handed_to_ghostscript(tmp_path: Path) -> None:
    path = tmp_path / "sneaky.png"
    path.write_text("%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n")
    assert "format not recognised" in open_error(path).reason


def test_truncated_jpeg(tmp_path: Path) -> None:
    path = tmp_path / "cut.jpg"
    data = noise_jpeg(path)
    path.write_bytes(data[: len(data) * 2 // 3])
    assert "truncated" in open_error(path).reason
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_truncated_png(tmp_path: Path) -> None:
    path = tmp_path / "cut.png"
    rng = np.random.default_rng(2)
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert "truncated" in open_error(path).reason


def test_corrupt_pixel_data(tmp_path: Path) -> None:
    path = tmp_path / "garbage.png"
    path.write_bytes(png_bytes(8, 8, 8, 0, b"", idat=b"this is not a zlib stream"))
    assert open_error(path).reason.startswith("image data is corrupt")


def test_huge_png_header_fails_fast_without_allocating(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(png_bytes(30000, 30000, 8, 0, b"\x00" * 16))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    started = time.perf_counter()
    reason = open_error(path).reason
    assert time.perf_counter() - started < 1.0
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000
    assert reason.startswith("image is 900000000 pixels") and "decompression-bomb limit" in reason


def test_pillow_warning_band_is_an_error_too(tmp_path: Path) -> None:
    # 12000 x 12000 = 144 M pixels: Pillow only warns (89 M..179 M); qplug refuses it.
    path = tmp_path / "big.png"
    path.write_bytes(png_bytes(12000, 12000, 8, 0, b"\x00" * 16))
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)  # none may leak out either
        reason = open_error(path).reason
    assert reason.startswith("image is 144000000 pixels (12000x12000), above the decompression-bomb limit")


def test_pixel_limit_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "20x20.png"
    Image.new("RGB", (20, 20), RED).save(path)
    monkeypatch.setenv(limits.ENV_VAR, "399")
    assert "limit of 399 pixels" in open_error(path).reason
    monkeypatch.setenv(limits.ENV_VAR, "400")
    assert pixels(path).shape == (20, 20, 3)


def test_raising_the_limit_lets_pillow_through(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The real mechanism at a small scale: default limit 100 pixels, Pillow's guard at 100 too.
    monkeypatch.setattr(limits, "DEFAULT_MAX_PIXELS", 100)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    monkeypatch.delenv(limits.ENV_VAR, raising=False)
    over_twice = tmp_path / "20x20.png"    # 400 > 2 x 100: Pillow itself raises
    in_band = tmp_path / "15x10.png"        # 150: Pillow would only warn
    Image.new("RGB", (20, 20), RED).save(over_twice)
    Image.new("RGB", (15, 10), RED).save(in_band)
    assert open_error(over_twice).reason.startswith("image is 400 pixels, above the decompression-bomb limit of 100")
    assert open_error(in_band).reason.startswith("image is 150 pixels (15x10)")
    monkeypatch.setenv(limits.ENV_VAR, "1000")
    assert pixels(over_twice).shape == (20, 20, 3)
    assert Image.MAX_IMAGE_PIXELS == 1000  # raised to follow, never None


@pytest.mark.parametrize("value", ["lots", "0", "-5"])
def test_bad_pixel_limit_is_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    path = tmp_path / "a.png"
    Image.new("RGB", (2, 2)).save(path)
    monkeypatch.setenv(limits.ENV_VAR, value)
    with pytest.raises(UsageError, match=limits.ENV_VAR):
        ImageSource().open(path, Sampling())


def test_decompression_bomb_guard_stays_on() -> None:
    assert Image.MAX_IMAGE_PIXELS is not None
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


# ---------------------------------------------------------------------------------------------
# the reader


def test_reader_hands_pixels_to_the_frame_and_can_reload(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    Image.new("RGB", (6, 4), RED).save(path)
    reader = ImageSource().open(path, Sampling())
    assert isinstance(reader, ImageReader)
    [frame] = list(reader)
    assert reader._pixels is None  # the frame owns the only reference
    frame.release()
    assert frame.rgb.shape == (4, 6, 3)  # decoded again from the file
    [again] = list(reader)  # iterating twice decodes again
    assert_colour(again.rgb[0, 0], RED)
    reader.close()
    reader.close()
    with pytest.raises(ValueError, match="closed"):
        list(reader)


def test_reload_notices_a_changed_file(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    Image.new("RGB", (6, 4), RED).save(path)
    with ImageSource().open(path, Sampling()) as reader:
        [frame] = list(reader)
    frame.release()
    Image.new("RGB", (8, 8), RED).save(path)
    with pytest.raises(InputError, match="changed"):
        frame.rgb


def test_sampling_is_optional_and_other_fields_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    Image.new("RGB", (6, 4), RED).save(path)
    reader = ImageSource().open(path, Sampling(fps=1.0, start=5.0, max_frames=1))
    assert len(list(reader)) == 1
    assert len(list(ImageSource().open(str(path)))) == 1


@pytest.mark.skipif("AVIF" not in decode.ALLOWED_FORMATS, reason="this Pillow reads no AVIF")
def test_avif_stills_are_read_and_a_fake_one_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "halves.avif"
    halves(64, 32, (200, 40, 40), (30, 60, 220)).save(path, quality=95)
    info, frame = open_one(path)
    assert info.container == "AVIF" and (frame.width, frame.height) == (64, 32)
    assert_colour(frame.rgb[16, 8], (200, 40, 40), tol=12) and assert_colour(frame.rgb[16, 56], (30, 60, 220), tol=12)
    fake = tmp_path / "notes.avif"
    fake.write_text("not a picture\n")
    assert "or AVIF image" in open_error(fake).reason

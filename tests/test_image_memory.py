"""Memory bounds of the ``images`` source: the default pixel limit and the peak of one large decode.

Peaks are measured in a child process (``ru_maxrss``), so each decode starts from a clean slate and
the test process never holds a 40-megapixel image.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from qplug.errors import InputError
from qplug.types import Sampling
from qplug_images import decode, limits
from qplug_images.convert import to_rgb
from qplug_images.source import ImageSource


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A gray PNG claiming ``width`` x ``height`` with almost no pixel data (what a bomb's header says)."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 16))
                     + chunk(b"IEND", b""))
    return path


def open_error(path: Path) -> InputError:
    with pytest.raises(InputError) as info:
        ImageSource().open(path, Sampling())
    return info.value


# ---------------------------------------------------------------------------------------------
# the default limit


def test_default_limit_fits_8k_and_large_cameras_but_not_a_9450_square() -> None:
    limit = limits.DEFAULT_MAX_PIXELS
    assert limit == 8192 * 8192
    assert 8192 * 4320 < limit and 9504 * 6336 < limit  # 8K DCI, a 61 MP camera
    assert 9450 * 9450 > limit
    assert limit < 1024 * 1024 * 1024 // 4 // 3  # lower than Pillow's own default (89.5 MP)


def test_png_over_the_default_limit_is_refused_naming_size_and_variable(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(limits.ENV_VAR, raising=False)
    path = png_header_only(tmp_path / "square.png", 9450, 9450)  # the 283 KB PNG that took 1.19 GB
    reason = open_error(path).reason
    assert reason == ("image is 89302500 pixels (9450x9450), above the decompression-bomb limit of 67108864 "
                      "pixels (set QPLUG_MAX_IMAGE_PIXELS to raise it)")
    monkeypatch.setenv(limits.ENV_VAR, str(9450 * 9450))  # the override still works
    assert "decompression-bomb" not in open_error(path).reason  # now it is only its missing data


def test_the_limit_itself_is_allowed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(limits.ENV_VAR, raising=False)
    at_limit = png_header_only(tmp_path / "at.png", 8192, 8192)
    assert "decompression-bomb" not in open_error(at_limit).reason  # refused for its data, not its size
    over = png_header_only(tmp_path / "over.png", 8193, 8192)
    assert "decompression-bomb limit of 67108864" in open_error(over).reason


# ---------------------------------------------------------------------------------------------
# peak memory of one decode

MAKE = r"""
import sys
import numpy as np
from PIL import Image
width, height = 8000, 5000
rgb = np.zeros((height, width, 3), dtype=np.uint8)
rgb[:, : width // 2] = (200, 30, 30)
rgb[::7] = (20, 40, 220)
Image.fromarray(rgb).save(sys.argv[1] + "/rgb.png", compress_level=1)
Image.fromarray(rgb[..., 1].copy()).save(sys.argv[1] + "/gray.png", compress_level=1)
alpha = np.full((height, width), 255, dtype=np.uint8)
alpha[:100, :100] = 0
Image.fromarray(np.dstack([rgb, alpha])).save(sys.argv[1] + "/rgba.png", compress_level=1)
"""

MEASURE = r"""
import resource, sys
from qplug_images.decode import decode_image
decode_image(sys.argv[3])  # a small image first: libraries and caches are in before the baseline
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
decoded = decode_image(sys.argv[1], None if sys.argv[2] == "-" else int(sys.argv[2]))
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
assert decoded.rgb.shape == (decoded.height, decoded.width, 3) or sys.argv[2] != "-"
print((after - before) * 1024 / (decoded.width * decoded.height))
"""


@pytest.fixture(scope="module")
def large_pngs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("large")
    subprocess.run([sys.executable, "-c", MAKE, str(folder)], check=True, timeout=300)
    Image.new("RGB", (8, 8)).save(folder / "small.png")
    return folder


def peak_bytes_per_pixel(path: Path, small: Path, max_side: int | None = None) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", MEASURE, str(path), str(max_side or "-"), str(small)],
                         capture_output=True, text=True, check=True, timeout=300, env=env)
    return float(out.stdout.strip())


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss is in KiB on Linux only")
@pytest.mark.parametrize("name", ["rgb.png", "rgba.png", "gray.png"])
def test_40_megapixel_png_peaks_at_about_one_rgb_copy(large_pngs: Path, name: str) -> None:
    # The delivered array is 3 bytes a pixel; the rest is Pillow's fourth byte (RGB and RGBA are
    # decoded into the array's own buffer) or its 1-byte gray image, plus bands of a few MB.
    # Before: 10 (RGB), 11 (gray) and 14 (RGBA) bytes a pixel, from whole-image temporaries.
    peak = peak_bytes_per_pixel(large_pngs / name, large_pngs / "small.png")
    assert peak < 4.75, f"{name}: {peak:.2f} bytes a pixel at peak"


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss is in KiB on Linux only")
def test_40_megapixel_png_with_max_side_holds_one_decoded_copy(large_pngs: Path) -> None:
    # PNG has no reduced-size decoding: Pillow's image (4 bytes a pixel) plus the box-reduced step
    # of the resize; the result itself is small.
    peak = peak_bytes_per_pixel(large_pngs / "rgb.png", large_pngs / "small.png", max_side=1000)
    assert peak < 6.0, f"{peak:.2f} bytes a pixel at peak"


# ---------------------------------------------------------------------------------------------
# the decode-in-place path gives the pixels Pillow gives


def noise(mode: str, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    rgba = rng.integers(0, 256, (37, 53, 4), dtype=np.uint8)
    rgba[..., 3][rgba[..., 3] < 128] = 255  # half opaque, half partly transparent
    return Image.fromarray(rgba, "RGBA").convert(mode)


@pytest.mark.parametrize(("name", "mode", "options"), [
    ("a.png", "RGB", {}), ("i.png", "RGB", {"interlace": 1}),
    ("a.png", "RGBA", {}), ("i.png", "RGBA", {"interlace": 1}),
    ("p.jpg", "RGB", {"progressive": True, "quality": 90}), ("a.tif", "RGB", {"compression": "tiff_lzw"}),
    ("a.tif", "RGBA", {}), ("a.bmp", "RGB", {}), ("a.webp", "RGB", {"lossless": True}),
    ("a.webp", "RGBA", {"lossless": True}),
])
def test_decoding_in_place_gives_pillows_pixels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str,
                                                mode: str, options: dict[str, Any]) -> None:
    path = tmp_path / name
    noise(mode).save(path, **options)
    with Image.open(path) as im:
        im.load()
        expected, expected_notes = to_rgb(im)
    taken: list[bool] = []
    take = decode.LentBuffer.take

    def watched_take(self: decode.LentBuffer, im: Image.Image, notes: list[str]) -> np.ndarray | None:
        rgb = take(self, im, notes)
        taken.append(rgb is not None)
        return rgb

    monkeypatch.setattr(decode.LentBuffer, "take", watched_take)
    decoded = decode.decode_image(str(path))
    assert taken == [True]  # the in-place path was used, not the fallback
    assert np.array_equal(decoded.rgb, np.asarray(expected))
    assert decoded.rgb.flags["C_CONTIGUOUS"] and decoded.rgb.flags["WRITEABLE"]
    assert decoded.notes == expected_notes


def test_in_place_decoding_falls_back_when_pillow_keeps_its_own_image(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "a.png"
    noise("RGB").save(path)
    # A Pillow that replaces the lent buffer with an image of its own, as older versions do.
    monkeypatch.setattr(decode.LentBuffer, "lend", classmethod(lambda cls, im: cls(np.empty((1, 1, 4), np.uint8),
                                                                                   object(), im.mode)))
    decoded = decode.decode_image(str(path))
    with Image.open(path) as im:
        assert np.array_equal(decoded.rgb, np.asarray(im.convert("RGB")))

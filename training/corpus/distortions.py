"""Synthetic distortions of RGB uint8 images, each driven by a continuous severity in [0, 1].

Every distortion is a function ``(image, severity, rng) -> (image, params)``: ``severity`` is a
float in [0, 1] (or a level 1..5, read as the middle of its fifth of the range), ``rng`` a
``numpy.random.Generator`` for the random parts (blur angle, noise, cast hue...), and ``params``
the concrete parameters used, recorded in the corpus metadata. Severity 0 is meant to be just
visible on a typical crop and 1 very strong; the mappings (documented in docs/corpus.md) were
spread so that the five severity levels land roughly one quality level apart on the pseudo-MOS
(``python -m qplug_training.corpus.calibrate`` prints the check).

Families (what a user would name) and the "kind" used for multiple-choice answers:

=============  =======================================================  ===================
family         distortions                                              kinds
=============  =======================================================  ===================
blur           gaussian_blur, motion_blur, defocus_blur                 blur
noise          gaussian_noise, shot_noise, chroma_noise                 noise
compression    jpeg, webp, h264, hevc                                   compression
resampling     downup, pixelate                                         low_resolution
exposure       underexposure, overexposure                              under/overexposure
contrast       low_contrast                                             low_contrast
colour         desaturation, oversaturation, colour_cast                colour
banding        banding                                                  banding
=============  =======================================================  ===================
"""

from __future__ import annotations

import functools
import math
import os
import subprocess
import tempfile
from dataclasses import dataclass
from typing import Any, Callable

import cv2
import numpy as np

Params = dict[str, Any]
DistortFn = Callable[[np.ndarray, float, np.random.Generator], tuple[np.ndarray, Params]]


def as_severity(severity: float | int) -> float:
    """Severity as a float in [0, 1]; an ``int`` 1..5 is a level, read as the middle of its bin."""
    if isinstance(severity, (int, np.integer)) and not isinstance(severity, bool):
        if not 1 <= severity <= 5:
            raise ValueError(f"severity level must be 1..5, got {severity}")
        return (int(severity) - 0.5) / 5.0
    s = float(severity)
    if not 0.0 <= s <= 1.0 or math.isnan(s):
        raise ValueError(f"severity must be in [0, 1], got {severity}")
    return s


def severity_level(severity: float) -> int:
    """The level 1..5 of a severity in [0, 1] (five equal bins)."""
    return min(5, 1 + int(as_severity(severity) * 5.0))


def _u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _to_linear(img: np.ndarray) -> np.ndarray:
    # A plain 2.2 gamma is close enough to sRGB for simulating exposure and photon noise.
    return (img.astype(np.float32) / 255.0) ** 2.2


def _from_linear(lin: np.ndarray) -> np.ndarray:
    return _u8(np.clip(lin, 0.0, 1.0) ** (1.0 / 2.2) * 255.0)


def _lerp(a: float, b: float, t: float) -> float:
    return a + (b - a) * t


# --------------------------------------------------------------------------- blur


def gaussian_blur(img: np.ndarray, severity: float, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    s = as_severity(severity)
    sigma = 0.5 + 3.5 * s ** 1.3
    out = cv2.GaussianBlur(img, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    return out, {"sigma": round(sigma, 3)}


def _line_kernel(length: float, angle_deg: float) -> np.ndarray:
    """An anti-aliased line of ``length`` pixels: the path of a camera shake during exposure."""
    half = int(math.ceil(length / 2.0)) + 1
    size = 2 * half + 1
    k = np.zeros((size, size), np.float64)
    theta = math.radians(angle_deg)
    n = max(2, int(length * 8))
    for t in np.linspace(-length / 2.0, length / 2.0, n):
        x, y = half + t * math.cos(theta), half - t * math.sin(theta)
        x0, y0 = int(math.floor(x)), int(math.floor(y))
        fx, fy = x - x0, y - y0
        k[y0, x0] += (1 - fx) * (1 - fy)
        k[y0, x0 + 1] += fx * (1 - fy)
        k[y0 + 1, x0] += (1 - fx) * fy
        k[y0 + 1, x0 + 1] += fx * fy
    return (k / k.sum()).astype(np.float32)


def motion_blur(img: np.ndarray, severity: float, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    s = as_severity(severity)
    length = 2.0 + 20.0 * s ** 1.2
    angle = float(rng.uniform(0.0, 180.0))
    out = cv2.filter2D(img, -1, _line_kernel(length, angle), borderType=cv2.BORDER_REFLECT)
    return out, {"length": round(length, 3), "angle": round(angle, 1)}


def _disk_kernel(radius: float) -> np.ndarray:
    """An anti-aliased disk (8x supersampled): the point-spread function of an out-of-focus lens."""
    half = int(math.ceil(radius)) + 1
    ss = 8
    coords = (np.arange((2 * half + 1) * ss) + 0.5) / ss - (half + 0.5)
    xx, yy = np.meshgrid(coords, coords)
    inside = (xx ** 2 + yy ** 2 <= radius ** 2).astype(np.float64)
    k = inside.reshape(2 * half + 1, ss, 2 * half + 1, ss).mean(axis=(1, 3))
    return (k / k.sum()).astype(np.float32)


def defocus_blur(img: np.ndarray, severity: float, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    s = as_severity(severity)
    radius = 0.8 + 5.2 * s ** 1.2
    out = cv2.filter2D(img, -1, _disk_kernel(radius), borderType=cv2.BORDER_REFLECT)
    return out, {"radius": round(radius, 3)}


def equivalent_blur_sigma(dtype: str, params: Params) -> float | None:
    """The Gaussian sigma (px, in the crop's own pixels) that loses about as much fine detail as a
    blur-like step, or None for a step that is not one.

    A disk of radius r spreads a point with standard deviation r / 2 along each axis and a line of
    length L with L / sqrt(12) along its direction; a down-up resampling by 1 / k keeps about what a
    sigma of 0.4 k would (area down-sampling, then linear or cubic up-sampling).
    """
    if dtype == "gaussian_blur":
        return float(params["sigma"])
    if dtype == "defocus_blur":
        return float(params["radius"]) / 2.0
    if dtype == "motion_blur":
        return float(params["length"]) / math.sqrt(12.0)
    if dtype == "downup":
        return 0.4 / float(params["factor"])
    return None


def _fade(img: np.ndarray, colour: np.ndarray, severity: float) -> tuple[np.ndarray, float]:
    """Mix ``img`` into a uniform ``colour``: 85% of the way at severity 0, all of it at 1."""
    amount = 0.85 + 0.15 * as_severity(severity)
    out = img.astype(np.float32) * (1.0 - amount) + colour.astype(np.float32) * amount
    return _u8(out), amount


def fade_black(img: np.ndarray, severity: float, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    """A picture gone (almost) black: a black frame, a fade to black, a dead feed. Opt-in (:data:`OPT_IN`)."""
    level = float(rng.uniform(0.0, 24.0))
    out, amount = _fade(img, np.full(3, level), severity)
    return out, {"amount": round(amount, 4), "level": round(level, 1)}


def fade_flat(img: np.ndarray, severity: float, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    """A picture gone (almost) uniform grey or colour: a frozen encoder's flat frame, a faded slate.
    Opt-in (:data:`OPT_IN`)."""
    colour = rng.uniform(40.0, 230.0) + rng.uniform(-25.0, 25.0, 3)
    out, amount = _fade(img, np.clip(colour, 0, 255), severity)
    return out, {"amount": round(amount, 4), "colour": [round(float(c)) for c in np.clip(colour, 0, 255)]}


# --------------------------------------------------------------------------- noise


def gaussian_noise(img: np.ndarray, severity: float, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    s = as_severity(severity)
    sigma = 3.0 + 37.0 * s ** 1.4
    out = img.astype(np.float32) + rng.normal(0.0, sigma, img.shape).astype(np.float32)
    return _u8(out), {"sigma": round(sigma, 3)}


def shot_noise(img: np.ndarray, severity: float, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    """Photon (Poisson) noise in linear light: stronger, relative to signal, in the shadows."""
    s = as_severity(severity)
    photons = 10.0 ** (2.9 - 2.2 * s)  # expected photons for a white pixel
    lin = _to_linear(img)
    noisy = rng.poisson(lin * photons).astype(np.float32) / photons
    return _from_linear(noisy), {"photons_at_white": round(photons, 2)}


def chroma_noise(img: np.ndarray, severity: float, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    """Blotchy colour noise: noise on the chroma planes only, generated at half resolution."""
    s = as_severity(severity)
    sigma = 5.0 + 40.0 * s ** 1.2
    h, w = img.shape[:2]
    ycc = cv2.cvtColor(img, cv2.COLOR_RGB2YCrCb).astype(np.float32)
    hh, hw = max(1, (h + 1) // 2), max(1, (w + 1) // 2)
    noise = rng.normal(0.0, sigma, (hh, hw, 2)).astype(np.float32)
    noise = cv2.resize(noise, (w, h), interpolation=cv2.INTER_LINEAR)
    ycc[..., 1:] += noise
    return cv2.cvtColor(_u8(ycc), cv2.COLOR_YCrCb2RGB), {"sigma": round(sigma, 3)}


def film_grain(img: np.ndarray, strength: float, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    """Natural-looking film grain, treated as *content*, not as a distortion.

    Luma-dominant, spatially correlated (Gaussian-filtered at 0.5..1.0 px), strongest in the mid-tones
    (a film's grain is least visible in deep shadows and clipped highlights), a little chroma. A crop
    with grain is the pristine reference of its variants: the corpus labels it by the distortions added
    on top, so compression that smears the grain away is charged as lost detail, as VMAF does against
    a grainy source, and the grain itself is never called noise (:func:`.facts.clearly_absent`).
    ``strength`` in [0, 1] sets the standard deviation, 1.5..6 of 255 after filtering.
    """
    s = as_severity(strength)
    sigma = 1.5 + 4.5 * s
    size = float(rng.uniform(0.5, 1.0))
    h, w = img.shape[:2]
    field = rng.normal(0.0, 1.0, (h, w)).astype(np.float32)
    field = cv2.GaussianBlur(field, (0, 0), size, borderType=cv2.BORDER_REFLECT)
    field *= sigma / max(1e-6, float(field.std()))
    chroma = float(rng.uniform(0.0, 0.25))
    x = img.astype(np.float32)
    y = (0.299 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2]) / 255.0
    weight = (0.35 + 2.6 * y * (1.0 - y))[..., None]  # 0.35 at black and white, 1.0 at mid-grey
    colour = rng.normal(0.0, chroma * sigma, (h, w, 3)).astype(np.float32) if chroma > 0 else 0.0
    out = x + weight * (field[..., None] + colour)
    return _u8(out), {"sigma": round(sigma, 3), "grain_size": round(size, 3), "chroma": round(chroma, 3)}


# --------------------------------------------------------------------------- compression


def _imcodec(img: np.ndarray, ext: str, flags: list[int]) -> np.ndarray:
    ok, buf = cv2.imencode(ext, cv2.cvtColor(img, cv2.COLOR_RGB2BGR), flags)
    if not ok:
        raise RuntimeError(f"OpenCV could not encode {ext}")
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def jpeg(img: np.ndarray, severity: float, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    s = as_severity(severity)
    quality = int(round(3 + 62 * (1.0 - s) ** 1.8))
    return _imcodec(img, ".jpg", [cv2.IMWRITE_JPEG_QUALITY, quality]), {"quality": quality}


def webp(img: np.ndarray, severity: float, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    s = as_severity(severity)
    quality = int(round(1 + 59 * (1.0 - s) ** 2.0))
    return _imcodec(img, ".webp", [cv2.IMWRITE_WEBP_QUALITY, quality]), {"quality": quality}


@functools.cache
def _ffmpeg() -> str:
    from qplug_video.binary import ffmpeg_exe

    return ffmpeg_exe()


@functools.cache
def ffmpeg_encoders() -> frozenset[str]:
    """Video encoders the ffmpeg binary offers (``ffmpeg -encoders``); empty if ffmpeg is missing."""
    try:
        out = subprocess.run([_ffmpeg(), "-hide_banner", "-encoders"], capture_output=True, text=True,
                             timeout=30).stdout
    except Exception:  # no ffmpeg at all: the codec distortions are simply unavailable
        return frozenset()
    names = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith("V"):
            names.add(parts[1])
    return frozenset(names)


@functools.cache
def _has_loopback() -> bool:
    """ffmpeg >= 7 can decode its own encoder output in the same process (``-dec``)."""
    try:
        probe = np.zeros((16, 16, 3), np.uint8)
        _codec_loopback(probe, "libx264", ["-crf", "30"])
        return True
    except Exception:
        return False


def _codec_loopback(img: np.ndarray, encoder: str, options: list[str]) -> np.ndarray:
    h, w = img.shape[:2]
    cmd = [_ffmpeg(), "-hide_banner", "-loglevel", "error",
           "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-i", "-",
           "-map", "0:v", "-c:v", encoder, *options, "-pix_fmt", "yuv420p", "-f", "null", "-",
           "-dec", "0:0", "-filter_complex", "[dec:0]format=rgb24[o]", "-map", "[o]",
           "-f", "rawvideo", "-"]
    res = subprocess.run(cmd, input=np.ascontiguousarray(img).tobytes(), capture_output=True, timeout=120)
    if res.returncode != 0 or len(res.stdout) != h * w * 3:
        raise RuntimeError(f"ffmpeg {encoder} failed: {res.stderr.decode(errors='replace')[-300:]}")
    return np.frombuffer(res.stdout, np.uint8).reshape(h, w, 3).copy()


def _codec_two_calls(img: np.ndarray, encoder: str, options: list[str]) -> np.ndarray:
    # Older ffmpeg (no -dec): encode to a file, decode it with a second call.
    h, w = img.shape[:2]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "clip.mkv")
        enc = [_ffmpeg(), "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
               "-s", f"{w}x{h}", "-i", "-", "-c:v", encoder, *options, "-pix_fmt", "yuv420p", path]
        res = subprocess.run(enc, input=np.ascontiguousarray(img).tobytes(), capture_output=True, timeout=120)
        if res.returncode != 0:
            raise RuntimeError(f"ffmpeg {encoder} failed: {res.stderr.decode(errors='replace')[-300:]}")
        dec = [_ffmpeg(), "-hide_banner", "-loglevel", "error", "-i", path, "-f", "rawvideo",
               "-pix_fmt", "rgb24", "-"]
        res = subprocess.run(dec, capture_output=True, timeout=120)
    if res.returncode != 0 or len(res.stdout) != h * w * 3:
        raise RuntimeError(f"ffmpeg decode failed: {res.stderr.decode(errors='replace')[-300:]}")
    return np.frombuffer(res.stdout, np.uint8).reshape(h, w, 3).copy()


def video_codec(img: np.ndarray, encoder: str, options: list[str]) -> np.ndarray:
    """Encode one frame (intra) with an ffmpeg encoder and decode it back, without a shell.

    The frame goes in and out as raw RGB on pipes; 4:2:0 chroma, as delivery video uses.
    Odd sizes are padded by edge replication and cropped back (4:2:0 needs even sizes).
    """
    h, w = img.shape[:2]
    ph, pw = h + h % 2, w + w % 2
    if (ph, pw) != (h, w):
        img = cv2.copyMakeBorder(img, 0, ph - h, 0, pw - w, cv2.BORDER_REPLICATE)
    run = _codec_loopback if _has_loopback() else _codec_two_calls
    return run(img, encoder, options)[:h, :w]


def h264(img: np.ndarray, severity: float, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    s = as_severity(severity)
    crf = round(24.0 + 27.0 * s ** 0.9, 1)
    out = video_codec(img, "libx264", ["-preset", "medium", "-crf", str(crf), "-g", "1"])
    return out, {"encoder": "libx264", "crf": crf}


def hevc(img: np.ndarray, severity: float, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    s = as_severity(severity)
    crf = round(26.0 + 25.0 * s ** 0.9, 1)
    out = video_codec(img, "libx265", ["-preset", "medium", "-crf", str(crf),
                                       "-x265-params", "log-level=error:keyint=1"])
    return out, {"encoder": "libx265", "crf": crf}


# --------------------------------------------------------------------------- resampling


def downup(img: np.ndarray, severity: float, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    """Downscale then upscale back: a low-resolution image shown at a higher resolution."""
    s = as_severity(severity)
    factor = 1.0 / (1.4 + 5.6 * s)
    interp = str(rng.choice(["linear", "cubic"]))
    h, w = img.shape[:2]
    small = cv2.resize(img, (max(1, round(w * factor)), max(1, round(h * factor))), interpolation=cv2.INTER_AREA)
    flag = cv2.INTER_LINEAR if interp == "linear" else cv2.INTER_CUBIC
    return cv2.resize(small, (w, h), interpolation=flag), {"factor": round(factor, 4), "upsample": interp}


def pixelate(img: np.ndarray, severity: float, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    s = as_severity(severity)
    block = 1.5 + 8.0 * s ** 1.3
    h, w = img.shape[:2]
    small = cv2.resize(img, (max(1, round(w / block)), max(1, round(h / block))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST), {"block": round(block, 3)}


# --------------------------------------------------------------------------- exposure, contrast


def underexposure(img: np.ndarray, severity: float, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    """A gain below one in linear light: shadows sink into black, 8 bits crush their detail."""
    s = as_severity(severity)
    ev = -(0.7 + 3.8 * s)
    return _from_linear(_to_linear(img) * 2.0 ** ev), {"ev": round(ev, 3)}


def overexposure(img: np.ndarray, severity: float, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    """A gain above one in linear light, clipped at white: highlights blow out."""
    s = as_severity(severity)
    ev = 0.4 + 2.6 * s
    return _from_linear(_to_linear(img) * 2.0 ** ev), {"ev": round(ev, 3)}


def low_contrast(img: np.ndarray, severity: float, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    """Squeeze values towards the mean luma: a flat, hazy, washed-out look."""
    s = as_severity(severity)
    factor = 0.85 - 0.7 * s
    x = img.astype(np.float32)
    mean = float((0.299 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2]).mean())
    return _u8(mean + (x - mean) * factor), {"factor": round(factor, 4)}


# --------------------------------------------------------------------------- colour


def desaturation(img: np.ndarray, severity: float, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    s = as_severity(severity)
    amount = 0.4 + 0.6 * s
    lab = cv2.cvtColor(img.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    lab[..., 1:] *= 1.0 - amount
    out = cv2.cvtColor(lab, cv2.COLOR_Lab2RGB) * 255.0
    return _u8(out), {"amount": round(amount, 4)}


def oversaturation(img: np.ndarray, severity: float, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    s = as_severity(severity)
    gain = 1.4 + 2.1 * s
    lab = cv2.cvtColor(img.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    lab[..., 1:] *= gain
    out = cv2.cvtColor(lab, cv2.COLOR_Lab2RGB) * 255.0
    return _u8(out), {"chroma_gain": round(gain, 4)}


#: Hue names for colour casts, by CIELAB hue angle (degrees, centre of a 60-degree sector).
CAST_HUES: tuple[tuple[float, str], ...] = (
    (0.0, "magenta"), (60.0, "red"), (120.0, "yellow"), (180.0, "green"), (240.0, "cyan"), (300.0, "blue"))


def cast_hue_name(angle_deg: float) -> str:
    """The name of the nearest hue sector for a CIELAB (a*, b*) angle."""
    a = angle_deg % 360.0
    return min(CAST_HUES, key=lambda hn: min(abs(a - hn[0]), 360.0 - abs(a - hn[0])))[1]


def colour_cast(img: np.ndarray, severity: float, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    """Shift a*, b* by a constant: a white balance gone wrong."""
    s = as_severity(severity)
    magnitude = 4.0 + 28.0 * s
    angle = float(rng.uniform(0.0, 360.0))
    lab = cv2.cvtColor(img.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    lab[..., 1] += magnitude * math.cos(math.radians(angle))
    lab[..., 2] += magnitude * math.sin(math.radians(angle))
    out = cv2.cvtColor(lab, cv2.COLOR_Lab2RGB) * 255.0
    return _u8(out), {"delta_ab": round(magnitude, 3), "hue_angle": round(angle, 1), "hue": cast_hue_name(angle)}


# --------------------------------------------------------------------------- banding


def banding(img: np.ndarray, severity: float, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    """Uniform quantisation of each channel to few levels: false contours in smooth gradients."""
    s = as_severity(severity)
    levels = max(2, int(round(2.0 ** (5.0 - 3.2 * s))))
    step = 255.0 / (levels - 1)
    return _u8(np.rint(img.astype(np.float32) / step) * step), {"levels": levels}


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class Distortion:
    """One registered distortion."""

    name: str
    family: str
    #: Multiple-choice class (what the answer option calls it).
    kind: str
    fn: DistortFn
    #: Order in a combination: optics, exposure, sensor noise, processing, resizing, coding.
    stage: int
    #: The severity -> parameter mapping, for docs/corpus.md.
    mapping: str
    #: Encoder needed from ffmpeg, if any.
    encoder: str | None = None

    def __call__(self, img: np.ndarray, severity: float, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"expected an RGB uint8 image, got {img.dtype} {img.shape}")
        return self.fn(img, as_severity(severity), rng)


FAMILIES: tuple[str, ...] = ("blur", "noise", "compression", "resampling", "exposure", "contrast", "colour", "banding")

_STAGE = {"blur": 0, "exposure": 1, "noise": 2, "contrast": 3, "colour": 4, "resampling": 5, "banding": 6,
          "compression": 7}

_TABLE: tuple[tuple[str, str, str, DistortFn, str, str | None], ...] = (
    ("gaussian_blur", "blur", "blur", gaussian_blur, "Gaussian sigma = 0.5 + 3.5 s^1.3 px", None),
    ("motion_blur", "blur", "blur", motion_blur, "line kernel, length = 2 + 20 s^1.2 px, angle U[0,180)", None),
    ("defocus_blur", "blur", "blur", defocus_blur, "disk kernel, radius = 0.8 + 5.2 s^1.2 px", None),
    ("gaussian_noise", "noise", "noise", gaussian_noise, "i.i.d. RGB noise, sigma = 3 + 37 s^1.4 (of 255)", None),
    ("shot_noise", "noise", "noise", shot_noise, "Poisson in linear light, photons at white = 10^(2.9 - 2.2 s)", None),
    ("chroma_noise", "noise", "noise", chroma_noise, "CrCb noise at half resolution, sigma = 5 + 40 s^1.2", None),
    ("jpeg", "compression", "compression", jpeg, "OpenCV JPEG 4:2:0, quality = 3 + 62 (1-s)^1.8", None),
    ("webp", "compression", "compression", webp, "OpenCV WebP, quality = 1 + 59 (1-s)^2", None),
    ("h264", "compression", "compression", h264, "ffmpeg libx264 intra 4:2:0, CRF = 24 + 27 s^0.9", "libx264"),
    ("hevc", "compression", "compression", hevc, "ffmpeg libx265 intra 4:2:0, CRF = 26 + 25 s^0.9", "libx265"),
    ("downup", "resampling", "low_resolution", downup,
     "area-downscale by 1/(1.4 + 5.6 s), linear/cubic upscale", None),
    ("pixelate", "resampling", "low_resolution", pixelate, "blocks of 1.5 + 8 s^1.3 px (area down, nearest up)", None),
    ("underexposure", "exposure", "underexposure", underexposure, "linear-light gain 2^-(0.7 + 3.8 s)", None),
    ("overexposure", "exposure", "overexposure", overexposure, "linear-light gain 2^(0.4 + 2.6 s), clipped", None),
    ("low_contrast", "contrast", "low_contrast", low_contrast, "scale around mean luma by 0.85 - 0.7 s", None),
    ("desaturation", "colour", "colour", desaturation, "CIELAB chroma x (1 - (0.4 + 0.6 s))", None),
    ("oversaturation", "colour", "colour", oversaturation, "CIELAB chroma x (1.4 + 2.1 s), clipped", None),
    ("colour_cast", "colour", "colour", colour_cast, "a*b* offset of 4 + 28 s at a random hue", None),
    ("banding", "banding", "banding", banding, "per-channel quantisation to 2^(5 - 3.2 s) levels", None),
    ("fade_black", "exposure", "underexposure", fade_black, "mixed 85 + 15 s % into black (luma 0..24)", None),
    ("fade_flat", "contrast", "low_contrast", fade_flat, "mixed 85 + 15 s % into a uniform grey or colour", None),
)

#: Types a corpus gets only when ``--types`` names them: the corpora built before they existed keep
#: their identity, and the evaluation set's types are unchanged. The fades teach that a (nearly)
#: uniform frame is bad once plain crops (``--plain-share``) have shown smooth pristine areas as good.
OPT_IN: frozenset[str] = frozenset({"fade_black", "fade_flat"})

DISTORTIONS: dict[str, Distortion] = {
    name: Distortion(name, family, kind, fn, _STAGE[family], mapping, encoder)
    for name, family, kind, fn, mapping, encoder in _TABLE
}

#: Multiple-choice classes, in the order they are listed in docs.
KINDS: tuple[str, ...] = ("blur", "noise", "compression", "low_resolution", "underexposure", "overexposure",
                          "low_contrast", "colour", "banding")


def default_types() -> list[str]:
    """Every registered distortion but the :data:`OPT_IN` ones, in registry order."""
    return [n for n in DISTORTIONS if n not in OPT_IN]


def available(names: list[str] | None = None) -> list[str]:
    """Registered distortions whose ffmpeg encoder (if any) exists here, in registry order (default:
    :func:`default_types`)."""
    names = default_types() if names is None else names
    encoders = None
    out = []
    for n in names:
        d = DISTORTIONS[n]
        if d.encoder is not None:
            encoders = ffmpeg_encoders() if encoders is None else encoders
            if d.encoder not in encoders:
                continue
        out.append(n)
    return out


def apply(name: str, img: np.ndarray, severity: float, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    """Apply the distortion called ``name``."""
    return DISTORTIONS[name](img, severity, rng)


def apply_chain(img: np.ndarray, steps: list[tuple[str, float]], rng: np.random.Generator
                ) -> tuple[np.ndarray, list[Params]]:
    """Apply several distortions in pipeline order (see :attr:`Distortion.stage`)."""
    ordered = sorted(steps, key=lambda st: DISTORTIONS[st[0]].stage)
    params = []
    for name, sev in ordered:
        img, p = apply(name, img, sev, rng)
        params.append(p)
    return img, params

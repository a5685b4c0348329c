"""Synthetic frames for tests: a seeded, natural-looking texture and degraded copies of it.

Everything here is pure numpy (JPEG goes through OpenCV, or Pillow when OpenCV is missing), needs no
file and no network, and is deterministic: the same arguments give the same pixels on every machine.

The texture mixes what quality scorers react to: smooth shading at several scales (1/f-like, as in
photographs), a lighting gradient, fine grain, and flat shapes with hard edges. Degrading it with
:func:`blurred`, :func:`noisy`, :func:`exposed` or :func:`jpeg` gives frames whose "right" ordering
is known, which is what direction checks need.

Array helpers (``*_rgb``) take and return HxWx3 uint8 arrays; frame helpers return
:class:`qplug.types.Frame` objects wrapping a fresh array, so a test may scribble on one frame's
``cache`` without affecting another.
"""

from __future__ import annotations

import functools
import math
import os
from typing import Any, Callable, Collection, Iterator, Mapping

import numpy as np

from qplug.timecode import frames_to_timecode
from qplug.types import Frame

#: Default frame size: small enough to keep tests fast, big enough for 8x8 blocks and 7x7 windows.
WIDTH, HEIGHT = 128, 96

#: The variants :func:`variants` makes, in a stable order (sharp first: it is the reference).
VARIANTS = ("sharp", "blurred", "noisy", "underexposed", "overexposed", "jpeg", "black")


# ---------------------------------------------------------------------------------------------
# The base texture


def _value_noise(rng: np.random.Generator, height: int, width: int, cell: int) -> np.ndarray:
    """Random values on a grid of ``cell`` pixels, smoothly interpolated (smoothstep) to full size."""
    grid_h, grid_w = height // cell + 2, width // cell + 2
    grid = rng.standard_normal((grid_h, grid_w)).astype(np.float32)
    ys = (np.arange(height, dtype=np.float32) + 0.5) / cell
    xs = (np.arange(width, dtype=np.float32) + 0.5) / cell
    y0, x0 = ys.astype(np.int64), xs.astype(np.int64)
    fy, fx = ys - y0, xs - x0
    # Smoothstep weights avoid the visible grid creases of plain bilinear interpolation.
    fy = (fy * fy * (3 - 2 * fy))[:, None]
    fx = (fx * fx * (3 - 2 * fx))[None, :]
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x0 + 1] * fx
    bottom = grid[y0 + 1][:, x0] * (1 - fx) + grid[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def _shapes(rng: np.random.Generator, height: int, width: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Hard-edged rectangles and discs: a coverage mask and the colour painted under it."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    mask = np.zeros((height, width), dtype=np.float32)
    paint = np.zeros((height, width, 3), dtype=np.float32)
    for i in range(count):
        colour = rng.uniform(-0.9, 0.9, size=3).astype(np.float32)
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        size = rng.uniform(0.08, 0.3) * min(height, width) + 1
        if i % 2:
            inside = (np.abs(yy - cy) < size * 0.7) & (np.abs(xx - cx) < size)
        else:
            inside = (yy - cy) ** 2 + (xx - cx) ** 2 < size ** 2
        mask[inside] = 1.0
        paint[inside] = colour
    return mask, paint


@functools.lru_cache(maxsize=32)
def _texture_cached(width: int, height: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    luma = np.zeros((height, width), dtype=np.float32)
    side = max(min(height, width), 8)
    # Coarse scales follow the frame size (a scene looks alike at any resolution); the 2-pixel
    # grain does not, like sensor grain.
    for cell, amplitude in ((max(side // 2, 2), 1.0), (max(side // 6, 2), 0.5), (max(side // 16, 2), 0.35), (2, 0.2)):
        luma += amplitude * _value_noise(rng, height, width, cell)
    chroma = np.stack([0.18 * _value_noise(rng, height, width, max(side // 3, 2)) for _ in range(3)], axis=-1)
    angle = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    gradient = (np.cos(angle) * xx / max(width, 1) + np.sin(angle) * yy / max(height, 1)) * 0.8
    base = (luma + gradient)[..., None] + chroma
    mask, paint = _shapes(rng, height, width, count=6)
    base = base * (1 - mask[..., None] * 0.8) + paint * mask[..., None] * 1.6
    # Thin dark and light lines (twigs, wires, text strokes): fine detail that blur removes first.
    for _ in range(8):
        angle = rng.uniform(0, math.pi)
        offset = rng.uniform(-0.5, 0.5) * (height + width)
        distance = np.abs(np.cos(angle) * (xx - width / 2) + np.sin(angle) * (yy - height / 2) - offset)
        base[distance < rng.uniform(0.5, 1.5)] = rng.choice([-1.8, 1.8])
    # Map to a photographic range with headroom at both ends, so exposure changes stay visible.
    low, high = np.percentile(base, [1, 99])
    scaled = (base - low) / max(float(high - low), 1e-6) * 190 + 32
    out = np.clip(scaled + 0.5, 0, 255).astype(np.uint8)
    out.setflags(write=False)  # shared by the cache: callers get copies
    return out


def texture_rgb(width: int = WIDTH, height: int = HEIGHT, seed: int = 0) -> np.ndarray:
    """The seeded natural-looking texture, HxWx3 uint8 (a fresh, writable copy)."""
    if width < 1 or height < 1:
        raise ValueError("width and height must be >= 1")
    return _texture_cached(int(width), int(height), int(seed)).copy()


# ---------------------------------------------------------------------------------------------
# Degradations on arrays


def _gaussian_kernel(sigma: float) -> np.ndarray:
    radius = max(1, int(math.ceil(3 * sigma)))
    x = np.arange(-radius, radius + 1, dtype=np.float32)
    kernel = np.exp(-(x * x) / (2 * sigma * sigma))
    return kernel / kernel.sum()


def _convolve_axis(image: np.ndarray, kernel: np.ndarray, axis: int) -> np.ndarray:
    radius = len(kernel) // 2
    pad = [(0, 0)] * image.ndim
    pad[axis] = (radius, radius)
    # "edge" padding works for any size, even a 1x1 image with a wide kernel.
    padded = np.pad(image, pad, mode="edge")
    out = np.zeros_like(image)
    length = image.shape[axis]
    for offset, weight in enumerate(kernel):
        out += weight * np.take(padded, np.arange(offset, offset + length), axis=axis)
    return out


def blur_rgb(rgb: np.ndarray, sigma: float = 2.0) -> np.ndarray:
    """Gaussian blur with standard deviation ``sigma`` pixels (separable, edges replicated)."""
    if sigma <= 0:
        return rgb.copy()
    kernel = _gaussian_kernel(sigma)
    work = rgb.astype(np.float32)
    work = _convolve_axis(_convolve_axis(work, kernel, 0), kernel, 1)
    return np.clip(work + 0.5, 0, 255).astype(np.uint8)


def noise_rgb(rgb: np.ndarray, sigma: float = 20.0, seed: int = 1) -> np.ndarray:
    """Add seeded white Gaussian noise of ``sigma`` levels to every channel."""
    rng = np.random.default_rng(seed)
    noisy = rgb.astype(np.float32) + rng.normal(0.0, sigma, size=rgb.shape).astype(np.float32)
    return np.clip(noisy + 0.5, 0, 255).astype(np.uint8)


def gain_rgb(rgb: np.ndarray, gain: float) -> np.ndarray:
    """Multiply light by ``gain`` in (approximately) linear light: < 1 under-exposes, > 1 over-exposes.

    Working on gamma-decoded values keeps mid-tones moving the way a camera's exposure does,
    and over-exposure clips highlights as it would.
    """
    linear = (rgb.astype(np.float32) / 255.0) ** 2.2
    out = np.clip(linear * gain, 0.0, 1.0) ** (1 / 2.2) * 255.0
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def jpeg_rgb(rgb: np.ndarray, quality: int = 10) -> np.ndarray:
    """Encode as JPEG at ``quality`` (1-100) and decode again, in memory."""
    if not 1 <= quality <= 100:
        raise ValueError("quality must be 1..100")
    try:
        import cv2
    except ImportError:
        cv2 = None
    if cv2 is not None:
        ok, data = cv2.imencode(".jpg", np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise RuntimeError("OpenCV could not encode a JPEG")
        decoded = cv2.imdecode(data, cv2.IMREAD_COLOR)
        return np.ascontiguousarray(decoded[..., ::-1])
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as image:
        return np.asarray(image.convert("RGB")).copy()


def black_rgb(width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """An all-black frame."""
    return np.zeros((height, width, 3), dtype=np.uint8)


#: How :func:`apply_variant` makes each named variant from the sharp texture.
_RECIPES: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
    "sharp": lambda rgb, seed: rgb.copy(),
    "blurred": lambda rgb, seed: blur_rgb(rgb, 2.5),
    "noisy": lambda rgb, seed: noise_rgb(rgb, 25.0, seed + 1),
    "underexposed": lambda rgb, seed: gain_rgb(rgb, 0.08),
    "overexposed": lambda rgb, seed: gain_rgb(rgb, 6.0),
    "jpeg": lambda rgb, seed: jpeg_rgb(rgb, 8),
    "black": lambda rgb, seed: np.zeros_like(rgb),
}


def apply_variant(rgb: np.ndarray, variant: str, seed: int = 0) -> np.ndarray:
    """Make the named variant (one of :data:`VARIANTS`) of an RGB array."""
    try:
        recipe = _RECIPES[variant]
    except KeyError:
        raise ValueError(f"unknown variant {variant!r} (known: {', '.join(VARIANTS)})") from None
    return recipe(rgb, seed)


# ---------------------------------------------------------------------------------------------
# Frames


def _frame(rgb: np.ndarray, source_id: str, index: int, **kw: Any) -> Frame:
    return Frame.from_rgb(np.ascontiguousarray(rgb), source_id=source_id, index=index, **kw)


def sharp(width: int = WIDTH, height: int = HEIGHT, seed: int = 0, source_id: str = "synthetic/sharp.png",
          index: int = 0) -> Frame:
    """The undegraded texture: the reference every variant is compared with."""
    return _frame(texture_rgb(width, height, seed), source_id, index)


def blurred(sigma: float = 2.5, width: int = WIDTH, height: int = HEIGHT, seed: int = 0,
            source_id: str = "synthetic/blurred.png", index: int = 0) -> Frame:
    """The texture under a Gaussian blur of ``sigma`` pixels."""
    return _frame(blur_rgb(texture_rgb(width, height, seed), sigma), source_id, index)


def noisy(sigma: float = 25.0, width: int = WIDTH, height: int = HEIGHT, seed: int = 0,
          source_id: str = "synthetic/noisy.png", index: int = 0) -> Frame:
    """The texture with white Gaussian noise of ``sigma`` levels."""
    return _frame(noise_rgb(texture_rgb(width, height, seed), sigma, seed + 1), source_id, index)


def exposed(gain: float, width: int = WIDTH, height: int = HEIGHT, seed: int = 0,
            source_id: str | None = None, index: int = 0) -> Frame:
    """The texture with its light multiplied by ``gain`` (< 1 darker, > 1 brighter and clipped)."""
    name = source_id or f"synthetic/exposed-{gain:g}.png"
    return _frame(gain_rgb(texture_rgb(width, height, seed), gain), name, index)


def underexposed(width: int = WIDTH, height: int = HEIGHT, seed: int = 0, source_id: str = "synthetic/underexposed.png",
                 index: int = 0) -> Frame:
    """About 3.6 stops under: dark, shadows crushed."""
    return exposed(0.08, width, height, seed, source_id, index)


def overexposed(width: int = WIDTH, height: int = HEIGHT, seed: int = 0, source_id: str = "synthetic/overexposed.png",
                index: int = 0) -> Frame:
    """About 2.6 stops over: bright, highlights clipped."""
    return exposed(6.0, width, height, seed, source_id, index)


def jpeg(quality: int = 8, width: int = WIDTH, height: int = HEIGHT, seed: int = 0,
         source_id: str = "synthetic/jpeg.png", index: int = 0) -> Frame:
    """The texture after a JPEG round trip at ``quality`` (blocking and ringing when low)."""
    return _frame(jpeg_rgb(texture_rgb(width, height, seed), quality), source_id, index)


def black(width: int = WIDTH, height: int = HEIGHT, source_id: str = "synthetic/black.png", index: int = 0) -> Frame:
    """An all-black frame (flat: no edges, no variance)."""
    return _frame(black_rgb(width, height), source_id, index)


def tiny(width: int = 1, height: int = 1, seed: int = 0, index: int = 0) -> Frame:
    """A frame of a few pixels cut from the texture, for "does not crash on tiny input" checks."""
    return _frame(texture_rgb(max(width, 8), max(height, 8), seed)[:height, :width], f"synthetic/tiny-{width}x{height}.png",
                  index)


class FrameSet(Mapping[str, Frame]):
    """Named variants of one texture; read them as ``frames["blurred"]`` or ``frames.blurred``."""

    def __init__(self, frames: Mapping[str, Frame]) -> None:
        self._frames = dict(frames)

    def __getitem__(self, name: str) -> Frame:
        return self._frames[name]

    def __getattr__(self, name: str) -> Frame:
        try:
            return self.__dict__["_frames"][name]
        except KeyError:
            raise AttributeError(name) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._frames)

    def __len__(self) -> int:
        return len(self._frames)

    def as_list(self) -> list[Frame]:
        """The frames in :data:`VARIANTS` order (indices 0, 1, 2...)."""
        return list(self._frames.values())


def variants(width: int = WIDTH, height: int = HEIGHT, seed: int = 0,
             names: Collection[str] = VARIANTS) -> FrameSet:
    """Every named variant of one texture, as fresh frames indexed 0, 1, 2... in ``names`` order."""
    base = texture_rgb(width, height, seed)
    return FrameSet({name: _frame(apply_variant(base, name, seed), f"synthetic/{name}.png", i)
                     for i, name in enumerate(names)})


def video_frames(count: int = 12, fps: float = 25.0, width: int = WIDTH, height: int = HEIGHT, seed: int = 0,
                 pan: tuple[int, int] = (2, 1), source_id: str = "synthetic.mp4",
                 effects: Mapping[int, str] | None = None) -> list[Frame]:
    """A fake clip: a camera panning ``pan`` = (dx, dy) pixels per frame across the texture.

    Frame ``i`` has ``pts = i / fps``, ``duration = 1 / fps`` and the matching SMPTE timecode.
    ``effects`` maps frame indices to a variant name (``{5: "blurred", 6: "black"}``) to plant
    defects at known times.
    """
    if count < 0 or fps <= 0:
        raise ValueError("count must be >= 0 and fps > 0")
    dx, dy = pan
    span = max(count - 1, 0)
    big_w, big_h = width + abs(dx) * span, height + abs(dy) * span
    effects = dict(effects or {})

    def loader(i: int) -> Callable[[], np.ndarray]:
        # Pixels are made on first access (like a real decoder's frames), so a long fake clip
        # costs memory only for the frames a test actually looks at.
        def load() -> np.ndarray:
            x = i * dx if dx >= 0 else (span - i) * -dx
            y = i * dy if dy >= 0 else (span - i) * -dy
            rgb = _texture_cached(big_w, big_h, seed)[y:y + height, x:x + width].copy()
            effect = effects.get(i)
            return apply_variant(rgb, effect, seed + i) if effect is not None else rgb
        return load

    return [Frame(source_id=source_id, index=i, width=width, height=height, pts=i / fps, duration=1 / fps,
                  timecode=frames_to_timecode(i, fps), pix_fmt="rgb24", bit_depth=8, rgb_loader=loader(i))
            for i in range(count)]


def save_png(image: "Frame | np.ndarray", path: "str | os.PathLike[str]") -> str:
    """Write a frame (or an HxWx3 uint8 array) as a PNG file, for tests that go through a real source."""
    from PIL import Image

    rgb = image.rgb if isinstance(image, Frame) else image
    Image.fromarray(np.ascontiguousarray(rgb)).save(os.fspath(path), format="PNG")
    return os.fspath(path)

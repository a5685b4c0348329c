"""Frames to PIL images for a processor: bound the size, optionally pad to a square.

The processor does the real resize to the checkpoint's input size. This step exists for two reasons:

- memory: processors convert the whole frame to float before resizing, so an 8K frame costs
  ~400 MB per image in the processor alone; shrinking the long side to ``max_side`` first bounds it;
- aspect ratio: CLIP-style processors (LLaVA-1.5) resize the short side and centre-crop a square,
  dropping the sides of a wide frame. LLaVA-1.5 and Q-Align pad to a square with the processor's
  mean colour instead ("expand2square" in their code), so the model sees the whole frame.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from PIL import Image

    from qplug.types import Frame

#: Default bound on the long side before the processor. Above the input size of LLaVA-1.5 (336) and
#: Idefics3 (up to 1456), so for them it only guards memory; Qwen2-VL keeps native resolution up to
#: ~12.8 MP by default, so for it this also caps image tokens (2048x1152: ~3,000 instead of ~10,600 at 4K).
DEFAULT_MAX_SIDE = 2048


def to_pil(frame: "Frame", max_side: int | None = DEFAULT_MAX_SIDE,
           pad_fill: Sequence[int] | None = None, native_crop: tuple[int, int] | None = None) -> "Image.Image":
    """An RGB PIL image of ``frame``, its long side at most ``max_side``, padded to a square with ``pad_fill``.

    With ``native_crop`` (height, width) — a processor that centre-crops without resizing, like
    qplug's default model — only that centre window is taken, at native resolution: the processor
    would crop the same pixels, and converting the rest of a 1080p frame would be wasted.

    Kept in ``frame.cache`` (freed with the frame), so the scorers, describer and asker of one run
    convert each frame once.
    """
    key = f"vlm:pil:{max_side}:{tuple(pad_fill) if pad_fill is not None else None}:{native_crop}"
    cached = frame.cache.get(key)
    if cached is None:
        if native_crop is not None:
            cached = frame.cache[key] = _centre(frame, *native_crop)
        else:
            cached = frame.cache[key] = _convert(frame, max_side, pad_fill)
    return cached


def _centre(frame: "Frame", height: int, width: int) -> "Image.Image":
    from PIL import Image

    left, top = max(0, (frame.width - width) // 2), max(0, (frame.height - height) // 2)
    return Image.fromarray(frame.rgb_crop(left, top, width, height))


def window_origins(frame_width: int, frame_height: int, width: int, height: int,
                   per_side: int) -> list[tuple[int, int]]:
    """Top-left corners of a ``per_side`` x ``per_side`` grid of windows spread evenly over the frame,
    row by row; the first and last windows of a row (column) touch the frame's edges. One per side
    is the centre window. A frame smaller than the window gives one window, clipped to it."""
    def spread(frame: int, window: int) -> list[int]:
        room = max(0, frame - window)
        if per_side == 1 or room == 0:
            return [room // 2]
        return sorted({round(room * i / (per_side - 1)) for i in range(per_side)})

    return [(left, top) for top in spread(frame_height, height) for left in spread(frame_width, width)]


def native_windows(frame: "Frame", native_crop: tuple[int, int], per_side: int) -> list["Image.Image"]:
    """The native-resolution windows of :func:`window_origins`, as PIL images (cached in ``frame.cache``)."""
    if per_side == 1:
        return [to_pil(frame, native_crop=native_crop)]
    from PIL import Image

    height, width = native_crop
    key = f"vlm:windows:{per_side}:{native_crop}"
    cached = frame.cache.get(key)
    if cached is None:
        cached = frame.cache[key] = [Image.fromarray(frame.rgb_crop(left, top, width, height))
                                     for left, top in window_origins(frame.width, frame.height, width, height,
                                                                     per_side)]
    return cached


def _convert(frame: "Frame", max_side: int | None, pad_fill: Sequence[int] | None) -> "Image.Image":
    from PIL import Image

    image = Image.fromarray(frame.rgb)  # HxWx3 uint8 is RGB
    if max_side is not None and max(image.size) > max_side:
        scale = max_side / max(image.size)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        # PIL's BICUBIC widens its kernel when shrinking, so this is an anti-aliased downscale.
        image = image.resize(size, Image.Resampling.BICUBIC)
    if pad_fill is not None and image.width != image.height:
        side = max(image.size)
        square = Image.new("RGB", (side, side), tuple(int(c) for c in pad_fill))
        square.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
        image = square
    return image


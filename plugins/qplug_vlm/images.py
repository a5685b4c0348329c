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

from qplug.errors import UsageError

if TYPE_CHECKING:
    from PIL import Image

    from qplug.types import Score

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

    return Image.fromarray(frame.rgb_crop(*centre_origin(frame, width, height), width, height))


def centre_origin(frame: "Frame", width: int, height: int) -> tuple[int, int]:
    """Top-left corner of a ``width`` x ``height`` window at the centre of ``frame`` (clipped to 0)."""
    return max(0, (frame.width - width) // 2), max(0, (frame.height - height) // 2)


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


#: Where a native-resolution model's window goes: the frame's centre, or the most detailed of
#: :data:`DETAIL_CANDIDATES` x :data:`DETAIL_CANDIDATES` positions (:func:`detailed_origin`).
WINDOW_PLACES = ("centre", "detail")
DETAIL_CANDIDATES = 5
#: Pixel stride of the detail measure: a quarter of the rows and columns is plenty to rank windows.
STRIDE = 4


def detailed_origin(frame: "Frame", width: int, height: int, per_side: int = DETAIL_CANDIDATES) -> tuple[int, int]:
    """Top-left corner of the window, among a ``per_side`` x ``per_side`` grid, with the most detail.

    Why: the default model was trained on the most detailed of several random boxes of each photo
    (qplug_training.corpus.crops.choose_crop), and the centre of a frame is often sky or bokeh, where
    blur, grain and compression cannot show: a 1.5 s blur of a butterfly pan is invisible in a centre
    window of dark background. Detail is the sum of absolute luma steps on every 4th pixel of every 4th
    row, per window through integral images (0.3 ms for 1080p on one core). Ties go to the earlier
    position, so a flat frame keeps the top-left window and a frame smaller than the window its only one.
    """
    origins = window_origins(frame.width, frame.height, width, height, per_side)
    if len(origins) == 1:
        return origins[0]
    import cv2
    import numpy as np

    luma = np.ascontiguousarray(frame.luma[::STRIDE, ::STRIDE])
    across = cv2.integral(cv2.absdiff(luma[:, 1:], luma[:, :-1]))
    down = cv2.integral(cv2.absdiff(luma[1:, :], luma[:-1, :]))

    def window_sum(table: "np.ndarray", left: int, top: int) -> int:
        x0, y0 = min(left // STRIDE, table.shape[1] - 1), min(top // STRIDE, table.shape[0] - 1)
        x1, y1 = min(x0 + width // STRIDE, table.shape[1] - 1), min(y0 + height // STRIDE, table.shape[0] - 1)
        return int(table[y1, x1]) - int(table[y0, x1]) - int(table[y1, x0]) + int(table[y0, x0])

    sums = [window_sum(across, left, top) + window_sum(down, left, top) for left, top in origins]
    return origins[max(range(len(origins)), key=sums.__getitem__)]


def placed_window(frame: "Frame", native_crop: tuple[int, int], place: str) -> tuple["Image.Image", tuple[int, int]]:
    """The model's native-resolution window of ``frame`` at ``place`` (:data:`WINDOW_PLACES`), and its
    top-left corner; cached in ``frame.cache`` like :func:`to_pil`."""
    height, width = native_crop
    if place == "centre":
        return to_pil(frame, native_crop=native_crop), centre_origin(frame, width, height)
    key = f"vlm:window:{place}:{native_crop}"
    cached = frame.cache.get(key)
    if cached is None:
        from PIL import Image

        left, top = detailed_origin(frame, width, height)
        cached = frame.cache[key] = (Image.fromarray(frame.rgb_crop(left, top, width, height)), (left, top))
    return cached


def model_image(frame: "Frame", place: str | None, native_crop: tuple[int, int] | None,
                max_side: int | None = DEFAULT_MAX_SIDE, pad_fill: Sequence[int] | None = None) -> "Image.Image":
    """What a model is shown of ``frame``: its native-resolution window at ``place`` when one is placed
    (:func:`resolve_window`), else :func:`to_pil`'s image (the centre window, or the bounded frame)."""
    if place is not None and native_crop is not None:
        return placed_window(frame, native_crop, place)[0]
    return to_pil(frame, max_side, pad_fill, native_crop)


def with_window(score: "Score", origin: tuple[int, int]) -> "Score":
    """``score`` with the corner of the window it was taken from in ``extra["window"]``."""
    from qplug.types import Score

    return Score(value=score.value, levels=score.levels,
                 extra=dict(score.extra or {}, window={"left": origin[0], "top": origin[1]}))


def check_window(window: str) -> None:
    """A UsageError unless ``window`` is ``auto`` or one of :data:`WINDOW_PLACES`."""
    if window not in ("auto", *WINDOW_PLACES):
        raise UsageError(f"window must be one of auto, {', '.join(WINDOW_PLACES)}, not {window!r}")


def resolve_window(window: str, native_crop: tuple[int, int] | None, windows: int, model: str) -> str | None:
    """The place of the one window (:data:`~.images.WINDOW_PLACES`), or None when there is none to
    place (a model that resizes the whole frame, or a grid of ``windows``)."""
    check_window(window)
    if native_crop is None or windows > 1:
        if window != "auto":
            why = (f"{model} resizes the whole frame, so there is no window to place" if native_crop is None
                   else f"windows={windows} scores a grid of windows")
            raise UsageError(f"window={window} needs one native-resolution window: {why}")
        return None
    return "detail" if window == "auto" else window


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


"""The decompression-bomb guard: how many pixels one image may have before it is refused.

Pillow's own guard warns between ``MAX_IMAGE_PIXELS`` and twice that and only errors above; qplug
refuses everything above the limit, because a batch run has nobody to read the warning and a
300-megapixel RGB decode (900 MB) is exactly what the guard exists to stop. The limit is also lower
than Pillow's (see :data:`DEFAULT_MAX_PIXELS`).
"""

from __future__ import annotations

import os

from qplug.errors import UsageError

#: Environment variable that sets the limit (a positive integer number of pixels).
ENV_VAR = "QPLUG_MAX_IMAGE_PIXELS"

#: 8192 x 8192 = 67,108,864 pixels (64 Mi). Above every picture QC normally sees: an 8K frame is
#: 33 MP (7680x4320) to 35 MP (8192x4320 DCI), the highest-resolution full-frame cameras give 61 MP
#: (9504x6336), and 8192x8192 textures and maps still fit. Decoding one at the limit peaks at about
#: 270 MB (4 bytes a pixel for RGB, RGBA and gray; 470 MB, 7 bytes a pixel, for the modes converted
#: through a Pillow copy: see :mod:`qplug_images.convert`), a bounded price for one reader thread.
#: Pillow's own default (89.5 MP) let a 283 KB PNG of 9450x9450 take more than 1 GB; medium-format
#: backs (100-150 MP), stitched panoramas and scans above 64 MP need ``QPLUG_MAX_IMAGE_PIXELS``.
DEFAULT_MAX_PIXELS = 8192 * 8192


def pixel_limit() -> int:
    """The largest pixel count (width x height) an image may have, from ``QPLUG_MAX_IMAGE_PIXELS``.

    :raises UsageError: when the variable is set but is not a positive integer; a misspelt limit
        is a configuration mistake for the whole run, not a problem of one input.
    """
    raw = os.environ.get(ENV_VAR, "").strip()
    if not raw:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(raw)  # int() accepts "200_000_000" as well
    except ValueError:
        value = 0
    if value < 1:
        raise UsageError(f"{ENV_VAR} must be a positive whole number of pixels, not {raw!r}")
    return value


def allow_in_pillow(limit: int) -> None:
    """Make sure Pillow's own guard does not refuse an image that ``limit`` allows.

    Pillow raises ``DecompressionBombError`` above twice its ``MAX_IMAGE_PIXELS``; when the user
    raised qplug's limit past that, Pillow's global has to follow. It is only ever raised, never
    lowered and never set to None, so the guard stays on for every other Pillow user in the process.
    """
    from PIL import Image

    current = Image.MAX_IMAGE_PIXELS
    if current is not None and current < limit:
        Image.MAX_IMAGE_PIXELS = limit


def too_many_pixels(pixels: int, limit: int, size: tuple[int, int] | None = None) -> str:
    """The one-line reason given for an image above the limit (``size`` when it is known)."""
    shape = f" ({size[0]}x{size[1]})" if size else ""
    return (f"image is {pixels} pixels{shape}, above the decompression-bomb limit of {limit} pixels "
            f"(set {ENV_VAR} to raise it)")

"""qplug built-in source for images (JPEG, PNG, WebP, TIFF, BMP, GIF, AVIF), animated GIF/WebP/PNG included.

Only the registration lives here: importing this package must stay cheap, so Pillow and numpy are
imported by :mod:`qplug_images.source` when the source is first used.
"""

from __future__ import annotations

from typing import Callable

from qplug import SourceInfo, hookimpl

#: File extensions the source claims (lower-case, with the dot), as the registry expects them.
EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif", ".avif")


@hookimpl
def register_sources(register: Callable[[SourceInfo], None]) -> None:
    """Register the ``images`` source."""
    register(SourceInfo(
        name="images",
        factory="qplug_images.source:ImageSource",
        description="Images via Pillow: one 8-bit RGB frame per still (AVIF where Pillow reads it), "
                    "timed frames per animated GIF/WebP/PNG",
        extensions=EXTENSIONS,
        kind="image",
    ))

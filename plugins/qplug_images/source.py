"""The ``images`` source: a still image file -> one 8-bit RGB :class:`~qplug.types.Frame`; an animated
GIF, WebP or PNG -> one frame per animation frame, timed (see :mod:`qplug_images.animation`)."""

from __future__ import annotations

import os
from typing import Callable, Iterator, Union

import numpy as np

from qplug.errors import InputError
from qplug.types import Frame, MediaInfo, Sampling

from .animation import AnimationReader, is_animation, open_animation
from .decode import DecodedImage, decode_image, decode_still, open_image


class ImageSource:
    """Opens JPEG, PNG, WebP, TIFF, BMP and GIF files.

    A still gives one frame (``pts`` None) and only ``Sampling.max_side`` applies to it. An
    animated GIF, WebP or PNG gives its frames with ``pts`` and ``duration``, sampled like a video
    (``MediaInfo.kind`` "video"). Other multi-frame files (multi-page TIFF, camera MPO) give their
    first picture, with a warning.
    """

    def open(self, path: str | os.PathLike[str], sampling: Sampling | None = None) -> "Reader":
        """Read the header of ``path`` and return a reader for its frames.

        A still is decoded here, an animation's first frame too (the rest as it is iterated).

        :raises InputError: when the file is missing, not a regular file, unreadable, not an image,
            truncated or corrupt, or larger than the decompression-bomb limit.
        """
        source_id = os.fspath(path)
        sampling = sampling or Sampling()
        max_side = sampling.max_side
        opened = open_image(source_id)
        try:
            animated = is_animation(opened.im)
        except BaseException:
            opened.close()
            raise
        if animated:
            return open_animation(opened, sampling)
        with opened:
            decoded = decode_still(opened, max_side)
        info = MediaInfo(source_id=source_id, kind="image", container=decoded.container, codec=None,
                         width=decoded.width, height=decoded.height, frame_count=1, pix_fmt=decoded.mode,
                         bit_depth=decoded.bit_depth, warnings=list(decoded.notes))
        return ImageReader(info, decoded, lambda: decode_image(source_id, max_side))


class ImageReader:
    """An opened still: iterating yields its single frame (decoding again if iterated twice)."""

    def __init__(self, info: MediaInfo, decoded: DecodedImage, redecode: Callable[[], DecodedImage]) -> None:
        self.info = info
        self._pixels: np.ndarray | None = decoded.rgb
        self._redecode = redecode
        self._pix_fmt = decoded.mode
        self._bit_depth = decoded.bit_depth
        self._closed = False

    def __iter__(self) -> Iterator[Frame]:
        if self._closed:
            raise ValueError(f"{self.info.source_id}: reader is closed")
        # Hand the pixels over instead of keeping a reference, so Frame.release() really frees them.
        rgb, self._pixels = self._pixels, None
        if rgb is None:
            rgb = self._redecode().rgb
        height, width = int(rgb.shape[0]), int(rgb.shape[1])
        yield Frame(source_id=self.info.source_id, index=0, width=width, height=height, pts=None,
                    timecode=None, pix_fmt=self._pix_fmt, bit_depth=self._bit_depth,
                    rgb_loader=self._reloader(width, height), _rgb=rgb)

    def _reloader(self, width: int, height: int) -> Callable[[], np.ndarray]:
        """Pixels again after ``Frame.release()`` (a writer wanting a thumbnail), read from the file."""
        source_id, redecode = self.info.source_id, self._redecode

        def load() -> np.ndarray:
            rgb = redecode().rgb
            if rgb.shape[:2] != (height, width):
                raise InputError(source_id, "file changed after it was opened")
            return rgb

        return load

    def close(self) -> None:
        """Drop the pixels if the frame was never taken. Safe to call more than once."""
        self._pixels = None
        self._closed = True

    def __enter__(self) -> "ImageReader":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


#: What :meth:`ImageSource.open` returns.
Reader = Union[ImageReader, AnimationReader]

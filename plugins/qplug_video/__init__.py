"""qplug built-in video source: decodes video files with ffmpeg, sampling and resizing inside ffmpeg.

This module only registers the source. It must stay light: numpy, OpenCV and the ffmpeg bindings
are imported by :mod:`qplug_video.source` when a video is first opened, so ``qplug --help`` and
``qplug plugins`` stay fast.
"""

from __future__ import annotations

from typing import Callable

from qplug import SourceInfo, hookimpl

#: Containers ffmpeg reads that usually hold video. Still-image formats belong to the image source.
VIDEO_EXTENSIONS: tuple[str, ...] = (
    ".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".ts", ".mts", ".mxf", ".mpg", ".mpeg", ".y4m",
    ".flv", ".wmv", ".ogv",
)


@hookimpl
def register_sources(register: Callable[[SourceInfo], None]) -> None:
    """Register the ``video`` source (ffmpeg decoding, frame sampling inside the decoder)."""
    register(SourceInfo(
        name="video",
        factory="qplug_video.source:VideoSource",
        description="Video files decoded by ffmpeg (sampling, seeking and resizing done inside ffmpeg)",
        extensions=VIDEO_EXTENSIONS,
        kind="video",
        priority=0,
        events=("decode_gap",),
    ))

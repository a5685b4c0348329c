"""Finding the ffmpeg executable, and ffprobe when there is one.

Order: the ``QPLUG_FFMPEG`` environment variable, then ``ffmpeg`` on ``PATH`` (a system build is
usually newer and may have hardware decoders), then the static build shipped by ``imageio-ffmpeg``
so that a plain ``pip install`` works without any system package.

ffprobe is optional (``imageio-ffmpeg`` ships none): when found, probing reads its JSON instead of
parsing ``ffmpeg -i``'s human-readable text. ``QPLUG_FFPROBE`` names one, or turns it off with
``none``; else the ffprobe beside the ffmpeg in use (same build), else ``ffprobe`` on ``PATH``.
"""

from __future__ import annotations

import os
import shutil
from functools import cache

from qplug.errors import UsageError

ENV_VAR = "QPLUG_FFMPEG"
PROBE_ENV_VAR = "QPLUG_FFPROBE"


@cache
def _find(env_value: str | None) -> str:
    if env_value:
        found = shutil.which(env_value) or (env_value if os.access(env_value, os.X_OK) else None)
        if not found:
            raise UsageError(f"{ENV_VAR}={env_value!r} is not an executable ffmpeg")
        return found
    on_path = shutil.which("ffmpeg")
    if on_path:
        return on_path
    try:
        import imageio_ffmpeg  # imported here: only needed when no system ffmpeg exists
    except ImportError:
        imageio_ffmpeg = None
    if imageio_ffmpeg is not None:
        try:
            return str(imageio_ffmpeg.get_ffmpeg_exe())
        except RuntimeError:
            pass
    raise UsageError(f"no ffmpeg found: install ffmpeg, or imageio-ffmpeg, or set {ENV_VAR}")


def ffmpeg_exe() -> str:
    """Path of the ffmpeg executable to run (raises :class:`UsageError` when there is none)."""
    return _find(os.environ.get(ENV_VAR) or None)


@cache
def _find_probe(env_value: str | None, ffmpeg: str) -> str | None:
    if env_value:
        if env_value.lower() in ("none", "off", "0"):
            return None
        found = shutil.which(env_value) or (env_value if os.access(env_value, os.X_OK) else None)
        if not found:
            raise UsageError(f"{PROBE_ENV_VAR}={env_value!r} is not an executable ffprobe")
        return found
    folder, name = os.path.split(ffmpeg)
    if "ffmpeg" in name:  # ffmpeg.exe -> ffprobe.exe, ffmpeg-7.1 -> ffprobe-7.1
        sibling = os.path.join(folder, name.replace("ffmpeg", "ffprobe"))
        if os.path.isfile(sibling) and os.access(sibling, os.X_OK):
            return sibling
    return shutil.which("ffprobe")


def ffprobe_exe(ffmpeg: str) -> str | None:
    """Path of the ffprobe to probe with, None when there is none (then ``ffmpeg -i`` is parsed)."""
    return _find_probe(os.environ.get(PROBE_ENV_VAR) or None, ffmpeg)

"""Finding the ffmpeg executable.

Order: the ``QPLUG_FFMPEG`` environment variable, then ``ffmpeg`` on ``PATH`` (a system build is
usually newer and may have hardware decoders), then the static build shipped by ``imageio-ffmpeg``
so that a plain ``pip install`` works without any system package.
"""

from __future__ import annotations

import os
import shutil
from functools import cache

from qplug.errors import UsageError

ENV_VAR = "QPLUG_FFMPEG"


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

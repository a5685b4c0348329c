"""A one-line progress display for terminals (never used when stderr is not a TTY)."""

from __future__ import annotations

import time
from typing import IO, Any


class Progress:
    """Redraws ``source: frames (fps)`` at most a few times a second."""

    def __init__(self, stream: IO[str], interval: float = 0.2) -> None:
        self.stream = stream
        self.interval = interval
        self._last = 0.0
        self._source: str | None = None
        self._started = time.perf_counter()
        self._width = 0

    def update(self, source: str, frames: int, media: Any) -> None:
        now = time.perf_counter()
        if source != self._source:
            self._source, self._started = source, now
        if now - self._last < self.interval:
            return
        self._last = now
        rate = frames / max(now - self._started, 1e-6)
        total = None
        if media is not None and getattr(media, "duration", None) and getattr(media, "fps", None):
            total = int(media.duration * media.fps)
        name = source if len(source) <= 40 else "..." + source[-37:]
        count = f"{frames}/{total}" if total else str(frames)
        line = f"{name}: {count} frames ({rate:.1f} fps)"
        self._width = max(self._width, len(line))
        self.stream.write("\r" + line.ljust(self._width))
        self.stream.flush()

    def clear(self) -> None:
        if self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0

"""Full-reference scoring: which source file each input is compared with, and which of its frames.

``--reference REF`` names the reference (the master an encode came from): one file, or a template
such as ``masters/{stem}.mov`` filled in per input. The ``find_reference`` hook may map inputs to
references some other way (a media-asset database); qplug's own implementation fills the template.

Frames are paired by presentation time, never by count: the reference frame on screen when the
input's frame is shown. So differing frame rates pair correctly (and are reported), and an input
that runs past the end of its reference gets no partner frames, which is reported as an error
instead of being silently truncated.
"""

from __future__ import annotations

import os
import string
from typing import Iterator

from .errors import UsageError
from .hookspecs import hookimpl
from .types import Frame, MediaInfo

#: Fields a template may use, from the input's path: ``clips/a.b/show.mp4`` gives stem ``show``,
#: name ``show.mp4``, ext ``.mp4``, dir ``clips/a.b``, path ``clips/a.b/show.mp4``.
TEMPLATE_FIELDS = ("stem", "name", "ext", "dir", "path")


def check_template(reference: str) -> None:
    """Refuse a template naming a field qplug does not fill (a typo would match no file, silently)."""
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(reference) if name is not None}
    except ValueError as exc:
        raise UsageError(f"--reference {reference!r}: {exc}") from None
    unknown = sorted(fields - set(TEMPLATE_FIELDS))
    if unknown:
        raise UsageError(f"--reference {reference!r}: unknown field(s) {', '.join('{' + f + '}' for f in unknown)}"
                         f" (use {', '.join('{' + f + '}' for f in TEMPLATE_FIELDS)})")


def fill_template(reference: str, source_id: str) -> str:
    """The reference path for ``source_id``: ``reference`` itself, or the template filled in."""
    if "{" not in reference:
        return reference
    directory, name = os.path.split(source_id)
    stem, ext = os.path.splitext(name)
    return reference.format(stem=stem, name=name, ext=ext, dir=directory or ".", path=source_id)


class TemplateReference:
    """qplug's own ``find_reference``: the ``--reference`` file or template (tried after plugins)."""

    @hookimpl(trylast=True)
    def find_reference(self, source_id: str, reference: str) -> str | None:
        return fill_template(reference, source_id)


class Pairing:
    """Walks a reference reader's frames alongside an input's, by presentation time.

    :param frames: the reference's frames, in order.
    :param tolerance: seconds a reference frame may lie after the input frame's time and still be
        taken as on screen then (timestamps of two encodes of one master differ by rounding).
    """

    def __init__(self, frames: Iterator[Frame], tolerance: float = 0.002) -> None:
        self._frames = frames
        self._tolerance = tolerance
        self._current: Frame | None = None
        self._next: Frame | None = None
        self._exhausted = False
        self.unmatched = 0  # input frames that found no reference frame
        self.last_unmatched: float | None = None

    def _advance(self) -> Frame | None:
        if self._exhausted:
            return None
        frame = next(self._frames, None)
        if frame is None:
            self._exhausted = True
        return frame

    def match(self, pts: float | None) -> Frame | None:
        """The reference frame on screen at ``pts`` (the first one for a still), or None past its end."""
        if self._current is None:
            self._current = self._advance()
            self._next = self._advance()
        if pts is None:
            return self._current
        while self._next is not None and self._next.pts is not None and self._next.pts <= pts + self._tolerance:
            # No release(): input frames still queued may hold the one left behind; it goes with them.
            self._current, self._next = self._next, self._advance()
        current = self._current
        if current is None or current.pts is None or current.pts > pts + self._tolerance or self._past_end(current, pts):
            self.unmatched += 1
            self.last_unmatched = pts
            return None
        return current

    def _past_end(self, current: Frame, pts: float) -> bool:
        """True when ``pts`` falls after the reference's last frame has stopped being shown."""
        if self._next is not None or current.duration is None or current.pts is None:
            return False
        return pts >= current.pts + current.duration + self._tolerance


def compare_media(reference: MediaInfo | None, media: MediaInfo | None, path: str) -> list[str]:
    """Warnings a QC engineer wants when input and reference differ in rate or size (still scored)."""
    if reference is None or media is None:
        return []
    notes = []
    if reference.fps and media.fps and abs(reference.fps - media.fps) > 1e-3:
        notes.append(f"reference {path} runs at {reference.fps:g} fps and this input at {media.fps:g} fps: "
                     f"frames are paired by presentation time")
    if (reference.width, reference.height) != (media.width, media.height) and reference.width and media.width:
        notes.append(f"reference {path} is {reference.width}x{reference.height} and this input "
                     f"{media.width}x{media.height}: full-reference scorers compare at the reference's size")
    return notes

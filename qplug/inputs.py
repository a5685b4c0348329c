"""Turning command-line paths (files, directories, globs) into the list of inputs to open."""

from __future__ import annotations

import glob
import os
import stat
from dataclasses import dataclass
from typing import Iterable, Iterator

from .errors import InputError
from .registry import Catalog, SourceInfo

_GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class InputItem:
    """One file to open, with the source chosen for it, or the reason it cannot be opened (``error``)."""

    path: str
    source: SourceInfo | None
    error: str | None = None


def expand_inputs(paths: Iterable[str], catalog: Catalog) -> Iterator[InputItem]:
    """Yield one item per file, in a stable order.

    A named file is always yielded (with an error if nobody can open it); inside a directory or a
    glob, files no source claims (sidecars, text files) are skipped quietly, since a media folder
    usually holds more than media.
    """
    seen: set[str] = set()
    for raw in paths:
        path = os.path.expanduser(str(raw))
        if os.path.isdir(path):
            yield from _claimed(path, sorted(_walk(path)), catalog, seen, "directory holds no file of a supported type")
        elif os.path.lexists(path) or not (_GLOB_CHARS & set(path)):
            if path not in seen:
                seen.add(path)
                yield _claim(path, catalog) if os.path.lexists(path) else InputItem(path, None, "no such file or directory")
        else:
            files = [m for m in sorted(glob.glob(path, recursive=True)) if not os.path.isdir(m)]
            yield from _claimed(path, files, catalog, seen, "pattern matched no file of a supported type")


def _claimed(origin: str, files: list[str], catalog: Catalog, seen: set[str], empty: str) -> Iterator[InputItem]:
    """The files of a directory or glob that some source opens; one error item if there are none."""
    items = [item for item in (_claim(f, catalog) for f in files) if item.source is not None]
    if not items:
        yield InputItem(origin, None, empty)
    for item in items:
        if item.path not in seen:
            seen.add(item.path)
            yield item


def _walk(directory: str) -> Iterator[str]:
    for root, dirs, files in os.walk(directory):
        dirs[:] = [d for d in dirs if not d.startswith(".")]  # .git, .thumbnails...
        for name in files:
            if not name.startswith("."):
                yield os.path.join(root, name)


#: What ``stat`` may say a path is, besides a regular file, in the words errors use.
_SPECIAL_FILES = ((stat.S_ISFIFO, "FIFO"), (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"),
                  (stat.S_ISSOCK, "socket"), (stat.S_ISDIR, "directory"))


def file_kind(mode: int) -> str:
    """A user-facing name for what a ``st_mode`` describes: ``regular file``, ``FIFO``, ``socket``..."""
    if stat.S_ISREG(mode):
        return "regular file"
    return next((name for test, name in _SPECIAL_FILES if test(mode)), "special file")


def not_a_regular_file(path: str) -> str | None:
    """Why ``path`` (after links) cannot be read as a media file, or None when it is a regular file.

    Opening a FIFO or a device for reading can block for ever, so this is decided from ``stat``
    before any source opens the file.
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "broken symbolic link (its target does not exist)" if os.path.islink(path) else "file not found"
    except PermissionError:
        return "permission denied"
    except OSError as exc:  # a loop of links, a name too long, a file used as a folder...
        return f"cannot be read: {exc.strerror or exc}"
    return None if stat.S_ISREG(mode) else f"not a regular file ({file_kind(mode)})"


def open_regular_file(path: str) -> int:
    """Open ``path`` for reading, only if it is a regular file; a descriptor, or :class:`InputError`.

    For every source plugin: the check is made from ``stat`` before opening, the open itself is
    non-blocking and checked again on the descriptor (a path swapped for a FIFO in between cannot
    hang the run either), then the descriptor is made blocking again for ordinary reads.
    """
    reason = not_a_regular_file(path)
    if reason is not None:
        raise InputError(path, reason)
    nonblock = getattr(os, "O_NONBLOCK", 0)
    flags = os.O_RDONLY | nonblock | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except PermissionError:
        raise InputError(path, "permission denied") from None
    except OSError as exc:
        raise InputError(path, f"cannot be read: {exc.strerror or exc}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise InputError(path, f"not a regular file ({file_kind(mode)})")
        if nonblock:
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _claim(path: str, catalog: Catalog) -> InputItem:
    source = catalog.source_for(path)
    if source is None:
        known = " ".join(sorted(catalog.extensions())) or "none (no source plugin loaded)"
        return InputItem(path, None, f"unsupported file type (supported: {known})")
    # Claimed but unreadable as a file (a FIFO called x.mp4): kept with its source, so a folder
    # that holds one reports it instead of skipping it as a sidecar.
    return InputItem(path, source, not_a_regular_file(path))

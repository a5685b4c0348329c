"""Handing a file to ffmpeg under a fixed, harmless name, after checking it is a regular file.

ffmpeg echoes its input's name in the text it prints (``Input #0, ... from 'NAME':``, error
messages), and that text is parsed. A file named with a newline and a fake ``Stream #0:0`` line once
steered the probe: a 1280x720 clip was scored at 64x48, and a fake 12000x12000 made a tiny clip take
4.6 GB. So ffmpeg never sees the real name: the file is opened here, once, and ffmpeg (the probe and
the decoder alike) opens ``file:input.EXT``, a symbolic link in a private directory that is its
working directory. On Linux the link points at ``/proc/self/fd/N``, the descriptor opened here and
inherited by ffmpeg: ffmpeg reads exactly the file that was checked (not whatever a rename put in
its place since), through a fresh open of its own, so seeking (an MP4 index at the end) works as
with a plain path. Elsewhere the link points at the file's absolute path.

Only regular files are opened: a FIFO named ``x.mp4`` would block ffmpeg forever, a device would
never end. They are refused from ``stat()``, without being opened.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
import weakref
from typing import Any

from qplug.errors import InputError
from qplug.inputs import open_regular_file

#: The name ffmpeg sees, before the extension (kept: some demuxers use it as a hint).
BENIGN_STEM = "input"
_SAFE_EXTENSION = re.compile(r"^\.[A-Za-z0-9]{1,10}$")
# /proc/self/fd/N opened by ffmpeg is a new open of the checked file (Linux). On BSD and macOS,
# /dev/fd/N duplicates the descriptor instead, sharing its offset: unusable for two processes.
_PROC_FD = sys.platform.startswith("linux") and os.path.isdir("/proc/self/fd")


#: Private directories are named ``qplug-video-<pid>-<random>`` so that a later run can tell the
#: ones a killed process (SIGKILL, out of memory) left behind from those of a live one.
_DIRECTORY_PREFIX = "qplug-video-"


_swept: set[str] = set()


def _private_directory() -> str:
    """A new private directory for one input's link; the first one of a process first removes those
    that dead qplug processes left behind."""
    root = tempfile.gettempdir()
    if root not in _swept:
        _swept.add(root)
        _sweep_orphans(root)
    return tempfile.mkdtemp(prefix=f"{_DIRECTORY_PREFIX}{os.getpid()}-", dir=root)


def _sweep_orphans(root: str) -> None:
    try:
        names = [n for n in os.listdir(root) if n.startswith(_DIRECTORY_PREFIX)]
    except OSError:
        return
    for name in names:
        pid_text = name[len(_DIRECTORY_PREFIX):].split("-", 1)[0]
        if not pid_text.isdigit() or _alive(int(pid_text)):
            continue
        path = os.path.join(root, name)
        try:
            if os.stat(path).st_uid == os.getuid():  # only our own user's leftovers
                shutil.rmtree(path, ignore_errors=True)
        except OSError:
            pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _extension(path: str) -> str:
    """The file's extension when it is plain letters and digits, else none."""
    ext = os.path.splitext(path)[1]
    return ext.lower() if _SAFE_EXTENSION.match(ext) else ""


def _release(fd: int | None, directory: str | None) -> None:
    if fd is not None:
        try:
            os.close(fd)
        except OSError:
            pass
    if directory is not None:
        shutil.rmtree(directory, ignore_errors=True)


class MediaInput:
    """What ffmpeg opens for one input: ``url`` plus the ``subprocess`` arguments it needs.

    Make one with :func:`open_input`; ``close()`` releases the descriptor and the private directory
    (safe to call more than once; done at garbage collection or interpreter exit otherwise).
    """

    def __init__(self, path: str, url: str, fd: int | None = None, directory: str | None = None) -> None:
        self.path = path  # the real name: for messages to the user only, never given to ffmpeg
        self.url = url
        self._fd = fd
        self._directory = directory
        self._release = weakref.finalize(self, _release, fd, directory)

    @property
    def benign(self) -> bool:
        """Whether ffmpeg sees a fixed name rather than the real one."""
        return self._directory is not None

    def popen_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``subprocess.Popen``/``run`` of an ffmpeg that opens ``url``."""
        kwargs: dict[str, Any] = {}
        if self._directory is not None:
            kwargs["cwd"] = self._directory
        if self._fd is not None and _PROC_FD:
            kwargs["pass_fds"] = (self._fd,)
        return kwargs

    def close(self) -> None:
        self._fd = self._directory = None
        self._release()

    def __enter__(self) -> MediaInput:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_input(path: str) -> MediaInput:
    """Check ``path`` and prepare what ffmpeg opens for it; InputError with a clear reason if unusable.

    A URL (``scheme://``, when no such file exists) is passed through as it is, refused when it holds
    control characters, which could fake lines in ffmpeg's output.
    """
    if "://" in path and not os.path.lexists(path):
        if any(ord(c) < 32 or ord(c) == 127 for c in path):
            raise InputError(path, "URL contains control characters")
        return MediaInput(path, path)
    fd = open_regular_file(path)  # never a FIFO or a device: they would block or never end
    directory = None
    try:
        info = os.fstat(fd)
        if info.st_size == 0:
            raise InputError(path, "empty file (0 bytes)")
        directory = _private_directory()
        name = BENIGN_STEM + _extension(path)
        try:
            os.symlink(f"/proc/self/fd/{fd}" if _PROC_FD else os.path.abspath(path), os.path.join(directory, name))
        except (OSError, NotImplementedError):  # no symbolic links here (Windows without the privilege)
            shutil.rmtree(directory, ignore_errors=True)
            # "file:" so that a name containing ':' is never taken for a protocol such as "concat:".
            return MediaInput(path, "file:" + os.path.abspath(path), fd)
        return MediaInput(path, "file:" + name, fd, directory)
    except BaseException:
        os.close(fd)
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)
        raise

"""``vmaf``: Netflix's VMAF of each frame, computed by the libvmaf filter of the ffmpeg qplug uses.

VMAF is computed by ffmpeg over the whole input and its reference at once (libvmaf's motion
features need consecutive frames, and it is far faster than pulling frames through Python), the
first time a frame of that input is scored; each frame then gets the value of its frame number.
The input is scaled to the reference's size with bicubic scaling, both start at time zero, and
frames are paired by time (ffmpeg's framesync), as VMAF practice asks. With ``shortest=1`` an input
longer than its reference gets no value past the reference's end (an error per frame) rather than
a comparison with a repeated last frame.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from typing import Sequence

from qplug.errors import InputError, UsageError
from qplug.types import Frame
from qplug_video.binary import ffmpeg_exe


def has_libvmaf(exe: str) -> bool:
    """Whether ``exe`` (an ffmpeg) was built with the libvmaf filter."""
    try:
        listing = subprocess.run([exe, "-hide_banner", "-filters"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return any(line.split()[1:2] == ["libvmaf"] for line in listing.stdout.splitlines() if line.strip())


def vmaf_command(exe: str, distorted: str, reference: str, log_path: str, threads: int, model: str | None) -> list[str]:
    """The ffmpeg command (an argument list) that writes per-frame VMAF of ``distorted`` to ``log_path``."""
    options = ["log_fmt=json", f"log_path={log_path}", f"n_threads={threads}", "shortest=1"]
    if model:
        options.append(f"model={model}")
    graph = ("[1:v]setpts=PTS-STARTPTS,split[ref][ref_size];[0:v]setpts=PTS-STARTPTS[in];"
             "[in][ref_size]scale=w=rw:h=rh:flags=bicubic[scaled];[scaled][ref]libvmaf=" + ":".join(options))
    # "file:" so that a name holding ':' is never read as a protocol; -nostdin: never wait for a key.
    return [exe, "-hide_banner", "-nostdin", "-loglevel", "error", "-i", "file:" + os.path.abspath(distorted),
            "-i", "file:" + os.path.abspath(reference), "-lavfi", graph, "-f", "null", "-"]


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class VmafScorer:
    """Per-frame VMAF against ``frame.reference_path``.

    :param ffmpeg: the ffmpeg to run (default: the one qplug decodes with).
    :param threads: libvmaf threads (default: every core this process may use).
    :param model: a libvmaf model option, e.g. ``version=vmaf_v0.6.1neg`` (default: vmaf_v0.6.1).
    :param timeout: seconds one input may take.
    """

    def __init__(self, ffmpeg: str | None = None, threads: int | None = None, model: str | None = None,
                 timeout: float = 3600.0) -> None:
        self.exe = ffmpeg or ffmpeg_exe()
        if not has_libvmaf(self.exe):
            raise UsageError(f"the ffmpeg at {self.exe} has no libvmaf filter: install an ffmpeg built with "
                             f"libvmaf and point QPLUG_FFMPEG at it")
        self.threads = threads or _cores()
        self.model = model
        self.timeout = timeout
        self._key: tuple[str, str] | None = None
        self._values: list[float] = []

    def reset(self) -> None:
        self._key, self._values = None, []

    def score(self, frames: Sequence[Frame]) -> list[float]:
        out = []
        for frame in frames:
            if frame.reference_path is None:
                raise InputError(frame.source_id, "no reference to compare with")
            key = (frame.source_id, frame.reference_path)
            if key != self._key:
                self._values = self._compute(*key)
                self._key = key
            if not 0 <= frame.index < len(self._values):
                raise InputError(frame.source_id, f"no VMAF for frame {frame.index}: the reference has only "
                                                  f"{len(self._values)} frame(s) to pair with")
            out.append(self._values[frame.index])
        return out

    def _compute(self, distorted: str, reference: str) -> list[float]:
        folder = tempfile.mkdtemp(prefix="qplug-vmaf-")
        log_path = os.path.join(folder, "vmaf.json")
        try:
            command = vmaf_command(self.exe, distorted, reference, log_path, self.threads, self.model)
            try:
                done = subprocess.run(command, capture_output=True, text=True, errors="replace", timeout=self.timeout)
            except subprocess.TimeoutExpired:
                raise InputError(distorted, f"VMAF against {reference} took more than {self.timeout:g} s") from None
            if done.returncode != 0 or not os.path.exists(log_path):
                last = (done.stderr.strip().splitlines() or ["no message"])[-1]
                raise InputError(distorted, f"VMAF against {reference} failed: {last}")
            with open(log_path, encoding="utf-8") as stream:
                log = json.load(stream)
            frames = sorted(log.get("frames") or [], key=lambda f: f["frameNum"])
            return [float(f["metrics"]["vmaf"]) for f in frames]
        finally:
            shutil.rmtree(folder, ignore_errors=True)

"""Resuming from a JSON Lines report: what was already scored, so a re-run skips it.

The whole of ``--resume`` lives here: :func:`prepare_resume` picks the resumable report among the
outputs, repairs a line cut short by a kill, reads what is done and checks that the new run asks
for the same scorers. The pipeline then skips finished sources and frames (feeding the frame just
before the first missing one to temporal scorers, so they compare it as an uninterrupted run
would), and the reporter appends to the same file.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from .errors import UsageError

if TYPE_CHECKING:
    from .registry import Catalog
    from .reporting import Output


@dataclass
class PriorFrame:
    index: int
    pts: float | None
    timecode: str | None
    scores: dict[str, float | None]
    failed: bool = False  # a scorer, describer or asker failed on it


@dataclass
class ResumeState:
    """Frames and finished sources found in an earlier, possibly killed, run's JSON Lines file."""

    finished: dict[str, dict[str, Any]] = field(default_factory=dict)  # source -> its "source" record
    frames: dict[str, list[PriorFrame]] = field(default_factory=dict)
    done_indices: dict[str, set[int]] = field(default_factory=dict)
    #: the scorers the earlier run used, as its records show them (None: the file holds no record yet)
    scorers: set[str] | None = None

    def is_done(self, source: str, index: int) -> bool:
        return index in self.done_indices.get(source, ())


def load_resume_state(path: str) -> ResumeState:
    """Read ``path`` tolerantly: a line cut short by a kill is ignored, as is any unknown record.

    Sources that ended with a source-level error are not counted as finished, so they are retried.
    """
    state = ResumeState()
    if not os.path.exists(path):
        return state
    with open(path, encoding="utf-8") as stream:
        for line in stream:
            try:
                record = json.loads(line)
            except ValueError:
                continue  # the last line of a killed run
            if not isinstance(record, dict):
                continue
            kind, source = record.get("type"), record.get("source")
            if kind == "run" and isinstance(record.get("scorers"), list):
                state.scorers = (state.scorers or set()) | {str(n) for n in record["scorers"]}
            if not isinstance(source, str):
                continue
            if kind == "frame" and isinstance(record.get("index"), int):
                prior = PriorFrame(record["index"], record.get("pts"), record.get("timecode"),
                                   dict(record.get("scores") or {}), bool(record.get("errors")))
                state.scorers = (state.scorers or set()) | set(prior.scores)
                state.frames.setdefault(source, []).append(prior)
                state.done_indices.setdefault(source, set()).add(prior.index)
            elif kind == "source":
                if record.get("frames"):
                    state.scorers = (state.scorers or set()) | set(record.get("pooled") or {})
                if not any(e.get("index") is None for e in record.get("errors") or []):
                    state.finished[source] = record
    return state


def truncate_partial_line(path: str) -> None:
    """Drop an unterminated last line so appended records start on a fresh line."""
    if not os.path.exists(path):
        return
    with open(path, "rb+") as stream:
        stream.seek(0, os.SEEK_END)
        size = stream.tell()
        if size == 0:
            return
        stream.seek(size - 1)
        if stream.read(1) == b"\n":
            return
        # Walk back to the previous newline; files are line-oriented so this is short.
        position = size - 1
        while position > 0:
            stream.seek(position - 1)
            if stream.read(1) == b"\n":
                break
            position -= 1
        stream.truncate(position)


def prepare_resume(outputs: Iterable["Output"], catalog: "Catalog", scorers: Sequence[str]) -> ResumeState:
    """Find the report to resume among ``outputs``, repair and read it, and check it fits this run.

    :raises UsageError: no resumable report is given, or it was made with other scorers (resuming
        would report a pass for scores that were never computed).
    """
    from .reporting import choose_writer

    resumable = [o for o in outputs if o.path and choose_writer(o, catalog).resumable]
    if not resumable:
        names = ", ".join(sorted(n for n, info in catalog.writers.items() if info.resumable)) or "none"
        raise UsageError(f"--resume needs a report it can append to, given with --out (resumable formats: {names})")
    path = resumable[0].path or ""
    truncate_partial_line(path)
    state = load_resume_state(path)
    wanted = set(scorers)
    # Asking for fewer scorers is fine (their scores are all there); asking for one the file lacks
    # would skip frames that were never scored by it and still report a pass.
    if state.scorers is not None and not wanted <= state.scorers:
        before = ", ".join(sorted(state.scorers)) or "none"
        now = ", ".join(sorted(wanted)) or "none"
        flags = " ".join(f"-s {name}" for name in sorted(state.scorers))
        raise UsageError(f"--resume: {path} was made with the scorers {before}, but this run also asks for "
                         f"{', '.join(sorted(wanted - state.scorers))} (scorers asked: {now}); "
                         f"resume with the same scorers ({flags}) or write a new report")
    return state

"""Resuming from a JSON Lines report: what was already scored, so a re-run skips it."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any


@dataclass
class PriorFrame:
    index: int
    pts: float | None
    timecode: str | None
    scores: dict[str, float | None]


@dataclass
class ResumeState:
    """Frames and finished sources found in an earlier, possibly killed, run's JSON Lines file."""

    finished: dict[str, dict[str, Any]] = field(default_factory=dict)  # source -> its "source" record
    frames: dict[str, list[PriorFrame]] = field(default_factory=dict)
    done_indices: dict[str, set[int]] = field(default_factory=dict)

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
            if not isinstance(source, str):
                continue
            if kind == "frame" and isinstance(record.get("index"), int):
                prior = PriorFrame(record["index"], record.get("pts"), record.get("timecode"),
                                   dict(record.get("scores") or {}))
                state.frames.setdefault(source, []).append(prior)
                state.done_indices.setdefault(source, set()).add(prior.index)
            elif kind == "source":
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

"""JSON Lines writer: one strict-JSON record per line, flushed as soon as it is written."""

from __future__ import annotations

from typing import IO, Any

from qplug.types import FrameResult, RunSummary, SourceSummary

from ._common import Options, dumps, named_record


class JsonLinesWriter:
    """Streams ``frame`` records as frames are scored, then ``source``, ``error`` and ``run`` records.

    Every line is flushed on its own so that a run that is killed still leaves every frame it
    scored on disk, each line complete and parseable.
    """

    def __init__(self, stream: IO[str], options: Options | None = None) -> None:
        self._stream = stream

    def _emit(self, record: dict[str, Any]) -> None:
        self._stream.write(dumps(record) + "\n")
        self._stream.flush()

    def write_frame(self, result: FrameResult) -> None:
        self._emit(named_record(result.to_dict()))

    def write_source(self, summary: SourceSummary) -> None:
        self._emit(named_record(summary.to_dict()))
        # Errors are repeated as records of their own so `grep '"type":"error"'` finds every failure
        # without parsing the nested lists of the source record.
        for error in summary.errors:
            self._emit(named_record(error.to_dict()))

    def close(self, run: RunSummary) -> None:
        # outcome and exit_code as the run says them: an interrupted run must not read as exit 0
        self._emit(run.to_dict())

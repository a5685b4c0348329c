"""Feeding results to report writers: choosing formats, opening outputs, resuming JSON Lines."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import IO, Any, Iterable, Iterator, Mapping

from .errors import QplugError, UsageError
from .registry import Catalog, WriterInfo, resolve
from .types import FrameResult, RunSummary, SourceSummary


@dataclass(frozen=True)
class Output:
    """One report to write: a path (None: standard output) and a format name (None: from the extension)."""

    path: str | None = None
    format: str | None = None


def choose_writer(output: Output, catalog: Catalog, default: str = "jsonl") -> WriterInfo:
    if output.format:
        return catalog.writer(output.format)
    if output.path:
        lower = output.path.lower()
        for info in catalog.writers.values():
            if any(lower.endswith(ext) for ext in info.extensions):
                return info
    return catalog.writer(default)


class _OpenOutput:
    def __init__(self, output: Output, info: WriterInfo, stream: IO[Any], owned: bool, writer: Any) -> None:
        self.output, self.info, self.stream, self.owned, self.writer = output, info, stream, owned, writer


class Reporter:
    """Opens every output, hands each result to each writer, and closes them in order."""

    def __init__(self, outputs: Iterable[Output], catalog: Catalog, options: Mapping[str, Any] | None = None,
                 resume: bool = False, default_format: str = "jsonl") -> None:
        self._open: list[_OpenOutput] = []
        options = dict(options or {})
        chosen = [(o, choose_writer(o, catalog, default_format)) for o in outputs]
        if sum(1 for o, _ in chosen if o.path is None) > 1:
            raise UsageError("only one report can go to standard output")
        try:
            for output, info in chosen:
                append = resume and info.streaming and output.path is not None
                stream, owned = _open_stream(output, info, append)
                try:
                    writer = resolve(info.factory)(stream, options)
                except Exception:
                    if owned:
                        stream.close()
                    raise
                self._open.append(_OpenOutput(output, info, stream, owned, writer))
        except Exception:
            self._close_streams()
            raise

    def frame(self, result: FrameResult) -> None:
        for out in self._open:
            _guard(out, out.writer.write_frame, result)

    def source(self, summary: SourceSummary) -> None:
        for out in self._open:
            if summary.resumed and out.info.streaming:
                continue  # its record is already in the resumed file
            _guard(out, out.writer.write_source, summary)

    def close(self, run: RunSummary) -> None:
        try:
            for out in self._open:
                _guard(out, out.writer.close, run)
        finally:
            self._close_streams()

    def _close_streams(self) -> None:
        for out in self._open:
            if out.owned:
                out.stream.close()
            else:
                out.stream.flush()
        self._open = []


def _open_stream(output: Output, info: WriterInfo, append: bool) -> tuple[IO[Any], bool]:
    if output.path is None:
        if info.binary:
            return sys.stdout.buffer, False
        return sys.stdout, False
    directory = os.path.dirname(os.path.abspath(output.path))
    if not os.path.isdir(directory):
        raise UsageError(f"{output.path}: the folder {directory} does not exist")
    mode = ("a" if append else "w") + ("b" if info.binary else "")
    try:
        if info.binary:
            return open(output.path, mode), True
        return open(output.path, mode, encoding="utf-8", newline=""), True
    except OSError as exc:
        raise UsageError(f"{output.path}: cannot write the report: {exc.strerror or exc}") from exc


def _guard(out: _OpenOutput, call: Any, arg: Any) -> None:
    try:
        call(arg)
    except BrokenPipeError:
        raise
    except OSError as exc:  # disk full, closed pipe: the report is unreliable, stop loudly
        where = out.output.path or "standard output"
        raise QplugError(f"{where}: writing the {out.info.name} report failed: {exc.strerror or exc}") from exc


def feed(results: Iterator[Any], reporter: Reporter) -> None:
    """Drain a run's results into a reporter (frames and source summaries)."""
    for item in results:
        if isinstance(item, FrameResult):
            reporter.frame(item)
        else:
            reporter.source(item)



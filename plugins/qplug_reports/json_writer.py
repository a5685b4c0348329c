"""JSON summary writer: a single document with the run and its per-source summaries."""

from __future__ import annotations

from typing import IO, Any

from qplug.types import SCHEMA_VERSION, FrameResult, RunSummary, SourceSummary

from ._common import Options, dumps, named_record, outcome_text, writer_context


class JsonSummaryWriter:
    """Collects source summaries and writes one JSON document when the run closes.

    Per-frame results are deliberately dropped: the document's size depends on the number of
    sources and events, never on video length. Use the ``jsonl`` format for frame data.
    """

    def __init__(self, stream: IO[str], options: Options | None = None) -> None:
        self._stream = stream
        context = writer_context(options)
        self._scorers: dict[str, Any] = {name: info.to_dict() for name, info in context.scorers.items()}
        self._title = context.title
        self._sources: list[dict[str, Any]] = []
        self._seen: set[str] = set()

    def write_frame(self, result: FrameResult) -> None:
        return None  # per-frame data is not part of the summary document

    def write_source(self, summary: SourceSummary) -> None:
        self._sources.append(named_record(summary.to_dict()))
        self._seen.add(summary.source_id)

    def close(self, run: RunSummary) -> None:
        # A source the core summarised but never handed to write_source still belongs in the document.
        for summary in run.sources:
            if summary.source_id not in self._seen:
                self._sources.append(named_record(summary.to_dict()))
                self._seen.add(summary.source_id)
        outcome, exit_code = run.outcome, run.exit_code
        document: dict[str, Any] = {
            "type": "summary",
            "schema": SCHEMA_VERSION,
            "title": self._title,
            # how the run ended, from the run itself: an interrupted run is never "passed"
            "outcome_text": outcome_text(outcome, exit_code),
            "run": run.to_dict(),
            "scorers": self._scorers,
            "sources": self._sources,
        }
        self._stream.write(dumps(document, indent=2) + "\n")
        self._stream.flush()

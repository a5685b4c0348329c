"""JSON summary writer: a single document with the run and its per-source summaries."""

from __future__ import annotations

from typing import IO, Any

from qplug.types import SCHEMA_VERSION, FrameResult, RunSummary, SourceSummary

from ._common import Options, dumps


class JsonSummaryWriter:
    """Collects source summaries and writes one JSON document when the run closes.

    Per-frame results are deliberately dropped: the document's size depends on the number of
    sources and events, never on video length. Use the ``jsonl`` format for frame data.
    """

    def __init__(self, stream: IO[str], options: Options | None = None) -> None:
        self._stream = stream
        options = options or {}
        raw_scorers = options.get("scorers") or {}
        self._scorers: dict[str, Any] = dict(raw_scorers) if isinstance(raw_scorers, dict) else {}
        self._title = options.get("title")
        self._sources: list[dict[str, Any]] = []
        self._seen: set[str] = set()

    def write_frame(self, result: FrameResult) -> None:
        return None  # per-frame data is not part of the summary document

    def write_source(self, summary: SourceSummary) -> None:
        self._sources.append(summary.to_dict())
        self._seen.add(summary.source_id)

    def close(self, run: RunSummary) -> None:
        # A source the core summarised but never handed to write_source still belongs in the document.
        for summary in run.sources:
            if summary.source_id not in self._seen:
                self._sources.append(summary.to_dict())
                self._seen.add(summary.source_id)
        document: dict[str, Any] = {
            "type": "summary",
            "schema": SCHEMA_VERSION,
            "title": self._title,
            "run": run.to_dict(),
            "scorers": self._scorers,
            "sources": self._sources,
        }
        self._stream.write(dumps(document, indent=2) + "\n")
        self._stream.flush()

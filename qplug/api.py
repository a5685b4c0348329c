"""The Python entry points: ``qplug.score`` for a notebook, ``qplug.iter_results`` for a stream."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Mapping, Sequence, Union

from .events import EventRule
from .gates import EventGate, Gate
from .pipeline import Result, Run, RunOptions
from .plugins import PluginHost
from .types import FrameResult, RunSummary, Sampling, SourceSummary

PathArg = Union[str, "os.PathLike[str]", Iterable[Union[str, "os.PathLike[str]"]]]


def _paths(paths: PathArg) -> list[str]:
    if isinstance(paths, (str, os.PathLike)):
        return [os.fspath(paths)]
    return [os.fspath(p) for p in paths]


def run(paths: PathArg, *, scorers: Sequence[str] | None = None, describers: Sequence[str] = (),
        fps: float | None = None, every: int | None = None, start: float | None = None,
        end: float | None = None, max_frames: int | None = None, max_side: int | None = None,
        batch_size: int | None = None, events: Mapping[str, EventRule | None] | None = None,
        gates: Sequence[Gate] = (), scorer_options: Mapping[str, Mapping[str, Any]] | None = None,
        askers: Sequence[str] = (), question: str | None = None, choices: Sequence[str] | None = None,
        model_options: Mapping[str, Any] | None = None, shard: tuple[int, int] | None = None,
        event_gates: Sequence[EventGate] = (), reference: str | None = None,
        host: PluginHost | None = None) -> Run:
    """Prepare a run (nothing is decoded until you iterate it). Arguments mirror ``qplug score``."""
    options = RunOptions(
        scorers=scorers, describers=describers, askers=askers, question=question, choices=choices,
        model_options=dict(model_options or {}),
        sampling=Sampling(fps=fps, every=every, start=start, end=end, max_frames=max_frames, max_side=max_side),
        batch_size=batch_size, events=dict(events or {}), gates=gates, scorer_options=dict(scorer_options or {}),
        shard=shard, event_gates=event_gates, reference=reference)
    return Run(_paths(paths), options, host)


def iter_results(paths: PathArg, **kwargs: Any) -> Iterator[Result]:
    """Yield a :class:`FrameResult` per frame as soon as it is scored, and a :class:`SourceSummary` per input."""
    yield from run(paths, **kwargs)


@dataclass
class ScoreResult:
    """Everything a finished run produced: per-frame results (without pixels) and the summaries."""

    frames: list[FrameResult] = field(default_factory=list)
    summary: RunSummary = field(default_factory=RunSummary)

    @property
    def sources(self) -> list[SourceSummary]:
        return self.summary.sources

    def scores(self, scorer: str) -> list[float | None]:
        """One scorer's per-frame values, in order."""
        return [f.scores.get(scorer) for f in self.frames]


def score(paths: PathArg, **kwargs: Any) -> ScoreResult:
    """Score files, directories or globs and return all results (see :func:`run` for the options)."""
    current = run(paths, **kwargs)
    result = ScoreResult(summary=current.summary)
    for item in current:
        if isinstance(item, FrameResult):
            result.frames.append(item)
    return result

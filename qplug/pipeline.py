"""The run: inputs → sources → frames → batches → scorers and describers → results and summaries.

Where a frame enters: :func:`_produce` (a thread) opens each input with its source plugin and
queues frames, so decoding overlaps with scoring. Where it is scored: :meth:`Run._score_batch`,
through the ``score_batch`` hook. Where results leave: :meth:`Run.__iter__` yields each
:class:`FrameResult` as soon as its batch is done, then a :class:`SourceSummary` per source.

Nothing one input does can end the run: unreadable files, decode errors and scorer exceptions
become :class:`ErrorRecord` entries and the run moves on.
"""

from __future__ import annotations

import math
import os
import queue
import threading
import time
import zlib
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence, Union

from .errors import InputError, QplugError, UsageError
from .events import EventDetector, EventRule
from .gates import EventGate, Gate
from .inputs import InputItem, expand_inputs, not_a_regular_file
from .plugins import PluginHost, get_host
from .pooling import POOLING_METHODS, SOURCE_POOL, Pooler, check_methods
from .registry import AskerInfo, DescriberInfo, ScorerInfo, SourceInfo, resolve
from .reference import Pairing, check_template, compare_media
from .resume import ResumeState
from .timecode import seconds_to_clock
from .types import Answer, ErrorRecord, Event, Frame, FrameResult, MediaInfo, RunSummary, Sampling, Score, SourceSummary

Result = Union[FrameResult, SourceSummary]


@dataclass
class RunOptions:
    """How to run. Every field has a default that does something sensible.

    :param scorers: scorer names; None runs the scorers registered with ``default=True``.
    :param describers: describer names (none by default: describing is slow).
    :param askers: asker names that answer ``question`` about each frame.
    :param question: the question for the askers.
    :param choices: the options the answer must be one of (None: free text).
    :param sampling: which frames of each video to deliver.
    :param batch_size: frames per batch; None uses the largest batch any chosen scorer prefers.
    :param pooling: pooling methods for the per-source summary.
    :param events: per-scorer event rules overriding the scorer's defaults; None disables a scorer's events.
    :param detect_events: False turns off every scorer's events.
    :param gates: pass/fail gates checked on each source's pooled scores.
    :param event_gates: fail a source that has an event of a given name and minimum length.
    :param resume: what an earlier run already scored (see :mod:`qplug.resume`).
    :param scorer_options: keyword options for a scorer's, describer's or asker's factory, by its name
        (or by ``"scorer:NAME"``, ``"describer:NAME"``, ``"asker:NAME"`` when names are shared).
    :param model_options: keyword options for every component that ``needs_model`` (``model``,
        ``adapter``, ``device``...); per-name ``scorer_options`` win on conflicts.
    :param prefetch: how many decoded frames may wait for scoring.
    :param prefetch_bytes: how many bytes of decoded frames (counted as RGB, 3 bytes a pixel) may be
        read ahead or wait in a batch; bounds memory whatever the frame size. One frame is always
        allowed, however large.
    :param shard: ``(i, n)``: read only the inputs whose path hashes to shard ``i`` of ``n`` (CRC-32 of
        the path's bytes), so ``n`` jobs given the same inputs split them without talking to each other.
    :param reference: the reference for full-reference scorers: a file, or a template such as
        ``masters/{stem}.mov`` (see :mod:`qplug.reference`).
    :param max_frame_errors: per-frame errors tolerated before the run's outcome is ``errors``
        (exit 2); see :class:`~qplug.types.RunSummary`.
    :param progress: called after each batch with (source, frames scored in it, media info).
    """

    scorers: Sequence[str] | None = None
    describers: Sequence[str] = ()
    askers: Sequence[str] = ()
    question: str | None = None
    choices: Sequence[str] | None = None
    sampling: Sampling = field(default_factory=Sampling)
    batch_size: int | None = None
    pooling: Sequence[str] = POOLING_METHODS
    events: Mapping[str, EventRule | None] = field(default_factory=dict)
    detect_events: bool = True
    gates: Sequence[Gate] = ()
    event_gates: Sequence[EventGate] = ()
    resume: ResumeState | None = None
    scorer_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    model_options: Mapping[str, Any] = field(default_factory=dict)
    prefetch: int = 16
    shard: tuple[int, int] | None = None
    reference: str | None = None
    prefetch_bytes: int = 256 * 1024 * 1024
    max_frame_errors: int = 0
    progress: Callable[[str, int, MediaInfo | None], None] | None = None


# Messages from the decoding thread to the scoring loop.
@dataclass
class _Start:
    item: InputItem
    media: MediaInfo | None


@dataclass
class _End:
    item: InputItem
    error: ErrorRecord | None
    events: list[Event] = field(default_factory=list)  # what the source itself found (decode gaps)
    more: list[ErrorRecord] = field(default_factory=list)  # problems beside the input's own (its reference)


@dataclass
class _Resumed:
    record: dict[str, Any]


@dataclass
class _Context:
    """The frame just before the first frame a resumed run scores: temporal scorers see it, unscored."""

    frame: Frame


def _frame_bytes(frame: Frame) -> int:
    own = frame.width * frame.height * 3
    return own + (_frame_bytes(frame.reference) if frame.reference is not None else 0)


def _shortfall(reference: MediaInfo | None, media: MediaInfo | None) -> str | None:
    """How the reference falls short of the input's duration (by more than one frame), or None."""
    if reference is None or media is None or not reference.duration or not media.duration:
        return None
    frame = 1.0 / media.fps if media.fps else 0.04
    if reference.duration + frame < media.duration - 1e-6:
        return (f"ends at {seconds_to_clock(reference.duration)} and this input at {seconds_to_clock(media.duration)}: "
                f"its last {seconds_to_clock(media.duration - reference.duration)} has no reference")
    return None


class _Reference:
    """One input's reference, on the decoding thread: its path, its reader and the frame pairing.

    Problems with the reference (missing, unreadable, shorter than the input) are errors of the
    input (exit 2) but never stop the input's other scorers.
    """

    def __init__(self, run: "Run", source_id: str) -> None:
        self.run = run
        self.source_id = source_id
        self.path: str | None = None
        self.reader: Any = None
        self.pairing: Pairing | None = None
        self.broken = False
        self.problems: list[str] = []

    def open(self, media: MediaInfo | None) -> None:
        template = self.run.options.reference or ""
        path = self.run.host.hook.find_reference(source_id=self.source_id, reference=template)
        if not path:
            self.problems.append(f"no reference found for it (--reference {template})")
            return
        problem = not_a_regular_file(path)
        if problem is not None:
            self.problems.append(f"reference {path}: {problem}")
            return
        self.path = path
        source = self.run.host.catalog().source_for(path)
        if source is None:
            self.problems.append(f"reference {path}: unsupported file type")
            self.path = None
            return
        try:
            sampling = replace(self.run.options.sampling, max_frames=None)
            self.reader = self.run._source(source).open(path, sampling)
        except InputError as exc:
            self.problems.append(f"reference {path}: {exc.reason}")
            self.path = None
            return
        info = getattr(self.reader, "info", None)
        if media is not None:
            media.warnings.extend(compare_media(info, media, path))
        if self.run._decode_reference:
            self.pairing = Pairing(iter(self.reader))
            return
        # The scorers read the reference file themselves (vmaf through ffmpeg): the probe is enough
        # to say whether it covers the input.
        shortfall = _shortfall(info, media)
        if shortfall:
            self.problems.append(f"reference {path} {shortfall}")
        self.close()

    def attach(self, frame: Frame) -> None:
        frame.reference_path = self.path
        pairing = self.pairing
        if pairing is None:
            return
        if self.broken:  # the reference's reader failed: every later frame goes without a partner
            pairing.unmatched += 1
            pairing.last_unmatched = frame.pts
            return
        try:
            frame.reference = pairing.match(frame.pts)
        except InputError as exc:
            self.problems.append(f"reference {self.path}: {exc.reason}")
            self.broken = True
            self.attach(frame)

    def errors(self) -> list[ErrorRecord]:
        problems = list(self.problems)
        if self.pairing is not None and self.pairing.unmatched:
            problems.append(f"reference {self.path} ends before this input: {self.pairing.unmatched} frame(s) "
                            f"have no reference frame (the last at {seconds_to_clock(self.pairing.last_unmatched or 0)})")
        return [ErrorRecord(self.source_id, problem, None, "read") for problem in problems]

    def close(self) -> None:
        if self.reader is not None:
            _close_quietly(self.reader)
            self.reader = None


def in_shard(path: str, index: int, count: int) -> bool:
    """Whether ``path`` belongs to shard ``index`` of ``count``: stable across machines and runs
    (CRC-32 of the path's bytes, not Python's salted ``hash``), whatever order the inputs come in."""
    return zlib.crc32(os.fsencode(path)) % count == index


class _ByteBudget:
    """Bytes of decoded frames held between the decoding thread and scoring (queued or batched).

    Counting frames is not enough: one 9450x9450 still is 268 MB as RGB, so 16 of them read ahead
    would take 4 GB. The producer waits while the budget is spent (unless nothing is held, so a
    single huge frame still gets through), and the scoring loop flushes a partial batch when the
    producer is waiting, so the two never wait on each other.
    """

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self.held = 0
        self.waiting = False
        self._cond = threading.Condition()

    def acquire(self, size: int, stop: threading.Event) -> bool:
        with self._cond:
            while self.held > 0 and self.held + size > self.limit:
                if stop.is_set():
                    return False
                self.waiting = True
                self._cond.wait(0.05)
            self.waiting = False
            self.held += size
            return True

    def release(self, size: int) -> None:
        with self._cond:
            self.held = max(0, self.held - size)
            self._cond.notify_all()


_DONE = object()


class _SourceState:
    """Per-source accumulation: poolers, event detectors, errors, timing."""

    def __init__(self, run: "Run", item: InputItem, media: MediaInfo | None) -> None:
        self.item = item
        self.media = media
        self.started = time.perf_counter()
        self.frames = 0
        self.frame_errors = 0
        #: frames an earlier run scored (``--resume``): the scorers did not see them
        self.resumed_frames = 0
        self.errors: list[ErrorRecord] = []
        self.poolers = {s.name: Pooler() for s in run.scorer_infos}
        fps = media.fps if media else None
        self.detectors = {s.name: EventDetector(s, rule, fps)
                          for s in run.scorer_infos if (rule := run.event_rules.get(s.name)) is not None}

    def add(self, pts: float | None, duration: float | None, timecode: str | None,
            scores: Mapping[str, float | None], failed: bool = False) -> None:
        self.frames += 1
        self.frame_errors += failed
        for name, pooler in self.poolers.items():
            value = scores.get(name)
            pooler.add(value)
            detector = self.detectors.get(name)
            if detector is not None:
                detector.add(pts, value, duration, timecode)


class Run:
    """One run over some inputs. Iterate it for results; ``summary`` is complete once iteration ends."""

    def __init__(self, paths: Iterable[str], options: RunOptions | None = None,
                 host: PluginHost | None = None) -> None:
        self.paths = [str(p) for p in paths]
        self.options = options or RunOptions()
        self.host = host or get_host()
        catalog = self.host.catalog()
        check_methods(self.options.pooling)
        names = self.options.scorers
        if names is None:
            names = [s.name for s in catalog.scorers.values() if s.default]
        self.scorer_infos: list[ScorerInfo] = [catalog.scorer(n) for n in dict.fromkeys(names)]
        self.describer_infos: list[DescriberInfo] = [catalog.describer(n) for n in dict.fromkeys(self.options.describers)]
        self.asker_infos: list[AskerInfo] = [catalog.asker(n) for n in dict.fromkeys(self.options.askers)]
        if self.asker_infos and not (self.options.question or "").strip():
            raise UsageError("askers need a question")
        if self.options.choices is not None and len(set(self.options.choices)) < 2:
            raise UsageError("give at least two different choices")
        if not self.scorer_infos and not self.describer_infos and not self.asker_infos:
            raise UsageError("nothing to run: no scorer, describer or asker chosen (see `qplug scorers`)")
        chosen = {s.name for s in self.scorer_infos}
        for gate in self.options.gates:
            prefix, _, pool = gate.scorer.rpartition(".")
            if gate.scorer not in chosen and prefix in chosen:
                raise UsageError(f"gate on {gate.scorer!r}: unknown pooling {pool!r} "
                                 f"(use one of {', '.join(POOLING_METHODS)})")
            if gate.scorer not in chosen:
                raise UsageError(f"gate on {gate.scorer!r}, which is not among the scorers run ({', '.join(sorted(chosen))})")
        self._decode_reference = False
        self._check_reference()
        source_events = {name for info in catalog.sources.values() for name in info.events}
        for event_gate in self.options.event_gates:
            if event_gate.name not in chosen and event_gate.name not in source_events:
                known = ", ".join(sorted(chosen | source_events))
                raise UsageError(f"--fail-on-event {event_gate.name!r}: no scorer run here and no source reports "
                                 f"events of that name (known: {known})")
        for name in self.options.events:
            if name not in chosen:
                raise UsageError(f"event rule for {name!r}, which is not among the scorers run")
        self.event_rules: dict[str, EventRule] = {}
        for info in self.scorer_infos:
            rule: EventRule | None
            if info.name in self.options.events:
                rule = self.options.events[info.name]
            elif info.event_threshold is not None:
                rule = EventRule(info.event_threshold, info.event_min_duration)
            else:
                rule = None
            if rule is not None and self.options.detect_events:
                self.event_rules[info.name] = rule
        self.batch_size = self.options.batch_size or max(
            [s.batch_size for s in self.scorer_infos] + [d.batch_size for d in self.describer_infos]
            + [a.batch_size for a in self.asker_infos])
        self.summary = RunSummary(scorers=[s.name for s in self.scorer_infos],
                                  describers=[d.name for d in self.describer_infos],
                                  askers=[a.name for a in self.asker_infos],
                                  max_frame_errors=self.options.max_frame_errors)
        self._check_component_options()
        self._inputs: list[InputItem] | None = None
        self._budget = _ByteBudget(self.options.prefetch_bytes)
        self._scorers: dict[str, Any] = {}
        self._describers: dict[str, Any] = {}
        self._askers: dict[str, Any] = {}
        self._sources: dict[str, Any] = {}

    def _check_reference(self) -> None:
        full_reference = [s.name for s in self.scorer_infos if {"reference", "reference_path"} & set(s.inputs)]
        if self.options.reference is None:
            if full_reference:
                raise UsageError(f"{', '.join(full_reference)} compare each input with its source: give "
                                 f"--reference FILE (or a template such as 'masters/{{stem}}.mov')")
            return
        if not full_reference:
            raise UsageError("--reference is for full-reference scorers (see `qplug scorers`), and none runs here")
        check_template(self.options.reference)
        self._decode_reference = any("reference" in s.inputs for s in self.scorer_infos)

    def _check_component_options(self) -> None:
        """An option for a component that does not run is a mistake (a typo, a forgotten ``-s``)."""
        running = {f"{kind}:{info.name}" for kind, infos in (
            ("scorer", self.scorer_infos), ("describer", self.describer_infos), ("asker", self.asker_infos))
            for info in infos}
        for name in self.options.scorer_options:
            if name not in running and not any(r.endswith(f":{name}") for r in running):
                raise UsageError(f"--option {name}.KEY=VALUE: no scorer, describer, asker or report writer called "
                                 f"{name!r} runs here")

    def inputs(self) -> list[InputItem]:
        """The files this run reads (directories and globs expanded), each with its source or error."""
        if self._inputs is None:
            items = expand_inputs(self.paths, self.host.catalog())
            shard = self.options.shard
            self._inputs = [item for item in items if shard is None or in_shard(item.path, *shard)]
        return self._inputs

    # -- building components -------------------------------------------------------------------

    def _build(self) -> None:
        """Build every scorer and describer before decoding starts, so a bad setup fails at once."""
        for kind, infos, built in (("scorer", self.scorer_infos, self._scorers),
                                   ("describer", self.describer_infos, self._describers),
                                   ("asker", self.asker_infos, self._askers)):
            for info in infos:
                options = dict(self.options.model_options) if info.needs_model else {}
                options.update(self.options.scorer_options.get(info.name, {}))
                # "describer:vlm" reaches only the describer when an asker shares its name.
                options.update(self.options.scorer_options.get(f"{kind}:{info.name}", {}))
                built[info.name] = _construct(info.name, info.factory, options)

    def _source(self, info: SourceInfo) -> Any:
        if info.name not in self._sources:
            self._sources[info.name] = _construct(info.name, info.factory, {})
        return self._sources[info.name]

    # -- the loop ------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Result]:
        return self._iterate(self.inputs())

    def iterate_paths(self, paths: Iterable[str]) -> Iterator[Result]:
        """Run over ``paths`` pulled one at a time as decoding reaches them (a worker's task queue),
        instead of ``self.paths``; components are built once for all of them."""
        catalog = self.host.catalog()
        shard = self.options.shard
        items = (item for path in paths for item in expand_inputs([path], catalog)
                 if shard is None or in_shard(item.path, *shard))
        return self._iterate(items)

    def _iterate(self, items: Iterable[InputItem]) -> Iterator[Result]:
        started = time.perf_counter()
        self._build()
        channel: queue.Queue[Any] = queue.Queue(maxsize=max(self.options.prefetch, self.batch_size))
        stop = threading.Event()
        self._budget = _ByteBudget(self.options.prefetch_bytes)
        producer = threading.Thread(target=self._produce, args=(items, channel, stop), name="qplug-decode", daemon=True)
        producer.start()
        state: _SourceState | None = None
        batch: list[Frame] = []
        try:
            while True:
                try:
                    message = channel.get(timeout=0.05)
                except queue.Empty:
                    if batch and self._budget.waiting:
                        assert state is not None
                        yield from self._flush(state, batch)  # the decoder waits for memory: score what we have
                        batch = []
                    continue
                if message is _DONE:
                    break
                if isinstance(message, Frame):
                    assert state is not None
                    batch.append(message)
                    if len(batch) >= self.batch_size:
                        yield from self._flush(state, batch)
                        batch = []
                elif isinstance(message, _Context):
                    assert state is not None
                    yield from self._flush(state, batch)
                    batch = []
                    self._prime_temporal(message.frame)
                elif isinstance(message, _Start):
                    state = self._begin_source(message)
                elif isinstance(message, _End):
                    assert state is not None
                    yield from self._flush(state, batch)
                    batch = []
                    summary = self._finish_source(state, message.error, message.events, message.more)
                    state = None
                    yield summary
                elif isinstance(message, _Resumed):
                    summary = SourceSummary.from_dict(message.record)
                    summary.gate_failures = self._gate_failures(summary.pooled, summary.events)
                    self.summary.sources.append(summary)
                    yield summary
                elif isinstance(message, BaseException):
                    raise message
        finally:
            stop.set()
            _drain(channel)
            producer.join(timeout=10)
            self.summary.wall_seconds = time.perf_counter() - started
            for obj in [*self._scorers.values(), *self._describers.values(), *self._askers.values()]:
                _close_quietly(obj)

    def _produce(self, items: Iterable[InputItem], channel: "queue.Queue[Any]", stop: threading.Event) -> None:
        """Decoding thread: open each input and queue its frames (the queue bound keeps memory flat)."""

        def put(message: Any) -> bool:
            while not stop.is_set():
                try:
                    channel.put(message, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        resume = self.options.resume
        try:
            for item in items:
                if stop.is_set():
                    return
                if resume is not None and item.path in resume.finished:
                    put(_Resumed(resume.finished[item.path]))
                    continue
                if item.error is not None or item.source is None:
                    put(_Start(item, None))
                    put(_End(item, ErrorRecord(item.path, item.error or "no source", None, "read")))
                    continue
                reader = None
                error: ErrorRecord | None = None
                skipped: Frame | None = None  # the last frame an earlier run scored, kept for temporal scorers
                reference = _Reference(self, item.path) if self.options.reference is not None else None
                try:
                    reader = self._source(item.source).open(item.path, self.options.sampling)
                    if reference is not None:
                        reference.open(reader.info)
                    if not put(_Start(item, reader.info)):
                        return
                    for frame in reader:
                        if reference is not None:
                            reference.attach(frame)
                        if resume is not None and resume.is_done(item.path, frame.index):
                            if skipped is not None:
                                skipped.release()
                            skipped = frame
                            continue
                        if skipped is not None:
                            if not self._budget.acquire(_frame_bytes(skipped), stop) or not put(_Context(skipped)):
                                return
                            skipped = None
                        if not self._budget.acquire(_frame_bytes(frame), stop) or not put(frame):
                            return
                except InputError as exc:
                    error = ErrorRecord(item.path, exc.reason, None, "read")
                except UsageError:
                    raise  # misconfiguration (a bad environment variable): ends the run once, clearly
                except Exception as exc:  # a source plugin's bug: report it against this input only
                    error = ErrorRecord(item.path, f"{item.source.name} source failed: {type(exc).__name__}: {exc}", None, "read")
                finally:
                    if skipped is not None:
                        skipped.release()
                    if reader is not None:
                        _close_quietly(reader)
                    if reference is not None:
                        reference.close()
                if reader is None and not put(_Start(item, None)):
                    return
                more = reference.errors() if reference is not None and reader is not None else []
                if not put(_End(item, error, _source_events(reader), more)):
                    return
        except BaseException as exc:  # never leave the scoring loop waiting forever
            put(exc)
        finally:
            put(_DONE)

    def _begin_source(self, message: _Start) -> _SourceState:
        state = _SourceState(self, message.item, message.media)
        for scorer in self._scorers.values():
            reset = getattr(scorer, "reset", None)
            if callable(reset):
                reset()
        resume = self.options.resume
        if resume is not None:
            # Frames scored before the interruption count in this source's pooled scores and events.
            for prior in resume.frames.get(message.item.path, []):
                state.add(prior.pts, None, prior.timecode, prior.scores, prior.failed)
                state.resumed_frames += 1
        return state

    def _flush(self, state: _SourceState, batch: list[Frame]) -> Iterator[FrameResult]:
        if not batch:
            return
        results = [FrameResult.for_frame(frame) for frame in batch]
        for info in self.scorer_infos:
            self._score_batch(info, batch, results)
        for dinfo in self.describer_infos:
            describer = self._describers[dinfo.name]
            self._per_frame(f"describe:{dinfo.name}", dinfo.batch_size, batch, results, describer.describe,
                            lambda result, text, name=dinfo.name: result.descriptions.__setitem__(name, str(text)))
        question, choices = self.options.question or "", self.options.choices
        for ainfo in self.asker_infos:
            asker = self._askers[ainfo.name]
            self._per_frame(f"ask:{ainfo.name}", ainfo.batch_size, batch, results,
                            lambda frames, asker=asker: asker.ask(frames, question, list(choices) if choices else None),
                            lambda result, answer, name=ainfo.name: self._store_answer(result, name, question, answer))
        for frame, result in zip(batch, results):
            state.add(frame.pts, frame.duration, frame.timecode, result.scores, bool(result.errors))
            self.summary.frames += 1
            yield result
            frame.release()
            self._budget.release(_frame_bytes(frame))
            result.frame = None
        if self.options.progress is not None:
            self.options.progress(state.item.path, state.frames, state.media)

    def _prime_temporal(self, frame: Frame) -> None:
        """Show temporal scorers the frame before a resumed run's first frame; their answer is dropped.

        A resumed run then scores that first frame against the same previous frame an uninterrupted
        run would have used, so the two reports match frame for frame.
        """
        try:
            for info in self.scorer_infos:
                if info.temporal:
                    try:
                        self.host.hook.score_batch(scorer_name=info.name, scorer=self._scorers[info.name], frames=[frame])
                    except Exception:
                        pass  # the real frame will report the scorer's problem, if it has one
        finally:
            frame.release()
            self._budget.release(_frame_bytes(frame))

    def _score_batch(self, info: ScorerInfo, batch: list[Frame], results: list[FrameResult]) -> None:
        scorer = self._scorers[info.name]

        def call(frames: list[Frame]) -> Sequence[Any]:
            values = self.host.hook.score_batch(scorer_name=info.name, scorer=scorer, frames=frames)
            return list(values) if values is not None else []

        for offset in range(0, len(batch), info.batch_size):
            frames = batch[offset:offset + info.batch_size]
            targets = results[offset:offset + info.batch_size]
            # A temporal scorer has already moved past these frames: asking again would compare a
            # frame with itself, so its failed batch is not retried frame by frame.
            for frame, result, (value, reason) in zip(frames, targets, _isolating(call, frames, retry=not info.temporal)):
                if reason is None:
                    _store(result, info, value)
                else:
                    result.scores[info.name] = None
                    result.errors.append(ErrorRecord(frame.source_id, reason, frame.index, f"score:{info.name}"))

    def _per_frame(self, stage: str, size: int, batch: list[Frame], results: list[FrameResult],
                   call: Callable[[list[Frame]], Sequence[Any]], store: Callable[[FrameResult, Any], None]) -> None:
        """Run a describer or asker over sub-batches; an exception marks only the frames it belongs to."""
        for offset in range(0, len(batch), size):
            frames = batch[offset:offset + size]
            targets = results[offset:offset + size]
            for frame, result, (output, reason) in zip(frames, targets, _isolating(call, frames, retry=True)):
                if reason is None:
                    store(result, output)
                else:
                    result.errors.append(ErrorRecord(frame.source_id, reason, frame.index, stage))

    def _store_answer(self, result: FrameResult, name: str, question: str, answer: Any) -> None:
        record = {"question": question, **_answer_dict(answer)}
        choices = self.options.choices
        if choices and record.get("choice", record["text"]) not in choices:
            result.errors.append(ErrorRecord(result.source_id, f"answer {record['text']!r} is not one of the choices",
                                             result.index, f"ask:{name}"))
            return
        result.answers[name] = record

    def _finish_source(self, state: _SourceState, error: ErrorRecord | None,
                       source_events: Sequence[Event] = (), more: Sequence[ErrorRecord] = ()) -> SourceSummary:
        if error is not None:
            state.errors.append(error)
        state.errors.extend(more)
        pooled = {name: pooler.pooled(self.options.pooling) for name, pooler in state.poolers.items()} if state.frames else {}
        source_scores = self._score_sources(state, pooled) if state.frames and not state.resumed_frames else {}
        found = [e for d in state.detectors.values() for e in d.finish()] + list(source_events)
        events = sorted(found, key=lambda e: (e.start, e.scorer))
        summary = SourceSummary(source_id=state.item.path, media=state.media, frames=state.frames, pooled=pooled,
                                events=events, errors=state.errors, frame_errors=state.frame_errors,
                                source_scores=source_scores,
                                wall_seconds=round(time.perf_counter() - state.started, 4))
        if state.frames:
            summary.gate_failures = self._gate_failures(pooled, events)
        self.summary.sources.append(summary)
        return summary

    def _score_sources(self, state: _SourceState, pooled: dict[str, dict[str, float | None]]) -> dict[str, dict[str, Any]]:
        """Each scorer's verdict on the whole source (``score_source()``), into ``pooled[name]["source"]``.

        Not asked after a ``--resume`` that continued this source part-way: the scorer saw only the
        frames after the resume point, and a verdict on part of a source is not the source's.
        A scorer that fails here fails the source (a whole-source error), as a reader would.
        """
        found: dict[str, dict[str, Any]] = {}
        for info in self.scorer_infos:
            call = getattr(self._scorers[info.name], "score_source", None)
            if not callable(call):
                continue
            try:
                value = call()
                if value is None:
                    continue
                record = value.to_dict() if isinstance(value, Score) else {"value": float(value)}
                if not math.isfinite(float(record["value"])):
                    reason = (record.get("extra") or {}).get("error") or f"non-finite score {record['value']}"
                    raise ValueError(reason)
            except Exception as exc:
                state.errors.append(ErrorRecord(state.item.path, f"{info.name}: {_reason(exc)}", None,
                                                f"score_source:{info.name}"))
                continue
            record["value"] = float(record["value"])
            found[info.name] = record
            pooled.setdefault(info.name, {})[SOURCE_POOL] = record["value"]
        return found

    def _gate_failures(self, pooled: dict[str, dict[str, float | None]], events: Sequence[Event]) -> list[str]:
        return ([msg for gate in self.options.gates if (msg := gate.check(pooled)) is not None]
                + [msg for gate in self.options.event_gates if (msg := gate.check(events)) is not None])


_SECRET_WORDS = ("key", "secret", "token", "password")


def _printable(options: Mapping[str, Any]) -> dict[str, Any]:
    """Options as an error message may show them: values of secret-looking keys (api_key...) hidden."""
    return {k: "***" if any(w in k.lower() for w in _SECRET_WORDS) else v for k, v in options.items()}


def _construct(name: str, factory: Any, options: Mapping[str, Any]) -> Any:
    try:
        return resolve(factory)(**options)
    except QplugError:
        raise
    except TypeError as exc:
        raise UsageError(f"{name}: bad options {_printable(options)}: {exc}") from exc
    except Exception as exc:
        raise UsageError(f"{name} could not be set up: {type(exc).__name__}: {exc}") from exc


def _store(result: FrameResult, info: ScorerInfo, value: float | Score | None) -> None:
    if isinstance(value, Score):
        number: float | None = float(value.value)
        if value.levels:
            result.levels[info.name] = {k: float(v) for k, v in value.levels.items()}
        if value.extra:
            result.extra[info.name] = dict(value.extra)
    elif value is None:
        number = None
    else:
        number = float(value)
    if number is not None and not math.isfinite(number):
        # A scorer that cannot score a frame (an unparseable model answer) may say why in extra["error"].
        reason = (value.extra or {}).get("error") if isinstance(value, Score) else None
        result.errors.append(ErrorRecord(result.source_id, str(reason or f"non-finite score {number}"), result.index,
                                         f"score:{info.name}"))
        number = None
    result.scores[info.name] = number


def _answer_dict(answer: Any) -> dict[str, Any]:
    if isinstance(answer, Answer):
        return answer.to_dict()
    return {"text": str(answer)}


#: A failed batch is retried one frame at a time, so that one frame a component cannot handle (a
#: server refusing one request, a frame that trips the model) costs that frame only. When this many
#: first single-frame retries fail for the batch's own reason, the failure is the component's, not
#: the frames' (a server down, a model out of memory): the rest is not retried, so a dead component
#: costs a few calls per batch, not one per frame.
SYSTEMIC_FAILURES = 3


def _isolating(call: Callable[[list[Frame]], Sequence[Any]], frames: list[Frame],
               retry: bool) -> list[tuple[Any, str | None]]:
    """``call`` on the batch, as (output, None) per frame, or (None, why) for each frame it failed on.

    A wrong number of outputs is the component's bug, whatever the frames: that is not retried.
    """
    try:
        outputs = list(call(frames))
    except Exception as exc:
        reason = _reason(exc)
    else:
        return _one_each(outputs, len(frames))
    if not retry or len(frames) == 1:
        return [(None, reason)] * len(frames)
    outcomes: list[tuple[Any, str | None]] = []
    systemic = True  # until a single frame passes or fails for another reason
    for count, frame in enumerate(frames):
        if systemic and count == SYSTEMIC_FAILURES:
            return outcomes + [(None, reason)] * (len(frames) - count)
        try:
            (outcome,) = _one_each(list(call([frame])), 1)
        except Exception as exc:
            outcome = (None, _reason(exc))
        systemic = systemic and outcome[1] == reason
        outcomes.append(outcome)
    return outcomes


def _one_each(outputs: list[Any], count: int) -> list[tuple[Any, str | None]]:
    if len(outputs) != count:
        return [(None, f"ValueError: returned {len(outputs)} results for {count} frame(s)")] * count
    return [(output, None) for output in outputs]


def _reason(exc: BaseException) -> str:
    if isinstance(exc, InputError):
        return exc.reason
    return f"{type(exc).__name__}: {exc}"


def _source_events(reader: Any) -> list[Event]:
    """Events a reader found on its own (``reader.events``: decode gaps, dropped frames), if it has any."""
    try:
        found = list(getattr(reader, "events", None) or [])
    except Exception:
        return []
    return [event for event in found if isinstance(event, Event)]


def _close_quietly(obj: Any) -> None:
    close = getattr(obj, "close", None)
    if callable(close):
        try:
            close()
        except Exception:
            pass


def _drain(channel: "queue.Queue[Any]") -> None:
    """Empty the queue so a producer blocked on ``put`` sees the stop flag and exits."""
    # A signal that lands inside Queue.get can leave the queue's lock taken for good: CPython cannot
    # promise that a `with` releases a lock whose __enter__ returned just before the exception
    # (bpo-29988), and the next get then waits forever (seen once: a SIGTERM'd run hung here). Nobody
    # holds that lock for a second otherwise, so one still taken after a second was abandoned.
    if not channel.mutex.acquire(timeout=1.0):
        channel.mutex.release()
    else:
        channel.mutex.release()
    while True:
        try:
            item = channel.get_nowait()
        except queue.Empty:
            return
        if isinstance(item, Frame):
            item.release()

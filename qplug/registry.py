"""What plugins register: named factories with metadata, and the protocols the built objects follow.

A factory is either a callable or an import path ``"package.module:attribute"``. Import paths are
resolved only when the component is first used, so listing plugins or printing ``--help`` never
imports torch, OpenCV or ffmpeg bindings.
"""

from __future__ import annotations

import importlib
import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Iterator, Mapping, Protocol, Sequence, Union, runtime_checkable

from .errors import PluginError, UsageError

if TYPE_CHECKING:
    from .types import Answer, Frame, FrameResult, MediaInfo, RunSummary, Sampling, Score, SourceSummary

Factory = Union[str, Callable[..., Any]]
_NAME = re.compile(r"^[a-z][a-z0-9_\-.]*$")


def resolve(factory: Factory) -> Callable[..., Any]:
    """Turn an import path ``"pkg.mod:attr"`` into the object it names (callables pass through)."""
    if callable(factory):
        return factory
    module_name, _, attr = factory.partition(":")
    if not module_name or not attr:
        raise PluginError(f"factory {factory!r} is not of the form 'package.module:attribute'")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise PluginError(f"cannot load {factory!r}: {exc}") from exc
    return target


# ---------------------------------------------------------------------------------------------
# Protocols: what a factory returns


@runtime_checkable
class Scorer(Protocol):
    """Scores a batch of frames. Built once per run by its factory.

    Temporal scorers (``ScorerInfo.temporal``) receive each source's frames in order and keep state
    between batches; ``reset()`` is called before each new source.
    """

    def score(self, frames: Sequence["Frame"]) -> Sequence["float | Score | None"]:
        """Return one score per frame, in order (None: this frame has no score, e.g. first of a pair)."""
        ...


@runtime_checkable
class Describer(Protocol):
    """Writes a short text about each frame's low-level quality."""

    def describe(self, frames: Sequence["Frame"]) -> Sequence[str]:
        ...


@runtime_checkable
class Asker(Protocol):
    """Answers one question about each frame.

    With ``choices`` the answer must be one of them (compare the options' likelihoods rather than
    parse free text); without, it is free text.
    """

    def ask(self, frames: Sequence["Frame"], question: str, choices: Sequence[str] | None = None) -> Sequence["Answer"]:
        ...


@runtime_checkable
class Source(Protocol):
    """Opens one input file and delivers its frames."""

    def open(self, path: str, sampling: "Sampling") -> "SourceReader":
        """Probe the file and return a reader; raise :class:`qplug.errors.InputError` if it is unreadable."""
        ...


@runtime_checkable
class SourceReader(Protocol):
    """An open input. Iterating yields frames; ``close()`` frees decoders and child processes.

    A reader may also have an ``events`` attribute: a list of :class:`qplug.types.Event` it found
    itself (``decode_gap``: frames the decoder lost), read once iteration has ended and added to the
    source's summary beside the scorers' events.
    """

    info: "MediaInfo"

    def __iter__(self) -> Iterator["Frame"]:
        ...

    def close(self) -> None:
        ...


@runtime_checkable
class Writer(Protocol):
    """Writes results as they arrive. Built by its factory with ``(stream, context)``, a :class:`WriterContext`."""

    def write_frame(self, result: "FrameResult") -> None:
        ...

    def write_source(self, summary: "SourceSummary") -> None:
        ...

    def close(self, run: "RunSummary") -> None:
        ...


# ---------------------------------------------------------------------------------------------
# Registration records


def _check_name(kind: str, name: str) -> None:
    if not _NAME.match(name):
        raise PluginError(f"{kind} name {name!r} must be lower-case letters, digits, '_', '-' or '.'")


@dataclass(frozen=True)
class ScorerInfo:
    """A scorer a plugin offers.

    :param name: unique name used on the command line (``--scorer NAME``) and in reports.
    :param factory: callable or import path building the :class:`Scorer`; called with keyword options.
    :param description: one line for ``qplug scorers``.
    :param range: (low, high) of the values; ``float('inf')`` for unbounded.
    :param higher_is_better: direction of the score; None for a two-sided score with an ``ideal``.
    :param ideal: for two-sided scores (exposure), the best value; thresholds are then distances from it.
    :param inputs: what the scorer reads from a frame: ``"rgb"``, ``"luma"``, ``"previous"`` (temporal),
        ``"planes"`` (coded YUV samples), ``"reference"`` (the paired reference frame, full-reference
        scorers: qplug decodes the reference) or ``"reference_path"`` (the reference file only).
    :param temporal: True when it compares a frame with the frames before it (ordered, per source).
    :param batch_size: the batch size it prefers.
    :param needs_model: True when it loads a model (slow start, memory).
    :param needs_gpu: True when it is impractical without an accelerator.
    :param event_threshold: default threshold for timecoded events (None: no events by default).
    :param event_min_duration: seconds a score must stay past the threshold to make an event.
    :param unit: what the number measures, for reports ("fraction", "levels", "1-5"...).
    :param default: True when plain ``qplug score`` (no ``--scorer``) should run it.
    """

    name: str
    factory: Factory
    description: str
    range: tuple[float, float]
    higher_is_better: bool | None
    inputs: tuple[str, ...] = ("rgb",)
    temporal: bool = False
    batch_size: int = 8
    needs_model: bool = False
    needs_gpu: bool = False
    event_threshold: float | None = None
    event_min_duration: float = 0.0
    unit: str = ""
    default: bool = False
    ideal: float | None = None

    def __post_init__(self) -> None:
        _check_name("scorer", self.name)
        if (self.higher_is_better is None) != (self.ideal is not None):
            raise PluginError(f"scorer {self.name!r}: give either higher_is_better or an ideal value, not both")
        low, high = self.range
        if not low < high:
            raise PluginError(f"scorer {self.name!r}: range {self.range} must have low < high")
        if self.batch_size < 1:
            raise PluginError(f"scorer {self.name!r}: batch_size must be >= 1")

    def badness(self, value: float) -> float:
        """A number that grows as the score gets worse, whatever the direction."""
        if self.ideal is not None:
            return abs(value - self.ideal)
        return -value if self.higher_is_better else value

    def is_bad(self, value: float, threshold: float) -> bool:
        """True when ``value`` is past ``threshold`` on the bad side (two-sided: farther than it from the ideal)."""
        if self.ideal is not None:
            return abs(value - self.ideal) > threshold
        return value < threshold if self.higher_is_better else value > threshold

    @property
    def direction(self) -> str:
        if self.ideal is not None:
            return f"closer to {self.ideal:g} is better"
        return "higher is better" if self.higher_is_better else "lower is better"

    @property
    def low(self) -> float:
        return self.range[0]

    @property
    def high(self) -> float:
        return self.range[1]

    @classmethod
    def unknown(cls, name: str) -> "ScorerInfo":
        """A stand-in for a scorer a writer meets without metadata: unbounded, higher is better."""
        return cls._named(name, factory="", description="", range=(-math.inf, math.inf), higher_is_better=True)

    @classmethod
    def _named(cls, name: str, **fields: Any) -> "ScorerInfo":
        # Writers describe whatever names the results carry (a report re-read from disk, a name a
        # spreadsheet would take for a formula); only registration enforces the naming rule.
        info = cls(name="unknown", **fields)
        object.__setattr__(info, "name", name)
        return info

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> "ScorerInfo":
        """Rebuild the metadata :meth:`to_dict` wrote (the factory is not part of it)."""
        low, high = (list(record.get("range") or ()) + [None, None])[:2]
        return cls._named(str(record["name"]), factory="", description=str(record.get("description") or ""),
                   range=(-math.inf if low is None else float(low), math.inf if high is None else float(high)),
                   higher_is_better=record.get("higher_is_better", True) if record.get("ideal") is None else None,
                   ideal=record.get("ideal"), unit=str(record.get("unit") or ""),
                   event_threshold=record.get("event_threshold"),
                   event_min_duration=float(record.get("event_min_duration") or 0.0),
                   temporal=bool(record.get("temporal", False)), default=bool(record.get("default", False)))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "range": list(self.range),
                "higher_is_better": self.higher_is_better, "inputs": list(self.inputs),
                "temporal": self.temporal, "batch_size": self.batch_size, "needs_model": self.needs_model,
                "needs_gpu": self.needs_gpu, "event_threshold": self.event_threshold,
                "event_min_duration": self.event_min_duration, "unit": self.unit, "default": self.default,
                "ideal": self.ideal}


@dataclass(frozen=True)
class _TextComponentInfo:
    """Fields shared by components that answer in text (same meaning as in :class:`ScorerInfo`)."""

    name: str
    factory: Factory
    description: str
    batch_size: int = 1
    needs_model: bool = True
    needs_gpu: bool = False

    kind: ClassVar[str] = "component"

    def __post_init__(self) -> None:
        _check_name(self.kind, self.name)
        if self.batch_size < 1:
            raise PluginError(f"{self.kind} {self.name!r}: batch_size must be >= 1")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "batch_size": self.batch_size,
                "needs_model": self.needs_model, "needs_gpu": self.needs_gpu}


@dataclass(frozen=True)
class DescriberInfo(_TextComponentInfo):
    """A describer a plugin offers."""

    kind: ClassVar[str] = "describer"


@dataclass(frozen=True)
class AskerInfo(_TextComponentInfo):
    """An asker a plugin offers."""

    kind: ClassVar[str] = "asker"


@dataclass(frozen=True)
class SourceInfo:
    """A source a plugin offers.

    :param extensions: lower-case file extensions it opens, with the dot (``".mp4"``).
    :param kind: ``"image"`` or ``"video"``.
    :param priority: when several sources claim an extension, the highest priority wins.
    :param events: names of the events its readers may report themselves (``decode_gap``), so
        ``--fail-on-event`` can refuse a misspelt name instead of never firing.
    """

    name: str
    factory: Factory
    description: str
    extensions: tuple[str, ...]
    kind: str = "image"
    priority: int = 0
    events: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_name("source", self.name)
        bad = [e for e in self.extensions if not e.startswith(".") or e != e.lower()]
        if bad:
            raise PluginError(f"source {self.name!r}: extensions must be lower-case and start with '.': {bad}")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "extensions": list(self.extensions),
                "kind": self.kind, "priority": self.priority, "events": list(self.events)}


@dataclass(frozen=True)
class WriterContext:
    """What a writer's factory receives beside its stream: ``factory(stream, context)``.

    :param scorers: the run's scorers in order, with their ranges and directions (the one place
        qplug keeps which side of a score is bad: :meth:`ScorerInfo.badness`, :meth:`ScorerInfo.is_bad`).
    :param title: a title for reports that show one.
    :param options: this writer's own options, from ``--option WRITER.KEY=VALUE`` (``--option
        html.thumbnails=12``); a writer ignores the keys it does not know.
    """

    scorers: Mapping[str, ScorerInfo] = field(default_factory=dict)
    title: str = "qplug report"
    options: Mapping[str, Any] = field(default_factory=dict)

    def scorer(self, name: str) -> ScorerInfo:
        """The metadata of ``name``, or an unbounded higher-is-better stand-in for an unknown scorer."""
        return self.scorers.get(name) or ScorerInfo.unknown(name)


@dataclass(frozen=True)
class WriterInfo:
    """A report format a plugin offers.

    :param extensions: file extensions that select this writer when ``--format`` is not given.
    :param binary: True when the writer wants a binary stream.
    :param streaming: True when the writer flushes each record as it arrives, so its file is
        useful while it grows; it is then written in place. Other formats are written to a
        temporary file and renamed into place when complete.
    :param resumable: True when its file holds qplug's JSON records one per line (the ``jsonl``
        layout), so ``--resume`` can read what is done and append the rest. Implies ``streaming``.
    """

    name: str
    factory: Factory
    description: str
    extensions: tuple[str, ...] = ()
    binary: bool = False
    streaming: bool = False
    resumable: bool = False

    def __post_init__(self) -> None:
        _check_name("writer", self.name)
        if self.resumable and not self.streaming:
            raise PluginError(f"writer {self.name!r}: a resumable writer must be streaming")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "extensions": list(self.extensions),
                "binary": self.binary, "streaming": self.streaming, "resumable": self.resumable}


@runtime_checkable
class Converter(Protocol):
    """Turns a model release as published into a directory qplug loads."""

    def convert(self, source: str, output: str, **options: Any) -> str:
        """Read ``source``, write ``output``; return one line saying what was written.

        Raise :class:`qplug.errors.QplugError` (one sentence naming the file or key) for anything
        the converter does not recognise; never leave a half-written ``output`` behind.
        """
        ...


@dataclass(frozen=True)
class ConverterInfo:
    """A model converter a plugin offers (``qplug convert NAME SOURCE OUTPUT [--OPTION VALUE ...]``).

    :param options: the converter's own options, name -> one line of help; on the command line
        ``vision_tower`` is ``--vision-tower VALUE``, and the factory's ``convert`` receives it as a keyword.
    :param required: the names among ``options`` that must be given.
    """

    name: str
    factory: Factory
    description: str
    options: Mapping[str, str] = field(default_factory=dict)
    required: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_name("converter", self.name)
        unknown = [name for name in self.required if name not in self.options]
        if unknown:
            raise PluginError(f"converter {self.name!r}: required options {unknown} are not among its options")
        bad = [name for name in self.options if not name.isidentifier()]
        if bad:
            raise PluginError(f"converter {self.name!r}: option names must be identifiers: {bad}")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "options": dict(self.options),
                "required": list(self.required)}


@dataclass(frozen=True)
class CommandInfo:
    """A ``qplug`` sub-command a plugin adds.

    :param setup: callable or import path ``setup(parser) -> handler``: it adds the command's arguments
        to ``parser`` (an ``argparse.ArgumentParser``) and returns ``handler(args) -> exit code``. Keep
        the module light: ``setup`` runs whenever the command line is built; import heavy things in
        the handler.
    """

    name: str
    setup: Factory
    description: str

    def __post_init__(self) -> None:
        _check_name("command", self.name)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description}


Info = Union[ScorerInfo, DescriberInfo, AskerInfo, SourceInfo, WriterInfo, ConverterInfo, CommandInfo]


@dataclass
class Catalog:
    """Everything registered by the loaded plugins, keyed by kind and name.

    ``owners`` maps ``(kind, name)`` to the plugin that registered it, for ``qplug plugins``.
    """

    scorers: dict[str, ScorerInfo] = field(default_factory=dict)
    describers: dict[str, DescriberInfo] = field(default_factory=dict)
    askers: dict[str, AskerInfo] = field(default_factory=dict)
    sources: dict[str, SourceInfo] = field(default_factory=dict)
    writers: dict[str, WriterInfo] = field(default_factory=dict)
    converters: dict[str, ConverterInfo] = field(default_factory=dict)
    commands: dict[str, CommandInfo] = field(default_factory=dict)
    owners: dict[tuple[str, str], str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def add(self, kind: str, info: Info, owner: str) -> None:
        table: dict[str, Any] = getattr(self, kind)
        if info.name in table:
            first = self.owners.get((kind, info.name), "?")
            # First registration wins so a third-party plugin cannot silently hijack a built-in name.
            self.problems.append(f"{owner}: {kind[:-1]} {info.name!r} already registered by {first}; ignored")
            return
        table[info.name] = info
        self.owners[(kind, info.name)] = owner

    def scorer(self, name: str) -> ScorerInfo:
        return _lookup("scorer", self.scorers, name)

    def describer(self, name: str) -> DescriberInfo:
        return _lookup("describer", self.describers, name)

    def asker(self, name: str) -> AskerInfo:
        return _lookup("asker", self.askers, name)

    def writer(self, name: str) -> WriterInfo:
        return _lookup("format", self.writers, name)

    def converter(self, name: str) -> ConverterInfo:
        return _lookup("converter", self.converters, name)

    def source_for(self, path: str) -> SourceInfo | None:
        """The source that opens ``path``, chosen by extension and priority (None: nobody claims it)."""
        lower = path.lower()
        claims = [s for s in self.sources.values() if any(lower.endswith(ext) for ext in s.extensions)]
        return max(claims, key=lambda s: s.priority) if claims else None

    def extensions(self) -> set[str]:
        return {ext for s in self.sources.values() for ext in s.extensions}


def _lookup(kind: str, table: dict[str, Any], name: str) -> Any:
    try:
        return table[name]
    except KeyError:
        known = ", ".join(sorted(table)) or "none"
        raise UsageError(f"unknown {kind} {name!r} (available: {known})") from None

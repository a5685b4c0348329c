"""qplug: frame-level image and video quality through pluggy plugins.

``qplug.score(paths)`` scores files, directories or globs; ``qplug.iter_results(paths)`` streams the
results. Everything that reads pixels is a plugin (see ``docs/writing-a-plugin.md``). Every public
name is importable from here (``from qplug import ScorerInfo, hookimpl``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Public name -> the module that defines it. Loaded on first use (PEP 562), so that the ``qplug``
# command starts, and sets its signal handlers, before pluggy and the pipeline are imported.
_EXPORTS = {
    "ScoreResult": "api", "iter_results": "api", "run": "api", "score": "api",
    "InputError": "errors", "PluginError": "errors", "QplugError": "errors", "Terminated": "errors",
    "UsageError": "errors",
    "EventRule": "events",
    "EventGate": "gates", "Gate": "gates",
    "hookimpl": "hookspecs",
    "AskerInfo": "registry", "CommandInfo": "registry", "ConverterInfo": "registry", "DescriberInfo": "registry", "ScorerInfo": "registry", "SourceInfo": "registry",
    "WriterContext": "registry", "WriterInfo": "registry",
    "SCHEMA_VERSION": "types", "Answer": "types", "ErrorRecord": "types", "Event": "types", "Frame": "types",
    "FrameResult": "types", "MediaInfo": "types", "Planes": "types", "RunSummary": "types", "Sampling": "types", "Score": "types",
    "SourceSummary": "types",
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'qplug' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # what type checkers and IDEs see: the same names, eagerly
    from .api import ScoreResult, iter_results, run, score
    from .errors import InputError, PluginError, QplugError, Terminated, UsageError
    from .events import EventRule
    from .gates import EventGate, Gate
    from .hookspecs import hookimpl
    from .registry import AskerInfo, CommandInfo, ConverterInfo, DescriberInfo, ScorerInfo, SourceInfo, WriterContext, WriterInfo
    from .types import (SCHEMA_VERSION, Answer, ErrorRecord, Event, Frame, FrameResult, MediaInfo, Planes, RunSummary,
                        Sampling, Score, SourceSummary)

"""qplug: frame-level image and video quality through pluggy plugins.

``qplug.score(paths)`` scores files, directories or globs; ``qplug.iter_results(paths)`` streams the
results. Everything that reads pixels is a plugin (see ``docs/writing-a-plugin.md``).
"""

from .api import ScoreResult, iter_results, run, score
from .errors import InputError, PluginError, QplugError, Terminated, UsageError
from .events import EventRule
from .gates import Gate
from .hookspecs import hookimpl
from .registry import AskerInfo, DescriberInfo, ScorerInfo, SourceInfo, WriterContext, WriterInfo
from .types import SCHEMA_VERSION, Answer, ErrorRecord, Event, Frame, FrameResult, MediaInfo, RunSummary, Sampling, Score, SourceSummary

__version__ = "0.1.0"

__all__ = [
    "Answer", "AskerInfo", "DescriberInfo", "ErrorRecord", "Event", "EventRule", "Frame", "FrameResult", "Gate", "InputError", "MediaInfo",
    "PluginError", "QplugError", "RunSummary", "SCHEMA_VERSION", "Sampling", "Score", "ScoreResult", "ScorerInfo",
    "SourceInfo", "SourceSummary", "Terminated", "UsageError", "WriterContext", "WriterInfo", "__version__", "hookimpl", "iter_results", "run",
    "score",
]

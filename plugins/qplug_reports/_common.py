"""Helpers shared by the report writers: JSON cleaning, scorer metadata and option parsing."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Mapping

from qplug.errors import UsageError

Options = Mapping[str, Any]


def json_safe(value: Any) -> Any:
    """Copy ``value`` into plain JSON types, turning NaN and infinities into None.

    Scorers may put numpy scalars or arrays into ``extra``; they become Python numbers and lists.
    Anything else unknown becomes its ``str()`` so that one odd value never aborts a long run.
    """
    if isinstance(value, float):  # numpy.float64 is a float subclass and lands here too
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, Mapping):
        return {k if isinstance(k, str) else str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_safe(v) for v in value]
    tolist = getattr(value, "tolist", None)  # numpy scalars and arrays
    if callable(tolist):
        return json_safe(tolist())
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return json_safe(to_dict())
    return str(value)


def dumps(record: Any, indent: int | None = None) -> str:
    """Serialise a record as strict JSON (no NaN tokens).

    ``ensure_ascii`` keeps the output pure ASCII, so it is valid whatever encoding the core gave
    the stream, and file names holding undecodable bytes (lone surrogates) cannot raise mid-run.
    """
    separators = (",", ":") if indent is None else (",", ": ")
    return json.dumps(json_safe(record), separators=separators, indent=indent, allow_nan=False, ensure_ascii=True)


def clean_text(text: Any) -> str:
    """``str(text)`` with lone surrogates (undecodable file-name bytes) replaced by U+FFFD."""
    text = "" if text is None else str(text)
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def finite(value: Any) -> float | None:
    """The value as a float when it is a finite number, else None."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def format_number(value: Any, digits: int = 4) -> str:
    """Short human form of a score; missing and non-finite values show as an en dash."""
    number = finite(value)
    return "\u2013" if number is None else f"{number:.{digits}g}"


def format_seconds(seconds: float | None) -> str:
    """``HH:MM:SS.mmm`` for a presentation time, used when a source has no timecodes."""
    if seconds is None or not math.isfinite(seconds):
        return "\u2013"
    millis = int(round(max(seconds, 0.0) * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


@dataclass(frozen=True)
class ScorerMeta:
    """What a writer needs to know about a scorer to draw and rank its values."""

    name: str
    low: float = -math.inf
    high: float = math.inf
    higher_is_better: bool = True
    unit: str = ""
    event_threshold: float | None = None
    ideal: float | None = None

    def badness(self, value: float) -> float:
        """A number that grows as the score gets worse, whatever the scorer's direction."""
        if self.ideal is not None:
            return abs(value - self.ideal)
        return -value if self.higher_is_better else value

    @property
    def direction(self) -> str:
        if self.ideal is not None:
            return f"closer to {self.ideal:g} is better"
        return "higher is better" if self.higher_is_better else "lower is better"


def _bound(value: Any, default: float) -> float:
    # JSON cannot carry infinity, so a range that went through JSON may hold None for "unbounded".
    number = finite(value)
    return default if number is None else number


def scorer_metas(options: Options) -> dict[str, ScorerMeta]:
    """Read ``options["scorers"]`` into metadata, keeping the run's scorer order.

    Accepts ``{name: ScorerInfo.to_dict()}`` (what the core passes), ``{name: ScorerInfo}`` or a plain
    list of names. Scorers without metadata default to an unbounded, higher-is-better scale.
    """
    raw = options.get("scorers")
    if not raw:
        return {}
    if not isinstance(raw, Mapping):
        return {str(name): ScorerMeta(str(name)) for name in raw}
    metas: dict[str, ScorerMeta] = {}
    for name, info in raw.items():
        if info is not None and not isinstance(info, Mapping) and callable(getattr(info, "to_dict", None)):
            info = info.to_dict()
        info = info if isinstance(info, Mapping) else {}
        low, high = (list(info.get("range") or ()) + [None, None])[:2]
        metas[str(name)] = ScorerMeta(
            name=str(name),
            low=_bound(low, -math.inf),
            high=_bound(high, math.inf),
            higher_is_better=bool(info.get("higher_is_better", True)),
            ideal=finite(info.get("ideal")),
            unit=str(info.get("unit") or ""),
            event_threshold=finite(info.get("event_threshold")),
        )
    return metas


def int_option(options: Options, name: str, default: int, minimum: int) -> int:
    """An integer option (the CLI may hand it over as a string), checked against ``minimum``."""
    raw = options.get(name, default)
    if raw is None:
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise UsageError(f"report option {name!r} must be an integer, not {raw!r}") from None
    if value < minimum:
        raise UsageError(f"report option {name!r} must be >= {minimum}, not {value}")
    return value

"""Helpers shared by the report writers: JSON cleaning, file names, run outcome, scorer metadata, options."""

from __future__ import annotations

import base64
import json
import math
import os
from typing import Any, Mapping

from qplug import ScorerInfo, WriterContext
from qplug.errors import UsageError

Options = Mapping[str, Any]


def json_safe(value: Any) -> Any:
    """Copy ``value`` into plain JSON types, turning NaN and infinities into None.

    Strings, keys included, are made valid Unicode by :func:`clean_text`, so the JSON is valid for
    strict readers even when a reason or a description quotes an undecodable file name.
    Scorers may put numpy scalars or arrays into ``extra``; they become Python numbers and lists.
    Anything else unknown becomes its ``str()`` so that one odd value never aborts a long run.
    """
    if isinstance(value, float):  # numpy.float64 is a float subclass and lands here too
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return clean_text(value)  # an error reason or a description may quote an undecodable file name
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, Mapping):
        return {clean_text(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_safe(v) for v in value]
    tolist = getattr(value, "tolist", None)  # numpy scalars and arrays
    if callable(tolist):
        return json_safe(tolist())
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return json_safe(to_dict())
    return clean_text(str(value))


def dumps(record: Any, indent: int | None = None) -> str:
    """Serialise a record as strict JSON (no NaN tokens, no lone surrogates).

    ``ensure_ascii`` keeps the output pure ASCII, so it is valid whatever encoding the core gave
    the stream. Every string goes through :func:`clean_text` first: a ``\\udcff`` escape is accepted
    by Python's ``json`` but rejected by strict readers, and the text it decodes to cannot be encoded
    as UTF-8. Use :func:`named_record` for the record's file name, so its exact bytes are kept too.
    """
    separators = (",", ":") if indent is None else (",", ": ")
    return json.dumps(json_safe(record), separators=separators, indent=indent, allow_nan=False, ensure_ascii=True)


def safe_name(name: Any) -> tuple[str, str | None]:
    """A file name as valid Unicode text, plus base64 of its exact bytes when that text is lossy.

    On Linux a file name is bytes; one that is not UTF-8 reaches Python (``os.fsdecode``) holding lone
    surrogates (``\\udcff``), which no strict JSON reader or UTF-8 encoder accepts. The text has
    each undecodable byte replaced by U+FFFD, so it can be shown and stored anywhere; the second item
    (None for a valid name, by far the common case) is what a reader needs to reopen the very file:
    ``base64.b64decode`` gives the bytes ``os.fsencode`` gives for the original name.
    """
    if isinstance(name, (bytes, bytearray)):
        raw = bytes(name)
    else:
        text = "" if name is None else os.fspath(name) if isinstance(name, os.PathLike) else str(name)
        if text.isascii():
            return text, None
        try:
            text.encode("utf-8")
            return text, None
        except UnicodeEncodeError:
            pass
        try:
            raw = os.fsencode(text)
        except UnicodeEncodeError:  # a surrogate that surrogateescape never makes: keep what is there
            raw = text.encode("utf-8", "surrogatepass")
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError:
        return raw.decode("utf-8", "replace"), base64.b64encode(raw).decode("ascii")


def clean_text(text: Any) -> str:
    """``str(text)`` as valid Unicode: undecodable file-name bytes (lone surrogates) become U+FFFD."""
    if isinstance(text, str) and text.isascii():  # the fast path: nearly every string of a run
        return text
    return safe_name(text)[0]


def named_record(record: Mapping[str, Any], key: str = "source") -> dict[str, Any]:
    """A copy of ``record`` whose ``key`` is valid text, followed by ``<key>_b64`` only when it had to be.

    Nested ``errors`` records (a source record lists its full error records) get the same treatment,
    so every record that names an input can be traced back to the exact file.
    """
    out: dict[str, Any] = {}
    for name, value in record.items():
        if name == key and isinstance(value, (str, bytes, os.PathLike)):
            text, raw = safe_name(value)
            out[name] = text
            if raw is not None:
                out[f"{key}_b64"] = raw
        elif name == "errors" and isinstance(value, list):
            out[name] = [named_record(v, key) if isinstance(v, Mapping) else v for v in value]
        else:
            out[name] = value
    return out


#: What each outcome means for the reader of a report, after "<outcome> (exit N)".
OUTCOME_NOTES = {
    "passed": "",
    "gate_failed": "",
    "errors": "some inputs or frames could not be scored",
    "failed": "the run or one of its reports could not be completed",
    "interrupted": "the report covers only what was scored before the interruption",
    "terminated": "the report covers only what was scored before the run was terminated",
}
#: How each outcome is written in words.
OUTCOME_WORDS = {"gate_failed": "quality gate failed"}


def outcome_text(outcome: str, exit_code: int) -> str:
    """One line for a person: ``interrupted (exit 130) \u00b7 the report covers only ...``."""
    text = f"{OUTCOME_WORDS.get(outcome, outcome)} (exit {exit_code})"
    note = OUTCOME_NOTES.get(outcome, "")
    return f"{text} \u00b7 {note}" if note else text





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


def writer_context(options: Any) -> WriterContext:
    """The :class:`qplug.WriterContext` a writer was built with.

    A plain mapping is accepted too (a writer built by hand in a notebook or a test):
    ``{"scorers": {name: ScorerInfo or its to_dict()} or [names], "title": ..., **own options}``.
    """
    if isinstance(options, WriterContext):
        return options
    options = dict(options or {})
    raw = options.pop("scorers", None) or {}
    scorers: dict[str, ScorerInfo] = {}
    for name, info in (raw.items() if isinstance(raw, Mapping) else ((n, None) for n in raw)):
        if isinstance(info, ScorerInfo):
            scorers[str(name)] = info
        elif isinstance(info, Mapping):
            scorers[str(name)] = ScorerInfo.from_dict({"name": str(name), **info})
        else:
            scorers[str(name)] = ScorerInfo.unknown(str(name))
    title = options.pop("title", None)
    return WriterContext(scorers=scorers, title=str(title) if title else WriterContext.title, options=options)


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

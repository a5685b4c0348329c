"""Pass/fail gates: on pooled scores (``--fail-under sharpness=1.5``, ``--fail-over noise.p95=8``) and on
events (``--fail-on-event black=0.5``: a black stretch of half a second or more fails the file)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .errors import UsageError
from .pooling import POOLING_METHODS, SOURCE_POOL
from .types import Event


@dataclass(frozen=True)
class Gate:
    """Fail a source when ``pooled[scorer][pool]`` is under (or over) ``value``."""

    scorer: str
    pool: str
    value: float
    under: bool = True

    @classmethod
    def parse(cls, text: str, under: bool = True) -> "Gate":
        """Parse ``NAME[.POOL]=VALUE``; the pool defaults to ``mean``."""
        name, sep, raw = text.partition("=")
        if not sep or not name or not raw:
            raise UsageError(f"gate {text!r} must look like NAME=VALUE or NAME.POOL=VALUE")
        # Scorer names may hold dots (example.edge_density): only a known pool after the last dot is a pool.
        scorer, dot, pool = name.rpartition(".")
        if not dot or (pool not in POOLING_METHODS and pool != SOURCE_POOL):
            scorer, pool = name, "mean"
        try:
            value = float(raw)
        except ValueError:
            raise UsageError(f"gate {text!r}: {raw!r} is not a number") from None
        return cls(scorer=scorer, pool=pool, value=value, under=under)

    def check(self, pooled: dict[str, dict[str, float | None]]) -> str | None:
        """A sentence saying why the gate failed, or None when it passed."""
        got = pooled.get(self.scorer, {}).get(self.pool)
        label = f"{self.scorer}.{self.pool}"
        if got is None:
            return f"{label} has no value to check"
        if self.under and got < self.value:
            return f"{label} = {got:.4g} is under {self.value:g}"
        if not self.under and got > self.value:
            return f"{label} = {got:.4g} is over {self.value:g}"
        return None


@dataclass(frozen=True)
class EventGate:
    """Fail a source that has an event of ``name`` lasting at least ``min_seconds``.

    ``name`` is a scorer's (its events follow the scorer's event rule) or an event a source reports
    itself, such as the video source's ``decode_gap``.
    """

    name: str
    min_seconds: float = 0.0

    @classmethod
    def parse(cls, text: str) -> "EventGate":
        """Parse ``NAME`` or ``NAME=MIN_SECONDS``."""
        name, sep, raw = text.partition("=")
        if not name or (sep and not raw):
            raise UsageError(f"--fail-on-event {text!r} must look like NAME or NAME=MIN_SECONDS")
        try:
            seconds = float(raw) if sep else 0.0
        except ValueError:
            raise UsageError(f"--fail-on-event {text!r}: {raw!r} is not a number of seconds") from None
        if not seconds >= 0:
            raise UsageError(f"--fail-on-event {text!r}: the duration must be 0 or more")
        return cls(name=name, min_seconds=seconds)

    def check(self, events: Sequence[Event]) -> str | None:
        """A sentence naming the first offending event, or None when the gate passed."""
        hits = [e for e in events if e.scorer == self.name and e.duration + 1e-9 >= self.min_seconds]
        if not hits:
            return None
        first = hits[0]
        where = f"{first.start_timecode}-{first.end_timecode}" if first.start_timecode else f"{first.start:.3f} s"
        longer = f" (at least {self.min_seconds:g} s)" if self.min_seconds else ""
        more = f" and {len(hits) - 1} more" if len(hits) > 1 else ""
        return f"{self.name} event{longer} at {where}, {first.duration:.3g} s{more}"

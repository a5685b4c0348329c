"""Pass/fail gates on pooled scores (``--fail-under sharpness=1.5``, ``--fail-over noise.p95=8``)."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import UsageError
from .pooling import POOLING_METHODS


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
        if not dot or pool not in POOLING_METHODS:
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

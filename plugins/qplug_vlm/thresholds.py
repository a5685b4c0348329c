"""Per-kind yes/no thresholds: the P(defect) at which a kind's answer turns from "no" to "yes".

The model's P(yes) on a kind's trained wordings does not turn at 0.5 for every kind alike: the
default model claims banding on most overexposed crops and low contrast on most desaturated ones
at 0.5, while its P(yes) still ranks those crops below the banded and flat ones (MODEL_CARD.md,
stop 37: per-kind ROC AUC 0.975-1.000, colour 0.895). A reader config may carry
``yes_no_thresholds`` (kind -> P(defect)), fitted on labelled images by
``python -m qplug_training.yes_no_thresholds`` (qplug's default model ships none: there they
moved the held-out yes/no by a few tenths of a point, MODEL_CARD.md); the asker then reports ``sigmoid(logit p - logit t)``
in place of ``p``, so the threshold reads as 0.5 and the order of the answers is kept. Kinds
without a threshold keep 0.5, and a question asked as written (no reader) is never shifted: only
the reader knows which kind it asks about.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Mapping, Sequence

if TYPE_CHECKING:
    from .reader import ReaderConfig, Reading

#: The threshold of a kind the config does not name: the plain "yes when more likely than no".
NEUTRAL = 0.5
#: Thresholds must stay strictly inside (0, 1) for the logit to exist; fitted ones are on a grid well inside.
_EDGE = 1e-6


def check_thresholds(thresholds: Mapping[str, float], kinds: Sequence[str]) -> dict[str, float]:
    """The thresholds as floats, each for a known kind and strictly between 0 and 1 (ValueError otherwise)."""
    checked: dict[str, float] = {}
    for kind, value in thresholds.items():
        if kind not in kinds:
            raise ValueError(f"yes_no_thresholds: {kind!r} is not a kind with trained yes/no wordings")
        value = float(value)
        if not _EDGE < value < 1.0 - _EDGE:
            raise ValueError(f"yes_no_thresholds: {kind!r} must be strictly between 0 and 1, not {value}")
        checked[kind] = value
    return checked


def _logit(p: float) -> float:
    p = min(max(p, _EDGE), 1.0 - _EDGE)
    return math.log(p / (1.0 - p))


def shifted(p_defect: float, threshold: float) -> float:
    """P(defect) moved so that ``threshold`` maps to 0.5 (monotone; 0.5 leaves it as it is)."""
    if threshold == NEUTRAL:
        return p_defect
    return 1.0 / (1.0 + math.exp(-(_logit(p_defect) - _logit(threshold))))


def calibrated(probabilities: Mapping[str, float], points_to_defect: bool, threshold: float) -> dict[str, float]:
    """A yes/no answer's probabilities (keyed by the user's options, "yes" and "no" in any case) with
    the kind's threshold applied; ``points_to_defect`` says whether the user's "yes" is the defect's."""
    yes = next(o for o in probabilities if o.strip().lower() == "yes")
    no = next(o for o in probabilities if o.strip().lower() == "no")
    total = probabilities[yes] + probabilities[no]
    p_user_yes = probabilities[yes] / total if total > 0 else 0.5
    p_defect = p_user_yes if points_to_defect else 1.0 - p_user_yes
    moved = shifted(p_defect, threshold)
    p_yes = moved if points_to_defect else 1.0 - moved
    return {option: (p_yes if option == yes else 1.0 - p_yes) for option in probabilities}


def kind_thresholds(config: "ReaderConfig", reading: "Reading") -> tuple[float, ...]:
    """The thresholds of the kinds a reworded yes/no question asks: each kind of a family, in the
    order of its parts, or the one kind read."""
    kinds = config.groups.get(reading.kind or "", ()) if reading.parts else (reading.kind or "",)
    return tuple(config.threshold(kind) for kind in kinds)


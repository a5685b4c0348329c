"""Quality levels in the user's words, answered from a model's five rating levels.

A question about quality as a whole ("How good is this photo?" over *high / medium / low*, or "Is this
frame of decent quality?" answered yes or no) is what a rating model was trained for: its level words
(Q-Align's excellent / good / fair / poor / bad) carry the whole judgement, and asked as a lettered
question the same model picks options it cannot read. This module turns a level distribution into an
answer over any ordered set of quality words:

- :func:`scale_values` tells whether the user's options are quality levels at all (every option a word
  or phrase of :data:`QUALITY_WORDS`, or every option a whole number, higher meaning better), and how
  they rank;
- :func:`level_shares` gives, for each option, how much of each model level it stands for. Q-Align
  defines its five levels as equal intervals of the 1-5 score range [Q-Align, arXiv 2312.17090,
  Sec. 3.1]; k ordered options are read the same way, as k equal intervals, best first, so an option's
  probability is the model's level probabilities weighted by how much of each level's interval falls
  in the option's. Five options are then the levels themselves, two split "fair" in half.

The module knows nothing of models: :mod:`.asker` reads the level probabilities and applies the shares.
"""

from __future__ import annotations

import re
from typing import Final, Sequence

#: The score range the levels span, and the model's five levels' values, best first (Q-Align's weights).
LOW: Final[float] = 1.0
HIGH: Final[float] = 5.0
MODEL_LEVELS: Final[tuple[float, ...]] = (5.0, 4.0, 3.0, 2.0, 1.0)

#: Quality words and phrases -> a value on the 1-5 range. Only their order matters for an answer
#: (options get equal shares by rank), so the values only need to rank each word among its neighbours.
QUALITY_WORDS: Final[dict[str, float]] = {
    # the top
    "excellent": 5.0, "outstanding": 5.0, "superb": 5.0, "perfect": 5.0, "exceptional": 5.0, "flawless": 5.0,
    "best": 5.0, "very high": 4.8, "very good": 4.6, "great": 4.5, "high": 4.4, "pristine": 5.0,
    "professional": 4.5, "top": 5.0, "top notch": 5.0,
    # good
    "good": 4.0, "fine": 4.0, "nice": 4.0, "clean": 4.0, "above average": 3.8, "quite good": 3.9,
    "pretty good": 3.9, "solid": 3.8, "decent": 3.5, "fairly good": 3.6, "satisfactory": 3.4,
    # the middle
    "fair": 3.0, "average": 3.0, "medium": 3.0, "moderate": 3.0, "okay": 3.0, "ok": 3.0, "so so": 3.0,
    "acceptable": 3.0, "passable": 3.0, "tolerable": 3.0, "adequate": 3.0, "ordinary": 3.0, "mid": 3.0,
    "neutral": 3.0, "middling": 3.0, "reasonable": 3.2, "not bad": 3.2,
    # poor
    "below average": 2.4, "mediocre": 2.5, "poor": 2.0, "low": 1.8, "weak": 2.2, "not good": 2.2,
    "subpar": 2.3, "inadequate": 2.0, "unsatisfactory": 2.0, "rather poor": 2.2, "degraded": 2.0,
    "unacceptable": 1.5, "very low": 1.3, "very poor": 1.4,
    # the bottom
    "bad": 1.0, "very bad": 1.0, "terrible": 1.0, "awful": 1.0, "horrible": 1.0, "dreadful": 1.0,
    "abysmal": 1.0, "unusable": 1.0, "worst": 1.0, "extremely poor": 1.0, "extremely bad": 1.0,
    # amounts said in words ("How far off is the exposure?" over a lot / a little / not at all; "a" is
    # filler, so "a lot" is looked up as "lot")
    "great deal": 4.8, "very much": 4.8, "lot": 4.6, "somewhat": 3.0, "little": 2.2, "bit": 2.2,
    "slightly": 2.2, "not much": 1.8, "not at all": 1.0,
}

#: Words that say how much of something there is: "high" sharpness is good, "high" noise is bad.
AMOUNT_WORDS: Final[frozenset[str]] = frozenset({"very high", "high", "medium", "moderate", "mid", "low", "very low",
                                                "great deal", "very much", "lot", "somewhat", "little", "bit",
                                                "slightly", "not much", "not at all"})

#: Words said around a level that do not change it ("good quality", "The image is poor.").
_FILLER: Final[frozenset[str]] = frozenset({
    "quality", "image", "picture", "photo", "frame", "shot", "video", "the", "it", "its", "it's", "is", "of", "a",
    "an", "overall", "technical", "technically", "visual", "level", "this", "looks", "look"})


def normalise(option: str) -> str:
    """An option as looked up in :data:`QUALITY_WORDS`: lower case, letters only, filler words dropped."""
    words = re.sub(r"[^a-z0-9' ]+", " ", option.lower().replace("-", " ")).split()
    return " ".join(w for w in words if w not in _FILLER)


def scale_values(options: Sequence[str]) -> tuple[float, ...] | None:
    """Each option's value when the options are two or more different quality levels, else None.

    Whole numbers count as levels too (a "1 to 5" or "1 to 10" scale, the higher the better)."""
    keys = [normalise(option) for option in options]
    if len(keys) < 2 or len(set(keys)) != len(keys):
        return None
    if all(re.fullmatch(r"\d{1,3}", k) for k in keys):
        values = tuple(float(k) for k in keys)
    elif all(k in QUALITY_WORDS for k in keys):
        values = tuple(QUALITY_WORDS[k] for k in keys)
    else:
        return None
    return values if len(set(values)) == len(values) else None


def attribute_values(options: Sequence[str], amount_is_worse: bool) -> tuple[float, ...] | None:
    """:func:`scale_values` for a level request about one attribute: amount words run the other way
    when more of the attribute is worse ("How grainy is it?" over high / medium / low)."""
    values = scale_values(options)
    if values is None or not amount_is_worse or not all(normalise(o) in AMOUNT_WORDS for o in options):
        return values
    return tuple(-v for v in values)


def _interval(rank: int, count: int) -> tuple[float, float]:
    """The ``rank``-th of ``count`` equal intervals of the score range, counted from the top."""
    width = (HIGH - LOW) / count
    return HIGH - (rank + 1) * width, HIGH - rank * width


def level_shares(values: Sequence[float], levels_count: int = len(MODEL_LEVELS)) -> list[list[float]]:
    """``shares[i][j]``: the part of model level ``j`` (best first: :data:`MODEL_LEVELS`, or any
    ``levels_count`` ordered levels such as none / slight / moderate / strong) that option ``i`` stands
    for, from the options' ranks (:func:`scale_values`). Each level's shares sum to 1 over the options."""
    ranks = {v: r for r, v in enumerate(sorted(values, reverse=True))}
    levels = [_interval(j, levels_count) for j in range(levels_count)]
    out = []
    for value in values:
        low, high = _interval(ranks[value], len(values))
        out.append([max(0.0, min(high, top) - max(low, bottom)) / (top - bottom) for bottom, top in levels])
    return out


def option_probabilities(values: Sequence[float], level_probabilities: Sequence[float]) -> list[float]:
    """Each option's probability given the model's level probabilities, best level first."""
    shares = level_shares(values, len(level_probabilities))
    return [sum(s * p for s, p in zip(row, level_probabilities)) for row in shares]


def good_probability(level_probabilities: Sequence[float]) -> float:
    """The probability that the picture is on the good half of the range (a yes/no about quality)."""
    return option_probabilities((HIGH, LOW), level_probabilities)[0]


def answer_probabilities(options: Sequence[str], scale: Sequence[float], points_to_defect: bool,
                         level_probabilities: Sequence[float]) -> dict[str, float]:
    """The user's options' probabilities for a question about quality as a whole: over quality words
    (``scale``, :func:`scale_values`) their shares; yes/no (no scale) the good half of the range,
    flipped when "yes" means the picture is poor."""
    if scale:
        return dict(zip(options, option_probabilities(scale, level_probabilities)))
    good = good_probability(level_probabilities)
    yes = 1.0 - good if points_to_defect else good
    return {option: yes if option.strip().lower() == "yes" else 1.0 - yes for option in options}

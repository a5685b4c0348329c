"""Multiple-choice answers read over several option orders, so that a letter habit cannot pick them.

A model reading lettered options leans towards some letters whatever they say (qplug's default model v3, halfway
through its training, answered E to 71 of 150 held-out six-option questions; large models show the same
"selection bias", Zheng et al., ICLR 2024, "Large Language Models Are Not Robust Multiple Choice
Selectors"). ``option_order="rotate"`` asks the question once per cyclic rotation of the options (each
option takes each letter once) and pools, per option, the mean of its log-probabilities over the
rotations, renormalised: a letter's pull is the same for every option and cancels. It costs one
prefill per option instead of one. On v4 and its 200 held-out six-option questions it took accuracy
from 51% to 87% (bench/eval_blindspots.py, paraphrase part). ``given`` asks once, as the options
come.

Rotation has a cost on ordered scales: "moderate, strong, none, slight" is not how anyone asks about
a severity, and on qplug's default model v4 rotating its training severity questions (none / slight /
moderate / strong) took them from 71.4% to 64.9% right while the main-problem lists gained. So
``auto`` (the default) rotates, except when the options are a recognised ordered scale
(:data:`ORDERED_SCALES`: severities, amounts, the five quality levels) given in its order, either way
up: those are asked once, as given. ``rotate`` rotates every list.

Yes/no questions asked as plain questions (answered with the words "Yes"/"No") have no letters and are
asked once in every mode.
"""

from __future__ import annotations

import math
from typing import Final, Sequence

from qplug.errors import UsageError

#: ``auto``: rotated unless an ordered scale in order; ``rotate``: every cyclic rotation of the
#: options, pooled; ``given``: once, in the order given.
OPTION_ORDERS: Final[tuple[str, ...]] = ("auto", "rotate", "given")
DEFAULT_OPTION_ORDER: Final[str] = "auto"

#: Ordered scales, weakest (or worst) first, that ``auto`` keeps in their order. Options that are some
#: of one scale's words, in its order or reversed, are asked as given.
ORDERED_SCALES: Final[tuple[tuple[str, ...], ...]] = (
    ("none", "slight", "moderate", "strong", "severe"),
    ("none", "mild", "moderate", "strong", "severe"),
    ("none", "mild", "medium", "severe"),
    ("none", "slight", "noticeable", "strong", "severe"),
    ("not at all", "slightly", "moderately", "strongly", "severely"),
    ("absent", "weak", "noticeable", "heavy"),
    ("no", "a little", "some", "a lot"),
    ("very low", "low", "medium", "high", "very high"),
    ("very low", "low", "moderate", "high", "very high"),
    ("bad", "poor", "fair", "good", "excellent"),
)


def check_option_order(option_order: str) -> None:
    """A UsageError unless ``option_order`` is one of :data:`OPTION_ORDERS`."""
    if option_order not in OPTION_ORDERS:
        raise UsageError(f"option_order must be one of {', '.join(OPTION_ORDERS)}, not {option_order!r}")


def check_choices(options: Sequence[str]) -> None:
    """A UsageError unless there are at least two options, all different."""
    if len(set(options)) != len(options) or len(options) < 2:
        raise UsageError(f"give at least two different choices, not {list(options)}")


def _word(option: str) -> str:
    return " ".join(option.strip().rstrip(".").lower().split())


def is_ordered_scale(options: Sequence[str]) -> bool:
    """Whether three or more options are words of one :data:`ORDERED_SCALES` scale, in its order or reversed."""
    words = [_word(option) for option in options]
    if len(words) < 3:
        return False
    for scale in ORDERED_SCALES:
        if all(w in scale for w in words):
            ranks = [scale.index(w) for w in words]
            pairs = list(zip(ranks, ranks[1:]))
            if all(a < b for a, b in pairs) or all(a > b for a, b in pairs):
                return True
    return False


def option_orders(options: Sequence[str], option_order: str) -> list[tuple[str, ...]]:
    """The orders in which the options are offered: the given one first, then its rotations."""
    check_option_order(option_order)
    given = tuple(options)
    if option_order == "given" or (option_order == "auto" and is_ordered_scale(given)):
        return [given]
    return [given[i:] + given[:i] for i in range(len(given))]


def _log_softmax(values: Sequence[float]) -> list[float]:
    peak = max(values)
    total = math.log(sum(math.exp(v - peak) for v in values)) + peak
    return [v - total for v in values]


def pooled_probabilities(orders: Sequence[tuple[str, ...]], scores: Sequence[Sequence[float]]) -> dict[str, float]:
    """Each option's probability, keyed in the first order's order.

    ``scores[j][i]`` is the log-probability (or logit: each order is renormalised) of the letter of
    ``orders[j][i]`` when the options came in ``orders[j]``. With one order this is the softmax of its
    scores.
    """
    if not orders or len(orders) != len(scores):
        raise ValueError("one row of scores per order")
    pooled = {option: 0.0 for option in orders[0]}
    for order, row in zip(orders, scores):
        if len(row) != len(order) or set(order) != set(pooled):
            raise ValueError("every order holds the same options, with one score each")
        for option, value in zip(order, _log_softmax(row)):
            pooled[option] += value / len(orders)
    return dict(zip(pooled, (math.exp(v) for v in _log_softmax(list(pooled.values())))))


def best_option(probabilities: dict[str, float]) -> str:
    """The most probable option; on a tie, the one given first."""
    return max(probabilities, key=probabilities.__getitem__)

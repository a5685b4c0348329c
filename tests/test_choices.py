"""Multiple-choice pooling over option orders (qplug_vlm.choices): the arithmetic, without a model."""

import math
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins"))

import pytest  # noqa: E402

from qplug.errors import UsageError  # noqa: E402
from qplug_vlm.choices import (DEFAULT_OPTION_ORDER, best_option, is_ordered_scale, option_orders,  # noqa: E402
                               pooled_probabilities)


def test_rotations_give_every_option_every_letter_once():
    orders = option_orders(["blur", "noise", "none"], "rotate")
    assert orders[0] == ("blur", "noise", "none") and len(orders) == 3
    for letter in range(3):
        assert sorted(order[letter] for order in orders) == ["blur", "noise", "none"]
    assert option_orders(["blur", "noise"], "given") == [("blur", "noise")]
    with pytest.raises(UsageError, match="option_order must be one of auto, rotate, given"):
        option_orders(["a", "b"], "shuffle")


def test_auto_keeps_an_ordered_scale_in_its_order_and_rotates_anything_else():
    assert DEFAULT_OPTION_ORDER == "auto"
    for scale in (["none", "slight", "moderate", "strong"], ["Strong", "moderate", "slight", "none"],
                  ["excellent", "good", "fair", "poor", "bad"], ["no", "a little", "a lot"],
                  ["not at all", "slightly", "strongly"], ["low", "medium", "high."]):
        assert is_ordered_scale(scale), scale
        assert option_orders(scale, "auto") == [tuple(scale)]
        assert len(option_orders(scale, "rotate")) == len(scale)  # rotate still rotates it
    for other in (["moderate", "strong", "none", "slight"],  # a scale out of order
                  ["none", "slight"],  # two options: rotating is a swap, nothing to keep
                  ["blur", "noise", "none"], ["good", "noisy", "bad"], ["none", "mild", "heavy"]):
        assert not is_ordered_scale(other), other
        assert len(option_orders(other, "auto")) == len(other)


def test_one_order_is_the_softmax_of_its_letters():
    probabilities = pooled_probabilities([("a", "b", "c")], [[2.0, 0.0, -1.0]])
    total = math.exp(2.0) + 1 + math.exp(-1.0)
    assert list(probabilities) == ["a", "b", "c"]
    assert probabilities["a"] == pytest.approx(math.exp(2.0) / total)
    assert sum(probabilities.values()) == pytest.approx(1.0)


def test_a_letter_habit_cancels_over_the_rotations():
    """Scores = what the option deserves + a pull towards some letters: the pool recovers the first part."""
    deserved = {"blur": 1.0, "noise": 0.2, "compression": -0.5, "none": 0.0}
    pull = [0.0, 0.3, 0.1, 4.0]  # letter D wins any single order it is in
    orders = option_orders(list(deserved), "rotate")
    scores = [[deserved[option] + pull[i] for i, option in enumerate(order)] for order in orders]
    assert best_option(pooled_probabilities(orders[:1], scores[:1])) == "none"  # the letter, not the content
    pooled = pooled_probabilities(orders, scores)
    assert best_option(pooled) == "blur" and list(pooled) == list(deserved)
    total = sum(math.exp(v) for v in deserved.values())
    for option, value in deserved.items():
        assert pooled[option] == pytest.approx(math.exp(value) / total)


def test_ties_go_to_the_option_given_first_and_bad_shapes_are_refused():
    assert best_option({"b": 0.5, "a": 0.5}) == "b"
    with pytest.raises(ValueError):
        pooled_probabilities([("a", "b")], [[1.0]])
    with pytest.raises(ValueError):
        pooled_probabilities([("a", "b"), ("a", "c")], [[1.0, 0.0], [1.0, 0.0]])

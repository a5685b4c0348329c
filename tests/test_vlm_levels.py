"""Quality levels in the user's words (qplug_vlm.levels): which options are levels, and their shares."""

from __future__ import annotations

import pytest

from qplug_vlm import levels


@pytest.mark.parametrize("options, ranked", [
    (("excellent", "good", "fair", "poor", "bad"), [0, 1, 2, 3, 4]),
    (("low", "medium", "high"), [2, 1, 0]),
    (("Good quality.", "Poor quality."), [0, 1]),
    (("very poor", "poor", "average", "good", "very good"), [4, 3, 2, 1, 0]),
    (("acceptable", "unacceptable"), [0, 1]),
    (("1", "2", "3", "4", "5"), [4, 3, 2, 1, 0]),
    (("not at all", "a little", "a lot"), [2, 1, 0]),
])
def test_quality_words_and_numbers_are_levels_ranked_best_first(options, ranked) -> None:
    values = levels.scale_values(options)
    assert values is not None
    order = sorted(range(len(values)), key=lambda i: -values[i])
    assert [order.index(i) for i in range(len(values))] == ranked


@pytest.mark.parametrize("options", [
    ("none", "slight", "moderate", "strong"),  # a severity scale, not quality
    ("blur", "noise", "good"),  # not every option a level
    ("good", "fine"),  # two words of one value: no order between them
    ("good", "Good"),  # the same option twice
    ("good",),
])
def test_other_option_sets_are_not_levels(options) -> None:
    assert levels.scale_values(options) is None


def test_shares_are_equal_intervals_of_the_range_and_sum_to_one_per_level() -> None:
    five = levels.level_shares((5.0, 4.0, 3.0, 2.0, 1.0))
    assert five == [[1.0 if i == j else 0.0 for j in range(5)] for i in range(5)]
    # Two options split "fair" in half; three take two thirds of "good" and "poor" each.
    assert _flat(levels.level_shares((4.0, 2.0))) == pytest.approx(_flat([[1, 1, 0.5, 0, 0], [0, 0, 0.5, 1, 1]]))
    three = levels.level_shares((1.8, 3.0, 4.4))  # low, medium, high: given worst first
    assert _flat(three) == pytest.approx(_flat([[0, 0, 0, 2 / 3, 1], [0, 1 / 3, 1, 1 / 3, 0], [1, 2 / 3, 0, 0, 0]]))
    for shares in (five, three, levels.level_shares((5.0, 3.5, 2.5, 1.0))):
        for j in range(5):
            assert sum(row[j] for row in shares) == pytest.approx(1.0)


def test_amount_words_run_against_severity_only_when_more_is_worse() -> None:
    amounts = ("high", "medium", "low")
    assert levels.attribute_values(amounts, amount_is_worse=False) == levels.scale_values(amounts)
    grainy = levels.attribute_values(amounts, amount_is_worse=True)
    assert grainy is not None and grainy[2] > grainy[1] > grainy[0]  # little grain is best
    worded = levels.attribute_values(("a lot", "a little", "not at all"), amount_is_worse=True)
    assert worded is not None and worded[2] > worded[1] > worded[0]  # "not at all" off: best
    # Quality words say good and poor whatever the attribute: never turned round.
    assert levels.attribute_values(("good", "fair", "poor"), amount_is_worse=True) == (4.0, 3.0, 2.0)
    # Four severities (none first) onto three options: none -> best, strong -> worst.
    shares = levels.level_shares((3.0, 2.0, 1.0), levels_count=4)
    assert [round(sum(row), 6) for row in zip(*shares)] == [1.0] * 4
    assert shares[0][0] == pytest.approx(1.0) and shares[2][3] == pytest.approx(1.0)
    assert levels.option_probabilities((3.0, 2.0, 1.0), [0.0, 1.0, 0.0, 0.0]) == pytest.approx([1 / 3, 2 / 3, 0.0])


def _flat(rows: list[list[float]]) -> list[float]:
    return [x for row in rows for x in row]


def test_option_probabilities_follow_the_level_distribution() -> None:
    distribution = [0.1, 0.5, 0.2, 0.1, 0.1]
    assert levels.good_probability(distribution) == pytest.approx(0.1 + 0.5 + 0.1)
    assert levels.good_probability([0, 0, 1, 0, 0]) == pytest.approx(0.5)
    low, medium, high = levels.option_probabilities((1.8, 3.0, 4.4), distribution)
    assert high == pytest.approx(0.1 + 0.5 * 2 / 3) and low == pytest.approx(0.1 + 0.1 * 2 / 3)
    assert low + medium + high == pytest.approx(1.0)

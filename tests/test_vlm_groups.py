"""qplug_vlm.groups: answers to questions about a family of kinds that name no direction."""

from __future__ import annotations

import pytest

from qplug_vlm import groups


def test_chunks_cut_rows_per_kind_and_refuse_a_wrong_total() -> None:
    assert groups.chunks([1, 2, 3, 4, 5], (3, 2)) == [[1, 2, 3], [4, 5]]
    assert groups.chunks([], ()) == []
    with pytest.raises(ValueError, match="5 rows"):
        groups.chunks([1, 2, 3, 4, 5], (3, 3))


def test_either_way_any_defect_is_the_familys_and_fine_needs_both() -> None:
    dark = {"yes": 0.9, "no": 0.1}   # "is it too dark?" yes
    bright = {"yes": 0.2, "no": 0.8}
    # "Is the exposure wrong?": yes when either kind's defect is there.
    wrong = groups.either_yes_no(("yes", "no"), True, [dark, bright])
    assert wrong == pytest.approx({"yes": 0.9, "no": 0.1})
    # "Is it well exposed?": the kinds' answers are already "yes = fine"; both must be fine.
    fine_dark, fine_bright = {"yes": 0.1, "no": 0.9}, {"yes": 0.8, "no": 0.2}
    fine = groups.either_yes_no(("No", "Yes"), False, [{"Yes": 0.1, "No": 0.9}, {"Yes": 0.8, "No": 0.2}])
    assert fine == pytest.approx({"No": 0.9, "Yes": 0.1})
    assert groups.either_yes_no(("yes", "no"), False, [fine_dark, fine_bright])["yes"] == pytest.approx(0.1)
    # Unnormalised rows are read as their ratio.
    assert groups.either_yes_no(("yes", "no"), True, [{"yes": 0.3, "no": 0.1}])["yes"] == pytest.approx(0.75)


def test_the_worse_kind_gives_the_familys_level() -> None:
    severities = ("none", "slight", "moderate", "strong")
    dark = {"none": 0.1, "slight": 0.1, "moderate": 0.2, "strong": 0.6}
    bright = {"none": 0.7, "slight": 0.2, "moderate": 0.1, "strong": 0.0}
    assert groups.worst(severities, [bright, dark]) == [0.1, 0.1, 0.2, 0.6]
    assert groups.worst(severities, [bright, bright]) == [0.7, 0.2, 0.1, 0.0]

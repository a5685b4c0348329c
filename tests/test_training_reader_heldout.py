"""A held-out set written after the shipped reader must not change what the reader trains on.

The reader's wording pools drop every near-form of a held-out wording (``training/reader.py``), so a
new set whose wording collides with a reader wording silently changes the recipe's draw: the shipped
reader is then no longer what the recipe makes, and the new set is no longer clean for it (set j's
first "Does the white balance of this photo look right?" did both, stop 36). A collision check run on
the filtered pools cannot see that: they have already dropped the wording. This test compares the
pools with the filter of the sets the shipped reader was trained with against the filter of every
set, so a colliding wording in a new set fails here, at once.
"""

from __future__ import annotations

import pytest

from qplug_training import reader as training_reader
from qplug_training.corpus import heldout

#: The held-out sets the shipped reader's recipe was run with (the fifth reader, 2026-12-06).
TRAINED_WITH = "abcdefghij"


def _pools() -> dict[str, list[str]]:
    pools: dict[str, list[str]] = {}
    for kind in training_reader.GOOD_TOPICS:
        for points_to_defect in (True, False):
            for name in ("reader_wordings", "action_wordings", "level_wordings", "extended_wordings"):
                pools[f"{name}:{kind}:{points_to_defect}"] = getattr(training_reader, name)(kind, points_to_defect)
    for points_to_defect in (True, False):
        pools[f"exposure:{points_to_defect}"] = training_reader.exposure_wordings(points_to_defect)
        pools[f"overall:{points_to_defect}"] = training_reader.overall_wordings(points_to_defect)
    for name in ("generic_wordings", "rating_wordings", "attribute_level_wordings", "directed_exposure_wordings"):
        pools[name] = getattr(training_reader, name)()
    return pools


def test_every_set_is_one_the_reader_was_trained_with_or_collides_with_none_of_its_wordings(monkeypatch) -> None:
    assert set(TRAINED_WITH) <= set(heldout.SETS)
    every_set = _pools()
    trained_with = [q for name in TRAINED_WITH for q in heldout.SETS[name].questions()]
    monkeypatch.setattr(heldout, "all_questions", lambda: trained_with)
    as_trained = _pools()
    changed = {name: sorted(set(as_trained[name]) - set(every_set[name])) for name in every_set
               if as_trained[name] != every_set[name]}
    later = "".join(sorted(set(heldout.SETS) - set(TRAINED_WITH)))
    assert not changed, (f"held-out set(s) {later or '(none)'} drop reader training wordings (replace the colliding "
                         f"wording in the new set, or retrain the reader and add the set to TRAINED_WITH): {changed}")


def test_the_check_sees_a_colliding_wording(monkeypatch) -> None:
    """A set with a reader wording in it is caught: the check can fail."""
    wording = training_reader.reader_wordings("colour", True)[0]
    colliding = heldout.HeldoutSet(yes_no={"colour": (wording,)}, yes_no_inverted={}, mcq_options={},
                                   mcq_none="", mcq_stems=(), describe=())
    monkeypatch.setitem(heldout.SETS, "z", colliding)
    with pytest.raises(AssertionError, match="held-out set"):
        test_every_set_is_one_the_reader_was_trained_with_or_collides_with_none_of_its_wordings(monkeypatch)

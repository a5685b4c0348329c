"""Answers to questions about a family of kinds that name no direction ("Is this photo well exposed?").

A picture can be exposed wrongly two ways, and the model was trained on one question per way (too
dark, too bright). Read as about one of them, "Is this photo well exposed?" is answered "yes" for a
picture that is wrong the other way. The question reader (:mod:`.reader`, ``groups`` in its
configuration) reads such a question as about the whole family; the asker then asks every kind's
trained question and combines the answers here:

- **yes/no**: the exposure is wrong when either kind's defect is there, so a question whose "yes"
  means the defect takes the larger "yes" of the kinds, and one whose "yes" means the picture is
  fine the smaller (both must be fine);
- **a level** ("How good is the exposure?" over good / fair / poor): the worse kind decides, so the
  answer is mapped from the severity distribution of the kind whose expected severity is higher.

The module knows nothing of models: the asker (local or remote) pools each kind's prefills first.
"""

from __future__ import annotations

from typing import Sequence, TypeVar

T = TypeVar("T")


def chunks(rows: Sequence[T], sizes: Sequence[int]) -> list[list[T]]:
    """``rows`` cut into consecutive runs of ``sizes`` (one run per kind of the family)."""
    if sum(sizes) != len(rows):
        raise ValueError(f"{len(rows)} rows for parts of {list(sizes)}")
    out: list[list[T]] = []
    start = 0
    for size in sizes:
        out.append(list(rows[start:start + size]))
        start += size
    return out


def either_yes_no(options: Sequence[str], points_to_defect: bool,
                  per_kind: Sequence[dict[str, float]]) -> dict[str, float]:
    """The user's yes/no probabilities from each kind's (already in the user's sense: "yes" = the defect
    when ``points_to_defect``, else "yes" = fine): any defect makes the family's."""
    yes = next(o for o in options if o.strip().lower() == "yes")
    no = next(o for o in options if o.strip().lower() == "no")
    values = [p[yes] / (p[yes] + p[no]) for p in per_kind]
    p_yes = max(values) if points_to_defect else min(values)
    return {option: (p_yes if option == yes else 1.0 - p_yes) for option in options}


def worst(severities: Sequence[str], per_kind: Sequence[dict[str, float]]) -> list[float]:
    """The severity distribution (in ``severities``' order, none first) of the kind whose expected
    severity is highest; the first such kind on a tie."""
    def expected(p: dict[str, float]) -> float:
        return sum(i * p[s] for i, s in enumerate(severities))

    chosen = max(per_kind, key=expected)
    return [chosen[s] for s in severities]

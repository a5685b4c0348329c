"""Polarity: does the model read what a yes/no question says of the defect, or only the defect's word?

Held-out set b's "inverted" wordings ("Is there no noise at all in this frame?") are answered right
far below chance by every stage of the v5 lineage. That can mean two things: the wordings are new to
the model, or the model never learnt negation at all. This tells them apart by asking, about the same
images and kinds as the held-out yes/no questions (:func:`.paraphrase.yes_no_picks`), four forms drawn
from the *training* pools of :mod:`qplug_training.corpus.composed`:

- ``direct``: the defect's words ("Is the photo blurry?"; yes = the defect is there);
- ``fine``: the words for its absence ("Is the photo sharp?"; yes = it is not there);
- ``negated_fine``: those words negated ("Is the photo not sharp?"; yes = it is there);
- ``negated_defect``: the defect's words negated ("Is the photo free of blur?"; yes = it is not there).

A model that reads polarity scores alike on all four; one that reads only the defect's word scores
well on ``direct`` and ``fine`` (which it was taught as fixed phrases) and below chance on the negated
forms, where the same words carry the other answer. The negated forms are training wordings only for
a model whose corpus had ``--negated-wordings`` (v6, the fast chain v2).

Accuracy mixes reading with seeing; the flip figures (:func:`flip_figures`) keep only reading: on the
same pick, a form and its opposite (:data:`OPPOSITES`) must get different answers, whatever the image.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from .common import deterministic_sample, log

#: The four forms, in report order (:func:`_pool` says what each asks).
FORMS: tuple[str, ...] = ("direct", "fine", "negated_fine", "negated_defect")

#: Form -> the form it says the opposite of, about the same pick: a model that reads the question
#: changes its answer between the two every time, right or wrong, so the share of picks where it does
#: (the flip rate) measures reading apart from seeing. ``fine`` against ``direct`` is the topic word's
#: own polarity; the negated forms add one "not" (or "free of", "fail to") to a form it was taught.
OPPOSITES: dict[str, str] = {"fine": "direct", "negated_fine": "fine", "negated_defect": "direct"}


def _pool(form: str, kind: str) -> tuple[tuple[str, ...], bool]:
    from ..corpus import composed

    if form == "direct":
        return composed.yes_no_wordings(kind, broad=True), False
    if form == "fine":
        return composed.yes_no_wordings(kind, fine=True, broad=True), True
    if form == "negated_fine":
        return composed.negated_yes_no_wordings(kind), False
    if form == "negated_defect":
        return composed.negated_yes_no_wordings(kind, fine=True), True
    raise ValueError(f"unknown form {form!r}")


def polarity_questions(metas: list[dict[str, Any]], n: int | None = 300) -> dict[str, list[Any]]:
    """Per form, one question per (image, kind) pick of ``n`` sampled picks; the same picks for every form."""
    from ..evaluate import Question
    from .paraphrase import yes_no_picks

    picks = deterministic_sample(yes_no_picks(metas), n, "polarity")
    out: dict[str, list[Any]] = {form: [] for form in FORMS}
    for m, kind, there, _ in picks:
        rng = random.Random(f"polarity:{m['id']}:{kind}")
        for form in FORMS:
            pool, inverted = _pool(form, kind)
            gold = "yes" if there != inverted else "no"
            out[form].append(Question(image=m["image"], question=rng.choice(pool), candidates=("yes", "no"),
                                      correct=gold, type=form, concern=kind, id=f"{m['id']}/polarity-{form}-{kind}"))
    return out


def polarity_figures(model: str, corpus: Path, n: int | None = 300, batch_size: int = 16,
                     items: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Yes/no accuracy per form (see the module docstring); rows appended to ``items``."""
    from qplug_vlm.backend import load_backend

    from ..evaluate import evaluate_mcq
    from .paraphrase import _metas

    backend = load_backend(model=model, device="cpu")
    out: dict[str, Any] = {"model": model, "forms": {}}
    answered: dict[str, list[dict[str, Any]]] = {}
    for form, questions in polarity_questions(_metas(corpus), n).items():
        rows: list[dict[str, Any]] = []
        result = evaluate_mcq(backend, questions, corpus, batch_size, rows)
        out["forms"][form] = result
        answered[form] = rows
        if items is not None:
            items += [{**r, "task": f"polarity_{form}"} for r in rows]
        log(f"polarity {form}: {len(questions)} questions, accuracy {result['overall']['accuracy']:.3f}")
    accuracy = {form: out["forms"][form]["overall"]["accuracy"] for form in FORMS}
    out["plain_mean"] = (accuracy["direct"] + accuracy["fine"]) / 2
    out["negated_mean"] = (accuracy["negated_fine"] + accuracy["negated_defect"]) / 2
    out["flips"] = flip_figures(answered)
    return out


def flip_figures(answered: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Per form of :data:`OPPOSITES`: how often its answer differs from its opposite's on the same pick
    (1.0 for a model that reads the question, whatever it sees), and the Pearson correlation of the two
    forms' P(yes) (negative for a reader; positive when the added word is ignored)."""
    import numpy as np

    out: dict[str, dict[str, Any]] = {}
    for form, other in OPPOSITES.items():
        rows, others = answered.get(form), answered.get(other)
        if not rows or not others:
            continue
        if [(r["image"], r["concern"]) for r in rows] != [(r["image"], r["concern"]) for r in others]:
            raise ValueError(f"polarity forms {form} and {other} were not asked about the same picks")
        flips = [a["answer"] != b["answer"] for a, b in zip(rows, others)]
        p_yes = np.array([[a["probabilities"]["yes"], b["probabilities"]["yes"]] for a, b in zip(rows, others)])
        spread = p_yes.std(axis=0)
        correlation = float(np.corrcoef(p_yes.T)[0, 1]) if len(rows) > 1 and spread.all() else None
        out[form] = {"against": other, "n": len(flips), "flip_rate": sum(flips) / len(flips),
                     "p_yes_correlation": correlation}
        log(f"polarity {form} against {other}: answer flips on {sum(flips)}/{len(flips)} picks, "
            f"P(yes) correlation {'n/a' if correlation is None else f'{correlation:+.2f}'}")
    return out

"""Held-out paraphrases: yes/no, multiple choice and descriptions asked in words never trained on.

The wordings are :mod:`qplug_training.corpus.heldout`'s; the images and their truth are the evaluation
set's (``CORPUS/eval/metadata.jsonl``: ``checks.mention``, visible kinds and their impact; ``checks.absent``,
kinds that are cleanly absent; ``main``, the dominant kind). Questions are built deterministically:

- **yes/no**: per image, one question about a kind that is visible at least "moderate" (gold yes) and one
  about a cleanly absent kind (gold no), each in a held-out wording of that kind (the inverted wordings
  flip the gold); slight defects are not asked about (neither answer would be fair);
- **MCQ**: images whose main kind is one of issue 16's six options with at least moderate impact and no
  other of the six visible: the six options (blur / noise / compression artifacts / too dark / too bright
  / low contrast) in a per-question shuffled order; pristine images get "none of these" as a seventh;
- **descriptions**: greedy descriptions under the held-out description prompts, checked like figure 3
  (:func:`.description.check_description`: the main kind named, nothing named on a clean image);
- **quality as a whole** (sets with ``overall_good`` / ``overall_bad`` wordings): a yes/no question per
  image whose pseudo-MOS level is excellent or good (the picture is good) or poor or bad (it is poor);
  "fair" images are not asked (either answer would be fair);
- **quality levels** (sets with ``rating_stems``): a level question per image over one of the set's
  scales, best first or worst first; the gold option is the one whose equal share of the 1-5 MOS range
  holds the image's pseudo-MOS (Q-Align's equal intervals, Sec. 3.1, for any number of levels), and an
  image within :data:`RATING_MARGIN` of a boundary between shares is not asked;
- **exposure either way** (sets with ``exposure_right`` / ``exposure_wrong``): a yes/no question per
  image that shows under- or overexposure at least "moderate" (the exposure is wrong) or cleanly lacks
  both (it is right); other images are not asked. A level request about a group of kinds
  (:data:`qplug_training.corpus.heldout.GROUPS`, ``attribute_stems["exposure"]``) takes the group's
  worst severity.

``held`` picks the set of wordings (:data:`qplug_training.corpus.heldout.SETS`; set ``b`` has its own
six options, ``out of focus`` ... ``washed out``, and ``no problem``). Multiple choice is read as the
asker reads it, over every rotation of the options unless ``option_order="given"``.
"""

from __future__ import annotations

import json
import random
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

from qplug_vlm.choices import DEFAULT_OPTION_ORDER

from ..corpus.facts import CLEARLY_THERE
from .common import deterministic_sample, load_rgb, log

_GOOD_LEVELS, _POOR_LEVELS = ("excellent", "good"), ("poor", "bad")
#: How far from a boundary between two options' shares of the MOS range an image must lie to be asked.
RATING_MARGIN = 0.15


def _metas(corpus: Path) -> list[dict[str, Any]]:
    rows = []
    with open(corpus / "eval" / "metadata.jsonl", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                rows.append(json.loads(line))
    return sorted(rows, key=lambda m: m["id"])


def yes_no_questions(metas: Sequence[dict[str, Any]], held: str = "a") -> list[Any]:
    """Held-out yes/no questions of set ``held`` about the evaluation images (see the module docstring)."""
    from ..corpus import heldout
    from ..evaluate import Question

    out = []
    for m, kind, there, rng in yes_no_picks(metas):
        wordings = [(q, False) for q in heldout.SETS[held].yes_no.get(kind, ())]
        wordings += [(q, True) for q in heldout.SETS[held].yes_no_inverted.get(kind, ())]
        if not wordings:  # a set that asks no yes/no about kinds (g)
            continue
        question, inverted = rng.choice(wordings)
        gold = "yes" if there != inverted else "no"
        out.append(Question(image=m["image"], question=question, candidates=("yes", "no"), correct=gold,
                            type=f"yes_no:{'inverted' if inverted else 'direct'}", concern=kind,
                            id=f"{m['id']}/heldout-yn-{kind}"))
    return out


def yes_no_picks(metas: Sequence[dict[str, Any]]) -> list[tuple[dict[str, Any], str, bool, random.Random]]:
    """What each image's yes/no questions ask about: one kind visible at least "moderate" (there) and
    one cleanly absent kind (not there), with the per-image generator that chose them (for the wording)."""
    out = []
    for m in metas:
        rng = random.Random(f"paraphrase:yn:{m['id']}")
        checks = m["eval"]["checks"]
        present = sorted(k for k, impact in checks["mention"].items() if impact in CLEARLY_THERE)
        absent = sorted(checks["absent"])
        for kind, there in ((rng.choice(present), True) if present else (None, True),
                            (rng.choice(absent), False) if absent else (None, False)):
            if kind is not None:
                out.append((m, kind, there, rng))
    return out


def mcq_questions(metas: Sequence[dict[str, Any]], held: str = "a") -> list[Any]:
    from ..corpus import heldout
    from ..evaluate import Question

    six, none = heldout.SETS[held].mcq_options, heldout.SETS[held].mcq_none
    out = []
    for m in metas:
        if not six:
            break
        mention = m["eval"]["checks"]["mention"]
        main = m["facts"]["main"]
        rng = random.Random(f"paraphrase:mcq:{m['id']}")
        if m["eval"]["severity_level"] == 0 and not m["distortions"]:
            options = list(six.values())
            rng.shuffle(options)
            options.append(none)
            correct, concern = none, "none"
        elif main in six and mention.get(main) in CLEARLY_THERE and not (set(mention) - {main}) & set(six):
            options = list(six.values())
            rng.shuffle(options)
            correct, concern = six[main], main
        else:
            continue
        out.append(Question(image=m["image"], question=rng.choice(heldout.SETS[held].mcq_stems), candidates=tuple(options),
                            correct=correct, type="mcq", concern=concern, id=f"{m['id']}/heldout-mcq"))
    return out


def overall_questions(metas: Sequence[dict[str, Any]], held: str) -> list[Any]:
    """Yes/no questions about quality as a whole (see the module docstring); none for sets without them."""
    from ..corpus import heldout
    from ..evaluate import Question

    good, bad = heldout.SETS[held].overall_good, heldout.SETS[held].overall_bad
    out = []
    for m in metas:
        if m["level"] not in _GOOD_LEVELS + _POOR_LEVELS or not good + bad:
            continue
        rng = random.Random(f"paraphrase:overall:{m['id']}")
        question = rng.choice(good + bad)
        points_to_good = question in good
        gold = "yes" if (m["level"] in _GOOD_LEVELS) == points_to_good else "no"
        out.append(Question(image=m["image"], question=question, candidates=("yes", "no"), correct=gold,
                            type=f"overall:{'good' if points_to_good else 'poor'}", concern=m["level"],
                            id=f"{m['id']}/heldout-overall"))
    return out


def exposure_questions(metas: Sequence[dict[str, Any]], held: str) -> list[Any]:
    """Yes/no questions about exposure that name no direction (see the module docstring)."""
    from ..corpus import heldout
    from ..evaluate import Question

    right, wrong = heldout.SETS[held].exposure_right, heldout.SETS[held].exposure_wrong
    kinds = heldout.GROUPS["exposure"]
    out = []
    for m in metas:
        if not right + wrong:
            break
        checks = m["eval"]["checks"]
        if any(checks["mention"].get(k) in CLEARLY_THERE for k in kinds):
            is_wrong = True
        elif set(kinds) <= set(checks["absent"]):
            is_wrong = False
        else:
            continue
        rng = random.Random(f"paraphrase:exposure:{m['id']}")
        question = rng.choice(right + wrong)
        points_to_wrong = question in wrong
        out.append(Question(image=m["image"], question=question, candidates=("yes", "no"),
                            correct="yes" if is_wrong == points_to_wrong else "no",
                            type=f"exposure:{'wrong' if points_to_wrong else 'right'}",
                            concern="wrong" if is_wrong else "right", id=f"{m['id']}/heldout-exposure"))
    return out


def rating_share(mos: float, levels: int) -> tuple[int, float]:
    """(index of the share of [1, 5] that holds ``mos``, counted from the top; distance to the nearest
    boundary between shares) for ``levels`` equal shares."""
    width = 4.0 / levels
    index = min(int((5.0 - mos) / width), levels - 1)
    inner = [5.0 - width * k for k in range(1, levels)]
    return index, min(abs(mos - b) for b in inner) if inner else float("inf")


def rating_questions(metas: Sequence[dict[str, Any]], held: str) -> list[Any]:
    """Quality-level questions over the set's scales (see the module docstring)."""
    from ..corpus import heldout
    from ..evaluate import Question

    stems, scales = heldout.SETS[held].rating_stems, heldout.SETS[held].rating_options
    out = []
    for m in metas:
        if not stems or not scales:
            break
        rng = random.Random(f"paraphrase:rating:{m['id']}")
        scale, stem = rng.choice(scales), rng.choice(stems)
        index, margin = rating_share(m["pseudo_mos"], len(scale))
        if margin < RATING_MARGIN:
            continue
        options = scale if rng.random() < 0.5 else tuple(reversed(scale))
        out.append(Question(image=m["image"], question=stem, candidates=tuple(options), correct=scale[index],
                            type=f"rating:{len(scale)}", concern="/".join(scale), id=f"{m['id']}/heldout-rating"))
    return out


#: A kind's severity on the evaluation image, best first (the corpus's severity answers: severe is strong).
_SEVERITY = {"slight": 1, "moderate": 2, "strong": 3, "severe": 3}
_SEVERITY_LEVELS = 4


def attribute_share(severity: int, options: int) -> int | None:
    """The option (counted from the best) whose equal share of the range overlaps most of severity
    level ``severity``'s equal share (4 levels: none, slight, moderate, strong); None on a tie."""
    low, high = severity / _SEVERITY_LEVELS, (severity + 1) / _SEVERITY_LEVELS
    overlaps = [max(0.0, min(high, (i + 1) / options) - max(low, i / options)) for i in range(options)]
    best = max(overlaps)
    return overlaps.index(best) if overlaps.count(best) == 1 else None


def attribute_questions(metas: Sequence[dict[str, Any]], held: str) -> list[Any]:
    """Level requests about one kind (sets with ``attribute_stems``): per image, a kind it shows (any
    impact) or cleanly lacks, in a stem naming the good attribute or the defect, over a quality scale
    (good attribute only) or an amount scale; the gold option holds the kind's severity (see
    :func:`attribute_share`; an amount scale runs against severity for a stem naming the defect)."""
    from ..corpus import heldout
    from ..evaluate import Question

    held_set = heldout.SETS[held]
    out = []
    for m in metas:
        if not held_set.attribute_stems:
            break
        rng = random.Random(f"paraphrase:attribute:{m['id']}")
        checks = m["eval"]["checks"]
        present = sorted(k for k in held_set.attribute_stems if _severity(checks, k) > 0)
        absent = sorted(k for k in held_set.attribute_stems if set(heldout.GROUPS.get(k, (k,))) <= set(checks["absent"]))
        pool = ([rng.choice(present)] if present else []) + ([rng.choice(absent)] if absent else [])
        if not pool:
            continue
        kind = rng.choice(pool)
        severity = _severity(checks, kind)
        stem, good_attribute = rng.choice(held_set.attribute_stems[kind])
        scales = [(scale, True) for scale in held_set.attribute_quality_options] if good_attribute else []
        scales += [(scale, not good_attribute) for scale in held_set.attribute_amount_options]
        scale, most_is_worst = rng.choice(scales)
        best_first = tuple(reversed(scale)) if most_is_worst and scale in held_set.attribute_amount_options else scale
        index = attribute_share(severity, len(scale))
        if index is None:
            continue
        options = scale if rng.random() < 0.5 else tuple(reversed(scale))
        out.append(Question(image=m["image"], question=stem, candidates=tuple(options), correct=best_first[index],
                            type=f"attribute:{'good' if good_attribute else 'defect'}", concern="/".join(best_first),
                            id=f"{m['id']}/heldout-attribute-{kind}"))
    return out


def _severity(checks: dict[str, Any], kind: str) -> int:
    """A kind's severity on an evaluation image (0: not mentioned); a group's is its worst kind's."""
    from ..corpus import heldout

    return max(_SEVERITY.get(checks["mention"].get(k, ""), 0) for k in heldout.GROUPS.get(kind, (kind,)))


def _within_one(rows: Sequence[dict[str, Any]], questions: Sequence[Any]) -> float | None:
    """Share of level answers at most one step from the gold on the question's scale."""
    by_id = {q.id: q for q in questions}
    hits = []
    for row in rows:
        scale = by_id[row["id"]].concern.split("/")
        hits.append(abs(scale.index(row["answer"]) - scale.index(row["correct"])) <= 1)
    return sum(hits) / len(hits) if hits else None


def _balanced(questions: list[Any], n: int | None, seed: str, halves: tuple[str, str] = ("correct", "yes")) -> list[Any]:
    """At most ``n`` questions, half of them with ``question.FIELD == VALUE`` (``halves``; by default
    half of each gold answer) where possible (deterministic)."""
    field, value = halves
    yes = [q for q in questions if getattr(q, field) == value]
    no = [q for q in questions if getattr(q, field) != value]
    if n is None:
        k = min(len(yes), len(no))
    else:
        k = min(len(yes), len(no), n // 2)
    return deterministic_sample(yes, k, seed + ":yes") + deterministic_sample(no, k, seed + ":no")


def _by_wording(rows: Sequence[dict[str, Any]], questions: Sequence[Any]) -> dict[str, dict[str, Any]]:
    wording = {q.id: q.question for q in questions}
    grouped: dict[str, list[bool]] = defaultdict(list)
    for row in rows:
        grouped[wording[row["id"]]].append(bool(row["hit"]))
    return {w: {"accuracy": sum(v) / len(v), "n": len(v)} for w, v in sorted(grouped.items())}


def paraphrase_figures(model: str, corpus: Path, yes_no: int | None = 600, mcq: int | None = 400,
                       describe: int = 150, max_new_tokens: int = 80, batch_size: int = 16,
                       items: list[dict[str, Any]] | None = None, option_order: str = DEFAULT_OPTION_ORDER,
                       held: str = "a", overall: int | None = 400, rating: int | None = 400,
                       attribute: int | None = 400, exposure: int | None = 400) -> dict[str, Any]:
    """Accuracy on the held-out paraphrases, multiple choice read as the asker's ``option_order``
    says; rows appended to ``items``."""
    from qplug.types import Frame
    from qplug_vlm import describer
    from qplug_vlm.backend import load_backend

    from ..corpus import heldout
    from ..evaluate import evaluate_mcq
    from .description import check_description

    items = [] if items is None else items
    metas = _metas(corpus)
    backend = load_backend(model=model, device="cpu")
    out: dict[str, Any] = {"model": model, "heldout_set": held, "heldout_questions": len(heldout.SETS[held].questions()),
                           "option_order": option_order}
    parts = (("yes_no", "yes/no", _balanced(yes_no_questions(metas, held), yes_no, "paraphrase:yn")),
             ("mcq", "MCQ", deterministic_sample(mcq_questions(metas, held), mcq, "paraphrase:mcq")),
             ("overall", "overall", _balanced(overall_questions(metas, held), overall, "paraphrase:overall")),
             ("rating", "rating", deterministic_sample(rating_questions(metas, held), rating, "paraphrase:rating")),
             ("attribute", "attribute",
              deterministic_sample(attribute_questions(metas, held), attribute, "paraphrase:attribute")),
             # Half of the images exposed wrongly, either way: most evaluation images are exposed right.
             ("exposure", "exposure either way",
              _balanced(exposure_questions(metas, held), exposure, "paraphrase:exposure", ("concern", "wrong"))))
    for name, label, chosen in parts:
        if not chosen:
            continue
        began = time.perf_counter()
        rows: list[dict[str, Any]] = []
        out[name] = evaluate_mcq(backend, chosen, corpus, batch_size, rows, option_order)
        out[name]["by_wording"] = _by_wording(rows, chosen)
        items += [{**r, "task": f"heldout_{name}"} for r in rows]
        figure = f"accuracy {out[name]['overall']['accuracy']:.3f}"
        if name in ("rating", "attribute"):
            out[name]["within_one"] = _within_one(rows, chosen)
            figure += f", within one {out[name]['within_one']:.3f}"
        log(f"paraphrase {label}: {len(chosen)} in {time.perf_counter() - began:.1f} s, {figure}")
    if describe and heldout.SETS[held].describe:
        began = time.perf_counter()
        pool = deterministic_sample(metas, describe, "paraphrase:describe")
        by_prompt: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for i, m in enumerate(pool):
            prompts = heldout.SETS[held].describe
            by_prompt[prompts[i % len(prompts)]].append(m)
        checks: list[dict[str, Any]] = []
        for prompt, group in by_prompt.items():
            describe_ = describer.build(prompt=prompt, model=model, device="cpu", max_new_tokens=max_new_tokens)
            for start in range(0, len(group), batch_size):
                chunk = group[start:start + batch_size]
                frames = [Frame.from_rgb(load_rgb(corpus / m["image"]), source_id=m["id"], index=j)
                          for j, m in enumerate(chunk)]
                for m, text in zip(chunk, describe_.describe(frames)):
                    check = check_description(text, m["facts"]["main"], m["level"])
                    checks.append({**check, "prompt": prompt})
                    items.append({"task": "heldout_describe", "id": m["id"], "prompt": prompt, "description": text,
                                  **check})
        n = len(checks)
        out["describe"] = {"n": n, "names_main": sum(c["names_main"] for c in checks) / n if n else None,
                           "level_within_one": sum(c["level_within_one"] for c in checks) / n if n else None,
                           "names_main_distorted": _rate([c for c in checks if c["main"] != "none"]),
                           "names_none_clean": _rate([c for c in checks if c["main"] == "none"])}
        log(f"paraphrase describe: {n} in {time.perf_counter() - began:.1f} s, names main {out['describe']['names_main']}")
    return out


def _rate(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {"n": len(rows), "rate": sum(r["names_main"] for r in rows) / len(rows) if rows else None}

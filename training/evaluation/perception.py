"""2. Perception: yes/no and multiple-choice accuracy on the evaluation set's ``questions.json``.

Asked through qplug's own asker prompts (letter or Yes/No logits, no generation), overall and per
distortion kind, by :func:`qplug_training.evaluate.evaluate_mcq`."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from qplug_vlm.choices import DEFAULT_OPTION_ORDER

from .common import deterministic_sample, log


_OPTION_LINE = re.compile(r"^([A-Z])\.\s+(.*\S)\s*$")


def parse_mcq(text: str) -> tuple[str, list[str], list[str]]:
    """(stem, options, their letters) of a lettered question; the image tag and answer instruction are dropped."""
    lines = [line for line in text.replace("<image>", "").strip().splitlines() if line.strip()]
    first = next((i for i, line in enumerate(lines) if _OPTION_LINE.match(line)), None)
    if first is None:
        raise ValueError(f"no lettered options in {text!r}")
    letters, options = [], []
    for line in lines[first:]:
        m = _OPTION_LINE.match(line)
        if not m:
            break  # the "Answer with the option's letter..." instruction; qplug's prompt adds its own
        letters.append(m.group(1))
        options.append(m.group(2))
    return " ".join(lines[:first]).strip(), options, letters


def read_corpus_questions(path: Path) -> tuple[list[Any], list[Any]]:
    """yes/no and MCQ items of ``questions.json`` as :class:`qplug_training.evaluate.Question`.

    ``type`` carries the question family (``yes_no``, ``which``: the main distortion, ``severity``) and
    ``concern`` the distortion kind, so ``evaluate_mcq``'s breakdowns are per family and per kind.
    """
    from ..evaluate import Question

    yes_no, mcq = [], []
    for item in json.loads(path.read_text(encoding="utf-8")):
        human = next(c["value"] for c in item["conversations"] if c["from"] == "human")
        gold = next(c["value"] for c in item["conversations"] if c["from"] == "gpt").strip()
        kind = str(item.get("kind") or "none")
        if item.get("task") == "yes_no":
            # Gold from the answer's first word ("No, the image is not noisy." -> no).
            first = re.split(r"[\s,.;:!]+", gold, maxsplit=1)[0].lower()
            if first not in ("yes", "no"):
                continue
            yes_no.append(Question(image=item["image"], question=human.replace("<image>", "").strip(),
                                   candidates=("yes", "no"), correct=first, type="yes_no", concern=kind,
                                   id=item["id"]))
        elif item.get("task") == "mcq":
            stem, options, letters = parse_mcq(human)
            letter = gold[:1].upper()
            if letter not in letters:
                continue
            family = "severity" if item["id"].endswith("/sev") else "which"
            mcq.append(Question(image=item["image"], question=stem, candidates=tuple(options),
                                correct=options[letters.index(letter)], type=family, concern=kind, id=item["id"]))
    return yes_no, mcq


def perception_figures(backend: Any, corpus: Path, limit: int | None, batch_size: int,
                       items: list[dict[str, Any]], option_order: str = DEFAULT_OPTION_ORDER) -> dict[str, Any]:
    """2: accuracy through qplug_training.evaluate.evaluate_mcq, which asks exactly as qplug's ``vlm`` asker does."""
    from ..evaluate import evaluate_mcq

    yes_no, mcq = read_corpus_questions(corpus / "eval" / "questions.json")
    out = {}
    for name, questions in (("yes_no", yes_no), ("mcq", mcq)):
        chosen = deterministic_sample(questions, limit, f"perception:{name}")
        began = time.perf_counter()
        rows: list[dict[str, Any]] = []
        out[name] = evaluate_mcq(backend, chosen, corpus, batch_size, rows, option_order)
        out[name]["option_order"] = option_order
        out[name]["of"] = len(questions)
        items += [dict(row, task=name) for row in rows]
        log(f"perception {name}: {len(chosen)} questions in {time.perf_counter() - began:.1f} s, "
            f"accuracy {out[name]['overall']['accuracy']}")
    return out

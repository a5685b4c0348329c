"""The validation evaluation set: every distortion type at five fixed severities per val crop.

For each crop of a validation photo: the pristine crop plus every single distortion at the
level-centre severities 0.1, 0.3, 0.5, 0.7, 0.9, the random parts (blur angle, noise field, cast
hue) held fixed across the five severities of a (crop, type) group, so severity is the only thing
that changes inside a group. Written under ``eval/``:

- ``metadata.jsonl``: as the corpus metadata, plus ``eval``: ``group`` (photo:crop:type, for
  Spearman within a group), ``crop_group``, ``type``, ``severity_level`` (0 = pristine) and
  ``checks`` for descriptions (``mention``: visible kinds and their impact, ``absent``: kinds
  a description must not claim, ``level``);
- ``feedback.jsonl``: reference descriptions;
- ``questions.json``: Q-Align, yes/no and multiple-choice questions with gold answers in
  ``answer`` (LLaVA format, image paths relative to the corpus folder);
- ``pairs.jsonl``: (pristine, distorted) pairs with severity level >= 3: the distorted image must
  score lower.

Metrics to compute from these: Spearman of the model score against severity within each group,
pooled per type, pair accuracy, yes/no and MCQ accuracy, description checks.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..data import Feedback, write_records

from .generate import Settings, Task, eval_id
from .photos import Photo
from .pipeline import Store, digest, execute, format_mos_table, image_summary, log, make_tasks
from .questions import QuestionWriter


def build_eval(photos: list[Photo], root: Path, out: Path, settings: Settings, workers: int,
               old: dict[str, Any]) -> dict[str, Any] | None:
    """Build (or resume) ``out/eval``; returns its summary, or ``None`` if already up to date."""
    folder = out / "eval"
    store = Store(folder, out)
    val = [p for p in photos if p.split == "validation"]
    expected = len(val) * settings.eval_crops_per_photo * (1 + 5 * len(settings.types))
    tasks = [t for t in make_tasks(photos, root, settings, store.done, eval_set=True)
             if not _all_done(t, settings, store.done)]
    log(f"eval: {len(val)} validation photos, {expected} images planned")
    made = execute(tasks, settings, out, store, workers, "eval", expected)
    store.close()
    dg = digest(store.meta, settings)
    files = [folder / n for n in ("questions.json", "pairs.jsonl")]
    if not made and old.get("digest") == dg and all(f.is_file() for f in files):
        log("eval: up to date")
        return None
    metas = [store.meta[i] for i in sorted(store.meta)]
    # Letter-only MCQ answers in evaluation: the strict, logit-comparable format.
    writer = QuestionWriter(seed=settings.seed + 1, yes_no_per_image=2, severity_share=1.0, describe_share=0.0,
                            mcq_suffix_share=1.0)
    records = []
    for m in metas:
        facts = m["facts"] | {"distortions": m["distortions"]}
        fb = Feedback(**{k: v for k, v in store.feedback[m["id"]].items() if k in ("id", "image", "text", "level",
                                                                                   "attributes")})
        for r in writer.records(fb, facts):
            if r.meta.get("converter") == "corpus" and r.task in ("qalign", "mcq", "yes_no"):
                records.append(r)
    records = writer.finish(records)
    n_q = write_records(records, folder / "questions.json")
    pristine = {m["eval"]["crop_group"]: m["id"] for m in metas if m["eval"]["severity_level"] == 0}
    n_pairs = 0
    tmp = folder / "pairs.jsonl.part"
    with open(tmp, "w", encoding="utf-8") as fh:
        for m in metas:
            ev = m["eval"]
            if ev["severity_level"] >= 3 and ev["crop_group"] in pristine:
                fh.write(json.dumps({"better": pristine[ev["crop_group"]], "worse": m["id"], "type": ev["type"],
                                     "severity_level": ev["severity_level"]}) + "\n")
                n_pairs += 1
    tmp.replace(folder / "pairs.jsonl")
    summary = image_summary(metas)
    log("eval: pseudo-MOS by type and severity level (the calibration table):\n"
        + format_mos_table(summary["pseudo_mos_by_type_and_severity_level"]))
    return {"digest": dg, "images": len(metas), "questions": n_q, "pairs": n_pairs,
            "groups": len({m["eval"]["group"] for m in metas if m["eval"]["type"]}),
            "by_level": summary["by_level"],
            "pseudo_mos_by_type_and_severity_level": summary["pseudo_mos_by_type_and_severity_level"],
            "questions_stats": writer.stats()}


def _all_done(task: Task, settings: Settings, done: set[str]) -> bool:
    for c in task.crops:
        ids = [eval_id(task.photo["id"], c, None, None)]
        ids += [eval_id(task.photo["id"], c, t, lv) for t in settings.types for lv in range(1, 6)]
        if any(i not in done for i in ids):
            return False
    return True

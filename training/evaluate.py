"""Evaluate a model the way Q-Bench does, through qplug's own scorers and asker.

``python -m qplug_training.evaluate --model DIR [--adapter DIR] [--mcq FILE] [--mos CSV] [--describe FILE] ...``

- **A1, perception** (``--mcq``): multiple-choice accuracy on a Q-Bench LLVisionQA-style JSON file
  (``img_path``/``image``, ``question``, ``candidates``, ``correct_ans``, ``type``, ``concern``), overall
  and per question type and concern. The answer is the option whose letter has the highest logit
  after qplug's MCQ prompt (one prefill, no generation): stricter than Q-Bench's substring match.
- **A3, assessment** (``--mos``): SRCC and PLCC (after a 4-parameter logistic fit) of a level
  scorer's scores (``qalign`` by default) against MOS from a CSV with ``image,mos`` columns.
- **Descriptions** (``--describe``): generated descriptions checked offline against a reference text
  or expected attributes: which low-level attributes the reference asserts are mentioned, whether
  their states agree (blurry/sharp, noisy/clean...), and whether the overall level word matches
  (``qplug_training.data.attributes``). ``--judge openai`` asks an OpenAI-compatible model instead for
  Q-Bench A2's completeness / precision / relevance (0-2 each); offline is the default.

Results: ``OUT/eval.json`` and ``OUT/eval.md`` (the Markdown is printed too), per-item rows in
``OUT/eval_items.jsonl``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

from qplug_vlm.choices import DEFAULT_OPTION_ORDER

from .metrics import correlation_report

if TYPE_CHECKING:
    from PIL import Image

#: Q-Bench's numeric codes for question types and concerns (LLVisionQA); strings pass through.
QUESTION_TYPES = {0: "yes-or-no", 1: "what", 2: "how"}
CONCERNS = {0: "distortion", 1: "other", 2: "in-context distortion", 3: "in-context other"}


# ---------------------------------------------------------------------------------------------
# Inputs


@dataclass(frozen=True)
class Question:
    image: str
    question: str
    candidates: tuple[str, ...]
    correct: str
    type: str
    concern: str
    id: str


def _first(item: dict[str, Any], *keys: str, default: Any = None) -> Any:
    for key in keys:
        if key in item and item[key] is not None:
            return item[key]
    return default


def _label(value: Any, codes: dict[int, str]) -> str:
    if isinstance(value, bool) or value is None:
        return "unknown"
    if isinstance(value, int):
        return codes.get(value, str(value))
    return str(value).strip().lower() or "unknown"


def _read_json_list(path: Path) -> list[dict[str, Any]]:
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".jsonl", ".ndjson"):
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    data = json.loads(text)
    if isinstance(data, dict):  # {"questions": [...]} or {id: item}
        data = data.get("questions") or list(data.values())
    return list(data)


def read_questions(path: Path) -> tuple[list[Question], int]:
    """Questions of a Q-Bench-style file; items without a usable answer are counted, not fatal."""
    questions, skipped = [], 0
    for i, item in enumerate(_read_json_list(path)):
        candidates = tuple(str(c) for c in _first(item, "candidates", "choices", "options", default=()))
        correct = _first(item, "correct_ans", "correct", "answer")
        image = _first(item, "img_path", "image")
        question = _first(item, "question")
        if not (image and question and len(candidates) >= 2 and correct is not None and str(correct) in candidates):
            skipped += 1
            continue
        questions.append(Question(image=str(image), question=str(question), candidates=candidates,
                                  correct=str(correct), type=_label(_first(item, "type", "question_type"),
                                                                     QUESTION_TYPES),
                                  concern=_label(_first(item, "concern", "question_concern"), CONCERNS),
                                  id=str(_first(item, "id", default=i))))
    return questions, skipped


def read_mos(path: Path) -> list[tuple[str, float]]:
    """(image, mos) rows of a CSV (columns ``image``/``mos`` by name, else the first two columns) or of a
    Q-Bench A3 JSON file (``[{"img_path": ..., "gt_score": ...}]``)."""
    if path.suffix.lower() in (".json", ".jsonl"):
        return [(str(_first(item, "img_path", "image")), float(_first(item, "gt_score", "mos")))
                for item in _read_json_list(path)]
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        return []
    header = [h.strip().lower() for h in rows[0]]
    if "mos" in header:
        image_col = next((header.index(k) for k in ("image", "img_path", "path", "file", "name") if k in header), 0)
        mos_col, body = header.index("mos"), rows[1:]
    else:
        image_col, mos_col, body = 0, 1, rows
        try:
            float(rows[0][1])
        except (ValueError, IndexError):
            body = rows[1:]
    return [(row[image_col].strip(), float(row[mos_col])) for row in body if len(row) > max(image_col, mos_col)]


def _open_image(root: Path | None, name: str) -> "Image.Image":
    from PIL import Image

    path = Path(name)
    if not path.is_absolute() and root is not None:
        path = root / path
    with Image.open(path) as image:
        return image.convert("RGB")


def _frame(image: "Image.Image", index: int) -> Any:
    import numpy as np

    from qplug.types import Frame

    return Frame.from_rgb(np.asarray(image), source_id="eval", index=index)


def _batches(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


# ---------------------------------------------------------------------------------------------
# A1: multiple-choice questions


def evaluate_mcq(backend: Any, questions: Sequence[Question], image_root: Path | None, batch_size: int = 8,
                 items: list[dict[str, Any]] | None = None, option_order: str = DEFAULT_OPTION_ORDER) -> dict[str, Any]:
    """Accuracy of the ``vlm`` asker's answers (letter logits, ``option_order`` as the asker's),
    overall and per type / concern; rows appended to ``items``."""
    from qplug_vlm.asker import Asker
    from qplug_vlm.images import model_image

    asker = Asker(backend, option_order=option_order)
    correct_by: dict[str, dict[str, list[int]]] = {"type": defaultdict(list), "concern": defaultdict(list)}
    hits: list[int] = []
    for batch in _batches(questions, batch_size):
        # The image as the asker shows it to the model (its window on a native-resolution model).
        images = [model_image(_frame(_open_image(image_root, q.image), i), asker.window, backend.native_crop,
                              asker.image_max_side, asker.pad_fill) for i, q in enumerate(batch)]
        answers = asker.choose(images, [(q.question, q.candidates) for q in batch])
        for q, answer in zip(batch, answers):
            hit = int(answer.choice == q.correct)
            hits.append(hit)
            correct_by["type"][q.type].append(hit)
            correct_by["concern"][q.concern].append(hit)
            if items is not None:
                items.append({"task": "mcq", "id": q.id, "image": q.image, "type": q.type, "concern": q.concern,
                              "answer": answer.choice, "correct": q.correct, "hit": bool(hit),
                              "probabilities": answer.probabilities})

    def summary(values: list[int]) -> dict[str, Any]:
        return {"accuracy": sum(values) / len(values) if values else None, "n": len(values)}

    return {"overall": summary(hits),
            "by_type": {k: summary(v) for k, v in sorted(correct_by["type"].items())},
            "by_concern": {k: summary(v) for k, v in sorted(correct_by["concern"].items())}}


# ---------------------------------------------------------------------------------------------
# A3: scores against MOS


def evaluate_mos(backend: Any, rows: Sequence[tuple[str, float]], image_root: Path | None, scorer: str = "qalign",
                 batch_size: int = 8, items: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """SRCC / PLCC (logistic-fitted) of ``scorer``'s values against MOS."""
    from qplug_vlm.prompts import method
    from qplug_vlm.scorers import LevelScorer

    level_scorer = LevelScorer(backend, method(scorer))
    predictions: list[float] = []
    for batch in _batches(rows, batch_size):
        frames = [_frame(_open_image(image_root, name), i) for i, (name, _) in enumerate(batch)]
        for (name, mos), score in zip(batch, level_scorer.score(frames)):
            predictions.append(score.value)
            if items is not None:
                items.append({"task": "mos", "image": name, "mos": mos, "score": score.value, "levels": score.levels})
    report = correlation_report(predictions, [mos for _, mos in rows])
    report["scorer"] = scorer
    return report


# ---------------------------------------------------------------------------------------------
# Descriptions


@dataclass(frozen=True)
class DescribeItem:
    image: str
    attributes: dict[str, str]
    level: str | None
    keywords: tuple[str, ...]
    reference: str


def read_describe(path: Path) -> list[DescribeItem]:
    """Items with a ``reference`` text (its attributes and level are extracted) and/or explicit
    ``expected: {attributes: {...}, level: ...}`` and ``keywords``."""
    from .data.attributes import analyse

    out = []
    for item in _read_json_list(path):
        reference = str(item.get("reference") or "")
        found = analyse(reference) if reference else None
        expected = item.get("expected") or {}
        attributes = dict(found.attributes if found else {})
        attributes.update(expected.get("attributes") or {})
        level = expected.get("level") or (found.level if found else None)
        out.append(DescribeItem(image=str(_first(item, "image", "img_path")), attributes=attributes, level=level,
                                keywords=tuple(item.get("keywords") or ()), reference=reference))
    return out


def offline_check(description: str, item: DescribeItem) -> dict[str, Any]:
    """Attribute mention / agreement and level agreement of one description."""
    from .data.attributes import LEVELS, analyse

    found = analyse(description)
    expected = item.attributes
    mentioned = [a for a in expected if a in found.attributes]
    agreed = [a for a in mentioned if found.attributes[a] == expected[a]]
    lowered = description.lower()
    result: dict[str, Any] = {
        "attributes_expected": len(expected),
        "mention_recall": len(mentioned) / len(expected) if expected else None,
        "attribute_agreement": len(agreed) / len(expected) if expected else None,
        "level_expected": item.level, "level_found": found.level,
        "level_match": (found.level == item.level) if item.level else None,
        "level_distance": (abs(LEVELS.index(found.level) - LEVELS.index(item.level))
                           if item.level and found.level else None),
        "keyword_recall": (sum(k.lower() in lowered for k in item.keywords) / len(item.keywords)
                           if item.keywords else None),
    }
    return result


JUDGE_PROMPT = (
    "You are grading a description of an image's low-level visual quality against a reference description.\n"
    "Reference: {reference}\nDescription: {description}\n"
    "Score three things from 0 to 2: completeness (does it cover the reference's quality attributes), precision "
    "(does it avoid contradicting the reference), relevance (does it stay on low-level quality). "
    'Reply with JSON only: {{"completeness": n, "precision": n, "relevance": n}}')


def openai_judge(model: str | None = None) -> Callable[[str, str], dict[str, float]]:
    """A judge on an OpenAI-compatible endpoint (``OPENAI_BASE_URL``/``OPENAI_API_KEY``; model from
    ``--judge-model`` or ``QPLUG_JUDGE_MODEL``)."""
    try:
        from openai import OpenAI
    except ImportError as exc:
        raise SystemExit("--judge openai needs the openai package: pip install openai") from exc
    name = model or os.environ.get("QPLUG_JUDGE_MODEL")
    if not name:
        raise SystemExit("--judge openai: give --judge-model or set QPLUG_JUDGE_MODEL")
    client = OpenAI()

    def judge(description: str, reference: str) -> dict[str, float]:
        reply = client.chat.completions.create(
            model=name, temperature=0,
            messages=[{"role": "user", "content": JUDGE_PROMPT.format(reference=reference, description=description)}])
        return parse_judgement(reply.choices[0].message.content or "")

    return judge


def parse_judgement(text: str) -> dict[str, float]:
    """The three 0-2 scores from a judge's reply (the first JSON object in it); missing ones are dropped."""
    start, end = text.find("{"), text.rfind("}")
    try:
        data = json.loads(text[start:end + 1]) if start >= 0 else {}
    except json.JSONDecodeError:
        data = {}
    out = {}
    for key in ("completeness", "precision", "relevance"):
        try:
            out[key] = min(2.0, max(0.0, float(data[key])))
        except (KeyError, TypeError, ValueError):
            continue
    return out


def evaluate_descriptions(backend: Any, items: Sequence[DescribeItem], image_root: Path | None,
                          batch_size: int = 4, max_new_tokens: int = 96,
                          judge: Callable[[str, str], dict[str, float]] | None = None,
                          rows: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Generate descriptions and check them (offline, plus the judge when given)."""
    from qplug_vlm.backend import GenerationSettings
    from qplug_vlm.describer import Describer

    describer = Describer(backend, settings=GenerationSettings(max_new_tokens=max_new_tokens))
    sums: dict[str, list[float]] = defaultdict(list)
    for batch in _batches(items, batch_size):
        frames = [_frame(_open_image(image_root, item.image), i) for i, item in enumerate(batch)]
        for item, text in zip(batch, describer.describe(frames)):
            check = offline_check(text, item)
            if judge is not None and item.reference:
                check["judge"] = judge(text, item.reference)
                for key, value in check["judge"].items():
                    sums[f"judge_{key}"].append(value)
            for key in ("mention_recall", "attribute_agreement", "level_distance", "keyword_recall"):
                if check[key] is not None:
                    sums[key].append(float(check[key]))
            if check["level_match"] is not None:
                sums["level_match"].append(float(check["level_match"]))
            if rows is not None:
                rows.append({"task": "describe", "image": item.image, "description": text, **check})
    report: dict[str, Any] = {"n": len(items), "mode": "judge" if judge else "offline"}
    for key in ("mention_recall", "attribute_agreement", "level_match", "level_distance", "keyword_recall",
                "judge_completeness", "judge_precision", "judge_relevance"):
        values = sums.get(key)
        report[key] = sum(values) / len(values) if values else None
    return report


# ---------------------------------------------------------------------------------------------
# Report


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def markdown(results: dict[str, Any]) -> str:
    """The results as Markdown tables."""
    lines = [f"# Evaluation of `{results['model']}`" + (f" + `{results['adapter']}`" if results.get("adapter") else ""),
             ""]
    mcq = results.get("mcq")
    if mcq:
        lines += ["## A1: multiple-choice questions (letter logits)", "", "| group | accuracy | n |", "|---|---|---|",
                  f"| overall | {_fmt(mcq['overall']['accuracy'])} | {mcq['overall']['n']} |"]
        for kind in ("by_type", "by_concern"):
            for name, value in mcq[kind].items():
                lines.append(f"| {kind[3:]}: {name} | {_fmt(value['accuracy'])} | {value['n']} |")
        if mcq.get("skipped"):
            lines.append(f"\n{mcq['skipped']} questions skipped (no image, fewer than two candidates, or the answer "
                         "is not a candidate).")
        lines.append("")
    mos = results.get("mos")
    if mos:
        lines += [f"## A3: `{mos['scorer']}` scores against MOS", "", "| n | SRCC | PLCC (logistic) | PLCC (raw) |",
                  "|---|---|---|---|", f"| {mos['n']} | {_fmt(mos['srcc'])} | {_fmt(mos['plcc'])} | "
                  f"{_fmt(mos['plcc_raw'])} |", ""]
    describe = results.get("describe")
    if describe:
        keys = [k for k in ("mention_recall", "attribute_agreement", "level_match", "level_distance",
                            "keyword_recall", "judge_completeness", "judge_precision", "judge_relevance")
                if describe.get(k) is not None]
        lines += [f"## Descriptions ({describe['mode']})", "", "| metric | value |", "|---|---|"]
        lines += [f"| n | {describe['n']} |"] + [f"| {k} | {_fmt(describe[k])} |" for k in keys] + [""]
    lines.append(f"_{results['seconds']:.1f} s on {results['device']}_")
    return "\n".join(lines) + "\n"


def evaluate(model: str, adapter: str | None = None, *, merge_adapter: bool = False, device: str | None = None,
             dtype: str | None = None, mcq: Path | None = None, mcq_images: Path | None = None,
             mos: Path | None = None, mos_images: Path | None = None, describe: Path | None = None,
             describe_images: Path | None = None, scorer: str = "qalign", batch_size: int = 8,
             limit: int | None = None, judge: Callable[[str, str], dict[str, float]] | None = None,
             max_new_tokens: int = 96, out: Path | None = None) -> dict[str, Any]:
    """Run the requested evaluations; write ``eval.json``, ``eval.md`` and ``eval_items.jsonl`` into ``out``."""
    from qplug_vlm.backend import load_backend

    began = time.perf_counter()
    backend = load_backend(model=model, adapter=adapter, merge_adapter=merge_adapter, device=device, dtype=dtype)
    results: dict[str, Any] = {"model": str(model), "adapter": str(adapter) if adapter else None,
                               "device": str(backend.device), "dtype": str(backend.dtype).replace("torch.", "")}
    items: list[dict[str, Any]] = []
    if mcq is not None:
        questions, skipped = read_questions(Path(mcq))
        questions = questions[:limit] if limit else questions
        results["mcq"] = evaluate_mcq(backend, questions, mcq_images or Path(mcq).parent, batch_size, items)
        results["mcq"]["skipped"] = skipped
    if mos is not None:
        rows = read_mos(Path(mos))
        rows = rows[:limit] if limit else rows
        results["mos"] = evaluate_mos(backend, rows, mos_images or Path(mos).parent, scorer, batch_size, items)
    if describe is not None:
        entries = read_describe(Path(describe))
        entries = entries[:limit] if limit else entries
        results["describe"] = evaluate_descriptions(backend, entries, describe_images or Path(describe).parent,
                                                    max(1, batch_size // 2), max_new_tokens, judge, items)
    results["seconds"] = time.perf_counter() - began
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "eval.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
        (out / "eval.md").write_text(markdown(results), encoding="utf-8")
        with open(out / "eval_items.jsonl", "w", encoding="utf-8") as fh:
            for row in items:
                fh.write(json.dumps(row, default=float) + "\n")
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qplug_training.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="checkpoint directory (base or merged/full export)")
    parser.add_argument("--adapter", help="peft adapter directory applied on top of --model")
    parser.add_argument("--merge", action="store_true", help="merge the adapter into the weights first")
    parser.add_argument("--device", help="auto, cpu, cuda, cuda:N, mps (default: auto)")
    parser.add_argument("--dtype", help="auto, bfloat16, float16, float32 (default: auto)")
    parser.add_argument("--mcq", type=Path, help="Q-Bench A1-style JSON (img_path, question, candidates, correct_ans)")
    parser.add_argument("--mcq-images", type=Path, help="image folder of --mcq (default: the file's folder)")
    parser.add_argument("--mos", type=Path, help="CSV with image,mos columns (or Q-Bench A3 JSON: img_path, gt_score)")
    parser.add_argument("--mos-images", type=Path, help="image folder of --mos (default: the file's folder)")
    parser.add_argument("--scorer", default="qalign", help="level scorer for --mos: qalign or qbench")
    parser.add_argument("--describe", type=Path, help="JSON of {image, reference | expected | keywords}")
    parser.add_argument("--describe-images", type=Path, help="image folder of --describe")
    parser.add_argument("--judge", choices=("offline", "openai"), default="offline",
                        help="description check: offline keyword/attribute agreement, or an OpenAI-compatible judge")
    parser.add_argument("--judge-model", help="judge model name (or env QPLUG_JUDGE_MODEL)")
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--limit", type=int, help="evaluate only the first N items of each file")
    parser.add_argument("--out", type=Path, default=Path("eval"), help="output folder (default: ./eval)")
    args = parser.parse_args(argv)
    if not (args.mcq or args.mos or args.describe):
        parser.error("give at least one of --mcq, --mos, --describe")
    judge = openai_judge(args.judge_model) if args.judge == "openai" else None
    from qplug.errors import UsageError

    try:
        results = evaluate(args.model, args.adapter, merge_adapter=args.merge, device=args.device, dtype=args.dtype,
                           mcq=args.mcq, mcq_images=args.mcq_images, mos=args.mos, mos_images=args.mos_images,
                           describe=args.describe, describe_images=args.describe_images, scorer=args.scorer,
                           batch_size=args.batch_size, limit=args.limit, judge=judge,
                           max_new_tokens=args.max_new_tokens, out=args.out)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(markdown(results))
    print(f"written: {args.out / 'eval.json'}, {args.out / 'eval.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Fit each kind's yes/no threshold (:mod:`qplug_vlm.thresholds`) on labelled images of photos the model never saw.

For a sample of a corpus's images of one split (never a reserved package; never a photo of the
evaluation sets named by ``--leave-out``) the model is asked every kind's trained yes/no wordings;
its pooled P(defect) per kind is kept
beside the image's facts: a kind there at least "moderate" wants "yes", a kind cleanly absent (not
applied, not confusable with one that is) wants "no", anything between is left out, as the
paraphrase figures leave it out. Per kind, the threshold that gets the most of both halves right
(the mean of the two accuracies, as the paraphrase figures count them) is chosen on a grid even in
logit, the one nearest 0.5 on a tie; a kind with fewer than ``--min-each`` images on either side
keeps 0.5. A photo-grouped five-fold figure says how well each fitted threshold carries to photos
it was not fitted on.

    python -m qplug_training.yes_no_thresholds --model plugins/qplug_vlm/default_model \\
        --corpus /work/corpus-wide --split validation --leave-out /work/corpus --write

Which images: photos the model was not trained on and that no evaluation uses, such as the wide
corpus's validation photos that are not the evaluation set's (25 photos: GCompris, OpenCV,
Palapeli; 1,528 images). qplug's default model ships without thresholds: fitted there, or on its
training photos, they moved its held-out yes/no by +0.1 and +0.4 points (its MODEL_CARD.md).

The answers go to ``--signals`` (JSON lines, one image each, after a header naming the model's
weights) as they come, so a killed run goes on where it stopped; a file from other weights is refused.
``--write`` puts the thresholds into the model's ``question_reader.json`` (replaced whole, through a
temporary file); without it they are only printed. About 10 min for 1,500 images on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .corpus.facts import CLEARLY_THERE, clearly_absent
from .corpus.photos import ReservedSourceError, check_not_reserved
from .evaluation.common import load_rgb, log

#: Thresholds tried: P(defect) from 0.0025 to 0.9975, evenly spaced in logit.
GRID: np.ndarray = 1.0 / (1.0 + np.exp(-np.linspace(-6.0, 6.0, 121)))
MIN_EACH = 20
FOLDS = 5


def balanced(said: np.ndarray, there: np.ndarray) -> float:
    """Mean of the share of "there" images answered yes and of "absent" ones answered no (over the
    halves that have images; 0 with none)."""
    halves = [(said[there == side] == side).mean() for side in (True, False) if (there == side).any()]
    return float(np.mean(halves)) if halves else 0.0


def balanced_accuracy(p: np.ndarray, there: np.ndarray, threshold: float) -> float:
    """:func:`balanced` of the answers "yes when P(defect) > threshold"."""
    return balanced(p > threshold, there)


def fit_threshold(p: np.ndarray, there: np.ndarray) -> float:
    """The grid threshold with the best balanced accuracy; the nearest to 0.5 (in logit) among equals."""
    scores = np.array([balanced_accuracy(p, there, t) for t in GRID])
    best = np.flatnonzero(scores >= scores.max() - 1e-12)
    return float(GRID[best[np.argmin(np.abs(np.log(GRID[best] / (1 - GRID[best]))))]])


def grouped_figure(p: np.ndarray, there: np.ndarray, photos: np.ndarray, folds: int = FOLDS) -> float:
    """Balanced accuracy when each photo's answers are judged by a threshold fitted on other photos."""
    names = sorted(set(photos.tolist()))
    fold_of = {name: i % folds for i, name in enumerate(random.Random(0).sample(names, len(names)))}
    fold = np.array([fold_of[name] for name in photos])
    said = np.zeros(len(p), bool)
    for f in range(folds):
        train, held = fold != f, fold == f
        if not held.any():
            continue
        usable = there[train].any() and (~there[train]).any()
        t = fit_threshold(p[train], there[train]) if usable else 0.5
        said[held] = p[held] > t
    return balanced(said, there)


def labels(record: dict[str, Any], kinds: Sequence[str]) -> dict[str, bool]:
    """kind -> True (wants "yes"), False (wants "no"); kinds neither clearly there nor absent are left out."""
    facts = record["facts"] | {"distortions": record["distortions"]}
    absent = set(clearly_absent(facts))
    out = {k: True for k in kinds if facts["kinds"].get(k) in CLEARLY_THERE}
    out.update({k: False for k in kinds if k in absent})
    return out


def evaluation_photos(corpus: Path) -> set[str]:
    """The photos of ``corpus``'s evaluation set (``CORPUS/eval/metadata.jsonl``)."""
    path = corpus / "eval" / "metadata.jsonl"
    if not path.is_file():
        raise ValueError(f"{path}: not found, so no evaluation photos to leave out")
    return {json.loads(line)["photo"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}


def sample_records(corpus: Path, n: int, seed: int, split: str = "train",
                   left_out: set[str] = frozenset()) -> list[dict[str, Any]]:
    """Up to ``n`` records of ``split``, none of a photo in ``left_out``, drawn with ``seed``."""
    lines = (corpus / "metadata.jsonl").read_text(encoding="utf-8").splitlines()
    records = [r for r in (json.loads(line) for line in lines if line.strip())
               if r.get("split") == split and r.get("photo") not in left_out]
    for r in records:
        check_not_reserved(r.get("photo", ""))
        check_not_reserved(r.get("image", ""))
    random.Random(seed).shuffle(records)
    return records[:n]


def answers_digest(model: Path, kinds_wordings: dict[str, Any]) -> str:
    """What the answers depend on: the weights (the model's and the reader's) and the trained wordings."""
    digest = hashlib.sha256(json.dumps(kinds_wordings, sort_keys=True).encode())
    for shard in sorted(model.glob("*.safetensors")):
        digest.update(shard.name.encode())
        with shard.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def read_signals(path: Path, digest: str) -> dict[str, dict[str, float]]:
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()] if path.exists() else []
    if not lines:
        return {}
    if json.loads(lines[0]).get("weights") != digest:
        raise ValueError(f"{path}: answers of other weights or wordings; remove it or name another --signals")
    done: dict[str, dict[str, float]] = {}
    for line in lines[1:]:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            break  # the last line of a killed run may be cut short
        done[row["id"]] = row["p_defect"]
    return done


def collect(model: Path, corpus: Path, records: list[dict[str, Any]], wordings: dict[str, Any], signals: Path,
            batch: int) -> dict[str, dict[str, float]]:
    """Every record's P(defect) per kind, from ``signals`` where it holds them, else from the model."""
    from qplug.types import Frame
    from qplug_vlm import asker as asker_module
    from qplug_vlm.images import model_image

    kinds = list(wordings)
    digest = answers_digest(model, wordings)
    done = read_signals(signals, digest)
    todo = [r for r in records if r["id"] not in done]
    if not todo:
        return done
    asker = asker_module.build(model=str(model), device="cpu")
    signals.parent.mkdir(parents=True, exist_ok=True)
    # Written again whole first: a killed run's last line may have been cut short.
    with signals.open("w", encoding="utf-8") as out:
        out.write(json.dumps({"weights": digest, "kinds": kinds}) + "\n")
        out.writelines(json.dumps({"id": key, "p_defect": p}) + "\n" for key, p in done.items())
        for start in range(0, len(todo), batch):
            chunk, images = [], []
            for r in todo[start:start + batch]:
                try:
                    frame = Frame.from_rgb(load_rgb(corpus / r["image"]), source_id=r["id"], index=0)
                except (OSError, ValueError) as exc:
                    log(f"skipped {corpus / r['image']}: {exc}")
                    continue
                chunk.append(r)
                images.append(model_image(frame, asker.window, asker.backend.native_crop, asker.image_max_side,
                                          asker.pad_fill))
            for r, p in zip(chunk, asker.defect_probabilities(images, kinds) if images else []):
                done[r["id"]] = p
                out.write(json.dumps({"id": r["id"], "p_defect": p}) + "\n")
            out.flush()
            log(f"yes/no answers: {len(done)}/{len(records)}")
    return done


def fit(records: list[dict[str, Any]], answers: dict[str, dict[str, float]], kinds: Sequence[str],
        min_each: int = MIN_EACH) -> dict[str, dict[str, Any]]:
    """Per kind: the threshold (None when too few images on a side) and what it gets right."""
    report: dict[str, dict[str, Any]] = {}
    for kind in kinds:
        rows = [(answers[r["id"]][kind], wanted, r["photo"]) for r in records if r["id"] in answers
                for k, wanted in labels(r, kinds).items() if k == kind]
        p = np.array([row[0] for row in rows], float)
        there = np.array([row[1] for row in rows], bool)
        photos = np.array([row[2] for row in rows])
        entry: dict[str, Any] = {"there": int(there.sum()), "absent": int((~there).sum()), "threshold": None}
        if entry["there"] >= min_each and entry["absent"] >= min_each:
            t = fit_threshold(p, there)
            entry.update(threshold=round(t, 4), at_half=balanced_accuracy(p, there, 0.5),
                         fitted=balanced_accuracy(p, there, t), other_photos=grouped_figure(p, there, photos))
        report[kind] = entry
    return report


def write_thresholds(model: Path, thresholds: dict[str, float]) -> Path:
    from qplug_vlm import reader

    path = model / reader.CONFIG_FILE
    data = json.loads(path.read_text(encoding="utf-8"))
    data["yes_no_thresholds"] = thresholds
    reader.ReaderConfig.from_dict(data)  # refuse to write what the asker would refuse to load
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, required=True, help="model directory with a question reader")
    ap.add_argument("--corpus", type=Path, required=True, help="a corpus built by qplug_training.corpus.build")
    ap.add_argument("--split", choices=("train", "validation"), default="train",
                    help="which of the corpus's images to ask (default train; see above)")
    ap.add_argument("--leave-out", type=Path, action="append", default=[], metavar="CORPUS",
                    help="never use a photo of this corpus's evaluation set (repeatable)")
    ap.add_argument("--images", type=int, default=2000, help="images to ask, at most (a seeded sample)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--min-each", type=int, default=MIN_EACH, help="least images on each side to fit a kind")
    ap.add_argument("--signals", type=Path, default=None,
                    help="where the answers are kept (default: CORPUS/cache/yes_no_signals.jsonl)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--write", action="store_true", help="write the thresholds into the model's question_reader.json")
    args = ap.parse_args(argv)

    import torch
    from qplug_vlm import reader

    torch.set_num_threads(args.threads)
    config_path = args.model / reader.CONFIG_FILE
    if not config_path.is_file():
        print(f"{config_path}: no question reader here, so no trained yes/no wordings to fit", file=sys.stderr)
        return 2
    if not (args.corpus / "metadata.jsonl").is_file():
        print(f"{args.corpus / 'metadata.jsonl'}: not found (build a corpus first)", file=sys.stderr)
        return 2
    wordings = json.loads(config_path.read_text(encoding="utf-8"))["yes_no"]
    kinds = list(wordings)
    try:
        left_out = set().union(*(evaluation_photos(c) for c in args.leave_out))
    except (ValueError, KeyError) as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        records = sample_records(args.corpus, args.images, args.seed, args.split, left_out)
    except (ReservedSourceError, ValueError, KeyError) as exc:
        print(f"{args.corpus / 'metadata.jsonl'}: {exc}", file=sys.stderr)
        return 2
    if not records:
        print(f"{args.corpus}: no {args.split} images to ask", file=sys.stderr)
        return 2
    signals = args.signals or args.corpus / "cache" / "yes_no_signals.jsonl"
    try:
        answers = collect(args.model, args.corpus, records, wordings, signals, args.batch)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    report = fit(records, answers, kinds, args.min_each)
    thresholds = {k: e["threshold"] for k, e in report.items() if e["threshold"] is not None}
    print(json.dumps({"images": len(answers), "kinds": report}, indent=1))
    if args.write:
        log(f"wrote {len(thresholds)} thresholds to {write_thresholds(args.model, thresholds)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

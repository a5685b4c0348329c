"""Build the low-level quality corpus: distorted crops of real photos with Q-Instruct records.

``python -m qplug_training.corpus.build --photos DIR --out DIR [--crops-per-photo N]
[--variants-per-crop N] [--seed S] [--workers 2] [--eval-set]``

``--photos`` is a folder with a ``manifest.json`` (``python -m qplug_training.corpus.photos``). Writes,
under ``--out``:

- ``images/{train,val}/<photo>/<id>.png``: lossless, so distortions are never re-compressed;
- ``metadata.jsonl``: one record per image (photo, split, crop box and scale, distortions with
  type/severity/params, measures, pseudo-MOS, level, facts), appended and flushed as images land;
- ``feedback.jsonl``: the Q-Pathway-style feedback of each image (qplug_training.data's ``Feedback``);
- ``train.json`` / ``val.json``: LLaVA-format Q-Instruct records, image paths relative to ``--out``;
- ``summary.json``: counts per split/type/level, pseudo-MOS per type by severity, record stats;
- with ``--eval-set``: ``eval/`` (see :mod:`qplug_training.corpus.evalset`).

Resumable: items whose image and both JSONL lines exist are skipped (a crash mid-write loses at
most the lines of the image being written); a re-run with nothing to do writes nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

from ..data import Feedback, load_feedback, load_records, write_records

from .distortions import OPT_IN, default_types
from .evalset import build_eval
from .generate import Settings, Task
from .pipeline import (Store, crops_for, digest, execute, format_mos_table, image_summary, log, make_tasks, open_inputs,
                       usable_photos)
from .questions import QuestionWriter

PROG = "python -m qplug_training.corpus.build"
EXIT_OK, EXIT_ISSUES, EXIT_ERROR = 0, 1, 2


# --------------------------------------------------------------------------- records & summary


def _feedback_of(store: Store, ids: list[str]) -> list[Feedback]:
    fbs, report = load_feedback([store.fb_path])
    by_id = {f.id: f for f in fbs}
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise RuntimeError(f"{len(missing)} feedback lines unreadable, e.g. {missing[:3]}")
    return [by_id[i] for i in ids]


def build_records(store: Store, out: Path, settings: Settings) -> dict[str, Any]:
    """train.json / val.json from metadata + feedback, asked as ``settings``' question settings say;
    returns record statistics."""
    stats: dict[str, Any] = {}
    for split, name in (("train", "train.json"), ("validation", "val.json")):
        ids = sorted(i for i, m in store.meta.items() if m["split"] == split)
        writer = QuestionWriter(seed=settings.seed, paraphrase_share=settings.paraphrase_share,
                                composed_wordings=settings.composed_wordings,
                                yes_no_per_image=3 if settings.composed_wordings else 2, extra_mcq=settings.extra_mcq,
                                broad_wordings=settings.broad_wordings, describe_share=settings.describe_share,
                                negated_wordings=settings.negated_wordings, soft_levels=settings.soft_levels,
                                polarity_twins=settings.polarity_twins)
        records = []
        for fb in _feedback_of(store, ids):
            meta = store.meta[fb.id]
            records.extend(writer.records(fb, meta["facts"] | {"distortions": meta["distortions"],
                                                                 "pseudo_mos": meta["pseudo_mos"]}))
        records = writer.finish(records)
        n = write_records(records, out / name)
        # Re-read through qplug_training.data's validator: what the trainer will see.
        valid, report = load_records(out / name, image_root=out)
        tasks = Counter(r.task or "" for r in valid)
        answers = Counter((r.meta.get("kind"), r.meta.get("answer")) for r in valid
                          if r.task == "yes_no" and r.meta.get("converter") == "corpus")
        stats[split] = {
            "records": n,
            "valid": len(valid),
            "skipped": report.total_skipped,
            "by_task": dict(sorted(tasks.items())),
            "yes_no_overall": dict(Counter(_yes_no(r) for r in valid if r.task == "yes_no")),
            "yes_no_by_kind_after_balance": {k: {"yes": answers[(k, "yes")], "no": answers[(k, "no")]}
                                             for k in sorted({k for k, _ in answers})},
            **writer.stats(),
        }
        log(f"{name}: {n} records from {len(ids)} images, {report.total_skipped} invalid; tasks {dict(tasks)}")
    return stats


def _yes_no(record) -> str:
    from ..data.converters import yes_no_answer

    return yes_no_answer(record) or "?"


#: Settings that change only the questions, not the images: corpora differing in these alone can
#: share their images (``--images-from``).
QUESTION_SETTINGS = ("paraphrase_share", "composed_wordings", "extra_mcq", "broad_wordings", "describe_share",
                     "negated_wordings", "soft_levels", "polarity_twins")


def adopt_images(source: Path, store: Store, settings: Settings) -> int:
    """Link ``source``'s images (and their metadata and feedback) into ``store``; returns how many.

    Refused (ValueError) unless ``source`` was built with the same settings but for
    :data:`QUESTION_SETTINGS`, so the images are exactly those this build would make.
    """
    theirs = json.loads((source / "settings.json").read_text(encoding="utf-8"))
    ours = settings.to_dict()
    differ = sorted(k for k in (set(theirs) | set(ours)) - set(QUESTION_SETTINGS) if theirs.get(k) != ours.get(k))
    if differ:
        raise ValueError(f"it was built with other image settings ({', '.join(differ)})")
    other = Store(source, source)
    try:
        items = []
        for iid, meta in other.meta.items():
            if iid in store.meta:
                continue
            target = store.root / meta["image"]
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                try:
                    os.link(source / meta["image"], target)
                except OSError:  # another file system, or no hard links there
                    shutil.copy2(source / meta["image"], target)
            items.append((meta, other.feedback[iid]))
        return store.add(items)
    finally:
        other.close()


# --------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    d = Settings()
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--photos", required=True, type=Path,
                   help="folder with manifest.json (qplug_training.corpus.photos)")
    p.add_argument("--out", required=True, type=Path, help="corpus folder (created; re-runs resume)")
    p.add_argument("--crops-per-photo", type=int, default=d.crops_per_photo, help="crops per training photo")
    p.add_argument("--val-crops-per-photo", type=int, default=d.val_crops_per_photo, help="crops per validation photo")
    p.add_argument("--variants-per-crop", type=int, default=d.variants_per_crop)
    p.add_argument("--size", type=int, default=d.size, help="crop size in pixels (the model input)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--types", help=f"comma list of distortions (default: {','.join(default_types())}; opt-in: "
                                   f"{','.join(sorted(OPT_IN))})")
    p.add_argument("--pair-share", type=float, default=d.pair_share)
    p.add_argument("--pristine-share", type=float, default=d.pristine_share)
    p.add_argument("--grain-share", type=float, default=d.grain_share,
                   help="share of training crops given film grain as content (grainy = pristine reference)")
    p.add_argument("--strong-blur-share", type=float, default=d.strong_blur_share,
                   help="share of distorted variants that are one strong blur (severity 0.55..1)")
    p.add_argument("--paraphrase-share", type=float, default=d.paraphrase_share,
                   help="share of questions asked in other words (qplug_training.corpus.phrasing, or .composed)")
    p.add_argument("--blur-ceiling", action="store_true",
                   help="cap the pseudo-MOS of blurred images of detailed crops by the blur's strength")
    p.add_argument("--plain-share", type=float, default=d.plain_share,
                   help="share of training crops taken where they fall (no detail preference)")
    p.add_argument("--composed-wordings", action="store_true",
                   help="draw other wordings from qplug_training.corpus.composed (templates x parts) "
                        "and ask three yes/no questions per image")
    p.add_argument("--extra-mcq", type=int, default=d.extra_mcq, metavar="N",
                   help="N more composed main-problem multiple-choice questions per image (with --composed-wordings)")
    p.add_argument("--broad-wordings", action="store_true",
                   help="with --composed-wordings, the broad lexicon as well (more defect words, statements, "
                        "description requests)")
    p.add_argument("--negated-wordings", action="store_true",
                   help="with --broad-wordings, negated wordings too and half the yes/no questions asked the "
                        "other way round")
    p.add_argument("--polarity-twins", type=float, default=d.polarity_twins, metavar="SHARE",
                   help="with --composed-wordings, this share of yes/no questions followed in the same record by "
                        "the opposite question with the same word (\"blurry?\" / \"free of blur?\")")
    p.add_argument("--describe-share", type=float, default=d.describe_share,
                   help="share of images given a description record")
    p.add_argument("--soft-levels", type=float, default=d.soft_levels, metavar="SIGMA",
                   help="draw each image's Q-Align level from a normal spread of ratings around its pseudo-MOS "
                        "(standard deviation SIGMA, MOS units) instead of writing the level it falls in")
    p.add_argument("--images-from", type=Path, metavar="CORPUS",
                   help="take the images of another corpus whose settings differ only in its questions "
                        "(hard links where possible), so that only the records are written")
    p.add_argument("--eval-set", action="store_true", help="also write eval/: every type at 5 severities per val crop")
    p.add_argument("--eval-crops-per-photo", type=int, default=d.eval_crops_per_photo)
    p.add_argument("--photo-limit", type=int, help="only the first N photos of each split (quick trials)")
    p.add_argument("--refresh-records", action="store_true",
                   help="rewrite train.json / val.json (and eval questions) even when up to date")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    t0 = time.time()
    if not 0.0 <= args.soft_levels <= 2.0:
        print(f"{PROG}: --soft-levels is a standard deviation between 0 and 2 (MOS units), not {args.soft_levels}",
              file=sys.stderr)
        return EXIT_ERROR
    opened = open_inputs(args.photos, args.types, PROG)
    if opened is None:
        return EXIT_ERROR
    photos, root, types = opened
    if args.extra_mcq < 0 or (args.extra_mcq and not args.composed_wordings):
        print(f"{PROG}: --extra-mcq takes a count >= 0 and needs --composed-wordings", file=sys.stderr)
        return EXIT_ERROR
    if args.broad_wordings and not args.composed_wordings:
        print(f"{PROG}: --broad-wordings needs --composed-wordings", file=sys.stderr)
        return EXIT_ERROR
    if args.negated_wordings and not args.broad_wordings:
        print(f"{PROG}: --negated-wordings needs --broad-wordings", file=sys.stderr)
        return EXIT_ERROR
    if not 0.0 <= args.polarity_twins <= 1.0 or (args.polarity_twins and not args.composed_wordings):
        print(f"{PROG}: --polarity-twins is a share between 0 and 1 and needs --composed-wordings, "
              f"not {args.polarity_twins}", file=sys.stderr)
        return EXIT_ERROR
    if not 0.0 <= args.describe_share <= 1.0:
        print(f"{PROG}: --describe-share is a share between 0 and 1, not {args.describe_share}", file=sys.stderr)
        return EXIT_ERROR
    settings = Settings(size=args.size, crops_per_photo=args.crops_per_photo,
                        val_crops_per_photo=args.val_crops_per_photo, variants_per_crop=args.variants_per_crop,
                        pristine_share=args.pristine_share, pair_share=args.pair_share, seed=args.seed,
                        types=tuple(types), eval_crops_per_photo=args.eval_crops_per_photo,
                        grain_share=args.grain_share, strong_blur_share=args.strong_blur_share,
                        paraphrase_share=args.paraphrase_share, blur_ceiling=args.blur_ceiling,
                        plain_share=args.plain_share, composed_wordings=args.composed_wordings,
                        extra_mcq=args.extra_mcq, broad_wordings=args.broad_wordings,
                        describe_share=args.describe_share, negated_wordings=args.negated_wordings,
                        soft_levels=args.soft_levels, polarity_twins=args.polarity_twins)
    small = [p for p in photos if min(p.width, p.height) * p.max_scale < settings.size]
    for p in small:
        log(f"skip {p.id}: {p.width}x{p.height} at {p.max_scale:g}x is smaller than a {settings.size}px crop")
    photos, damaged = usable_photos([p for p in photos if p not in small], root)
    if not photos:
        print(f"{PROG}: no photo in {args.photos} can be built from", file=sys.stderr)
        return EXIT_ERROR
    if args.photo_limit:
        photos = ([p for p in photos if p.split == "train"][:args.photo_limit]
                  + [p for p in photos if p.split == "validation"][:args.photo_limit])
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    settings_path = out / "settings.json"
    if settings_path.is_file():
        old = json.loads(settings_path.read_text(encoding="utf-8"))
        if old != settings.to_dict():
            changed = sorted(k for k in set(old) | set(settings.to_dict()) if old.get(k) != settings.to_dict().get(k))
            print(f"{PROG}: {out} was built with other settings ({', '.join(changed)}); "
                  "use a new --out folder", file=sys.stderr)
            return EXIT_ERROR
    else:
        settings_path.write_text(json.dumps(settings.to_dict(), indent=1) + "\n", encoding="utf-8")

    n_train = sum(1 for p in photos if p.split == "train")
    n_val = sum(1 for p in photos if p.split == "validation")
    expected = settings.variants_per_crop * sum(
        crops_for(p, settings.crops_per_photo if p.split == "train" else settings.val_crops_per_photo, settings.size)
        for p in photos)
    log(f"{len(photos)} photos ({n_train} train, {n_val} validation), {len(types)} distortion types, "
        f"{expected} images planned, {args.workers} worker(s)")

    store = Store(out, out)
    if args.images_from is not None:
        try:
            adopted = adopt_images(args.images_from, store, settings)
        except (OSError, ValueError) as exc:
            store.close()
            print(f"{PROG}: cannot take the images of {args.images_from}: {exc}", file=sys.stderr)
            return EXIT_ERROR
        log(f"{adopted} images taken from {args.images_from}")
    tasks = make_tasks(photos, root, settings, store.done, eval_set=False)
    tasks = [t for t in tasks if not _task_done(t, settings)]
    t_img = time.time()
    made = execute(tasks, settings, out, store, args.workers, "images", expected)
    t_img = time.time() - t_img
    store.close()

    summary_path = out / "summary.json"
    old_summary = json.loads(summary_path.read_text(encoding="utf-8")) if summary_path.is_file() else {}
    dg = digest(store.meta, settings)
    outputs_there = (out / "train.json").is_file() and (out / "val.json").is_file()
    summary: dict[str, Any] = dict(old_summary)
    if made or not outputs_there or old_summary.get("digest") != dg or args.refresh_records:
        t_rec = time.time()
        record_stats = build_records(store, out, settings)
        summary.update({
            "settings": settings.to_dict(),
            "digest": dg,
            "photos": {"train": n_train, "validation": n_val,
                       "validation_sources": sorted({p.source for p in photos if p.split == "validation"})},
            **image_summary(store.meta.values()),
            "records": record_stats,
            # Keep the timing of the run that made the images; a records-only refresh has none.
            "seconds": ({"images": round(t_img, 1), "images_made": made} if made
                        else old_summary.get("seconds", {})) | {"records": round(time.time() - t_rec, 1)},
        })
        log("pseudo-MOS by type and severity level (single distortions):\n"
            + format_mos_table(summary["pseudo_mos_by_type_and_severity_level"]))
    else:
        log("train.json / val.json are up to date")

    if args.eval_set:
        eval_summary = build_eval(photos, root, out, settings, args.workers,
                                  {} if args.refresh_records else old_summary.get("eval", {}))
        if eval_summary is not None:
            summary["eval"] = eval_summary
    summary["photos_skipped"] = damaged  # this run's: a photo mended since is built again
    if summary != old_summary:
        tmp = summary_path.with_suffix(".json.part")
        tmp.write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, summary_path)
    log(f"done in {time.time() - t0:.0f}s: {len(store.meta)} images in {out}")
    return EXIT_OK


def _task_done(task: Task, settings: Settings) -> bool:
    """True when every item of the task is already there (then the photo is not even loaded)."""
    from .generate import item_id, photo_key, plan_variants

    key = photo_key(task.photo)
    for c in task.crops:
        for v in range(len(plan_variants(settings, key, c))):
            if item_id(task.photo["id"], c, v) not in task.done:
                return False
    return True


if __name__ == "__main__":
    sys.exit(main())

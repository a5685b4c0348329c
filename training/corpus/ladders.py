"""Severity ladders of training photos: the ranking signal between versions of one picture.

``python -m qplug_training.corpus.ladders --photos DIR --out DIR [--crops-per-photo 1] [--seed 4]
[--types ...] [--workers 2]``

For each crop of a *training* photo: the pristine crop and every distortion type at the evaluation
set's five fixed severities, the random parts (blur angle, noise field, cast hue) held fixed within a
(crop, type) group, so that severity is the only thing that changes along a ladder. It is the
evaluation set's construction (:mod:`.evalset`) over the other split: validation photos never enter
(the manifest's split decides, not the seed), and the reserved photo packages are refused as by the
corpus builder. Labels are the corpus's own (pseudo-MOS with the blur ceiling, as the v2+ corpora).

Training reads these ladders (``[ranking]`` in a recipe, :mod:`qplug_training.ranking`): within a
ladder, a weaker version must score above a stronger one, by as much as their pseudo-MOS say.
Written under ``--out``: ``ladders/images/<photo>/<id>.png``, ``metadata.jsonl`` (the corpus's
metadata plus ``eval``: group, crop group, type, severity level) and ``feedback.jsonl``. Resumable as
the corpus is: items whose image and both lines exist are skipped.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Sequence

from .distortions import OPT_IN, default_types
from .generate import Settings, Task, eval_id
from .photos import resolve
from .pipeline import Store, execute, format_mos_table, image_summary, log, open_inputs, usable_photos

PROG = "python -m qplug_training.corpus.ladders"
EXIT_OK, EXIT_ERROR = 0, 2
#: Images per (crop, type) ladder: pristine is shared by a crop's ladders.
SEVERITY_LEVELS = 5


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Severity ladders (every type at five severities) of crops "
                                                       "of the training photos, for the ranking objective.")
    p.add_argument("--photos", type=Path, required=True, help="a photo folder with manifest.json (corpus.photos)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--crops-per-photo", type=int, default=1)
    p.add_argument("--seed", type=int, default=4, help="crop windows and random parts (other seeds, other crops)")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--types", help=f"comma list of distortions (default: {','.join(default_types())}; opt-in: "
                                   f"{','.join(sorted(OPT_IN))})")
    p.add_argument("--no-blur-ceiling", action="store_true",
                   help="label blur by the measures alone (the v0.4/v1 corpora's labels)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--photo-limit", type=int, help="only the first N training photos (quick trials)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    t0 = time.time()
    if args.crops_per_photo < 1:
        print(f"{PROG}: --crops-per-photo must be >= 1", file=sys.stderr)
        return EXIT_ERROR
    opened = open_inputs(args.photos, args.types, PROG)
    if opened is None:
        return EXIT_ERROR
    photos, root, types = opened
    settings = Settings(size=args.size, seed=args.seed, types=tuple(types), eval_crops_per_photo=args.crops_per_photo,
                        blur_ceiling=not args.no_blur_ceiling)
    train, _ = usable_photos([p for p in photos if p.split == "train"
                              and min(p.width, p.height) * p.max_scale >= settings.size], root)
    if args.photo_limit:
        train = train[:args.photo_limit]
    if not train:
        print(f"{PROG}: no training photo of at least {settings.size} px in {args.photos}", file=sys.stderr)
        return EXIT_ERROR
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    settings_path = out / "settings.json"
    wanted = settings.to_dict() | {"ladders": True}
    if settings_path.is_file() and json.loads(settings_path.read_text(encoding="utf-8")) != wanted:
        print(f"{PROG}: {out} was built with other settings; use a new --out folder", file=sys.stderr)
        return EXIT_ERROR
    settings_path.write_text(json.dumps(wanted, indent=1) + "\n", encoding="utf-8")

    store = Store(out, out)
    per_crop = 1 + SEVERITY_LEVELS * len(types)
    expected = len(train) * args.crops_per_photo * per_crop
    tasks = []
    for photo in sorted(train, key=lambda p: p.id):
        mine = frozenset(i for i in store.done if i.startswith(photo.id + "-"))
        for c in range(args.crops_per_photo):
            ids = [eval_id(photo.id, c, None, None)] + [eval_id(photo.id, c, t, lv) for t in types
                                                        for lv in range(1, SEVERITY_LEVELS + 1)]
            if any(i not in mine for i in ids):
                tasks.append(Task(photo.to_dict(), str(resolve(root, photo)), "train", (c,), True, mine))
    log(f"{len(train)} training photos, {len(types)} types, {expected} images planned, {args.workers} worker(s)")
    made = execute(tasks, settings, out, store, args.workers, "ladders", expected)
    store.close()
    summary = image_summary(store.meta.values())
    log("pseudo-MOS by type and severity level:\n" + format_mos_table(summary["pseudo_mos_by_type_and_severity_level"]))
    (out / "summary.json").write_text(json.dumps({"images": len(store.meta), "made": made,
                                                  "seconds": round(time.time() - t0, 1), **summary}, indent=1) + "\n",
                                      encoding="utf-8")
    log(f"done in {time.time() - t0:.0f}s: {len(store.meta)} images in {out}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())

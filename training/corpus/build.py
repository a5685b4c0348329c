"""Build the low-level quality corpus: distorted crops of real photos with Q-Instruct records.

``python -m training.corpus.build --photos DIR --out DIR [--crops-per-photo N]
[--variants-per-crop N] [--seed S] [--workers 2] [--eval-set]``

``--photos`` is a folder with a ``manifest.json`` (``python -m training.corpus.photos``). Writes,
under ``--out``:

- ``images/{train,val}/<photo>/<id>.png``: lossless, so distortions are never re-compressed;
- ``metadata.jsonl``: one record per image (photo, split, crop box and scale, distortions with
  type/severity/params, measures, pseudo-MOS, level, facts), appended and flushed as images land;
- ``feedback.jsonl``: the Q-Pathway-style feedback of each image (training.data's ``Feedback``);
- ``train.json`` / ``val.json``: LLaVA-format Q-Instruct records, image paths relative to ``--out``;
- ``summary.json``: counts per split/type/level, pseudo-MOS per type by severity, record stats;
- with ``--eval-set``: ``eval/`` (see :mod:`training.corpus.evalset`).

Resumable: items whose image and both JSONL lines exist are skipped (a crash mid-write loses at
most the lines of the image being written); a re-run with nothing to do writes nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing as mp
import os
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from training.data import Feedback, load_feedback, load_records, write_records

from .distortions import DISTORTIONS, available
from .generate import Settings, Task, run_task
from .photos import Photo, ReservedSourceError, load_manifest, resolve
from .questions import QuestionWriter

PROG = "python -m training.corpus.build"
EXIT_OK, EXIT_ISSUES, EXIT_ERROR = 0, 1, 2
#: Crops per worker task: small enough for steady progress and fine-grained resume.
CROPS_PER_TASK = 6


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --------------------------------------------------------------------------- JSONL state


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Lines of a JSONL file; a torn last line (crash mid-write) is ignored."""
    if not path.is_file():
        return []
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out


class Store:
    """``metadata.jsonl`` + ``feedback.jsonl`` of one folder, appended in step."""

    def __init__(self, folder: Path, root: Path) -> None:
        self.folder = folder
        self.root = root
        self.meta_path = folder / "metadata.jsonl"
        self.fb_path = folder / "feedback.jsonl"
        meta = read_jsonl(self.meta_path)
        fbs = {f.get("id"): f for f in read_jsonl(self.fb_path)}
        # An item is done when its image, its metadata and its feedback all exist.
        self.meta: dict[str, dict] = {}
        self.feedback: dict[str, dict] = {}
        for m in meta:
            iid = m.get("id")
            if iid in fbs and iid not in self.meta and (root / m["image"]).is_file():
                self.meta[iid] = m
                self.feedback[iid] = fbs[iid]
        clean = len(self.meta) == len(meta) == len(fbs)
        folder.mkdir(parents=True, exist_ok=True)
        if not clean:
            # Drop torn or orphan lines once, so appending cannot create duplicates.
            self._rewrite()
        self._meta_fh = open(self.meta_path, "a", encoding="utf-8")
        self._fb_fh = open(self.fb_path, "a", encoding="utf-8")

    def _rewrite(self) -> None:
        for path, rows in ((self.meta_path, self.meta.values()), (self.fb_path, self.feedback.values())):
            tmp = path.with_name(path.name + ".part")
            with open(tmp, "w", encoding="utf-8") as fh:
                for row in rows:
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            os.replace(tmp, path)

    @property
    def done(self) -> set[str]:
        return set(self.meta)

    def add(self, items: Iterable[tuple[dict, dict]]) -> int:
        n = 0
        for meta, fb in items:
            if meta["id"] in self.meta:
                continue
            # Feedback first: an item only counts as done once its metadata line is there too.
            self._fb_fh.write(json.dumps(fb, ensure_ascii=False) + "\n")
            self._meta_fh.write(json.dumps(meta, ensure_ascii=False) + "\n")
            self.meta[meta["id"]] = meta
            self.feedback[meta["id"]] = fb
            n += 1
        self._fb_fh.flush()
        self._meta_fh.flush()
        return n

    def close(self) -> None:
        self._meta_fh.close()
        self._fb_fh.close()


# --------------------------------------------------------------------------- tasks


def crops_for(photo: Photo, wanted: int, size: int) -> int:
    """Crops to take from a photo: ``wanted``, but no more than twice the crops that fit side by side
    (a 300-px sample image holds one 224-px crop; 32 near-identical crops of it would only repeat it).
    """
    fit = photo.width * photo.height * photo.max_scale ** 2 / float(size * size)
    return max(1, min(wanted, max(4, round(2 * fit))))


def make_tasks(photos: list[Photo], root: Path, settings: Settings, done: set[str], eval_set: bool) -> list[Task]:
    tasks = []
    for p in sorted(photos, key=lambda p: p.id):
        if eval_set:
            if p.split != "validation":
                continue
            n = settings.eval_crops_per_photo
        else:
            n = crops_for(p, settings.crops_per_photo if p.split == "train" else settings.val_crops_per_photo,
                          settings.size)
        mine = frozenset(i for i in done if i.startswith(p.id + "-"))
        step = 1 if eval_set else CROPS_PER_TASK
        for start in range(0, n, step):
            tasks.append(Task(p.to_dict(), str(resolve(root, p)), p.split, tuple(range(start, min(n, start + step))),
                              eval_set, mine))
    return tasks


def _init_worker() -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    import cv2

    cv2.setNumThreads(1)


def _run(args: tuple[Settings, str, Task]) -> list[tuple[dict, dict]]:
    return run_task(*args)


def execute(tasks: list[Task], settings: Settings, out: Path, store: Store, workers: int, label: str,
            expected: int) -> int:
    """Run tasks (in a pool when ``workers > 1``), appending results as they arrive."""
    start = time.time()
    made = 0
    already = len(store.meta)

    def progress(i: int) -> None:
        elapsed = time.time() - start
        rate = made / elapsed if elapsed > 0 else 0.0
        left = expected - len(store.meta)
        eta = f", ETA {left / rate:.0f}s" if rate > 0 and left > 0 else ""
        log(f"{label}: task {i}/{len(tasks)}, {len(store.meta)}/{expected} images "
            f"(+{made} new, {rate:.1f} img/s{eta})")

    jobs = [(settings, str(out), t) for t in tasks]
    if workers <= 1:
        results: Iterator[list[tuple[dict, dict]]] = map(_run, jobs)
        pool = None
    else:
        pool = mp.get_context("spawn").Pool(workers, initializer=_init_worker)
        results = pool.imap_unordered(_run, jobs, chunksize=1)
    try:
        every = max(1, len(tasks) // 40)
        for i, res in enumerate(results, start=1):
            made += store.add(res)
            if i % every == 0 or i == len(tasks):
                progress(i)
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    if not tasks:
        log(f"{label}: nothing to do ({already} images already there)")
    return made


# --------------------------------------------------------------------------- records & summary


def _feedback_of(store: Store, ids: list[str]) -> list[Feedback]:
    fbs, report = load_feedback([store.fb_path])
    by_id = {f.id: f for f in fbs}
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise RuntimeError(f"{len(missing)} feedback lines unreadable, e.g. {missing[:3]}")
    return [by_id[i] for i in ids]


def build_records(store: Store, out: Path, seed: int) -> dict[str, Any]:
    """train.json / val.json from metadata + feedback; returns record statistics."""
    stats: dict[str, Any] = {}
    for split, name in (("train", "train.json"), ("validation", "val.json")):
        ids = sorted(i for i, m in store.meta.items() if m["split"] == split)
        writer = QuestionWriter(seed=seed)
        records = []
        for fb in _feedback_of(store, ids):
            meta = store.meta[fb.id]
            records.extend(writer.records(fb, meta["facts"] | {"distortions": meta["distortions"]}))
        records = writer.finish(records)
        n = write_records(records, out / name)
        # Re-read through training.data's validator: what the trainer will see.
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
    from training.data.converters import yes_no_answer

    return yes_no_answer(record) or "?"


def image_summary(metas: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Counts and pseudo-MOS tables over metadata records."""
    metas = list(metas)
    by_split: Counter[str] = Counter()
    by_level: dict[str, Counter[str]] = defaultdict(Counter)
    by_type: Counter[str] = Counter()
    by_kind_visible: Counter[str] = Counter()
    n_dist: Counter[int] = Counter()
    mos_by_type: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for m in metas:
        by_split[m["split"]] += 1
        by_level[m["split"]][m["level"]] += 1
        n_dist[len(m["distortions"])] += 1
        for d in m["distortions"]:
            by_type[d["type"]] += 1
        for k in m["facts"]["kinds"]:
            by_kind_visible[k] += 1
        if len(m["distortions"]) == 1:
            d = m["distortions"][0]
            mos_by_type[d["type"]][d["level"]].append(m["pseudo_mos"])
        elif not m["distortions"]:
            mos_by_type["pristine"][0].append(m["pseudo_mos"])
    table = {t: {str(lv): {"mean": round(sum(v) / len(v), 3), "n": len(v)} for lv, v in sorted(levels.items())}
             for t, levels in sorted(mos_by_type.items())}
    return {
        "images": sum(by_split.values()),
        "by_split": dict(by_split),
        "by_level": {s: {lv: c[lv] for lv in ("excellent", "good", "fair", "poor", "bad")}
                     for s, c in by_level.items()},
        "distortions_per_image": {str(k): v for k, v in sorted(n_dist.items())},
        "by_type": dict(sorted(by_type.items())),
        "visible_kinds": dict(sorted(by_kind_visible.items())),
        "pseudo_mos_by_type_and_severity_level": table,
    }


def format_mos_table(table: dict[str, dict[str, dict[str, float]]]) -> str:
    lines = [f"{'type':<16}" + "".join(f"{'L' + str(i):>8}" for i in range(1, 6))]
    for t, levels in table.items():
        if t == "pristine":
            lines.append(f"{t:<16}{levels['0']['mean']:>8.2f}  (n={levels['0']['n']})")
            continue
        lines.append(f"{t:<16}" + "".join(f"{levels[str(i)]['mean']:>8.2f}" if str(i) in levels else f"{'-':>8}"
                                          for i in range(1, 6)))
    return "\n".join(lines)


def digest(ids: Iterable[str], settings: Settings) -> str:
    h = hashlib.sha1(json.dumps(settings.to_dict(), sort_keys=True).encode())
    for i in sorted(ids):
        h.update(i.encode() + b"\0")
    return h.hexdigest()


# --------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    d = Settings()
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--photos", required=True, type=Path, help="folder with manifest.json (training.corpus.photos)")
    p.add_argument("--out", required=True, type=Path, help="corpus folder (created; re-runs resume)")
    p.add_argument("--crops-per-photo", type=int, default=d.crops_per_photo, help="crops per training photo")
    p.add_argument("--val-crops-per-photo", type=int, default=d.val_crops_per_photo, help="crops per validation photo")
    p.add_argument("--variants-per-crop", type=int, default=d.variants_per_crop)
    p.add_argument("--size", type=int, default=d.size, help="crop size in pixels (the model input)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--types", help=f"comma list of distortions (default all: {','.join(DISTORTIONS)})")
    p.add_argument("--pair-share", type=float, default=d.pair_share)
    p.add_argument("--pristine-share", type=float, default=d.pristine_share)
    p.add_argument("--eval-set", action="store_true", help="also write eval/: every type at 5 severities per val crop")
    p.add_argument("--eval-crops-per-photo", type=int, default=d.eval_crops_per_photo)
    p.add_argument("--photo-limit", type=int, help="only the first N photos of each split (quick trials)")
    p.add_argument("--refresh-records", action="store_true",
                   help="rewrite train.json / val.json (and eval questions) even when up to date")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    t0 = time.time()
    try:
        photos, root = load_manifest(args.photos)
    except ReservedSourceError as exc:
        print(f"{PROG}: refused: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except (OSError, ValueError, KeyError) as exc:
        print(f"{PROG}: cannot read the manifest in {args.photos}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    requested = args.types.split(",") if args.types else list(DISTORTIONS)
    unknown = [t for t in requested if t not in DISTORTIONS]
    if unknown:
        print(f"{PROG}: unknown distortion(s) {unknown}", file=sys.stderr)
        return EXIT_ERROR
    types = available(requested)
    if len(types) < len(requested):
        log(f"warning: ffmpeg lacks encoders for {sorted(set(requested) - set(types))}; skipped")
    settings = Settings(size=args.size, crops_per_photo=args.crops_per_photo,
                        val_crops_per_photo=args.val_crops_per_photo, variants_per_crop=args.variants_per_crop,
                        pristine_share=args.pristine_share, pair_share=args.pair_share, seed=args.seed,
                        types=tuple(types), eval_crops_per_photo=args.eval_crops_per_photo)
    small = [p for p in photos if min(p.width, p.height) * p.max_scale < settings.size]
    for p in small:
        log(f"skip {p.id}: {p.width}x{p.height} at {p.max_scale:g}x is smaller than a {settings.size}px crop")
    photos = [p for p in photos if p not in small]
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
        record_stats = build_records(store, out, settings.seed)
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
        from .evalset import build_eval

        eval_summary = build_eval(photos, root, out, settings, args.workers,
                                  {} if args.refresh_records else old_summary.get("eval", {}))
        if eval_summary is not None:
            summary["eval"] = eval_summary
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

"""The corpus builder's machinery, shared by the corpus (:mod:`.build`) and the evaluation set (:mod:`.evalset`).

- :class:`Store`: ``metadata.jsonl`` + ``feedback.jsonl`` of one folder, appended in step and resumable;
- :func:`make_tasks` and :func:`execute`: crops of photos cut into worker tasks, run in a process pool;
- :func:`image_summary`, :func:`format_mos_table`, :func:`digest`: what a folder holds, and whether it changed;
- :func:`open_inputs` (:func:`open_photos`, :func:`chosen_types`): the command lines' photo manifest and ``--types``;
- :func:`usable_photos`: the listed photos whose files can be built from, the others reported.

The builders (and :mod:`.ladders`) import from here; nothing here imports any of them.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Iterable, Iterator

from .distortions import DISTORTIONS, available, default_types
from .generate import Settings, Task, run_task
from .photos import Photo, ReservedSourceError, load_manifest, resolve, sha256_file

#: Crops per worker task: small enough for steady progress and fine-grained resume.
CROPS_PER_TASK = 6


class InputError(ValueError):
    """A command-line input a builder cannot use; the message is what the user is told."""


def open_photos(folder: Path) -> tuple[list[Photo], Path]:
    """The photos of a manifest folder and the folder their paths start from; reserved packages refused."""
    try:
        return load_manifest(folder)
    except ReservedSourceError as exc:
        raise InputError(f"refused: {exc}") from exc
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"cannot read the manifest in {folder}: {exc}") from exc


def open_inputs(folder: Path, types: str | None, prog: str) -> tuple[list[Photo], Path, list[str]] | None:
    """:func:`open_photos` and :func:`chosen_types` for a command line: ``None`` once the reason is printed."""
    try:
        photos, root = open_photos(folder)
        return photos, root, chosen_types(types)
    except InputError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return None


def usable_photos(photos: list[Photo], root: Path) -> tuple[list[Photo], list[dict[str, str]]]:
    """The photos whose file is there, is the file the manifest lists (its sha256) and decodes whole;
    each other one logged and returned as ``{"photo", "path", "reason"}``.

    A damaged photo is left out before any crop is cut, so it never ends a build half way (a
    truncated file would otherwise fail in a worker), and the other photos' crops do not change
    (their tasks are seeded per photo)."""
    from PIL import Image

    usable: list[Photo] = []
    skipped: list[dict[str, str]] = []
    for photo in photos:
        path = resolve(root, photo)
        try:
            if sha256_file(path) != photo.sha256:
                raise ValueError("its sha256 is not the manifest's (changed or damaged since it was listed)")
            with Image.open(path) as im:
                im.load()
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            reason = str(exc) or type(exc).__name__
            log(f"skip {photo.id} ({path}): {reason}")
            skipped.append({"photo": photo.id, "path": str(path), "reason": reason})
            continue
        usable.append(photo)
    return usable, skipped


def chosen_types(spec: str | None) -> list[str]:
    """``--types`` as a list (the default types when empty), less those this ffmpeg cannot encode."""
    requested = spec.split(",") if spec else default_types()
    unknown = [t for t in requested if t not in DISTORTIONS]
    if unknown:
        raise InputError(f"unknown distortion(s) {unknown}")
    types = available(requested)
    if len(types) < len(requested):
        log(f"warning: ffmpeg lacks encoders for {sorted(set(requested) - set(types))}; skipped")
    return types


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

"""1. Assessment: does a scorer order images by their distortion's severity?

Every score is turned so that higher = better: (a) Spearman of score against severity inside each
(crop, distortion type) group, the pristine crop as severity 0, averaged over groups and per type;
(b) Spearman pooled over all crops, per type, with its mean and minimum over types; (c) how often the
pristine crop scores strictly above the same crop at severity >= 3 (``pairs.jsonl``); (d) SRCC and
logistic PLCC against pseudo-MOS. (a) to (c) leave out a distortion that leaves its crop unchanged
(desaturating a grey picture): there is nothing to rank."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from ..metrics import correlation_report
from .assessors import Assess
from .common import TARGETS, load_rgb, log, srcc_or_zero
from .images import EvalImage


def score_images(images: Sequence[EvalImage], assessors: dict[str, Assess], batch: int = 32,
                 ) -> dict[str, list[float | None]]:
    """Every in-process assessor on every image; images are loaded one batch at a time."""
    from qplug.types import Frame

    values: dict[str, list[float | None]] = {key: [] for key in assessors}
    timing: dict[str, float] = defaultdict(float)
    for start in range(0, len(images), batch):
        chunk = images[start:start + batch]
        frames = [Frame.from_rgb(load_rgb(im.path), source_id=im.id, index=i) for i, im in enumerate(chunk)]
        for key, assess in assessors.items():
            began = time.perf_counter()
            values[key] += assess(frames)
            timing[key] += time.perf_counter() - began
        if (start // batch) % 10 == 0:
            log(f"assessment: {start + len(chunk)}/{len(images)} images")
    log("assessment seconds per scorer: " + ", ".join(f"{k} {v:.1f}" for k, v in timing.items()))
    return values


def _present(values: Sequence[float | None], indices: Iterable[int]) -> list[int]:
    return [i for i in indices if values[i] is not None]


def severity_groups(images: Sequence[EvalImage]) -> dict[tuple[str, str], list[int]]:
    """(crop, type) -> indices of its five severities plus the crop's pristine image (severity 0)."""
    pristine = {im.crop_group: i for i, im in enumerate(images) if im.type is None}
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, im in enumerate(images):
        if im.type is not None:
            groups[(im.crop_group, im.type)].append(i)
    for (crop, _), members in groups.items():
        if crop in pristine:
            members.append(pristine[crop])
    return dict(groups)


#: A (crop, type) group whose strongest severity measures below this distortion D (pseudo-MOS 5.0 at
#: every severity) is the crop unchanged: desaturating a grey picture. Its scores can only tie, so it
#: has nothing to rank. On the validation set: the grey brick crops' desaturation (D = 0) and
#: oversaturation (D <= 0.0002) groups; the next weakest group measures D = 0.023.
UNCHANGED_DISTORTION = 1e-3


def unchanged_groups(images: Sequence[EvalImage]) -> set[tuple[str, str]]:
    """(crop, type) groups where the distortion leaves the crop as it was (:data:`UNCHANGED_DISTORTION`)."""
    strongest: dict[tuple[str, str], float] = defaultdict(float)
    for im in images:
        if im.type is not None:
            key = (im.crop_group, im.type)
            strongest[key] = max(strongest[key], im.distortion)
    return {key for key, d in strongest.items() if d < UNCHANGED_DISTORTION}


def _unchanged_images(images: Sequence[EvalImage]) -> set[int]:
    groups = unchanged_groups(images)
    return {i for i, im in enumerate(images) if im.type is not None and (im.crop_group, im.type) in groups}


def within_group_srcc(values: Sequence[float | None], images: Sequence[EvalImage]) -> dict[str, Any]:
    """1a: Spearman of score against -severity inside each (crop, type) group; mean overall and per type.

    Groups the distortion leaves unchanged (:func:`unchanged_groups`) are left out and counted.
    """
    per_type: dict[str, list[float]] = defaultdict(list)
    unchanged = unchanged_groups(images)
    for (crop, kind), members in sorted(severity_groups(images).items()):
        if (crop, kind) in unchanged:
            continue
        members = _present(values, members)
        if len(members) < 3:
            continue
        per_type[kind].append(srcc_or_zero([values[i] for i in members], [-images[i].severity for i in members]))
    everything = [r for rs in per_type.values() for r in rs]
    return {"mean": float(np.mean(everything)) if everything else None, "n_groups": len(everything),
            "unchanged_groups": len(unchanged), "by_type": {k: float(np.mean(v)) for k, v in sorted(per_type.items())}}


def pooled_type_srcc(values: Sequence[float | None], images: Sequence[EvalImage]) -> dict[str, Any]:
    """1b: per type, Spearman of score against -severity over all crops at once (pristine crops as 0).

    Harder than 1a: the score must also agree across different pictures, not only within one. Images
    of unchanged groups (:func:`unchanged_groups`) are left out.
    """
    pristine = [i for i, im in enumerate(images) if im.type is None]
    unchanged = _unchanged_images(images)
    by_type: dict[str, float] = {}
    for kind in sorted({im.type for im in images if im.type is not None}):
        members = _present(values, [i for i, im in enumerate(images) if im.type == kind and i not in unchanged]
                           + pristine)
        if len(members) >= 3:
            by_type[kind] = srcc_or_zero([values[i] for i in members], [-images[i].severity for i in members])
    rs = list(by_type.values())
    threshold = TARGETS["pooled_type_srcc_min"][1]
    return {"by_type": by_type, "mean": float(np.mean(rs)) if rs else None, "min": min(rs) if rs else None,
            "types_at_target": sum(r >= threshold for r in rs), "n_types": len(rs)}


def pair_accuracy(values: Sequence[float | None], images: Sequence[EvalImage], pairs_path: Path) -> dict[str, Any]:
    """1c: share of (pristine, same crop at severity >= 3) pairs where the pristine scores strictly higher.

    Pairs whose distorted image is the crop unchanged (:func:`unchanged_groups`) are left out: the two
    images are the same picture.
    """
    index = {im.id: i for i, im in enumerate(images)}
    unchanged = _unchanged_images(images)
    wins = ties = n = 0
    by_type: dict[str, list[int]] = defaultdict(list)
    with open(pairs_path, encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            pair = json.loads(line)
            better, worse = index.get(pair["better"]), index.get(pair["worse"])
            if better is None or worse is None or values[better] is None or values[worse] is None \
                    or worse in unchanged:
                continue
            n += 1
            win = values[better] > values[worse]  # type: ignore[operator]
            wins += win
            ties += values[better] == values[worse]
            by_type[pair["type"]].append(int(win))
    return {"accuracy": wins / n if n else None, "n": n, "ties": ties,
            "by_type": {k: sum(v) / len(v) for k, v in sorted(by_type.items())}}


def mos_correlation(values: Sequence[float | None], images: Sequence[EvalImage]) -> dict[str, Any]:
    """1d: SRCC and PLCC (after qplug_training.metrics' 4-parameter logistic) against pseudo-MOS."""
    members = _present(values, range(len(images)))
    report = correlation_report([values[i] for i in members], [images[i].pseudo_mos for i in members])
    return {"srcc": report["srcc"], "plcc": report["plcc"], "n": report["n"]}


def assessment_figures(values: dict[str, list[float | None]], images: Sequence[EvalImage],
                       pairs_path: Path) -> dict[str, Any]:
    return {key: {"within_group": within_group_srcc(v, images), "pooled": pooled_type_srcc(v, images),
                  "pairs": pair_accuracy(v, images, pairs_path), "mos": mos_correlation(v, images)}
            for key, v in values.items()}

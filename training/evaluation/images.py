"""The validation evaluation set of a corpus (``CORPUS/eval``, written by ``qplug_training.corpus.evalset``)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class EvalImage:
    """One validation image and what is known about it (a line of ``eval/metadata.jsonl``)."""

    id: str
    path: Path
    photo: str
    crop_group: str
    type: str | None          # distortion type; None for the pristine crop
    severity: int             # 0 pristine, 1..5
    pseudo_mos: float
    main: str | None          # dominant visible distortion kind; None when nothing is visible
    level: str                # the true level word (excellent .. bad)
    distortion: float = 0.0   # the corpus' measured distortion D (0: identical to the pristine crop)


def read_eval_images(corpus: Path) -> list[EvalImage]:
    images = []
    with open(corpus / "eval" / "metadata.jsonl", encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            r = json.loads(line)
            images.append(EvalImage(id=r["id"], path=corpus / r["image"], photo=r["photo"],
                                    crop_group=r["eval"]["crop_group"], type=r["eval"]["type"],
                                    severity=int(r["eval"]["severity_level"]), pseudo_mos=float(r["pseudo_mos"]),
                                    main=r["facts"]["main"], level=r["facts"]["level"],
                                    distortion=float(r.get("measures", {}).get("distortion", 0.0))))
    return images


def subsample_crops(images: list[EvalImage], max_images: int | None) -> list[EvalImage]:
    """Whole crop groups (pristine + every type and severity), spread evenly over the photos.

    Whole groups, because every assessment figure compares images of the same crop.
    """
    crops = sorted({im.crop_group for im in images})
    if max_images is None or max_images >= len(images):
        return images
    per_crop = len(images) / len(crops)
    wanted = max(1, min(len(crops), math.ceil(max_images / per_crop)))
    # Evenly spaced over the sorted groups: crops of different photos, not the first photo's two crops.
    chosen = {crops[round(i * (len(crops) - 1) / max(1, wanted - 1))] for i in range(wanted)} if wanted > 1 \
        else {crops[0]}
    return [im for im in images if im.crop_group in chosen]

"""What every figure family uses: the targets, logging, sampling, image loading and safe correlations."""

from __future__ import annotations

import math
import random
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..metrics import srcc


#: Issue 5's targets: figure key -> (comparison, threshold). Only the model is marked PASS/MISS.
TARGETS: dict[str, tuple[str, float]] = {
    "within_group_srcc": (">=", 0.95),
    "pooled_type_srcc_min": (">=", 0.85),
    "pair_accuracy": (">=", 0.95),
    "yes_no_accuracy": (">=", 0.90),
    "mcq_accuracy": (">=", 0.90),
    "describe_names_main": (">=", 0.85),
    "describe_level_within_one": (">=", 0.90),
    "video_srcc_min": (">=", 0.95),
    "speed_fps": (">=", 25.0),
}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def deterministic_sample(items: list[Any], n: int | None, seed: str) -> list[Any]:
    """``n`` items drawn with a fixed seed, in their original order (all of them when ``n`` is None)."""
    if n is None or n >= len(items):
        return list(items)
    keep = set(random.Random(seed).sample(range(len(items)), n))
    return [item for i, item in enumerate(items) if i in keep]


def load_rgb(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        return np.ascontiguousarray(np.asarray(image.convert("RGB")))


def srcc_or_zero(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman, 0 where a scorer gives every image the same value (it tells them apart no better than chance)."""
    r = srcc(x, y)
    return r if math.isfinite(r) else 0.0


def pooled_mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None

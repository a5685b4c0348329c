"""Weighted, deterministic mixing of instruction datasets.

The paper's **mix** strategy trains on low-level data (Q-Instruct) concatenated with high-level
instruction data (e.g. LLaVA's mix665k); **after** trains on the low-level data alone in a
separate stage. Both are a :func:`mix` call: several sources with weights, sampled with a seed.
"""

from __future__ import annotations

import math
import os
import posixpath
import random
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

from .records import Record
from .validate import SkipReport, load_records, validate_records

PathLike = str | os.PathLike[str]


@dataclass
class MixSource:
    """One input of a mix.

    ``data``: a dataset file (JSON or JSON Lines) or records already in memory.
    ``weight``: without a total, a repeat factor (1 = every record once, 0.5 = a random half,
    2 = every record twice); with a total, the source's share of it relative to the others.
    ``image_root``: where this source's images live, for validation (``None``: not checked).
    ``image_prefix``: prepended to relative image paths, to rebase sources that live in
    different folders onto the one image root a training run takes.
    """

    data: PathLike | Sequence[Record]
    weight: float = 1.0
    image_root: PathLike | None = None
    image_prefix: str = ""
    name: str | None = None

    def label(self, index: int) -> str:
        if self.name:
            return self.name
        return str(self.data) if isinstance(self.data, (str, os.PathLike)) else f"source{index}"


@dataclass
class MixReport:
    """What each source contributed."""

    seed: int
    total: int = 0
    sources: list[dict[str, Any]] = field(default_factory=list)
    skips: SkipReport = field(default_factory=SkipReport)

    def to_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "total": self.total, "sources": self.sources, "validation": self.skips.to_dict()}

    def __str__(self) -> str:
        lines = [f"mixed {self.total} records (seed {self.seed})"]
        for s in self.sources:
            how = "with replacement" if s["replacement"] else "without replacement"
            lines.append(f"  {s['name']}: {s['taken']} of {s['available']} (weight {s['weight']:g}, {how}"
                         f"{', ' + str(s['repeats']) + ' full passes' if s['repeats'] else ''})")
        if self.skips.total_skipped:
            lines.append(f"  {self.skips.total_skipped} invalid records skipped while reading")
        return "\n".join(lines)


def _quotas(weights: list[float], sizes: list[int], total: int | None) -> list[int]:
    if total is None:
        return [int(math.floor(w * n + 0.5)) for w, n in zip(weights, sizes, strict=True)]
    # Largest-remainder apportionment: the quotas add up to exactly ``total``.
    live = [w if n > 0 else 0.0 for w, n in zip(weights, sizes, strict=True)]
    s = sum(live)
    if s <= 0:
        return [0] * len(weights)
    exact = [total * w / s for w in live]
    quotas = [int(math.floor(x)) for x in exact]
    order = sorted(range(len(exact)), key=lambda i: (-(exact[i] - quotas[i]), i))
    for i in order[: total - sum(quotas)]:
        quotas[i] += 1
    return quotas


def _rebase(record: Record, prefix: str) -> Record:
    if not prefix or record.image is None or posixpath.isabs(record.image) or os.path.isabs(record.image):
        return record
    return replace(record, image=posixpath.join(prefix, record.image))


def mix(
    sources: Sequence[MixSource | tuple[PathLike | Sequence[Record], float]],
    seed: int = 0,
    total: int | None = None,
    replacement: bool = False,
    shuffle: bool = True,
) -> tuple[list[Record], MixReport]:
    """Sample records from several sources by weight; the same arguments give the same output.

    Without ``replacement`` a source is drawn without repeats until it is exhausted, then whole
    passes are repeated (so weight 2.5 = every record twice plus a random half). With it, each
    draw is independent. Each source has its own random stream, so changing one source's weight
    does not change which records another source contributes. Invalid records in file sources are
    skipped and counted in ``report.skips``; records given in memory are validated too.
    """
    specs = [s if isinstance(s, MixSource) else MixSource(data=s[0], weight=float(s[1])) for s in sources]
    for s in specs:
        if not math.isfinite(s.weight) or s.weight < 0:
            raise ValueError(f"weight must be a finite number >= 0, got {s.weight}")
    if total is not None and total < 0:
        raise ValueError("total must be >= 0")

    report = MixReport(seed=seed)
    pools: list[list[Record]] = []
    for s in specs:
        if isinstance(s.data, (str, os.PathLike)):
            recs, rep = load_records(s.data, image_root=s.image_root)
        else:
            recs, rep = validate_records(s.data, image_root=s.image_root)
        report.skips.merge(rep)
        pools.append([_rebase(r, s.image_prefix) for r in recs])

    quotas = _quotas([s.weight for s in specs], [len(p) for p in pools], total)
    out: list[Record] = []
    for i, (s, pool, n) in enumerate(zip(specs, pools, quotas, strict=True)):
        rng = random.Random(f"{seed}:{i}")
        taken: list[Record] = []
        repeats = 0
        if pool and n:
            if replacement:
                taken = rng.choices(pool, k=n)
            else:
                repeats, rest = divmod(n, len(pool))
                taken = pool * repeats + rng.sample(pool, rest)
        out.extend(taken)
        report.sources.append({
            "name": s.label(i), "weight": s.weight, "available": len(pool), "taken": len(taken),
            "replacement": replacement, "repeats": repeats, "image_prefix": s.image_prefix,
        })
    if shuffle:
        random.Random(f"{seed}:shuffle").shuffle(out)
    report.total = len(out)
    return out, report

"""0. Generalisation: the model on corpus images of training photos against images of unseen photos."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .assessors import model_assessor
from .common import deterministic_sample, load_rgb, log, srcc_or_zero


def generalisation_figures(model: str, corpus: Path, n: int, batch_size: int) -> dict[str, Any]:
    """The model on ``n`` corpus images of *training* photos and ``n`` of validation photos.

    Same distribution, same labels, only the photos differ: the gap between the two SRCCs (score vs
    pseudo-MOS) and between the two mean scores of pristine crops is what the model learnt of its
    training photos' content rather than of quality. Uses ``corpus/metadata.jsonl`` (the training
    corpus' own images), so it needs the corpus the model was trained from, or one sharing its photos.
    """
    from qplug.types import Frame

    rows = [json.loads(line) for line in (corpus / "metadata.jsonl").read_text(encoding="utf-8").splitlines()
            if line.strip()]
    assess = model_assessor(model, batch_size)
    out: dict[str, Any] = {"n_per_split": n}
    for split in ("train", "validation"):
        chosen = deterministic_sample([r for r in rows if r["split"] == split], n, f"generalisation:{split}")
        values: list[float | None] = []
        for start in range(0, len(chosen), 32):
            frames = [Frame.from_rgb(load_rgb(corpus / r["image"]), source_id=r["id"], index=i)
                      for i, r in enumerate(chosen[start:start + 32])]
            values += assess(frames)
        mos = [float(r["pseudo_mos"]) for r in chosen]
        pristine = [v for v, r in zip(values, chosen) if not r["distortions"] and v is not None]
        out[split] = {"n": len(chosen), "photos": len({r["photo"] for r in chosen}),
                      "srcc": srcc_or_zero([v if v is not None else 0.0 for v in values], mos),
                      "pristine_mean": float(np.mean(pristine)) if pristine else None, "n_pristine": len(pristine)}
    out["srcc_gap"] = out["train"]["srcc"] - out["validation"]["srcc"]
    log(f"generalisation: SRCC vs pseudo-MOS train {out['train']['srcc']:.3f}, validation "
        f"{out['validation']['srcc']:.3f}")
    return out

#!/usr/bin/env python
"""What the model's own answers add to its score and to its yes/no answers, on the validation set.

For every validation image (``CORPUS/eval``): the ``qalign`` value, and for each kind the model's
P(yes) to the kind's trained yes/no wordings (the reader's, pooled as the asker pools a reworded
answer, before any threshold) and its expected severity on the kind's trained severity question
(none / slight / moderate / strong as 0..3). Then:

- **yes/no ceiling**: accuracy of "yes when P(yes) > 0.5" over every (image, kind) the paraphrase
  figures could ask (a kind visible at least "moderate", gold yes; a cleanly absent kind, gold no),
  the mean of the two halves (the paraphrase sets ask one of each per image), per kind too; the same
  with the model's own per-kind thresholds (``yes_no_thresholds`` in its ``question_reader.json``,
  fitted on training photos: what a perfectly read question gets from the shipped asker); and with
  a per-kind threshold chosen leave-one-photo-out on these images (an optimistic bound: the
  thresholds see the other validation photos);
- **score from the answers**: 1a-1c and the pristine crops' spread for ``qalign`` alone and for
  ridge fits of pseudo-MOS on ``qalign`` plus the answers, each photo's images predicted by a fit on
  the other photos.

    OMP_NUM_THREADS=2 bench/probe_answer_signals.py --model plugins/qplug_vlm/default_model \\
        --corpus /work/corpus --out bench/out/answer_signals

Writes ``OUT/signals.npz`` (the answers; reused when present) and ``OUT/figures.json``. About 20 min
for 1,536 images on 2 CPU cores (30 prefills an image).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from qplug_training import yes_no_thresholds as fitting
from qplug_training.corpus.facts import CLEARLY_THERE
from qplug_training.evaluation.assessment import assessment_figures
from qplug_training.evaluation.common import load_rgb, log
from qplug_training.evaluation.images import read_eval_images, subsample_crops

THRESHOLDS = np.linspace(0.05, 0.95, 37)


def answer_signals(model: str, corpus: Path, images: list[Any], batch: int = 16) -> tuple[np.ndarray, list[str]]:
    """(images, 1 + 2 x kinds): qalign, P(yes) per kind, expected severity per kind; and the kinds."""
    from qplug.types import Frame
    from qplug_vlm import asker as asker_module, reader, scorers
    from qplug_vlm.images import model_image

    config = reader.ReaderConfig.from_dict(json.loads((Path(model) / reader.CONFIG_FILE).read_text(encoding="utf-8")))
    kinds = list(config.yes_no)
    scorer = scorers.qalign(model=model, device="cpu")
    asker = asker_module.build(model=model, device="cpu", reader="off")
    reworded = asker_module.build(model=model, device="cpu")  # the same backend, with the model's reader
    severities = tuple(config.severity_options)
    asked = [(config.severity[k], severities) for k in kinds]
    rows: list[list[float]] = []
    for start in range(0, len(images), batch):
        chunk = images[start:start + batch]
        frames = [Frame.from_rgb(load_rgb(im.path), source_id=im.id, index=i) for i, im in enumerate(chunk)]
        values = [s.value for s in scorer.score(frames)]
        seen = [model_image(f, asker.window, asker.backend.native_crop, asker.image_max_side, asker.pad_fill)
                for f in frames]
        answers = {key: asker.choose(seen, [key] * len(seen)) for key in asked}
        defects = reworded.defect_probabilities(seen, kinds)
        for i, value in enumerate(values):
            p_yes = [defects[i][k] for k in kinds]
            expected = [sum(answers[(config.severity[k], severities)][i].probabilities[o] * n
                            for n, o in enumerate(severities)) for k in kinds]
            rows.append([value, *p_yes, *expected])
        log(f"answer signals: {start + len(chunk)}/{len(images)}")
    return np.array(rows), kinds


def _share(said: np.ndarray) -> float | None:
    """The share of True; None for a kind with no image on that side (a small sample)."""
    return float(said.mean()) if said.size else None


def yes_no_ceiling(p_yes: np.ndarray, kinds: list[str], corpus: Path, images: list[Any],
                   thresholds: dict[str, float] | None = None) -> dict[str, Any]:
    """The figures above; ``thresholds``: the model's per kind (0.5 for a kind it does not name)."""
    lines = (corpus / "eval" / "metadata.jsonl").read_text(encoding="utf-8").splitlines()
    by_id = {m["id"]: m for m in (json.loads(line) for line in lines if line)}
    metas = [by_id[im.id] for im in images]
    image, kind, truth = [], [], []
    for i, m in enumerate(metas):
        checks = m["eval"]["checks"]
        for j, k in enumerate(kinds):
            there = checks["mention"].get(k) in CLEARLY_THERE
            if there or k in checks["absent"]:
                image.append(i), kind.append(j), truth.append(there)
    idx, kk, y = np.array(image), np.array(kind), np.array(truth)
    p = p_yes[idx, kk]
    photos = np.array([metas[i]["photo"] for i in idx])

    def balanced(pred: np.ndarray, mask: np.ndarray) -> float:
        return fitting.balanced(pred[mask], y[mask])

    everything = np.ones(len(y), bool)
    fitted = np.zeros(len(y), bool)
    for photo in np.unique(photos):
        held = photos == photo
        for j in range(len(kinds)):
            mask = kk == j
            best = max(THRESHOLDS, key=lambda t: balanced(p > t, ~held & mask))
            fitted[held & mask] = p[held & mask] > best
    turn = np.array([(thresholds or {}).get(kinds[j], 0.5) for j in kk])
    said = p > turn
    return {"balanced": balanced(p > 0.5, everything), "present": float((p > 0.5)[y].mean()),
            "with_model_thresholds": {"balanced": balanced(said, everything), "present": float(said[y].mean()),
                                      "absent": float((~said)[~y].mean()),
                                      "by_kind": {k: balanced(said, kk == j) for j, k in enumerate(kinds)}},
            "absent": float((p <= 0.5)[~y].mean()), "per_kind_threshold_leave_one_photo_out": balanced(fitted, everything),
            "by_kind": {k: {"present": _share((p > 0.5)[(kk == j) & y]), "absent": _share((p <= 0.5)[(kk == j) & ~y]),
                            "n_present": int(((kk == j) & y).sum()), "n_absent": int(((kk == j) & ~y).sum())}
                        for j, k in enumerate(kinds)}}


def fused_scores(signals: np.ndarray, corpus: Path, images: list[Any], ridge: float = 0.1) -> dict[str, Any]:
    n = (signals.shape[1] - 1) // 2
    qalign, p_yes, severity = signals[:, :1], signals[:, 1:1 + n], signals[:, 1 + n:]
    mos = np.array([im.pseudo_mos for im in images])
    photos = np.array([im.photo for im in images])

    def leave_one_photo_out(x: np.ndarray) -> np.ndarray:
        x1 = np.c_[x, np.ones(len(x))]
        out = np.zeros(len(x))
        for photo in np.unique(photos):
            train = photos != photo
            w = np.linalg.solve(x1[train].T @ x1[train] + ridge * np.eye(x1.shape[1]), x1[train].T @ mos[train])
            out[~train] = x1[~train] @ w
        return out

    candidates = {"qalign": qalign[:, 0], "fit: qalign": leave_one_photo_out(qalign),
                  "fit: qalign + severities": leave_one_photo_out(np.c_[qalign, severity]),
                  "fit: qalign + P(yes)": leave_one_photo_out(np.c_[qalign, p_yes]),
                  "fit: qalign + both": leave_one_photo_out(np.c_[qalign, severity, p_yes])}
    figures = assessment_figures({k: [float(v) for v in values] for k, values in candidates.items()}, images,
                                 corpus / "eval" / "pairs.jsonl")
    out = {}
    for name, values in candidates.items():
        f = figures[name]
        pristine = [values[i] for i, im in enumerate(images) if im.severity == 0]
        out[name] = {"within_group": f["within_group"]["mean"], "pooled_mean": f["pooled"]["mean"],
                     "pooled_min": f["pooled"]["min"], "pairs": f["pairs"]["accuracy"], "mos_srcc": f["mos"]["srcc"],
                     "pristine_crops_std": float(np.std(pristine))}
    return out


def model_thresholds(model: str) -> dict[str, float]:
    from qplug_vlm import reader

    path = Path(model) / reader.CONFIG_FILE
    return reader.ReaderConfig.from_dict(json.loads(path.read_text(encoding="utf-8"))).yes_no_thresholds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=str(Path(__file__).resolve().parents[1] / "plugins/qplug_vlm/default_model"))
    ap.add_argument("--corpus", type=Path, default=Path("/work/corpus"))
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--max-images", type=int, default=None, help="whole crop groups up to about this many images")
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    images = subsample_crops(read_eval_images(args.corpus), args.max_images)
    if len({im.photo for im in images}) < 2:
        raise SystemExit("the leave-one-photo-out figures need images of two photos or more: raise --max-images")
    args.out.mkdir(parents=True, exist_ok=True)
    cached = args.out / "signals.npz"
    if cached.exists():
        stored = np.load(cached)
        signals, kinds = stored["signals"], [str(k) for k in stored["kinds"]]
        if len(signals) != len(images):
            raise SystemExit(f"{cached}: {len(signals)} images, not {len(images)}: remove it or match --max-images")
    else:
        signals, kinds = answer_signals(args.model, args.corpus, images)
        np.savez(cached, signals=signals, kinds=np.array(kinds))
    n = len(kinds)
    figures = {"model": args.model, "images": len(signals),
               "yes_no": yes_no_ceiling(signals[:, 1:1 + n], kinds, args.corpus, images, model_thresholds(args.model)),
               "score": fused_scores(signals, args.corpus, images)}
    (args.out / "figures.json").write_text(json.dumps(figures, indent=1), encoding="utf-8")
    json.dump({"yes_no": {k: v for k, v in figures["yes_no"].items() if k != "by_kind"}, "score": figures["score"]},
              sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

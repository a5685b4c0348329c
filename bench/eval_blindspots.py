#!/usr/bin/env python
"""Issue 16's blind spots for one model directory: held-out paraphrases, bad-stretch events, grainy CRF
ladder, pristine spread across scenes, polarity of training-style yes/no wordings. The logic is in
qplug_training.evaluation.paraphrase, .blindspots and .polarity; this only parses options and writes
``OUT/blindspots.json`` (and the per-question rows, ``OUT/blindspots_items.jsonl``).

    bench/eval_blindspots.py --model plugins/qplug_vlm/default_model --corpus /work/corpus --out bench/out/v04
    bench/eval_blindspots.py --model DIR --only paraphrase,events    # a subset

The clips are made under ``--work`` (reused between models, so every model sees the same bytes).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from qplug_training.corpus import heldout
from qplug_vlm.choices import DEFAULT_OPTION_ORDER, OPTION_ORDERS

PARTS = ("paraphrase", "events", "grain", "pristine", "polarity")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--corpus", type=Path, default=Path("/work/corpus"), help="corpus with eval/ (build --eval-set)")
    ap.add_argument("--photos", type=Path, default=None,
                    help="photo manifest folder for the pristine spread (default CORPUS/source)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--work", type=Path, default=Path("bench/out/blindspots_clips"))
    ap.add_argument("--only", default=",".join(PARTS), help=f"comma list of {', '.join(PARTS)}")
    ap.add_argument("--heldout-set", choices=sorted(heldout.SETS), default="a",
                    help="held-out wordings: a (issue 16's), b (written before v5's evaluation), c (written before the question reader), d (written before its generic-question reading), e (before its adapted encoder), f (before the scope head), g (before one attribute's level), h (before exposure either way), i (before what a kind calls for), j (the clean measure of that), k (written at stop 37 before anything was read), l (after set k's figures, before its readings were looked at)")
    ap.add_argument("--option-order", choices=OPTION_ORDERS, default=DEFAULT_OPTION_ORDER,
                    help="how the asker reads lettered options (auto: the asker's default; rotate: every "
                         "list rotated, v5's figures; given: one order, the protocol before v5)")
    ap.add_argument("--yes-no", type=int, default=600)
    ap.add_argument("--mcq", type=int, default=400)
    ap.add_argument("--describe", type=int, default=150)
    ap.add_argument("--overall", type=int, default=400, help="yes/no questions about quality as a whole (set f on)")
    ap.add_argument("--rating", type=int, default=400, help="quality-level questions (set f on)")
    ap.add_argument("--attribute", type=int, default=400, help="level questions about one kind (set g on)")
    ap.add_argument("--exposure", type=int, default=400, help="yes/no about exposure, no direction named (set h on)")
    ap.add_argument("--polarity", type=int, default=300, help="(image, kind) picks asked in each polarity form")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--event-photos", type=int, default=2, help="validation photos to pan over for the events")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch

    torch.set_num_threads(args.threads)
    from qplug_training.evaluation import blindspots, paraphrase, polarity

    parts = [p for p in args.only.split(",") if p]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        ap.error(f"unknown parts {unknown}")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "blindspots.json"
    result = json.loads(path.read_text()) if path.is_file() else {}
    result["model"] = args.model
    photos = args.photos or args.corpus / "source"
    event_photos = blindspots.largest_photos(args.corpus / "source", args.event_photos)
    photo = event_photos[0]
    items: list[dict] = []
    for part in parts:
        began = time.perf_counter()
        if part == "paraphrase":
            result[part] = paraphrase.paraphrase_figures(args.model, args.corpus, args.yes_no, args.mcq, args.describe,
                                                         items=items, option_order=args.option_order,
                                                         held=args.heldout_set, overall=args.overall,
                                                         rating=args.rating, attribute=args.attribute,
                                                         exposure=args.exposure)
        elif part == "events":
            result[part] = blindspots.event_figures(args.model, event_photos, args.work, tag=args.out.name)
        elif part == "grain":
            result[part] = blindspots.grain_ladder_figures(args.model, photo, args.work, threads=args.threads)
        elif part == "pristine":
            result[part] = blindspots.pristine_spread(args.model, args.corpus, photos)
        elif part == "polarity":
            result[part] = polarity.polarity_figures(args.model, args.corpus, args.polarity, items=items)
        result.setdefault("seconds", {})[part] = round(time.perf_counter() - began, 1)
        path.write_text(json.dumps(result, indent=1, default=str) + "\n")
    if items:
        write_items(args.out / "blindspots_items.jsonl", items)
    print(json.dumps(summary(result), indent=1))
    return 0


def write_items(path: Path, items: list[dict]) -> None:
    """Write this run's rows, keeping the rows of tasks it did not run (``--only`` a subset into a folder
    that has the others)."""
    tasks = {row["task"] for row in items}
    kept = []
    if path.is_file():
        kept = [line for line in path.read_text(encoding="utf-8").splitlines()
                if line.strip() and json.loads(line).get("task") not in tasks]
    with open(path, "w", encoding="utf-8") as fh:
        for line in kept:
            fh.write(line + "\n")
        for row in items:
            fh.write(json.dumps(row, default=str) + "\n")


def summary(result: dict) -> dict:
    """The headline figures of a blindspots.json."""
    out: dict = {}
    para = result.get("paraphrase") or {}
    if para:
        for part in ("yes_no", "mcq"):
            if para.get(part):
                out[f"paraphrase_{part}"] = para[part]["overall"]["accuracy"]
        out["paraphrase_describe_names_main"] = (para.get("describe") or {}).get("names_main")
        if para.get("overall"):
            out["paraphrase_overall_yes_no"] = para["overall"]["overall"]["accuracy"]
        if para.get("rating"):
            out["paraphrase_rating"] = para["rating"]["overall"]["accuracy"]
            out["paraphrase_rating_within_one"] = para["rating"]["within_one"]
        if para.get("attribute"):
            out["paraphrase_attribute"] = para["attribute"]["overall"]["accuracy"]
            out["paraphrase_attribute_within_one"] = para["attribute"]["within_one"]
        if para.get("exposure"):
            out["paraphrase_exposure_yes_no"] = para["exposure"]["overall"]["accuracy"]
    for name, row in ((result.get("events") or {}).get("clips") or {}).items():
        out[f"event {name}"] = {"iou": round(row["iou"], 3), "inside_mean": _r(row["qalign_inside_mean"]),
                                "inside_max": _r(row["qalign_inside_max"]),
                                "outside_mean": _r(row["qalign_outside_mean"]),
                                "outside_min": _r(row["qalign_outside_min"]), "fps": _r(row["fps_incl_startup"])}
    grain = result.get("grain") or {}
    if grain:
        out["grain_ladder_srcc"] = grain["srcc"]
        out["grain_ladder_qalign"] = [round(r["qalign"], 3) for r in grain["rungs"]]
        out["grain_ladder_vmaf"] = [round(r["vmaf"], 1) for r in grain["rungs"]]
    for name, row in (result.get("pristine") or {}).items():
        out[f"pristine_{name}_std"] = row["std"]
        out[f"pristine_{name}_mean"] = row["mean"]
    for form, row in ((result.get("polarity") or {}).get("forms") or {}).items():
        out[f"polarity_{form}"] = row["overall"]["accuracy"]
    for form, row in ((result.get("polarity") or {}).get("flips") or {}).items():
        out[f"polarity_flips_{form}_vs_{row['against']}"] = row["flip_rate"]
    return out


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


if __name__ == "__main__":
    sys.exit(main())

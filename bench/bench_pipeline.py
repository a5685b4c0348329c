#!/usr/bin/env python3
"""Issue 2's figures: qplug's throughput against ffmpeg's decode-only speed, memory, start-up.

    python bench/bench_pipeline.py PHOTO [--seconds 10] [--long-seconds 120] [--repeat 3]

Builds 1080p H.264 clips (a slow zoom and pan over PHOTO, a real photo) under bench/out/, then
measures on this machine, each figure the median of --repeat runs:
- ``ffmpeg -i clip -f null -`` wall time and fps (decode only, same ffmpeg binary qplug uses);
- ``qplug score clip`` with every qc scorer on every frame: fps and the ratio to decode-only;
- ``qplug score clip --fps 1``: wall time and its ratio to decode-only wall time;
- peak RSS of ``qplug score`` on the short and the long clip (every frame);
- ``qplug --help`` wall time.
Speed figures go to the closing note, never into tests.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
QC_SCORERS = ["sharpness", "noise", "blocking", "exposure", "underexposure", "overexposure", "contrast",
              "colorfulness", "black", "frozen"]


def ffmpeg_exe() -> str:
    from qplug_video.binary import ffmpeg_exe as find

    return find()


def make_clip(photo: str, seconds: float, path: Path, fps: int = 25) -> Path:
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = int(seconds * fps)
    # A typical broadcast-style file: BT.709, limited range, yuv420p.
    # zoompan moves a 1080p window over the photo: real texture, real motion, real encoder work.
    zoom = f"zoompan=z='1+0.3*on/{frames}':x='(iw-iw/zoom)*on/{frames}':y='(ih-ih/zoom)/2':d={frames}:s=1920x1080:fps={fps}"
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-i", photo, "-vf",
                    f"scale=2880:-2,{zoom},scale=out_color_matrix=bt709:out_range=tv,format=yuv420p", "-frames:v", str(frames), "-c:v", "libx264", "-preset", "veryfast",
                    "-crf", "20", "-pix_fmt", "yuv420p", "-colorspace", "bt709", "-color_primaries", "bt709",
                    "-color_trc", "bt709", "-color_range", "tv", str(path)], check=True)
    return path


def timed(command: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of a child process."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        raise SystemExit(f"{command[:3]} failed:\n{stderr}")
    return wall, usage.ru_maxrss


def median_run(command: list[str], repeat: int) -> tuple[float, int]:
    runs = [timed(command) for _ in range(repeat)]
    return statistics.median(r[0] for r in runs), max(r[1] for r in runs)


def qplug_command(clip: Path, *extra: str) -> list[str]:
    args = [sys.executable, "-m", "qplug", "score", str(clip), "-q", "--out", os.devnull, "--format", "jsonl"]
    for name in QC_SCORERS:
        args += ["--scorer", name]
    return args + list(extra)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("photo")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--long-seconds", type=float, default=120.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    short = make_clip(args.photo, args.seconds, OUT / f"clip_{int(args.seconds)}s_1080p.mp4")
    frames = int(args.seconds * 25)
    figures: dict[str, float] = {}

    decode_wall, _ = median_run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-i", str(short), "-f", "null", "-"],
                                args.repeat)
    figures["decode_only_fps"] = frames / decode_wall
    score_wall, short_rss = median_run(qplug_command(short), args.repeat)
    figures["qplug_all_qc_fps"] = frames / score_wall
    figures["ratio_every_frame"] = figures["qplug_all_qc_fps"] / figures["decode_only_fps"]
    sampled_wall, _ = median_run(qplug_command(short, "--fps", "1"), args.repeat)
    figures["decode_only_wall_s"] = decode_wall
    figures["qplug_fps1_wall_s"] = sampled_wall
    figures["ratio_fps1_wall"] = sampled_wall / decode_wall

    long_clip = make_clip(args.photo, args.long_seconds, OUT / f"clip_{int(args.long_seconds)}s_1080p.mp4")
    _, long_rss = timed(qplug_command(long_clip))
    figures["peak_rss_short_mib"] = short_rss / 1024
    figures["peak_rss_long_mib"] = long_rss / 1024
    figures["rss_growth"] = long_rss / short_rss - 1

    help_runs = [timed([sys.executable, "-m", "qplug", "--help"])[0] for _ in range(max(args.repeat, 5))]
    figures["help_wall_s"] = statistics.median(help_runs)

    print(f"clip: {short.name} ({frames} frames, 1920x1080, H.264), {os.cpu_count()} cores")
    print(f"decode only (ffmpeg -f null):     {figures['decode_only_fps']:7.1f} fps  ({decode_wall:.2f} s)")
    print(f"qplug score, all qc, every frame: {figures['qplug_all_qc_fps']:7.1f} fps  "
          f"= {figures['ratio_every_frame']:.2f}x decode-only (target >= 0.8)")
    print(f"qplug score --fps 1:              {sampled_wall:7.2f} s    "
          f"= {figures['ratio_fps1_wall']:.2f}x decode-only wall (target <= 1.15)")
    print(f"peak RSS {args.seconds:g} s clip: {figures['peak_rss_short_mib']:.0f} MiB, {args.long_seconds:g} s clip: "
          f"{figures['peak_rss_long_mib']:.0f} MiB ({figures['rss_growth'] * 100:+.1f}%, target within 10%)")
    print(f"qplug --help: {figures['help_wall_s'] * 1000:.0f} ms (target < 500 ms)")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

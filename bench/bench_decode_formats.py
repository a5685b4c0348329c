#!/usr/bin/env python3
"""How fast the video source delivers frames of common master formats, and in which matrix.

    python bench/bench_decode_formats.py [--seconds 6] [--repeat 3]

Builds 1080p clips from the shipped sample (``samples/pan.mp4``, upscaled) under bench/out/decode/:
8-bit 4:2:0 BT.709 (passed through), the same read with ``max_side=960`` (resized by swscale),
10-bit 4:2:2 BT.709 (a broadcast master), 10-bit 4:2:0 BT.2020 (a UHD master) and 10-bit 4:2:0
SMPTE 240M (a matrix qplug converts to BT.601). For each,
the best of --repeat reads through :class:`qplug_video.source.VideoSource` (decode and delivery,
no scorer): frames per second, the delivered matrix and whether the frames carry their coded planes
(what the legal-range checks read). Speed figures go to the closing note, never into tests.
"""

from __future__ import annotations

import argparse
import subprocess
import time
from pathlib import Path

from qplug.types import Sampling
from qplug_video.binary import ffmpeg_exe
from qplug_video.source import VideoSource

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "decode"
TAG_709 = "setparams=colorspace=bt709:color_primaries=bt709:color_trc=bt709:range=tv"
TAG_2020 = "setparams=colorspace=bt2020nc:color_primaries=bt2020:color_trc=bt709:range=tv"
TAG_240M = "setparams=colorspace=smpte240m:color_primaries=smpte240m:color_trc=smpte240m:range=tv"
#: name -> (file, filter after the 1080p upscale, pixel format, read with max_side)
FORMATS = {
    "8-bit 4:2:0 BT.709": ("hd709_8.mp4", f"out_color_matrix=bt709,{TAG_709}", "yuv420p", None),
    "8-bit 4:2:0 BT.709, max_side 960": ("hd709_8.mp4", f"out_color_matrix=bt709,{TAG_709}", "yuv420p", 960),
    "10-bit 4:2:2 BT.709": ("hd709_10.mkv", f"out_color_matrix=bt709,format=yuv422p10le,{TAG_709}", "yuv422p10le", None),
    "10-bit 4:2:0 BT.2020": ("hd2020_10.mkv", f"out_color_matrix=bt2020,format=yuv420p10le,{TAG_2020}",
                             "yuv420p10le", None),
    "10-bit 4:2:0 SMPTE 240M": ("hd240m_10.mkv", f"out_color_matrix=smpte240m,format=yuv420p10le,{TAG_240M}",
                                "yuv420p10le", None),
}


def make_clip(path: Path, colour_filter: str, pix_fmt: str, seconds: float) -> None:
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(ROOT / "samples" / "pan.mp4"), "-t", str(seconds),
                    "-vf", f"scale=1920:1080:{colour_filter}", "-c:v", "libx264", "-preset", "ultrafast",
                    "-crf", "16", "-pix_fmt", pix_fmt, str(path)], check=True)


def read_all(path: Path, max_side: int | None) -> tuple[int, float, str, bool]:
    began = time.perf_counter()
    frames = 0
    planes = True
    with VideoSource().open(str(path), Sampling(max_side=max_side)) as reader:
        for frame in reader:
            frames += 1
            planes = planes and frame.planes is not None
        matrix = reader.plan.matrix
    return frames, time.perf_counter() - began, matrix, planes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print("| format | frames | fps | delivered matrix | coded planes |\n|---|---|---|---|---|")
    for name, (file, colour_filter, pix_fmt, max_side) in FORMATS.items():
        path = OUT / file
        make_clip(path, colour_filter, pix_fmt, args.seconds)
        runs = [read_all(path, max_side) for _ in range(args.repeat)]
        frames, seconds, matrix, planes = min(runs, key=lambda run: run[1])
        print(f"| {name} | {frames} | {frames / seconds:.1f} | {matrix} | {'yes' if planes else 'no'} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

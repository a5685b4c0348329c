#!/usr/bin/env python3
"""Make ``samples/pan.mp4``: a slow camera pan over a real photo that ends in black.

The clip is what qplug's demos and smoke tests run on: 1280x720, 25 fps, H.264 yuv420p with
``+faststart``, a few hundred KB. The picture pans left to right across the photo, then fades to
black and stays black for a moment, so a QC run shows a black-frame event near the end.

It runs offline: ffmpeg comes from ``QPLUG_FFMPEG``, ``PATH`` or the imageio-ffmpeg wheel.

    python scripts/make_sample_clip.py /usr/share/backgrounds/mate/nature/LadyBird.jpg

The photo used for the committed clip and its licence are listed in ``samples/README.md``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _ffmpeg() -> str:
    try:
        from qplug_video.binary import ffmpeg_exe
    except ImportError:  # running outside the project's environment
        sys.path.insert(0, str(ROOT / "plugins"))
        sys.path.insert(0, str(ROOT))
        from qplug_video.binary import ffmpeg_exe
    return ffmpeg_exe()


def build_command(exe: str, photo: str, out: str, seconds: float, fps: int, width: int, height: int,
                  crf: int, fade: float, black: float) -> list[str]:
    """The ffmpeg command line (a list: no shell, any file name works)."""
    # The photo is scaled so the window has room to travel sideways: 1.5x the frame width.
    travel = f"(iw-ow)*min(t/{seconds - black - fade:g},1)"  # the pan stops when the fade starts
    filters = ",".join([
        f"scale={int(width * 1.5)}:-2:flags=lanczos",
        f"crop={width}:{height}:x='{travel}':y='(ih-oh)/2'",
        f"fade=t=out:st={seconds - black - fade:g}:d={fade:g}",
        # BT.709 for HD, tagged below, so players and qplug agree on the colours.
        "scale=out_color_matrix=bt709:out_range=tv",
        "format=yuv420p",
        "setparams=colorspace=bt709:color_primaries=bt709:color_trc=bt709:range=tv",
    ])
    return [
        exe, "-hide_banner", "-nostdin", "-y", "-loglevel", "error",
        "-loop", "1", "-framerate", str(fps), "-t", f"{seconds:g}", "-i", photo,
        "-vf", filters,
        "-c:v", "libx264", "-preset", "slow", "-crf", str(crf), "-pix_fmt", "yuv420p",
        "-movflags", "+faststart", "-map_metadata", "-1", "-an", out,
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("photo", help="the still photo to pan over (JPEG/PNG, ideally >= 1920 px wide)")
    parser.add_argument("--out", default=str(ROOT / "samples" / "pan.mp4"), help="output file (default: %(default)s)")
    parser.add_argument("--seconds", type=float, default=7.0, help="clip length (default: %(default)s)")
    parser.add_argument("--fps", type=int, default=25, help="frame rate (default: %(default)s)")
    parser.add_argument("--size", default="1280x720", help="frame size WxH (default: %(default)s)")
    parser.add_argument("--crf", type=int, default=20, help="x264 quality, higher is smaller (default: %(default)s)")
    parser.add_argument("--fade", type=float, default=0.6, help="seconds of fade to black (default: %(default)s)")
    parser.add_argument("--black", type=float, default=2.4, help="seconds of black at the end (default: %(default)s)")
    parser.add_argument("--max-kb", type=int, default=600, help="fail if the clip is larger (default: %(default)s)")
    args = parser.parse_args(argv)

    if not os.path.isfile(args.photo):
        parser.error(f"no such photo: {args.photo}")
    width, height = (int(v) for v in args.size.lower().split("x"))
    if args.seconds <= args.fade + args.black:
        parser.error("--seconds must be longer than --fade + --black")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    command = build_command(_ffmpeg(), args.photo, args.out, args.seconds, args.fps, width, height,
                            args.crf, args.fade, args.black)
    result = subprocess.run(command, check=False)
    if result.returncode != 0:
        print(f"ffmpeg failed with status {result.returncode}", file=sys.stderr)
        return 1
    size_kb = os.path.getsize(args.out) / 1024
    print(f"{args.out}: {size_kb:.0f} KB, {args.seconds:g} s, {width}x{height} @ {args.fps} fps")
    if size_kb > args.max_kb:
        print(f"larger than {args.max_kb} KB: raise --crf", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""5. Speed: ``qplug score`` with ``qalign`` on a 1080p H.264 clip, decode included (frames/s), and the
model alone (ms/frame at several batch sizes on 224 crops)."""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from .common import load_rgb
from .images import EvalImage
from .video import ffmpeg


def count_frames(clip: Path) -> int:
    """Frames in the clip's first video stream (stream copy: no decode)."""
    result = subprocess.run([ffmpeg(), "-hide_banner", "-nostdin", "-i", str(clip), "-map", "0:v:0", "-c", "copy",
                             "-f", "null", "-"], capture_output=True, text=True)
    counts = re.findall(r"frame=\s*(\d+)", result.stderr)
    if not counts:
        raise RuntimeError(f"cannot count the frames of {clip}: {result.stderr[-300:]}")
    return int(counts[-1])


#: Makes a clip: (photo path, seconds, output path) -> the clip's path.
MakeClip = Callable[[str, float, Path], Path]


def speed_clip(path: Path, photo: Path, seconds: float, make_clip: MakeClip | None = None) -> Path:
    """The 1080p H.264 clip at ``path``, reused when present, else made from ``photo`` by ``make_clip``
    (``bench/bench_pipeline.py``'s ``make_clip`` in the repository)."""
    if path.exists():
        return path
    if make_clip is None:
        raise RuntimeError(f"{path} does not exist and no clip maker was given")
    return make_clip(str(photo), seconds, path)


def cli_speed(clip: Path, model: str, threads: int, repeat: int = 1) -> dict[str, Any]:
    """``qplug score`` on every frame with qalign only: start-up, decode, scoring and writing included.

    Run ``repeat`` times; ``fps`` is the median run's, and every run's wall time is kept, because one
    run on this shared 2-core machine can be a third slower than the next.
    """
    frames = count_frames(clip)
    command = [sys.executable, "-m", "qplug", "score", str(clip), "--scorer", "qalign", "--model", model, "-q",
               "--out", os.devnull, "--format", "jsonl"]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    walls = []
    for _ in range(max(1, repeat)):
        began = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True, env=env)
        walls.append(time.perf_counter() - began)
        if result.returncode not in (0, 1):
            raise RuntimeError(f"qplug score failed ({result.returncode}): {result.stderr.strip()[-600:]}")
    wall = statistics.median(walls)
    return {"command": " ".join(command[1:]), "frames": frames, "wall_s": wall, "fps": frames / wall,
            "runs_wall_s": walls, "fps_range": [frames / max(walls), frames / min(walls)], "threads": threads}


def model_speed(model: str, images: Sequence[EvalImage], batches: Sequence[int], repeat: int) -> dict[str, Any]:
    """ms per frame of the qalign scorer alone on 224 crops (frame -> PIL -> processor -> prefill -> score).

    Each batch size is timed on ``repeat`` batches (batch 1: at least 32, since one 224 frame takes tens
    of ms and a handful of them on this shared machine varied by a third between runs); the figure is
    the median batch's ms per frame, with the fastest and slowest batch beside it.
    """
    from qplug.types import Frame
    from qplug_vlm import scorers

    scorer = scorers.qalign(model=model, device="cpu")
    counts = {batch: max(repeat, -(-32 // batch)) for batch in batches}
    rgbs = [load_rgb(im.path) for im in images[:max(batch * n for batch, n in counts.items())]]
    out: dict[str, Any] = {}
    for batch, n in counts.items():
        frames = [Frame.from_rgb(rgb, index=i) for i, rgb in enumerate(rgbs[:batch * n])]
        scorer.score(frames[:batch])  # warm-up: first-call allocations
        for frame in frames:
            frame.cache.clear()  # each timed frame pays its own PIL conversion
        per_frame = []
        for start in range(0, len(frames), batch):
            began = time.perf_counter()
            scorer.score(frames[start:start + batch])
            per_frame.append((time.perf_counter() - began) / len(frames[start:start + batch]) * 1000)
        out[f"batch_{batch}_ms"] = statistics.median(per_frame)
        out[f"batch_{batch}_ms_range"] = [min(per_frame), max(per_frame)]
        out[f"batch_{batch}_batches"] = len(per_frame)
    return out

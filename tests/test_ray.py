"""``--ray``: a local Ray instance (2 CPUs, loopback, started and stopped by the run) gives the serial scores."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from .test_cli import ffmpeg, qplug, texture

pytest.importorskip("ray.data")
Image = pytest.importorskip("PIL.Image")


def frame_scores(path: Path) -> dict:
    return {(r["source"], r["index"]): r["scores"] for r in map(json.loads, path.read_text().splitlines())
            if r["type"] == "frame"}


def test_ray_local_equals_the_serial_run(tmp_path):
    folder = tmp_path / "library"
    folder.mkdir()
    for i in range(6):
        Image.fromarray(texture(seed=i)).save(folder / f"{i}.png")
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=96x64:rate=10:duration=3", "-c:v", "libx264", "-pix_fmt", "yuv420p",
           folder / "clip.mp4")
    serial, distributed = tmp_path / "serial.jsonl", tmp_path / "ray.jsonl"
    scorers = ["-s", "sharpness", "-s", "frozen", "-s", "black"]
    assert qplug("score", folder, *scorers, "--out", serial, "-q").returncode == 0
    done = qplug("score", folder, *scorers, "--out", distributed, "--ray", "--jobs", "2", "-q")
    assert done.returncode == 0, done.stderr
    assert frame_scores(distributed) == frame_scores(serial) and len(frame_scores(serial)) == 36
    records = [json.loads(line) for line in distributed.read_text().splitlines()]
    assert records[-1]["type"] == "run" and records[-1]["sources"] == 7 and records[-1]["frames"] == 36


def test_without_ray_the_flag_says_how_to_install_it(monkeypatch):
    from qplug import ray_backend
    from qplug.errors import UsageError

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(UsageError, match=r"pip install 'qplug\[ray\]'"):
        ray_backend._ray()

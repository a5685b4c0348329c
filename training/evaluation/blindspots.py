"""Issue 16's blind spots, measured the way a user meets them.

- :func:`event_figures`: a sharp 1080p pan over a validation photo with one bad stretch (strong Gaussian
  blur, heavy noise or black) of ``EVENT_SECONDS``; the real ``qplug score CLIP -s qalign --event
  qalign=2.5:0.3`` command runs on it, and the reported events are compared with the truth (IoU), beside the
  qalign means inside and outside the stretch;
- :func:`grain_ladder_figures`: the x264 CRF ladder of figure 4 over a pan with film grain (ffmpeg's
  temporal luma noise on the lossless reference), the model's pooled score against VMAF;
- :func:`pristine_spread`: qalign of pristine images of different scenes (the evaluation set's pristine
  crops, and every validation photo of a photo manifest, each through the scorer's own window: by default
  where the photo has the most detail), mean and standard deviation.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

from .common import log, pooled_mean, srcc_or_zero

#: The bad stretch: start and length in seconds, inside a clip of ``CLIP_SECONDS``.
EVENT_START, EVENT_SECONDS, CLIP_SECONDS = 3.0, 1.5, 8.0
#: ffmpeg filters for each kind of stretch (timeline-enabled over the stretch only).
EVENT_FILTERS: dict[str, str] = {
    "blur": "gblur=sigma=4",                      # sigma 4 px at 1080p: issue 16's "strong blur" (>= 3 px)
    "noise": "noise=c0s=60:c1s=20:c2s=20:allf=t",  # heavy temporal noise, luma std ~ 35 levels
    "black": "drawbox=x=0:y=0:w=iw:h=ih:color=black:t=fill",
}
THRESHOLD, MIN_SECONDS = 2.5, 0.3
#: ffmpeg noise strength of the grainy ladder's source (temporal, luma only: a film-grain look, std ~ 6).
GRAIN_STRENGTH = 10


def _ffmpeg(*args: str) -> None:
    from .video import run_ffmpeg

    run_ffmpeg(*args)


def largest_photos(manifest_dir: Path, count: int = 1, split: str = "validation") -> list[Path]:
    """The largest photos of a split (ties by id): sharp at 1080p without upscaling, never trained on."""
    manifest = json.loads((manifest_dir / "manifest.json").read_text(encoding="utf-8"))
    photos = [p for p in manifest["photos"] if p.get("split") == split and p.get("max_scale", 1.0) >= 1.0]
    photos.sort(key=lambda p: (-p["width"] * p["height"], p["id"]))
    return [manifest_dir / p["path"] for p in photos[:count]]


def largest_photo(manifest_dir: Path, split: str = "validation") -> Path:
    return largest_photos(manifest_dir, 1, split)[0]


def make_event_clip(photo: Path, out: Path, kind: str | None, width: int = 1920, height: int = 1080,
                    seconds: float = CLIP_SECONDS, start: float = EVENT_START, length: float = EVENT_SECONDS,
                    crf: int = 16) -> Path:
    """A sharp pan over ``photo`` at width x height, 25 fps, with one ``kind`` stretch (None: none)."""
    if out.exists():
        return out
    pan = (f"scale={int(width * 1.5) // 2 * 2}:-2,crop={width}:{height}:x='(iw-{width})*t/{seconds}'"
           f":y='(ih-{height})/2'")
    chain = [pan]
    if kind is not None:
        chain.append(f"{EVENT_FILTERS[kind]}:enable='between(t,{start},{start + length - 0.001})'")
    chain.append("format=yuv420p")
    _ffmpeg("-loop", "1", "-framerate", "25", "-t", f"{seconds}", "-i", str(photo), "-vf", ",".join(chain),
            "-c:v", "libx264", "-preset", "veryfast", "-crf", str(crf), "-an", str(out))
    return out


def qplug_score(clip: Path, model: str, out: Path, threshold: float = THRESHOLD,
                min_seconds: float = MIN_SECONDS) -> dict[str, Any]:
    """Run the real command line; returns its JSON report (and the wall time it took)."""
    cmd = [str(Path(sys.executable).with_name("qplug")), "score", str(clip), "-s", "qalign", "--model", model,
           "--event", f"qalign={threshold}:{min_seconds}", "--out", str(out), "--quiet"]
    began = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - began
    if result.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(cmd)} exited {result.returncode}: {result.stderr[-800:]}")
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {"report": lines, "wall_s": wall, "command": " ".join(cmd)}


def _intervals(events: Sequence[dict[str, Any]]) -> list[tuple[float, float]]:
    spans = []
    for e in events:
        if e.get("scorer") == "qalign":
            spans.append((float(e["start"]), float(e["end"])))
    return spans


def iou(found: Sequence[tuple[float, float]], truth: tuple[float, float]) -> float:
    """Intersection over union, in seconds, of the union of ``found`` and the ``truth`` interval."""
    merged: list[list[float]] = []
    for s, e in sorted(found):
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    inter = sum(max(0.0, min(e, truth[1]) - max(s, truth[0])) for s, e in merged)
    union = sum(e - s for s, e in merged) + (truth[1] - truth[0]) - inter
    return inter / union if union > 0 else 0.0


def _frames_and_events(report: Sequence[dict[str, Any]]) -> tuple[list[tuple[float, float]], list[dict[str, Any]]]:
    """(pts, qalign) per frame and the event dicts, from qplug's JSON Lines report."""
    series = [(float(r["pts"]), float(r["scores"]["qalign"])) for r in report
              if r.get("type") == "frame" and r.get("scores", {}).get("qalign") is not None]
    events = [e for r in report if r.get("type") == "source" for e in r.get("events") or []]
    return series, events


def event_figures(model: str, photos: Sequence[Path], work: Path, kinds: Sequence[str] = tuple(EVENT_FILTERS),
                  tag: str = "model") -> dict[str, Any]:
    """Per (photo, kind): the real ``qplug score --event`` run on a pan with one bad stretch; IoU and means."""
    work.mkdir(parents=True, exist_ok=True)
    truth = (EVENT_START, EVENT_START + EVENT_SECONDS)
    out: dict[str, Any] = {"photos": [str(p) for p in photos], "truth": list(truth), "threshold": THRESHOLD,
                           "min_seconds": MIN_SECONDS, "clips": {}}
    for photo, kind in ((p, k) for p in photos for k in kinds):
        name = f"{photo.stem}:{kind}"
        clip = make_event_clip(photo, work / f"event_{photo.stem}_{kind}_1080p.mp4", kind)
        run = qplug_score(clip, model, work / f"event_{photo.stem}_{kind}_{tag}.jsonl")
        series, events = _frames_and_events(run["report"])
        inside = [v for t, v in series if truth[0] <= t < truth[1]]
        outside = [v for t, v in series if not truth[0] - 0.2 <= t < truth[1] + 0.2]
        spans = _intervals(events)
        row = {"iou": iou(spans, truth), "events": spans, "frames": len(series),
               "qalign_inside_mean": pooled_mean(inside), "qalign_inside_max": max(inside) if inside else None,
               "qalign_outside_mean": pooled_mean(outside), "qalign_outside_min": min(outside) if outside else None,
               "wall_s": round(run["wall_s"], 1), "fps_incl_startup": len(series) / run["wall_s"]}
        out["clips"][name] = row
        log(f"event {name}: IoU {row['iou']:.2f}, qalign inside {row['qalign_inside_mean']}, "
            f"outside {row['qalign_outside_mean']}, events {spans}")
    return out


def grain_ladder_figures(model: str, photo: Path, work: Path, size: str = "960x540", seconds: float = 4.0,
                         fps: float = 2.0, threads: int = 2) -> dict[str, Any]:
    """Figure 4's ladder over a grainy pan: VMAF and the pooled qalign per rung, and their SRCC."""
    from .video import CRF_LADDER, ClipSource, encode_rung, make_reference, score_rung, vmaf

    work.mkdir(parents=True, exist_ok=True)
    width, height = (int(v) for v in size.lower().split("x"))
    clean = make_reference(ClipSource(photo.stem, photo, "photo"), work / f"{photo.stem}_{size}_ref.mkv", width,
                           height, seconds)
    grainy = work / f"{photo.stem}_{size}_grain{GRAIN_STRENGTH}_ref.mkv"
    if not grainy.exists():
        _ffmpeg("-i", str(clean), "-vf", f"noise=c0s={GRAIN_STRENGTH}:c0f=t", "-c:v", "ffv1", str(grainy))
    rungs = []
    for crf in CRF_LADDER:
        rung = encode_rung(grainy, crf, work / f"{grainy.stem}_veryfast_crf{crf}.mp4", "veryfast")
        per_frame, _ = score_rung(rung, model, [], fps, None)
        rungs.append({"crf": crf, "vmaf": vmaf(rung, grainy, threads, 1), "qalign": pooled_mean(per_frame["model"])})
    pristine, _ = score_rung(grainy, model, [], fps, None)
    srcc = srcc_or_zero([r["qalign"] for r in rungs], [r["vmaf"] for r in rungs])
    log("grain ladder: " + " ".join(f"crf{r['crf']}: vmaf {r['vmaf']:.1f} q {r['qalign']:.2f}" for r in rungs)
        + f"; SRCC {srcc:.3f}")
    return {"photo": str(photo), "size": size, "grain": f"ffmpeg noise=c0s={GRAIN_STRENGTH}:c0f=t",
            "reference_qalign": pooled_mean(pristine["model"]), "rungs": rungs, "srcc": srcc}


def pristine_spread(model: str, corpus: Path, manifest_dir: Path | None = None) -> dict[str, Any]:
    """qalign of pristine images of different scenes: mean, standard deviation, range."""
    import cv2
    import numpy as np

    from qplug.types import Frame
    from qplug_vlm import scorers

    from .common import load_rgb

    scorer = scorers.build("qalign", model=model, device="cpu")

    def run(paths: list[Path]) -> list[float | None]:
        values: list[float | None] = []
        for start in range(0, len(paths), 16):
            frames = [Frame.from_rgb(load_rgb(p), source_id=str(p), index=i)
                      for i, p in enumerate(paths[start:start + 16])]
            values += [s.value for s in scorer.score(frames)]
        return values

    out: dict[str, Any] = {}
    metas = [json.loads(line) for line in (corpus / "eval" / "metadata.jsonl").read_text().splitlines() if line]
    crops = sorted(corpus / m["image"] for m in metas if m["eval"]["severity_level"] == 0)
    out["eval_pristine_crops"] = _spread(run(crops))
    if manifest_dir is not None:
        manifest = json.loads((manifest_dir / "manifest.json").read_text(encoding="utf-8"))
        with tempfile.TemporaryDirectory() as tmp:
            paths = []
            for p in sorted(manifest["photos"], key=lambda p: p["id"]):
                if p.get("split") != "validation":
                    continue
                rgb = load_rgb(manifest_dir / p["path"])
                scale = float(p.get("max_scale", 1.0))
                if scale < 1.0:  # lossy sources: only from half size, as the corpus takes them
                    rgb = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
                if min(rgb.shape[:2]) < 224:
                    continue
                path = Path(tmp) / f"{p['id']}.png"
                cv2.imwrite(str(path), cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR))
                paths.append(path)
            values = run(paths)
            out["validation_photos"] = _spread(values) | {
                "per_photo": {p.stem: round(v, 3) for p, v in zip(paths, values)}}
    return out


def _spread(values: Sequence[float | None]) -> dict[str, Any]:
    v = [float(x) for x in values if x is not None]
    return {"n": len(v), "mean": statistics.fmean(v) if v else None,
            "std": statistics.pstdev(v) if len(v) > 1 else None,
            "min": min(v) if v else None, "max": max(v) if v else None}

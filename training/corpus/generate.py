"""Producing corpus images: plan the variants of each crop, distort, measure, write PNG + records.

This is the worker side of :mod:`qplug_training.corpus.build`: everything here is a pure function of
(settings, photo, crop index), so a crash or a re-run recomputes exactly the same images, and
items whose files already exist are skipped without even loading the photo.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .crops import CANDIDATES, MIN_DETAIL, Crop, ScaledPhoto, choose_crop
from .distortions import DISTORTIONS, apply, default_types, equivalent_blur_sigma, film_grain
from .facts import Applied, build_facts, clearly_absent, content_stats
from .questions import DEFAULT_DESCRIBE_SHARE
from .feedback import make_feedback
from .photos import Photo, load_rgb
from .quality import blur_ceiling, level_of, measure

#: The blur types a strong-blur variant draws from.
BLUR_TYPES: tuple[str, ...] = ("gaussian_blur", "motion_blur", "defocus_blur")
#: Severity range of the strong-blur variants (Gaussian sigma 2.3..4 px, motion 12..22 px).
STRONG_BLUR: tuple[float, float] = (0.55, 1.0)

#: Level-centre severities of the evaluation set (one per severity level 1..5).
EVAL_SEVERITIES: tuple[float, ...] = (0.1, 0.3, 0.5, 0.7, 0.9)


@dataclass(frozen=True)
class Settings:
    """What to build; part of the corpus identity (written to summary.json)."""

    size: int = 224
    crops_per_photo: int = 32
    val_crops_per_photo: int = 12
    variants_per_crop: int = 8
    #: Chance that a crop's first variant is its pristine version.
    pristine_share: float = 0.8
    #: Share of distorted variants that combine two distortions of different families.
    pair_share: float = 0.4
    #: Upper bound of each severity in a pair (two strong distortions always read as "bad").
    pair_max_severity: float = 0.75
    seed: int = 0
    types: tuple[str, ...] = tuple(default_types())
    min_detail: float = MIN_DETAIL
    eval_crops_per_photo: int = 2
    #: Share of training crops given film grain before anything else: grain is content, so the grainy
    #: crop is the pristine reference of that crop's variants (:func:`.distortions.film_grain`).
    grain_share: float = 0.0
    #: Share of distorted variants replaced by one strong blur (a blur type at severity 0.55..1).
    strong_blur_share: float = 0.0
    #: Share of questions worded from :mod:`.phrasing` (:class:`.questions.QuestionWriter`).
    paraphrase_share: float = 0.0
    #: Cap the pseudo-MOS of blurred (and down-up resampled) images of detailed crops by the blur's
    #: strength (:func:`.quality.blur_ceiling`), so that a strong blur reads as bad whatever the scene.
    blur_ceiling: bool = False
    #: Share of training crops taken where they fall (one random box, no detail floor) instead of the
    #: most detailed of several: the smooth skies and out-of-focus backgrounds a frame's window lands
    #: on, kept as good when pristine. The blur ceiling spares these crops (blur on them is invisible).
    plain_share: float = 0.0
    #: Other wordings from :mod:`.composed` (templates x parts, 2-7 options, shuffled severity scales)
    #: instead of :mod:`.phrasing`'s pools, and three yes/no questions per image instead of two.
    composed_wordings: bool = False
    #: More composed main-problem multiple-choice questions per image (:class:`.questions.QuestionWriter`).
    extra_mcq: int = 0
    #: With composed wordings, :mod:`.composed`'s broad lexicon too (v5: more words per defect, whole
    #: statements asked about, more description requests).
    broad_wordings: bool = False
    #: With the broad lexicon, negated wordings too and half the yes/no questions asked the other way
    #: round (v6: "Is the photo not sharp?", "Is the photo free of grain?").
    negated_wordings: bool = False
    #: Share of images that get a description record (:class:`.questions.QuestionWriter`).
    describe_share: float = DEFAULT_DESCRIBE_SHARE
    #: Standard deviation (MOS units) of the rating spread that each image's Q-Align level is drawn
    #: from (:func:`.quality.sample_level`); 0 writes the level of the pseudo-MOS itself.
    soft_levels: float = 0.0
    #: Share of composed yes/no questions asked twice in one record, the second time the other way
    #: round with the same word ("blurry?" / "free of blur?"; :func:`.composed.polarity_twins`).
    polarity_twins: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["types"] = list(self.types)
        # Levers added after the first corpora: left out when off, so those corpora keep their identity.
        for name in ("grain_share", "strong_blur_share", "paraphrase_share", "blur_ceiling", "plain_share",
                     "composed_wordings", "extra_mcq", "broad_wordings", "negated_wordings", "soft_levels", "polarity_twins"):
            if not d[name]:
                del d[name]
        if d["describe_share"] == DEFAULT_DESCRIBE_SHARE:
            del d["describe_share"]
        return d


@dataclass(frozen=True)
class Task:
    """A unit of work for one worker: some crops of one photo."""

    photo: dict[str, Any]
    photo_path: str
    split: str
    crops: tuple[int, ...]
    eval: bool = False
    done: frozenset[str] = field(default_factory=frozenset)


def photo_key(photo: Photo | dict[str, Any]) -> int:
    sha = photo.sha256 if isinstance(photo, Photo) else photo["sha256"]
    return int(sha[:12], 16)


def item_id(photo_id: str, crop: int, variant: int) -> str:
    return f"{photo_id}-c{crop:03d}-v{variant:02d}"


def eval_id(photo_id: str, crop: int, dtype: str | None, level: int | None) -> str:
    return f"{photo_id}-e{crop:02d}-pristine" if dtype is None else f"{photo_id}-e{crop:02d}-{dtype}-s{level}"


def split_dir(split: str) -> str:
    return "val" if split == "validation" else split


def image_path(split: str, photo_id: str, iid: str, eval_set: bool = False) -> str:
    """Path of an image relative to the corpus folder."""
    if eval_set:
        # Severity ladders of training photos (corpus.ladders) live apart from the evaluation set's.
        return f"{'eval' if split == 'validation' else 'ladders'}/images/{photo_id}/{iid}.png"
    return f"images/{split_dir(split)}/{photo_id}/{iid}.png"


def plan_variants(settings: Settings, key: int, crop: int) -> list[list[tuple[str, float]]]:
    """The distortion steps of each variant of one crop (an empty list is the pristine crop)."""
    rng = np.random.default_rng([settings.seed, key, crop, 1])
    types = list(settings.types)
    plans: list[list[tuple[str, float]]] = []
    for v in range(settings.variants_per_crop):
        if v == 0 and rng.random() < settings.pristine_share:
            plans.append([])
            continue
        blurs = [t for t in BLUR_TYPES if t in types]
        # Drawn only when asked for, so corpora built without it keep their plans.
        if settings.strong_blur_share > 0 and blurs and rng.random() < settings.strong_blur_share:
            plans.append([(str(rng.choice(blurs)), float(rng.uniform(*STRONG_BLUR)))])
            continue
        if rng.random() < settings.pair_share:
            first = str(rng.choice(types))
            others = [t for t in types if DISTORTIONS[t].family != DISTORTIONS[first].family]
            second = str(rng.choice(others)) if others else first
            steps = [(first, float(rng.uniform(0.0, settings.pair_max_severity))),
                     (second, float(rng.uniform(0.0, settings.pair_max_severity)))]
            if second == first:
                steps = steps[:1]
        else:
            steps = [(str(rng.choice(types)), float(rng.uniform(0.0, 1.0)))]
        plans.append(steps)
    return plans


def _step_rng(settings: Settings, key: int, crop: int, variant: int, step: int) -> np.random.Generator:
    return np.random.default_rng([settings.seed, key, crop, 2, variant, step])


def render(pristine: np.ndarray, steps: list[tuple[str, float]], rngs: list[np.random.Generator]
           ) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Apply the steps in pipeline order (optics, exposure, noise, ..., compression last)."""
    order = sorted(range(len(steps)), key=lambda i: DISTORTIONS[steps[i][0]].stage)
    img = pristine
    params: list[dict[str, Any]] = [{} for _ in steps]
    for i in order:
        img, params[i] = apply(steps[i][0], img, steps[i][1], rngs[i])
    return img, params


def make_image(pristine: np.ndarray, steps: list[tuple[str, float]], rng_factory, ceiling: bool = False
               ) -> tuple[np.ndarray, list[Applied], dict[str, float]]:
    """Distort a crop and measure it; each step's stand-alone impact is measured too.

    ``rng_factory(i)`` returns a fresh generator for step ``i``, so the stand-alone version of a
    step draws the same random parts (blur angle, noise field) as in the combination. With
    ``ceiling``, blur-like steps cap the pseudo-MOS (:func:`.quality.blur_ceiling`; two of them add
    as variances do); the measures keep the uncapped value as ``measured_mos``.
    """
    img, params = render(pristine, steps, [rng_factory(i) for i in range(len(steps))])
    m = measure(pristine, img)
    sigmas = [equivalent_blur_sigma(dtype, params[i]) if ceiling else None for i, (dtype, _) in enumerate(steps)]
    applied: list[Applied] = []
    for i, (dtype, sev) in enumerate(steps):
        if len(steps) == 1:
            alone = m.pseudo_mos
        else:
            alone_img, _ = apply(dtype, pristine, sev, rng_factory(i))
            alone = measure(pristine, alone_img).pseudo_mos
        if sigmas[i] is not None:
            alone = min(alone, blur_ceiling(sigmas[i]))
        applied.append(Applied(dtype, sev, params[i], alone))
    measures = m.to_dict()
    blurs = [s for s in sigmas if s is not None]
    if blurs:
        measures["measured_mos"] = measures["pseudo_mos"]
        combined = float(np.sqrt(sum(s * s for s in blurs)))
        measures["pseudo_mos"] = round(min(m.pseudo_mos, blur_ceiling(combined)), 5)
    return img, applied, measures


def _write_png(path: Path, img: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part.png")
    if not cv2.imwrite(str(tmp), cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 3]):
        raise OSError(f"could not write {tmp}")
    os.replace(tmp, path)


def _record(iid: str, rel: str, photo: dict[str, Any], split: str, crop: Crop, crop_index: int, variant: int | None,
            applied: list[Applied], measures: dict[str, float], content: dict[str, Any]) -> tuple[dict, dict]:
    mos = measures["pseudo_mos"] if applied else 5.0
    level = level_of(mos)
    facts = build_facts(applied, level, content)
    meta = {
        "id": iid,
        "image": rel,
        "photo": photo["id"],
        "source": photo["source"],
        "split": split,
        "crop": {**crop.to_dict(), "index": crop_index},
        "variant": variant,
        "distortions": facts["distortions"],
        "pseudo_mos": round(mos, 4),
        "level": level,
        "measures": measures,
        "facts": {k: v for k, v in facts.items() if k != "distortions"},
    }
    fb = make_feedback(iid, rel, facts)
    return meta, fb.to_dict()


def run_task(settings: Settings, out: str, task: Task) -> list[tuple[dict, dict]]:
    """Produce the images of one task; returns (metadata, feedback) dicts of the new items."""
    cv2.setNumThreads(1)
    photo = task.photo
    key = photo_key(photo)
    root = Path(out)
    wanted: list[tuple[int, list[tuple[int | None, str, list[tuple[str, float]]]]]] = []
    for c in task.crops:
        if task.eval:
            entries: list[tuple[int | None, str, list[tuple[str, float]]]] = [
                (None, eval_id(photo["id"], c, None, None), [])]
            for dtype in settings.types:
                for lv, sev in enumerate(EVAL_SEVERITIES, start=1):
                    entries.append((None, eval_id(photo["id"], c, dtype, lv), [(dtype, sev)]))
        else:
            plans = plan_variants(settings, key, c)
            entries = [(v, item_id(photo["id"], c, v), steps) for v, steps in enumerate(plans)]
        todo = [e for e in entries if e[1] not in task.done]
        if todo:
            wanted.append((c, todo))
    if not wanted:
        return []
    scaled = ScaledPhoto(load_rgb(task.photo_path))
    results: list[tuple[dict, dict]] = []
    for c, entries in wanted:
        # Eval crops draw from their own stream so they do not repeat the training crops.
        crop_rng = np.random.default_rng([settings.seed, key, c, 9 if task.eval else 0])
        plain = (not task.eval and settings.plain_share > 0
                 and np.random.default_rng([settings.seed, key, c, 5]).random() < settings.plain_share)
        # A plain crop is where the box falls: one candidate, no detail floor.
        floor, candidates = (0.0, 1) if plain else (settings.min_detail, CANDIDATES)
        crop, pristine = choose_crop(scaled, settings.size, crop_rng, floor, candidates=candidates,
                                     max_factor=float(photo.get("max_scale", 1.0)))
        # Blur cannot be seen on a crop with too little detail: its measured pseudo-MOS stands.
        ceiling = settings.blur_ceiling and crop.detail >= settings.min_detail
        content = content_stats(pristine)
        if not task.eval and settings.grain_share > 0:
            grain_rng = np.random.default_rng([settings.seed, key, c, 7])
            if grain_rng.random() < settings.grain_share:
                pristine, grain = film_grain(pristine, float(grain_rng.uniform(0.0, 1.0)), grain_rng)
                content = content_stats(pristine) | {"grain": grain}
        for variant, iid, steps in entries:
            if task.eval:
                t_index = list(DISTORTIONS).index(steps[0][0]) if steps else -1

                def factory(i: int, t_index: int = t_index, c: int = c) -> np.random.Generator:
                    # Same random parts at every severity of a (crop, type) group.
                    return np.random.default_rng([settings.seed, key, c, 99, t_index, i])
            else:
                def factory(i: int, variant: int | None = variant, c: int = c) -> np.random.Generator:
                    return _step_rng(settings, key, c, variant or 0, i)
            if steps:
                img, applied, measures = make_image(pristine, steps, factory, ceiling)
            else:
                img, applied, measures = pristine, [], measure(pristine, pristine).to_dict()
            rel = image_path(task.split, photo["id"], iid, task.eval)
            _write_png(root / rel, img)
            meta, fb = _record(iid, rel, photo, task.split, crop, c, variant, applied, measures, content)
            if task.eval:
                meta["eval"] = {
                    "group": f"{photo['id']}:{c}:{steps[0][0] if steps else 'pristine'}",
                    "crop_group": f"{photo['id']}:{c}",
                    "type": steps[0][0] if steps else None,
                    "severity_level": EVAL_SEVERITIES.index(steps[0][1]) + 1 if steps else 0,
                    "checks": {"mention": dict(meta["facts"]["kinds"]),
                               "absent": clearly_absent(meta["facts"] | {"distortions": meta["distortions"]}),
                               "level": meta["level"]},
                }
            results.append((meta, fb))
    return results

"""Issue 16's corpus levers: procedural content, film grain as content, strong blur, varied phrasing,
and the held-out paraphrase set that no training wording may touch."""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from qplug_training.corpus import build, heldout, phrasing, procedural  # noqa: E402
from qplug_training.corpus.distortions import DISTORTIONS, KINDS, film_grain  # noqa: E402
from qplug_training.corpus.facts import Applied, build_facts, clearly_absent  # noqa: E402
from qplug_training.corpus.feedback import make_feedback  # noqa: E402
from qplug_training.corpus.generate import BLUR_TYPES, STRONG_BLUR, Settings, plan_variants  # noqa: E402
from qplug_training.corpus.photos import load_manifest, write_manifest  # noqa: E402
from qplug_training.corpus.quality import level_of, measure  # noqa: E402
from qplug_training.corpus.questions import (_MCQ_QUESTIONS, _SEVERITY_QUESTIONS, _WHAT_QUESTIONS,  # noqa: E402
                                             _YN_QUESTIONS, QALIGN_QUESTION, QuestionWriter, write_all)
from qplug_training.data.converters import yes_no_answer  # noqa: E402
from qplug_training.data.converters import rule  # noqa: E402
from qplug_vlm.prompts import DESCRIBE_PROMPT  # noqa: E402


# --------------------------------------------------------------------------- procedural content


@pytest.mark.parametrize("kind", list(procedural.KINDS))
def test_procedural_images_are_deterministic_detailed_and_differ(kind: str) -> None:
    size = (160, 200)
    a = procedural.make(kind, 0, seed=1, size=size)
    assert a.shape == (160, 200, 3) and a.dtype == np.uint8
    assert np.array_equal(a, procedural.make(kind, 0, seed=1, size=size))
    assert not np.array_equal(a, procedural.make(kind, 1, seed=1, size=size))
    assert a.std() > 5.0  # not a flat field


def test_dead_leaves_radii_follow_a_power_law() -> None:
    img = procedural.make("dead_leaves", 3, size=(256, 256))
    # Many distinct colours (many leaves), and some large uniform areas (big leaves).
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 200


def test_procedural_images_join_a_manifest_idempotently(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    write_manifest(src, [])
    made = procedural.add_to_manifest(src, 7, size=(240, 260))
    assert len(made) == 7 and {p.source for p in made} == {"procedural"}
    assert Counter(p.split for p in made)["validation"] >= 1
    photos, root = load_manifest(src)
    assert len(photos) == 7 and all((root / p.path).is_file() for p in photos)
    first = (src / "manifest.json").read_text()
    procedural.add_to_manifest(src, 7, size=(240, 260))
    assert (src / "manifest.json").read_text() == first


# --------------------------------------------------------------------------- grain, strong blur


def _textured(seed: int = 0, size: int = 96) -> np.ndarray:
    return procedural.make("shapes", seed, size=(size, size))


def test_film_grain_is_content_and_compression_of_grain_is_worse() -> None:
    rng = np.random.default_rng(0)
    clean = _textured()
    grainy, params = film_grain(clean, 0.8, rng)
    assert 4.0 < params["sigma"] < 6.0 and 2.0 < float(np.abs(grainy.astype(int) - clean).mean()) < 8.0
    # Against the grainy reference, heavy compression that smears the grain scores lower than light.
    light = measure(grainy, DISTORTIONS["jpeg"](grainy, 0.1, rng)[0]).pseudo_mos
    heavy = measure(grainy, DISTORTIONS["jpeg"](grainy, 0.8, rng)[0]).pseudo_mos
    assert heavy < light


def test_grainy_sources_are_never_called_noise_free() -> None:
    facts = build_facts([], "excellent", {"detail": "rich", "colour": "moderate", "grain": {"sigma": 4.0}})
    assert "noise" not in clearly_absent(facts)
    assert facts["attributes"].get("noise") is None
    plain = build_facts([], "excellent", {"detail": "rich", "colour": "moderate"})
    assert "noise" in clearly_absent(plain) and plain["attributes"]["noise"] == "clean"
    text = make_feedback("x", "x.png", facts).text
    assert "grain" in text and "excellent" in text


def test_strong_blur_share_plans_strong_blurs_and_is_off_by_default() -> None:
    base = Settings(variants_per_crop=8)
    plans = [plan_variants(base, 123, c) for c in range(50)]
    assert plans == [plan_variants(Settings(variants_per_crop=8), 123, c) for c in range(50)]
    assert "strong_blur_share" not in base.to_dict() and "grain_share" not in base.to_dict()
    strong = Settings(variants_per_crop=8, strong_blur_share=0.5)
    steps = [s for c in range(50) for plan in plan_variants(strong, 123, c) for s in plan]
    blurs = [sev for t, sev in steps if t in BLUR_TYPES and len(steps)]
    assert sum(1 for sev in blurs if sev >= STRONG_BLUR[0]) > 0.3 * len(steps)


# --------------------------------------------------------------------------- blur ceiling, plain crops


def _soft_detail(size: int = 224) -> np.ndarray:
    """A smooth gradient with soft, low-contrast texture (detail above the corpus floor of 30): the
    kind of crop where measured quality forgives a strong blur, because few of its edges are fine."""
    import cv2

    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    texture = cv2.GaussianBlur(np.random.default_rng(0).normal(0, 1, (size, size)).astype(np.float32), (0, 0), 4)
    texture *= 16 / texture.std()
    img = np.stack([200 - 0.3 * yy + texture, 140 + 0.1 * xx + texture, 60 + texture], -1)
    return img.clip(0, 255).astype(np.uint8)


def test_blur_ceiling_falls_with_sigma_and_spares_sharp_images() -> None:
    from qplug_training.corpus.quality import blur_ceiling

    values = [blur_ceiling(s) for s in (0.3, 0.7, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 12.0)]
    assert values[:2] == [5.0, 5.0] and all(a > b for a, b in zip(values[1:-1], values[2:-1]))
    assert values[5] < 2.5 and values[-1] == values[-2]  # issue 16: sigma >= 3 px reads below 2.5


def test_blur_ceiling_labels_a_strong_blur_of_a_thin_subject_bad() -> None:
    from qplug_training.corpus.distortions import equivalent_blur_sigma
    from qplug_training.corpus.generate import make_image

    crop = _soft_detail()
    steps = [("gaussian_blur", 0.8)]  # sigma ~ 3.2 px

    def factory(i: int) -> np.random.Generator:
        return np.random.default_rng(i)

    img, applied, measured = make_image(crop, steps, factory)
    _, capped_applied, capped = make_image(crop, steps, factory, ceiling=True)
    assert measured["pseudo_mos"] > 3.0  # what the full-reference measures alone say
    assert capped["pseudo_mos"] < 2.5 and capped["measured_mos"] == measured["pseudo_mos"]
    assert capped_applied[0].alone_mos == capped["pseudo_mos"]
    assert equivalent_blur_sigma("gaussian_blur", applied[0].params) == pytest.approx(3.2, abs=0.1)
    # Steps that are not blur-like keep their measured value.
    _, _, noisy = make_image(crop, [("gaussian_noise", 0.5)], factory, ceiling=True)
    assert "measured_mos" not in noisy
    # A down-up resampling by 1/7 loses what a sigma of 2.8 would; by 1/1.4, nothing the ceiling sees.
    assert equivalent_blur_sigma("downup", {"factor": 1 / 7}) == pytest.approx(2.8)
    assert equivalent_blur_sigma("jpeg", {"quality": 20}) is None


def _half_smooth_photo_dir(root: Path) -> Path:
    """One training photo, 1200x700: a smooth sky on the left two thirds, busy detail on the right."""
    import cv2

    from qplug_training.corpus.photos import Photo, sha256_file

    src = root / "src"
    (src / "photos").mkdir(parents=True)
    img = _soft_detail(700)[:, :, :].repeat(2, axis=1)[:, :1200].copy()
    img = cv2.GaussianBlur(img, (0, 0), 12)
    busy = np.random.default_rng(1).integers(0, 255, (700, 400, 3), dtype=np.uint8)
    img[:, 800:] = cv2.GaussianBlur(busy, (0, 0), 1.2)
    path = src / "photos" / "sky.png"
    cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    write_manifest(src, [Photo(id="sky", path="photos/sky.png", source="synthetic", package="none", licence="CC0",
                               sha256=sha256_file(path), width=1200, height=700, bytes=path.stat().st_size,
                               split="train")])
    return src


def test_plain_crops_reach_smooth_areas_and_the_blur_ceiling_spares_them(tmp_path: Path) -> None:
    from qplug_training.corpus.quality import blur_ceiling

    assert "blur_ceiling" not in Settings().to_dict() and "plain_share" not in Settings().to_dict()
    src = _half_smooth_photo_dir(tmp_path)
    common = ["--photos", str(src), "--crops-per-photo", "12", "--variants-per-crop", "3", "--workers", "1",
              "--types", "gaussian_blur,gaussian_noise", "--pristine-share", "0"]

    def built(name: str, *extra: str) -> list[dict]:
        assert build.main([*common, "--out", str(tmp_path / name), *extra]) == 0
        return [json.loads(line) for line in (tmp_path / name / "metadata.jsonl").read_text().splitlines()]

    detailed = built("detailed", "--blur-ceiling")
    assert min(m["crop"]["detail"] for m in detailed) >= 30  # the most detailed box: always the busy third
    plain = built("plain", "--blur-ceiling", "--plain-share", "1")
    smooth = [m for m in plain if m["crop"]["detail"] < 30]
    assert smooth and len(smooth) < len(plain)
    for m in plain:
        blur = [d for d in m["distortions"] if d["type"] == "gaussian_blur"]
        if not blur:
            assert "measured_mos" not in m["measures"]
        elif m["crop"]["detail"] < 30:  # nothing to blur: what the measures say stands
            assert "measured_mos" not in m["measures"]
        else:
            assert m["pseudo_mos"] <= blur_ceiling(blur[0]["params"]["sigma"]) + 1e-6
            assert m["measures"]["measured_mos"] >= m["pseudo_mos"]


# --------------------------------------------------------------------------- phrasing


def _random_facts(rng: random.Random) -> dict:
    applied = []
    seen: set[str] = set()
    for t in rng.sample(list(DISTORTIONS), rng.choice((0, 1, 1, 2))):
        if DISTORTIONS[t].family in seen:
            continue
        seen.add(DISTORTIONS[t].family)
        applied.append(Applied(t, rng.random(), {"hue": "green"} if t == "colour_cast" else {}, rng.uniform(1, 5)))
    mos = min([a.alone_mos for a in applied] + [5.0])
    content = {"brightness": "medium", "colour": "moderate", "detail": "rich", "flat_areas": False}
    return build_facts(applied, level_of(mos), content)


def _records(paraphrase_share: float, n: int = 400) -> tuple[list, QuestionWriter]:
    rng = random.Random(4)
    pairs = []
    for i in range(n):
        facts = _random_facts(rng)
        pairs.append((make_feedback(f"img{i}", f"images/{i}.png", facts), facts))
    writer = QuestionWriter(seed=0, paraphrase_share=paraphrase_share)
    return write_all(pairs, writer), writer


def test_paraphrases_vary_wordings_options_and_stay_consistent() -> None:
    records, writer = _records(0.6)
    yn = [r for r in records if r.task == "yes_no" and r.meta.get("converter") == "corpus"]
    asked = {r.turns[0].value.replace("<image>", "").strip() for r in yn}
    assert len(asked & phrasing.training_wordings()) > 40
    for r in yn:
        spoken = yes_no_answer(r)
        question = r.turns[0].value.replace("<image>", "").strip()
        inverted = any(question in qs for qs in phrasing.YES_NO_INVERTED.values())
        present = r.meta["answer"] == "yes"
        assert spoken == ("no" if present else "yes") if inverted else spoken == ("yes" if present else "no")
    answers = Counter(yes_no_answer(r) for r in records if r.task == "yes_no")
    assert abs(answers["yes"] - answers["no"]) <= 1
    mcq = [r for r in records if r.id.endswith("/mcq")]
    sizes = Counter(len(r.meta["options"]) for r in mcq)
    assert {2, 3, 4, 5, 6} <= set(sizes)
    not_listed = [r for r in mcq if any(o in phrasing.NOT_LISTED_OPTIONS for o in r.meta["options"])]
    assert not_listed
    for r in not_listed:
        correct = r.meta["options"]["ABCDEF".index(r.meta["answer"])]
        assert correct in phrasing.NOT_LISTED_OPTIONS
    # Answer letters balanced within each option count (a global balance put every 6-option answer on F).
    for size in {2, 3, 4, 5, 6}:
        letters = Counter(r.meta["answer"] for r in mcq if len(r.meta["options"]) == size and r.meta.get("varied"))
        counts = [letters["ABCDEF"[i]] for i in range(size)]
        assert max(counts) - min(counts) <= 1, (size, letters)
    assert all(len(r.meta["options"]) >= 2 for r in mcq)
    synonyms = {o for r in mcq for o in r.meta["options"]}
    assert {"too dark", "dim", "underexposure"} <= synonyms
    # The Q-Align question is never paraphrased: qplug's scorer reads exactly that prompt.
    assert all(r.turns[0].value.endswith(QALIGN_QUESTION) for r in records if r.task == "qalign")


def test_no_paraphrase_keeps_the_original_records() -> None:
    records, _ = _records(0.0, 60)
    words = {heldout.normalise(r.turns[0].value.replace("<image>", "").strip().split("\n")[0]) for r in records}
    only_new = {heldout.normalise(q) for q in phrasing.training_wordings()} - _every_training_wording(False)
    assert only_new and not words & only_new


# --------------------------------------------------------------------------- held-out set


def _every_training_wording(with_phrasing: bool = True) -> set[str]:
    pools: set[str] = set(phrasing.training_wordings()) if with_phrasing else set()
    pools |= set(_MCQ_QUESTIONS) | set(_WHAT_QUESTIONS) | set(_SEVERITY_QUESTIONS.values())
    pools |= {q for qs in _YN_QUESTIONS.values() for q in qs}
    pools |= {QALIGN_QUESTION, DESCRIBE_PROMPT.format(medium="image"), DESCRIBE_PROMPT.format(medium="video")}
    for name in ("_HOW", "_ASK"):
        for qs in getattr(rule, name).values():
            pools |= set(qs)
    for name in ("_LEVEL_HOW", "_LEVEL_ASK", "_DISTORTION_WHAT", "_WHY", "_OVERVIEW"):
        pools |= set(getattr(rule, name))
    from qplug_training.data.converters.base import PATHWAY_QUESTIONS

    pools |= set(PATHWAY_QUESTIONS)
    return {heldout.normalise(q) for q in pools}


def test_heldout_set_is_large_enough_and_never_trained_on() -> None:
    questions = heldout.all_questions()
    assert len(questions) >= 60 and len(set(questions)) == len(questions)
    trained = _every_training_wording()
    assert len(trained) > 100
    leaked = [q for q in questions if heldout.normalise(q) in trained]
    assert not leaked, leaked
    assert set(heldout.YES_NO) == set(KINDS)
    assert set(heldout.MCQ_OPTIONS) <= set(KINDS)


def test_built_corpus_has_no_heldout_wording(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    write_manifest(src, [])
    procedural.add_to_manifest(src, 6, size=(240, 260))
    out = tmp_path / "corpus"
    args = ["--photos", str(src), "--out", str(out), "--crops-per-photo", "2", "--val-crops-per-photo", "1",
            "--variants-per-crop", "3", "--workers", "1", "--types", "gaussian_blur,gaussian_noise,jpeg,underexposure",
            "--grain-share", "0.5", "--strong-blur-share", "0.3", "--paraphrase-share", "0.7"]
    assert build.main(args) == 0
    metas = [json.loads(line) for line in (out / "metadata.jsonl").read_text().splitlines()]
    assert any(m["facts"]["content"].get("grain") for m in metas)
    assert all(m["level"] == "excellent" for m in metas if not m["distortions"])
    held = {heldout.normalise(q) for q in heldout.all_questions()}
    for name in ("train.json", "val.json"):
        for record in json.loads((out / name).read_text()):
            for turn in record["conversations"]:
                if turn["from"] == "human":
                    stem = turn["value"].replace("<image>", "").strip().split("\n")[0]
                    assert heldout.normalise(stem) not in held, stem


def test_fades_are_opt_in_nearly_uniform_and_read_as_bad() -> None:
    from qplug_training.corpus.distortions import OPT_IN, available, default_types

    assert OPT_IN <= set(DISTORTIONS) and not OPT_IN & set(default_types()) and not OPT_IN & set(available())
    assert Settings().types == tuple(default_types())
    crop = _soft_detail()
    for name, kind in (("fade_black", "underexposure"), ("fade_flat", "low_contrast")):
        assert DISTORTIONS[name].kind == kind
        out, params = DISTORTIONS[name](crop, 0.6, np.random.default_rng(2))
        assert out.std(axis=(0, 1)).max() < 0.15 * crop.std(axis=(0, 1)).max()
        if name == "fade_black":
            assert out.mean() < 40
        assert measure(crop, out).pseudo_mos < 2.0

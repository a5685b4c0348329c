"""Composed wordings (corpus v3): many wordings per question, consistent answers, never a held-out
wording; and a questions-only corpus built on another corpus's images (``--images-from``)."""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402

from qplug_training.corpus import build, composed, heldout, procedural  # noqa: E402
from qplug_training.corpus.distortions import DISTORTIONS, KINDS  # noqa: E402
from qplug_training.corpus.facts import Applied, build_facts  # noqa: E402
from qplug_training.corpus.feedback import make_feedback  # noqa: E402
from qplug_training.corpus.photos import write_manifest  # noqa: E402
from qplug_training.corpus.quality import level_of  # noqa: E402
from qplug_training.corpus.questions import SEVERITY_OPTIONS, QuestionWriter, write_all  # noqa: E402
from qplug_training.data.converters import yes_no_answer  # noqa: E402
from qplug_vlm.prompts import LETTERS  # noqa: E402


def _question(record) -> str:
    return record.turns[0].value.replace("<image>", "").strip()


def _records(n: int = 500, composed_wordings: bool = True, extra_mcq: int = 0, broad_wordings: bool = False,
             describe_share: float = 0.25, negated_wordings: bool = False, polarity_twins: float = 0.0) -> list:
    rng = random.Random(7)
    pairs = []
    for i in range(n):
        applied, families = [], set()
        for t in rng.sample(list(DISTORTIONS), rng.choice((0, 1, 1, 2))):
            if DISTORTIONS[t].family not in families:
                families.add(DISTORTIONS[t].family)
                applied.append(Applied(t, rng.random(), {"hue": "green"} if t == "colour_cast" else {},
                                       rng.uniform(1, 5)))
        mos = min([a.alone_mos for a in applied] + [5.0])
        facts = build_facts(applied, level_of(mos), {"brightness": "medium", "colour": "moderate", "detail": "rich",
                                                     "flat_areas": False})
        pairs.append((make_feedback(f"img{i}", f"images/{i}.png", facts), facts))
    writer = QuestionWriter(seed=0, paraphrase_share=0.8, composed_wordings=composed_wordings, yes_no_per_image=3,
                            extra_mcq=extra_mcq, broad_wordings=broad_wordings, describe_share=describe_share,
                            negated_wordings=negated_wordings, polarity_twins=polarity_twins)
    return write_all(pairs, writer)


def test_no_composed_wording_is_a_heldout_one_and_pools_are_large() -> None:
    every = {heldout.normalise(q) for q in composed.all_wordings()}
    leaked = [q for q in heldout.all_questions() if heldout.normalise(q) in every]
    assert not leaked, leaked
    for kind in KINDS:
        assert len(composed.yes_no_wordings(kind)) > 10_000
        assert len(composed.yes_no_wordings(kind, fine=True)) > 1_000
        assert not set(composed.yes_no_wordings(kind)) & set(composed.yes_no_wordings(kind, fine=True))
    assert len(composed.mcq_stems()) > 10_000 and len(composed.describe_prompts()) > 1_000


def test_composed_yes_no_answers_follow_the_image_whichever_way_they_are_asked() -> None:
    records = [r for r in _records() if r.task == "yes_no" and r.meta.get("converter") == "corpus"]
    fine_pool = {q for k in KINDS for q in composed.yes_no_wordings(k, fine=True)}
    defect_pool = {q for k in KINDS for q in composed.yes_no_wordings(k)}
    asked_fine = 0
    for r in records:
        present = r.meta["answer"] == "yes"
        question = _question(r)
        if question in fine_pool:
            asked_fine += 1
            assert question in composed.yes_no_wordings(r.meta["kind"], fine=True)
            assert yes_no_answer(r) == ("no" if present else "yes") == r.meta["said"]
        else:
            if question in defect_pool:
                assert question in composed.yes_no_wordings(r.meta["kind"])
            assert yes_no_answer(r) == ("yes" if present else "no") == r.meta["said"]
    assert 0.1 * len(records) < asked_fine < 0.4 * len(records)
    assert len({_question(r) for r in records}) > 0.8 * len(records)  # nearly every wording new


def test_composed_multiple_choice_points_at_the_right_option_with_balanced_letters() -> None:
    records = [r for r in _records() if r.id.endswith("/mcq") and r.meta.get("varied")]
    assert len(records) > 200
    sizes: Counter[int] = Counter()
    last_is_none = 0
    by_size: dict[int, Counter[str]] = {}
    nothing = set(composed.NOTHING_OPTIONS) | set(composed.NOT_LISTED_OPTIONS)
    for r in records:
        options, letter, kind = r.meta["options"], r.meta["answer"], r.meta["kind"]
        sizes[len(options)] += 1
        by_size.setdefault(len(options), Counter())[letter] += 1
        chosen = options[LETTERS.index(letter)]
        assert _question(r).split("\n")[0] in composed.mcq_stems()
        if kind == "none":
            assert chosen in nothing
        elif chosen not in nothing:  # otherwise the real problem was left out on purpose
            assert chosen in composed.option_names(kind)
        else:
            assert not any(o in composed.option_names(kind) for o in options)
        wrong = [o for o in options if o != chosen]
        assert not any(o in nothing for o in wrong) or kind != "none"
        last_is_none += options[-1] in nothing
    assert max(sizes) >= 7 and sizes[6] + sizes[7] > 0.25 * len(records)
    assert 0.15 * len(records) < last_is_none
    for size, letters in by_size.items():
        if sum(letters.values()) >= 4 * size:
            first_letters = [letters[LETTERS[i]] for i in range(size - 1)]
            assert max(first_letters) - min(first_letters) <= 2, (size, letters)


def test_composed_severity_scales_are_shuffled_and_answer_the_right_step() -> None:
    records = [r for r in _records() if r.id.endswith("/sev")]
    orders = Counter()
    for r in records:
        options = r.meta["options"]
        scale = next(s for s in composed.SEVERITY_SCALES + (SEVERITY_OPTIONS,) if sorted(s) == sorted(options))
        orders[tuple(scale.index(o) for o in options)] += 1
        assert r.meta["answer"] in LETTERS[:4]
    assert len(orders) > 10
    assert orders[(0, 1, 2, 3)] < 0.6 * len(records)


def test_extra_multiple_choice_questions_move_the_answer_letter() -> None:
    more = _records(120, extra_mcq=3)
    extra = [r for r in more if r.id.rsplit("/", 1)[1] in ("mcq1", "mcq2", "mcq3")]
    assert len(extra) == 3 * 120
    moved = 0
    for image in range(120):
        asked = [r for r in more if r.id.startswith(f"img{image}/mcq")]
        assert len(asked) == 4
        letters = {r.meta["answer"] for r in asked}
        moved += len(letters) > 1
        for r in asked:
            chosen = r.meta["options"][LETTERS.index(r.meta["answer"])]
            if r.meta["kind"] != "none" and chosen in composed.option_names(r.meta["kind"]):
                continue
            assert chosen in composed.NOTHING_OPTIONS + composed.NOT_LISTED_OPTIONS + ("no obvious distortion",)
    assert moved > 0.8 * 120


def test_extra_mcq_needs_composed_wordings(tmp_path: Path, capsys) -> None:
    assert _tiny_corpus(tmp_path, tmp_path / "c", "--extra-mcq", "2") == build.EXIT_ERROR
    assert "--extra-mcq" in capsys.readouterr().err


def test_without_composed_wordings_the_writer_keeps_its_own_pools() -> None:
    pools = composed.all_wordings()

    def composed_asked(records: list) -> set[str]:  # distinct questions that a composed pool holds
        return {q for r in records if r.meta.get("converter") == "corpus"
                and (q := _question(r).split("\n")[0]) in pools}

    # A few plain wordings ("Is this image blurry?") are also composed ones, hence not none.
    assert len(composed_asked(_records(200, composed_wordings=False))) < 100
    assert len(composed_asked(_records(200))) > 300


def test_broad_wordings_add_words_and_statements_and_answers_still_follow_the_image() -> None:
    for kind in KINDS:
        narrow, broad = set(composed.yes_no_wordings(kind)), set(composed.yes_no_wordings(kind, broad=True))
        fine = set(composed.yes_no_wordings(kind, fine=True, broad=True))
        assert narrow < broad and len(broad) > 2 * len(narrow) and not broad & fine
    assert set(composed.describe_prompts()) < set(composed.describe_prompts(broad=True))
    assert set(composed.mcq_stems()) < set(composed.mcq_stems(broad=True))
    records = _records(400, broad_wordings=True, describe_share=0.5)
    asked = [r for r in records if r.task == "yes_no" and r.meta.get("converter") == "corpus"]
    only_broad = 0
    for r in asked:
        kind, present, question = r.meta["kind"], r.meta["answer"] == "yes", _question(r)
        if question in composed.yes_no_wordings(kind, fine=True, broad=True):
            assert yes_no_answer(r) == ("no" if present else "yes")
        elif question in composed.yes_no_wordings(kind, broad=True):
            assert yes_no_answer(r) == ("yes" if present else "no")
            only_broad += question not in composed.yes_no_wordings(kind)
    assert only_broad > 0.3 * len(asked)  # most composed wordings now come from the broad lexicon
    described = sum(1 for r in records if r.id.endswith("/describe"))
    assert 0.4 * 400 < described < 0.6 * 400  # describe_share 0.5 (0.25 by default)


def test_negated_wordings_answer_by_what_is_said_of_the_word_not_by_the_word() -> None:
    for kind in KINDS:
        defect = set(composed.negated_yes_no_wordings(kind))
        fine = set(composed.negated_yes_no_wordings(kind, fine=True))
        assert defect and fine and not defect & fine
        assert not fine & set(composed.yes_no_wordings(kind, broad=True))  # no negated wording flips a plain one
    assert "Is the photo not sharp?" in composed.negated_yes_no_wordings("blur")
    assert "Is the photo free of grain?" in composed.negated_yes_no_wordings("noise", fine=True)
    assert "Is there no colour cast in this photo?" in composed.negated_yes_no_wordings("colour", fine=True)
    records = _records(400, broad_wordings=True, negated_wordings=True)
    asked = [r for r in records if r.task == "yes_no" and r.meta.get("converter") == "corpus"]
    negated = 0
    for r in asked:
        kind, present, question = r.meta["kind"], r.meta["answer"] == "yes", _question(r)
        if question in composed.negated_yes_no_wordings(kind, fine=True):
            negated += 1
            assert yes_no_answer(r) == ("no" if present else "yes")
        elif question in composed.negated_yes_no_wordings(kind):
            negated += 1
            assert yes_no_answer(r) == ("yes" if present else "no")
    assert 0.15 * len(asked) < negated < 0.45 * len(asked)
    assert _tiny_corpus_args_refused("--composed-wordings", "--negated-wordings")


def test_polarity_twins_share_the_word_and_flip_what_is_said_of_it() -> None:
    for kind in KINDS:
        for asks_defect in (True, False):
            assert composed.polarity_twins("What do you make of it?", kind, asks_defect) == composed.polarity_twins(
                "", kind, asks_defect)  # no word of the kind: every wording of the other side
    blurry = composed.polarity_twins("Quick check: is the photo blurry?", "blur", True)
    assert blurry and all("blurry" in q.lower() for q in blurry)
    absent = set(composed.yes_no_wordings("blur", fine=True, broad=True)) | set(
        composed.negated_yes_no_wordings("blur", fine=True))
    assert set(blurry) <= absent and "Is the photo not blurry?" in blurry
    sharp = composed.polarity_twins("Is the photo sharp?", "blur", False)
    assert "Is the photo not sharp?" in sharp and all("sharp" in q.lower() for q in sharp)
    assert not set(sharp) & absent
    # The longest word the question names decides: "motion blur", not "blur".
    assert all("motion blur" in q for q in composed.polarity_twins("Do you notice motion blur here?", "blur", True))


def test_polarity_twins_ask_one_picture_both_ways_and_answer_both_right() -> None:
    records = _records(300, broad_wordings=True, negated_wordings=True, polarity_twins=0.5)
    asked = [r for r in records if r.task == "yes_no" and r.meta.get("converter") == "corpus"]
    twins = [r for r in asked if r.meta.get("twin")]
    composed_asked = [r for r in asked if _question(r) in _any_composed(r.meta["kind"])]
    assert 0.35 * len(composed_asked) < len(twins) < 0.65 * len(composed_asked)
    firsts = Counter()
    for r in twins:
        kind, present = r.meta["kind"], r.meta["answer"] == "yes"
        assert len(r.turns) == 4 and r.turns[0].value.startswith("<image>")
        says_defect = set(composed.yes_no_wordings(kind, broad=True)) | set(composed.negated_yes_no_wordings(kind))
        sides = []
        for question, answer in ((r.turns[0].value, r.turns[1].value), (r.turns[2].value, r.turns[3].value)):
            question = question.replace("<image>", "").strip()
            asks_defect = question in says_defect
            sides.append(asks_defect)
            word = answer.split(",")[0].split(".")[0].strip().lower()
            assert word == ("yes" if present == asks_defect else "no"), (question, answer, present)
        assert sides[0] != sides[1]
        firsts[sides[0]] += 1
        first_word = r.turns[1].value.split(",")[0].split(".")[0].strip().lower()
        assert r.meta["said"] == first_word
    assert min(firsts.values()) > 0.3 * len(twins)  # either side comes first
    assert not [r for r in _records(100, broad_wordings=True, negated_wordings=True) if r.meta.get("twin")]


def _any_composed(kind: str) -> set[str]:
    return (set(composed.yes_no_wordings(kind, broad=True)) | set(composed.yes_no_wordings(kind, fine=True, broad=True))
            | set(composed.negated_yes_no_wordings(kind)) | set(composed.negated_yes_no_wordings(kind, fine=True)))


def test_polarity_twins_in_a_built_corpus_and_refused_without_composed_wordings(tmp_path: Path, capsys) -> None:
    assert _tiny_corpus(tmp_path, tmp_path / "a", "--polarity-twins", "0.5") == build.EXIT_ERROR
    assert _tiny_corpus(tmp_path, tmp_path / "b", "--composed-wordings", "--polarity-twins", "1.5") == build.EXIT_ERROR
    assert capsys.readouterr().err.count("--polarity-twins is a share between 0 and 1") == 2
    out = tmp_path / "c"
    assert _tiny_corpus(tmp_path, out, "--paraphrase-share", "1", "--composed-wordings", "--polarity-twins", "1") == 0
    assert json.loads((out / "settings.json").read_text())["polarity_twins"] == 1.0
    records = json.loads((out / "train.json").read_text())
    asked = [r for r in records if r.get("task") == "yes_no" and r.get("converter") == "corpus"]
    assert asked and all(len(r["conversations"]) == 4 for r in asked)


def _tiny_corpus_args_refused(*extra: str) -> bool:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        return _tiny_corpus(Path(tmp), Path(tmp) / "c", *extra) == build.EXIT_ERROR


def test_broad_wordings_need_composed_wordings_and_a_share_is_a_share(tmp_path: Path, capsys) -> None:
    assert _tiny_corpus(tmp_path, tmp_path / "c", "--broad-wordings") == build.EXIT_ERROR
    assert "--broad-wordings needs --composed-wordings" in capsys.readouterr().err
    assert _tiny_corpus(tmp_path, tmp_path / "d", "--describe-share", "1.5") == build.EXIT_ERROR
    assert "--describe-share" in capsys.readouterr().err


def _tiny_corpus(tmp_path: Path, out: Path, *extra: str) -> int:
    src = tmp_path / "src"
    if not src.is_dir():
        src.mkdir()
        write_manifest(src, [])
        procedural.add_to_manifest(src, 4, size=(240, 260))
    return build.main(["--photos", str(src), "--out", str(out), "--crops-per-photo", "2", "--val-crops-per-photo", "1",
                       "--variants-per-crop", "2", "--workers", "1", "--types", "gaussian_blur,jpeg", *extra])


def test_a_questions_only_corpus_takes_the_images_of_another(tmp_path: Path, capsys) -> None:
    first, second, fresh = tmp_path / "v2", tmp_path / "v3", tmp_path / "v3-fresh"
    assert _tiny_corpus(tmp_path, first, "--paraphrase-share", "0.5") == 0
    capsys.readouterr()
    assert _tiny_corpus(tmp_path, second, "--paraphrase-share", "0.6", "--composed-wordings",
                        "--images-from", str(first)) == 0
    log = capsys.readouterr().out
    metas = [json.loads(line) for line in (second / "metadata.jsonl").read_text().splitlines()]
    assert f"{len(metas)} images taken from {first}" in log and "nothing to do" in log
    assert metas and all((second / m["image"]).is_file() for m in metas)
    assert (second / "metadata.jsonl").read_text() == (first / "metadata.jsonl").read_text()
    assert json.loads((second / "settings.json").read_text())["composed_wordings"] is True
    assert (second / "train.json").read_text() != (first / "train.json").read_text()
    # The premise: question settings do not change the images, so a fresh build makes the same ones.
    assert _tiny_corpus(tmp_path, fresh, "--paraphrase-share", "0.6", "--composed-wordings") == 0
    for m in metas:
        assert (fresh / m["image"]).read_bytes() == (second / m["image"]).read_bytes()
    assert (fresh / "train.json").read_text() == (second / "train.json").read_text()


@pytest.mark.parametrize("change", [("--variants-per-crop", "3"), ("--grain-share", "0.3")])
def test_images_from_a_corpus_with_other_image_settings_is_refused(tmp_path: Path, capsys, change) -> None:
    first, other = tmp_path / "v2", tmp_path / "other"
    assert _tiny_corpus(tmp_path, first) == 0
    capsys.readouterr()
    # The later --variants-per-crop wins over the helper's.
    assert _tiny_corpus(tmp_path, other, "--images-from", str(first), *change) == build.EXIT_ERROR
    err = capsys.readouterr().err
    assert str(first) in err and change[0].removeprefix("--").replace("-", "_") in err
    assert not list(other.rglob("*.png"))

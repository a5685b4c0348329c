"""Soft rating levels (corpus v7): the Q-Align answer's level drawn from a spread of ratings around the
pseudo-MOS, every other record as it would be without them."""

from __future__ import annotations

import os
import random
from collections import Counter

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402

from qplug_training.corpus import build  # noqa: E402
from qplug_training.corpus.distortions import DISTORTIONS  # noqa: E402
from qplug_training.corpus.facts import Applied, build_facts  # noqa: E402
from qplug_training.corpus.feedback import make_feedback  # noqa: E402
from qplug_training.corpus.generate import Settings  # noqa: E402
from qplug_training.corpus.quality import LEVEL_LOWER, LEVEL_VALUE, LEVELS, level_of, level_probabilities, sample_level  # noqa: E402
from qplug_training.corpus.questions import QuestionWriter, write_all  # noqa: E402


def test_level_shares_sum_to_one_and_follow_the_mos_smoothly() -> None:
    expected = []
    for mos in (1.0, 1.9, 2.6, 3.0, 3.71, 4.05, 4.19, 4.21, 4.43, 5.0):
        shares = level_probabilities(mos, 0.4)
        assert list(shares) == list(LEVELS) and sum(shares.values()) == pytest.approx(1.0)
        if min(abs(mos - lower) for lower in LEVEL_LOWER[:-1]) > 0.05:  # on a border the two levels tie
            assert max(shares, key=shares.__getitem__) == level_of(mos)
        expected.append(sum(LEVEL_VALUE[k] * p for k, p in shares.items()))
    assert expected == sorted(expected) and len(set(expected)) == len(expected)  # strictly rising
    # Either side of a level border: one level word for both, but nearly the same soft target.
    below, above = level_probabilities(4.19, 0.4), level_probabilities(4.21, 0.4)
    assert level_of(4.19) != level_of(4.21)
    assert abs(below["excellent"] - above["excellent"]) < 0.03
    # Desaturation's pseudo-MOS steps (4.43 .. 3.71 in the v5 corpus) all get different targets.
    assert level_probabilities(4.43, 0.4)["excellent"] == pytest.approx(0.717, abs=0.002)
    assert level_probabilities(3.71, 0.4)["fair"] == pytest.approx(0.216, abs=0.002)
    with pytest.raises(ValueError):
        level_probabilities(3.0, 0.0)
    with pytest.raises(ValueError):
        level_probabilities(float("nan"), 0.4)


def test_drawn_levels_follow_the_shares_and_sigma_zero_is_the_plain_level() -> None:
    rng = random.Random(3)
    draws = Counter(sample_level(3.71, 0.4, rng) for _ in range(20_000))
    for level, share in level_probabilities(3.71, 0.4).items():
        assert draws[level] / 20_000 == pytest.approx(share, abs=0.015)
    assert {sample_level(m, 0.0, rng) for m in (4.43,)} == {"excellent"}
    assert sample_level(2.2, 0.0, rng) == level_of(2.2)


def _pairs(n: int = 300) -> list:
    rng = random.Random(11)
    pairs = []
    for i in range(n):
        applied = []
        if rng.random() < 0.8:
            t = rng.choice(list(DISTORTIONS))
            applied.append(Applied(t, rng.random(), {"hue": "green"} if t == "colour_cast" else {}, rng.uniform(1, 5)))
        mos = min([a.alone_mos for a in applied] + [5.0])
        facts = build_facts(applied, level_of(mos), {"brightness": "medium", "colour": "moderate", "detail": "rich",
                                                     "flat_areas": False})
        pairs.append((make_feedback(f"img{i}", f"images/{i}.png", facts), facts | {"pseudo_mos": mos}))
    return pairs


def _write(soft_levels: float) -> tuple[list, QuestionWriter]:
    writer = QuestionWriter(seed=0, paraphrase_share=0.8, composed_wordings=True, yes_no_per_image=3, extra_mcq=2,
                            broad_wordings=True, describe_share=0.5, soft_levels=soft_levels)
    return write_all(_pairs(), writer), writer


def test_soft_levels_move_only_the_rating_answers() -> None:
    plain, _ = _write(0.0)
    soft, writer = _write(0.4)
    again, _ = _write(0.4)
    assert soft == again  # reproducible
    assert len(plain) == len(soft)
    moved = 0
    for p, s in zip(plain, soft):
        if p.task != "qalign":
            assert p == s
            continue
        level = s.meta["level"]
        assert s.turns[-1].value.endswith(f" {level}.") and level in LEVELS
        if level != p.meta["level"]:
            moved += 1
            assert abs(LEVELS.index(level) - LEVELS.index(p.meta["level"])) <= 2
    ratings = sum(1 for r in plain if r.task == "qalign")
    assert moved == writer.stats()["soft_levels"]["levels_moved"]
    assert 0.1 * ratings < moved < 0.6 * ratings
    assert "soft_levels" not in _write(0.0)[1].stats()


def test_soft_levels_are_a_question_setting_and_omitted_when_off(capsys) -> None:
    assert "soft_levels" in build.QUESTION_SETTINGS
    assert "soft_levels" not in Settings().to_dict()
    assert Settings(soft_levels=0.4).to_dict()["soft_levels"] == 0.4
    assert build.main(["--photos", "/nonexistent", "--out", "/nonexistent/out", "--soft-levels", "3"]) == build.EXIT_ERROR
    assert "--soft-levels is a standard deviation" in capsys.readouterr().err

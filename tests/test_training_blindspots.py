"""Issue 16's blind-spot benches (qplug_training.evaluation.paraphrase / .blindspots): the parts that need
no model: event IoU, the held-out questions' gold answers, the report parsing."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402

from qplug_training.corpus import heldout  # noqa: E402
from qplug_training.evaluation import blindspots, paraphrase  # noqa: E402


def test_iou_merges_overlapping_events() -> None:
    assert blindspots.iou([(3.0, 4.5)], (3.0, 4.5)) == pytest.approx(1.0)
    assert blindspots.iou([], (3.0, 4.5)) == 0.0
    assert blindspots.iou([(3.0, 3.75)], (3.0, 4.5)) == pytest.approx(0.5)
    assert blindspots.iou([(2.9, 3.6), (3.5, 4.6)], (3.0, 4.5)) == pytest.approx(1.5 / 1.7)
    assert blindspots.iou([(0.0, 1.0), (3.0, 4.5)], (3.0, 4.5)) == pytest.approx(1.5 / 2.5)


def test_events_and_frames_read_from_the_jsonl_report() -> None:
    report = [{"type": "frame", "pts": 0.0, "scores": {"qalign": 4.0}},
              {"type": "frame", "pts": 0.04, "scores": {"qalign": 2.0}},
              {"type": "frame", "pts": 0.08, "scores": {}},
              {"type": "source", "events": [{"scorer": "qalign", "start": 0.04, "end": 0.08},
                                            {"scorer": "decode_gap", "start": 1.0, "end": 2.0}]},
              {"type": "run"}]
    series, events = blindspots._frames_and_events(report)
    assert series == [(0.0, 4.0), (0.04, 2.0)]
    assert blindspots._intervals(events) == [(0.04, 0.08)]


def _meta(iid: str, mention: dict, absent: list, main: str | None, severity: int, distortions: list) -> dict:
    return {"id": iid, "image": f"eval/images/{iid}.png", "level": "good", "distortions": distortions,
            "facts": {"main": main},
            "eval": {"severity_level": severity, "checks": {"mention": mention, "absent": absent}}}


def test_heldout_yes_no_gold_follows_visibility_and_wording() -> None:
    metas = [_meta(f"img{i}", {"blur": "strong", "noise": "slight"}, ["underexposure", "banding"], "blur", 4,
                   [{"kind": "blur"}]) for i in range(40)]
    questions = paraphrase.yes_no_questions(metas)
    assert len(questions) == 80
    for q in questions:
        inverted = q.type.endswith("inverted")
        assert q.question in (heldout.YES_NO_INVERTED if inverted else heldout.YES_NO)[q.concern]
        there = q.concern == "blur"
        assert q.concern != "noise"  # slight: never asked
        assert q.correct == ("yes" if there != inverted else "no")
    assert any(q.type.endswith("inverted") for q in questions)


def test_heldout_mcq_uses_the_issue_options_and_none_for_pristine() -> None:
    metas = [_meta("a", {"underexposure": "strong"}, [], "underexposure", 4, [{"kind": "underexposure"}]),
             _meta("b", {}, [], None, 0, []),
             _meta("c", {"banding": "strong"}, [], "banding", 4, [{"kind": "banding"}]),
             _meta("d", {"blur": "strong", "noise": "moderate"}, [], "blur", 4, [{"kind": "blur"}]),
             _meta("e", {"noise": "slight"}, [], "noise", 1, [{"kind": "noise"}])]
    questions = {q.id.split("/")[0]: q for q in paraphrase.mcq_questions(metas)}
    assert set(questions) == {"a", "b"}
    assert questions["a"].correct == "too dark" and set(questions["a"].candidates) == set(heldout.MCQ_OPTIONS.values())
    assert questions["b"].correct == heldout.MCQ_NONE and len(questions["b"].candidates) == 7
    assert all(q.question in heldout.MCQ_STEMS for q in questions.values())


def test_heldout_questions_about_the_whole_picture_follow_its_level() -> None:
    f = heldout.SETS["f"]
    metas = [dict(_meta(f"img{i}", {}, [], None, 0, []), level=level, pseudo_mos=mos)
             for i, (level, mos) in enumerate([("excellent", 4.8), ("good", 3.7), ("fair", 3.0), ("poor", 2.2),
                                               ("bad", 1.2)] * 8)]
    overall = paraphrase.overall_questions(metas, "f")
    assert len(overall) == 32 and not [q for q in overall if q.concern == "fair"]  # fair is never asked
    for q in overall:
        good = q.question in f.overall_good
        assert good != (q.question in f.overall_bad)
        assert q.correct == ("yes" if (q.concern in ("excellent", "good")) == good else "no")
    assert {q.correct for q in overall} == {"yes", "no"}
    assert paraphrase.overall_questions(metas, "a") == []  # sets a-e ask none


def test_heldout_level_questions_take_the_share_of_the_range_that_holds_the_mos() -> None:
    assert paraphrase.rating_share(4.8, 5) == (0, pytest.approx(0.6))
    assert paraphrase.rating_share(1.0, 3)[0] == 2 and paraphrase.rating_share(3.1, 3)[0] == 1
    assert paraphrase.rating_share(2.9, 2) == (1, pytest.approx(0.1))
    metas = [dict(_meta(f"img{i}", {}, [], None, 0, []), pseudo_mos=1.0 + 4.0 * i / 99) for i in range(100)]
    rated = paraphrase.rating_questions(metas, "f")
    assert 0 < len(rated) < 100  # near a boundary between two options' shares: not asked
    by_id = {m["id"]: m for m in metas}
    for q in rated:
        scale = tuple(q.concern.split("/"))
        assert scale in heldout.SETS["f"].rating_options and set(q.candidates) == set(scale)
        index, margin = paraphrase.rating_share(by_id[q.id.split("/")[0]]["pseudo_mos"], len(scale))
        assert q.correct == scale[index] and margin >= paraphrase.RATING_MARGIN
    assert any(q.candidates[0] == q.concern.split("/")[-1] for q in rated)  # some asked worst first


def test_heldout_attribute_questions_take_the_option_that_holds_the_kinds_severity() -> None:
    # 4 severities onto k options by overlap of equal shares; a tie is not asked.
    assert [paraphrase.attribute_share(j, 3) for j in range(4)] == [0, 1, 1, 2]
    assert [paraphrase.attribute_share(j, 2) for j in range(4)] == [0, 0, 1, 1]
    assert [paraphrase.attribute_share(j, 5) for j in range(4)] == [0, 1, 3, 4]
    g = heldout.SETS["g"]
    metas = [_meta(f"img{i}", {"noise": impact}, ["blur"], "noise", 3, [{"kind": "noise"}])
             for i, impact in enumerate(["slight", "moderate", "strong", "severe"] * 10)]
    questions = paraphrase.attribute_questions(metas, "g")
    assert {q.id.rsplit("-", 1)[1] for q in questions} == {"noise", "blur"}
    for q in questions:
        kind = q.id.rsplit("-", 1)[1]
        stem_good = dict(g.attribute_stems[kind])[q.question]
        best_first = q.concern.split("/")
        assert set(q.candidates) == set(best_first) and q.type == f"attribute:{'good' if stem_good else 'defect'}"
        if kind == "blur":  # cleanly absent: the best option
            assert q.correct == best_first[0]
        if not stem_good:  # a stem naming the defect is never asked over quality words
            assert tuple(reversed(best_first)) in g.attribute_amount_options
    assert paraphrase.attribute_questions(metas, "f") == []


def test_heldout_exposure_questions_name_no_direction_and_ask_about_both() -> None:
    h = heldout.SETS["h"]
    both = ["underexposure", "overexposure"]
    metas = ([_meta(f"dark{i}", {"underexposure": "strong"}, ["overexposure"], "underexposure", 3, []) for i in range(10)]
             + [_meta(f"bright{i}", {"overexposure": "moderate"}, ["underexposure"], "overexposure", 2, []) for i in range(10)]
             + [_meta(f"fine{i}", {"noise": "strong"}, both, "noise", 3, []) for i in range(10)]
             + [_meta(f"slight{i}", {"underexposure": "slight"}, ["overexposure"], "underexposure", 1, []) for i in range(10)])
    asked = paraphrase.exposure_questions(metas, "h")
    assert len(asked) == 30 and not [q for q in asked if q.id.startswith("slight")]  # slight: never asked
    for q in asked:
        wrong = not q.id.startswith("fine")
        assert q.concern == ("wrong" if wrong else "right")
        assert q.correct == ("yes" if wrong == (q.question in h.exposure_wrong) else "no")
    assert {q.type for q in asked} == {"exposure:wrong", "exposure:right"}
    assert paraphrase.exposure_questions(metas, "f") == []  # sets a-g ask none
    # A level request about exposure takes the worse of the two kinds' severities.
    levels = {q.id.split("/")[0]: q for q in paraphrase.attribute_questions(metas, "h")}
    for iid, q in levels.items():
        best_first = q.concern.split("/")
        if iid.startswith("fine"):
            assert q.correct == best_first[0]
        elif iid.startswith("dark"):
            assert q.correct == best_first[-1]

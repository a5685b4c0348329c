"""The polarity bench (qplug_training.evaluation.polarity): the same picks asked in four forms, gold
answers that follow each form's polarity, wordings from the training pools only, and a real run on a
tiny model."""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from qplug_training.corpus import composed, heldout  # noqa: E402
from qplug_training.evaluation import paraphrase, polarity  # noqa: E402

from .bench_scripts import load_bench  # noqa: E402


def _meta(iid: str, mention: dict, absent: list) -> dict:
    return {"id": iid, "image": f"eval/images/{iid}.png", "level": "good", "distortions": [],
            "facts": {"main": None}, "eval": {"severity_level": 3, "checks": {"mention": mention, "absent": absent}}}


def _metas(count: int) -> list[dict]:
    return [_meta(f"img{i}", {"blur": "strong", "noise": "slight"}, ["underexposure", "banding"]) for i in range(count)]


def test_every_form_asks_the_same_picks_and_its_gold_follows_its_polarity() -> None:
    forms = polarity.polarity_questions(_metas(30), n=40)
    assert list(forms) == list(polarity.FORMS)
    picks = [(q.image, q.concern) for q in forms["direct"]]
    assert len(picks) == 40 and all([(q.image, q.concern) for q in qs] == picks for qs in forms.values())
    # "yes" means the defect is there for direct and negated_fine, absent for fine and negated_defect.
    yes_when_there = {"direct": True, "fine": False, "negated_fine": True, "negated_defect": False}
    held = {heldout.normalise(q) for q in heldout.all_questions()}
    for form, questions in forms.items():
        for q in questions:
            there = q.concern == "blur"  # blur strong = there; underexposure/banding absent; noise slight never asked
            assert q.concern != "noise"
            assert q.correct == ("yes" if there == yes_when_there[form] else "no")
            assert heldout.normalise(q.question) not in held
    assert all(q.question in composed.yes_no_wordings(q.concern, broad=True) for q in forms["direct"])
    assert all(q.question in composed.yes_no_wordings(q.concern, fine=True, broad=True) for q in forms["fine"])
    assert all(q.question in composed.negated_yes_no_wordings(q.concern) for q in forms["negated_fine"])
    assert all(q.question in composed.negated_yes_no_wordings(q.concern, fine=True) for q in forms["negated_defect"])
    # Both answers occur in every form, so a model that always says "yes" scores about half.
    assert all({q.correct for q in qs} == {"yes", "no"} for qs in forms.values())


def test_picks_are_the_held_out_yes_no_questions_picks() -> None:
    metas = _metas(10)
    held = paraphrase.yes_no_questions(metas, "b")
    assert [(m["image"], kind) for m, kind, _, _ in paraphrase.yes_no_picks(metas)] == [(q.image, q.concern)
                                                                                         for q in held]


def test_polarity_figures_run_a_real_model(tmp_path: Path) -> None:
    from PIL import Image

    from tests.test_native_backend import build_tiny_fast_vlm

    model = build_tiny_fast_vlm(tmp_path / "model")
    corpus = tmp_path / "corpus"
    (corpus / "eval" / "images").mkdir(parents=True)
    metas = _metas(6)
    rng = np.random.default_rng(0)
    for m in metas:
        Image.fromarray(rng.integers(0, 255, (72, 96, 3), dtype=np.uint8)).save(corpus / m["image"])
    (corpus / "eval" / "metadata.jsonl").write_text("".join(json.dumps(m) + "\n" for m in metas))
    items: list[dict] = []
    out = polarity.polarity_figures(str(model), corpus, n=None, batch_size=4, items=items)
    accuracy = {form: out["forms"][form]["overall"]["accuracy"] for form in polarity.FORMS}
    assert all(out["forms"][form]["overall"]["n"] == 12 for form in polarity.FORMS)
    assert out["plain_mean"] == pytest.approx((accuracy["direct"] + accuracy["fine"]) / 2)
    assert out["negated_mean"] == pytest.approx((accuracy["negated_fine"] + accuracy["negated_defect"]) / 2)
    assert len(items) == 48 and {r["task"] for r in items} == {f"polarity_{f}" for f in polarity.FORMS}
    assert set(out["flips"]) == set(polarity.OPPOSITES) and all(f["n"] == 12 for f in out["flips"].values())
    assert all(0.0 <= f["flip_rate"] <= 1.0 for f in out["flips"].values())
    hits = sum(r["hit"] for r in items if r["task"] == "polarity_direct")
    assert accuracy["direct"] == pytest.approx(hits / 12)
    assert all(r["answer"] in ("yes", "no") for r in items)


def test_bench_keeps_the_rows_of_parts_it_did_not_run_and_summarises_polarity(tmp_path: Path) -> None:
    bench = load_bench("eval_blindspots")
    path = tmp_path / "blindspots_items.jsonl"
    bench.write_items(path, [{"task": "heldout_yes_no", "id": "a"}, {"task": "polarity_direct", "id": "old"}])
    bench.write_items(path, [{"task": "polarity_direct", "id": "new"}, {"task": "polarity_fine", "id": "f"}])
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["task"], r["id"]) for r in rows] == [("heldout_yes_no", "a"), ("polarity_direct", "new"),
                                                    ("polarity_fine", "f")]
    result = {"polarity": {"forms": {"direct": {"overall": {"accuracy": 0.9}},
                                     "negated_fine": {"overall": {"accuracy": 0.2}}},
                         "flips": {"negated_fine": {"against": "fine", "flip_rate": 0.3}}}}
    assert bench.summary(result) == {"polarity_direct": 0.9, "polarity_negated_fine": 0.2,
                                     "polarity_flips_negated_fine_vs_fine": 0.3}


def _row(image: str, answer: str, p_yes: float) -> dict:
    return {"image": image, "concern": "blur", "answer": answer, "probabilities": {"yes": p_yes, "no": 1 - p_yes}}


def test_flip_figures_tell_a_reader_from_a_model_that_ignores_the_added_word() -> None:
    plain = [_row("a", "yes", 0.9), _row("b", "no", 0.2), _row("c", "yes", 0.7), _row("d", "no", 0.4)]
    reader = [_row(r["image"], "no" if r["answer"] == "yes" else "yes", 1 - r["probabilities"]["yes"]) for r in plain]
    deaf = [dict(r) for r in plain]
    deaf[3] = _row("d", "yes", 0.55)  # one answer differs by chance
    figures = polarity.flip_figures({"direct": plain, "fine": reader, "negated_fine": deaf})
    assert set(figures) == {"fine", "negated_fine"}  # negated_defect was not asked
    assert figures["fine"]["against"] == "direct" and figures["fine"]["flip_rate"] == 1.0
    assert figures["fine"]["p_yes_correlation"] == pytest.approx(-1.0)
    assert figures["negated_fine"]["against"] == "fine" and figures["negated_fine"]["flip_rate"] == 0.75
    assert figures["negated_fine"]["p_yes_correlation"] < 0  # against the reader's answers, a deaf model disagrees
    same = polarity.flip_figures({"fine": plain, "negated_fine": deaf})
    assert same["negated_fine"]["flip_rate"] == 0.25 and same["negated_fine"]["p_yes_correlation"] > 0.9


def test_flip_figures_refuse_forms_asked_about_different_picks() -> None:
    with pytest.raises(ValueError, match="same picks"):
        polarity.flip_figures({"direct": [_row("a", "yes", 0.9)], "fine": [_row("b", "no", 0.1)]})

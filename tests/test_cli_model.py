"""``qplug score/describe/ask`` with a model directory, end to end in a child process.

A tiny random LLaVA saved to disk stands in for a real checkpoint: the tests check the plumbing
(options reach the backend, answers come from the choices, reports carry levels), never what a
random model "thinks".
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
np = pytest.importorskip("numpy")
Image = pytest.importorskip("PIL.Image")

from qplug_vlm.testing import build_tiny_llava  # noqa: E402

ENV = dict(os.environ, OMP_NUM_THREADS="1", QPLUG_LOAD_PLUGINS="images,video,vlm,reports")
ENV.pop("QPLUG_MODEL", None)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return str(build_tiny_llava(tmp_path_factory.mktemp("tiny-llava")))


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("imgs")
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(folder / f"img{i}.png")
    return folder


def qplug(*args):
    return subprocess.run([sys.executable, "-m", "qplug", *map(str, args)], capture_output=True, text=True,
                          env=ENV, timeout=300)


def test_ask_with_choices_answers_one_of_them(model_dir, images, tmp_path):
    out = tmp_path / "answers.jsonl"
    result = qplug("ask", images, "Is this image blurry?", "--choices", "yes", "no", "--model", model_dir, "--out", out)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 2 and all(line.split(": ")[-1].split(" (p=")[0] in {"yes", "no"} for line in lines)
    frames = [json.loads(line) for line in out.read_text().splitlines() if '"type":"frame"' in line]
    answer = frames[0]["answers"]["vlm"]
    assert answer["question"] == "Is this image blurry?" and answer["choice"] in {"yes", "no"}
    assert sum(answer["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)


def test_describe_prints_one_description_per_frame(model_dir, images):
    result = qplug("describe", images / "img0.png", "--model", model_dir)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(str(images / "img0.png") + ":")


def test_score_with_qalign_reports_levels(model_dir, images, tmp_path):
    out = tmp_path / "s.jsonl"
    result = qplug("score", images, "--scorer", "qalign", "--model", model_dir, "--out", out)
    assert result.returncode == 0, result.stderr
    frame = json.loads(out.read_text().splitlines()[0])
    assert 1.0 <= frame["scores"]["qalign"] <= 5.0
    assert set(frame["levels"]["qalign"]) == {"excellent", "good", "fair", "poor", "bad"}


def test_a_model_directory_that_is_not_a_model_is_one_clear_error(images, tmp_path):
    result = qplug("score", images, "--scorer", "qalign", "--model", tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert str(tmp_path) in result.stderr


def test_component_options_from_the_command_line(tmp_path):
    # The shipped model looks at native 224x224 windows: qalign.windows=2 scores a 2x2 grid of them.
    image = tmp_path / "wide.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (300, 448, 3), dtype=np.uint8)).save(image)
    out = tmp_path / "w.jsonl"
    result = qplug("score", image, "--scorer", "qalign", "--option", "qalign.windows=2",
                   "--option", "qalign.window_pool=min", "--out", out)
    assert result.returncode == 0, result.stderr
    frame = json.loads(out.read_text().splitlines()[0])
    windows = frame["extra"]["qalign"]["windows"]
    assert len(windows) == 4 and frame["scores"]["qalign"] == pytest.approx(min(windows))
    assert frame["extra"]["qalign"]["worst_window"]["left"] in (0, 224)
    for bad, message in ((["--option", "qalgn.windows=2"], "called 'qalgn'"),
                         (["--option", "qalign.windows=0"], "windows must be a whole number"),
                         (["--option", "qalign.windows"], "is not NAME.KEY=VALUE"),
                         (["--option", "qalign.colour=1"], "unknown option(s) colour"),
                         (["--option", "qalign.window=middle"], "window must be one of auto, centre, detail")):
        result = qplug("score", image, "--scorer", "qalign", *bad)
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr, bad

"""qplug_training.soup: weight averaging of exported models (real tiny checkpoints, real forward passes)."""

from __future__ import annotations

import os

os.environ["OMP_NUM_THREADS"] = "1"

import shutil
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
torch.set_num_threads(1)

from safetensors.torch import load_file

from qplug_training.soup import Ingredient, SoupError, soup
from qplug_vlm import scorers
from tests.test_native_backend import build_tiny_fast_vlm


@pytest.fixture(scope="module")
def parents(tmp_path_factory):
    root = tmp_path_factory.mktemp("soup")
    return build_tiny_fast_vlm(root / "a", seed=0), build_tiny_fast_vlm(root / "b", seed=3)


def test_every_floating_tensor_is_the_weighted_mean(parents, tmp_path):
    a, b = parents
    out = soup([Ingredient(a, 1.0), Ingredient(b, 3.0)], tmp_path / "s")  # normalised to 0.25 / 0.75
    wa, wb, ws = (load_file(str(p / "model.safetensors")) for p in (a, b, out))
    assert set(ws) == set(wa)
    differing = 0
    for name, tensor in ws.items():
        assert tensor.dtype == wa[name].dtype and tensor.shape == wa[name].shape
        if tensor.is_floating_point():
            expected = 0.25 * wa[name].double() + 0.75 * wb[name].double()
            torch.testing.assert_close(tensor.double(), expected, rtol=1e-6, atol=1e-6)
            differing += not torch.equal(wa[name], wb[name])
        else:
            assert torch.equal(tensor, wa[name])  # counters come from the first model
    assert differing > 10  # the parents really differ, so the check above means something
    info = (out / "training_info.json").read_text()
    assert str(a) in info and str(b) in info


def test_a_soup_loads_and_scores_between_its_ends(parents, tmp_path, odd_frames):
    a, b = parents
    only_a = soup([Ingredient(a, 1.0), Ingredient(b, 0.0)], tmp_path / "only_a")
    half = soup([Ingredient(a, 0.5), Ingredient(b, 0.5)], tmp_path / "half")
    pictures = odd_frames
    value = {name: [s.value for s in scorers.qalign(model=path, device="cpu").score(pictures)]
             for name, path in (("a", a), ("b", b), ("only_a", only_a), ("half", half))}
    assert value["only_a"] == pytest.approx(value["a"], abs=1e-6)
    assert value["half"] != pytest.approx(value["a"], abs=1e-4)
    assert value["half"] != pytest.approx(value["b"], abs=1e-4)


def test_models_that_differ_beside_the_weights_are_refused(parents, tmp_path):
    a, _ = parents
    other = build_tiny_fast_vlm(tmp_path / "swish", seed=1, act="swish")
    with pytest.raises(SoupError, match="config.json"):
        soup([Ingredient(a, 1.0), Ingredient(other, 1.0)], tmp_path / "s")
    assert not (tmp_path / "s").exists()
    bare = tmp_path / "bare"
    shutil.copytree(a, bare)
    (bare / "model.safetensors").unlink()
    with pytest.raises(SoupError, match="no model.safetensors"):
        soup([Ingredient(a, 1.0), Ingredient(bare, 1.0)], tmp_path / "s")


def test_cli_reports_bad_input_without_a_traceback(parents, tmp_path):
    a, _ = parents
    run = subprocess.run([sys.executable, "-m", "qplug_training.soup", "--model", str(a), "--model",
                          str(tmp_path / "missing"), "--out", str(tmp_path / "s")], capture_output=True, text=True)
    assert run.returncode == 2
    assert "error:" in run.stderr and "missing" in run.stderr and "Traceback" not in run.stderr
    run = subprocess.run([sys.executable, "-m", "qplug_training.soup", "--model", str(a), "--model", str(a),
                          "--weights", "1", "--out", str(tmp_path / "s")], capture_output=True, text=True)
    assert run.returncode == 2 and "2 models but 1 weights" in run.stderr

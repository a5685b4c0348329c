"""``qplug convert mplug-owl2`` and bad mPLUG-Owl2 inputs through the command line.

A tiny release in the published layout (config.json with model_type mplug_owl2, pickled .bin shards +
pytorch_model.bin.index.json, tokenizer, preprocessor_config.json) is converted and must score exactly as
the same weights written as safetensors directly. Every refusal is one line naming the file, exit 2.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
from PIL import Image  # noqa: E402

from qplug import cli  # noqa: E402
from qplug.errors import QplugError  # noqa: E402
from qplug_vlm.convert_mplug_owl2 import MplugOwl2Converter  # noqa: E402
from qplug_vlm.mplug_owl2 import load_mplug_owl2, score_qalign, tiny  # noqa: E402
from qplug_vlm.mplug_owl2.testing import build_tiny_mplug_owl2  # noqa: E402

LLAVA_RELEASE = Path(__file__).parent / "fixtures" / "llava_reference" / "original"
ENV = dict(os.environ, QPLUG_LOAD_PLUGINS="images,vlm,reports", OMP_NUM_THREADS="1")


@pytest.fixture(autouse=True)
def no_model_env(monkeypatch):
    monkeypatch.delenv("QPLUG_MODEL", raising=False)


@pytest.fixture(scope="module")
def direct(tmp_path_factory) -> Path:
    """The tiny model written straight as safetensors: what the conversion must reproduce."""
    return build_tiny_mplug_owl2(tmp_path_factory.mktemp("direct") / "model")


@pytest.fixture
def release(tmp_path) -> Path:
    """The same weights as a release ships them: three pickled .bin shards with an index."""
    return build_tiny_mplug_owl2(tmp_path / "release", shards=3, weights="bin")


@pytest.fixture(scope="module")
def images() -> list[Image.Image]:
    return [Image.fromarray(array) for array in tiny.tiny_images()]


def run_cli(capsys, *argv) -> tuple[int, str]:
    code = cli.main(["convert", "mplug-owl2", *map(str, argv)])
    return code, capsys.readouterr().err


def _scores(directory: Path, images) -> list[float]:
    model, tokenizer, processor = load_mplug_owl2(directory)
    return [s.value for s in score_qalign(model, tokenizer, processor, images)]


# ---------------------------------------------------------------------------------------------
# Conversion


def test_bin_release_converts_to_the_same_model(tmp_path, capsys, release, direct, images):
    out = tmp_path / "converted"
    code, err = run_cli(capsys, release, out)
    assert code == 0, err
    assert f"wrote {out}" in err and "3 safetensors file(s)" in err
    names = sorted(p.name for p in out.iterdir())
    assert names == ["CONVERTED_FROM.json", "config.json", "model-00001-of-00003.safetensors",
                     "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors",
                     "model.safetensors.index.json", "preprocessor_config.json", "tokenizer.json",
                     "tokenizer_config.json"]
    assert not list(out.glob("*.bin")) and sorted(p.name for p in tmp_path.iterdir()) == ["converted", "release"]
    from safetensors.torch import load_file

    converted = {k: v for f in out.glob("*.safetensors") for k, v in load_file(str(f)).items()}
    original = {k: v for f in direct.glob("*.safetensors") for k, v in load_file(str(f)).items()}
    assert converted.keys() == original.keys()
    assert all(torch.equal(converted[k], original[k]) for k in original)
    assert _scores(out, images) == _scores(direct, images)
    record = json.loads((out / "CONVERTED_FROM.json").read_text())
    assert record["converter"] == "mplug-owl2" and len(record["weights"]) == 3


def test_through_qplug_score_after_conversion(tmp_path, capsys, release, direct, images):
    out = tmp_path / "converted"
    assert run_cli(capsys, release, out)[0] == 0
    path = tmp_path / "frame.png"
    images[0].save(path)
    report = tmp_path / "r.jsonl"
    done = subprocess.run([sys.executable, "-m", "qplug", "score", str(path), "-s", "qalign", "-s", "qbench",
                           "--model", str(out), "--device", "cpu", "--out", str(report)],
                          capture_output=True, text=True, env=ENV, timeout=300)
    assert done.returncode == 0, done.stderr
    [frame] = [json.loads(line) for line in report.read_text().splitlines() if '"type":"frame"' in line]
    assert abs(frame["scores"]["qalign"] - _scores(direct, images[:1])[0]) < 1e-4
    assert 0 <= frame["scores"]["qbench"] <= 1


def test_safetensors_release_dtype_and_auto_map(tmp_path, capsys, images):
    release = build_tiny_mplug_owl2(tmp_path / "release")
    config = json.loads((release / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_mplug_owl2.MPLUGOwl2LlamaForCausalLM"}
    (release / "config.json").write_text(json.dumps(config))
    tokenizer_config = json.loads((release / "tokenizer_config.json").read_text())
    (release / "tokenizer_config.json").write_text(json.dumps(dict(tokenizer_config, auto_map={"x": "y"})))
    (release / "modeling_mplug_owl2.py").write_text("raise SystemExit('remote code must never run')\n")
    (release / "preprocessor_config.json").unlink()
    out = tmp_path / "bf16"
    code, err = run_cli(capsys, release, "--dtype", "bfloat16", out)
    assert code == 0, err
    assert "Q-Align's (448 px" in err
    from safetensors.torch import load_file

    tensors = load_file(str(out / "model.safetensors"))
    assert {t.dtype for t in tensors.values()} == {torch.bfloat16}
    for name in ("config.json", "tokenizer_config.json"):
        assert "auto_map" not in json.loads((out / name).read_text())
    assert not list(out.glob("*.py")) and (out / "preprocessor_config.json").is_file()


def test_rope_buffers_of_old_releases_are_dropped(tmp_path, capsys, direct, images):
    from qplug_vlm.mplug_owl2.testing import state_dict_shapes, tiny_config, write_weights

    release = build_tiny_mplug_owl2(tmp_path / "release", weights="bin")
    config = json.loads((release / "config.json").read_text())
    state = tiny.tiny_state_dict(state_dict_shapes(config), config)
    state.update({f"model.layers.{i}.self_attn.rotary_emb.inv_freq": np.zeros(8, np.float32) for i in range(2)})
    state = {k: v for k, v in state.items() if not k.endswith("k_pos_embed")}  # computed when absent
    (release / "pytorch_model.bin").unlink()
    write_weights(release, state, shards=2, weights="bin")
    assert tiny_config(len(state))  # the helper stays importable without a tokenizer
    out = tmp_path / "out"
    code, err = run_cli(capsys, release, out)
    assert code == 0, err
    assert "2 RoPE buffer(s) dropped" in err
    assert _scores(out, images) == pytest.approx(_scores(direct, images), abs=1e-6)


def test_converter_is_listed(capsys):
    assert cli.main(["converters"]) == 0
    line = next(l for l in capsys.readouterr().out.splitlines() if l.startswith("mplug-owl2 "))
    assert "--dtype?" in line and "[vlm]" in line


# ---------------------------------------------------------------------------------------------
# Refusals: one line naming the file, exit 2, nothing left behind


def _edit_config(release: Path, drop: str | None = None, **changes) -> None:
    config = json.loads((release / "config.json").read_text())
    config.update(changes)
    if drop:
        del config[drop]
    (release / "config.json").write_text(json.dumps(config))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _rewrite_shard(release: Path, shard: str, edit) -> None:
    path = release / shard
    state = torch.load(str(path), weights_only=True)
    edit(state)
    torch.save(state, str(path))


@pytest.mark.parametrize("breakage, message", [
    (lambda r: _edit_config(r, model_type="llava"), "config.json: model_type 'llava' is not 'mplug_owl2' (original "
                                                    "LLaVA releases: qplug convert llava)"),
    (lambda r: _edit_config(r, drop="vocab_size"), "config.json: missing key 'vocab_size'"),
    (lambda r: _edit_config(r, visual_config=[1]), "config.json: visual_config must hold"),
    (lambda r: (r / "config.json").unlink(), "config.json: missing"),
    (lambda r: (r / "tokenizer.json").unlink(), "tokenizer.model: missing"),
    (lambda r: (r / "pytorch_model-00002-of-00003.bin").unlink(),
     "pytorch_model-00002-of-00003.bin: missing (listed in pytorch_model.bin.index.json)"),
    (lambda r: _truncate(r / "pytorch_model-00003-of-00003.bin"),
     "pytorch_model-00003-of-00003.bin: not a readable PyTorch weights file"),
    (lambda r: _rewrite_shard(r, "pytorch_model-00001-of-00003.bin", lambda s: s.update(extra=torch.zeros(2))),
     "pytorch_model-00001-of-00003.bin: unknown tensor 'extra'"),
    (lambda r: _rewrite_shard(r, "pytorch_model-00001-of-00003.bin", lambda s: s.update(step=3)),
     "pytorch_model-00001-of-00003.bin: entry 'step' is not a tensor"),
    (lambda r: _rewrite_shard(r, "pytorch_model-00002-of-00003.bin", lambda s: s.pop("lm_head.weight", None) or
                              s.pop(next(iter(s)))), "pytorch_model.bin.index.json: missing weight"),
    (lambda r: _rewrite_shard(r, "pytorch_model-00001-of-00003.bin",
                              lambda s: s.update({k: torch.zeros(3, 3) for k in list(s)[:1]})), "has shape (3, 3)"),
])
def test_cli_refuses_bad_releases(tmp_path, capsys, release, breakage, message):
    breakage(release)
    out = tmp_path / "out"
    code, err = run_cli(capsys, release, out)
    assert code == 2, err
    assert message in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]


def test_pickled_code_in_a_shard_is_refused_without_running_it(tmp_path, capsys, release):
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"lm_head.weight": Evil()}, str(release / "pytorch_model-00001-of-00003.bin"))
    code, err = run_cli(capsys, release, tmp_path / "out")
    assert code == 2 and "pytorch_model-00001-of-00003.bin" in err and len(err.strip().splitlines()) == 1
    assert not marker.exists()


def test_cross_family_conversions_are_refused_with_a_pointer(tmp_path, capsys, release):
    code, err = run_cli(capsys, LLAVA_RELEASE, tmp_path / "out")
    assert code == 2 and "model_type 'llava' is not 'mplug_owl2'" in err and "qplug convert llava" in err
    code = cli.main(["convert", "llava", str(release), "--vision-tower", str(tmp_path), str(tmp_path / "out2")])
    err = capsys.readouterr().err
    assert code == 2 and "model_type 'mplug_owl2' is not an original LLaVA-1.5" in err
    assert "qplug convert mplug-owl2" in err and len(err.strip().splitlines()) == 1


def test_existing_output_is_refused(tmp_path, capsys, release):
    out = tmp_path / "out"
    out.mkdir()
    code, err = run_cli(capsys, release, out)
    assert code == 2 and "already exists" in err
    with pytest.raises(QplugError, match="already exists"):
        MplugOwl2Converter().convert(str(release), str(out))
    with pytest.raises(QplugError, match="unknown option"):
        MplugOwl2Converter().convert(str(release), str(tmp_path / "x"), vision_tower="clip")


# ---------------------------------------------------------------------------------------------
# Bad model directories given to --model


def _score(model: Path, image: Path, *args: str, command: str = "score") -> subprocess.CompletedProcess:
    extra = ["-s", "qalign"] if command == "score" else []
    return subprocess.run([sys.executable, "-m", "qplug", command, str(image), *extra, "--model", str(model),
                           "--device", "cpu", *args], capture_output=True, text=True, env=ENV, timeout=300)


def _one_error_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("qplug: error:")]
    assert len(errors) == 1, done.stderr
    return errors[0]


@pytest.fixture(scope="module")
def frame_path(tmp_path_factory, images) -> Path:
    path = tmp_path_factory.mktemp("img") / "frame.png"
    images[0].save(path)
    return path


@pytest.mark.parametrize("command", ["score", "describe"])
def test_truncated_shard_through_the_cli(tmp_path, frame_path, command):
    model = build_tiny_mplug_owl2(tmp_path / "model", shards=2)
    shard = model / "model-00002-of-00002.safetensors"
    _truncate(shard)
    line = _one_error_line(_score(model, frame_path, command=command))
    assert str(shard) in line and "safetensors" in line


def test_bin_only_model_through_the_cli_points_to_the_converter(tmp_path, frame_path, release):
    line = _one_error_line(_score(release, frame_path))
    assert "pytorch_model-00001-of-00003.bin" in line and "qplug convert" in line


def test_options_of_another_family_are_refused(tmp_path, frame_path, direct):
    """A Q-SiT or Q-ReAlign preset pointed at an mPLUG-Owl2 checkpoint: refused, not silently applied."""
    line = _one_error_line(_score(direct, frame_path, "--option", "qalign.preset=q-sit"))
    assert "qalign on an mPLUG-Owl2 checkpoint takes no preset option" in line
    done = subprocess.run([sys.executable, "-m", "qplug", "score", str(frame_path), "-s", "qbench", "--model",
                           str(direct), "--device", "cpu", "--option", "qbench.preset=q-realign"],
                          capture_output=True, text=True, env=ENV, timeout=300)
    line = _one_error_line(done)
    assert str(direct) in line and "takes no template options (enable_thinking)" in line


def test_llava_preset_on_a_converted_model_with_mplug_config_is_refused(tmp_path, frame_path):
    """An mPLUG-Owl2 directory whose config was edited to say llava: the generic loader refuses its weights."""
    model = build_tiny_mplug_owl2(tmp_path / "model")
    _edit_config(model, model_type="llava")
    line = _one_error_line(_score(model, frame_path))
    assert str(model) in line


def test_release_with_a_sentencepiece_tokenizer_only(tmp_path, capsys, images):
    """As OneAlign ships it: tokenizer.model + a LlamaTokenizer config, no tokenizer.json."""
    pytest.importorskip("sentencepiece")
    from transformers import AutoTokenizer

    folder = Path(__file__).parent / "fixtures" / "mplug_owl2_reference" / "sentencepiece"
    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    release = build_tiny_mplug_owl2(tmp_path / "release", tokenizer=tokenizer, shards=2, weights="bin")
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        (release / name).unlink(missing_ok=True)
    for name in ("tokenizer.model", "tokenizer_config.json"):
        (release / name).write_bytes((folder / name).read_bytes())
    out = tmp_path / "out"
    code, err = run_cli(capsys, release, out)
    assert code == 0, err
    assert (out / "tokenizer.model").is_file() and not (out / "tokenizer.json").exists()
    model, converted_tokenizer, processor = load_mplug_owl2(out)
    assert converted_tokenizer("The quality of the image is").input_ids == tokenizer("The quality of the image is").input_ids
    assert len(score_qalign(model, converted_tokenizer, processor, images[:1])) == 1

"""``qplug convert llava`` against golden outputs of the LLaVA authors' own code (issue 15, parts 2 and 3).

``tests/fixtures/llava_reference`` holds a tiny random checkpoint in the original LLaVA-1.5 layout
(``original/``: config, two safetensors shards, LLaMA sentencepiece tokenizer; ``clip/``: a tiny CLIP
vision tower), three images, and ``golden.npz``/``golden.json``: the logits that
github.com/haotian-liu/LLaVA's ``LlavaLlamaForCausalLM`` computed for them with its own
preprocessing (``expand2square``, ``tokenizer_image_token``, the ``llava_v1`` conversation). They
were made by ``scripts/llava_reference.py`` in a separate venv with transformers 4.37.2 (see
docs/model-backend.md, "Converting original LLaVA releases"). These tests convert the checkpoint
and load it with qplug's backend: the converted model must reproduce the reference logits.
"""

from __future__ import annotations

import os

os.environ["OMP_NUM_THREADS"] = "1"

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
torch.set_num_threads(1)

from PIL import Image

from qplug import cli
from qplug.errors import QplugError
from qplug.types import Frame

from qplug_vlm import backend, convert_llava
from qplug_vlm.convert_llava import LlavaConverter, convert
from qplug_vlm.images import to_pil

FIXTURES = Path(__file__).parent / "fixtures" / "llava_reference"
GOLDEN = json.loads((FIXTURES / "golden.json").read_text())
LOGITS = np.load(FIXTURES / "golden.npz")
#: fp32 on CPU: the converted model must give the reference's logits this closely (issue 15).
TOLERANCE = 1e-4
VOCAB = GOLDEN["vocab"]
IMAGE_TOKENS = (GOLDEN["vision"]["image_size"] // GOLDEN["vision"]["patch_size"]) ** 2


@pytest.fixture(autouse=True)
def no_model_env(monkeypatch):
    for name in (backend.ENV_MODEL, backend.ENV_ADAPTER, backend.ENV_DEVICE, backend.ENV_DTYPE):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    out = tmp_path_factory.mktemp("llava") / "converted"
    message = convert(FIXTURES / "original", out, FIXTURES / "clip")
    assert message.startswith(f"wrote {out}")
    return out


@pytest.fixture(scope="module")
def loaded(converted):
    backend.clear_cache()
    yield backend.load_backend(model=str(converted), device="cpu", dtype="float32")
    backend.clear_cache()


@pytest.fixture
def release(tmp_path):
    """A writable copy of the tiny original release (to break it)."""
    return Path(shutil.copytree(FIXTURES / "original", tmp_path / "release"))


def reference_image(case: dict) -> Image.Image:
    """The case's image padded to a square as LLaVA's ``expand2square`` does: with int(mean * 255)."""
    rgb = np.asarray(Image.open(FIXTURES / case["image"]).convert("RGB"))
    return _padded(rgb, tuple(int(m * 255) for m in (0.48145466, 0.4578275, 0.40821073)))


def _padded(rgb: np.ndarray, fill) -> Image.Image:
    return to_pil(Frame.from_rgb(rgb), pad_fill=fill)


def expanded_ids(case: dict, image_token_id: int) -> list[int]:
    """The reference's input ids with LLaVA's -200 placeholder expanded to the processor's image tokens."""
    ids = case["input_ids"]
    at = ids.index(GOLDEN["image_token_index"])
    return ids[:at] + [image_token_id] * IMAGE_TOKENS + ids[at + 1:]


# ---------------------------------------------------------------------------------------------
# Golden logits


@pytest.mark.parametrize("case", GOLDEN["cases"], ids=lambda c: f"case{c['case']}")
def test_converted_model_reproduces_reference_logits(loaded, case):
    """qplug's backend on the converted model: same tokens as LLaVA's, same next-token logits within 1e-4."""
    image = reference_image(case)
    text = loaded._bos_text + case["prompt"]  # the backend adds BOS itself, as it does for every prompt
    batch = loaded.prepare([image], [text])
    image_token_id = loaded.tokenizer.convert_tokens_to_ids("<image>")
    assert batch["input_ids"][0].tolist() == expanded_ids(case, image_token_id)
    logits = loaded.forward(batch)[0, :VOCAB].numpy()
    np.testing.assert_allclose(logits, LOGITS["last"][case["case"]], rtol=0, atol=TOLERANCE)
    # Every position, not only the last: the last four positions' logits.
    with torch.inference_mode():
        full = loaded.model(**batch, use_cache=False).logits[0, -4:, :VOCAB].float().numpy()
    np.testing.assert_allclose(full, LOGITS["tail"][case["case"]], rtol=0, atol=TOLERANCE)


def test_chat_template_renders_llava_15_prompts(loaded):
    """The written template renders LLaVA-1.5's USER:/ASSISTANT: turn exactly as the reference's prompt."""
    case = GOLDEN["cases"][1]  # no system sentence
    question = case["prompt"].split("<image>\n", 1)[1].split(" ASSISTANT:", 1)[0]
    prefix = case["prompt"].split("ASSISTANT: ", 1)[1]
    assert loaded.render(question, prefix) == loaded._bos_text + case["prompt"]
    assert loaded.render(question).endswith(" ASSISTANT:")


def test_backend_image_path_on_a_square_frame(loaded):
    """The backend's own frame path (no padding needed) gives the reference logits for the square image."""
    case = next(c for c in GOLDEN["cases"] if c["image"].endswith("image2.png"))
    rgb = np.asarray(Image.open(FIXTURES / case["image"]).convert("RGB"))
    assert rgb.shape[0] == rgb.shape[1]
    image = to_pil(Frame.from_rgb(rgb), pad_fill=loaded.pad_fill(None))
    logits = loaded.next_token_logits([image], [loaded._bos_text + case["prompt"]])[0, :VOCAB].numpy()
    np.testing.assert_allclose(logits, LOGITS["last"][case["case"]], rtol=0, atol=TOLERANCE)


def test_batch_of_all_cases_equals_reference(loaded):
    """All three prompts (different lengths: left padding) in one batch."""
    cases = GOLDEN["cases"]
    logits = loaded.next_token_logits([reference_image(c) for c in cases],
                                      [loaded._bos_text + c["prompt"] for c in cases])[:, :VOCAB].numpy()
    np.testing.assert_allclose(logits, LOGITS["last"], rtol=0, atol=TOLERANCE)


# ---------------------------------------------------------------------------------------------
# What is written


def test_converted_directory_layout(converted):
    from safetensors import safe_open
    from transformers import AutoModelForImageTextToText, AutoProcessor

    config = json.loads((converted / "config.json").read_text())
    assert config["architectures"] == ["LlavaForConditionalGeneration"] and config["model_type"] == "llava"
    assert config["vision_feature_select_strategy"] == "default" and config["vision_feature_layer"] == -2
    assert "auto_map" not in config
    rows = config["text_config"]["vocab_size"]
    assert rows % 64 == 0 and rows >= VOCAB + 2
    assert config.get("image_token_id", config.get("image_token_index")) == VOCAB  # as transformers' conversion: <image> = 32000, <pad> = 32001
    assert not list(converted.glob("*.bin")) and not list(converted.parent.glob(".converted.converting-*"))
    processor = AutoProcessor.from_pretrained(converted, local_files_only=True)
    assert processor.patch_size == GOLDEN["vision"]["patch_size"]
    assert processor.vision_feature_select_strategy == "default" and processor.num_additional_image_tokens == 1
    assert processor.tokenizer.convert_tokens_to_ids("<pad>") == VOCAB + 1
    assert processor.tokenizer.pad_token == "<pad>"
    # Loaded as the LlamaTokenizer its config names, it still tokenizes as LLaVA did ("▁" after <image>).
    from transformers import LlamaTokenizer

    llama = LlamaTokenizer.from_pretrained(converted, local_files_only=True)
    image_token_id = llama.convert_tokens_to_ids("<image>")
    for case in GOLDEN["cases"]:
        ids = llama("<s>" + case["prompt"], add_special_tokens=False)["input_ids"]
        assert ids == [image_token_id if i == GOLDEN["image_token_index"] else i for i in case["input_ids"]]
    model, info = AutoModelForImageTextToText.from_pretrained(converted, local_files_only=True, use_safetensors=True,
                                                              output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    # New rows are the mean of the old ones, in the embeddings and in the LM head.
    with safe_open(str(converted / "model.safetensors"), framework="pt") as handle:
        for key in ("model.language_model.embed_tokens.weight", "lm_head.weight"):
            matrix = handle.get_tensor(key)
            assert matrix.shape[0] == rows
            torch.testing.assert_close(matrix[VOCAB:], matrix[:VOCAB].mean(0, keepdim=True).expand(rows - VOCAB, -1))
    # The vision tower and projector are the ones given, renamed.
    with safe_open(str(FIXTURES / "clip" / "model.safetensors"), framework="pt") as clip:
        expected = clip.get_tensor("vision_model.encoder.layers.1.mlp.fc1.weight")
    torch.testing.assert_close(model.model.vision_tower.encoder.layers[1].mlp.fc1.weight.detach(), expected)


def test_dtype_option(tmp_path):
    from safetensors import safe_open

    out = tmp_path / "half"
    LlavaConverter().convert(str(FIXTURES / "original"), str(out), vision_tower=str(FIXTURES / "clip"),
                             dtype="float16")
    with safe_open(str(out / "model.safetensors"), framework="pt") as handle:
        assert {handle.get_tensor(k).dtype for k in handle.keys()} == {torch.float16}
    assert json.loads((out / "config.json").read_text())["dtype"] == "float16"
    with pytest.raises(QplugError, match="dtype 'int8'"):
        convert(FIXTURES / "original", tmp_path / "bad", FIXTURES / "clip", dtype="int8")


def test_pickled_bin_shards_give_the_same_weights(tmp_path, release, converted):
    """PyTorch .bin shards (how real releases ship) are read with weights_only=True and convert identically."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    index = json.loads((release / "model.safetensors.index.json").read_text())
    weight_map = {}
    for n, name in enumerate(sorted(set(index["weight_map"].values())), 1):
        binary = f"pytorch_model-{n:05d}-of-00002.bin"
        torch.save(load_file(str(release / name)), release / binary)
        weight_map.update({k: binary for k, v in index["weight_map"].items() if v == name})
        (release / name).unlink()
    (release / "model.safetensors.index.json").unlink()
    (release / "pytorch_model.bin.index.json").write_text(json.dumps({"weight_map": weight_map}))
    out = tmp_path / "from-bin"
    convert(release, out, FIXTURES / "clip")
    with safe_open(str(out / "model.safetensors"), framework="pt") as a, \
            safe_open(str(converted / "model.safetensors"), framework="pt") as b:
        assert set(a.keys()) == set(b.keys())
        for key in a.keys():
            assert torch.equal(a.get_tensor(key), b.get_tensor(key)), key


def test_pickled_code_in_a_bin_shard_is_refused(tmp_path, release):
    """weights_only=True: a shard that pickles more than tensors is refused, never executed."""
    (release / "model-00001-of-00002.safetensors").unlink()
    (release / "model-00002-of-00002.safetensors").unlink()
    (release / "model.safetensors.index.json").unlink()
    torch.save({"model.norm.weight": torch.ones(2), "payload": _Payload()}, release / "pytorch_model.bin")
    with pytest.raises(QplugError, match="pytorch_model.bin: not a readable PyTorch weights file"):
        convert(release, tmp_path / "out", FIXTURES / "clip")
    assert not _Payload.ran


class _Payload:
    ran = False

    def __reduce__(self):
        return (_Payload._run, ())

    @staticmethod
    def _run():  # pragma: no cover - must never run
        _Payload.ran = True


def test_tokenizer_model_only(tmp_path, release, converted):
    """A release with only LLaMA's sentencepiece tokenizer.model: converted when sentencepiece is installed,
    else refused in one line that says what to install."""
    (release / "tokenizer.json").unlink()
    out = tmp_path / "spm"
    try:
        import sentencepiece  # noqa: F401
        import google.protobuf  # noqa: F401
    except ImportError:
        with pytest.raises(QplugError, match="pip install sentencepiece protobuf"):
            convert(release, out, FIXTURES / "clip")
        assert not out.exists()
        return
    convert(release, out, FIXTURES / "clip")
    from transformers import AutoTokenizer

    a = AutoTokenizer.from_pretrained(out, local_files_only=True)
    b = AutoTokenizer.from_pretrained(converted, local_files_only=True)
    for case in GOLDEN["cases"]:
        assert a(case["prompt"])["input_ids"] == b(case["prompt"])["input_ids"]


def test_auto_map_is_never_imported(tmp_path, release):
    """A release whose config or tokenizer config points at its own code: the conversion reads JSON only."""
    marker = tmp_path / "executed"
    code = f"open({str(marker)!r}, 'w').write('ran')\n"
    (release / "modeling_evil.py").write_text(code)
    (release / "tokenization_evil.py").write_text(code)
    config = json.loads((release / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "modeling_evil.EvilConfig", "AutoModelForCausalLM": "modeling_evil.Evil"}
    (release / "config.json").write_text(json.dumps(config))
    tokenizer_config = json.loads((release / "tokenizer_config.json").read_text())
    tokenizer_config["auto_map"] = {"AutoTokenizer": ["tokenization_evil.EvilTokenizer", None]}
    (release / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    before = set(sys.modules)
    out = tmp_path / "out"
    convert(release, out, FIXTURES / "clip")
    assert not marker.exists()
    assert not any("evil" in name for name in set(sys.modules) - before)
    for name in ("config.json", "tokenizer_config.json", "processor_config.json"):
        assert "auto_map" not in json.loads((out / name).read_text()), name
    assert not list(out.glob("*.py"))


# ---------------------------------------------------------------------------------------------
# The command line


def run_cli(capsys, *argv):
    code = cli.main(["convert", "llava", *map(str, argv)])
    return code, capsys.readouterr().err


def test_cli_converts(tmp_path, capsys):
    out = tmp_path / "llava-hf"
    code, err = run_cli(capsys, FIXTURES / "original", "--vision-tower", FIXTURES / "clip", out)
    assert code == 0, err
    assert f"wrote {out}" in err and "LlavaForConditionalGeneration" in err
    assert (out / "model.safetensors").is_file() and (out / "processor_config.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["llava-hf"]  # nothing left next to it


def test_cli_lists_the_converter(capsys):
    assert cli.main(["converters"]) == 0
    line = next(l for l in capsys.readouterr().out.splitlines() if l.startswith("llava "))
    assert "--vision-tower" in line and "--dtype?" in line and "[vlm]" in line


def _drop_key(release: Path, key: str) -> None:
    from safetensors.torch import load_file, save_file

    index = json.loads((release / "model.safetensors.index.json").read_text())
    shard = release / index["weight_map"].pop(key)
    tensors = load_file(str(shard))
    del tensors[key]
    save_file(tensors, str(shard))
    (release / "model.safetensors.index.json").write_text(json.dumps(index))


def _edit_config(release: Path, **changes) -> None:
    config = json.loads((release / "config.json").read_text())
    config.update(changes)
    (release / "config.json").write_text(json.dumps(config))


def _truncate(release: Path) -> None:
    shard = release / "model-00002-of-00002.safetensors"
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])


@pytest.mark.parametrize("breakage, message", [
    (lambda r, t: _drop_key(r, "model.mm_projector.2.weight"), "missing weight 'model.mm_projector.2.weight'"),
    (lambda r, t: _drop_key(r, "model.layers.1.mlp.up_proj.weight"), "missing weight 'model.layers.1.mlp.up_proj.weight'"),
    (lambda r, t: _edit_config(r, model_type="llama"), "model_type 'llama' is not an original LLaVA-1.5 checkpoint"),
    (lambda r, t: _edit_config(r, mm_projector_type="linear"), "mm_projector_type 'linear' is not supported"),
    (lambda r, t: _edit_config(r, mm_hidden_size=1024), "does not match the release's mm_hidden_size 1024"),
    (lambda r, t: (r / "config.json").unlink(), "config.json: missing"),
    (lambda r, t: ((r / "tokenizer.json").unlink(), (r / "tokenizer.model").unlink()), "missing tokenizer.model"),
    (lambda r, t: (r / "model-00001-of-00002.safetensors").unlink(),
     "model-00001-of-00002.safetensors: missing (listed in model.safetensors.index.json)"),
    (lambda r, t: _truncate(r), "model-00002-of-00002.safetensors: not a readable safetensors file (truncated?)"),
])
def test_cli_refuses_bad_releases(tmp_path, capsys, release, breakage, message):
    breakage(release, tmp_path)
    out = tmp_path / "out"
    code, err = run_cli(capsys, release, "--vision-tower", FIXTURES / "clip", out)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1, err
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]


@pytest.mark.parametrize("breakage, message", [
    (lambda c: shutil.rmtree(c), "no such directory"),
    (lambda c: (c / "model.safetensors").unlink(), "no weights"),
    (lambda c: (c / "preprocessor_config.json").unlink(), "missing preprocessor_config.json"),
    (lambda c: _edit_config(c, model_type="siglip_vision_model"), "model_type 'siglip_vision_model' is not a CLIP model"),
])
def test_cli_refuses_bad_vision_towers(tmp_path, capsys, breakage, message):
    clip = Path(shutil.copytree(FIXTURES / "clip", tmp_path / "clip"))
    breakage(clip)
    code, err = run_cli(capsys, FIXTURES / "original", "--vision-tower", clip, tmp_path / "out")
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


def test_cli_refuses_existing_output_and_missing_option(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    code, err = run_cli(capsys, FIXTURES / "original", "--vision-tower", FIXTURES / "clip", out)
    assert code == 2 and "already exists" in err and len(err.strip().splitlines()) == 1
    code, err = run_cli(capsys, FIXTURES / "original", tmp_path / "other")
    assert code == 2 and "needs --vision-tower" in err
    # The converter refuses an existing output by itself too (Python API).
    with pytest.raises(QplugError, match="already exists"):
        convert(FIXTURES / "original", out, FIXTURES / "clip")


def test_rename_key():
    assert convert_llava.rename_key("model.layers.3.self_attn.q_proj.weight") == \
        "model.language_model.layers.3.self_attn.q_proj.weight"
    assert convert_llava.rename_key("model.mm_projector.0.bias") == "model.multi_modal_projector.linear_1.bias"
    assert convert_llava.rename_key("lm_head.weight") == "lm_head.weight"
    assert convert_llava.rename_key("model.layers.0.self_attn.rotary_emb.inv_freq") is None
    with pytest.raises(QplugError, match="unrecognised weight 'model.vision_tower.x'"):
        convert_llava.rename_key("model.vision_tower.x")


def test_full_clip_model_directory_as_vision_tower(tmp_path, converted):
    """openai/clip-vit-large-patch14-336 is a CLIPModel (text tower too, pickled .bin): its vision half is used."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    clip = tmp_path / "clip-full"
    clip.mkdir()
    vision = json.loads((FIXTURES / "clip" / "config.json").read_text())
    (clip / "config.json").write_text(json.dumps({"architectures": ["CLIPModel"], "model_type": "clip",
                                                  "projection_dim": 32, "vision_config": vision,
                                                  "text_config": {"hidden_size": 8}}))
    shutil.copy(FIXTURES / "clip" / "preprocessor_config.json", clip)
    tensors = load_file(str(FIXTURES / "clip" / "model.safetensors"))
    tensors.update({"text_model.embeddings.token_embedding.weight": torch.zeros(4, 8),
                    "visual_projection.weight": torch.zeros(32, 48), "logit_scale": torch.tensor(1.0),
                    "vision_model.embeddings.position_ids": torch.arange(17)[None]})
    torch.save(tensors, clip / "pytorch_model.bin")
    out = tmp_path / "out"
    convert(FIXTURES / "original", out, clip)
    with safe_open(str(out / "model.safetensors"), framework="pt") as a, \
            safe_open(str(converted / "model.safetensors"), framework="pt") as b:
        assert set(a.keys()) == set(b.keys())
        assert all(torch.equal(a.get_tensor(k), b.get_tensor(k)) for k in a.keys())


def test_weights_that_do_not_fit_the_config_are_named(tmp_path, release):
    from safetensors.torch import load_file, save_file

    shard = release / "model-00002-of-00002.safetensors"
    tensors = load_file(str(shard))
    tensors["model.image_newline"] = torch.zeros(64)  # LLaVA-NeXT's, not a LLaVA-1.5 weight
    save_file(tensors, str(shard))
    index = json.loads((release / "model.safetensors.index.json").read_text())
    index["weight_map"]["model.image_newline"] = shard.name
    (release / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(QplugError, match="weight 'model.image_newline' is not part of a LLaVA-1.5 model"):
        convert(release, tmp_path / "a", FIXTURES / "clip")
    _edit_config(release, intermediate_size=96)
    with pytest.raises(QplugError, match=r"weight 'model.layers.0.mlp.(gate|up|down)_proj.weight' has shape \((128, 64|64, 128)\), the config implies"):
        convert(release, tmp_path / "b", FIXTURES / "clip")
    assert not list(tmp_path.glob(".*converting*"))


def test_large_models_are_written_in_shards(tmp_path, monkeypatch):
    monkeypatch.setattr(convert_llava, "SHARD_BYTES", 200_000)
    out = tmp_path / "sharded"
    convert(FIXTURES / "original", out, FIXTURES / "clip")
    index = json.loads((out / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) >= 3 and not (out / "model.safetensors").exists()
    backend.clear_cache()
    try:
        loaded = backend.load_backend(model=str(out), device="cpu", dtype="float32")
        case = GOLDEN["cases"][0]
        logits = loaded.next_token_logits([reference_image(case)], [loaded._bos_text + case["prompt"]])
        np.testing.assert_allclose(logits[0, :VOCAB].numpy(), LOGITS["last"][0], rtol=0, atol=TOLERANCE)
    finally:
        backend.clear_cache()

"""Weights that do not fit the model are a load error, never a silently random model.

transformers parses an original-LLaVA ``config.json`` as a default-size ``LlavaConfig`` and leaves
every tensor of a foreign key layout "missing", initialised at random, with only a warning table.
qplug refuses such checkpoints (``qplug_vlm.loadcheck``) and must still load every checkpoint that
is merely saved the usual way (tied ``lm_head``, old ``language_model.*`` key layouts).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

os.environ["OMP_NUM_THREADS"] = "1"

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
torch.set_num_threads(1)
np = pytest.importorskip("numpy")
Image = pytest.importorskip("PIL.Image")

from safetensors.torch import load_file, save_file  # noqa: E402

from qplug.errors import UsageError  # noqa: E402
from qplug_vlm import backend, loadcheck  # noqa: E402
from qplug_vlm.testing import build_tiny_llava, build_tiny_original_llava, llava_model, llava_processor, \
    tiny_tokenizer  # noqa: E402

#: The first names (sorted) the refusal of the original layout must show.
FIRST_MISSING = "model.language_model.embed_tokens.weight"
FIRST_UNEXPECTED = "model.embed_tokens.weight"


@pytest.fixture(autouse=True)
def fresh(monkeypatch):
    for name in (backend.ENV_MODEL, backend.ENV_ADAPTER, backend.ENV_DEVICE, backend.ENV_DTYPE):
        monkeypatch.delenv(name, raising=False)
    backend.clear_cache()
    yield
    backend.clear_cache()


@pytest.fixture(scope="module")
def tokenizer():
    return tiny_tokenizer()


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    return build_tiny_original_llava(tmp_path_factory.mktemp("original-llava"))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, tokenizer):
    return build_tiny_llava(tmp_path_factory.mktemp("llava"), tokenizer=tokenizer)


def copy_with(source, target, edit):
    """``source``'s checkpoint in ``target`` with its tensors changed by ``edit(dict)``."""
    target.mkdir(parents=True, exist_ok=True)
    for file in source.iterdir():
        if file.name != "model.safetensors":
            (target / file.name).write_bytes(file.read_bytes())
    tensors = load_file(str(source / "model.safetensors"))
    edit(tensors)
    save_file(tensors, str(target / "model.safetensors"), metadata={"format": "pt"})
    return target


def test_tiny_llava_saved_and_reloaded_loads_fine(tiny):
    loaded = backend.load_backend(model=tiny, device="cpu")
    assert type(loaded.model).__name__ == "LlavaForConditionalGeneration"


def test_tied_lm_head_is_not_a_missing_weight(tmp_path, tokenizer):
    """lm_head shared with the embeddings is not stored; that is not a missing tensor."""
    model = llava_model(tokenizer)
    model.config.tie_word_embeddings = True
    model.config.text_config.tie_word_embeddings = True
    model.tie_weights()
    model.save_pretrained(tmp_path)
    llava_processor(tokenizer).save_pretrained(tmp_path)
    stored = set(load_file(str(tmp_path / "model.safetensors")))
    assert not any(key.endswith("lm_head.weight") for key in stored)  # really tied, really absent
    loaded = backend.load_backend(model=tmp_path, device="cpu")
    head, embeddings = loaded.model.get_output_embeddings().weight, loaded.model.get_input_embeddings().weight
    assert head.data_ptr() == embeddings.data_ptr()


def test_original_llava_layout_is_refused_before_loading(original, monkeypatch):
    config = json.loads((original / "config.json").read_text())
    assert config["architectures"] == ["LlavaLlamaForCausalLM"] and "mm_vision_tower" in config
    assert any(k.startswith("model.mm_projector.0.") for k in load_file(str(original / "model.safetensors")))

    from transformers import AutoModelForImageTextToText

    def never(*args, **kwargs):  # a default-size (7B) random model must never be allocated
        raise AssertionError("from_pretrained was reached")

    monkeypatch.setattr(AutoModelForImageTextToText, "from_pretrained", never)
    with pytest.raises(loadcheck.IncompatibleWeights) as caught:
        backend.load_backend(model=original, device="cpu")
    message = str(caught.value)
    assert isinstance(caught.value, UsageError) and "\n" not in message
    assert message.startswith(str(original))
    assert f"missing ({FIRST_MISSING}," in message and f"unexpected ({FIRST_UNEXPECTED}," in message
    assert "LlavaLlamaForCausalLM" in message and "convert" in message


@pytest.mark.parametrize("edit, expected", [
    (lambda t: t.pop("multi_modal_projector.linear_2.bias"),
     "1 tensors missing (model.multi_modal_projector.linear_2.bias)"),
    (lambda t: t.__setitem__("stray.weight", torch.zeros(2)), "1 unexpected (stray.weight)"),
])
def test_one_missing_or_unexpected_tensor_is_caught_after_loading(tiny, tmp_path, edit, expected):
    assert "multi_modal_projector.linear_2.bias" in load_file(str(tiny / "model.safetensors"))  # the stored layout
    broken = copy_with(tiny, tmp_path / "broken", edit)
    loadcheck.preflight(__import__("transformers").AutoModelForImageTextToText, broken,
                        __import__("transformers").AutoConfig.from_pretrained(broken))  # below preflight's bar
    with pytest.raises(loadcheck.IncompatibleWeights, match="its weights do not fit") as caught:
        backend.load_backend(model=broken, device="cpu")
    assert expected in str(caught.value) and str(broken) in str(caught.value)


def test_the_shared_loader_refuses_for_training_too(original):
    """``backend.from_pretrained`` (also what qplug_training loads checkpoints with) applies the guard."""
    from transformers import AutoModelForImageTextToText

    with pytest.raises(loadcheck.IncompatibleWeights, match=FIRST_MISSING):
        backend.from_pretrained(AutoModelForImageTextToText, original, {"local_files_only": True,
                                                                        "use_safetensors": True})


def test_the_shipped_default_model_passes_the_guard():
    if not backend.has_default_model():
        pytest.skip("trimmed install without the default model")
    assert backend.load_backend(device="cpu").model is not None


def test_the_command_line_refusal_is_one_line(original, tmp_path):
    image = tmp_path / "x.png"
    Image.fromarray(np.zeros((32, 48, 3), dtype=np.uint8)).save(image)
    env = dict(os.environ, OMP_NUM_THREADS="1", QPLUG_LOAD_PLUGINS="images,video,vlm,reports")
    env.pop("QPLUG_MODEL", None)
    result = subprocess.run([sys.executable, "-m", "qplug", "score", str(image), "-s", "qalign", "--model",
                             str(original)], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if str(original) in line]
    assert len(errors) == 1 and FIRST_MISSING in errors[0], result.stderr

"""qplug_vlm.native: the default model's layout (FastVLM: EfficientNet + Llama) without transformers.

Every check compares the native path with the transformers path on the same checkpoint: the shipped
default model (whatever weights it holds: any checkpoint of the layout must pass) and random tiny
checkpoints of the layout with real squeeze-excite gates, non-trivial batch-norm statistics,
grouped-query attention and both depthwise paddings.
"""

from __future__ import annotations

import os

os.environ["OMP_NUM_THREADS"] = "1"

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
torch.set_num_threads(1)

from PIL import Image

from qplug.errors import UsageError
from qplug_vlm import backend
from qplug_vlm.backend import GenerationSettings
from qplug_vlm.native import ENV_NATIVE, Unsupported, load_native, read_spec
from qplug_vlm.native.adapter import NativeBackend
from qplug_vlm.prompts import METHODS

TOLERANCE = 1e-4
MCQ = "Which distortion is most visible?\nA. noise\nB. blur\nC. compression\nAnswer with the option's letter."


# ---------------------------------------------------------------------------------------------
# Checkpoints


def build_tiny_fast_vlm(directory: Path, seed: int = 0, act: str = "relu6", kv_heads: int = 2) -> Path:
    """A random FastVLM of the default model's layout, small: 64 px crops (4 image tokens), a narrow
    EfficientNet (real gates, random batch-norm statistics, one block with symmetric depthwise padding)
    and a 2-layer Llama with grouped-query attention."""
    from transformers import CLIPImageProcessorPil, EfficientNetConfig, FastVlmConfig, \
        FastVlmForConditionalGeneration, LlamaConfig, LlavaProcessor

    from qplug_vlm.configuration import LLAVA_TEMPLATE
    from qplug_vlm.testing import tiny_tokenizer

    tokenizer = tiny_tokenizer()
    vision = EfficientNetConfig(width_coefficient=0.25, depth_coefficient=0.5, image_size=64, hidden_act=act,
                                batch_norm_eps=1e-3, hidden_dim=320, hidden_size=320, depthwise_padding=[2])
    text = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=kv_heads, head_dim=16, max_position_embeddings=512,
                       initializer_range=0.2, bos_token_id=tokenizer.bos_token_id,
                       eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    config = FastVlmConfig(vision_config=vision, text_config=text,
                           image_token_id=tokenizer.convert_tokens_to_ids("<image>"), image_seq_length=4,
                           projector_hidden_act="gelu", vision_feature_select_strategy="full", vision_feature_layer=-1)
    torch.manual_seed(seed)
    model = FastVlmForConditionalGeneration(config).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
            elif isinstance(module, torch.nn.Conv2d):
                module.weight.normal_(0, (2.0 / module.weight[0].numel()) ** 0.5)
    image = CLIPImageProcessorPil(do_resize=False, size={"shortest_edge": 64}, crop_size={"height": 64, "width": 64},
                                  do_center_crop=True, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    processor = LlavaProcessor(image_processor=image, tokenizer=tokenizer, patch_size=32,
                               vision_feature_select_strategy="full", num_additional_image_tokens=0,
                               chat_template=LLAVA_TEMPLATE)
    directory.mkdir(parents=True, exist_ok=True)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_fast_vlm(tmp_path_factory.mktemp("native") / "tiny")


@pytest.fixture(scope="module")
def tiny_swish(tmp_path_factory):
    return build_tiny_fast_vlm(tmp_path_factory.mktemp("native") / "swish", seed=1, act="swish", kv_heads=4)


def pair(model: Path) -> tuple[NativeBackend, backend.Backend]:
    """(native, transformers) backends of one checkpoint on the CPU."""
    options = backend.resolve_options(model=str(model), device="cpu")
    native = load_native(options)
    assert isinstance(native, NativeBackend)
    return native, backend._load(options)


@pytest.fixture(scope="module")
def shipped():
    if not backend.has_default_model():
        pytest.skip("trimmed install without the default model")
    return pair(backend.DEFAULT_MODEL_DIR)


@pytest.fixture(scope="module")
def tiny_pair(tiny):
    return pair(tiny)


def images(crop: int) -> list[Image.Image]:
    """Frames of several sizes: the crop itself, larger (cropped), smaller (zero-padded), odd, grey."""
    rng = np.random.default_rng(7)
    sizes = [(crop, crop), (crop + 76, crop + 176), (crop // 2 + 1, crop - 3), (crop - 1, 2 * crop + 3)]
    out = [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for h, w in sizes]
    return out + [Image.fromarray(rng.integers(0, 256, (crop, crop), dtype=np.uint8)).convert("L")]


def prompts(b: backend.Backend) -> list[str]:
    """qalign, qbench, a description, a multiple-choice question and a continued answer."""
    out = [b.render(*METHODS[name].prompt("quality", "image")) for name in ("qalign", "qbench")]
    return out + [b.render("Describe the quality of this image."), b.render(MCQ),
                  b.render(*METHODS["qalign"].prompt("aesthetics", "video"))]


# ---------------------------------------------------------------------------------------------
# The same numbers as transformers


@pytest.mark.parametrize("which", ["shipped", "tiny_pair"])
def test_prompts_inputs_and_logits_equal_the_transformers_path(which, request):
    native, reference = request.getfixturevalue(which)
    crop = native.native_crop[0]
    assert native.native_crop == reference.native_crop and native.pad_fill(None) == reference.pad_fill(None)
    texts = prompts(reference)
    assert prompts(native) == texts
    frames = images(crop)
    for text in texts:
        mine, theirs = native.prepare(frames, [text] * len(frames)), reference.prepare(frames, [text] * len(frames))
        for key in ("input_ids", "attention_mask", "pixel_values"):
            assert torch.equal(mine[key], theirs[key]), key
        torch.testing.assert_close(native.forward(mine), reference.forward(theirs), rtol=0, atol=TOLERANCE)
    # A batch of different prompts (left padding): the same as transformers and as one prompt at a time.
    mixed = [texts[i % len(texts)] for i in range(len(frames))]
    batch = native.next_token_logits(frames, mixed)
    torch.testing.assert_close(batch, reference.next_token_logits(frames, mixed), rtol=0, atol=TOLERANCE)
    for i, (frame, text) in enumerate(zip(frames, mixed)):
        torch.testing.assert_close(native.next_token_logits([frame], [text])[0], batch[i], rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize("which", ["shipped", "tiny_pair"])
def test_level_words_and_scores_resolve_the_same(which, request):
    native, reference = request.getfixturevalue(which)
    for name in ("qalign", "qbench"):
        method = METHODS[name]
        text = reference.render(*method.prompt("quality", "image"))
        for level_set in method.level_sets(bool(method.synonyms)):
            words = level_set.words
            assert native.first_tokens(text, words, name) == reference.first_tokens(text, words, name)
    letters = native.first_tokens(native.render(MCQ), ["A", "B", "C"], "mcq")
    assert letters == reference.first_tokens(reference.render(MCQ), ["A", "B", "C"], "mcq")
    assert native.model_type == reference.model_type and native.architectures == reference.architectures


def reference_ids(reference: backend.Backend, frames, texts, settings: GenerationSettings) -> list[list[int]]:
    """transformers' generate, new tokens up to the first end token."""
    batch = reference.prepare(frames, texts)
    with torch.inference_mode():
        if settings.do_sample and settings.seed is not None:
            torch.manual_seed(settings.seed)
        out = reference.model.generate(**batch, pad_token_id=reference.tokenizer.pad_token_id, **settings.kwargs())
    eos = reference.model.generation_config.eos_token_id
    stop = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    rows = []
    for row in out[:, batch["input_ids"].shape[1]:].tolist():
        cut = next((i for i, t in enumerate(row) if t in stop), len(row))
        rows.append(row[:cut])
    return rows


@pytest.mark.parametrize("which", ["shipped", "tiny_pair"])
def test_greedy_generation_is_token_identical(which, request):
    native, reference = request.getfixturevalue(which)
    frames = images(native.native_crop[0])[:3]
    texts = [reference.render("Describe the quality of this image."), reference.render(MCQ),
             reference.render("What is the main problem of this image?")]
    settings = GenerationSettings(max_new_tokens=32)
    assert native.generate_ids(frames, texts, settings) == reference_ids(reference, frames, texts, settings)
    assert native.generate(frames, texts, settings) == reference.generate(frames, texts, settings)
    # Without an end token every row runs the full length: 32 tokens each, still identical.
    saved = (native.model.generation_config.eos_token_id, reference.model.generation_config.eos_token_id)
    native.model.generation_config.eos_token_id = reference.model.generation_config.eos_token_id = None
    try:
        mine = native.generate_ids(frames, texts, settings)
        assert [len(r) for r in mine] == [32] * 3
        assert mine == reference_ids(reference, frames, texts, settings)
    finally:
        native.model.generation_config.eos_token_id, reference.model.generation_config.eos_token_id = saved


def test_sampling_draws_what_transformers_draws(tiny_pair):
    native, reference = tiny_pair
    frames = images(64)[:2]
    texts = [reference.render("Describe the quality of this image.")] * 2
    for settings in (GenerationSettings(max_new_tokens=12, do_sample=True, seed=3),
                     GenerationSettings(max_new_tokens=12, do_sample=True, temperature=0.7, top_p=0.9, seed=4)):
        assert native.generate_ids(frames, texts, settings) == reference_ids(reference, frames, texts, settings)


def test_the_tower_with_swish_and_full_attention_heads(tiny_swish):
    native, reference = pair(tiny_swish)
    frames = images(64)
    text = reference.render(*METHODS["qalign"].prompt("quality", "image"))
    torch.testing.assert_close(native.next_token_logits(frames, [text] * len(frames)),
                               reference.next_token_logits(frames, [text] * len(frames)), rtol=0, atol=TOLERANCE)


def test_chat_template_and_tokenizer_render_as_transformers_does(shipped):
    native, reference = shipped
    image = {"type": "image"}
    conversations = [
        ([{"role": "user", "content": [image, {"type": "text", "text": "Rate it."}]}], True, False),
        ([{"role": "user", "content": [{"type": "text", "text": "Look:\n"}, image]},
          {"role": "assistant", "content": [{"type": "text", "text": "It is "}]}], False, True),
        ([{"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
          {"role": "user", "content": [image, {"type": "text", "text": "Why?"}]},
          {"role": "assistant", "content": [{"type": "text", "text": "Blur."}]},
          {"role": "user", "content": [{"type": "text", "text": "And?"}]}], True, False),
    ]
    for messages, generation_prompt, continue_final in conversations:
        kwargs = {"tokenize": False, "add_generation_prompt": generation_prompt,
                  "continue_final_message": continue_final}
        assert native.processor.apply_chat_template(messages, **kwargs) == \
            reference.processor.apply_chat_template(messages, **kwargs)
    texts = ["", "a", " The quality of the image is excellent.", "<s>USER: <image>\nhi ASSISTANT:",
             "ünï  côde\n\t42%"]
    for text in texts:
        for special in (True, False):
            ids = native.tokenizer(text, add_special_tokens=special)["input_ids"]
            assert ids == reference.tokenizer(text, add_special_tokens=special)["input_ids"]
            for skip in (True, False):
                assert native.tokenizer.decode(ids, skip_special_tokens=skip) == \
                    reference.tokenizer.decode(ids, skip_special_tokens=skip)
    assert native._bos_text == reference._bos_text
    for name in ("bos_token_id", "eos_token_id", "pad_token_id", "unk_token_id", "unk_token"):
        assert getattr(native.tokenizer, name) == getattr(reference.tokenizer, name), name
    assert len(native.tokenizer) == len(reference.tokenizer)


# ---------------------------------------------------------------------------------------------
# When the native path is used


def test_load_backend_takes_the_native_path_unless_turned_off(tiny, monkeypatch):
    monkeypatch.delenv(ENV_NATIVE, raising=False)
    assert isinstance(backend.load_backend(model=str(tiny), device="cpu"), NativeBackend)
    monkeypatch.setenv(ENV_NATIVE, "0")
    generic = backend.load_backend(model=str(tiny), device="cpu")
    assert type(generic) is backend.Backend
    served = backend.load_backend(model=str(tiny), device="cpu")
    assert served is generic  # cached per path
    monkeypatch.setenv(ENV_NATIVE, "maybe")
    with pytest.raises(UsageError, match="QPLUG_NATIVE"):
        backend.load_backend(model=str(tiny), device="cpu")


def test_what_the_native_path_does_not_implement_goes_to_transformers(tiny, tmp_path, monkeypatch, caplog):
    monkeypatch.delenv(ENV_NATIVE, raising=False)
    options = backend.resolve_options(model=str(tiny), device="cpu")
    from dataclasses import replace

    caplog.set_level("WARNING", logger="qplug.vlm")
    assert load_native(replace(options, adapter=str(tmp_path))) is None  # a peft adapter needs transformers
    other = tmp_path / "llava"
    shutil.copytree(tiny, other)
    (other / "config.json").write_text(json.dumps({**json.loads((tiny / "config.json").read_text()),
                                                   "model_type": "llava"}))
    assert load_native(backend.resolve_options(model=str(other), device="cpu")) is None
    assert not caplog.records  # the user's choice or another architecture: nothing lost, nothing said
    edits = [("processor_config.json", ("image_processor", "do_resize"), True),
             ("config.json", ("text_config", "rope_parameters"), {"rope_type": "linear", "factor": 2.0,
                                                                  "rope_theta": 10000.0}),
             ("config.json", ("vision_config", "hidden_act"), "gelu_new"),
             ("config.json", ("projector_hidden_act",), "relu"),
             ("generation_config.json", ("repetition_penalty",), 1.3)]
    for file, keys, value in edits:
        copy = tmp_path / f"edit-{keys[-1]}"
        shutil.copytree(tiny, copy)
        data = json.loads((copy / file).read_text())
        target = data
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value
        (copy / file).write_text(json.dumps(data))
        with pytest.raises(Unsupported):
            read_spec(copy)
        caplog.clear()
        assert load_native(backend.resolve_options(model=str(copy), device="cpu")) is None
        assert [r.levelname for r in caplog.records] == ["WARNING"]  # qplug's layout: the slow start is said
        assert str(copy) in caplog.text and "slower start-up" in caplog.text
        monkeypatch.setenv(ENV_NATIVE, "1")
        with pytest.raises(UsageError, match="cannot take the native path"):
            load_native(backend.resolve_options(model=str(copy), device="cpu"))
        monkeypatch.delenv(ENV_NATIVE)


# ---------------------------------------------------------------------------------------------
# The load guard


def rewritten(tiny: Path, directory: Path, edit) -> Path:
    from safetensors.torch import load_file, save_file

    shutil.copytree(tiny, directory)
    state = load_file(str(directory / "model.safetensors"))
    edit(state)
    save_file(state, str(directory / "model.safetensors"), metadata={"format": "pt"})
    return directory


def test_missing_unexpected_and_misshapen_tensors_are_one_line_errors(tiny, tmp_path, monkeypatch):
    from qplug_vlm.loadcheck import IncompatibleWeights

    monkeypatch.delenv(ENV_NATIVE, raising=False)
    gone = "model.vision_tower.encoder.blocks.1.depthwise_conv.depthwise_norm.running_var"
    cases = {
        "missing": (lambda s: s.pop(gone), f"1 of \\d+ tensors missing \\({gone}\\)"),
        "unexpected": (lambda s: s.update({"model.extra.weight": torch.zeros(2)}),
                       "1 unexpected \\(model.extra.weight\\)"),
        "shape": (lambda s: s.update({"lm_head.weight": s["lm_head.weight"][:-1]}),
                  "1 of the wrong shape \\(lm_head.weight\\)"),
    }
    for name, (edit, expected) in cases.items():
        directory = rewritten(tiny, tmp_path / name, edit)
        with pytest.raises(IncompatibleWeights, match=expected) as caught:
            load_native(backend.resolve_options(model=str(directory), device="cpu"))
        assert str(directory) in str(caught.value) and "\n" not in str(caught.value)


def test_a_truncated_weights_file_is_a_one_line_error_naming_it(tmp_path):
    if not backend.has_default_model():
        pytest.skip("trimmed install without the default model")
    copy = tmp_path / "model"
    shutil.copytree(backend.DEFAULT_MODEL_DIR, copy)
    weights = copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    image = tmp_path / "x.png"
    Image.fromarray(np.zeros((32, 48, 3), dtype=np.uint8)).save(image)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.pop(ENV_NATIVE, None)
    done = subprocess.run([sys.executable, "-m", "qplug", "score", str(image), "-s", "qalign", "--model", str(copy)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert "Traceback" not in done.stderr and len([l for l in lines if str(weights) in l]) == 1, done.stderr


# ---------------------------------------------------------------------------------------------
# The command line: same results, no transformers


def qplug(*args: str, native: bool, out: Path) -> list[dict]:
    env = dict(os.environ, OMP_NUM_THREADS="1", **{ENV_NATIVE: "1" if native else "0"})
    env.pop("QPLUG_MODEL", None)
    done = subprocess.run([sys.executable, "-m", "qplug", *args, "--out", str(out), "--quiet"], capture_output=True,
                          text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return [r for r in map(json.loads, out.read_text().splitlines()) if r.get("type") == "frame"]


def test_the_command_line_scores_and_describes_the_same_on_both_paths(tmp_path):
    if not backend.has_default_model():
        pytest.skip("trimmed install without the default model")
    rng = np.random.default_rng(3)
    paths = []
    for i, (h, w) in enumerate([(480, 640), (200, 180)]):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(paths[-1])
    args = ("score", *map(str, paths), "-s", "qalign", "-s", "qbench", "--describer", "vlm",
            "--option", "vlm.max_new_tokens=24")
    native = qplug(*args, native=True, out=tmp_path / "native.jsonl")
    generic = qplug(*args, native=False, out=tmp_path / "generic.jsonl")
    assert len(native) == len(generic) == 2
    for mine, theirs in zip(native, generic):
        assert mine["descriptions"] == theirs["descriptions"] and mine["descriptions"]
        for name, value in theirs["scores"].items():
            assert mine["scores"][name] == pytest.approx(value, abs=1e-5)


def test_scoring_a_frame_never_imports_transformers(tmp_path):
    if not backend.has_default_model():
        pytest.skip("trimmed install without the default model")
    image = tmp_path / "x.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)).save(image)
    code = ("import sys, qplug.api\n"
            f"scores = qplug.api.score({str(image)!r}, scorers=['qalign', 'qbench']).scores('qalign')\n"
            "assert len(scores) == 1 and 1 <= scores[0] <= 5, scores\n"
            "from qplug_vlm.backend import load_backend\n"
            "assert type(load_backend()).__name__ == 'NativeBackend'\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('transformers', 'peft', 'accelerate')))\n")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.pop(ENV_NATIVE, None)
    env.pop("QPLUG_MODEL", None)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"

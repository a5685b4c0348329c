"""qplug's own mPLUG-Owl2 (qplug_vlm.mplug_owl2) against golden outputs of the reference implementation.

The fixtures in tests/fixtures/mplug_owl2_reference/ were written by scripts/make_mplug_owl2_fixtures.py
with Q-Future/Q-Align's code (transformers 4.36.2, torch 2.13, float32, eager attention) on a tiny
random checkpoint in the released layout; that checkpoint is rebuilt here bit for bit from its seed
(qplug_vlm.mplug_owl2.tiny) and the key list the reference produced.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
from PIL import Image  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402

from qplug.errors import UsageError  # noqa: E402
from qplug_vlm.mplug_owl2 import (IMAGE_TOKEN_INDEX, MPLUGOwl2Config, MPLUGOwl2ForCausalLM, is_mplug_owl2,  # noqa: E402
                                  load_mplug_owl2, prepare_batch, qalign_prompt, score_qalign, tiny, tokenize_prompt)

FIXTURES = Path(__file__).parent / "fixtures" / "mplug_owl2_reference"
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def reference() -> tuple[dict, dict[str, np.ndarray]]:
    meta = json.loads((FIXTURES / "reference.json").read_text(encoding="utf-8"))
    with np.load(FIXTURES / "reference.npz") as arrays:
        return meta, {name: arrays[name] for name in arrays.files}


def _tiny_config(meta: dict) -> dict:
    return dict(tiny.TINY_CONFIG, vocab_size=meta["vocab_size"])


def _write_checkpoint(directory: Path, meta: dict, drop: tuple[str, ...] = (), extra: dict | None = None,
                      shards: int = 1) -> Path:
    """The tiny checkpoint as the reference saw it (same keys, same values), in safetensors."""
    directory.mkdir(parents=True, exist_ok=True)
    config = _tiny_config(meta)
    (directory / "config.json").write_text(json.dumps(config), encoding="utf-8")
    for file in (FIXTURES / "tokenizer").iterdir():
        shutil.copy(file, directory / file.name)
    state = tiny.tiny_state_dict({k: tuple(v) for k, v in meta["tiny_keys"].items()}, config)
    state = {k: v for k, v in state.items() if not k.endswith(drop)} if drop else state
    state.update(extra or {})
    names = sorted(state)
    if shards == 1:
        save_file(state, str(directory / "model.safetensors"), metadata={"format": "pt"})
    else:
        weight_map = {}
        for index in range(shards):
            part = names[index::shards]
            file = f"model-{index + 1:05d}-of-{shards:05d}.safetensors"
            save_file({k: state[k] for k in part}, str(directory / file), metadata={"format": "pt"})
            weight_map.update({k: file for k in part})
        (directory / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return directory


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, reference) -> Path:
    return _write_checkpoint(tmp_path_factory.mktemp("mplug_owl2") / "tiny", reference[0])


@pytest.fixture(scope="module")
def loaded(checkpoint):
    return load_mplug_owl2(checkpoint, device="cpu", dtype="float32")


@pytest.fixture(scope="module")
def images() -> list[Image.Image]:
    return [Image.fromarray(array) for array in tiny.tiny_images()]


# ---------------------------------------------------------------------------------------------
# Layout


def test_released_layout_has_exactly_the_reference_keys(reference):
    """Built at the released size (LLaMA-2-7B + ViT-L/14-448 + 6-layer abstractor), on the meta device:
    every state-dict name and shape is the reference's, nothing more, nothing less."""
    meta, _ = reference
    config = MPLUGOwl2Config.from_released({"model_type": "mplug_owl2", "vocab_size": 32000, "hidden_size": 4096,
                                            "intermediate_size": 11008, "num_hidden_layers": 32,
                                            "num_attention_heads": 32, "num_key_value_heads": 32,
                                            "max_position_embeddings": 4096, "rms_norm_eps": 1e-5,
                                            "rope_theta": 10000.0, "rope_scaling": None})
    with torch.device("meta"):
        model = MPLUGOwl2ForCausalLM(config)
    ours = {name: list(t.shape) for name, t in model.state_dict().items()}
    assert ours == meta["released_keys"]
    assert len(ours) == 862


def test_tiny_layout_matches_and_loads_strictly(reference, loaded):
    meta, _ = reference
    model, _, _ = loaded
    assert {name: list(t.shape) for name, t in model.state_dict().items()} == meta["tiny_keys"]
    assert not any(t.is_meta for t in model.state_dict().values())


def test_position_tables_equal_the_reference_buffers(reference):
    assert reference[0]["position_table_max_error"] == 0.0


def test_config_reads_released_rope_fields():
    config = MPLUGOwl2Config.from_released({"model_type": "mplug_owl2", "rope_theta": 5e5,
                                            "rope_scaling": {"type": "linear", "factor": 2.0},
                                            "visual_config": {"visual_model": {"num_hidden_layers": 3}}})
    assert config.rope_parameters == {"rope_type": "linear", "rope_theta": 5e5, "factor": 2.0}
    assert config.vision.num_hidden_layers == 3 and config.vision.image_size == 448
    assert config.abstractor.num_learnable_queries == 64 and config.num_visual_tokens == 65


def test_is_mplug_owl2(tmp_path, checkpoint):
    assert is_mplug_owl2(checkpoint)
    assert not is_mplug_owl2(tmp_path)  # no config.json
    (tmp_path / "config.json").write_text('{"model_type": "llava"}')
    assert not is_mplug_owl2(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    assert not is_mplug_owl2(tmp_path)


def test_importing_the_package_does_not_import_torch():
    code = "import sys, qplug_vlm.mplug_owl2 as m; m.is_mplug_owl2('.'); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---------------------------------------------------------------------------------------------
# Reference equality


def test_pixels_match_the_reference_processor(reference, loaded, images):
    _, arrays = reference
    _, _, processor = loaded
    assert processor.pad_colour == tuple(reference[0]["pad_fill"]) == (122, 116, 104)
    for k, image in enumerate(images):
        values = processor([image])[0].numpy().reshape(-1)
        np.testing.assert_allclose(values[arrays["pixel_sample_index"]], arrays[f"pixels_{k}_sample"], atol=1e-6)
        moments = [values.astype(np.float64).sum(), np.abs(values.astype(np.float64)).sum(),
                   (values.astype(np.float64) ** 2).sum()]
        np.testing.assert_allclose(moments, arrays[f"pixels_{k}_moments"], rtol=1e-7)


def test_prompt_tokens_match_the_reference(reference, loaded):
    meta, _ = reference
    _, tokenizer, _ = loaded
    for case in meta["cases"]:
        assert tokenize_prompt(tokenizer, case["prompt"]) == case["input_ids"]
        assert case["input_ids"].count(IMAGE_TOKEN_INDEX) == 1
    assert qalign_prompt() == meta["cases"][0]["prompt"]
    assert qalign_prompt(aspect="aesthetics") == meta["cases"][2]["prompt"]


@pytest.mark.parametrize("case", [0, 1, 2])
def test_logits_match_the_reference(reference, loaded, images, case):
    meta, arrays = reference
    model, _, processor = loaded
    spec = meta["cases"][case]
    with torch.inference_mode():
        logits = model(torch.tensor([spec["input_ids"]]), pixel_values=processor([images[spec["image"]]])).logits[0]
    assert logits.shape == (spec["sequence_length"], meta["vocab_size"])
    # Positions: first token, the first and middle image tokens, the end-of-image token, the last four.
    np.testing.assert_allclose(logits[spec["positions"]].numpy(), arrays[f"case_{case}_logits"], atol=TOLERANCE,
                               rtol=0)


def test_qalign_scores_match_the_reference(reference, loaded, images):
    meta, arrays = reference
    model, tokenizer, processor = loaded
    for spec in meta["cases"]:
        aspect = "aesthetics" if "aesthetics" in spec["prompt"] else "quality"
        [score] = score_qalign(model, tokenizer, processor, [images[spec["image"]]], aspect=aspect)
        assert abs(score.value - spec["score"]) < TOLERANCE
        assert list(score.levels) == meta["level_words"] == ["excellent", "good", "fair", "poor", "bad"]
        np.testing.assert_allclose(list(score.levels.values()), spec["level_probabilities"], atol=TOLERANCE)
        assert abs(score.normalised - (score.value - 1) / 4) < 1e-12
    batch = score_qalign(model, tokenizer, processor, images[:2], batch_size=2)
    np.testing.assert_allclose([s.value for s in batch], meta["batch"]["scores"], atol=TOLERANCE)
    # The reference's own batched forward (two images, one prompt) gives the same last logits.
    inputs = prepare_batch(tokenizer, processor, images[:2], [qalign_prompt()] * 2)
    with torch.inference_mode():
        last = model(**inputs, logits_to_keep=1).logits[:, -1]
    np.testing.assert_allclose(last.numpy(), arrays["batch_last_logits"], atol=TOLERANCE, rtol=0)


# ---------------------------------------------------------------------------------------------
# Batching


def test_batch_equals_single(loaded, images):
    model, tokenizer, processor = loaded
    frames = images + [images[0].transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    single = [s.value for image in frames for s in score_qalign(model, tokenizer, processor, [image])]
    batched = [s.value for s in score_qalign(model, tokenizer, processor, frames, batch_size=4)]
    np.testing.assert_allclose(batched, single, atol=TOLERANCE, rtol=0)
    assert max(single) - min(single) > 1e-3  # the frames do score differently


def test_rows_of_different_length_are_left_padded_without_effect(loaded, images):
    model, tokenizer, processor = loaded
    prompts = [qalign_prompt(), "USER: <|image|>\nASSISTANT: The quality is", qalign_prompt("aesthetics", "video")]
    lengths = {len(tokenize_prompt(tokenizer, p)) for p in prompts}
    assert len(lengths) > 1
    with torch.inference_mode():
        batch = prepare_batch(tokenizer, processor, images, prompts)
        together = model(**batch, logits_to_keep=1).logits[:, -1]
        alone = torch.cat([model(**prepare_batch(tokenizer, processor, [image], [prompt]),
                                 logits_to_keep=1).logits[:, -1] for image, prompt in zip(images, prompts)])
    np.testing.assert_allclose(together.numpy(), alone.numpy(), atol=TOLERANCE, rtol=0)


def test_checkpoint_without_position_tables_and_sharded_gives_the_same_logits(tmp_path, reference, loaded, images):
    meta, arrays = reference
    directory = _write_checkpoint(tmp_path / "sharded", meta, drop=("q_pos_embed", "k_pos_embed"), shards=3)
    model, _, processor = load_mplug_owl2(directory)
    spec = meta["cases"][0]
    with torch.inference_mode():
        logits = model(torch.tensor([spec["input_ids"]]), pixel_values=processor([images[0]])).logits[0]
    np.testing.assert_allclose(logits[spec["positions"]].numpy(), arrays["case_0_logits"], atol=TOLERANCE, rtol=0)


# ---------------------------------------------------------------------------------------------
# Bad input: one line, naming the file


def _one_line_error(directory: Path) -> str:
    with pytest.raises(UsageError) as info:
        load_mplug_owl2(directory)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_truncated_shard_is_refused(tmp_path, reference):
    directory = _write_checkpoint(tmp_path / "truncated", reference[0])
    weights = directory / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    message = _one_line_error(directory)
    assert str(weights) in message and "safetensors" in message


def test_wrong_model_type_is_refused(tmp_path, reference):
    directory = _write_checkpoint(tmp_path / "llava", reference[0])
    config = json.loads((directory / "config.json").read_text())
    (directory / "config.json").write_text(json.dumps(dict(config, model_type="llava")))
    message = _one_line_error(directory)
    assert str(directory / "config.json") in message and "'llava'" in message


def test_pickled_weights_only_are_refused(tmp_path, reference):
    directory = _write_checkpoint(tmp_path / "pickled", reference[0])
    (directory / "model.safetensors").rename(directory / "pytorch_model.bin")
    message = _one_line_error(directory)
    assert str(directory / "pytorch_model.bin") in message and "qplug convert" in message


def test_missing_and_unexpected_tensors_are_refused(tmp_path, reference):
    meta = reference[0]
    missing = _one_line_error(_write_checkpoint(tmp_path / "missing", meta, drop=("lm_head.weight",)))
    assert "model.safetensors" in missing and "lm_head.weight" in missing and "missing" in missing
    extra = {"model.layers.0.self_attn.k_proj.multiway.2.weight": np.zeros((64, 64), np.float32)}
    unexpected = _one_line_error(_write_checkpoint(tmp_path / "extra", meta, extra=extra))
    assert "model.safetensors" in unexpected and "multiway.2.weight" in unexpected and "unexpected" in unexpected


def test_saved_rope_frequencies_of_older_transformers_are_ignored(tmp_path, reference):
    extra = {f"model.layers.{i}.self_attn.rotary_emb.inv_freq": np.zeros(8, np.float32) for i in range(2)}
    model, _, _ = load_mplug_owl2(_write_checkpoint(tmp_path / "inv_freq", reference[0], extra=extra))
    assert not any("inv_freq" in name for name in model.state_dict())


def test_wrong_shape_and_missing_shard_are_refused(tmp_path, reference):
    meta = reference[0]
    wrong = {"lm_head.weight": np.zeros((3, 64), np.float32)}
    message = _one_line_error(_write_checkpoint(tmp_path / "shape", meta, extra=wrong))
    assert "model.safetensors" in message and "lm_head.weight" in message and "(3, 64)" in message
    directory = _write_checkpoint(tmp_path / "shards", meta, shards=2)
    (directory / "model-00002-of-00002.safetensors").unlink()
    message = _one_line_error(directory)
    assert "model-00002-of-00002.safetensors" in message and "missing" in message


def test_prompt_needs_one_image_per_row(loaded, images):
    _, tokenizer, processor = loaded
    with pytest.raises(ValueError, match="exactly one"):
        prepare_batch(tokenizer, processor, images[:1], ["USER: no image\nASSISTANT:"])


# ---------------------------------------------------------------------------------------------
# Released checkpoints' SentencePiece tokenizer (tokenizer.model + a LlamaTokenizer config)


def _sentencepiece_checkpoint(tmp_path: Path, reference) -> Path:
    directory = _write_checkpoint(tmp_path / "sentencepiece", reference[0])
    for name in ("tokenizer.json", "special_tokens_map.json", "tokenizer_config.json"):
        (directory / name).unlink(missing_ok=True)
    for name in ("tokenizer.model", "tokenizer_config.json"):
        shutil.copy(FIXTURES / "sentencepiece" / name, directory / name)
    return directory


def test_sentencepiece_tokenizer_gives_the_reference_ids(tmp_path, reference):
    """transformers 5's LlamaTokenizer (converted from tokenizer.model) + tokenize_prompt give the ids of the
    reference's slow LlamaTokenizer + tokenizer_image_token, and the same level tokens."""
    pytest.importorskip("sentencepiece")
    from transformers import AutoTokenizer

    from qplug_vlm.mplug_owl2.scoring import level_token_ids

    expected = json.loads((FIXTURES / "sentencepiece" / "reference_ids.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(str(FIXTURES / "sentencepiece"), local_files_only=True)
    for prompt, ids in expected["prompts"].items():
        assert tokenize_prompt(tokenizer, prompt) == ids
    assert level_token_ids(tokenizer, reference[0]["level_words"]) == expected["level_ids"]


def test_sentencepiece_tokenizer_without_sentencepiece_is_a_clear_error(tmp_path, reference):
    import importlib.util

    if importlib.util.find_spec("sentencepiece") is not None:
        pytest.skip("sentencepiece is installed here")
    directory = _sentencepiece_checkpoint(tmp_path, reference)
    message = _one_line_error(directory)
    assert str(directory / "tokenizer.model") in message and "pip install sentencepiece" in message


def test_qplug_score_runs_an_mplug_owl2_directory_with_reference_scores(reference, checkpoint, images, tmp_path):
    """``qplug score --model DIR -s qalign`` on a ``model_type: mplug_owl2`` directory: no remote code,
    Q-Align's numbers, and a clear refusal for an option Q-Align's read-out does not have."""
    import subprocess
    import sys

    meta, _ = reference
    quality = [spec for spec in meta["cases"] if "the quality of this image" in spec["prompt"]]
    paths = []
    for spec in quality:
        path = tmp_path / f"case{spec['image']}.png"
        images[spec["image"]].save(path)
        paths.append(path)
    env = dict(os.environ, QPLUG_LOAD_PLUGINS="images,vlm,reports", OMP_NUM_THREADS="1")
    out = tmp_path / "r.jsonl"
    done = subprocess.run([sys.executable, "-m", "qplug", "score", *map(str, paths), "-s", "qalign", "--model",
                           str(checkpoint), "--device", "cpu", "--option", "qalign.dtype=float32", "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    got = {Path(r["source"]).name: r["scores"]["qalign"] for r in map(json.loads, out.read_text().splitlines())
           if r["type"] == "frame"}
    for spec, path in zip(quality, paths):
        assert abs(got[path.name] - spec["score"]) < TOLERANCE
    refused = subprocess.run([sys.executable, "-m", "qplug", "score", str(paths[0]), "-s", "qalign", "--model",
                              str(checkpoint), "--option", "qalign.synonyms=true"], capture_output=True, text=True,
                             env=env, timeout=300)
    assert refused.returncode == 2 and "takes no synonyms option" in refused.stderr
    assert "Traceback" not in refused.stderr

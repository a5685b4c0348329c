"""Training and evaluation (issue 4) on tiny models built here, with synthetic data written to tmp.

Everything runs on one CPU thread in well under a minute and a half. Models are random-init and tiny:
the tests check mechanics (labels, loss going down, exact resume, exports qplug loads, evaluation
outputs), never what a model has learnt about image quality.
"""

from __future__ import annotations

import os

os.environ["OMP_NUM_THREADS"] = "1"

import json
import math
import random
import tomllib
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")
pytest.importorskip("accelerate")
torch.set_num_threads(1)

import qplug.api
from qplug_vlm import backend as vlm_backend
from qplug_vlm.testing import build_tiny_llava

from qplug_training.data import make_record
from qplug_training.dataset import IGNORE, BatchPlan, Collator, Encoder, PlanSampler, RecordDataset
from qplug_training.evaluate import evaluate, markdown, parse_judgement, read_mos, read_questions
from qplug_training.metrics import correlation_report, fit_logistic, logistic4, rankdata, srcc
from qplug_training.modeling import (dct_basis, dct_patch_init, load_checkpoint, patch_embedding, prepare_tuning,
                               train_tokenizer)
from qplug_training.recipe import RecipeError, apply_overrides, load_recipe, recipe_from_dict
from qplug_training.synthetic import write_dataset, write_eval_set
from qplug_training.train import latest_checkpoint, main as train_main, train, training_texts

from .bench_scripts import load_bench

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "training" / "recipes"
TINY = RECIPES / "tiny_cpu.toml"


def tiny_recipe(output_dir: Path, *overrides: str):
    return load_recipe(TINY, [f"run.output_dir={output_dir}", "train.save_every=0", *overrides])


@pytest.fixture(autouse=True)
def no_model_env(monkeypatch):
    for name in (vlm_backend.ENV_MODEL, vlm_backend.ENV_ADAPTER, vlm_backend.ENV_DEVICE, vlm_backend.ENV_DTYPE):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory):
    """A tiny LLaVA checkpoint directory (qplug's test builder), used as model.path."""
    return build_tiny_llava(tmp_path_factory.mktemp("base") / "llava")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Eight synthetic distorted PNGs plus three text-only records, in LLaVA JSON."""
    root = tmp_path_factory.mktemp("data")
    path = write_dataset(root, count=8, size=40, seed=3)
    return path, root / "images"


def data_overrides(dataset) -> list[str]:
    path, images = dataset
    return ["data.synthetic=0", f"data.image_root={images}", f'data.sources=[{{path="{path}"}}]']


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory):
    """The tiny recipe as shipped (model from config, DCT patch init, LoRA, merged export) on a few
    examples seen over and over: 30 steps."""
    out = tmp_path_factory.mktemp("lora") / "run"
    recipe = tiny_recipe(out, "data.synthetic=4", "train.learning_rate=1e-2", "train.max_steps=30")
    return train(recipe, echo=False)


# ---------------------------------------------------------------------------------------------
# Recipes


def test_shipped_recipes_parse_and_follow_the_paper():
    after = load_recipe(RECIPES / "llava15_7b_after.toml")
    assert (after.tuning.method, after.train.learning_rate, after.train.epochs) == ("full", 2e-5, 1)
    assert (after.train.global_batch_size, after.data.max_length, after.train.warmup_ratio) == (128, 2048, 0.03)
    assert after.train.scheduler == "cosine" and after.train.weight_decay == 0 and after.tuning.gradient_checkpointing
    lora = load_recipe(RECIPES / "llava15_7b_lora.toml")
    assert (lora.lora.r, lora.lora.alpha, lora.train.learning_rate) == (128, 256, 2e-4)
    assert "language_model" in lora.lora.target
    tiny = load_recipe(TINY)
    assert tiny.model.from_config.patch_init == "dct" and not tiny.model.path


def test_every_shipped_recipe_parses_and_each_default_model_stage_continues_the_previous():
    for recipe in sorted(RECIPES.glob("*.toml")):
        load_recipe(recipe)  # raises on an unknown key or a bad value
    for name in ("qplug_default_v1.toml", "qplug_default_v2.toml", "qplug_default_v3.toml", "qplug_default_v4.toml",
                 "qplug_default_v5.toml", "qplug_default_v6.toml", "qplug_default_v7.toml",
                 "qplug_default_v8.toml", "qplug_default_v9.toml"):
        third = load_recipe(RECIPES / name)
        assert third.model.path and third.image.crop == 224 and not third.image.resize
        assert third.data.image_root in third.data.sources[0].path
    for earlier, later in (("v2", "v3"), ("v3", "v4"), ("v4", "v5"), ("v5", "v6"), ("v5", "v7"), ("v5", "v8"),
                           ("v5", "v9")):  # the default paths chain the stages
        before, after = (load_recipe(RECIPES / f"qplug_default_{v}.toml") for v in (earlier, later))
        assert after.model.path == f"{before.run.output_dir}/export/model"
        assert after.run.output_dir != before.run.output_dir and after.train.learning_rate <= 1e-4


def test_fast_chain_builds_the_default_model_shape_and_its_second_stage_continues_the_first():
    first, second = (load_recipe(RECIPES / name) for name in ("qplug_fast.toml", "qplug_fast_stage2.toml"))
    shipped_first = load_recipe(RECIPES / "qplug_default.toml")
    assert not first.model.path and first.model.from_config == shipped_first.model.from_config
    assert first.tokenizer == shipped_first.tokenizer
    assert second.model.path == f"{first.run.output_dir}/export/model"
    assert first.data.sources == second.data.sources and first.data.image_root == second.data.image_root
    assert first.tuning.vision_trainable == ["encoder.top_conv", "encoder.top_bn"]
    assert second.tuning.vision_trainable == ["embeddings", "encoder"]
    assert first.train.mixed_precision == second.train.mixed_precision == "bf16"


def test_fast_chain_v2_changes_only_its_corpus_speed_levers_and_steps():
    import dataclasses

    v1 = [load_recipe(RECIPES / name) for name in ("qplug_fast.toml", "qplug_fast_stage2.toml")]
    v2 = [load_recipe(RECIPES / name) for name in ("qplug_fast_v2.toml", "qplug_fast_v2_stage2.toml")]
    assert v2[1].model.path == f"{v2[0].run.output_dir}/export/model"
    for old, new in zip(v1, v2):
        assert new.run.output_dir != old.run.output_dir and new.data.image_root != old.data.image_root
        assert (new.data.group_by_length, new.data.pad_to_multiple_of) == (50, 32)
        assert new.train.max_steps > old.train.max_steps
        assert new.model.from_config == old.model.from_config and new.tuning == old.tuning
        assert new.image == old.image and new.tokenizer == old.tokenizer and new.export == old.export
        same = dataclasses.replace(new.train, max_steps=old.train.max_steps)
        assert same == old.train  # learning rate, schedule, batch, precision: as v1


def test_from_config_section_is_the_llava_size_qplug_vlm_builds_with():
    from qplug_vlm.configuration import LlavaSize, llava_config
    from qplug_vlm.testing import tiny_tokenizer

    from qplug_training.recipe import FromConfig

    spec = load_recipe(TINY).model.from_config
    assert isinstance(spec, FromConfig) and isinstance(spec, LlavaSize)  # one definition of the dimensions
    config = llava_config(tiny_tokenizer(), spec)
    assert (config.vision_config.image_size, config.vision_config.patch_size) == (spec.image_size, spec.patch_size)
    assert config.projector_hidden_act == spec.projector_act
    assert config.text_config.max_position_embeddings == spec.max_position_embeddings
    with pytest.raises(RecipeError, match="vocab_size must be >= 0"):
        recipe_from_dict({"model": {"from_config": {"vocab_size": -1}}, "data": {"synthetic": 1}}).validate()


def test_overrides_and_errors():
    raw = apply_overrides({}, ["train.learning_rate=1e-4", "run.output_dir=runs/x", "data.sources=[{path='a.json'}]"])
    assert raw == {"train": {"learning_rate": 1e-4}, "run": {"output_dir": "runs/x"},
                   "data": {"sources": [{"path": "a.json"}]}}
    recipe = recipe_from_dict(raw)
    assert recipe.data.sources[0].path == "a.json" and recipe.train.learning_rate == 1e-4
    with pytest.raises(RecipeError, match="unknown key"):
        recipe_from_dict({"train": {"learnig_rate": 1}})
    with pytest.raises(RecipeError, match="must be an integer"):
        recipe_from_dict({"lora": {"r": "eight"}})
    with pytest.raises(RecipeError, match="kind = 'high'"):
        recipe_from_dict({"data": {"strategy": "after", "sources": [{"path": "a", "kind": "high"}]}}).validate()
    with pytest.raises(RecipeError, match="image.hflip is a probability"):
        recipe_from_dict({"image": {"hflip": 1.5}, "data": {"sources": [{"path": "a"}]}}).validate()


# ---------------------------------------------------------------------------------------------
# Labels


@pytest.fixture(scope="module")
def encoder(tiny_base, dataset):
    processor = load_checkpoint(tiny_base, recipe_from_dict({})).processor
    return Encoder(processor, dataset[1], max_length=512, pad_square=True)


def labelled_spans(labels):
    """Runs of consecutive labelled positions."""
    spans, current = [], []
    for position, label in enumerate(labels.tolist()):
        if label != IGNORE:
            current.append(position)
        elif current:
            spans.append(current)
            current = []
    return spans + ([current] if current else [])


def test_only_assistant_tokens_carry_labels(encoder, dataset):
    tokenizer = encoder.tokenizer
    record = make_record("mt", [("What is wrong with this image?", "It is blurry and noisy."),
                                ("Rate it.", "The quality of the image is poor.")], image="img0001.png")
    example = encoder.encode(record)
    ids, labels = example.input_ids, example.labels
    spans = labelled_spans(labels)
    # Each answer, and only the answers, decoded back exactly (the template ends an answer with EOS).
    # An answer's first token may carry the space after "ASSISTANT:" (" The" is one BPE token, as in
    # real vocabularies): that token is the right target, and the space is all it adds.
    decoded = [tokenizer.decode(ids[s]) for s in spans]
    assert [d[1:] if d.startswith(" ") else d for d in decoded] == ["It is blurry and noisy.</s>",
                                                                    "The quality of the image is poor.</s>"]
    assert torch.equal(labels[labels != IGNORE], ids[labels != IGNORE])
    image_positions = ids == encoder.image_token_id
    assert int(image_positions.sum()) == 16  # (32 / 8)^2 image tokens, none labelled
    assert bool((labels[image_positions] == IGNORE).all())
    unlabelled = tokenizer.decode(ids[labels == IGNORE])
    assert "What is wrong with this image?" in unlabelled and "Rate it." in unlabelled
    assert "blurry" not in unlabelled and "poor" not in unlabelled
    assert example.extras["pixel_values"].shape == (1, 3, 32, 32)


def test_records_without_images_and_batches_mixing_both(encoder):
    text_only = make_record("t", [("What is sensor noise?", "Random grain.")], image=None)
    with_image = make_record("i", [("Is it sharp?", "No.")], image="img0000.png")
    examples = [encoder.encode(text_only), encoder.encode(with_image)]
    assert "pixel_values" not in examples[0].extras
    assert encoder.tokenizer.decode(examples[0].input_ids[examples[0].labels != IGNORE]) == "Random grain.</s>"
    batch = Collator(pad_id=encoder.tokenizer.pad_token_id)(examples)
    assert batch["pixel_values"].shape[0] == 1  # only the record with an image contributes pixels
    assert batch["input_ids"].shape == batch["labels"].shape == batch["attention_mask"].shape
    short = int(examples[0].input_ids.numel())
    assert bool((batch["labels"][0, short:] == IGNORE).all()) and int(batch["attention_mask"][0].sum()) == short
    # Padded to a multiple: more padding, the same tokens, per-token extras padded alike.
    natural = batch["input_ids"].shape[1]
    for example in examples:
        example.extras["token_type_ids"] = torch.ones_like(example.input_ids).unsqueeze(0)
    rounded = Collator(pad_id=encoder.tokenizer.pad_token_id, multiple=64)(examples)
    assert rounded["input_ids"].shape[1] % 64 == 0 and rounded["input_ids"].shape[1] >= natural
    assert rounded["token_type_ids"].shape == rounded["input_ids"].shape
    for key in ("input_ids", "labels", "attention_mask"):
        assert torch.equal(rounded[key][:, :natural], Collator(pad_id=encoder.tokenizer.pad_token_id)(examples)[key])
    assert bool((rounded["labels"][:, natural:] == IGNORE).all()) and int(rounded["attention_mask"][:, natural:].sum()) == 0


def test_truncation_keeps_image_tokens_and_is_reported(encoder, dataset):
    long_answer = " ".join(["The image is blurry."] * 40)
    record = make_record("long", [("Describe it.", long_answer)], image="img0002.png")
    short = Encoder(encoder.processor, dataset[1], max_length=40, pad_square=True)
    example = short.encode(record)
    assert example.truncated and example.input_ids.numel() == 40
    assert int((example.input_ids == short.image_token_id).sum()) == 16
    tiny = Encoder(encoder.processor, dataset[1], max_length=20, pad_square=True)
    kept, report = tiny.lengths([record, make_record("t", [("Hi?", "Yes.")], image=None)])
    assert report.dropped == 1 and report.dropped_ids == ["long"] and len(kept) == 1
    kept, report = short.lengths([record])
    assert report.truncated == 1 and report.dropped == 0
    # The pre-pass estimate (text only, image tokens counted once) is the real length for LLaVA.
    assert report.longest == encoder.encode(record).input_ids.numel() > 40


# ---------------------------------------------------------------------------------------------
# Batch order


def test_trained_tokenizer_gives_each_answer_word_its_own_first_token():
    # Answers follow "ASSISTANT: ": a first token that is a bare space would lie outside the generation
    # span, never be trained, and make "Yes" (or option C) unanswerable from its first-token logit.
    answers = ["Yes, it is blurry.", "No, it is clean.", "Yes.", "No.", "A", "B", "C", "D",
               "The quality of the image is good."]
    records = [make_record(f"r{i}", [("Is this image blurry?", answer)], image="img.png")
               for i, answer in enumerate(answers * 40)]
    tokenizer = train_tokenizer(training_texts(records), 400)
    prefix = tokenizer("ASSISTANT:", add_special_tokens=False)["input_ids"]
    for word in ("Yes", "No", "A", "B", "C", "D"):
        ids = tokenizer(f"ASSISTANT: {word}", add_special_tokens=False)["input_ids"]
        assert ids[:len(prefix)] == prefix
        assert tokenizer.convert_ids_to_tokens(ids[len(prefix):]) == ["\u0120" + word]  # byte-level BPE space


def test_an_answer_start_token_outside_the_generation_span_is_detected():
    from transformers import CLIPImageProcessorPil, LlavaProcessor

    from qplug_training.modeling import llava_template, untrained_answer_start

    texts = ["Yes, it is sharp.", "No, it is blurry.", "Is it sharp?"] * 50
    found = []
    for lead in ("", " "):  # trained on bare answers (the first default model's mistake), then as placed
        processor = LlavaProcessor(image_processor=CLIPImageProcessorPil(), tokenizer=train_tokenizer(
            [lead + t for t in texts], 400), patch_size=8, chat_template=llava_template(),
            vision_feature_select_strategy="default", num_additional_image_tokens=1)
        found.append(untrained_answer_start(processor))
    assert found == [" ", None]


def test_batch_plan_covers_each_epoch_and_splits_across_processes():
    plan = BatchPlan(size=10, per_device=2, accumulation=2, processes=2, seed=5, epochs=2)
    assert plan.global_batch == 8 and plan.steps_per_epoch == 2 and plan.total_steps == 4
    first_epoch = plan.step_indices(0) + plan.step_indices(1)
    assert set(first_epoch) == set(range(10))  # every record, the short last batch wrapped around
    for step in range(plan.total_steps):
        shards = [i for rank in range(2) for micro in plan.micro_batches(step, rank) for i in micro]
        assert sorted(shards) == sorted(plan.step_indices(step))
    assert plan.step_indices(2) != plan.step_indices(0)  # a new shuffle each epoch
    assert BatchPlan(10, 2, 2, 2, 5, 2).step_indices(3) == plan.step_indices(3)  # a pure function


def test_length_grouping_batches_records_of_one_length_and_stays_a_random_pure_function():
    lengths = [random.Random(i).randrange(300, 769) for i in range(1000)]
    plain = BatchPlan(size=1000, per_device=16, accumulation=1, processes=1, seed=3, epochs=2)
    grouped = BatchPlan(size=1000, per_device=16, accumulation=1, processes=1, seed=3, epochs=2,
                        group_by_length=10, lengths=lengths)
    assert plain.steps_per_epoch == grouped.steps_per_epoch == 63

    def padded(plan: BatchPlan, epoch: int) -> int:  # tokens a right-padded batch costs
        steps = range(epoch * plan.steps_per_epoch, (epoch + 1) * plan.steps_per_epoch)
        return sum(len(b) * max(lengths[i] for i in b) for b in map(plan.step_indices, steps))

    for epoch in (0, 1):
        assert sorted(grouped.order(epoch)) == list(range(1000))  # every record once per epoch
        assert padded(grouped, epoch) < 0.9 * padded(plain, epoch)  # measured: 0.75
        assert padded(grouped, epoch) > sum(lengths)
    def median_span(plan: BatchPlan) -> int:  # longest minus shortest record of a batch
        spans = [max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in map(plan.step_indices, range(62))]
        return sorted(spans)[31]

    assert median_span(grouped) < 0.2 * median_span(plain)  # about one length per batch (measured: 44 vs 421)
    firsts = [max(lengths[i] for i in grouped.step_indices(s)) for s in range(62)]
    assert firsts != sorted(firsts, reverse=True)  # batches come in a random order, not longest first
    assert grouped.order(1) != grouped.order(0)
    again = BatchPlan(1000, 16, 1, 1, 3, 2, group_by_length=10, lengths=list(lengths))
    assert [again.step_indices(s) for s in range(126)] == [grouped.step_indices(s) for s in range(126)]
    assert BatchPlan(1000, 16, 1, 1, 3, 2, group_by_length=0, lengths=lengths).order(0) == plain.order(0)
    with pytest.raises(ValueError, match="one length per record"):
        BatchPlan(1000, 16, 1, 1, 3, 2, group_by_length=10, lengths=lengths[:-1])


def test_mirror_augmentation_flips_pixels_only_and_is_a_pure_function_of_seed_step_index(encoder):
    record = make_record("m", [("Is it sharp?", "No.")], image="img0003.png")
    plain, mirrored = encoder.encode(record), encoder.encode(record, mirror=True)
    assert torch.equal(plain.input_ids, mirrored.input_ids) and torch.equal(plain.labels, mirrored.labels)
    pixels, flipped = plain.extras["pixel_values"], mirrored.extras["pixel_values"]
    assert not torch.equal(pixels, flipped)
    assert torch.allclose(torch.flip(pixels, dims=[-1]), flipped, atol=1e-6)

    records = [record] * 50
    never = RecordDataset(records, encoder, hflip=0.0, seed=1)
    half = RecordDataset(records, encoder, hflip=0.5, seed=1)
    keys = [(i, step) for i in range(50) for step in range(20)]
    assert not any(never.mirrored(i, step) for i, step in keys)
    share = sum(half.mirrored(i, step) for i, step in keys) / len(keys)
    assert 0.45 < share < 0.55
    # The same visit decides the same way in another process or a resumed run; another seed differs.
    again, other = RecordDataset(records, encoder, hflip=0.5, seed=1), RecordDataset(records, encoder, hflip=0.5, seed=2)
    assert [again.mirrored(*k) for k in keys] == [half.mirrored(*k) for k in keys]
    assert [other.mirrored(*k) for k in keys] != [half.mirrored(*k) for k in keys]
    key = next(k for k in keys if half.mirrored(*k))
    assert torch.equal(half[key].extras["pixel_values"], flipped) and torch.equal(half[key[0]].extras["pixel_values"], pixels)

    plan = BatchPlan(size=10, per_device=2, accumulation=1, processes=1, seed=5, epochs=1)
    tagged = list(PlanSampler(plan, rank=0, start_step=1, stop_step=3, with_step=True))
    assert tagged == [[(i, step) for i in plan.step_indices(step)] for step in (1, 2)]
    assert list(PlanSampler(plan, rank=0, start_step=1, stop_step=3)) == [plan.step_indices(1), plan.step_indices(2)]


# ---------------------------------------------------------------------------------------------
# Training


def test_loss_decreases_on_a_few_repeated_examples(lora_run):
    losses = [lora_run.losses[s] for s in sorted(lora_run.losses)]
    assert len(losses) == 30 and all(math.isfinite(x) for x in losses)
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.5
    log = [json.loads(line) for line in (lora_run.output_dir / "log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log] == list(range(1, 31))
    assert {"loss", "lr", "tokens_per_s", "s_per_step", "grad_norm", "label_tokens"} <= set(log[0])
    assert log[0]["lr"] == 0 and max(e["lr"] for e in log) == pytest.approx(1e-2)  # warmup, then cosine


def test_full_fine_tuning_learns_faster_and_exports_a_model_qplug_loads(tmp_path, tiny_base, dataset):
    recipe = tiny_recipe(tmp_path / "full", f"model.path={tiny_base}", "tuning.method=full",
                         "train.learning_rate=3e-3", "train.max_steps=12", *data_overrides(dataset))
    result = train(recipe, echo=False)
    losses = [result.losses[s] for s in sorted(result.losses)]
    assert losses[-1] < losses[0] - 0.5
    model_dir = Path(result.exports["model"])
    assert (model_dir / "model.safetensors").is_file() and (model_dir / "training_info.json").is_file()
    scores = qplug.api.score(dataset[1] / "img0000.png", scorers=["qalign"],
                             model_options={"model": str(model_dir), "device": "cpu"}).scores("qalign")
    assert len(scores) == 1 and 1 <= scores[0] <= 5


def test_resume_reproduces_the_uninterrupted_run(tmp_path, tiny_base, dataset):
    # Dropout on, accumulation 2: the RNG streams and accumulation cycles must resume exactly too.
    # Mirror augmentation on: which visits are mirrored must not depend on where the run started.
    common = [f"model.path={tiny_base}", "train.max_steps=6", "lora.dropout=0.1", "train.gradient_accumulation_steps=2",
              "train.per_device_batch_size=2", "export.merge=false", "image.hflip=0.5", *data_overrides(dataset)]
    whole = train(tiny_recipe(tmp_path / "whole", *common), echo=False)
    cut = train(tiny_recipe(tmp_path / "cut", *common, "train.stop_after=3"), echo=False)
    assert cut.stopped_early and cut.steps == 3 and not cut.exports
    checkpoint = latest_checkpoint(tmp_path / "cut")
    assert checkpoint.name == "step-0000003"
    # Nothing pickled is written, and resuming unpickles nothing.
    assert sorted(p.name for p in checkpoint.iterdir()) == ["model.safetensors", "optimizer.safetensors",
                                                            "rng_0.json", "rng_0.safetensors", "trainer_state.json"]
    import pickle

    import torch

    def refuse(*args, **kwargs):
        raise AssertionError("resume unpickled something")

    with pytest.MonkeyPatch.context() as patch:
        for module, name in ((pickle, "load"), (pickle, "loads"), (torch, "load")):
            patch.setattr(module, name, refuse)
        resumed = train(tiny_recipe(tmp_path / "cut", *common), resume=True, echo=False)
    assert sorted(resumed.losses) == [4, 5, 6]
    for step in (4, 5, 6):
        assert resumed.losses[step] == pytest.approx(whole.losses[step], abs=1e-6)
    assert resumed.losses[6] != pytest.approx(whole.losses[1], abs=1e-3)  # it did learn something
    log = [json.loads(line)["step"] for line in (tmp_path / "cut" / "log.jsonl").read_text().splitlines()]
    assert log == [1, 2, 3, 4, 5, 6]
    # A checkpoint in accelerate's pickle format (older qplug) is refused, not unpickled.
    old = tmp_path / "old"
    (old / "checkpoints" / "step-0000003").mkdir(parents=True)
    (old / "checkpoints" / "step-0000003" / "optimizer.bin").write_bytes(b"pickled")
    with pytest.raises(RecipeError, match="pickle format"):
        train(tiny_recipe(old, *common), resume=True, echo=False)


def test_an_image_damaged_after_validation_is_skipped_and_the_run_resumes_exactly(tmp_path, tiny_base, capfd):
    from qplug_training.synthetic import write_dataset

    path = write_dataset(tmp_path / "data", count=6, size=40, seed=3)
    images = tmp_path / "data" / "images"
    damaged = sorted(images.glob("*.png"))[0]
    damaged.write_bytes(damaged.read_bytes()[:60])  # still there (validation passes), no longer decodes
    common = [f"model.path={tiny_base}", "train.max_steps=4", "train.per_device_batch_size=2", "export.merge=false",
              "data.synthetic=0", f"data.image_root={images}", f'data.sources=[{{path="{path}"}}]']
    whole = train(tiny_recipe(tmp_path / "whole", *common), echo=False)
    assert whole.steps == 4 and all(math.isfinite(v) for v in whole.losses.values())
    warned = [line for line in capfd.readouterr().err.splitlines() if line.startswith("warning: record skipped")]
    assert warned and all(damaged.name in line and "truncated" in line for line in warned)
    train(tiny_recipe(tmp_path / "cut", *common, "train.stop_after=2"), echo=False)
    resumed = train(tiny_recipe(tmp_path / "cut", *common), resume=True, echo=False)
    for step in (3, 4):
        assert resumed.losses[step] == pytest.approx(whole.losses[step], abs=1e-6)


def test_gradient_checkpointing_gives_the_same_losses(tmp_path, tiny_base, dataset):
    common = [f"model.path={tiny_base}", "train.max_steps=2", "export.merge=false", *data_overrides(dataset)]
    plain = train(tiny_recipe(tmp_path / "plain", *common), echo=False)
    recipe = tiny_recipe(tmp_path / "gc", *common, "tuning.gradient_checkpointing=true")
    checkpointed = train(recipe, echo=False)
    assert checkpointed.losses[2] == pytest.approx(plain.losses[2], abs=1e-6)
    tuned, _ = prepare_tuning(load_checkpoint(tiny_base, recipe).model, recipe)
    assert tuned.get_base_model().is_activation_checkpointing  # it was really on


def test_lora_export_loads_in_qplug_and_merged_scores_the_same(lora_run, dataset):
    exports = lora_run.exports
    adapter, base, merged = Path(exports["adapter"]), Path(exports["base"]), Path(exports["merged"])
    assert (adapter / "adapter_config.json").is_file() and (adapter / "adapter_model.safetensors").is_file()
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert "language_model" in config["target_modules"]  # the regex, not bare module names
    images = sorted(dataset[1].glob("*.png"))[:3]
    run = lambda **options: qplug.api.score(images, scorers=["qalign"],  # noqa: E731
                                            model_options={"device": "cpu", **options}).scores("qalign")
    with_adapter = run(model=str(base), adapter=str(adapter))
    merged_scores = run(model=str(merged))
    untrained = run(model=str(base))
    assert all(1 <= s <= 5 for s in with_adapter)
    assert merged_scores == pytest.approx(with_adapter, abs=1e-4)
    assert max(abs(a - b) for a, b in zip(with_adapter, untrained)) > 1e-4  # the adapter changes scores
    info = json.loads((lora_run.output_dir / "training_info.json").read_text())
    assert info["steps"] == 30 and info["data"]["records"] == 7 and math.isfinite(info["final_loss"])
    assert info["recipe"]["lora"]["r"] == 8 and info["exports"]["adapter"] == str(adapter)


def test_offline_merge_command_matches_the_merged_export(lora_run, tmp_path):
    from safetensors.torch import load_file

    from qplug_training.export import main as export_main

    out = tmp_path / "merged"
    assert export_main(["merge", "--base", lora_run.exports["base"], "--adapter", lora_run.exports["adapter"],
                        "--out", str(out)]) == 0
    ours = load_file(out / "model.safetensors")
    theirs = load_file(Path(lora_run.exports["merged"]) / "model.safetensors")
    assert ours.keys() == theirs.keys()
    assert all(torch.allclose(ours[k], theirs[k], atol=1e-6) for k in ours)


def test_bf16_base_trains_with_fp32_trainable_weights(tmp_path, tiny_base, dataset):
    from safetensors import safe_open

    recipe = tiny_recipe(tmp_path / "bf16", f"model.path={tiny_base}", "model.dtype=bfloat16",
                         "train.mixed_precision=bf16", "train.max_steps=2", "train.save_every=2",
                         *data_overrides(dataset))
    result = train(recipe, echo=False)
    assert all(math.isfinite(loss) for loss in result.losses.values())
    with safe_open(tmp_path / "bf16" / "checkpoints" / "step-0000002" / "model.safetensors", "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float32}  # LoRA and the projector copy
    with safe_open(Path(result.exports["merged"]) / "model.safetensors", "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.bfloat16}  # merged back in the base's dtype


def test_bf16_autocast_over_fp32_weights_runs_on_the_cpu_and_resumes_exactly(tmp_path, tiny_base, dataset):
    # The fast chain's recipes: float32 weights and optimizer, matrix products in bf16 (CPU autocast).
    from safetensors import safe_open

    common = [f"model.path={tiny_base}", "train.max_steps=4", "train.per_device_batch_size=2", "export.merge=false",
              *data_overrides(dataset)]
    fp32 = train(tiny_recipe(tmp_path / "fp32", *common, "train.mixed_precision=no"), echo=False)
    whole = train(tiny_recipe(tmp_path / "whole", *common, "train.mixed_precision=bf16"), echo=False)
    assert whole.losses[1] != fp32.losses[1]  # the autocast is really on ...
    assert whole.losses[1] == pytest.approx(fp32.losses[1], rel=0.02)  # ... and changes the loss by rounding only
    cut = train(tiny_recipe(tmp_path / "cut", *common, "train.mixed_precision=bf16", "train.stop_after=2"), echo=False)
    resumed = train(tiny_recipe(tmp_path / "cut", *common, "train.mixed_precision=bf16"), resume=True, echo=False)
    assert cut.steps == 2 and sorted(resumed.losses) == [3, 4]
    for step in (3, 4):
        assert resumed.losses[step] == pytest.approx(whole.losses[step], abs=1e-6)
    with safe_open(latest_checkpoint(tmp_path / "cut") / "model.safetensors", "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float32}


def test_length_grouped_training_resumes_exactly(tmp_path, tiny_base, dataset):
    common = [f"model.path={tiny_base}", "train.max_steps=4", "train.per_device_batch_size=2", "export.merge=false",
              "data.group_by_length=2", *data_overrides(dataset)]
    whole = train(tiny_recipe(tmp_path / "whole", *common), echo=False)
    cut = train(tiny_recipe(tmp_path / "cut", *common, "train.stop_after=2"), echo=False)
    resumed = train(tiny_recipe(tmp_path / "cut", *common), resume=True, echo=False)
    assert cut.steps == 2 and sorted(resumed.losses) == [3, 4]
    for step in (3, 4):
        assert resumed.losses[step] == pytest.approx(whole.losses[step], abs=1e-6)
    plain = train(tiny_recipe(tmp_path / "plain", *common, "data.group_by_length=0", "train.max_steps=1"), echo=False)
    assert plain.losses[1] != pytest.approx(whole.losses[1], abs=1e-6)  # grouping changed the first batch


def test_padding_to_a_multiple_changes_no_loss(tmp_path, tiny_base, dataset):
    common = [f"model.path={tiny_base}", "train.max_steps=2", "train.per_device_batch_size=2", "export.merge=false",
              *data_overrides(dataset)]
    plain = train(tiny_recipe(tmp_path / "plain", *common), echo=False)
    padded = train(tiny_recipe(tmp_path / "padded", *common, "data.pad_to_multiple_of=64"), echo=False)
    for step in (1, 2):
        assert padded.losses[step] == pytest.approx(plain.losses[step], rel=1e-4)


def test_dct_patch_init_is_an_orthonormal_filter_bank(lora_run):
    basis = dct_basis(8).reshape(64, 64)
    assert torch.allclose(basis @ basis.T, torch.eye(64, dtype=basis.dtype), atol=1e-10)
    assert torch.allclose(basis[0], torch.full((64,), 1 / 8, dtype=basis.dtype))  # DC first
    built = load_checkpoint(Path(lora_run.exports["base"]), recipe_from_dict({})).model
    weight = patch_embedding(built).weight.detach().double()  # (32 filters, 3 channels, 8, 8)
    assert torch.allclose(weight[0, 0], dct_basis(8)[0], atol=1e-6) and float(weight[0, 1:].abs().max()) == 0
    assert torch.allclose(weight[4, 1], dct_basis(8)[1], atol=1e-6)  # filter 4 = frequency 1, channel 1
    assert dct_patch_init(built) == 32


def test_command_line_prints_and_stops_with_a_clear_error(tmp_path, capsys):
    assert train_main([str(TINY), "--print-recipe", "-o", "lora.r=4"]) == 0
    assert json.loads(capsys.readouterr().out)["lora"]["r"] == 4
    assert train_main([str(TINY), "-o", "tuning.method=qlora"]) == 2
    assert "tuning.method" in capsys.readouterr().err
    # A 7B recipe without its downloads stops before writing anything.
    out = tmp_path / "never"
    assert train_main([str(RECIPES / "llava15_7b_lora.toml"), "-o", f"run.output_dir={out}"]) == 2
    assert "never downloads" in capsys.readouterr().err and not out.exists()


# ---------------------------------------------------------------------------------------------
# Evaluation


def test_metrics_logistic_fit_and_rank_correlation():
    assert rankdata([3, 1, 2, 2]).tolist() == [4, 1, 2.5, 2.5]
    x = np.linspace(0, 10, 60)
    y = logistic4(x, np.array([4.0, 1.0, 5.0, 1.2]))
    fit = fit_logistic(x, y)
    assert fit.converged and np.allclose(fit.params, [4.0, 1.0, 5.0, 1.2], atol=1e-4)
    report = correlation_report(x, y)
    assert report["srcc"] == pytest.approx(1.0) and report["plcc"] == pytest.approx(1.0)
    assert report["plcc_raw"] < report["plcc"] and srcc(-x, y) == pytest.approx(-1.0)


def test_evaluation_writes_json_and_markdown(lora_run, tmp_path):
    files = write_eval_set(tmp_path / "eval", count=6, size=40)
    questions, skipped = read_questions(files["mcq"])
    assert len(questions) == 6 and skipped == 0 and {q.type for q in questions} == {"yes-or-no", "how"}
    out = tmp_path / "out"
    evaluate(lora_run.exports["base"], lora_run.exports["adapter"], device="cpu", mcq=files["mcq"],
                       mos=files["mos"], describe=files["describe"], max_new_tokens=8, batch_size=4, out=out,
                       judge=lambda description, reference: parse_judgement(
                           'ok: {"completeness": 2, "precision": 1, "relevance": 5}'))
    saved = json.loads((out / "eval.json").read_text())
    assert saved["mcq"]["overall"]["n"] == 6 and 0 <= saved["mcq"]["overall"]["accuracy"] <= 1
    assert set(saved["mcq"]["by_type"]) == {"yes-or-no", "how"}
    assert set(saved["mcq"]["by_concern"]) == {"distortion", "other"}
    assert saved["mos"]["n"] == 6 and saved["mos"]["scorer"] == "qalign"
    assert {"srcc", "plcc", "plcc_raw", "fit"} <= set(saved["mos"])
    describe = saved["describe"]
    assert describe["n"] == 6 and describe["mode"] == "judge"
    assert describe["judge_relevance"] == 2.0 and describe["judge_precision"] == 1.0  # clipped to 0..2
    assert {"mention_recall", "attribute_agreement", "level_match"} <= set(describe)
    text = (out / "eval.md").read_text()
    assert "## A1" in text and "## A3" in text and "## Descriptions" in text and text == markdown(saved)
    as_json = tmp_path / "mos.json"  # Q-Bench A3 layout
    as_json.write_text(json.dumps([{"img_path": image, "gt_score": f"{mos:.2f}"}
                                   for image, mos in read_mos(files["mos"])]))
    assert read_mos(as_json) == read_mos(files["mos"])
    rows = [json.loads(line) for line in (out / "eval_items.jsonl").read_text().splitlines()]
    assert {r["task"] for r in rows} == {"mcq", "mos", "describe"} and len(rows) == 18


def _photo(height: int, width: int, seed: int) -> np.ndarray:
    """A textured stand-in for a photo (gradients, a grating, noise), big enough for 224-px crops."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.stack([60 + 120 * xx / width, 50 + 110 * yy / height, 140 - 60 * (xx + yy) / (width + height)], -1)
    image += 35 * np.sin(xx / 3.1 + yy / 5.3)[..., None] + rng.normal(0, 8, (height, width, 1))
    return np.clip(image, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def eval_corpus(tmp_path_factory):
    """A corpus with its validation evaluation set (qplug_training.corpus.build --eval-set): one training and
    one validation photo, one crop each, two distortion types, so eval/ holds 11 images."""
    from PIL import Image

    from qplug_training.corpus import build, photos

    root = tmp_path_factory.mktemp("corpus")
    src = root / "src"
    (src / "photos").mkdir(parents=True)
    items = []
    for i, split in enumerate(("train", "validation")):
        path = src / "photos" / f"synth{i}.png"
        Image.fromarray(_photo(260, 300, seed=i)).save(path)
        items.append(photos.Photo(id=f"synth{i}", path=f"photos/synth{i}.png", source="synthetic", package="none",
                                  licence="CC0", sha256=photos.sha256_file(path), width=300, height=260,
                                  bytes=path.stat().st_size, split=split))
    photos.write_manifest(src, items)
    out = root / "corpus"
    assert build.main(["--photos", str(src), "--out", str(out), "--crops-per-photo", "1", "--val-crops-per-photo",
                       "1", "--variants-per-crop", "2", "--workers", "1", "--types", "gaussian_blur,gaussian_noise",
                       "--eval-set", "--eval-crops-per-photo", "1"]) == 0
    return out


def test_default_model_figures_through_the_library_and_the_bench_wrapper(lora_run, eval_corpus, tmp_path, capsys):
    """bench/eval_default_model.py is argument parsing around qplug_training.evaluation: its figures and report
    files for a tiny from-config model (offline: no BRISQUE venv, no video, no qplug score clips)."""
    from qplug_training.evaluation import REPORT_FILES, EvalOptions, markdown

    bench = load_bench("eval_default_model")
    out = tmp_path / "eval"
    argv = ["--model", lora_run.exports["merged"], "--corpus", str(eval_corpus), "--out", str(out), "--threads", "1",
            "--skip-brisque", "--skip-video", "--no-speed-long-clip", "--speed-clip", str(tmp_path / "absent.mp4"),
            "--speed-repeat", "1", "--describe", "3", "--max-new-tokens", "4", "--batch-size", "4",
            "--generalisation", "2", "--questions", "6"]
    # Every option of the script is a field of EvalOptions, recorded in the same order.
    args = bench.parse_args(argv)
    assert list(EvalOptions(**vars(args)).settings()) == list(vars(args))
    assert bench.main(argv) == 0
    printed = capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == sorted(REPORT_FILES)
    results = json.loads((out / "eval.json").read_text())
    assert printed == (out / "eval.md").read_text() == markdown(results)
    assert results["columns"][0] == "model" and "brisque" not in results["columns"]
    assessment = results["assessment"]
    assert (assessment["n_images"], assessment["n_crops"]) == (11, 1)
    model = assessment["figures"]["model"]
    assert model["within_group"]["n_groups"] == 2 and set(model["pooled"]["by_type"]) == {"gaussian_blur", "gaussian_noise"}
    assert model["pairs"]["n"] > 0 and model["mos"]["n"] == 11
    assert -1 <= model["within_group"]["mean"] <= 1
    assert {"qc:sharpness", "laplacian"} <= set(assessment["figures"])
    perception = results["perception"]
    assert perception["yes_no"]["overall"]["n"] > 0 and perception["mcq"]["overall"]["n"] > 0
    assert results["description"]["n"] == 3 and results["generalisation"]["train"]["n"] == 2
    assert set(results["speed"]) == {"model"} and results["speed"]["model"]["batch_1_ms"] > 0
    assert any("speed of qplug score not measured" in note for note in results["notes"])
    assert "BRISQUE skipped (--skip-brisque)" in results["notes"]
    rows = [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]
    assert {r["task"] for r in rows} == {"assess", "yes_no", "mcq", "describe"}
    assert "1a. SRCC vs severity within (crop, type) groups" in printed
    assert "**PASS**" in printed or "**MISS**" in printed  # the model's figures are marked against the targets


def test_every_package_folder_is_installed_under_a_qplug_name():
    """pyproject.toml lists its packages (the training/ folder installs as qplug_training, which find cannot
    rename): a package folder missing from the list would be left out of wheels."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = setuptools["package-dir"]

    def folder(package: str) -> Path:
        top, *rest = package.split(".")
        return ROOT / folders.get(top, top) / Path(*rest)

    listed = {folder(p).resolve(): p for p in setuptools["packages"]}
    found = {init.parent.resolve() for base in ("qplug", "plugins", "training") for init in
             (ROOT / base).rglob("__init__.py") if "__pycache__" not in init.parts}
    assert sorted(map(str, found - set(listed))) == [], "package folders missing from [tool.setuptools] packages"
    assert all(path.is_dir() and (path / "__init__.py").is_file() for path in listed)
    assert all(p.split(".")[0].startswith("qplug") for p in setuptools["packages"])
    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]["qplug-train"] == \
        "qplug_training.train:main"


def test_training_modules_import_in_one_direction():
    """No import cycle among qplug_training's modules (static: every import statement, lazy ones included)."""
    import ast

    root = ROOT / "training"
    modules = {}
    for path in root.rglob("*.py"):
        parts = ["qplug_training", *path.relative_to(root).with_suffix("").parts]
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
                target = ".".join(base + ([node.module] if node.module else []))
                targets = [target] + [f"{target}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    edges.add(target)
        graph[name] = edges

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            node = todo.pop()
            if node == goal:
                return True
            if node not in seen:
                seen.add(node)
                todo.extend(graph[node])
        return False

    cycles = sorted(f"{a} <-> {b}" for a in graph for b in graph[a] if reaches(b, a))
    assert cycles == []
    assert "qplug_training.export" in graph["qplug_training.train"]  # the trainer exports, not the reverse
    assert "qplug_training.corpus.pipeline" in graph["qplug_training.corpus.evalset"]


def test_gpu_benchmark_code_path_runs_shrunk_on_the_cpu(capsys):
    bench = load_bench("bench_training")
    bench.run_gpu(bench.argparse.Namespace(dry_run_cpu=True, batches=[1], steps=2, threads=1))
    lines = capsys.readouterr().out.strip().splitlines()
    assert "random LLaVA-1.5-7B shapes (shrunk)" in lines[0] and lines[-1].split()[0] == "1"


def test_recipe_benchmark_times_each_precision_on_the_recipes_own_data(capsys):
    bench = load_bench("bench_training")
    bench.run_recipe(bench.argparse.Namespace(recipe=str(TINY), steps=3, threads=1, precision=["no", "bf16"],
                                              group_by_length=None,
                                              override=["data.synthetic=8", "train.per_device_batch_size=2"]))
    lines = capsys.readouterr().out.strip().splitlines()
    assert "tiny_cpu.toml, 3 steps per precision" in lines[0]
    rows = [line.split() for line in lines[2:]]
    assert [row[0] for row in rows] == ["no", "bf16"] and all(float(row[2]) > 0 and float(row[3]) > 0 for row in rows)
    assert rows[0][6] != rows[1][6]  # the bf16 run really ran in bf16: its losses differ by rounding
    bench.run_recipe(bench.argparse.Namespace(recipe=str(TINY), steps=3, threads=1, precision=["no"],
                                              group_by_length=[0, 2],
                                              override=["data.synthetic=8", "train.per_device_batch_size=2"]))
    rows = [line.split() for line in capsys.readouterr().out.strip().splitlines()[2:]]
    assert [row[1] for row in rows] == ["0", "2"]  # each grouping timed on its own run
    assert rows[0][6] != rows[1][6]  # grouped batches are other batches

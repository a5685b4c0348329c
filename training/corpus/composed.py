"""Composed wordings: questions assembled from interchangeable parts, for the v3 corpus.

v2 drew its other wordings from :mod:`.phrasing`'s hand-written pools (about seven per kind). A small
language model trained from scratch learnt those sentences, not the words that matter in them: on
the held-out paraphrases it answered yes/no right 71% of the time and picked the right option of a
six-option "main problem" question 24% of the time. Here every question is a template filled with
independent parts (the picture's name, the defect's adjective or noun, an opener, a closing
request), so that tens of thousands of wordings share each defect word and none is seen often
enough to be learnt by heart: what stays constant is what the answer depends on.

Each pool is a sorted tuple of every wording it can produce (:func:`yes_no_wordings`,
:func:`mcq_stems`...), drawn uniformly, so a test can check all of them against the held-out set
(:mod:`.heldout`, which nothing here imports).
"""

from __future__ import annotations

import itertools
import random
from functools import lru_cache
from typing import Final

from . import phrasing

#: What a user calls the thing being judged.
PICTURE: Final[tuple[str, ...]] = ("image", "picture", "photo", "photograph", "frame", "shot", "snapshot", "still")

#: Per kind: adjectives that say the defect is there ("the photo is ___").
DEFECT_ADJECTIVES: Final[dict[str, tuple[str, ...]]] = {
    "blur": ("blurry", "blurred", "out of focus", "soft", "fuzzy", "unsharp", "unfocused", "smeary"),
    "noise": ("noisy", "grainy", "speckled", "speckly", "mottled", "full of grain", "full of noise"),
    "compression": ("blocky", "over-compressed", "heavily compressed", "badly compressed", "full of artifacts"),
    "low_resolution": ("pixelated", "low-resolution", "low-res", "upscaled", "jagged", "coarse-pixelled"),
    "underexposure": ("too dark", "underexposed", "dim", "gloomy", "underlit", "murky", "dark"),
    "overexposure": ("too bright", "overexposed", "blown out", "burnt out", "glaring", "overlit"),
    "low_contrast": ("flat", "dull", "hazy", "foggy", "low in contrast", "lifeless", "milky", "muddy"),
    "colour": ("off-colour", "tinted", "discoloured", "colour-shifted", "oddly coloured", "wrongly coloured"),
    "banding": ("banded", "posterised", "posterized", "contoured"),
}

#: Per kind: noun phrases for the defect ("I can see ___"), each fit to follow "see" or "suffer from".
DEFECT_NOUNS: Final[dict[str, tuple[str, ...]]] = {
    "blur": ("blur", "blurriness", "softness", "fuzziness", "motion blur", "a focus problem", "smeared detail"),
    "noise": ("noise", "grain", "graininess", "speckles", "sensor noise", "digital noise", "colour noise"),
    "compression": ("compression artifacts", "blocking", "JPEG artifacts", "macroblocking", "compression damage",
                    "blocky artifacts", "ringing around edges"),
    "low_resolution": ("pixelation", "visible pixels", "jaggies", "a lack of resolution", "upscaling artifacts",
                       "staircase edges"),
    "underexposure": ("underexposure", "too little light", "crushed shadows", "a lack of light", "darkness"),
    "overexposure": ("overexposure", "blown highlights", "clipped highlights", "too much light", "burnt-out whites"),
    "low_contrast": ("low contrast", "a lack of contrast", "weak contrast", "haze", "flatness", "a grey veil"),
    "colour": ("a colour cast", "wrong colours", "unnatural colours", "colour distortion", "a tint",
               "a colour shift", "odd colours"),
    "banding": ("banding", "posterisation", "contour lines", "false contours", "colour bands",
                "steps in the gradients"),
}

#: Per kind: adjectives that say the picture is fine in that respect (asked, the answer flips).
FINE_ADJECTIVES: Final[dict[str, tuple[str, ...]]] = {
    "blur": ("sharp", "crisp", "in focus", "well focused", "tack sharp", "finely detailed"),
    "noise": ("clean", "noise-free", "grain-free", "free of noise", "smooth and clean"),
    "compression": ("free of compression artifacts", "free of blocking", "artifact-free"),
    "low_resolution": ("high-resolution", "free of pixelation", "full of fine pixels"),
    "underexposure": ("bright enough", "well lit", "properly lit"),
    "overexposure": ("free of blown highlights", "not too bright", "kept out of the glare"),
    "low_contrast": ("contrasty", "punchy", "high in contrast", "rich in contrast"),
    "colour": ("natural in colour", "true to colour", "accurate in colour", "correctly coloured"),
    "banding": ("smooth in its gradients", "free of banding", "free of posterisation"),
}

#: Yes/no templates: {p} the picture, {adj} an adjective, {noun} a defect noun.
_YES_NO_ADJ: Final[tuple[str, ...]] = (
    "Is the {p} {adj}?", "Is this {p} {adj}?", "Does the {p} look {adj}?", "Does this {p} seem {adj}?",
    "Would you call this {p} {adj}?", "Would you describe the {p} as {adj}?", "Do you find this {p} {adj}?",
    "Does this {p} appear {adj}?", "Do you think the {p} is {adj}?", "Is it fair to say this {p} is {adj}?",
    "Would you agree that the {p} is {adj}?", "Does the {p} strike you as {adj}?", "Is this {p} rather {adj}?",
    "Do you consider this {p} {adj}?", "Has the {p} come out {adj}?",
)
_YES_NO_NOUN: Final[tuple[str, ...]] = (
    "Can you see {noun} in this {p}?", "Do you notice {noun} in the {p}?", "Does the {p} show {noun}?",
    "Does this {p} suffer from {noun}?", "Is this {p} affected by {noun}?", "Is the {p} marred by {noun}?",
    "Do you spot {noun} in this {p}?", "Does the {p} have {noun}?", "Does this {p} contain {noun}?",
    "Is the {p} spoilt by {noun}?", "Can {noun} be seen in the {p}?", "Do you detect {noun} in this {p}?",
)
#: Openers put before a yes/no template (the template's first letter is lowered after one).
_OPENERS: Final[tuple[str, ...]] = ("", "Quick check: ", "In your opinion, ", "Be honest: ", "Tell me, ",
                                    "Looking at it closely, ", "At first glance, ", "Please check: ")
#: Closing requests after a yes/no question.
_YES_NO_CLOSERS: Final[tuple[str, ...]] = ("", " Yes or no?", " Answer yes or no.", " Please answer briefly.",
                                           " Give a short answer.")


def _lower_first(text: str) -> str:
    return text if text.startswith("JPEG") else text[:1].lower() + text[1:]


def _open(opener: str, text: str) -> str:
    return opener + _lower_first(text) if opener else text


@lru_cache(maxsize=None)
def yes_no_wordings(kind: str, fine: bool = False) -> tuple[str, ...]:
    """Every yes/no wording about ``kind``: yes = the defect is there (``fine``: yes = it is not)."""
    if fine:
        cores = [t.format(p=p, adj=a) for t, p, a in itertools.product(_YES_NO_ADJ, PICTURE, FINE_ADJECTIVES[kind])]
    else:
        cores = [t.format(p=p, adj=a) for t, p, a in itertools.product(_YES_NO_ADJ, PICTURE, DEFECT_ADJECTIVES[kind])]
        cores += [t.format(p=p, noun=n) for t, p, n in itertools.product(_YES_NO_NOUN, PICTURE, DEFECT_NOUNS[kind])]
    out = {_open(o, c) + close for c, o, close in itertools.product(cores, _OPENERS, _YES_NO_CLOSERS)}
    return tuple(sorted(out))


#: What a defect is called in a stem ("Which ___ ...").
_ISSUE: Final[tuple[str, ...]] = ("problem", "flaw", "defect", "issue", "distortion", "fault", "quality problem",
                                  "weakness", "artifact", "degradation")
_MAIN: Final[tuple[str, ...]] = ("main", "biggest", "most obvious", "most serious", "chief", "primary",
                                 "dominant", "most visible", "worst", "most noticeable", "principal")
_HARMS: Final[tuple[str, ...]] = ("affects", "spoils", "damages", "degrades", "harms", "mars", "weakens")
_MCQ_TEMPLATES: Final[tuple[str, ...]] = (
    "Which {issue} {harms} this {p} the most?", "What is the {main} {issue} of this {p}?",
    "What is the {main} {issue} in the {p}?", "Name the {main} {issue} of this {p}.",
    "Pick the {main} {issue} of the {p}.", "Choose the option that best describes the {main} {issue} of this {p}.",
    "Which option names the {main} {issue} of the {p}?", "Which of these is the {main} {issue} of this {p}?",
    "What {harms} this {p} the most?", "Which {issue} do you see in the {p}?",
    "What would you say is the {main} {issue} of this {p}?", "Which {issue} does this {p} suffer from?",
    "Identify the {main} {issue} of this {p}.", "Which of the listed {issue}s applies to this {p}?",
)
_MCQ_CLOSERS: Final[tuple[str, ...]] = ("", " Pick one.", " Choose one option.", " Only one answer is right.")


@lru_cache(maxsize=None)
def mcq_stems() -> tuple[str, ...]:
    """Every "which is the main problem" stem."""
    out: set[str] = set()
    for template, p, close in itertools.product(_MCQ_TEMPLATES, PICTURE, _MCQ_CLOSERS):
        for issue, main, harms in itertools.product(_ISSUE, _MAIN, _HARMS):
            out.add(template.format(p=p, issue=issue, main=main, harms=harms) + close)
    return tuple(sorted(out))


#: Option texts per kind: :mod:`.phrasing`'s synonyms and a few more.
_MORE_OPTIONS: Final[dict[str, tuple[str, ...]]] = {
    "blur": ("fuzziness", "motion blur", "soft focus", "unsharpness"),
    "noise": ("speckles", "sensor noise", "grainy texture"),
    "compression": ("blocking", "macroblocking", "compression damage"),
    "low_resolution": ("jaggies", "visible pixels", "upscaled look"),
    "underexposure": ("too little light", "underlit", "dark"),
    "overexposure": ("blown highlights", "too much light", "burnt-out whites"),
    "low_contrast": ("flatness", "haze", "dullness", "too little contrast"),
    "colour": ("colour cast", "tint", "off colours"),
    "banding": ("contour lines", "stepped gradients"),
}


def option_names(kind: str) -> tuple[str, ...]:
    """Every option text that names ``kind``."""
    return phrasing.OPTION_SYNONYMS[kind] + _MORE_OPTIONS[kind]


#: Options that are right when the picture shows none of the offered defects. The first are worded
#: for "nothing is wrong", the rest for "what is wrong is not listed"; both are right on a clean picture.
NOTHING_OPTIONS: Final[tuple[str, ...]] = phrasing.NONE_OPTIONS + ("it looks fine", "no flaw")
NOT_LISTED_OPTIONS: Final[tuple[str, ...]] = phrasing.NOT_LISTED_OPTIONS + ("none of them", "another problem")

#: Severity scales: the same four steps in other words (none < slight < moderate < strong).
SEVERITY_SCALES: Final[tuple[tuple[str, str, str, str], ...]] = (
    ("none", "slight", "moderate", "strong"), ("not at all", "slightly", "moderately", "strongly"),
    ("none", "mild", "medium", "severe"), ("absent", "weak", "noticeable", "heavy"),
    ("no", "a little", "some", "a lot"),
)
#: Per kind: mass nouns for "how much ___".
_AMOUNT_NOUNS: Final[dict[str, tuple[str, ...]]] = {
    "blur": ("blur", "blurriness", "softness"), "noise": ("noise", "grain", "graininess"),
    "compression": ("compression damage", "blocking", "compression artifacting"),
    "low_resolution": ("pixelation", "loss of resolution"), "underexposure": ("underexposure", "darkening"),
    "overexposure": ("overexposure", "highlight clipping"), "low_contrast": ("contrast loss", "haze", "flattening"),
    "colour": ("colour distortion", "colour shift"), "banding": ("banding", "posterisation"),
}
_SEVERITY_TEMPLATES: Final[tuple[str, ...]] = (
    "How strong is the {noun} in this {p}?", "How much {noun} does this {p} show?",
    "How severe is the {noun} in the {p}?", "What is the level of {noun} in this {p}?",
    "Rate the amount of {noun} in this {p}.", "How noticeable is the {noun} in the {p}?",
    "How bad is the {noun} in this {p}?", "To what degree does {noun} affect this {p}?",
)


@lru_cache(maxsize=None)
def severity_stems(kind: str) -> tuple[str, ...]:
    """Every "how strong is the <defect>" stem for ``kind``."""
    return tuple(sorted({t.format(noun=n, p=p) for t, n, p in
                         itertools.product(_SEVERITY_TEMPLATES, _AMOUNT_NOUNS[kind], PICTURE)}))


_WHAT_TEMPLATES: Final[tuple[str, ...]] = (
    "What is the {main} {issue} of this {p}?", "What {harms} this {p} the most?",
    "Tell me the {main} {issue} of the {p}.", "What is the {main} {issue} here?",
    "In one sentence, what is the {main} {issue} of this {p}?",
)


@lru_cache(maxsize=None)
def what_questions() -> tuple[str, ...]:
    """Every free-text "what is the main problem" question."""
    out = {t.format(main=m, issue=i, harms=h, p=p)
           for t, m, i, h, p in itertools.product(_WHAT_TEMPLATES, _MAIN, _ISSUE, _HARMS, PICTURE)}
    return tuple(sorted(out))


_DESCRIBE_VERBS: Final[tuple[str, ...]] = ("Describe", "Assess", "Evaluate", "Comment on", "Review", "Judge",
                                           "Discuss", "Analyse", "Rate and explain")
_DESCRIBE_WHAT: Final[tuple[str, ...]] = ("the quality", "the image quality", "the technical quality",
                                          "the visual quality", "the low-level quality", "the sharpness, noise, "
                                          "exposure and colour", "the look")
_DESCRIBE_CLOSERS: Final[tuple[str, ...]] = ("", " Mention any flaws.", " Name any distortions you see.",
                                             " Keep it short.", " Point out what is wrong, if anything.")
_DESCRIBE_QUESTIONS: Final[tuple[str, ...]] = (
    "How good is the quality of this {p}?", "What do you think of the quality of this {p}?",
    "Is this {p} technically good? Explain.", "How does the quality of this {p} hold up?",
    "What is the technical quality of this {p} like?", "Any quality problems in this {p}? Describe them.",
)


@lru_cache(maxsize=None)
def describe_prompts() -> tuple[str, ...]:
    """Every description prompt."""
    out = {f"{v} {w} of this {p}.{c}" for v, w, p, c in
           itertools.product(_DESCRIBE_VERBS, _DESCRIBE_WHAT, PICTURE, _DESCRIBE_CLOSERS)}
    out |= {q.format(p=p) + c for q, p, c in itertools.product(_DESCRIBE_QUESTIONS, PICTURE, _DESCRIBE_CLOSERS)}
    return tuple(sorted(out))


def all_wordings() -> set[str]:
    """Every question these pools can produce (for the held-out disjointness check)."""
    out: set[str] = set(mcq_stems()) | set(what_questions()) | set(describe_prompts())
    for kind in DEFECT_ADJECTIVES:
        out |= set(yes_no_wordings(kind)) | set(yes_no_wordings(kind, fine=True)) | set(severity_stems(kind))
    return out


def pick(pool: tuple[str, ...], rng: random.Random) -> str:
    """One wording, uniformly (pools are sorted, so the draw is reproducible)."""
    return pool[rng.randrange(len(pool))]

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
import re
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
def yes_no_wordings(kind: str, fine: bool = False, broad: bool = False) -> tuple[str, ...]:
    """Every yes/no wording about ``kind``: yes = the defect is there (``fine``: yes = it is not).

    ``broad`` adds the v5 lexicon (:data:`BROAD_DEFECT_ADJECTIVES`...): more words per defect, more
    sentence shapes, and whole statements ("the highlights are clipped") asked about."""
    adjectives = (FINE_ADJECTIVES if fine else DEFECT_ADJECTIVES)[kind]
    nouns = () if fine else DEFECT_NOUNS[kind]
    adj_templates, noun_templates, clauses = _YES_NO_ADJ, _YES_NO_NOUN, ()
    if broad:
        adjectives += (BROAD_FINE_ADJECTIVES if fine else BROAD_DEFECT_ADJECTIVES)[kind]
        nouns += () if fine else BROAD_DEFECT_NOUNS[kind]
        adj_templates += _BROAD_YES_NO_ADJ
        noun_templates += _BROAD_YES_NO_NOUN
        clauses = (FINE_CLAUSES if fine else DEFECT_CLAUSES)[kind]
    cores = [t.format(p=p, adj=a) for t, p, a in itertools.product(adj_templates, PICTURE, adjectives)]
    cores += [t.format(p=p, noun=n) for t, p, n in itertools.product(noun_templates, PICTURE, nouns)]
    cores += [t.format(clause=c.format(p=p)) for t, p, c in itertools.product(_CLAUSE_TEMPLATES, PICTURE, clauses)]
    out = {_open(o, c) + close for c, o, close in itertools.product(cores, _OPENERS, _YES_NO_CLOSERS)}
    return tuple(sorted(out))


# ---------------------------------------------------------------------------------------------
# The broad lexicon (v5): v4 still missed a fifth of yes/no questions asked in other words, mostly
# where the words were new to it (a defect described rather than named). More ways to name each
# defect, and whole statements about the picture, drawn from how photographers and video QC staff
# talk; words shared by two kinds ("detailed": blur or resolution) are left out, since the answer
# to them would depend on the other kind.

BROAD_DEFECT_ADJECTIVES: Final[dict[str, tuple[str, ...]]] = {
    "blur": ("not sharp", "smudged", "defocused", "soft-focused", "not crisp", "lacking in sharpness", "misfocused"),
    "noise": ("sandy", "gritty", "noise-ridden", "dotted with noise", "peppered with specks", "staticky"),
    "compression": ("compressed", "artifacted", "low-bitrate", "JPEG-damaged", "mushy", "block-ridden",
                    "overcompressed"),
    "low_resolution": ("low in resolution", "enlarged", "blown up", "stair-stepped", "blocky-pixelled"),
    "underexposure": ("too dim", "short of light", "shadowy", "dark and murky", "poorly lit", "too dark to read"),
    "overexposure": ("too light", "overbright", "bleached", "clipped", "too exposed"),
    "low_contrast": ("washed out", "greyish", "lacking in contrast", "low-contrast", "weak in contrast", "veiled",
                     "flat-looking"),
    "colour": ("miscoloured", "colour-cast", "unnaturally coloured", "off in colour", "badly white-balanced",
               "strangely tinted", "oversaturated"),
    "banding": ("stepped", "blotchy in its gradients", "banded in the sky",
                "quantised"),
}
BROAD_DEFECT_NOUNS: Final[dict[str, tuple[str, ...]]] = {
    "blur": ("a lack of sharpness", "defocus", "camera shake", "a loss of fine detail", "soft edges", "smearing"),
    "noise": ("specks", "noise in the shadows", "a sandy texture", "luminance noise", "dots of noise", "chroma noise"),
    "compression": ("compression blocks", "heavy JPEG compression", "block artifacts", "a low bit rate",
                    "smeared blocks", "codec artifacts"),
    "low_resolution": ("a low pixel count", "enlargement artifacts", "blocky pixels", "pixel steps",
                       "upsampling blur"),
    "underexposure": ("too little exposure", "murky shadows", "dimness", "a lack of brightness", "lost shadows"),
    "overexposure": ("clipping", "washed-out highlights", "too much exposure", "bleached areas", "blown whites"),
    "low_contrast": ("a washed-out look", "a foggy look", "milky blacks", "lifted blacks", "a dull look",
                     "weak tonal separation"),
    "colour": ("a white-balance error", "off colours", "a colour tint", "faded colours", "oversaturation",
               "a wrong hue"),
    "banding": ("stepped gradients", "banded skies", "visible tone steps",
                "colour steps", "quantisation bands"),
}
BROAD_FINE_ADJECTIVES: Final[dict[str, tuple[str, ...]]] = {
    "blur": ("focused", "sharply focused", "crisp at the edges"),
    "noise": ("smooth", "noiseless", "clean in the shadows", "speck-free"),
    "compression": ("cleanly encoded", "free of blocks", "free of JPEG damage"),
    "low_resolution": ("high in resolution", "finely resolved", "full-resolution"),
    "underexposure": ("bright", "light enough", "well exposed in the shadows"),
    "overexposure": ("free of clipping", "well exposed in the highlights", "dark enough"),
    "low_contrast": ("vivid", "rich in tones", "strong in contrast"),
    "colour": ("naturally coloured", "well white-balanced", "true-to-life in colour"),
    "banding": ("smoothly shaded", "free of steps in the gradients", "smoothly graded"),
}
#: Statements that the defect is there, about a picture ({p}).
DEFECT_CLAUSES: Final[dict[str, tuple[str, ...]]] = {
    "blur": ("the {p} lacks sharp detail", "the edges in the {p} are smeared", "the camera missed focus",
             "the {p} was taken out of focus", "fine detail is lost to blur", "the {p} looks smudged",
             "the edges are not crisp", "the {p} is soft all over"),
    "noise": ("the {p} is covered in grain", "there is speckle in the flat areas", "the {p} looks sandy",
              "random dots cover the {p}", "the shadows are noisy", "the smooth areas crawl with noise"),
    "compression": ("the {p} was compressed too hard", "the {p} was stored at a low bit rate",
                    "square blocks show in the {p}", "the {p} was saved with too much compression",
                    "there are blocks around the edges", "the encoder smeared the detail into blocks"),
    "low_resolution": ("the {p} was enlarged from a small original",
                       "individual pixels are visible in the {p}", "edges in the {p} look like staircases",
                       "the {p} has a low pixel count", "the {p} is blown up from a thumbnail"),
    "underexposure": ("the {p} is short of light", "the shadows swallow the detail",
                      "the {p} was shot in too little light", "the {p} needs more light",
                      "the {p} is too murky to see well", "the exposure is too low"),
    "overexposure": ("the highlights are clipped to white", "the bright areas have lost their detail",
                     "the {p} was given too much exposure", "the light parts are blown to white",
                     "the exposure is too high", "the whites have no texture left"),
    "low_contrast": ("the {p} looks washed out", "the {p} looks flat and grey", "the blacks are lifted to grey",
                     "the {p} lacks punch", "a haze hangs over the {p}", "the tones sit in a narrow range"),
    "colour": ("the colours in the {p} are off", "the {p} has a colour tint",
               "the colours look faded", "the colours are overdone", "the hues look unnatural"),
    "banding": ("the smooth gradients break into bands", "the sky shows visible steps",
                "the gradients look stepped", "there are contour lines in the smooth areas",
                "the shading breaks into stripes", "the gradients have too few tones"),
}
#: Statements that the picture is fine in that respect.
FINE_CLAUSES: Final[dict[str, tuple[str, ...]]] = {
    "blur": ("the {p} is in focus", "the edges are crisp", "fine detail is clearly rendered"),
    "noise": ("the flat areas are clean", "the {p} is free of speckle", "the shadows are clean"),
    "compression": ("the {p} was saved at a good quality", "no blocks are visible", "the encoding is clean"),
    "low_resolution": ("the {p} has plenty of resolution", "the {p} holds up at full size",
                       "no single pixels can be made out"),
    "underexposure": ("the shadows keep their detail", "the exposure is high enough"),
    "overexposure": ("the highlights keep their detail", "the bright areas are not clipped",
                     "the exposure is low enough"),
    "low_contrast": ("the {p} has good contrast", "the blacks are deep", "the tones span a wide range"),
    "colour": ("the colours look natural", "the white balance is right", "the hues look true"),
    "banding": ("the gradients are smooth", "the smooth areas have no steps", "the shading is continuous"),
}
_BROAD_YES_NO_ADJ: Final[tuple[str, ...]] = (
    "Is the {p} on the {adj} side?", "Does the {p} come across as {adj}?",
    "Is the {p} a bit {adj}?", "Is the {p} noticeably {adj}?", "Would you say this {p} looks {adj}?",
    "Is it {adj}, this {p}?", "Am I right that the {p} is {adj}?",
)
_BROAD_YES_NO_NOUN: Final[tuple[str, ...]] = (
    "Is there {noun} in this {p}?", "Are there signs of {noun} in the {p}?", "Does {noun} show up in this {p}?",
    "Would you say the {p} has {noun}?", "Is {noun} visible in the {p}?", "Do you find {noun} in this {p}?",
    "Does the {p} exhibit {noun}?",
)
# v6: v5 still answered many questions by the defect's word alone, whatever was said of it: "Is the
# focus off in this shot?" was answered as "is it in focus?" (15% right), "Do the bright areas keep
# their detail?" as "are they blown?" (5%). Negated words make the same word answer both ways.
_NOT_FINE: Final[tuple[str, ...]] = (
    "Is the {p} not {adj}?", "Is this {p} anything but {adj}?", "Would you say the {p} is not {adj}?",
    "Does the {p} fail to look {adj}?", "Is it wrong to call this {p} {adj}?",
)
_NOT_DEFECT_ADJ: Final[tuple[str, ...]] = (
    "Is the {p} not {adj}?", "Is this {p} far from {adj}?", "Would you say the {p} is not {adj}?",
    "Is it wrong to call this {p} {adj}?",
)
_NO_NOUN: Final[tuple[str, ...]] = (
    "Is the {p} free of {noun}?", "Is there no {noun} in this {p}?", "Does the {p} show no {noun}?",
    "Is this {p} without {noun}?", "Has the {p} escaped {noun}?",
)
_DENIED_CLAUSE: Final[tuple[str, ...]] = (
    "Would you disagree that {clause}?", "Is it false that {clause}?", "Would you deny that {clause}?",
)


def _bare(noun: str) -> str:
    """A defect noun without its article ("a colour cast" -> "colour cast"), to follow "no" or "free of"."""
    for article in ("a ", "an "):
        if noun.startswith(article):
            return noun[len(article):]
    return noun


@lru_cache(maxsize=None)
def negated_yes_no_wordings(kind: str, fine: bool = False) -> tuple[str, ...]:
    """v6: the other side's words negated. Yes = the defect is there ("Is the photo not sharp?"), or
    with ``fine`` yes = it is not ("Is the photo free of grain?")."""
    return tuple(sorted({_open(o, c) + close for c, o, close in
                         itertools.product(_negated_cores(kind, fine), _OPENERS, _YES_NO_CLOSERS)}))


def _negated_cores(kind: str, fine: bool) -> list[str]:
    """Questions whose answer flips a word of the other side: fine words negated ask about the defect,
    defect words negated ask about its absence."""
    if fine:
        adjectives = DEFECT_ADJECTIVES[kind] + BROAD_DEFECT_ADJECTIVES[kind]
        nouns = tuple(_bare(n) for n in DEFECT_NOUNS[kind] + BROAD_DEFECT_NOUNS[kind])
        cores = [t.format(p=p, adj=a) for t, p, a in itertools.product(_NOT_DEFECT_ADJ, PICTURE, adjectives)]
        cores += [t.format(p=p, noun=n) for t, p, n in itertools.product(_NO_NOUN, PICTURE, nouns)]
        clauses = DEFECT_CLAUSES[kind]
    else:
        adjectives = FINE_ADJECTIVES[kind] + BROAD_FINE_ADJECTIVES[kind]
        cores = [t.format(p=p, adj=a) for t, p, a in itertools.product(_NOT_FINE, PICTURE, adjectives)]
        clauses = FINE_CLAUSES[kind]
    cores += [t.format(clause=c.format(p=p)) for t, p, c in itertools.product(_DENIED_CLAUSE, PICTURE, clauses)]
    return cores


def polarity_twins(question: str, kind: str, asks_defect: bool) -> tuple[str, ...]:
    """Wordings that ask ``question``'s opposite with the same word: for "Is the photo blurry?" (yes =
    the defect, ``asks_defect``) "Is the photo not blurry?" or "Is the photo free of blur?"; for "Is
    the photo sharp?" "Is the photo not sharp?". Asked of one picture side by side, the two differ
    only in what is said of the word, so only reading that gets both right (the polarity bench's
    finding: the model answers by a question's topic word). Falls back to every opposite wording
    when the question names none of the kind's words."""
    lowered = question.lower()
    found = [w for w in _polarity_lexicon(kind) if _word_pattern(w).search(lowered)]
    return _twin_pool(kind, not asks_defect, max(found, key=len) if found else "")


@lru_cache(maxsize=None)
def _word_pattern(word: str) -> re.Pattern[str]:
    """``word`` as a whole word or phrase in lowered text (one compiled pattern per word)."""
    return re.compile(rf"\b{re.escape(word.lower())}\b")


@lru_cache(maxsize=None)
def _polarity_lexicon(kind: str) -> tuple[str, ...]:
    words = (DEFECT_ADJECTIVES[kind] + BROAD_DEFECT_ADJECTIVES[kind] + FINE_ADJECTIVES[kind]
             + BROAD_FINE_ADJECTIVES[kind] + tuple(_bare(n) for n in DEFECT_NOUNS[kind] + BROAD_DEFECT_NOUNS[kind]))
    return tuple(sorted(set(words)))


@lru_cache(maxsize=None)
def _twin_pool(kind: str, asks_defect: bool, word: str) -> tuple[str, ...]:
    """Every wording of one polarity (yes = the defect, or yes = its absence) that names ``word``."""
    if asks_defect:
        pool = yes_no_wordings(kind, broad=True) + negated_yes_no_wordings(kind)
    else:
        pool = yes_no_wordings(kind, fine=True, broad=True) + negated_yes_no_wordings(kind, fine=True)
    pool = tuple(sorted(set(pool)))
    if not word:
        return pool
    pattern = _word_pattern(word)
    named = tuple(q for q in pool if pattern.search(q.lower()))
    return named or pool


_CLAUSE_TEMPLATES: Final[tuple[str, ...]] = (
    "Would you say {clause}?", "Is it true that {clause}?", "Do you think {clause}?", "Does it look like {clause}?",
    "Would you agree that {clause}?", "Can you confirm that {clause}?", "Is it the case that {clause}?",
)


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


_BROAD_MCQ_TEMPLATES: Final[tuple[str, ...]] = (
    "Which of the following best describes what is wrong with this {p}?", "What is holding this {p} back the most?",
    "If this {p} has one {issue}, which is it?", "Which {issue} stands out in the {p}?",
    "What went wrong with this {p}, mainly?", "Which single {issue} would you fix first in this {p}?",
)


@lru_cache(maxsize=None)
def mcq_stems(broad: bool = False) -> tuple[str, ...]:
    """Every "which is the main problem" stem (``broad``: with the v5 shapes)."""
    out: set[str] = set()
    templates = _MCQ_TEMPLATES + (_BROAD_MCQ_TEMPLATES if broad else ())
    for template, p, close in itertools.product(templates, PICTURE, _MCQ_CLOSERS):
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


_BROAD_OPTIONS: Final[dict[str, tuple[str, ...]]] = {
    "blur": ("out of focus", "lack of sharpness", "camera shake"),
    "noise": ("specks", "grainy look", "noisy shadows"),
    "compression": ("JPEG artifacts", "low bit rate", "block artifacts"),
    "low_resolution": ("enlargement artifacts", "low pixel count", "upscaled"),
    "underexposure": ("too dim", "not enough light", "murky"),
    "overexposure": ("washed-out highlights", "clipped whites", "too light"),
    "low_contrast": ("washed out", "foggy look", "weak contrast"),
    "colour": ("wrong white balance", "unnatural colours", "faded colours"),
    "banding": ("stepped gradients", "posterisation", "tone steps"),
}


def option_names(kind: str, broad: bool = False) -> tuple[str, ...]:
    """Every option text that names ``kind`` (``broad``: with the v5 names)."""
    extra = tuple(o for o in _BROAD_OPTIONS[kind] if o not in phrasing.OPTION_SYNONYMS[kind] + _MORE_OPTIONS[kind])
    return phrasing.OPTION_SYNONYMS[kind] + _MORE_OPTIONS[kind] + (extra if broad else ())


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


#: v5: v4 answered some open requests ("give me your view ...") as if they were yes/no questions,
#: so the broad pool adds request shapes that are not "<verb> the quality of this picture".
_BROAD_DESCRIBE_VERBS: Final[tuple[str, ...]] = ("Give me a rundown of", "Give your view of", "Write a short review of",
                                                 "Report on", "Critique", "Examine", "Summarise",
                                                 "Talk me through", "Give an assessment of", "Say something about")
_BROAD_DESCRIBE_QUESTIONS: Final[tuple[str, ...]] = (
    "What's your take on the quality of this {p}?", "How would you rate this {p}'s quality, and why?",
    "What is good and what is bad about this {p}'s quality?", "Does this {p} have any quality problems?",
    "Is this {p} sharp, clean and well exposed? Explain.", "How does this {p} look in terms of quality?",
    "What can you say about how this {p} looks technically?", "Is anything wrong with the quality of this {p}?",
    "How well was this {p} captured?", "Is this {p} fit to publish, quality-wise? Why?",
    "Are the focus, noise, exposure and colours of this {p} all right?", "What stands out about this {p}'s quality?",
    "Look at this {p} and tell me how good it is technically.", "Would a picture editor accept this {p}? Explain.",
)
_BROAD_DESCRIBE_CLOSERS: Final[tuple[str, ...]] = (" Two or three sentences will do.", " Be specific.",
                                                   " List what is wrong, if anything.")


@lru_cache(maxsize=None)
def describe_prompts(broad: bool = False) -> tuple[str, ...]:
    """Every description prompt (``broad``: with the v5 request shapes)."""
    verbs, questions, closers = _DESCRIBE_VERBS, _DESCRIBE_QUESTIONS, _DESCRIBE_CLOSERS
    if broad:
        verbs, questions = verbs + _BROAD_DESCRIBE_VERBS, questions + _BROAD_DESCRIBE_QUESTIONS
        closers += _BROAD_DESCRIBE_CLOSERS
    out = {f"{v} {w} of this {p}.{c}" for v, w, p, c in itertools.product(verbs, _DESCRIBE_WHAT, PICTURE, closers)}
    out |= {q.format(p=p) + c for q, p, c in itertools.product(questions, PICTURE, closers)}
    return tuple(sorted(out))


def all_wordings() -> set[str]:
    """Every question these pools can produce (for the held-out disjointness check)."""
    out: set[str] = (set(mcq_stems()) | set(mcq_stems(broad=True)) | set(what_questions())
                     | set(describe_prompts(broad=True)))
    for kind in DEFECT_ADJECTIVES:
        out |= set(yes_no_wordings(kind, broad=True)) | set(yes_no_wordings(kind, fine=True, broad=True))
        out |= set(negated_yes_no_wordings(kind)) | set(negated_yes_no_wordings(kind, fine=True))
        out |= set(severity_stems(kind))
    return out


def pick(pool: tuple[str, ...], rng: random.Random) -> str:
    """One wording, uniformly (pools are sorted, so the draw is reproducible)."""
    return pool[rng.randrange(len(pool))]

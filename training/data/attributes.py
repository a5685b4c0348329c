"""Keyword analysis of free-text low-level feedback (the offline half of Q-Pathway conversion).

A Q-Pathway feedback walks from what is seen, through low-level attributes (clarity, noise,
exposure, colour...), to an overall verdict. This module recovers, with plain patterns, the
attribute *states* the text asserts (``sharpness: blurry``), the sentences that assert them, and
the verdict on the five-level scale (excellent, good, fair, poor, bad) that Q-Align scores with.
It is deliberately simple and predictable: better to miss an attribute than to invent one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

#: The five-level scale, best first.
LEVELS: tuple[str, ...] = ("excellent", "good", "fair", "poor", "bad")

#: Attribute -> its possible states. The first state listed is the "defect" where there is one.
ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "sharpness": ("blurry", "sharp"),
    "noise": ("noisy", "clean"),
    "exposure": ("overexposed", "underexposed", "well_exposed"),
    "colour": ("dull", "vivid"),
    "compression": ("artifacts", "clean"),
    "contrast": ("low", "high"),
}

#: States that describe a defect; used for "what is the main distortion" questions.
DEFECTS: dict[tuple[str, str], str] = {
    ("sharpness", "blurry"): "blur",
    ("noise", "noisy"): "noise",
    ("exposure", "overexposed"): "overexposure",
    ("exposure", "underexposed"): "underexposure",
    ("colour", "dull"): "dull colours",
    ("compression", "artifacts"): "compression artifacts",
    ("contrast", "low"): "low contrast",
}

_C = r"colou?rs?"
# (pattern, attribute, state, state when negated or None to drop a negated mention).
# Longer, more specific phrases are preferred over shorter ones covering the same words.
_LEXICON: list[tuple[str, str, str, str | None]] = [
    (r"blur(?:ry|red|riness|s)?", "sharpness", "blurry", "sharp"),
    (r"out[- ]of[- ]focus|unfocused|defocus(?:ed)?|fuzzy|smeared", "sharpness", "blurry", "sharp"),
    (r"(?:lack|loss|lost) of (?:fine )?(?:details?|sharpness|clarity)", "sharpness", "blurry", None),
    (r"sharp(?:ness)?|crisp|clarity|clear(?!\s+that)|in focus|well[- ]focused", "sharpness", "sharp", "blurry"),
    (r"(?:fine|rich|clear|abundant) (?:details?|textures?)|detailed", "sharpness", "sharp", "blurry"),
    (r"nois(?:e|y|iness)|grain(?:y|iness)?|speckles?", "noise", "noisy", "clean"),
    (r"noise[- ]free", "noise", "clean", None),
    (r"over[- ]?expos(?:ed|ure)|too bright|overly bright|blown[- ]out|blown highlights?",
     "exposure", "overexposed", None),
    (r"under[- ]?expos(?:ed|ure)|too dark|very dark|quite dark|rather dark|dimly lit|poorly lit|"
     r"low[- ]light|(?:insufficient|inadequate|poor) (?:lighting|light)|not enough light",
     "exposure", "underexposed", None),
    (r"well[- ]exposed|properly exposed|(?:good|proper|correct|appropriate) exposure|"
     r"(?:good|adequate|sufficient|ample|nice) (?:lighting|light)|well[- ]lit", "exposure", "well_exposed", None),
    (rf"{_C} (?:is|are|looks?|seems?|appears?) (?:(?:a bit|slightly|somewhat|rather|quite|very|too) )?"
     rf"(?:dull|faded|pale|muted|washed[- ]out|dim|desaturated|monotonous|dark)", "colour", "dull", "vivid"),
    (rf"{_C} (?:is|are|looks?|seems?|appears?) (?:(?:quite|very|rather|really) )?"
     rf"(?:vivid|vibrant|rich|saturated|natural|bright|beautiful|pleasing)", "colour", "vivid", "dull"),
    (rf"(?:vivid|vibrant|rich|saturated|natural|bright|beautiful) {_C}|colou?rful|vivid|vibrant",
     "colour", "vivid", "dull"),
    (rf"(?:dull|faded|pale|muted|washed[- ]out|monotonous|desaturated|dim|dark) {_C}|desaturated|faded|"
     rf"colou?r (?:cast|distortion|shift)|dull", "colour", "dull", None),
    (r"compression(?: artifacts?| artefacts?)?|jpe?g artifacts?|block(?:y|iness|ing)(?: artifacts?)?|"
     r"pixelat(?:ed|ion)|artifacts?|artefacts?|mosaic|ringing", "compression", "artifacts", "clean"),
    (r"(?:low|poor|weak|insufficient) contrast|lacks? contrast|lack of contrast|washed[- ]out",
     "contrast", "low", None),
    (r"(?:high|good|strong|great|nice|rich) contrast|contrasty", "contrast", "high", "low"),
]
_COMPILED = [(re.compile(rf"\b(?:{p})\b", re.I), a, s, n) for p, a, s, n in _LEXICON]

# Words that, shortly before a keyword, turn "noise" into "no noise".
_NEGATORS = {"no", "not", "without", "hardly", "barely", "little", "lack", "lacks", "lacking", "free",
             "never", "nor", "minimal", "low", "poor", "insufficient", "isn't", "aren't", "doesn't",
             "don't", "wasn't", "lacked", "absence", "nothing", "neither", "n't"}
_NEGATION_WINDOW = 3

_LEVEL_WORDS: dict[str, str] = {
    "excellent": "excellent", "outstanding": "excellent", "superb": "excellent", "perfect": "excellent",
    "exceptional": "excellent", "impeccable": "excellent",
    "good": "good", "high": "good", "great": "good", "fine": "good", "nice": "good",
    "fair": "fair", "average": "fair", "acceptable": "fair", "mediocre": "fair", "medium": "fair",
    "moderate": "fair", "okay": "fair", "ok": "fair", "passable": "fair", "decent": "fair",
    "poor": "poor", "low": "poor", "subpar": "poor", "unsatisfactory": "poor",
    "bad": "bad", "terrible": "bad", "awful": "bad", "horrible": "bad", "unacceptable": "bad",
}
_INTENSIFIERS = {"very", "extremely", "really", "exceptionally", "incredibly", "highly"}
_LW = "|".join(sorted(_LEVEL_WORDS, key=len, reverse=True))
_MOD = (r"(?:(?P<mod>very|extremely|really|exceptionally|incredibly|highly|quite|rather|relatively|fairly|"
        r"pretty|somewhat)\s+)?")
_LEVEL_PATTERNS = [
    # "... quality is (relatively) good", "the quality of this image is not good"
    re.compile(rf"\bquality\b(?:\s+of\s+(?:this|the)\s+(?:image|picture|photo|photograph))?\s+"
               rf"(?:is|was|seems|appears|looks|remains|can be (?:considered|rated|described as|regarded as)|"
               rf"should be|would be)\s+(?P<neg>not\s+)?(?:at\s+an?\s+|of\s+an?\s+|overall\s+)?{_MOD}"
               rf"(?P<w>{_LW})\b", re.I),
    # "(a) very poor (overall) quality"
    re.compile(rf"\b(?P<neg>not\s+)?{_MOD}(?P<w>{_LW})\s+(?:overall\s+)?(?:image\s+|visual\s+|picture\s+)?"
               r"quality\b", re.I),
    # "I would rate it as fair", "rated as poor"
    re.compile(rf"\brat(?:e|ed|ing)\s+(?:it|this|this image|the image)?\s*(?:as\s+)?{_MOD}(?P<w>{_LW})\b", re.I),
    # "Overall, the image is good."
    re.compile(rf"\boverall\b[^.]*?\b(?:is|looks|seems|appears)\s+(?P<neg>not\s+)?{_MOD}(?P<w>{_LW})\b", re.I),
]

_SENTENCE_SPLIT = re.compile(r"(?<=[.!?;])\s+")


def split_sentences(text: str) -> list[str]:
    """Split on sentence punctuation; Q-Pathway feedbacks are short, plain prose."""
    return [s.strip() for s in _SENTENCE_SPLIT.split(" ".join(text.split())) if s.strip()]


def normalise_level(word: str | None) -> str | None:
    """Map a level word or synonym (``average`` -> ``fair``) onto :data:`LEVELS`; else ``None``."""
    if word is None:
        return None
    w = word.strip().lower()
    if w.startswith(("very ", "extremely ")):
        base = _LEVEL_WORDS.get(w.split(None, 1)[1])
        return {"good": "excellent", "poor": "bad", "bad": "bad"}.get(base or "", base)
    return _LEVEL_WORDS.get(w)


@dataclass
class Analysis:
    """What :func:`analyse` found in one feedback."""

    sentences: list[str]
    level: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    #: Attribute -> the sentences that support its state, in text order.
    evidence: dict[str, list[str]] = field(default_factory=dict)
    #: Attributes in the order they are first mentioned.
    order: list[str] = field(default_factory=list)

    def defects(self) -> list[str]:
        """Defect nouns (``blur``, ``noise``...) in order of mention."""
        return [DEFECTS[(a, self.attributes[a])] for a in self.order if (a, self.attributes[a]) in DEFECTS]


# "the noise is low", "blur is barely visible": negation after the keyword.
_POST_NEGATION = re.compile(
    r"\s+(?:is|are|was|were|seems|appears|remains)\s+(?:(?:very|quite|relatively|rather|fairly)\s+)?"
    r"(?:low|minimal|negligible|not\b|hardly|barely|absent|invisible|unnoticeable)", re.I)


def negated(text: str, start: int, end: int) -> bool:
    """Whether the mention at ``text[start:end]`` is negated ("no visible noise", "not blurry", "blur is
    absent"): the rule :func:`analyse` applies to every attribute word."""
    before = re.findall(r"[a-z']+", text[:start].lower())[-_NEGATION_WINDOW:]
    if any(w in _NEGATORS or w.endswith("n't") for w in before):
        return True
    return _POST_NEGATION.match(text, end) is not None


def _find_level(sentence: str) -> str | None:
    for pattern in _LEVEL_PATTERNS:
        m = pattern.search(sentence)
        if not m:
            continue
        level = _LEVEL_WORDS[m.group("w").lower()]
        mod = (m.groupdict().get("mod") or "").lower()
        if mod in _INTENSIFIERS:
            level = {"good": "excellent", "poor": "bad"}.get(level, level)
        if m.groupdict().get("neg"):
            level = {"excellent": "good", "good": "poor", "fair": "poor", "poor": "fair", "bad": "fair"}[level]
        return level
    return None


def analyse(text: str) -> Analysis:
    """Find attribute states, their evidence sentences and the overall level in ``text``."""
    sentences = split_sentences(text)
    result = Analysis(sentences=sentences)
    votes: dict[str, dict[str, int]] = {}
    for sentence in sentences:
        hits = []
        for rx, attr, state, neg_state in _COMPILED:
            for m in rx.finditer(sentence):
                hits.append((m.start(), -(m.end() - m.start()), m.end(), attr, state, neg_state))
        hits.sort()
        taken_until = -1
        for start, _, end, attr, state, neg_state in hits:
            if start < taken_until:  # overlapped by a longer phrase already taken
                continue
            taken_until = end
            if negated(sentence, start, end):
                if neg_state is None:
                    continue
                state = neg_state
            votes.setdefault(attr, {}).setdefault(state, 0)
            votes[attr][state] += 1
            if attr not in result.order:
                result.order.append(attr)
            ev = result.evidence.setdefault(attr, [])
            if sentence not in ev:
                ev.append(sentence)
    for attr, counts in votes.items():
        # Majority; ties go to the state mentioned first (dicts keep insertion order).
        result.attributes[attr] = max(counts, key=lambda s: counts[s])
    # The verdict usually closes the feedback: search from the last sentence backwards.
    for sentence in reversed(sentences):
        level = _find_level(sentence)
        if level is not None:
            result.level = level
            break
    return result

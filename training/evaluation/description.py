"""3. Description: greedy descriptions of a fixed subsample, checked offline.

Does the text name the dominant distortion (or none on a clean image), and is its verdict within
one level of the truth (``qplug_training.data.attributes``' keyword analysis, with its negation rule)."""

from __future__ import annotations

import re
import time
from collections import defaultdict
from typing import Any, Sequence

from .common import deterministic_sample, load_rgb, log
from .images import EvalImage


#: Kind -> the attribute states of qplug_training.data.attributes that name it (analyse() handles negation).
KIND_STATES: dict[str, tuple[tuple[str, str], ...]] = {
    "blur": (("sharpness", "blurry"),),
    "noise": (("noise", "noisy"),),
    "compression": (("compression", "artifacts"),),
    "underexposure": (("exposure", "underexposed"),),
    "overexposure": (("exposure", "overexposed"),),
    "low_contrast": (("contrast", "low"),),
    "colour": (("colour", "dull"),),
}


#: Kinds (or parts of kinds) that analyse() has no state for: words from the corpus' own defect sentences
#: (training/corpus/feedback.py), checked with analyse()'s negation rule.
KIND_WORDS: dict[str, str] = {
    "low_resolution": r"low[- ]resolution|loss of resolution|upscaled|enlarged from|resampl\w*|pixelat\w*|"
                      r"stair[- ]stepped|jagged",
    "banding": r"banding|bands|posteri[sz]\w*|false contours?",
    # analyse() reads "low contrast" but not "the contrast is low", the corpus' commonest phrasing.
    "low_contrast": r"contrast is (?:very |quite |rather )?low|loss of contrast|hazy|foggy",
    "colour": r"oversaturat\w*|garish|colou?r cast|tinted|white balance|unnatural colou?rs?|desaturat\w*",
}
_KIND_RX = {kind: re.compile(rf"\b(?:{words})\b", re.I) for kind, words in KIND_WORDS.items()}
#: Film grain said to be part of the picture: the corpus teaches it for grain that is content, which
#: issue 16 counts as high quality (``feedback.GRAIN_AS_CONTENT``), so such a sentence names no defect.
#: analyse() would read its "grain" as noise.
_GRAIN_AS_CONTENT = re.compile(r"\bgrain\b.*\b(?:part of the (?:picture|image|look)|does not harm|rather than a defect|"
                               r"not a defect|as in a photo shot on film)", re.I)


def named_kinds(text: str) -> set[str]:
    """Distortion kinds a description asserts (negated mentions such as "no visible noise" do not count)."""
    from ..data.attributes import analyse, negated, split_sentences  # negated: analyse()'s own negation rule

    sentences = [s for s in split_sentences(text) if not _GRAIN_AS_CONTENT.search(s)]
    found = analyse(" ".join(sentences))
    kinds = {kind for kind, states in KIND_STATES.items() if any(found.attributes.get(a) == s for a, s in states)}
    for sentence in sentences:
        for kind, rx in _KIND_RX.items():
            if any(not negated(sentence, m.start(), m.end()) for m in rx.finditer(sentence)):
                kinds.add(kind)
    return kinds


def check_description(text: str, main: str | None, level: str) -> dict[str, Any]:
    """3a: the dominant kind is named (none named on a clean image); 3b: the verdict is within one level."""
    from ..data.attributes import LEVELS, analyse

    kinds = named_kinds(text)
    analysis = analyse(text)
    found = analysis.level
    distance = abs(LEVELS.index(found) - LEVELS.index(level)) if found else None
    # On a clean image "names none" means: no defect claimed, yet the text does assess quality (an
    # attribute or a verdict), so an empty or degenerate description does not pass as "no distortion".
    says_clean = not kinds and (bool(analysis.attributes) or found is not None)
    return {"main": main or "none", "named": sorted(kinds),
            "names_main": (main in kinds) if main else says_clean,
            "level": level, "level_found": found, "level_distance": distance,
            "level_within_one": distance is not None and distance <= 1}


def description_figures(model: str, images: Sequence[EvalImage], n: int, max_new_tokens: int, batch_size: int,
                        items: list[dict[str, Any]]) -> dict[str, Any]:
    from qplug.types import Frame
    from qplug_vlm import describer

    chosen = deterministic_sample(list(images), n, "describe")
    describe = describer.build(model=model, device="cpu", max_new_tokens=max_new_tokens)
    checks: list[dict[str, Any]] = []
    began = time.perf_counter()
    for start in range(0, len(chosen), batch_size):
        chunk = chosen[start:start + batch_size]
        frames = [Frame.from_rgb(load_rgb(im.path), source_id=im.id, index=i) for i, im in enumerate(chunk)]
        for im, text in zip(chunk, describe.describe(frames)):
            check = check_description(text, im.main, im.level)
            checks.append(check)
            items.append({"task": "describe", "id": im.id, "description": text, **check})
    log(f"description: {len(chosen)} images in {time.perf_counter() - began:.1f} s")

    def rate(rows: list[dict[str, Any]], key: str) -> float | None:
        return sum(bool(r[key]) for r in rows) / len(rows) if rows else None

    by_main: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for check in checks:
        by_main[check["main"]].append(check)
    return {"n": len(checks), "names_main": rate(checks, "names_main"),
            "level_within_one": rate(checks, "level_within_one"),
            "level_exact": sum(c["level_distance"] == 0 for c in checks) / len(checks) if checks else None,
            "level_missing": sum(c["level_found"] is None for c in checks) / len(checks) if checks else None,
            "by_main": {k: {"n": len(v), "names_main": rate(v, "names_main"),
                            "level_within_one": rate(v, "level_within_one")} for k, v in sorted(by_main.items())}}

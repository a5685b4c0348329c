"""Human-like Q-Pathway feedback for a corpus image, written from its facts.

A Q-Pathway feedback walks from what is seen, through the low-level attributes, to a verdict
(Q-Instruct, arXiv 2311.06783). Without semantic labels the scene is described generically
("the scene", "the subject", "textures", "flat areas") from pixel statistics of the pristine crop;
then each visible distortion, worst first, with a strength word from its measured impact; sometimes
an attribute that is fine ("colours look natural"); then the overall verdict with the level word.
Several templates per slot, synonyms and order variations, all drawn from a generator seeded by
the image id, so the same corpus always gets the same text.

Phrases are chosen to agree with :mod:`qplug_training.data.attributes`' keyword analysis (the offline
converter reads them), and the states the facts support are also pinned in the
:class:`~qplug_training.data.Feedback`, so converters never have to guess.
"""

from __future__ import annotations

import random
from typing import Any, Mapping

from ..data import Feedback

# --------------------------------------------------------------------------- strength words

_ADJ: dict[str, tuple[str, ...]] = {
    "slight": ("slight", "mild", "faint", "minor"),
    "moderate": ("noticeable", "moderate", "visible", "evident"),
    "strong": ("strong", "heavy", "obvious", "pronounced"),
    "severe": ("severe", "extreme", "very heavy", "overwhelming"),
}
_ADV: dict[str, tuple[str, ...]] = {
    # Not "a little": qplug_training.data's keyword analysis reads "little" as a negation.
    "slight": ("slightly", "mildly", "somewhat"),
    "moderate": ("noticeably", "moderately", "visibly"),
    "strong": ("strongly", "heavily", "badly"),
    "severe": ("severely", "extremely", "very badly"),
}


def _a(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


# --------------------------------------------------------------------------- defect sentences
# {adj}: strength adjective, {a_adj}: with article, {adv}: strength adverb, {hue}: cast colour.

_DEFECT: dict[str, tuple[str, ...]] = {
    "gaussian_blur": (
        "{A_adj} blur softens the whole image, and delicate textures are smeared.",
        "Edges are soft: the picture suffers from {a_adj} blur.",
        "Small details are lost to {a_adj} blur that covers the whole frame.",
        "The image is {adv} blurry, so small structures melt together.",
    ),
    "motion_blur": (
        "{A_adj} motion blur streaks the edges in one direction.",
        "There is {a_adj} directional motion blur, as if the camera moved during the exposure.",
        "Edges are doubled and smeared along one direction by {a_adj} motion blur.",
    ),
    "defocus_blur": (
        "The image looks {adv} out of focus, with soft, rounded edges.",
        "{A_adj} defocus blur turns small bright details into soft discs.",
        "The whole frame is {adv} defocused, so textures look mushy.",
    ),
    "gaussian_noise": (
        "{A_adj} grainy noise covers the image and is most visible in the flat areas.",
        "There is {a_adj} noise throughout the picture, like a layer of fine grain.",
        "The image is {adv} noisy: even smooth areas are speckled.",
    ),
    "shot_noise": (
        "{A_adj} grain appears across the image, worst in the darker parts.",
        "The picture shows {a_adj} noise, typical of a small sensor pushed to a high ISO.",
        "Dark regions are {adv} noisy, with a grainy, speckled look.",
    ),
    "chroma_noise": (
        "{A_adj} colour noise shows up as coloured speckles and blotches.",
        "There are {adj} coloured speckles of noise, especially in the flat areas.",
        "The image is {adv} noisy in colour: smooth regions are sprinkled with red and green blotches.",
    ),
    "jpeg": (
        "{Adj} JPEG compression artifacts appear as blocky patches and ringing around edges.",
        "The image shows {adj} compression artifacts: 8x8 blocks are visible in smooth areas.",
        "Compression has left {adj} blocking artifacts, and delicate textures are replaced by blocks.",
    ),
    "webp": (
        "{Adj} compression artifacts smooth textures into blotchy patches.",
        "The image shows {adj} compression artifacts: small details are flattened and edges are smudged.",
        "Compression is {adv} visible as flattened textures and blotchy flat areas.",
    ),
    "h264": (
        "{Adj} video-compression artifacts flatten small details into blocky patches.",
        "The image shows {adj} compression artifacts, with smudged textures and block edges.",
        "Like a compressed video frame, the picture has {adj} blocking and flattened detail.",
    ),
    "hevc": (
        "{Adj} compression artifacts wash delicate textures into smooth, plasticky patches.",
        "The image shows {adj} video-compression artifacts: textures are smoothed away and edges ring.",
        "Compression has {adv} flattened the detail, leaving smudged patches.",
    ),
    "downup": (
        "The image looks upscaled from a low resolution: edges are soft and slightly jagged.",
        "{A_adj} loss of resolution makes the picture look soft, as if enlarged from a small image.",
        "Detail is {adv} degraded by resampling, with soft, stair-stepped edges.",
    ),
    "pixelate": (
        "The picture is {adv} pixelated, with square blocks replacing the detail.",
        "{A_adj} pixelation turns the image into visible square blocks.",
        "The image is pixelated: {adj} blocky mosaic patterns hide the fine structure.",
    ),
    "underexposure": (
        "The image is {adv} underexposed, and shadow detail sinks into black.",
        "{A_adj} underexposure makes the whole picture too dark.",
        "The picture is underexposed; the darker regions lose their detail.",
    ),
    "overexposure": (
        "The image is {adv} overexposed, with blown highlights.",
        "{A_adj} overexposure makes the picture too bright, and highlight detail is lost.",
        "The bright areas are blown out by {a_adj} overexposure.",
    ),
    "low_contrast": (
        "The contrast is low: the image looks flat and hazy.",
        "{A_adj} loss of contrast leaves the picture washed out and grey.",
        "The image has low contrast, so everything looks grey and foggy.",
    ),
    "fade_black": (
        "The picture has {adv} gone to black: almost nothing of the scene is left.",
        "The frame is nearly black, and the content is barely visible.",
        "{A_adj} blackout leaves only a faint trace of the picture in a dark, empty frame.",
    ),
    "fade_flat": (
        "The picture is {adv} washed into a flat, uniform tone; the scene is barely visible.",
        "The frame is almost a single flat colour, with only a faint trace of the content.",
        "{A_adj} wash of one uniform tone leaves the image nearly blank.",
    ),
    "desaturation": (
        "Colours are faded and dull.",
        "The colours look {adv} desaturated, close to grey in places.",
        "{A_adj} desaturation leaves the picture with dull, faded colours.",
    ),
    "oversaturation": (
        "Colours are {adv} oversaturated and look garish.",
        "{A_adj} oversaturation makes the colours look loud and artificial.",
        "The colours are pushed too far: {adj} oversaturation gives an unnatural look.",
    ),
    "colour_cast": (
        "There is {a_adj} {hue} colour cast over the whole image.",
        "{A_adj} {hue} colour cast tints everything, so the white balance looks wrong.",
        "The picture is tinted {hue}: {a_adj} colour cast throws off the white balance.",
    ),
    "banding": (
        "Smooth gradients break into {adj} bands and false contours.",
        "{A_adj} banding shows in the gradients, which step in visible contours.",
        "The image is {adv} posterised: smooth areas split into flat bands.",
    ),
}

#: Noun phrases for "because of ..." verdicts.
_CAUSE: dict[str, tuple[str, ...]] = {
    "blur": ("the blur", "the lack of sharpness"),
    "noise": ("the noise", "the grain"),
    "compression": ("the compression artifacts", "the blocking artifacts"),
    "low_resolution": ("the low resolution", "the loss of resolution"),
    "underexposure": ("the underexposure", "the dark exposure"),
    "overexposure": ("the overexposure", "the blown highlights"),
    "low_contrast": ("the low contrast", "the flat, hazy look"),
    "colour": ("the colour problems", "the unnatural colours"),
    "banding": ("the banding", "the false contours"),
}

# --------------------------------------------------------------------------- fine attributes

_FINE: dict[tuple[str, str], tuple[str, ...]] = {
    ("sharpness", "sharp"): ("Edges remain sharp.", "Fine details are still crisp.",
                             "The image is sharp and in focus."),
    ("noise", "clean"): ("There is no visible noise.", "Flat areas are clean, without grain.",
                         "The image is free of noise."),
    ("exposure", "well_exposed"): ("The image is well exposed.", "The exposure is appropriate.",
                                   "The lighting is well balanced and the image is well exposed."),
    ("compression", "clean"): ("There are no compression artifacts.",
                               "No blocking or compression artifacts are visible."),
    ("colour", "vivid"): ("Colours look natural and vivid.", "The colours are rich and natural."),
    ("contrast", "high"): ("The image has good contrast.", "The image has strong contrast."),
}

#: Sentences for film grain that is part of the source (:func:`.distortions.film_grain`): no defect.
GRAIN_AS_CONTENT = ("A fine film grain is part of the picture and does not harm it.",
          "The image carries a natural film grain, which is texture rather than a defect.",
          "There is a light, natural film grain, as in a photo shot on film.")

# --------------------------------------------------------------------------- scene

_NOUNS = ("scene", "view", "subject", "composition")


def _scene_sentence(content: Mapping[str, Any], kinds: Mapping[str, str], applied_kinds: set[str],
                    rng: random.Random) -> str:
    adjs: list[str] = []
    tone_distorted = bool(set(kinds) & {"underexposure", "overexposure", "low_contrast"})
    # Colour words describe the pristine content: skip them once anything touched the colours.
    colour_distorted = tone_distorted or bool((set(kinds) | applied_kinds) & {"colour", "noise"})
    if not tone_distorted and content.get("brightness") == "dark":
        adjs.append(rng.choice(("dark", "dim", "shadowy")))
    elif not tone_distorted and content.get("brightness") == "bright":
        adjs.append(rng.choice(("bright", "light", "high-key")))
    if not colour_distorted:
        if content.get("colour") == "colourful":
            adjs.append(rng.choice(("colourful", "vibrant")))
        elif content.get("colour") == "monochrome":
            adjs.append(rng.choice(("monochrome", "nearly grey", "black-and-white")))
        elif content.get("colour") == "muted":
            adjs.append(rng.choice(("softly coloured", "pastel")))
    noun = rng.choice(_NOUNS)
    with_parts: list[str] = []
    if content.get("detail") == "rich":
        with_parts.append(rng.choice(("lots of small structures", "intricate patterns", "busy textures")))
    elif content.get("detail") == "smooth":
        with_parts.append(rng.choice(("few textures", "soft gradients", "sparse texture")))
    if content.get("flat_areas"):
        with_parts.append(rng.choice(("large flat areas", "wide smooth regions", "plain areas")))
    desc = (", ".join(adjs) + " " if adjs else "") + noun
    if with_parts:
        desc += " with " + " and ".join(with_parts)
    lead = rng.choice(("The image shows {}.", "This is {}.", "The photo captures {}.", "We see {}."))
    return lead.format(_a(desc) if not desc[0].isupper() else desc)


# --------------------------------------------------------------------------- assembly


def _defect_sentence(d: Mapping[str, Any], rng: random.Random) -> str:
    impact = d["impact"]
    adj = rng.choice(_ADJ[impact])
    template = rng.choice(_DEFECT[d["type"]])
    text = template.format(adj=adj, Adj=adj.capitalize(), a_adj=_a(adj), A_adj=_a(adj).capitalize(),
                           adv=rng.choice(_ADV[impact]),
                           hue=(d.get("params") or {}).get("hue", "colour"))
    return text[0].upper() + text[1:]


def _verdict(level: str, causes: list[str], rng: random.Random) -> str:
    if causes and level in ("excellent", "good") and rng.random() < 0.45:
        return rng.choice((
            "Apart from {c}, the image holds up well, and its overall quality is {l}.",
            "Despite {c}, the overall quality of the image is {l}.",
        )).format(c=rng.choice(_CAUSE[causes[0]]), l=level)
    if causes and level not in ("excellent", "good") and rng.random() < 0.45:
        cause = rng.choice(_CAUSE[causes[0]])
        if len(causes) > 1 and rng.random() < 0.5:
            cause += " and " + rng.choice(_CAUSE[causes[1]])
        return rng.choice((
            "Because of {c}, the overall quality of the image is {l}.",
            "Given {c}, the quality of this image is {l}.",
            "Due to {c}, the overall quality is {l}.",
        )).format(c=cause, l=level)
    if not causes and rng.random() < 0.4:
        return rng.choice((
            "With no visible distortion, the quality of this image is {l}.",
            "Since nothing degrades it, the overall quality of the image is {l}.",
        )).format(l=level)
    return rng.choice((
        "Overall, the quality of the image is {l}.",
        "Taken together, the image quality is {l}.",
        "All things considered, the overall quality is {l}.",
        "In summary, the quality of this image is {l}.",
        "The overall quality of the image is {l}.",
    )).format(l=level)


def feedback_text(facts: Mapping[str, Any], seed: str) -> str:
    """The pathway text for one image (deterministic for a given ``seed``)."""
    rng = random.Random(f"feedback:{seed}")
    kinds: Mapping[str, str] = facts["kinds"]
    level: str = facts["level"]
    visible = [d for d in facts["distortions"] if d["impact"] != "imperceptible"]
    visible.sort(key=lambda d: d["alone_mos"])  # worst first
    defects = [_defect_sentence(d, rng) for d in visible]
    if len(defects) == 2 and rng.random() < 0.5:
        joiner = rng.choice(("In addition, ", "On top of that, ", "Besides, ", "Also, "))
        second = defects[1]
        defects = [defects[0], joiner + second[0].lower() + second[1:]]
    fine_states = [(a, s) for a, s in facts["attributes"].items() if (a, s) in _FINE]
    rng.shuffle(fine_states)
    n_fine = len(fine_states) if not visible else rng.choice((0, 1, 1, 2))
    n_fine = min(n_fine, 3 if not visible else 2)
    fine = [rng.choice(_FINE[st]) for st in fine_states[:n_fine]]

    parts: list[str] = []
    if rng.random() < 0.85:
        applied_kinds = {d["kind"] for d in facts["distortions"]}
        parts.append(_scene_sentence(facts["content"], kinds, applied_kinds, rng))
    if facts["content"].get("grain"):
        # Grain in the source is texture, not a defect (the level ignores it); say so, never "no noise".
        parts.append(rng.choice(GRAIN_AS_CONTENT))
    if fine and visible and rng.random() < 0.3:
        parts.extend(fine)
        parts.extend(defects)
    else:
        parts.extend(defects)
        parts.extend(fine)
    if not visible and not fine:
        parts.append(rng.choice(("No distortion is visible.", "The image looks clean and natural.")))
    causes = [d["kind"] for d in visible]
    causes = list(dict.fromkeys(causes))
    parts.append(_verdict(level, causes, rng))
    return " ".join(parts)


def make_feedback(item_id: str, image: str, facts: Mapping[str, Any]) -> Feedback:
    """A :class:`qplug_training.data.Feedback` for one corpus image, attributes pinned from the facts."""
    return Feedback(image=image, text=feedback_text(facts, item_id), level=facts["level"],
                    attributes=dict(facts["attributes"]) or None, id=item_id)

"""What is true about one corpus image: content statistics, distortions, their impact, the level.

Everything the text generators say comes from these facts, so answers cannot contradict the
image: a distortion whose measured impact is imperceptible (a blur on a flat sky) is recorded but
neither described nor asked about.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import cv2
import numpy as np

from .distortions import DISTORTIONS, KINDS, severity_level

#: Impact words by pseudo-MOS drop (5 - pseudo-MOS of the distortion applied alone), upper bounds.
#: The steps follow the level bins (0.8 MOS wide): "slight" is within one level of pristine.
IMPACTS: tuple[tuple[float, str], ...] = (
    (0.35, "imperceptible"), (0.9, "slight"), (1.7, "moderate"), (2.6, "strong"), (math.inf, "severe"))
IMPACT_ORDER: tuple[str, ...] = tuple(word for _, word in IMPACTS)

#: Distortion type -> (attribute, state) in qplug_training.data's vocabulary
#: (:data:`qplug_training.data.attributes.ATTRIBUTES`), where one fits.
TYPE_ATTRIBUTE: dict[str, tuple[str, str] | None] = {
    "gaussian_blur": ("sharpness", "blurry"), "motion_blur": ("sharpness", "blurry"),
    "defocus_blur": ("sharpness", "blurry"), "downup": ("sharpness", "blurry"),
    "gaussian_noise": ("noise", "noisy"), "shot_noise": ("noise", "noisy"), "chroma_noise": ("noise", "noisy"),
    "jpeg": ("compression", "artifacts"), "webp": ("compression", "artifacts"), "h264": ("compression", "artifacts"),
    # qplug_training.data's keyword analysis reads "pixelated"/"blocky" as compression artifacts too.
    "hevc": ("compression", "artifacts"), "pixelate": ("compression", "artifacts"),
    # Banding is a quantisation artifact but not a compression one; no state fits.
    "banding": None,
    "underexposure": ("exposure", "underexposed"), "overexposure": ("exposure", "overexposed"),
    "low_contrast": ("contrast", "low"),
    # A faded frame is too dark / without contrast before anything else.
    "fade_black": ("exposure", "underexposed"), "fade_flat": ("contrast", "low"),
    "desaturation": ("colour", "dull"), "colour_cast": ("colour", "dull"),
    # "vivid" is qplug_training.data's only other colour state, and garish colours are not vivid ones.
    "oversaturation": None,
}

#: Kinds easy to mistake for one another: never asked as a "no" or offered as a wrong option
#: when the other is visible (a heavily compressed image *is* somewhat blurry).
_CONFUSABLE_PAIRS = (("blur", "low_resolution"), ("blur", "compression"), ("low_resolution", "compression"),
                     ("compression", "banding"), ("underexposure", "low_contrast"), ("overexposure", "low_contrast"),
                     ("overexposure", "colour"), ("low_contrast", "colour"), ("noise", "compression"))
CONFUSABLE: dict[str, set[str]] = {k: set() for k in KINDS}
for _a, _b in _CONFUSABLE_PAIRS:
    CONFUSABLE[_a].add(_b)
    CONFUSABLE[_b].add(_a)


def impact_word(drop: float) -> str:
    """Impact word for a pseudo-MOS drop."""
    for bound, word in IMPACTS:
        if drop < bound:
            return word
    return IMPACTS[-1][1]


def visible(impact: str) -> bool:
    return impact != "imperceptible"


#: Impacts at which a yes/no question about a kind has "yes" for its answer (the paraphrase figures,
#: the yes/no thresholds' fit): a "slight" one is neither asked as there nor as absent.
CLEARLY_THERE: tuple[str, ...] = ("moderate", "strong", "severe")


# --------------------------------------------------------------------------- content


def colourfulness(rgb: np.ndarray) -> float:
    """Hasler & Suesstrunk (2003) colourfulness M: ~0 grey, 15 slightly, 33 moderately, >59 very."""
    x = rgb.astype(np.float64)
    rg = x[..., 0] - x[..., 1]
    yb = 0.5 * (x[..., 0] + x[..., 1]) - x[..., 2]
    return float(math.hypot(rg.std(), yb.std()) + 0.3 * math.hypot(rg.mean(), yb.mean()))


def content_stats(rgb: np.ndarray) -> dict[str, Any]:
    """Generic, label-free description of a pristine crop (we have no semantic labels)."""
    y = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    gx = cv2.Sobel(y, cv2.CV_32F, 1, 0)
    gy = cv2.Sobel(y, cv2.CV_32F, 0, 1)
    mag = np.sqrt(gx * gx + gy * gy)
    lab = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    mean_luma = float(y.mean())
    m = colourfulness(rgb)
    texture = float(np.percentile(mag, 90))
    flat = float(np.mean(mag < 12.0))
    return {
        "mean_luma": round(mean_luma, 1),
        "colourfulness": round(m, 1),
        "texture": round(texture, 1),
        "flat_fraction": round(flat, 3),
        "warmth": round(float(lab[..., 2].mean()), 1),
        "brightness": "dark" if mean_luma < 70 else "bright" if mean_luma > 175 else "medium",
        "colour": "monochrome" if m < 8 else "muted" if m < 25 else "colourful" if m > 55 else "moderate",
        "detail": "rich" if texture > 120 else "smooth" if texture < 40 else "moderate",
        "flat_areas": flat > 0.45,
    }


# --------------------------------------------------------------------------- facts


@dataclass(frozen=True)
class Applied:
    """One distortion as applied to an image, with its measured stand-alone impact."""

    type: str
    severity: float
    params: Mapping[str, Any]
    #: Pseudo-MOS of the pristine crop with only this distortion applied.
    alone_mos: float

    @property
    def kind(self) -> str:
        return DISTORTIONS[self.type].kind

    @property
    def family(self) -> str:
        return DISTORTIONS[self.type].family

    @property
    def impact(self) -> str:
        return impact_word(5.0 - self.alone_mos)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "family": self.family, "kind": self.kind, "severity": round(self.severity, 4),
                "level": severity_level(self.severity), "params": dict(self.params),
                "alone_mos": round(self.alone_mos, 3), "impact": self.impact}


def clearly_absent(facts: Mapping[str, Any]) -> list[str]:
    """Kinds a description must not claim: not applied at all and not confusable with a visible one.

    An applied but imperceptible distortion is neither present nor cleanly absent, so it is left
    out of both yes and no questions.
    """
    kinds = facts["kinds"]
    applied = {d["kind"] for d in facts["distortions"]}
    # Film grain in the source is content, not a defect, but "there is no noise" would be false.
    grainy = {"noise"} if (facts.get("content") or {}).get("grain") else set()
    return [k for k in KINDS if k not in kinds and k not in applied and k not in grainy
            and not any(k in CONFUSABLE[v] for v in kinds)]


def build_facts(applied: list[Applied], level: str, content: Mapping[str, Any]) -> dict[str, Any]:
    """The facts record stored in metadata.jsonl and used by the text generators.

    ``kinds``: visible kind -> impact (the worst of its distortions); ``main``: the kind with the
    largest stand-alone drop, or ``None`` when nothing is visible; ``attributes``: states in
    qplug_training.data's vocabulary that the image supports (pinned in the :class:`Feedback`).
    """
    kinds: dict[str, str] = {}
    drops: dict[str, float] = {}
    for a in applied:
        if not visible(a.impact):
            continue
        drop = 5.0 - a.alone_mos
        if drop > drops.get(a.kind, -1.0):
            drops[a.kind] = drop
            kinds[a.kind] = a.impact
    main = max(drops, key=lambda k: drops[k]) if drops else None
    attributes: dict[str, str] = {}
    for a in sorted(applied, key=lambda a: a.alone_mos):  # worst first wins the attribute
        pair = TYPE_ATTRIBUTE.get(a.type)
        if pair and visible(a.impact) and pair[0] not in attributes:
            attributes[pair[0]] = pair[1]
    # Positive states, only where nothing visible could contradict them.
    confusing = set().union(*(CONFUSABLE[k] | {k} for k in kinds)) if kinds else set()
    if "sharpness" not in attributes and not confusing & {"blur", "low_resolution", "compression"} \
            and content.get("detail") != "smooth" and kinds.get("noise") not in ("strong", "severe"):
        attributes["sharpness"] = "sharp"
    if "noise" not in attributes and "noise" not in kinds and "compression" not in kinds \
            and not content.get("grain"):
        attributes["noise"] = "clean"
    if "exposure" not in attributes and not confusing & {"underexposure", "overexposure", "low_contrast"}:
        attributes["exposure"] = "well_exposed"
    if "compression" not in attributes and not confusing & {"compression", "banding", "low_resolution"}:
        attributes["compression"] = "clean"
    if "colour" not in attributes and not confusing & {"colour"} and content.get("colour") == "colourful" \
            and not any(a.type == "oversaturation" for a in applied):
        attributes["colour"] = "vivid"
    if "contrast" not in attributes and not confusing & {"low_contrast", "underexposure", "overexposure"} \
            and content.get("detail") != "smooth" and content.get("colour") != "monochrome":
        attributes["contrast"] = "high"
    return {
        "kinds": kinds,
        "main": main,
        "level": level,
        "attributes": attributes,
        "content": dict(content),
        "distortions": [a.to_dict() for a in applied],
    }

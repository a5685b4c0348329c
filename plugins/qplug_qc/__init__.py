"""qplug built-in ``qc`` plugin: fast, model-free technical checks (numpy and OpenCV only).

Only the registration lives here: importing this package must stay cheap, so numpy and OpenCV are
imported by :mod:`qplug_qc.scorers` when a scorer is first built.

:data:`SCORERS` is the table of the default scorer metadata (range, direction, unit, event defaults,
description), :data:`BROADCAST` that of the opt-in broadcast checks; the scorer classes read their
clipping range from them rather than repeating it.
"""

from __future__ import annotations

import math
from typing import Callable

from qplug import ScorerInfo, hookimpl

_MODULE = "qplug_qc.scorers"

# Upper bounds that follow from 8-bit input (kept exact so a declared range is never exceeded):
#: largest possible log10(1 + var) of the 4-neighbour Laplacian, whose values lie in [-1020, 1020]
SHARPNESS_MAX = math.ceil(math.log10(1 + 1020 ** 2) * 100) / 100
#: largest Immerkaer estimate: sqrt(pi/2) * max|I*M| / 6 with max|I*M| = 16 * 255
NOISE_MAX = math.ceil(math.sqrt(math.pi / 2) * 16 * 255 / 6)
#: largest Hasler-Suesstrunk M: sigma + 0.3 mu where sigma^2 + mu^2 <= 2 * 255^2
COLORFULNESS_MAX = math.ceil(math.sqrt(2) * 255 * math.sqrt(1 + 0.3 ** 2))


def _info(name: str, cls: str, description: str, bounds: tuple[float, float], higher_is_better: bool | None,
          unit: str, inputs: tuple[str, ...] = ("luma",), default: bool = True, **kw: object) -> ScorerInfo:
    return ScorerInfo(name=name, factory=f"{_MODULE}:{cls}", description=description, range=bounds,
                      higher_is_better=higher_is_better, inputs=inputs, unit=unit, default=default,
                      **kw)  # type: ignore[arg-type]


#: Every scorer of the plugin, by name. All run by default: together they cost a few ms per 1080p frame.
SCORERS: dict[str, ScorerInfo] = {info.name: info for info in (
    _info("sharpness", "SharpnessScorer",
          "log10(1 + variance of the luma Laplacian), at <= 1080-line scale; higher is sharper",
          (0.0, SHARPNESS_MAX), True, "log10(1+var)"),
    _info("noise", "NoiseScorer",
          "noise standard deviation in 8-bit levels (Immerkaer 1996, flat areas only); lower is better",
          (0.0, float(NOISE_MAX)), False, "levels"),
    _info("blocking", "BlockingScorer",
          "8x8 block-grid artefact strength: excess luma step across block edges, 0 = none; lower is better",
          (0.0, 1.0), False, "fraction"),
    _info("exposure", "ExposureScorer",
          "mean luma as a fraction of full range; two-sided, 0.5 is ideal",
          (0.0, 1.0), None, "fraction", ideal=0.5),
    _info("underexposure", "UnderexposureScorer",
          "fraction of pixels crushed to black (luma <= 5 of 255); lower is better",
          (0.0, 1.0), False, "fraction"),
    _info("overexposure", "OverexposureScorer",
          "fraction of pixels blown to white (luma >= 250 of 255); lower is better",
          (0.0, 1.0), False, "fraction"),
    _info("contrast", "ContrastScorer",
          "RMS contrast: standard deviation of luma / 255; higher is better",
          (0.0, 0.5), True, "fraction"),
    _info("colorfulness", "ColorfulnessScorer",
          "Hasler & Suesstrunk 2003 colourfulness M (0 = grey, ~100+ = very colourful); higher is better",
          (0.0, float(COLORFULNESS_MAX)), True, "M", inputs=("rgb",)),
    # ffmpeg blackdetect defaults: pix_th=0.10, pic_th=0.98, d=2.0 s
    _info("black", "BlackScorer",
          "fraction of pixels darker than 10% of full range (ffmpeg blackdetect); lower is better",
          (0.0, 1.0), False, "fraction", event_threshold=0.98, event_min_duration=2.0),
    # ffmpeg freezedetect defaults: n=-60 dB (0.001), d=2 s
    _info("frozen", "FrozenScorer",
          "mean absolute luma change from the previous frame, fraction of full range; ~0 = frozen",
          (0.0, 1.0), True, "fraction", inputs=("luma", "previous"), temporal=True,
          event_threshold=0.001, event_min_duration=2.0),
)}


#: The broadcast checks: legal range (EBU R 103), combing and letterbox/pillarbox bars. A group of
#: their own because they differ from :data:`SCORERS` in two ways that matter to a QC farm:
#:
#: - none runs by default. Each is cheap (together ~1.2 ms per 1080p frame), but each flags what is
#:   often intended outside broadcast delivery: camera super-whites in web video, letterboxed films,
#:   interlaced masters. On plain ``qplug score`` those would be alarms about nothing, and a false
#:   alarm costs QC engineers' trust; whoever delivers to a broadcast spec asks for them with ``-s``.
#: - they may give no value: ``illegal_*`` need the coded YUV samples of limited-range video
#:   (:attr:`qplug.types.Frame.planes`), and ``bars`` has nothing to say about a black frame.
#:
#: Event thresholds: R 103 tolerates level excursions over up to 1 % of the picture, so the legal-range
#: events start there, on any frame; combing over 1 % of the picture's blocks for 1 s; bars over 2 %
#: of the picture for 2 s (a shot, as blackdetect's 2 s), which a letterboxed film shows throughout.
BROADCAST: dict[str, ScorerInfo] = {info.name: info for info in (
    _info("illegal_luma", "IllegalLumaScorer",
          "fraction of luma samples outside EBU R 103's tolerance (-5 %..105 %: 5-246 of 8-bit limited range; "
          "None for full-range or non-YUV sources); lower is better",
          (0.0, 1.0), False, "fraction", inputs=("planes",), default=False,
          event_threshold=0.01, event_min_duration=0.0),
    _info("illegal_chroma", "IllegalChromaScorer",
          "fraction of Cb/Cr samples outside EBU R 103's tolerance (5-251 of 8-bit limited range; None for "
          "full-range or non-YUV sources); lower is better",
          (0.0, 1.0), False, "fraction", inputs=("planes",), default=False,
          event_threshold=0.01, event_min_duration=0.0),
    _info("combing", "CombingScorer",
          "fraction of 16x16 blocks showing interlace combing (ffmpeg fieldmatch's test, progressive detail "
          "excluded); lower is better",
          (0.0, 1.0), False, "fraction", default=False, event_threshold=0.01, event_min_duration=1.0),
    _info("bars", "BarsScorer",
          "fraction of the picture in black letterbox/pillarbox bars (ffmpeg cropdetect's limit 24); "
          "None for a black frame; lower is better",
          (0.0, 1.0), False, "fraction", default=False, event_threshold=0.02, event_min_duration=2.0),
)}

#: Every scorer of the plugin: the clipping ranges of :mod:`qplug_qc.scorers` come from here.
ALL_SCORERS: dict[str, ScorerInfo] = {**SCORERS, **BROADCAST}


@hookimpl
def register_scorers(register: Callable[[ScorerInfo], None]) -> None:
    """Register the ``qc`` scorers listed in :data:`SCORERS`."""
    for info in SCORERS.values():
        register(info)


# tryfirst only orders the listing: pluggy keeps tryfirst implementations last in get_hookimpls(),
# which the catalog walks, so ``qplug scorers`` shows the default set first.
@hookimpl(specname="register_scorers", tryfirst=True)
def register_broadcast_scorers(register: Callable[[ScorerInfo], None]) -> None:
    """Register the broadcast checks listed in :data:`BROADCAST` (a second implementation of
    ``register_scorers``, so the group stays apart from the default set in code as in use)."""
    for info in BROADCAST.values():
        register(info)

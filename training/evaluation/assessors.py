"""Scorers as "assessors": frames in, one higher-is-better number per frame out.

The model's ``qalign`` value, the Laplacian variance (the classic focus measure) and each model-free
``qc`` scorer, each turned so that higher = better; :func:`column_order` orders them in reports."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np


#: The qc scorers used as baselines (``frozen`` is temporal: meaningless on still crops).
QC_BASELINES: tuple[str, ...] = ("sharpness", "noise", "blocking", "exposure", "contrast", "colorfulness",
                                 "underexposure", "overexposure", "black")

Assess = Callable[[Sequence[Any]], list[float | None]]


def model_assessor(model: str, batch_size: int) -> Assess:
    """The model's ``qalign`` value (1..5, higher is better), through qplug's own scorer."""
    from qplug_vlm import scorers

    scorer = scorers.qalign(model=model, device="cpu")

    def assess(frames: Sequence[Any]) -> list[float | None]:
        out: list[float | None] = []
        for start in range(0, len(frames), batch_size):
            out += [s.value for s in scorer.score(frames[start:start + batch_size])]
        return out

    return assess


def laplacian_variance(rgb: np.ndarray) -> float:
    """Variance of OpenCV's Laplacian of luma: the classic focus measure (higher = sharper)."""
    import cv2

    luma = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(luma, cv2.CV_64F).var())


def laplacian_assessor() -> Assess:
    return lambda frames: [laplacian_variance(f.rgb) for f in frames]


def orient_qc(name: str, value: float | None) -> float | None:
    """A ``qc`` value turned to higher = better, with the direction its registry entry declares."""
    from qplug_qc import SCORERS

    info = SCORERS[name]
    if value is None:
        return None
    if info.higher_is_better is None:  # two-sided (exposure): distance from the ideal, negated
        return -abs(value - (info.ideal if info.ideal is not None else 0.5))
    return value if info.higher_is_better else -value


def qc_assessor(name: str) -> Assess:
    """One ``qc`` scorer, built from its registry entry as qplug would, oriented by :func:`orient_qc`."""
    from qplug.registry import resolve
    from qplug_qc import SCORERS

    scorer = resolve(SCORERS[name].factory)()
    return lambda frames: [orient_qc(name, v) for v in scorer.score(frames)]


def in_process_assessors(model: str, batch_size: int, qc: Sequence[str]) -> dict[str, Assess]:
    assessors = {"model": model_assessor(model, batch_size), "laplacian": laplacian_assessor()}
    assessors.update({f"qc:{name}": qc_assessor(name) for name in qc})
    return assessors


def column_order(key: str) -> tuple[int, str]:
    order = ["model", "brisque", "laplacian"] + [f"qc:{n}" for n in QC_BASELINES]
    return (order.index(key), key) if key in order else (len(order), key)
